"""FilterSets of scan data, shared by the UI lists and the REST API.

Filters come in pairs where the thing has both (`repository_id` / `repository` by full
name), plus a free-text `q`. `severity` keeps reports with at least one finding of that
severity; `license` (an SPDX id, case-insensitive) and `component` (a name) keep reports
or components that have one. Querysets given to these are already restricted to what the
user may see.
"""

import django_filters
from django.db.models import Exists, OuterRef, Q, QuerySet

from registry_portal.registry.filtersets import IdFilter, repository_full_name_q
from registry_portal.registry.models import RepositoryManifest

from .choices import ScanStatus, Severity
from .models import Component, ComponentLicense, Finding, ScanReport


def _in_repository(manifest_path: str, condition: Q) -> Exists:
    return Exists(RepositoryManifest.objects.filter(condition, manifest=OuterRef(manifest_path)))


class _ScanFilterSet(django_filters.FilterSet):
    """Shared filters; `manifest_path` leads from the row to its manifest."""

    manifest_path = "manifest"

    repository_id = IdFilter(method="filter_repository_id", label="Repository id")
    repository = django_filters.CharFilter(
        method="filter_repository", label="Repository (namespace/name)"
    )
    digest = django_filters.CharFilter(method="filter_digest", label="Manifest digest")

    def filter_repository_id(self, queryset: QuerySet, name: str, value) -> QuerySet:
        if value is None:
            return queryset
        return queryset.filter(_in_repository(self.manifest_path, Q(repository_id=value)))

    def filter_repository(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if not value:
            return queryset
        condition = repository_full_name_q("repository__", value)
        return queryset.filter(_in_repository(self.manifest_path, condition))

    def filter_digest(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if not value:
            return queryset
        return queryset.filter(**{f"{self.manifest_path}__digest": value.strip()})


class ScanReportFilterSet(_ScanFilterSet):
    """Reports by repository, digest, status, severity present, component, license, ecosystem."""

    status = django_filters.ChoiceFilter(choices=ScanStatus.choices)
    severity = django_filters.ChoiceFilter(
        choices=Severity.choices, method="filter_severity", label="Has a finding of severity"
    )
    component = django_filters.CharFilter(method="filter_component", label="Has component")
    license = django_filters.CharFilter(method="filter_license", label="Uses license (SPDX id)")
    ecosystem = django_filters.CharFilter(method="filter_ecosystem", label="Has ecosystem")
    q = django_filters.CharFilter(method="search", label="Search")

    class Meta:
        model = ScanReport
        fields = (
            "repository_id",
            "repository",
            "digest",
            "status",
            "severity",
            "component",
            "license",
            "ecosystem",
            "q",
        )

    def filter_severity(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if not value:
            return queryset
        return queryset.filter(
            Exists(Finding.objects.filter(report=OuterRef("pk"), severity=value))
        )

    def filter_component(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if not value:
            return queryset
        return queryset.filter(
            Exists(Component.objects.filter(report=OuterRef("pk"), name=value.strip()))
        )

    def filter_license(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if not value:
            return queryset
        return queryset.filter(
            Exists(
                ComponentLicense.objects.filter(
                    report=OuterRef("pk"), spdx_id__iexact=value.strip()
                )
            )
        )

    def filter_ecosystem(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if not value:
            return queryset
        return queryset.filter(
            Q(ecosystem=value.strip())
            | Exists(Component.objects.filter(report=OuterRef("pk"), ecosystem=value.strip()))
        )

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """Digest, distro or error text contains the text."""
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(manifest__digest__icontains=value)
            | Q(distro__icontains=value)
            | Q(error__icontains=value)
        )


class ComponentFilterSet(_ScanFilterSet):
    """Components by repository, digest, report, name, type, ecosystem, license, origin."""

    manifest_path = "report__manifest"

    report_id = IdFilter(field_name="report_id")
    name = django_filters.CharFilter(field_name="name")
    type = django_filters.CharFilter(field_name="type")
    ecosystem = django_filters.CharFilter(field_name="ecosystem")
    license = django_filters.CharFilter(method="filter_license", label="License (SPDX id)")
    origin = django_filters.CharFilter(field_name="origin")
    q = django_filters.CharFilter(method="search", label="Search")

    class Meta:
        model = Component
        fields = (
            "repository_id",
            "repository",
            "digest",
            "report_id",
            "name",
            "type",
            "ecosystem",
            "license",
            "origin",
            "q",
        )

    def filter_license(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if not value:
            return queryset
        return queryset.filter(
            Exists(
                ComponentLicense.objects.filter(
                    component=OuterRef("pk"), spdx_id__iexact=value.strip()
                )
            )
        )

    def search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        """Name, purl or source package contains the text."""
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(name__icontains=value) | Q(purl__icontains=value) | Q(source_name__icontains=value)
        )


class FindingFilterSet(_ScanFilterSet):
    """Findings by repository, digest, report, severity, vulnerability id, component,
    ecosystem."""

    manifest_path = "report__manifest"

    report_id = IdFilter(field_name="report_id")
    severity = django_filters.ChoiceFilter(choices=Severity.choices)
    vulnerability = django_filters.CharFilter(
        method="filter_vulnerability", label="OSV id or alias"
    )
    component = django_filters.CharFilter(field_name="component__name")
    ecosystem = django_filters.CharFilter(field_name="component__ecosystem")
    fixable = django_filters.BooleanFilter(method="filter_fixable", label="Has a fixed version")

    class Meta:
        model = Finding
        fields = (
            "repository_id",
            "repository",
            "digest",
            "report_id",
            "severity",
            "vulnerability",
            "component",
            "ecosystem",
            "fixable",
        )

    def filter_vulnerability(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(vulnerability__osv_id=value) | Q(vulnerability__aliases__icontains=f'"{value}"')
        )

    def filter_fixable(self, queryset: QuerySet, name: str, value) -> QuerySet:
        if value is None:
            return queryset
        return queryset.exclude(fixed_version="") if value else queryset.filter(fixed_version="")
