"""FilterSets of registry data, shared by the UI lists and the REST API.

Filters come in pairs: ``<thing>_id`` (the primary key) and ``<thing>`` (its name; a
repository by its full name ``namespace/name``), plus a free-text ``q``. Time ranges are
``<when>_after`` / ``<when>_before`` (inclusive, ISO 8601).
"""

import django_filters
from django import forms
from django.db.models import Q, QuerySet

from registry_portal.filters import UtcDateTimeFilter

from .models import Repository, Tag, TagEvent


class IdFilter(django_filters.NumberFilter):
    """A primary key: a positive integer that fits the database (anything else is a field
    error, never a database error)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


def repository_full_name_q(prefix: str, full_name: str) -> Q:
    """A ``Q`` on the repository at ``prefix`` (``""``, ``"repository__"``...) by full name.

    A value without a slash matches nothing: repository names always have a namespace.
    """
    namespace_name, _, name = full_name.strip().partition("/")
    if not name:
        return Q(pk__in=[])
    return Q(**{f"{prefix}namespace__name": namespace_name, f"{prefix}name": name})


def filter_by_repository_full_name(*prefixes: str):
    """A ``method`` for a ``CharFilter``: the repository at any of ``prefixes``, by full name."""

    def method(queryset: QuerySet, name: str, value: str) -> QuerySet:
        if not value:
            return queryset
        # The repository is looked up first, so the list filters on a constant id and the
        # database walks its (repository, time) index instead of every row of the table.
        repository_id = (
            Repository.objects.filter(repository_full_name_q("", value))
            .values_list("pk", flat=True)
            .first()
        )
        if repository_id is None:
            return queryset.none()
        condition = Q()
        for prefix in prefixes:
            condition |= Q(**{f"{prefix}pk": repository_id})
        return queryset.filter(condition)

    return method


class RepositoryFilterSet(django_filters.FilterSet):
    """Repositories by organization (namespace), visibility and text."""

    organization_id = IdFilter(field_name="namespace_id")
    organization = django_filters.CharFilter(field_name="namespace__name")
    is_public = django_filters.BooleanFilter()
    immutable_tags = django_filters.BooleanFilter()
    q = django_filters.CharFilter(method="search", label="Search")

    class Meta:
        model = Repository
        fields = ("organization_id", "organization", "is_public", "immutable_tags", "q")

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """Name (or ``namespace/name``) and description contain the text."""
        value = value.strip()
        if not value:
            return queryset
        condition = Q(name__icontains=value) | Q(description__icontains=value)
        if "/" in value:
            condition |= repository_full_name_q("", value)
        return queryset.filter(condition)


class TagFilterSet(django_filters.FilterSet):
    """Tags by repository, organization, name, digest, promotion and push time."""

    repository_id = IdFilter(field_name="repository_id")
    repository = django_filters.CharFilter(method=filter_by_repository_full_name("repository__"))
    organization_id = IdFilter(field_name="repository__namespace_id")
    organization = django_filters.CharFilter(field_name="repository__namespace__name")
    name = django_filters.CharFilter(field_name="name")
    digest = django_filters.CharFilter(field_name="manifest__digest")
    promoted = django_filters.BooleanFilter(
        field_name="provenance", lookup_expr="isnull", exclude=True, label="Made by a promotion"
    )
    pushed_after = UtcDateTimeFilter(field_name="pushed_at", lookup_expr="gte")
    pushed_before = UtcDateTimeFilter(field_name="pushed_at", lookup_expr="lte")
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Search")

    class Meta:
        model = Tag
        fields = (
            "repository_id",
            "repository",
            "organization_id",
            "organization",
            "name",
            "digest",
            "promoted",
            "pushed_after",
            "pushed_before",
            "q",
        )


class TagEventFilterSet(django_filters.FilterSet):
    """The tag history by repository, organization, tag, digest (old or new) and time."""

    repository_id = IdFilter(field_name="repository_id")
    repository = django_filters.CharFilter(method=filter_by_repository_full_name("repository__"))
    organization_id = IdFilter(field_name="repository__namespace_id")
    organization = django_filters.CharFilter(field_name="repository__namespace__name")
    tag = django_filters.CharFilter(field_name="tag_name")
    digest = django_filters.CharFilter(method="filter_digest")
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lte")
    q = django_filters.CharFilter(field_name="tag_name", lookup_expr="icontains", label="Search")

    class Meta:
        model = TagEvent
        fields = (
            "repository_id",
            "repository",
            "organization_id",
            "organization",
            "tag",
            "digest",
            "created_after",
            "created_before",
            "q",
        )

    def filter_digest(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """Events that moved the tag from or to this digest."""
        if not value:
            return queryset
        return queryset.filter(Q(old_digest=value) | Q(new_digest=value))
