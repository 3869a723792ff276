"""THE permission rule: what may this user do to this repository, and to what hangs off it?

Every surface (the token service, /v2/, pages, the admin and the REST API) asks this module
and nothing else. The rules, in order:

1. a superuser may do everything;
2. an admin of the repository's organization, or the owner of a personal namespace,
   may do everything in it;
3. otherwise the best grant among the user's teams, on the repository itself or on every
   repository of its organization: read-only (pull) < read-write (pull, push) < admin
   (pull, push, delete, administer);
4. anyone, anonymous included, may pull a public repository.

Membership of an organization without a team grant gives no access to private repositories.

The rule is written once, as a query expression per action (``repository_q``), in the
manner of NetBox's ``RestrictedQuerySet``: ``Repository.objects.restrict(user, action)``
lists, and every row check (``repository_allows``, ``repository_actions``) asks the same
expression about one row. Rows that hang off repositories (tags, policies, promotion
records, scan reports) and off organizations (teams, grants, memberships) inherit it through
``RestrictedQuerySet``: a class attribute names the path to their repository or organization.

This module imports no model: the accounts models are looked up through the app registry, so
the models of every app (accounts' own included) can use ``RestrictedQuerySet``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.apps import apps
from django.db import models
from django.db.models import Case, Exists, IntegerField, OuterRef, Q, Value, When

from .choices import ACTIONS_BY_LEVEL, AccessLevel, Action
from .validators import slugify_username

if TYPE_CHECKING:
    from registry_portal.accounts.models import Organization
    from registry_portal.registry.models import Repository

#: The lowest level that allows each action.
LEVEL_FOR_ACTION: dict[str, AccessLevel] = {
    Action.PULL: AccessLevel.READ_ONLY,
    Action.PUSH: AccessLevel.READ_WRITE,
    Action.DELETE: AccessLevel.ADMIN,
    Action.ADMIN: AccessLevel.ADMIN,
}

_NOTHING = Q(pk__in=[])
# Not Q(): an empty Q matches everything in filter() but nothing in When().
_EVERYTHING = Q(pk__isnull=False)


def is_active_user(user) -> bool:
    """An authenticated, active user (anonymous and deactivated users are neither)."""
    return user is not None and user.is_authenticated and user.is_active


def _level_for(action: str) -> AccessLevel:
    try:
        return LEVEL_FOR_ACTION[action]
    except KeyError:
        raise ValueError(f"unknown action {action!r}") from None


def _path(prefix: str, name: str) -> str:
    return f"{prefix}__{name}" if prefix else name


# --- the expressions ---------------------------------------------------------------------------


def organization_admin_q(user, *, path: str = "") -> Q:
    """Organizations (reached through ``path``) that the user administers: owner, org admin,
    or superuser."""
    if not is_active_user(user):
        return _NOTHING
    if user.is_superuser:
        return _EVERYTHING
    membership = apps.get_model("accounts", "OrganizationMembership")
    admin_of = membership.objects.filter(
        organization=OuterRef(_path(path, "pk")), user=user, is_admin=True
    )
    return Q(**{_path(path, "owner"): user}) | Q(Exists(admin_of))


def repository_q(user, action: str, *, path: str = "") -> Q:
    """THE expression: repositories (reached through ``path``) on which ``user`` may take
    ``action``. Lists filter with it; row checks ask it about one row."""
    level = _level_for(action)
    public = Q(**{_path(path, "is_public"): True}) if level <= AccessLevel.READ_ONLY else _NOTHING
    if not is_active_user(user):
        return public
    if user.is_superuser:
        return _EVERYTHING
    access = apps.get_model("accounts", "RepositoryAccess")
    granted = access.objects.filter(
        Q(repository=OuterRef(_path(path, "pk"))) | Q(repository__isnull=True),
        team__organization=OuterRef(_path(path, "namespace")),
        team__members=user,
        level__gte=level,
    )
    return public | organization_admin_q(user, path=_path(path, "namespace")) | Q(Exists(granted))


def organization_q(user, action: str, *, path: str = "") -> Q:
    """Organizations (reached through ``path``): PULL sees those one belongs to or owns and
    the namespaces of repositories one may pull; every other action needs org admin."""
    if _level_for(action) > AccessLevel.READ_ONLY:
        return organization_admin_q(user, path=path)
    repository = apps.get_model("registry", "Repository")
    pullable = repository.objects.filter(
        repository_q(user, Action.PULL), namespace=OuterRef(_path(path, "pk"))
    )
    if not is_active_user(user):
        return Q(Exists(pullable))
    if user.is_superuser:
        return _EVERYTHING
    membership = apps.get_model("accounts", "OrganizationMembership")
    member = membership.objects.filter(organization=OuterRef(_path(path, "pk")), user=user)
    return Q(**{_path(path, "owner"): user}) | Q(Exists(member)) | Q(Exists(pullable))


def organization_members_q(user, *, path: str = "") -> Q:
    """Organizations (reached through ``path``) the user belongs to or owns."""
    if not is_active_user(user):
        return _NOTHING
    if user.is_superuser:
        return _EVERYTHING
    membership = apps.get_model("accounts", "OrganizationMembership")
    member = membership.objects.filter(organization=OuterRef(_path(path, "pk")), user=user)
    return Q(**{_path(path, "owner"): user}) | Q(Exists(member))


class RestrictedQuerySet(models.QuerySet):
    """A queryset that knows the permission rule: ``.restrict(user, action)``.

    Subclasses say how their rows reach the rule; a row passes when any of its
    ``repository_paths`` allows the action (a promotion policy or record is seen from its
    source or its target). ``restrict_q`` is the expression, for use inside other queries.
    """

    #: lookups from the row to the repositories whose permission it follows ("" = itself)
    repository_paths: tuple[str, ...] = ()

    def restrict_q(self, user, action: str) -> Q:
        if not self.repository_paths:
            raise NotImplementedError(f"{type(self).__name__} does not say how to restrict")
        q = _NOTHING
        for path in self.repository_paths:
            q |= repository_q(user, action, path=path)
        return q

    def restrict(self, user, action: str = Action.PULL):
        """The rows on which ``user`` may take ``action``."""
        return self.filter(self.restrict_q(user, action))


class RepositoryQuerySet(RestrictedQuerySet):
    """Repositories: the rule itself."""

    repository_paths = ("",)


class OrganizationQuerySet(RestrictedQuerySet):
    def restrict_q(self, user, action: str) -> Q:
        return organization_q(user, action)


class TeamQuerySet(RestrictedQuerySet):
    """Teams are seen by the members of their organization and managed by its admins."""

    def restrict_q(self, user, action: str) -> Q:
        if _level_for(action) > AccessLevel.READ_ONLY:
            return organization_admin_q(user, path="organization")
        return organization_members_q(user, path="organization")


class MembershipQuerySet(RestrictedQuerySet):
    """Memberships (who is in an organization) are for its admins only."""

    def restrict_q(self, user, action: str) -> Q:
        return organization_admin_q(user, path="organization")


class RepositoryAccessQuerySet(RestrictedQuerySet):
    """Grants: managed by the org admins; seen by members of the team's organization, and then
    only an organization-wide grant or one on a repository they may pull themselves."""

    def restrict_q(self, user, action: str) -> Q:
        if _level_for(action) > AccessLevel.READ_ONLY:
            return organization_admin_q(user, path="team__organization")
        return organization_members_q(user, path="team__organization") & (
            Q(repository__isnull=True) | repository_q(user, Action.PULL, path="repository")
        )


# --- row checks: the same expressions, asked about one row ----------------------------------


def _row_level(queryset: RestrictedQuerySet, user, pk) -> AccessLevel:
    """The highest level whose expression lets ``user`` see row ``pk``: one query."""
    ladder = [
        (AccessLevel.ADMIN, Action.ADMIN),
        (AccessLevel.READ_WRITE, Action.PUSH),
        (AccessLevel.READ_ONLY, Action.PULL),
    ]
    level = (
        queryset.filter(pk=pk)
        .annotate(
            permission_level=Case(
                *[
                    When(queryset.restrict_q(user, action), then=Value(int(lvl)))
                    for lvl, action in ladder
                ],
                default=Value(int(AccessLevel.NONE)),
                output_field=IntegerField(),
            )
        )
        .values_list("permission_level", flat=True)
        .first()
    )
    return AccessLevel(level or AccessLevel.NONE)


def platform_is_admin(user) -> bool:
    """May this user administer the portal itself: create organizations, load the
    vulnerability database? Superusers only."""
    return is_active_user(user) and user.is_superuser


def organization_is_admin(user, organization: Organization) -> bool:
    """May this user administer the namespace (and so every repository in it)?"""
    if not is_active_user(user):
        return False
    return (
        type(organization).objects.restrict(user, Action.ADMIN).filter(pk=organization.pk).exists()
    )


def repository_access_level(user, repository: Repository) -> AccessLevel:
    """The user's effective level on a repository (NONE when it may not even see it)."""
    return _row_level(type(repository).objects.all(), user, repository.pk)


