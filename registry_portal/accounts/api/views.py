"""Views of the accounts API: declarations. Reads are restricted by ``restrict()``, writes
checked by ``registry_portal.api.permissions`` and carried out by ``accounts.services``."""

from django.contrib.auth import get_user_model
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import RetrieveAPIView
from rest_framework.response import Response

from registry_portal.accounts import services
from registry_portal.accounts.choices import Action
from registry_portal.accounts.filtersets import (
    AccessTokenFilterSet,
    OrganizationFilterSet,
    RepositoryAccessFilterSet,
    TeamFilterSet,
)
from registry_portal.accounts.models import (
    AccessToken,
    Organization,
    OrganizationMembership,
    RepositoryAccess,
    Team,
)
from registry_portal.api.permissions import (
    Authenticated,
    OrganizationAdmin,
    OrganizationAdminForWrites,
    SuperuserCreates,
)
from registry_portal.errors import ValidationFailed
from registry_portal.registry.models import Repository

from . import serializers

USERNAME_PARAMETER = OpenApiParameter("username", str, OpenApiParameter.PATH)


@extend_schema_view(
    create=extend_schema(
        summary="Create an organization (superusers)",
        responses={201: serializers.OrganizationSerializer},
    ),
    update=extend_schema(responses=serializers.OrganizationSerializer),
    partial_update=extend_schema(responses=serializers.OrganizationSerializer),
)
class OrganizationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Organizations (namespaces) the caller may see; org admins change them."""

    permission_classes = [SuperuserCreates]
    filterset_class = OrganizationFilterSet
    ordering_fields = ("name", "created_at")
    ordering = ("name",)

    def get_queryset(self):
        return Organization.objects.restrict(self.request.user, Action.PULL)

    def get_serializer_class(self):
        if self.action in ("update", "partial_update"):
            return serializers.OrganizationUpdateSerializer
        return serializers.OrganizationSerializer

    def permission_organization(self, organization):
        return organization

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.organization_create(
            name=data["name"],
            display_name=data.get("display_name", ""),
            description=data.get("description", ""),
            admin=data.get("admin"),
        )

    def update(self, request, *args, **kwargs):
        organization = self.get_object()
        serializer = self.get_serializer(organization, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        organization = services.organization_update(
            organization=organization, **serializer.validated_data
        )
        return Response(serializers.OrganizationSerializer(organization).data)

    @extend_schema(
        summary="Members of an organization (org admins)",
        responses=serializers.MembershipSerializer(many=True),
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="members",
        url_name="members",
        permission_classes=[OrganizationAdmin],
        filter_backends=[],
        pagination_class=None,
    )
    def members_list(self, request, pk=None):
        organization = self.get_object()
        memberships = OrganizationMembership.objects.filter(
            organization=organization
        ).select_related("user")
        return Response(serializers.MembershipSerializer(memberships, many=True).data)

    @extend_schema(
        summary="Add a member, or change their admin flag (org admins)",
        request=serializers.MembershipWriteSerializer,
        responses=serializers.MembershipSerializer,
    )
    @members_list.mapping.post
    def members(self, request, pk=None):
        organization = self.get_object()
        serializer = serializers.MembershipWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        membership = services.membership_set(
            organization=organization,
            user=serializer.validated_data["username"],
            is_admin=serializer.validated_data["is_admin"],
        )
        return Response(serializers.MembershipSerializer(membership).data)

    @extend_schema(
        summary="Remove a member from the organization and its teams (org admins)",
        parameters=[USERNAME_PARAMETER],
        request=None,
        responses={204: None},
    )
    @action(
        detail=True,
        methods=["delete"],
        url_path=r"members/(?P<username>[^/]+)",
        url_name="member-detail",
        permission_classes=[OrganizationAdmin],
    )
    def member_remove(self, request, pk=None, username=None):
        organization = self.get_object()
        membership = get_object_or_404(
            OrganizationMembership, organization=organization, user__username=username
        )
        services.membership_remove(organization=organization, user=membership.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    create=extend_schema(summary="Create a team (org admins)"),
    update=extend_schema(responses=serializers.TeamSerializer),
    partial_update=extend_schema(responses=serializers.TeamSerializer),
)
class TeamViewSet(viewsets.ModelViewSet):
    """Teams of the organizations the caller belongs to; org admins manage them."""

    permission_classes = [OrganizationAdminForWrites]
    filterset_class = TeamFilterSet
    ordering_fields = ("name", "created_at")
    ordering = ("organization__name", "name")

    def get_queryset(self):
        return (
            Team.objects.restrict(self.request.user, Action.PULL)
            .select_related("organization")
            .prefetch_related("members")
        )

    def get_serializer_class(self):
        if self.action in ("update", "partial_update"):
            return serializers.TeamUpdateSerializer
        if self.action in ("member_add", "member_remove"):
            return serializers.TeamMemberSerializer
        return serializers.TeamSerializer

    def permission_organization(self, obj):
        return obj if isinstance(obj, Organization) else obj.organization

    def perform_create(self, serializer):
        data = serializer.validated_data
        organization = data["organization"]
        self.check_object_permissions(self.request, organization)
        serializer.instance = services.team_create(
            organization=organization,
            name=data["name"],
            description=data.get("description", ""),
            members=data.get("members", ()),
        )

    def update(self, request, *args, **kwargs):
        team = self.get_object()
        serializer = self.get_serializer(team, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        team = services.team_update(team=team, **serializer.validated_data)
        return Response(serializers.TeamSerializer(team).data)

    def perform_destroy(self, team):
        services.team_delete(team=team)

    @extend_schema(
        summary="Add a member to a team (org admins)",
        request=serializers.TeamMemberSerializer,
        responses=serializers.TeamSerializer,
    )
    @action(detail=True, methods=["post"], url_path="members", url_name="members")
    def member_add(self, request, pk=None):
        team = self.get_object()
        serializer = serializers.TeamMemberSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.team_add_member(team=team, user=serializer.validated_data["username"])
        return Response(serializers.TeamSerializer(self.get_queryset().get(pk=team.pk)).data)

    @extend_schema(
        summary="Take a member out of a team (org admins)",
        parameters=[USERNAME_PARAMETER],
        request=None,
        responses={204: None},
    )
    @action(
        detail=True,
        methods=["delete"],
        url_path=r"members/(?P<username>[^/]+)",
        url_name="member-detail",
    )
    def member_remove(self, request, pk=None, username=None):
        team = self.get_object()
        user = get_object_or_404(team.members.all(), username=username)
        services.team_remove_member(team=team, user=user)
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    create=extend_schema(
        summary="Give a team a level on a repository, or on all of its organization's "
        "(org admins); an existing grant changes level"
    ),
    destroy=extend_schema(summary="Revoke a grant (org admins)"),
)
class GrantViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Repository access grants of the teams the caller may see."""

    serializer_class = serializers.GrantSerializer
    permission_classes = [OrganizationAdminForWrites]
    filterset_class = RepositoryAccessFilterSet
    ordering_fields = ("created_at", "level")
    ordering = ("team__organization__name", "team__name", "id")

    def get_queryset(self):
        return RepositoryAccess.objects.restrict(self.request.user, Action.PULL).select_related(
            "team__organization", "repository__namespace"
        )

    def permission_organization(self, obj):
        return obj if isinstance(obj, Organization) else obj.team.organization

    def perform_create(self, serializer):
        data = serializer.validated_data
        team = (
            Team.objects.restrict(self.request.user, Action.PULL).filter(pk=data["team_id"]).first()
        )
        if team is None:
            raise ValidationFailed("No team with this id that you can see.", field="team_id")
        self.check_object_permissions(self.request, team.organization)
        repository = None
        if data.get("repository_id") is not None:
            repository = (
                Repository.objects.restrict(self.request.user, Action.PULL)
                .filter(pk=data["repository_id"])
                .first()
            )
            if repository is None:
                raise ValidationFailed(
                    "No repository with this id that you can see.", field="repository_id"
                )
        serializer.instance = services.access_grant(
            actor=self.request.user,
            team=team,
            repository=repository,
            level=serializers.LEVEL_NAMES[data["level"]],
        )

    def perform_destroy(self, grant):
        services.access_revoke(actor=self.request.user, grant=grant)


