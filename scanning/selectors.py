"""Reads of scan data for promotions, the pages and the API.

`manifest_scan_facts` (one manifest) and `manifests_scan_facts` (many, in a fixed number of
queries) are the interface promotions depends on: None when the manifest has no report;
else the status, the error, and (once done) the components, the SPDX license ids, the
distinct vulnerabilities per severity, what the scan could not give (`missing`), and
`incomplete_reasons`: the `IncompleteReason` codes of what left part of the image unread (a
layer reader cap, a skipped layer), empty when all of it was read; any of them is also
missing "layers". For an index the facts are the union over its platform reports, and it
is done only when every platform is.

Issue #10: a layer scan is shared by digest, an SBOM is not. A report's stored counts are
those of its layers; a component listed by an SBOM names its referrer manifest and counts
for the image only in the repositories where that referrer is linked. So every read for a
repository takes it (`repository=`, or (repository, manifest) pairs): the layers' components
plus those of the SBOM referrers linked there (`visible_in`, `sbom_parts`). Without a
repository, a read shows the layers alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)

from registry_portal.registry.models import Manifest, RepositoryManifest

from .choices import COUNTED_SEVERITIES, SBOM_SOURCE_PREFIX, ScanStatus
from .models import Component, ComponentLicense, Finding, ScanReport


def _zero_counts() -> dict[str, int]:
    return dict.fromkeys(COUNTED_SEVERITIES, 0)


def _counts(pairs: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Distinct vulnerabilities per counted severity, from (osv id, severity) pairs."""
    counts = _zero_counts()
    for _, severity in set(pairs):
        if severity in counts:
            counts[severity] += 1
    return counts


# --- what a repository sees (issue #10) -------------------------------------------------------


def _repository_id(repository) -> int | None:
    return getattr(repository, "pk", repository)


def visible_in(repository, path: str = "referrer") -> Q:
    """The components (``path="component__referrer"``: the findings, the licenses) that a
    repository shows: those found in the layers, and those of SBOM referrers linked into it.
    ``repository`` None: the layers' alone."""
    layers = Q(**{f"{path}__isnull": True})
    if repository is None:
        return layers
    linked = RepositoryManifest.objects.filter(
        repository_id=_repository_id(repository), manifest=OuterRef(path)
    )
    return layers | Q(Exists(linked))


@dataclass(frozen=True)
class SbomPart:
    """What the SBOM referrers linked in one repository add to a manifest's stored report (an
    index: to its platforms')."""

    referrer_ids: frozenset[int]
    referrer_digests: frozenset[str]
    component_count: int
    vulnerability_counts: dict[str, int]  # of the layers and these SBOMs together


def _platform_parents(manifest_ids: set[int], of: set[int]) -> dict[int, set[int]]:
    """manifest id in ``of`` -> the manifests of ``manifest_ids`` that are its indexes."""
    through = Manifest.children.through
    parents: dict[int, set[int]] = {}
    for index_id, child_id in through.objects.filter(
        from_manifest_id__in=manifest_ids, to_manifest_id__in=of
    ).values_list("from_manifest_id", "to_manifest_id"):
        parents.setdefault(child_id, set()).add(index_id)
    return parents


