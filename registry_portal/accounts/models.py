"""Organizations (namespaces), teams, memberships, repository access grants and access tokens."""

from django.conf import settings
from django.db import models
from django.db.models import Q

from .choices import AccessLevel
from .permissions import (
    MembershipQuerySet,
    OrganizationQuerySet,
    RepositoryAccessQuerySet,
    TeamQuerySet,
)
from .validators import validate_namespace_name


class Organization(models.Model):
    """A namespace for repositories: an organization, or a user's personal namespace."""

    name = models.CharField(
        "name",
        max_length=64,
        unique=True,
        validators=[validate_namespace_name],
        help_text="The first component of repository names, e.g. 'dev' in dev/website.",
    )
    display_name = models.CharField("display name", max_length=200, blank=True)
    description = models.TextField("description", blank=True)
    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name="owner",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="personal_namespace",
        help_text="Set for a user's personal namespace; empty for an organization.",
    )
    created_at = models.DateTimeField("created", auto_now_add=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("name",)
        verbose_name = "organization"

    def __str__(self) -> str:
        return self.name

    @property
    def is_personal(self) -> bool:
        return self.owner_id is not None


class OrganizationMembership(models.Model):
    """A user's membership of an organization; org admins manage it and all its repositories."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    is_admin = models.BooleanField("organization admin", default=False)
    created_at = models.DateTimeField("joined", auto_now_add=True)

    objects = MembershipQuerySet.as_manager()

    class Meta:
        ordering = ("organization__name", "user__username")
        constraints = [
            models.UniqueConstraint(
                fields=("organization", "user"),
                name="membership_unique_user_per_org",
                violation_error_message="This user is already a member of the organization.",
            )
        ]

    def __str__(self) -> str:
        role = "admin" if self.is_admin else "member"
        return f"{self.user} in {self.organization} ({role})"


class Team(models.Model):
    """A group of users in an organization; teams receive access to repositories."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField("name", max_length=64, validators=[validate_namespace_name])
    description = models.TextField("description", blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="teams", blank=True, verbose_name="members"
    )
    created_at = models.DateTimeField("created", auto_now_add=True)

    objects = TeamQuerySet.as_manager()

    class Meta:
        ordering = ("organization__name", "name")
        constraints = [
            models.UniqueConstraint(
                fields=("organization", "name"),
                name="team_unique_name_per_org",
                violation_error_message="A team with this name already exists here.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization}/{self.name}"


class RepositoryAccess(models.Model):
    """A team's access level on one repository, or on every repository of its organization."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="grants")
    repository = models.ForeignKey(
        "registry.Repository",
        on_delete=models.CASCADE,
        related_name="grants",
        null=True,
        blank=True,
        help_text="Empty: every repository of the team's organization.",
    )
    level = models.PositiveSmallIntegerField(
        "level",
        choices=[(c.value, c.label) for c in AccessLevel if c != AccessLevel.NONE],
        default=AccessLevel.READ_ONLY,
    )
    created_at = models.DateTimeField("granted", auto_now_add=True)

    objects = RepositoryAccessQuerySet.as_manager()

    class Meta:
        ordering = ("team__organization__name", "team__name")
        verbose_name = "repository access"
        verbose_name_plural = "repository access"
        constraints = [
            models.UniqueConstraint(
                fields=("team", "repository"),
                name="access_unique_team_repository",
                violation_error_message="This team already has a grant on this repository.",
            ),
            models.UniqueConstraint(
                fields=("team",),
                condition=Q(repository__isnull=True),
                name="access_unique_team_org_wide",
                violation_error_message="This team already has an organization-wide grant.",
            ),
        ]

    def __str__(self) -> str:
        target = self.repository or f"{self.team.organization}/*"
        return f"{self.team}: {self.get_level_display()} on {target}"


class AccessToken(models.Model):
    """A personal access token: works as the user's password for the registry and the API.

    Only a hash of the secret is stored; the secret is shown once, when created.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_tokens"
    )
    name = models.CharField("name", max_length=100)
    prefix = models.CharField("prefix", max_length=16, editable=False, db_index=True)
    token_hash = models.CharField("hash", max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField("created", auto_now_add=True)
    expires_at = models.DateTimeField("expires", null=True, blank=True)
    last_used_at = models.DateTimeField("last used", null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField("revoked", null=True, blank=True, editable=False)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(
                fields=("user", "name"),
                name="token_unique_name_per_user",
                violation_error_message="You already have a token with this name.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.name} ({self.prefix}…)"
