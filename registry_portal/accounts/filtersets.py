"""FilterSets of accounts data, shared by the UI lists and the REST API.

Filters come in pairs: ``organization_id`` and ``organization`` (its name), plus a free-text
``q``.
"""

import django_filters
from django.db.models import Q, QuerySet
from django.utils import timezone

from registry_portal.registry.filtersets import IdFilter, filter_by_repository_full_name

from .choices import AccessLevel
from .models import AccessToken, Organization, RepositoryAccess, Team


class OrganizationFilterSet(django_filters.FilterSet):
    """Organizations (namespaces) by name, kind and text."""

    name = django_filters.CharFilter(field_name="name")
    is_personal = django_filters.BooleanFilter(
        field_name="owner", lookup_expr="isnull", exclude=True, label="Personal namespace"
    )
    q = django_filters.CharFilter(method="search", label="Search")

    class Meta:
        model = Organization
        fields = ("name", "is_personal", "q")

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """Name, display name or description contain the text."""
        if not value.strip():
            return queryset
        return queryset.filter(
            Q(name__icontains=value)
            | Q(display_name__icontains=value)
            | Q(description__icontains=value)
        )


class TeamFilterSet(django_filters.FilterSet):
    """Teams by organization, member and text."""

    organization_id = IdFilter(field_name="organization_id")
    organization = django_filters.CharFilter(field_name="organization__name")
    member = django_filters.CharFilter(
        field_name="members__username", distinct=True, label="Has this member (username)"
    )
    q = django_filters.CharFilter(method="search", label="Search")

    class Meta:
        model = Team
        fields = ("organization_id", "organization", "member", "q")

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """Name or description contain the text."""
        if not value.strip():
            return queryset
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))


class RepositoryAccessFilterSet(django_filters.FilterSet):
    """Access grants by organization, team, repository (``org_wide`` for all of an org's)."""

    organization_id = IdFilter(field_name="team__organization_id")
    organization = django_filters.CharFilter(field_name="team__organization__name")
    team_id = IdFilter(field_name="team_id")
    team = django_filters.CharFilter(field_name="team__name")
    repository_id = IdFilter(field_name="repository_id")
    repository = django_filters.CharFilter(method=filter_by_repository_full_name("repository__"))
    org_wide = django_filters.BooleanFilter(
        field_name="repository", lookup_expr="isnull", label="On every repository of the org"
    )
    level = django_filters.ChoiceFilter(
        choices=[(c.label, c.label) for c in AccessLevel if c != AccessLevel.NONE],
        method="filter_level",
        label="Level (read-only, read-write, admin)",
    )

    class Meta:
        model = RepositoryAccess
        fields = (
            "organization_id",
            "organization",
            "team_id",
            "team",
            "repository_id",
            "repository",
            "org_wide",
            "level",
        )

    def filter_level(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        levels = {c.label: c.value for c in AccessLevel}
        return queryset.filter(level=levels[value]) if value in levels else queryset


class AccessTokenFilterSet(django_filters.FilterSet):
    """A user's personal access tokens: active ones (not revoked, not expired) or all."""

    active = django_filters.BooleanFilter(method="filter_active", label="Usable now")
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Search")

    class Meta:
        model = AccessToken
        fields = ("active", "q")

    def filter_active(self, queryset: QuerySet, name: str, value) -> QuerySet:
        if value is None:
            return queryset
        usable = Q(revoked_at__isnull=True) & (
            Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
        )
        return queryset.filter(usable) if value else queryset.exclude(usable)