def sbom_parts(pairs: Iterable[tuple[int | None, int]]) -> dict[tuple[int, int], SbomPart]:
    """(repository id, manifest id) -> `SbomPart`, for the pairs whose repository has an SBOM
    referrer of the image linked; the others show the stored report as it is. One query when
    no SBOM is involved, however many pairs."""
    pairs = {(_repository_id(r), m) for r, m in pairs if r is not None}
    if not pairs:
        return {}
    manifest_ids = {m for _, m in pairs}
    rows = list(
        Component.objects.filter(referrer__isnull=False)
        .filter(
            Q(report__manifest_id__in=manifest_ids) | Q(report__manifest__parents__in=manifest_ids)
        )
        .values_list(
            "report__manifest_id",
            "referrer_id",
            "referrer__digest",
            "referrer__repository_links__repository_id",
        )
        .annotate(count=Count("pk", distinct=True))
        .order_by()
    )
    if not rows:
        return {}
    parents = _platform_parents(manifest_ids, {row[0] for row in rows})
    # (repository, requested manifest) -> {(report manifest, referrer): (digest, count)}
    seen: dict[tuple[int, int], dict[tuple[int, int], tuple[str, int]]] = {}
    for part_id, referrer_id, digest, repository_id, count in rows:
        for manifest_id in parents.get(part_id, set()) | ({part_id} & manifest_ids):
            if (repository_id, manifest_id) in pairs:
                seen.setdefault((repository_id, manifest_id), {})[(part_id, referrer_id)] = (
                    digest,
                    count,
                )
    if not seen:
        return {}
    affected = {manifest_id for _, manifest_id in seen}
    findings: dict[int, set[tuple[int | None, str, str]]] = {}
    found = (
        Finding.objects.filter(
            Q(report__manifest_id__in=affected) | Q(report__manifest__parents__in=affected)
        )
        .values_list(
            "report__manifest_id", "component__referrer_id", "vulnerability__osv_id", "severity"
        )
        .distinct()
        .order_by()
    )
    found = list(found)
    parents = _platform_parents(affected, {row[0] for row in found})
    for part_id, referrer_id, osv_id, severity in found:
        for manifest_id in parents.get(part_id, set()) | ({part_id} & affected):
            findings.setdefault(manifest_id, set()).add((referrer_id, osv_id, severity))
    parts = {}
    for key, referrers in seen.items():
        ids = frozenset(referrer_id for _, referrer_id in referrers)
        parts[key] = SbomPart(
            referrer_ids=ids,
            referrer_digests=frozenset(digest for digest, _ in referrers.values()),
            component_count=sum(count for _, count in referrers.values()),
            vulnerability_counts=_counts(
                (osv_id, severity)
                for referrer_id, osv_id, severity in findings.get(key[1], ())
                if referrer_id is None or referrer_id in ids
            ),
        )
    return parts


@dataclass(frozen=True)
class ScanFacts:
    """What a policy may ask of a scan.

    ``components`` holds (type, name) pairs. ``missing`` maps a kind of missing data
    (``vulnerability_data``, ``licenses``, ``layers``, ``os``: the promotion engine's
    ``MissingData``) to words saying what is missing: a gate that needs it fails closed.
    """

    status: str
    error: str = ""
    component_names: frozenset[str] = frozenset()
    licenses: frozenset[str] = frozenset()
    vulnerability_counts: dict[str, int] = field(default_factory=_zero_counts)
    components: frozenset[tuple[str, str]] = frozenset()
    missing: dict[str, str] = field(default_factory=dict)
    # `IncompleteReason` codes; empty when every layer was read in full.
    incomplete_reasons: frozenset[str] = frozenset()

    @property
    def complete(self) -> bool:
        """Done, and nothing of the image left unread."""
        return self.status == ScanStatus.DONE and not self.incomplete_reasons


# A report note with one of these words says the scan read less than the whole image (a
# layer or file skipped, unreadable, or over the reader's limits): its inventory may be
# incomplete. Notes on SBOM referrers and on vulnerability data say something else.
INCOMPLETE_NOTE_WORDS = ("skipped", "not read", "unreadable", "limit", "incomplete", "truncated")
OS_PACKAGE_TYPES = frozenset({"deb", "apk", "rpm"})
SHOWN_EXAMPLES = 3


def incomplete_notes(notes: Iterable[str]) -> list[str]:
    """The notes of a report that say its inventory may be incomplete."""
    return [
        note
        for note in notes
        if not note.startswith(("SBOM ", "no OSV snapshot"))
        and any(word in note.lower() for word in INCOMPLETE_NOTE_WORDS)
    ]


def _more(items: list[str]) -> str:
    shown = "; ".join(items[:SHOWN_EXAMPLES])
    more = len(items) - SHOWN_EXAMPLES
    return shown + (f"; and {more} more" if more > 0 else "")


