"""THE permission function: what may this user do to this repository?

Every surface (the token service, /v2/, pages, the admin and the REST API) asks these
functions and nothing else. The rules, in order:

1. a superuser may do everything;
2. an admin of the repository's organization, or the owner of a personal namespace,
   may do everything in it;
3. otherwise the best grant among the user's teams, on the repository itself or on every
   repository of its organization: read-only (pull) < read-write (pull, push) < admin
   (pull, push, delete, administer);
4. anyone, anonymous included, may pull a public repository.

Membership of an organization without a team grant gives no access to private repositories.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Max, Q

from .choices import ACTIONS_BY_LEVEL, AccessLevel, Action
from .models import Organization, OrganizationMembership, RepositoryAccess
from .validators import slugify_username

if TYPE_CHECKING:
    from registry_portal.registry.models import Repository


def _is_active_user(user) -> bool:
    return user is not None and user.is_authenticated and user.is_active


def platform_is_admin(user) -> bool:
    """May this user administer the portal itself: create organizations, load the
    vulnerability database? Superusers only."""
    return _is_active_user(user) and user.is_superuser


def organization_is_admin(user, organization: Organization) -> bool:
    """May this user administer the namespace (and so every repository in it)?"""
    if not _is_active_user(user):
        return False
    if user.is_superuser or organization.owner_id == user.pk:
        return True
    return OrganizationMembership.objects.filter(
        organization=organization, user=user, is_admin=True
    ).exists()


def repository_access_level(user, repository: Repository) -> AccessLevel:
    """The user's effective level on a repository (NONE when it may not even see it)."""
    if _is_active_user(user):
        if organization_is_admin(user, repository.namespace):
            return AccessLevel.ADMIN
        best = RepositoryAccess.objects.filter(
            Q(repository=repository) | Q(repository__isnull=True),
            team__organization_id=repository.namespace_id,
            team__members=user,
        ).aggregate(best=Max("level"))["best"]
        if best:
            return AccessLevel(best)
    if repository.is_public:
        return AccessLevel.READ_ONLY
    return AccessLevel.NONE


def repository_actions(user, repository: Repository) -> frozenset[str]:
    """Every action the user may take on the repository."""
    return ACTIONS_BY_LEVEL[repository_access_level(user, repository)]


def repository_allows(user, repository: Repository, action: str) -> bool:
    """May the user take this action (``Action``) on the repository?"""
    return action in repository_actions(user, repository)


def personal_namespace_name(user) -> str:
    return slugify_username(user.get_username())


def namespace_may_create_repository(user, namespace_name: str) -> bool:
    """May this user create a repository in the namespace (which may not exist yet)?

    Org admins may in their organization; a user may in their personal namespace, which is
    created on first use.
    """
    if not _is_active_user(user):
        return False
    organization = Organization.objects.filter(name=namespace_name).first()
    if organization is None:
        return user.is_superuser or namespace_name == personal_namespace_name(user)
    return organization_is_admin(user, organization)


def repository_name_actions(user, full_name: str) -> frozenset[str]:
    """Actions on a repository given by name; for a name not yet used, what a push may create.

    The token service grants the intersection of what a client asks and this.
    """
    from registry_portal.registry.selectors import repository_get_by_full_name

    repository = repository_get_by_full_name(full_name=full_name)
    if repository is not None:
        return repository_actions(user, repository)
    namespace_name = full_name.split("/", 1)[0]
    if "/" in full_name and namespace_may_create_repository(user, namespace_name):
        return ACTIONS_BY_LEVEL[AccessLevel.ADMIN]
    return frozenset()


__all__ = [
    "Action",
    "AccessLevel",
    "namespace_may_create_repository",
    "organization_is_admin",
    "platform_is_admin",
    "personal_namespace_name",
    "repository_access_level",
    "repository_actions",
    "repository_allows",
    "repository_name_actions",
]
