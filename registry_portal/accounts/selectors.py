"""Reads of accounts data that are more than one filter: what a user may see."""

from django.db.models import Exists, OuterRef, Q, QuerySet

from .models import Organization, OrganizationMembership, RepositoryAccess, Team


def _is_active_user(user) -> bool:
    return user is not None and user.is_authenticated and user.is_active


def organizations_visible_to(user) -> QuerySet[Organization]:
    """Organizations a user may see: those they belong to or own, and those with a repository
    they may see (anyone sees the namespace of a public repository). Superusers see all."""
    from registry_portal.registry.models import Repository

    visible_repositories = Repository.objects.visible_to(user).filter(namespace=OuterRef("pk"))
    if not _is_active_user(user):
        return Organization.objects.filter(Exists(visible_repositories))
    if user.is_superuser:
        return Organization.objects.all()
    member = OrganizationMembership.objects.filter(organization=OuterRef("pk"), user=user)
    return Organization.objects.filter(
        Q(owner=user) | Exists(member) | Exists(visible_repositories)
    )


def teams_visible_to(user) -> QuerySet[Team]:
    """Teams a user may see: those of the organizations they belong to or own."""
    if not _is_active_user(user):
        return Team.objects.none()
    if user.is_superuser:
        return Team.objects.all()
    member = OrganizationMembership.objects.filter(organization=OuterRef("organization"), user=user)
    return Team.objects.filter(Q(organization__owner=user) | Exists(member))


def grants_visible_to(user) -> QuerySet[RepositoryAccess]:
    """Access grants of the teams a user may see."""
    return RepositoryAccess.objects.filter(team__in=teams_visible_to(user))
