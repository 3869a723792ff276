"""FilterSets of promotion policies and records, shared by the UI lists and the REST API.

Filters come in pairs: ``<thing>_id`` and ``<thing>`` (a repository by its full name
``namespace/name``, an organization or a policy by its name), plus a free-text ``q``.
``repository`` and ``organization`` match either side (source or target).
"""

import django_filters
from django.db.models import Q, QuerySet

from registry_portal.filters import UtcDateTimeFilter
from registry_portal.registry.filtersets import IdFilter, filter_by_repository_full_name

from .choices import PromotionOutcome, Trigger
from .models import PromotionPolicy, PromotionRecord


def _either(field_a: str, field_b: str):
    """A ``method`` matching ``value`` on either of two fields."""

    def method(queryset: QuerySet, name: str, value) -> QuerySet:
        if value in (None, ""):
            return queryset
        return queryset.filter(Q(**{field_a: value}) | Q(**{field_b: value}))

    return method


class PromotionPolicyFilterSet(django_filters.FilterSet):
    """Policies by source, target, either repository, organization, state and text."""

    source_id = IdFilter(field_name="source_id")
    source = django_filters.CharFilter(method=filter_by_repository_full_name("source__"))
    target_id = IdFilter(field_name="target_id")
    target = django_filters.CharFilter(method=filter_by_repository_full_name("target__"))
    repository_id = IdFilter(
        method=_either("source_id", "target_id"), label="Source or target repository id"
    )
    repository = django_filters.CharFilter(
        method=filter_by_repository_full_name("source__", "target__"),
        label="Source or target repository (namespace/name)",
    )
    organization_id = IdFilter(
        method=_either("source__namespace_id", "target__namespace_id"),
        label="Organization id of the source or the target",
    )
    organization = django_filters.CharFilter(
        method=_either("source__namespace__name", "target__namespace__name"),
        label="Organization of the source or the target",
    )
    enabled = django_filters.BooleanFilter()
    q = django_filters.CharFilter(method="search", label="Search")

    class Meta:
        model = PromotionPolicy
        fields = (
            "source_id",
            "source",
            "target_id",
            "target",
            "repository_id",
            "repository",
            "organization_id",
            "organization",
            "enabled",
            "q",
        )

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """Name or description contain the text."""
        if not value.strip():
            return queryset
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))


class PromotionRecordFilterSet(django_filters.FilterSet):
    """Promotion attempts by policy, outcome, trigger, repository, tag, digest and time."""

    policy_id = IdFilter(field_name="policy_id")
    policy = django_filters.CharFilter(field_name="policy_name", label="Policy name")
    outcome = django_filters.MultipleChoiceFilter(choices=PromotionOutcome.choices)
    trigger = django_filters.MultipleChoiceFilter(choices=Trigger.choices)
    source_repository_id = IdFilter(field_name="source_repository_id")
    source_repository = django_filters.CharFilter(field_name="source_repository_name")
    target_repository_id = IdFilter(field_name="target_repository_id")
    target_repository = django_filters.CharFilter(field_name="target_repository_name")
    repository_id = IdFilter(
        method=_either("source_repository_id", "target_repository_id"),
        label="Source or target repository id",
    )
    repository = django_filters.CharFilter(
        method=_either("source_repository_name", "target_repository_name"),
        label="Source or target repository (namespace/name)",
    )
    organization_id = IdFilter(
        method=_either("source_repository__namespace_id", "target_repository__namespace_id"),
        label="Organization id of the source or the target",
    )
    organization = django_filters.CharFilter(
        method=_either("source_repository__namespace__name", "target_repository__namespace__name"),
        label="Organization of the source or the target",
    )
    tag = django_filters.CharFilter(
        method=_either("source_tag", "target_tag"), label="Source or target tag"
    )
    digest = django_filters.CharFilter(field_name="digest")
    revision = django_filters.CharFilter(
        field_name="revision", label="Policy revision (the handle of an apply)"
    )
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lte")
    q = django_filters.CharFilter(method="search", label="Search")

    class Meta:
        model = PromotionRecord
        fields = (
            "policy_id",
            "policy",
            "outcome",
            "trigger",
            "source_repository_id",
            "source_repository",
            "target_repository_id",
            "target_repository",
            "repository_id",
            "repository",
            "organization_id",
            "organization",
            "tag",
            "digest",
            "revision",
            "created_after",
            "created_before",
            "q",
        )

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """Tags, repository names, policy name or reason contain the text."""
        if not value.strip():
            return queryset
        return queryset.filter(
            Q(source_tag__icontains=value)
            | Q(target_tag__icontains=value)
            | Q(source_repository_name__icontains=value)
            | Q(target_repository_name__icontains=value)
            | Q(policy_name__icontains=value)
            | Q(reason__icontains=value)
        )