def _missing(reports: list[ScanReport], components: list[tuple]) -> dict[str, str]:
    """What the image reports (and their components) could not give, in words."""
    missing: dict[str, str] = {}
    if not reports or any(report.snapshot_id is None for report in reports):
        missing["vulnerability_data"] = (
            "no vulnerability snapshot was used: vulnerabilities were not matched "
            "(load or sync OSV data)"
        )
    notes = [note for report in reports for note in incomplete_notes(report.notes or [])]
    if not reports:
        notes.append("the image has no platform report")
    # The reader's own record of a cap or a skipped layer, whatever its notes' words.
    reasons = sorted({reason for report in reports for reason in report.incomplete_reasons})
    if reasons and not notes:
        notes.append(f"the reader stopped or skipped ({', '.join(reasons)})")
    if notes:
        missing["layers"] = f"the scan did not read the whole image: {_more(notes)}"
    unrecognised = []
    unmatched_os = 0
    for _report_id, kind, name, ecosystem, licenses in components:
        if not any(entry.get("spdx") for entry in licenses or []):
            raw = ", ".join(repr(entry.get("raw")) for entry in licenses or [] if entry.get("raw"))
            unrecognised.append(f"{name}: {raw or 'none found'}")
        if kind in OS_PACKAGE_TYPES and not ecosystem:
            unmatched_os += 1
    if unrecognised:
        count = len(unrecognised)
        missing["licenses"] = (
            f"the license of {count} component{'s' if count != 1 else ''} was not recognised "
            f"({_more(sorted(unrecognised))})"
        )
    if unmatched_os:
        missing["os"] = (
            f"the OS was not identified (no os-release): {unmatched_os} OS "
            f"package{'s were' if unmatched_os != 1 else ' was'} not matched against "
            "vulnerabilities"
        )
    return missing


def _image_report_ids(report: ScanReport) -> list[int]:
    """The reports whose components make up this report: its platforms for an index."""
    if not report.is_index:
        return [report.pk]
    return list(
        ScanReport.objects.filter(manifest__parents=report.manifest_id).values_list("pk", flat=True)
    )


def manifest_scan_facts(*, manifest: Manifest, repository=None) -> ScanFacts | None:
    """The scan facts of a manifest as ``repository`` sees it, or None when it has no report."""
    return manifests_scan_facts(manifest_ids=[manifest.pk], repository=repository).get(manifest.pk)


def manifests_scan_facts(*, manifest_ids: Iterable[int], repository=None) -> dict[int, ScanFacts]:
    """manifest id -> scan facts as ``repository`` sees them (its layers, and the SBOMs linked
    in ``repository``; None: the layers alone), for the manifests that have a report; a fixed
    number of queries however many manifests (an index's facts are those of its platforms)."""
    manifest_ids = list(manifest_ids)
    reports = {
        report.manifest_id: report
        for report in ScanReport.objects.filter(manifest_id__in=manifest_ids).defer(
            "sources", "distro"
        )
    }
    done = {mid: report for mid, report in reports.items() if report.status == ScanStatus.DONE}
    # The reports whose components make up each done report: itself, or an index's platforms.
    image_reports: dict[int, list[ScanReport]] = {
        mid: [report] for mid, report in done.items() if not report.is_index
    }
    index_ids = [mid for mid, report in done.items() if report.is_index]
    if index_ids:
        for platform in ScanReport.objects.filter(manifest__parents__in=index_ids).annotate(
            index_id=F("manifest__parents")
        ):
            image_reports.setdefault(platform.index_id, []).append(platform)
    report_ids = {report.pk for found in image_reports.values() for report in found}
    components: dict[int, list[tuple]] = {}
    for row in (
        Component.objects.filter(report_id__in=report_ids)
        .filter(visible_in(repository))
        .values_list("report_id", "type", "name", "ecosystem", "licenses")
    ):
        components.setdefault(row[0], []).append(row)
    licenses: dict[int, set[str]] = {}
    for report_id, spdx_id in (
        ComponentLicense.objects.filter(report_id__in=report_ids)
        .filter(visible_in(repository, "component__referrer"))
        .values_list("report_id", "spdx_id")
        .distinct()
    ):
        licenses.setdefault(report_id, set()).add(spdx_id)
    sboms = sbom_parts((repository, manifest_id) for manifest_id in done)
    facts = {}
    for manifest_id, report in reports.items():
        if report.status != ScanStatus.DONE:
            facts[manifest_id] = ScanFacts(status=report.status, error=report.error)
            continue
        parts = image_reports.get(manifest_id, [])
        rows = [row for part in parts for row in components.get(part.pk, [])]
        facts[manifest_id] = ScanFacts(
            status=report.status,
            error=report.error,
            component_names=frozenset(row[2] for row in rows),
            components=frozenset((row[1], row[2]) for row in rows),
            licenses=frozenset(spdx for part in parts for spdx in licenses.get(part.pk, ())),
            vulnerability_counts=(
                part.vulnerability_counts
                if (part := sboms.get((_repository_id(repository), manifest_id)))
                else report.vulnerability_counts
            ),
            missing=_missing(parts, rows),
            incomplete_reasons=frozenset(
                reason for part in parts for reason in part.incomplete_reasons
            ),
        )
    return facts


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