def repository_actions(user, repository: Repository) -> frozenset[str]:
    """Every action the user may take on the repository."""
    return ACTIONS_BY_LEVEL[repository_access_level(user, repository)]


def repository_allows(user, repository: Repository, action: str) -> bool:
    """May the user take this action (``Action``) on the repository?"""
    return type(repository).objects.restrict(user, action).filter(pk=repository.pk).exists()


def personal_namespace_name(user) -> str:
    return slugify_username(user.get_username())


def namespace_may_create_repository(user, namespace_name: str) -> bool:
    """May this user create a repository in the namespace (which may not exist yet)?

    Org admins may in their organization; a user may in their personal namespace, which is
    created on first use.
    """
    if not is_active_user(user):
        return False
    organization_model = apps.get_model("accounts", "Organization")
    organization = organization_model.objects.filter(name=namespace_name).first()
    if organization is None:
        return user.is_superuser or namespace_name == personal_namespace_name(user)
    return organization_is_admin(user, organization)


def repository_name_actions(user, full_name: str) -> frozenset[str]:
    """Actions on a repository given by name; for a name not yet used, what a push may create.

    The token service grants the intersection of what a client asks and this.
    """
    namespace_name, _, name = full_name.partition("/")
    repository_model = apps.get_model("registry", "Repository")
    repository = (
        repository_model.objects.filter(namespace__name=namespace_name, name=name).first()
        if name
        else None
    )
    if repository is not None:
        return repository_actions(user, repository)
    if name and namespace_may_create_repository(user, namespace_name):
        return ACTIONS_BY_LEVEL[AccessLevel.ADMIN]
    return frozenset()


__all__ = [
    "Action",
    "AccessLevel",
    "LEVEL_FOR_ACTION",
    "OrganizationQuerySet",
    "RepositoryQuerySet",
    "RestrictedQuerySet",
    "is_active_user",
    "namespace_may_create_repository",
    "organization_is_admin",
    "organization_q",
    "platform_is_admin",
    "personal_namespace_name",
    "repository_access_level",
    "repository_actions",
    "repository_allows",
    "repository_name_actions",
    "repository_q",
]
