"""Reads of scan data for promotions, the pages and the API.

`manifest_scan_facts` is the interface promotions depends on: None when the manifest has
no report; else the status, the error, and (once done) the component names, the SPDX
license ids, the distinct vulnerabilities per severity, and `incomplete_reasons`: what left
part of the image unread (a layer reader cap, a skipped layer), empty when all of it was
read. A done scan with reasons is missing data, and a gate must not pass on it. For an
index the facts are the union over its platform reports, and it is done only when every
platform is.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Case, Exists, IntegerField, OuterRef, QuerySet, Value, When

from registry_portal.registry.models import Manifest, RepositoryManifest

from .choices import COUNTED_SEVERITIES, ScanStatus
from .models import Component, ComponentLicense, Finding, ScanReport


def _zero_counts() -> dict[str, int]:
    return dict.fromkeys(COUNTED_SEVERITIES, 0)


@dataclass(frozen=True)
class ScanFacts:
    """What a policy may ask of a scan."""

    status: str
    error: str = ""
    component_names: frozenset[str] = frozenset()
    licenses: frozenset[str] = frozenset()
    vulnerability_counts: dict[str, int] = field(default_factory=_zero_counts)
    # `IncompleteReason` codes; empty when every layer was read in full.
    incomplete_reasons: frozenset[str] = frozenset()

    @property
    def complete(self) -> bool:
        """Done, and nothing of the image left unread."""
        return self.status == ScanStatus.DONE and not self.incomplete_reasons


def _image_report_ids(report: ScanReport) -> list[int]:
    """The reports whose components make up this report: its platforms for an index."""
    if not report.is_index:
        return [report.pk]
    return list(
        ScanReport.objects.filter(manifest__parents=report.manifest_id).values_list("pk", flat=True)
    )


def manifest_scan_facts(*, manifest: Manifest) -> ScanFacts | None:
    """The scan facts of a manifest, or None when it has no report."""
    report = ScanReport.objects.filter(manifest=manifest).first()
    if report is None:
        return None
    if report.status != ScanStatus.DONE:
        return ScanFacts(status=report.status, error=report.error)
    report_ids = _image_report_ids(report)
    names = Component.objects.filter(report_id__in=report_ids).values_list("name", flat=True)
    licenses = ComponentLicense.objects.filter(report_id__in=report_ids).values_list(
        "spdx_id", flat=True
    )
    return ScanFacts(
        status=report.status,
        error=report.error,
        component_names=frozenset(names.distinct()),
        licenses=frozenset(licenses.distinct()),
        vulnerability_counts=report.vulnerability_counts,
        incomplete_reasons=frozenset(report.incomplete_reasons),
    )


@dataclass(frozen=True)
class ReportSummary:
    """A report in one line: for tag lists."""

    status: str
    error: str
    component_count: int
    vulnerability_counts: dict[str, int]
    finished_at: datetime | None


def report_summary_for_manifests(manifest_ids: Iterable[int]) -> dict[int, ReportSummary]:
    """manifest id -> summary, for the manifests that have a report; one query."""
    rows = ScanReport.objects.filter(manifest_id__in=list(manifest_ids)).values_list(
        "manifest_id", "status", "error", "component_count", "finished_at", *COUNTED_SEVERITIES
    )
    return {
        manifest_id: ReportSummary(
            status=status,
            error=error,
            component_count=component_count,
            vulnerability_counts=dict(zip(COUNTED_SEVERITIES, counts, strict=True)),
            finished_at=finished_at,
        )
        for manifest_id, status, error, component_count, finished_at, *counts in rows
    }


def report_for_manifest(*, manifest: Manifest) -> ScanReport | None:
    return ScanReport.objects.select_related("snapshot").filter(manifest=manifest).first()


def report_components(*, report: ScanReport) -> QuerySet[Component]:
    """The components of a report (an index: of all its platforms), with their licenses."""
    return (
        Component.objects.filter(report_id__in=_image_report_ids(report))
        .select_related("report")
        .prefetch_related("license_ids")
        .order_by("type", "name", "version", "pk")
    )


def report_findings(*, report: ScanReport) -> QuerySet[Finding]:
    """The findings of a report (an index: of all its platforms), worst first."""
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3, "none": 5}
    rank = Case(
        *(When(severity=severity, then=Value(value)) for severity, value in order.items()),
        default=Value(4),
        output_field=IntegerField(),
    )
    return (
        Finding.objects.filter(report_id__in=_image_report_ids(report))
        .select_related("component", "vulnerability")
        .annotate(severity_rank=rank)
        .order_by("severity_rank", "-score", "vulnerability__osv_id", "pk")
    )


@dataclass(frozen=True)
class ScanSummary:
    """A report in one cell of a tag list: status, counts, and the SPDX ids it uses."""

    status: str
    error: str
    vulnerability_counts: dict[str, int]
    licenses: tuple[str, ...]


def scan_summaries_for_manifests(*, manifest_ids: Iterable[int]) -> dict[int, ScanSummary]:
    """manifest id -> summary, for the manifests that have a report; two queries however
    many manifests (an index's licenses are those of its platforms)."""
    manifest_ids = list(manifest_ids)
    if not manifest_ids:
        return {}
    rows = ScanReport.objects.filter(manifest_id__in=manifest_ids).values_list(
        "manifest_id", "status", "error", *COUNTED_SEVERITIES
    )
    reports = {row[0]: row for row in rows}
    licenses: dict[int, set[str]] = {}
    if reports:
        own = (
            ComponentLicense.objects.filter(report__manifest_id__in=list(reports))
            .order_by()
            .values_list("report__manifest_id", "spdx_id")
        )
        of_platforms = (
            ComponentLicense.objects.filter(report__manifest__parents__in=list(reports))
            .order_by()
            .values_list("report__manifest__parents", "spdx_id")
        )
        for manifest_id, spdx_id in own.union(of_platforms):
            licenses.setdefault(manifest_id, set()).add(spdx_id)
    return {
        manifest_id: ScanSummary(
            status=status,
            error=error,
            vulnerability_counts=dict(zip(COUNTED_SEVERITIES, counts, strict=True)),
            licenses=tuple(sorted(licenses.get(manifest_id, ()), key=str.lower)),
        )
        for manifest_id, status, error, *counts in reports.values()
    }


def report_platform_reports(*, report: ScanReport) -> QuerySet[ScanReport]:
    """The reports of an index's platform manifests, by platform (none for an image)."""
    if not report.is_index:
        return ScanReport.objects.none()
    return ScanReport.objects.filter(manifest__parents=report.manifest_id).order_by(
        "platform", "pk"
    )


def repository_scan_reports(*, repository) -> QuerySet[ScanReport]:
    """The reports of the manifests present in a repository, newest first (for its
    Activity tab); the manifest's bytes are not loaded."""
    present = RepositoryManifest.objects.filter(
        repository=repository, manifest_id=OuterRef("manifest_id")
    )
    return (
        ScanReport.objects.filter(Exists(present))
        .select_related("manifest", "snapshot")
        .defer("manifest__content", "snapshot__malformed")
        .order_by("-queued_at", "-pk")
    )