def _named_referrer(text: str) -> str:
    """The referrer digest a report source ('sbom:<digest>') or note ('SBOM <digest>: ...')
    names, or ''."""
    if text.startswith(SBOM_SOURCE_PREFIX):
        return text[len(SBOM_SOURCE_PREFIX) :]
    if text.startswith("SBOM "):
        return text[len("SBOM ") :].split(": ", 1)[0]
    return ""


def report_for_manifest(*, manifest: Manifest, repository=None) -> ScanReport | None:
    """The report of a manifest as ``repository`` sees it: the stored layer report, plus the
    components and vulnerabilities of the SBOM referrers linked in ``repository``; its sources
    and notes name only those referrers. The instance is a view: never save it."""
    report = ScanReport.objects.select_related("snapshot").filter(manifest=manifest).first()
    if report is None:
        return None
    named = {_named_referrer(text) for text in [*report.sources, *report.notes]} - {""}
    linked: set[str] = set()
    if named and repository is not None:
        linked = set(
            RepositoryManifest.objects.filter(
                repository_id=_repository_id(repository), manifest__digest__in=named
            ).values_list("manifest__digest", flat=True)
        )
    report.sources = [s for s in report.sources if _named_referrer(s) in linked | {""}]
    report.notes = [n for n in report.notes if _named_referrer(n) in linked | {""}]
    if linked:
        reports_as_seen_in(reports=[report], repository=repository)
    return report


def reports_as_seen_in(*, reports: Iterable[ScanReport], repository) -> None:
    """Add to each done report (in place: the instances become views, never to be saved) the
    components and vulnerabilities of the SBOM referrers linked in ``repository``; one query
    when there are none."""
    done = [report for report in reports if report.status == ScanStatus.DONE]
    parts = sbom_parts((repository, report.manifest_id) for report in done)
    for report in done:
        part = parts.get((_repository_id(repository), report.manifest_id))
        if part is not None:
            report.component_count += part.component_count
            for severity, count in part.vulnerability_counts.items():
                setattr(report, severity, count)


def report_components(*, report: ScanReport, repository=None) -> QuerySet[Component]:
    """The components of a report (an index: of all its platforms) that ``repository`` shows,
    with their licenses."""
    return (
        Component.objects.filter(report_id__in=_image_report_ids(report))
        .filter(visible_in(repository))
        .select_related("report")
        .prefetch_related("license_ids")
        .order_by("type", "name", "version", "pk")
    )