class MeView(RetrieveAPIView):
    """The authenticated user, with their organizations."""

    serializer_class = serializers.MeSerializer
    permission_classes = [Authenticated]

    def get_object(self):
        memberships = OrganizationMembership.objects.select_related("organization")
        return (
            get_user_model()
            .objects.prefetch_related(Prefetch("memberships", queryset=memberships))
            .get(pk=self.request.user.pk)
        )


@extend_schema_view(
    create=extend_schema(
        summary="Create a personal access token; its secret is in this response only",
        responses={201: serializers.AccessTokenCreatedSerializer},
    ),
    destroy=extend_schema(summary="Revoke a token (it stays listed, revoked)"),
)
class AccessTokenViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """The caller's personal access tokens."""

    serializer_class = serializers.AccessTokenSerializer
    permission_classes = [Authenticated]
    filterset_class = AccessTokenFilterSet
    ordering_fields = ("created_at", "name", "expires_at")
    ordering = ("-created_at",)

    queryset = AccessToken.objects.none()  # the model, for the schema

    def get_queryset(self):
        if not self.request.user.is_authenticated:
            return AccessToken.objects.none()
        return AccessToken.objects.filter(user=self.request.user)

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, secret = services.access_token_create(
            user=request.user,
            name=serializer.validated_data["name"],
            expires_at=serializer.validated_data.get("expires_at"),
            presented_token=request.auth if isinstance(request.auth, AccessToken) else None,
        )
        token.secret = secret
        body = serializers.AccessTokenCreatedSerializer(token).data
        return Response(body, status=status.HTTP_201_CREATED)

    def perform_destroy(self, token):
        services.access_token_revoke(token=token)
