"""Serializers of the accounts API. They shape data; every write goes through services."""

from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework import serializers

from registry_portal.accounts.choices import AccessLevel, Action
from registry_portal.accounts.models import (
    AccessToken,
    Organization,
    OrganizationMembership,
    RepositoryAccess,
    Team,
)
from registry_portal.accounts.permissions import personal_namespace_name
from registry_portal.accounts.validators import validate_namespace_name

LEVEL_NAMES = {level.label: level for level in AccessLevel if level != AccessLevel.NONE}


class UsernameField(serializers.SlugRelatedField):
    """An active user, by username."""

    def __init__(self, **kwargs):
        kwargs.setdefault("queryset", get_user_model().objects.filter(is_active=True))
        super().__init__(slug_field="username", **kwargs)


class OrganizationSerializer(serializers.ModelSerializer):
    is_personal = serializers.BooleanField(read_only=True)
    admin = UsernameField(
        write_only=True,
        required=False,
        help_text="On creation: a user who becomes the organization's first admin.",
    )

    class Meta:
        model = Organization
        fields = ("id", "name", "display_name", "description", "is_personal", "created_at", "admin")
        read_only_fields = ("created_at",)
        extra_kwargs = {"name": {"validators": [validate_namespace_name]}}


class OrganizationUpdateSerializer(serializers.ModelSerializer):
    """What an org admin may change: everything but the name."""

    class Meta:
        model = Organization
        fields = ("display_name", "description")


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = OrganizationMembership
        fields = ("username", "is_admin", "created_at")
        read_only_fields = fields


class MembershipWriteSerializer(serializers.Serializer):
    username = UsernameField()
    is_admin = serializers.BooleanField(default=False)


class AdministeredOrganizationField(serializers.SlugRelatedField):
    """An organization the caller administers, by name: one the caller may not manage is
    "does not exist", as one that does not (no existence oracle)."""

    def get_queryset(self):
        request = self.context.get("request")
        user = request.user if request is not None else None
        return Organization.objects.restrict(user, Action.ADMIN)


class TeamSerializer(serializers.ModelSerializer):
    organization = AdministeredOrganizationField(
        slug_field="name",
        queryset=Organization.objects.none(),
        help_text="The organization's name (one you administer); set on creation only.",
    )
    members = serializers.SlugRelatedField(
        slug_field="username",
        many=True,
        required=False,
        queryset=get_user_model().objects.filter(is_active=True),
        help_text="Usernames; on creation only (then use the members endpoints).",
    )

    class Meta:
        model = Team
        fields = (
            "id",
            "organization_id",
            "organization",
            "name",
            "description",
            "members",
            "created_at",
        )
        read_only_fields = ("organization_id", "created_at")


class TeamUpdateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Team
        fields = ("name", "description")
        extra_kwargs = {"name": {"validators": [validate_namespace_name]}}


class TeamMemberSerializer(serializers.Serializer):
    username = UsernameField()


class GrantSerializer(serializers.ModelSerializer):
    team_id = serializers.IntegerField(help_text="The team given access.")
    team = serializers.CharField(source="team.name", read_only=True)
    organization = serializers.CharField(source="team.organization.name", read_only=True)
    repository_id = serializers.IntegerField(
        allow_null=True,
        required=False,
        default=None,
        help_text="One repository of the team's organization; null for all of them.",
    )
    repository = serializers.CharField(
        source="repository.full_name", read_only=True, allow_null=True, default=None
    )
    level = serializers.ChoiceField(choices=list(LEVEL_NAMES))

    class Meta:
        model = RepositoryAccess
        fields = (
            "id",
            "team_id",
            "team",
            "organization",
            "repository_id",
            "repository",
            "level",
            "created_at",
        )
        read_only_fields = ("created_at",)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["level"] = AccessLevel(instance.level).label
        return data


class UserOrganizationSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="organization.id")
    name = serializers.CharField(source="organization.name")

    class Meta:
        model = OrganizationMembership
        fields = ("id", "name", "is_admin")


class MeSerializer(serializers.ModelSerializer):
    email = serializers.CharField(help_text="May be empty.")
    personal_namespace = serializers.SerializerMethodField(
        help_text="The namespace where this user may always create repositories."
    )
    organizations = UserOrganizationSerializer(source="memberships", many=True)

    class Meta:
        model = get_user_model()
        fields = (
            "id",
            "username",
            "email",
            "first_name",
            "last_name",
            "is_superuser",
            "personal_namespace",
            "organizations",
        )
        read_only_fields = fields

    def get_personal_namespace(self, user) -> str:
        return personal_namespace_name(user)


class AccessTokenSerializer(serializers.ModelSerializer):
    active = serializers.SerializerMethodField()

    class Meta:
        model = AccessToken
        fields = (
            "id",
            "name",
            "prefix",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
            "active",
        )
        read_only_fields = ("prefix", "created_at", "last_used_at", "revoked_at")

    def get_active(self, token: AccessToken) -> bool:
        """Not revoked, and not expired."""
        return token.revoked_at is None and (
            token.expires_at is None or token.expires_at > timezone.now()
        )


class AccessTokenCreatedSerializer(AccessTokenSerializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="The token itself: shown this once, never again. Use it as "
        "'Authorization: Bearer <secret>' or as the registry password.",
    )

    class Meta(AccessTokenSerializer.Meta):
        fields = (*AccessTokenSerializer.Meta.fields, "secret")