def report_findings(*, report: ScanReport, repository=None) -> QuerySet[Finding]:
    """The findings of a report (an index: of all its platforms) that ``repository`` shows,
    worst first."""
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3, "none": 5}
    rank = Case(
        *(When(severity=severity, then=Value(value)) for severity, value in order.items()),
        default=Value(4),
        output_field=IntegerField(),
    )
    return (
        Finding.objects.filter(report_id__in=_image_report_ids(report))
        .filter(visible_in(repository, "component__referrer"))
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


def scan_summaries_for_manifests(
    *, manifest_ids: Iterable[int], repository=None
) -> dict[int, ScanSummary]:
    """manifest id -> summary as ``repository`` sees it (None: the layers alone)."""
    repository_id = _repository_id(repository)
    summaries = scan_summaries_for_tags(pairs=[(repository_id, m) for m in manifest_ids])
    return {manifest_id: summary for (_, manifest_id), summary in summaries.items()}


def scan_summaries_for_tags(
    *, pairs: Iterable[tuple[int | None, int]]
) -> dict[tuple[int | None, int], ScanSummary]:
    """(repository id, manifest id) -> summary, for the manifests that have a report, as the
    repository sees it (its layers, and the SBOMs linked there); three queries however many
    tags, repositories and manifests when no SBOM is involved (an index's licenses are those
    of its platforms)."""
    pairs = {(_repository_id(r), m) for r, m in pairs}
    manifest_ids = list({m for _, m in pairs})
    if not manifest_ids:
        return {}
    rows = ScanReport.objects.filter(manifest_id__in=manifest_ids).values_list(
        "manifest_id", "status", "error", *COUNTED_SEVERITIES
    )
    reports = {row[0]: row for row in rows}
    licenses: dict[int, set[tuple[int | None, str]]] = {}
    if reports:
        own = (
            ComponentLicense.objects.filter(report__manifest_id__in=list(reports))
            .order_by()
            .values_list("report__manifest_id", "component__referrer_id", "spdx_id")
        )
        of_platforms = (
            ComponentLicense.objects.filter(report__manifest__parents__in=list(reports))
            .order_by()
            .values_list("report__manifest__parents", "component__referrer_id", "spdx_id")
        )
        for manifest_id, referrer_id, spdx_id in own.union(of_platforms):
            licenses.setdefault(manifest_id, set()).add((referrer_id, spdx_id))
    sboms = sbom_parts(
        (r, m) for r, m in pairs if m in reports and reports[m][1] == ScanStatus.DONE
    )
    summaries = {}
    for repository_id, manifest_id in pairs:
        if manifest_id not in reports:
            continue
        _, status, error, *counts = reports[manifest_id]
        part = sboms.get((repository_id, manifest_id))
        referrers = part.referrer_ids if part else frozenset()
        summaries[(repository_id, manifest_id)] = ScanSummary(
            status=status,
            error=error,
            vulnerability_counts=(
                part.vulnerability_counts
                if part
                else dict(zip(COUNTED_SEVERITIES, counts, strict=True))
            ),
            licenses=tuple(
                sorted(
                    {
                        spdx_id
                        for referrer_id, spdx_id in licenses.get(manifest_id, ())
                        if referrer_id is None or referrer_id in referrers
                    },
                    key=str.lower,
                )
            ),
        )
    return summaries


def report_platform_reports(*, report: ScanReport) -> QuerySet[ScanReport]:
    """The reports of an index's platform manifests, by platform (none for an image)."""
    if not report.is_index:
        return ScanReport.objects.none()
    return ScanReport.objects.filter(manifest__parents=report.manifest_id).order_by(
        "platform", "pk"
    )


def repository_scan_reports(*, repository) -> QuerySet[ScanReport]:
    """The reports of the manifests present in a repository, newest first (for its
    Activity tab); the manifest's bytes are not loaded. Their stored counts are the layers':
    pass a page of them to `reports_as_seen_in` to add the SBOMs linked in the repository."""
    present = RepositoryManifest.objects.filter(
        repository=repository, manifest_id=OuterRef("manifest_id")
    )
    return (
        ScanReport.objects.filter(Exists(present))
        .select_related("manifest", "snapshot")
        .defer("manifest__content", "snapshot__malformed")
        .order_by("-queued_at", "-pk")
    )
