"""Every write of the scanning app: scan reports, the OSV store, re-matching, SBOM ingestion.

- `scan_manifest` claims a manifest's report (queued -> running, under a row lock), reads
  the image's layers from blob storage through the layer cache, squashes and catalogs
  them, adds the components of SBOM referrers, matches the active OSV snapshot and saves
  everything in one transaction (done). An index scans each platform manifest and
  aggregates. Whatever goes wrong with the image is recorded (failed, with the message);
  only database errors propagate, for the task to retry.
- `osv_import_zip` / `osv_sync_url` make a new snapshot, all or nothing, then activate it
  and queue `rematch`, which re-matches stored components without reading any layer.
- `scan_finished` is sent after the commit for each report that reaches done or failed,
  and for an index once all its platform reports have.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import BinaryIO

import requests
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from registry_portal.errors import Conflict, ValidationFailed
from registry_portal.outbox.services import job_enqueue
from registry_portal.registry import storage
from registry_portal.registry.manifests import manifest_effective_artifact_type
from registry_portal.registry.models import Blob, Manifest, RepositoryBlob, RepositoryManifest

from . import layer_cache, matching, osv, sbom
from .catalogers import Component as CatalogComponent
from .catalogers import accept, catalog, detect_distro, wanted
from .choices import (
    COUNTED_SEVERITIES,
    FINISHED_STATUSES,
    SBOM_SOURCE_PREFIX,
    SOURCE_SCAN,
    IncompleteReason,
    ScanStatus,
    SnapshotStatus,
)
from .layers import LayerError, LayerSource, ReadLimits, squash
from .licenses import spdx_ids
from .models import (
    Component,
    ComponentLicense,
    Finding,
    OsvAffected,
    OsvSnapshot,
    OsvVulnerability,
    ScanReport,
)
from .signals import scan_finished, vulnerability_data_changed

logger = logging.getLogger(__name__)

IMAGE_CONFIG_MEDIA_TYPES = frozenset(
    {
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.container.image.v1+json",
    }
)
IMPORT_BATCH = 1000
MAX_RECORDED_MALFORMED = 100
DATABASE_ERRORS = (OperationalError, InterfaceError)


class ScanError(Exception):
    """The image cannot be scanned; the message (recorded on the report) says why."""


# --- reading an image -------------------------------------------------------------------------


@dataclass
class Inventory:
    """What one source says is in an image."""

    components: list[CatalogComponent] = field(default_factory=list)
    distro: str = ""
    ecosystem: str = ""
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # `IncompleteReason` codes: what left part of the image unread.
    incomplete_reasons: set[str] = field(default_factory=set)


def read_limits() -> ReadLimits:
    """The layer reader's bounds, from the settings."""
    return ReadLimits(
        max_decompressed_bytes=settings.SCAN_MAX_DECOMPRESSED_BYTES,
        max_entries=settings.SCAN_MAX_ENTRIES,
        max_links=settings.SCAN_MAX_LINKS,
        max_kept_bytes=settings.SCAN_MAX_KEPT_BYTES,
        max_file_size=settings.SCAN_MAX_FILE_BYTES,
    )


def _manifest_body(manifest: Manifest) -> dict:
    try:
        body = json.loads(bytes(manifest.content))
    except ValueError as error:
        raise ScanError(f"the manifest is not JSON: {error}") from error
    if not isinstance(body, dict):
        raise ScanError("the manifest is not a JSON object")
    return body


def _layer_sources(body: dict, inventory: Inventory) -> list[LayerSource]:
    notes = inventory.notes
    layers = [item for item in body.get("layers") or [] if isinstance(item, dict)]
    sizes = dict(
        Blob.objects.filter(digest__in=[item.get("digest") for item in layers]).values_list(
            "digest", "size"
        )
    )
    sources = []
    for item in layers:
        digest, media_type = str(item.get("digest", "")), str(item.get("mediaType", ""))
        if "tar" not in media_type:
            notes.append(f"layer {digest}: media type {media_type!r} is not a tar layer, skipped")
            inventory.incomplete_reasons.add(IncompleteReason.LAYER_SKIPPED)
            continue
        size = sizes.get(digest)
        if size is None or not storage.blob_exists(digest):
            if item.get("urls"):
                notes.append(f"layer {digest}: a foreign layer not in our storage, skipped")
                inventory.incomplete_reasons.add(IncompleteReason.LAYER_SKIPPED)
                continue
            raise ScanError(f"layer {digest} is not in the registry's storage")
        if size > settings.SCAN_MAX_LAYER_BYTES:
            raise ScanError(
                f"layer {digest} has {size} bytes, more than SCAN_MAX_LAYER_BYTES "
                f"({settings.SCAN_MAX_LAYER_BYTES})"
            )
        sources.append(
            LayerSource(digest, media_type, functools.partial(storage.blob_open, digest))
        )
    return sources


def image_inventory(*, manifest: Manifest) -> Inventory:
    """Read an image manifest's layers (through the layer cache) and catalog them."""
    body = _manifest_body(manifest)
    config_type = str((body.get("config") or {}).get("mediaType", ""))
    inventory = Inventory()
    if config_type not in IMAGE_CONFIG_MEDIA_TYPES:
        artifact = manifest_effective_artifact_type(
            artifact_type=manifest.artifact_type, content=bytes(manifest.content)
        )
        inventory.notes.append(f"not a container image ({artifact or 'no type'}): nothing read")
        return inventory
    limits = read_limits()
    sources = _layer_sources(body, inventory)
    contents = [
        layer_cache.layer_contents(source=source, wanted=wanted, accept=accept, limits=limits)[0]
        for source in sources
    ]
    for layer in contents:
        inventory.incomplete_reasons.update(layer.limits_hit)
        inventory.notes += layer.limits_hit.values()
    tree = squash(contents)
    distro = detect_distro(tree)
    inventory.components = catalog(tree, distro)
    inventory.sources = [SOURCE_SCAN]
    if distro is not None:
        inventory.distro = distro.pretty_name or f"{distro.id} {distro.version_id or ''}".strip()
        inventory.ecosystem = distro.ecosystem or ""
    inventory.notes += [
        f"{entry.path}: {entry.size} bytes, over the reader's caps, not read"
        for entry in tree.skipped()
    ]
    return inventory


def _sbom_referrers(manifest: Manifest) -> list[tuple[Manifest, list[int]]]:
    """The SBOM referrers of a manifest that count for it, each with the repositories where it
    counts: those that hold both the referrer and the manifest. A referrer pushed elsewhere,
    with a subject digest it may not even pull, counts nowhere."""
    holding = RepositoryManifest.objects.filter(manifest=manifest).values("repository_id")
    counted = []
    for referrer in (
        Manifest.objects.filter(
            subject_digest=manifest.digest,
            repository_links__repository_id__in=holding,
        )
        .distinct()
        .order_by("pk")
    ):
        if sbom.is_sbom_referrer(
            artifact_type=referrer.artifact_type, content=bytes(referrer.content)
        ):
            repositories = list(
                RepositoryManifest.objects.filter(
                    manifest=referrer, repository_id__in=holding
                ).values_list("repository_id", flat=True)
            )
            counted.append((referrer, repositories))
    return counted


def _read_small_blob(digest: str, *, repositories: list[int]) -> bytes:
    """A blob of an SBOM, read only if it is linked to one of ``repositories``: the reader
    never reads a blob the referrer's pusher could not pull."""
    size = (
        Blob.objects.filter(
            digest=digest,
            pk__in=RepositoryBlob.objects.filter(repository_id__in=repositories).values("blob_id"),
        )
        .values_list("size", flat=True)
        .first()
    )
    if size is None or not storage.blob_exists(digest):
        raise sbom.SbomError(f"blob {digest} is not in the referrer's repository")
    if size > settings.SCAN_MAX_SBOM_BYTES:
        raise sbom.SbomError(f"blob {digest} is larger than SCAN_MAX_SBOM_BYTES")
    with storage.blob_open(digest) as handle:
        return handle.read(settings.SCAN_MAX_SBOM_BYTES + 1)


def sbom_inventory(*, manifest: Manifest) -> Inventory:
    """The components listed by the SBOM referrers of a manifest, each tagged with its source.

    A referrer that cannot be read is noted, not fatal.
    """
    inventory = Inventory()
    for referrer, repositories in _sbom_referrers(manifest):
        source = f"{SBOM_SOURCE_PREFIX}{referrer.digest}"
        components: list[CatalogComponent] = []
        problems = []
        for digest in sbom.sbom_layer_digests(bytes(referrer.content)):
            try:
                _, found = sbom.parse_sbom(_read_small_blob(digest, repositories=repositories))
            except sbom.SbomError as error:
                problems.append(f"{digest}: {error}")
                continue
            components += found
        if not components:
            inventory.notes.append(
                f"SBOM {referrer.digest}: no components read ({'; '.join(problems) or 'empty'})"
            )
            continue
        for component in components:
            component.path = source
        inventory.components += components
        inventory.sources.append(source)
    return inventory


# --- saving a report --------------------------------------------------------------------------


def _stored_components(report: ScanReport) -> list[tuple[int, CatalogComponent, bool]]:
    """(row id, component, from the layers) for matching: only the columns matching reads."""
    rows = Component.objects.filter(report=report).values_list(
        "pk",
        "name",
        "version",
        "type",
        "ecosystem",
        "source_name",
        "source_version",
        "referrer_id",
    )
    return [
        (
            pk,
            CatalogComponent(
                name=name,
                version=version,
                type=kind,
                ecosystem=ecosystem or None,
                purl="",
                source_name=source_name or None,
                source_version=source_version or None,
            ),
            referrer_id is None,
        )
        for pk, name, version, kind, ecosystem, source_name, source_version, referrer_id in rows
    ]


def _component_rows(report: ScanReport, components: Iterable[CatalogComponent]) -> list[Component]:
    """Rows to insert; a component from an SBOM ('sbom:<digest>' in its path) names its
    referrer manifest, which decides where it counts."""
    components = list(components)
    sbom_digests = {
        c.path[len(SBOM_SOURCE_PREFIX) :]
        for c in components
        if c.path.startswith(SBOM_SOURCE_PREFIX)
    }
    referrers = (
        dict(Manifest.objects.filter(digest__in=sbom_digests).values_list("digest", "pk"))
        if sbom_digests
        else {}
    )
    rows = []
    for component in components:
        origin = component.path if component.path.startswith(SBOM_SOURCE_PREFIX) else SOURCE_SCAN
        referrer_id = None
        if origin != SOURCE_SCAN:
            referrer_id = referrers.get(origin[len(SBOM_SOURCE_PREFIX) :])
            if referrer_id is None:
                continue  # the referrer is gone since it was read: it counts nowhere
        rows.append(
            Component(
                report=report,
                referrer_id=referrer_id,
                name=component.name[:500],
                version=(component.version or "")[:255],
                type=component.type[:32],
                ecosystem=(component.ecosystem or "")[:255],
                purl=component.purl[:2000],
                source_name=(component.source_name or "")[:500],
                source_version=(component.source_version or "")[:255],
                layer_digest=component.layer_digest or "",
                path="" if origin != SOURCE_SCAN else component.path[:4096],
                origin=origin,
                licenses=[
                    {"raw": info.raw, "spdx": info.spdx, "found_in": info.found_in}
                    for info in component.licenses
                ],
            )
        )
    return rows


def _license_rows(report: ScanReport, rows: list[Component]) -> list[ComponentLicense]:
    licenses = []
    for row in rows:
        ids: set[str] = set()
        for info in row.licenses:
            if info["spdx"]:
                try:
                    ids |= spdx_ids(info["spdx"])
                except ValueError:
                    continue
        licenses += [
            ComponentLicense(component=row, report=report, spdx_id=spdx_id[:255])
            for spdx_id in sorted(ids)
        ]
    return licenses


def _counts(pairs: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Distinct vulnerabilities per counted severity, from (osv id, severity) pairs."""
    counts = dict.fromkeys(COUNTED_SEVERITIES, 0)
    for _, severity in set(pairs):
        if severity in counts:
            counts[severity] += 1
    return counts


def _insert_findings(report: ScanReport, matches: list[matching.Match]) -> None:
    """Insert findings with one executemany: a re-match writes thousands of rows, and model
    instances would cost more than the database does."""
    columns = ("component_id", "report_id", "vulnerability_id", "severity", "score")
    # The table name comes from the model; values are placeholders.
    sql = (
        f"INSERT INTO {Finding._meta.db_table} ({', '.join(columns)}, fixed_version) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * (len(columns) + 1))})"
    )
    rows = [
        (m.key, report.pk, m.vulnerability_id, m.severity, m.score, m.fixed_version[:255])
        for m in matches
    ]
    if rows:
        with connection.cursor() as cursor:
            cursor.executemany(sql, rows)


def _replace_findings(report: ScanReport, snapshot: OsvSnapshot | None) -> dict[str, int]:
    """Match the report's components against the snapshot; replace its findings and counts."""
    Finding.objects.filter(report=report).delete()
    report.snapshot = snapshot
    if snapshot is None:
        counts = dict.fromkeys(COUNTED_SEVERITIES, 0)
    else:
        stored = _stored_components(report)
        from_layers = {pk for pk, _, layers in stored if layers}
        matches = matching.match(
            snapshot_id=snapshot.pk, components=[(pk, found) for pk, found, _ in stored]
        )
        _insert_findings(report, matches)
        # The stored counts are the layer scan's (shared by digest); an SBOM's findings are
        # added per repository by the selectors, where its referrer is linked.
        counts = _counts(
            (found.osv_id, found.severity) for found in matches if found.key in from_layers
        )
    for severity, count in counts.items():
        setattr(report, severity, count)
    return counts


def _save_components(report: ScanReport, components: list[CatalogComponent]) -> None:
    Component.objects.filter(report=report).delete()
    rows = Component.objects.bulk_create(_component_rows(report, components), batch_size=1000)
    ComponentLicense.objects.bulk_create(_license_rows(report, rows), batch_size=1000)
    report.component_count = sum(1 for row in rows if row.referrer_id is None)


def active_snapshot() -> OsvSnapshot | None:
    return OsvSnapshot.objects.filter(is_active=True, status=SnapshotStatus.READY).first()


def _announce(report: ScanReport) -> None:
    """After the commit: tell listeners (promotions) that this report is finished, and refresh
    the indexes this manifest is a platform of."""
    manifest_id, status, error = report.manifest_id, report.status, report.error
    transaction.on_commit(
        lambda: scan_finished.send(
            sender=ScanReport, manifest_id=manifest_id, status=status, error=error
        )
    )


def _lock_claimed(report_id: int, attempt: int) -> ScanReport | None:
    """The report locked, if this run's claim still holds (no later claim took it over)."""
    report = ScanReport.objects.select_for_update().filter(pk=report_id).first()
    if report is None or report.attempt != attempt or report.status != ScanStatus.RUNNING:
        return None
    return report


def _finish_done(report_id: int, attempt: int, inventory: Inventory) -> ScanReport | None:
    with transaction.atomic():
        report = _lock_claimed(report_id, attempt)
        if report is None:
            return None
        _save_components(report, inventory.components)
        snapshot = active_snapshot()
        _replace_findings(report, snapshot)
        if snapshot is None:
            inventory.notes.append("no OSV snapshot is loaded: vulnerabilities were not matched")
        report.status, report.error = ScanStatus.DONE, ""
        report.finished_at = timezone.now()
        report.sources = inventory.sources
        report.distro, report.ecosystem = inventory.distro[:255], inventory.ecosystem[:255]
        report.notes = inventory.notes[:200]
        report.incomplete_reasons = sorted(inventory.incomplete_reasons)
        report.save()
        _announce(report)
        _refresh_parents(report)
    return report


def _finish_failed(report_id: int, attempt: int, message: str) -> ScanReport | None:
    with transaction.atomic():
        report = _lock_claimed(report_id, attempt)
        if report is None:
            return None
        Component.objects.filter(report=report).delete()
        report.status, report.error = ScanStatus.FAILED, message[:5000]
        report.incomplete_reasons = []
        report.finished_at = timezone.now()
        report.component_count = 0
        for severity in COUNTED_SEVERITIES:
            setattr(report, severity, 0)
        report.save()
        _announce(report)
        _refresh_parents(report)
    return report


def _claim(manifest: Manifest) -> tuple[ScanReport, int] | None:
    """Take the manifest's report for this run: (report, attempt), or None if there is nothing
    to do (finished, or running in another live job)."""
    with transaction.atomic():
        report, _ = ScanReport.objects.get_or_create(
            manifest=manifest, defaults={"is_index": manifest.children.exists()}
        )
        report = ScanReport.objects.select_for_update().get(pk=report.pk)
        if report.status in FINISHED_STATUSES:
            return None
        stale = timezone.now() - timedelta(seconds=settings.SCAN_STALE_SECONDS)
        if report.status == ScanStatus.RUNNING and report.started_at and report.started_at > stale:
            return None
        report.status, report.error = ScanStatus.RUNNING, ""
        report.attempt += 1
        report.started_at, report.finished_at = timezone.now(), None
        report.is_index = manifest.children.exists()
        report.save()
        return report, report.attempt


def _failure_message(error: BaseException) -> str:
    if isinstance(error, SoftTimeLimitExceeded):
        return f"the scan took longer than {settings.SCAN_SOFT_TIME_LIMIT} s and was stopped"
    if isinstance(error, (LayerError, ScanError)):
        return str(error)
    if isinstance(error, MemoryError):
        return "the scan ran out of memory"
    return f"internal error while scanning: {type(error).__name__}: {error}"


def scan_manifest(*, manifest_id: int) -> ScanReport | None:
    """Scan a manifest (an image, or an index and each of its platforms) once.

    Idempotent: a finished report is returned as is, a report running in another live job
    is left to it. A problem with the image fails the report with a clear message; only
    database errors propagate (the report goes back to queued when the database allows).
    """
    manifest = Manifest.objects.filter(pk=manifest_id).first()
    if manifest is None:
        return None
    claim = _claim(manifest)
    if claim is None:
        return ScanReport.objects.filter(manifest=manifest).first()
    report, attempt = claim
    try:
        if report.is_index:
            return _scan_index(manifest, report, attempt)
        inventory = image_inventory(manifest=manifest)
        extra = sbom_inventory(manifest=manifest)
        inventory.components += extra.components
        inventory.sources += extra.sources
        inventory.notes += extra.notes
        return _finish_done(report.pk, attempt, inventory)
    except DATABASE_ERRORS:
        _requeue_quietly(report.pk, attempt)
        raise
    except Exception as error:  # noqa: BLE001 - whatever the image does, the worker survives
        if not isinstance(error, (LayerError, ScanError)):
            logger.exception("scan of manifest %s failed", manifest.digest)
        return _finish_failed(report.pk, attempt, _failure_message(error))


def _requeue_quietly(report_id: int, attempt: int) -> None:
    """After a database error: put the report back to queued so the retry claims it."""
    try:
        ScanReport.objects.filter(pk=report_id, attempt=attempt, status=ScanStatus.RUNNING).update(
            status=ScanStatus.QUEUED
        )
    except DATABASE_ERRORS:
        logger.warning("report %s stays running until SCAN_STALE_SECONDS pass", report_id)


# --- indexes ----------------------------------------------------------------------------------


def _platforms(manifest: Manifest) -> dict[str, str]:
    """digest -> 'os/arch[/variant]' from an index's descriptors."""
    try:
        body = json.loads(bytes(manifest.content))
    except ValueError:
        return {}
    platforms = {}
    for item in body.get("manifests") or [] if isinstance(body, dict) else []:
        if not isinstance(item, dict) or not isinstance(item.get("platform"), dict):
            continue
        platform = item["platform"]
        parts = [platform.get("os"), platform.get("architecture"), platform.get("variant")]
        platforms[str(item.get("digest"))] = "/".join(str(part) for part in parts if part)
    return platforms


def _scan_index(manifest: Manifest, report: ScanReport, attempt: int) -> ScanReport | None:
    platforms = _platforms(manifest)
    for child in manifest.children.all().order_by("pk"):
        child_report, _ = ScanReport.objects.get_or_create(manifest=child)
        platform = platforms.get(child.digest, "")[:100]
        if platform and child_report.platform != platform:
            ScanReport.objects.filter(pk=child_report.pk).update(platform=platform)
        scan_manifest(manifest_id=child.pk)
    with transaction.atomic():
        locked = _lock_claimed(report.pk, attempt)
        if locked is not None:
            _aggregate_index(locked)
    # A platform finishing last may already have completed the index (see _refresh_parents).
    return ScanReport.objects.get(pk=report.pk)


def _aggregate_index(report: ScanReport) -> None:
    """Sum an index's platform reports into its own (locked) report; announce when finished.

    Done when every platform is done; failed when any failed (naming the platforms);
    unchanged while any is still queued or running. Announced when its status changes.
    """
    children = list(report.manifest.children.values_list("pk", flat=True))
    child_reports = list(ScanReport.objects.filter(manifest_id__in=children))
    if len(child_reports) < len(children) or any(
        child.status not in FINISHED_STATUSES for child in child_reports
    ):
        return
    failed = [child for child in child_reports if child.status == ScanStatus.FAILED]
    previous_status = report.status
    report.status = ScanStatus.FAILED if failed else ScanStatus.DONE
    report.error = "; ".join(
        f"{child.platform or child.manifest_id}: {child.error}" for child in failed
    )[:5000]
    report.finished_at = timezone.now()
    report.component_count = sum(child.component_count for child in child_reports)
    report.sources = sorted({source for child in child_reports for source in child.sources})
    report.incomplete_reasons = sorted(
        {reason for child in child_reports for reason in child.incomplete_reasons}
    )
    report.distro = ", ".join(sorted({c.distro for c in child_reports if c.distro}))[:255]
    report.ecosystem = ", ".join(sorted({c.ecosystem for c in child_reports if c.ecosystem}))[:255]
    report.snapshot_id = next((c.snapshot_id for c in child_reports if c.snapshot_id), None)
    counts = _counts(
        Finding.objects.filter(
            report__in=child_reports, component__referrer__isnull=True
        ).values_list("vulnerability__osv_id", "severity")
    )
    for severity, count in counts.items():
        setattr(report, severity, count)
    report.save()
    if report.status != previous_status:
        _announce(report)


def _refresh_parents(report: ScanReport) -> None:
    """A platform report finished or changed: re-aggregate the indexes it belongs to.

    A running index completes here when its last platform finishes (possibly in another
    job); a finished one is refreshed (a retry, an SBOM, a re-match). Queued ones wait for
    their own job.
    """
    parents = ScanReport.objects.select_for_update().filter(
        manifest__in=Manifest.objects.filter(children=report.manifest_id),
        status__in=[ScanStatus.RUNNING, *FINISHED_STATUSES],
    )
    for parent in parents:
        _aggregate_index(parent)


def scan_retry(*, report: ScanReport) -> ScanReport:
    """Queue a failed scan again (an index: with its failed platforms)."""
    from .tasks import scan_manifest_task

    with transaction.atomic():
        locked = ScanReport.objects.select_for_update().get(pk=report.pk)
        if locked.status != ScanStatus.FAILED:
            raise ValidationFailed("Only a failed scan can be retried.", field="status")
        targets = [locked]
        if locked.is_index:
            targets += list(
                ScanReport.objects.select_for_update().filter(
                    manifest__in=locked.manifest.children.all(), status=ScanStatus.FAILED
                )
            )
        for target in targets:
            target.status, target.error, target.finished_at = ScanStatus.QUEUED, "", None
            target.save(update_fields=["status", "error", "finished_at"])
        job_enqueue(kind=scan_manifest_task.name, args=[locked.manifest_id])
    return locked


# --- re-matching ------------------------------------------------------------------------------


def report_rematch(*, report: ScanReport, snapshot: OsvSnapshot | None) -> ScanReport:
    """Re-match one finished image report's stored components against a snapshot."""
    with transaction.atomic():
        locked = ScanReport.objects.select_for_update().get(pk=report.pk)
        if locked.status != ScanStatus.DONE or locked.is_index:
            return locked
        _replace_findings(locked, snapshot)
        locked.save()
        _refresh_parents(locked)
    return locked


def rematch(*, snapshot: OsvSnapshot) -> int:
    """Re-match every finished report against a snapshot; returns how many were re-matched.

    No layer is read: the stored components are matched again. One short transaction per
    report, so scans and pulls are never held up.
    """
    report_ids = ScanReport.objects.filter(status=ScanStatus.DONE, is_index=False).values_list(
        "pk", flat=True
    )
    count = 0
    for report in ScanReport.objects.filter(pk__in=list(report_ids)).iterator():
        report_rematch(report=report, snapshot=snapshot)
        count += 1
    snapshot_id = snapshot.pk
    transaction.on_commit(
        lambda: vulnerability_data_changed.send(sender=OsvSnapshot, snapshot_id=snapshot_id)
    )
    return count


# --- SBOM referrers ---------------------------------------------------------------------------


def sbom_ingest(*, manifest: Manifest) -> ScanReport | None:
    """Add (or refresh) the components of a finished report's SBOM referrers, and re-match.

    A report still queued or running reads the referrers itself when it finishes; a
    manifest with no report is left alone (its scan will read them).
    """
    report = ScanReport.objects.filter(manifest=manifest).first()
    if report is None or report.status != ScanStatus.DONE or report.is_index:
        return report
    inventory = sbom_inventory(manifest=manifest)
    with transaction.atomic():
        locked = ScanReport.objects.select_for_update().get(pk=report.pk)
        if locked.status != ScanStatus.DONE:
            return locked
        Component.objects.filter(report=locked, origin__startswith=SBOM_SOURCE_PREFIX).delete()
        rows = Component.objects.bulk_create(
            _component_rows(locked, inventory.components), batch_size=1000
        )
        ComponentLicense.objects.bulk_create(_license_rows(locked, rows), batch_size=1000)
        locked.component_count = Component.objects.filter(
            report=locked, referrer__isnull=True
        ).count()
        locked.sources = [
            *(s for s in locked.sources if not s.startswith(SBOM_SOURCE_PREFIX)),
            *inventory.sources,
        ]
        locked.notes = [
            *(n for n in locked.notes if not n.startswith("SBOM ")),
            *inventory.notes,
        ][:200]
        _replace_findings(locked, active_snapshot())
        locked.save()
        _refresh_parents(locked)
    return locked


# --- the OSV store ----------------------------------------------------------------------------


def _import_records(snapshot: OsvSnapshot, records: Iterator[osv.OsvRecord]) -> int:
    count = 0
    batch: list[osv.OsvRecord] = []

    def flush() -> None:
        vulnerabilities = []
        for record in batch:
            severity = osv.severity_of(record)
            vulnerabilities.append(
                OsvVulnerability(
                    snapshot=snapshot,
                    osv_id=record.id[:255],
                    aliases=list(record.aliases),
                    summary=record.summary,
                    modified=record.modified[:64],
                    severity=severity.severity,
                    score=severity.score,
                    severity_source=severity.source[:300],
                    raw=matching.record_json(record),
                )
            )
        saved = OsvVulnerability.objects.bulk_create(vulnerabilities)
        affected_rows = [
            OsvAffected(
                snapshot=snapshot,
                vulnerability=vulnerability,
                ecosystem=affected.package.ecosystem[:255],
                ecosystem_base=osv.versions.base_ecosystem(affected.package.ecosystem)[:100],
                name=matching.stored_name(affected.package.ecosystem, affected.package.name)[:500],
                entry=matching.affected_json(affected),
            )
            for record, vulnerability in zip(batch, saved, strict=True)
            for affected in record.affected
            if affected.package.name and affected.package.ecosystem
        ]
        OsvAffected.objects.bulk_create(affected_rows, batch_size=IMPORT_BATCH)
        batch.clear()

    seen: set[str] = set()
    for record in records:
        if record.id in seen:
            continue  # the same id twice in one archive: the first one counts
        seen.add(record.id)
        batch.append(record)
        count += 1
        if len(batch) >= IMPORT_BATCH:
            flush()
    if batch:
        flush()
    return count


def _derive_alias_severities(snapshot: OsvSnapshot) -> None:
    """A record with no severity of its own takes that of a record it names in `aliases` or
    `upstream` (one level deep), from the same snapshot."""
    unknown = list(
        OsvVulnerability.objects.filter(snapshot=snapshot, severity="unknown").only(
            "pk", "aliases", "raw"
        )
    )
    named = {
        other
        for vulnerability in unknown
        for other in [*vulnerability.aliases, *vulnerability.raw.get("upstream", [])]
    }
    if not named:
        return
    known = {
        osv_id: (severity, score, source)
        for osv_id, severity, score, source in OsvVulnerability.objects.filter(
            snapshot=snapshot, osv_id__in=named
        )
        .exclude(severity="unknown")
        .exclude(severity_source__contains=":")
        .values_list("osv_id", "severity", "score", "severity_source")
    }
    changed = []
    for vulnerability in unknown:
        for other in [*vulnerability.aliases, *vulnerability.raw.get("upstream", [])]:
            if other in known:
                severity, score, source = known[other]
                vulnerability.severity, vulnerability.score = severity, score
                vulnerability.severity_source = f"{other}:{source}"[:300]
                changed.append(vulnerability)
                break
    OsvVulnerability.objects.bulk_update(
        changed, ["severity", "score", "severity_source"], batch_size=IMPORT_BATCH
    )


def osv_import_zip(
    *, path_or_file: str | os.PathLike[str] | BinaryIO, source: str, etag: str = ""
) -> OsvSnapshot:
    """Import an OSV `all.zip` as a new snapshot, all or nothing; activate it and queue the
    re-match of stored reports.

    Withdrawn records are skipped; malformed entries are counted and listed on the snapshot.
    A damaged archive, or one with no record, leaves a failed snapshot with the reason and
    no records, and the active snapshot stays as it was.
    """
    from .tasks import rematch_task

    snapshot = OsvSnapshot.objects.create(source=source[:1000], etag=etag[:500])
    malformed: list[osv.OsvEntryError] = []
    try:
        with transaction.atomic():
            count = _import_records(snapshot, osv.read_zip(path_or_file, malformed))
            if count == 0:
                raise osv.OsvArchiveError(
                    "the archive holds no valid OSV record"
                    + (f" ({len(malformed)} malformed entries)" if malformed else "")
                )
            _derive_alias_severities(snapshot)
            OsvSnapshot.objects.filter(is_active=True).update(is_active=False)
            snapshot.status, snapshot.is_active = SnapshotStatus.READY, True
            snapshot.record_count = count
            snapshot.malformed_count = len(malformed)
            snapshot.malformed = [str(entry) for entry in malformed[:MAX_RECORDED_MALFORMED]]
            snapshot.finished_at = timezone.now()
            snapshot.save()
            job_enqueue(kind=rematch_task.name, args=[snapshot.pk])
    except osv.OsvArchiveError as error:
        snapshot.status, snapshot.is_active, snapshot.error = (
            SnapshotStatus.FAILED,
            False,
            str(error)[:5000],
        )
        snapshot.record_count, snapshot.malformed_count = 0, len(malformed)
        snapshot.malformed = [str(entry) for entry in malformed[:MAX_RECORDED_MALFORMED]]
        snapshot.finished_at = timezone.now()
        snapshot.save()
    return snapshot


def _snapshot_failed(*, source: str, message: str) -> OsvSnapshot:
    return OsvSnapshot.objects.create(
        source=source[:1000],
        status=SnapshotStatus.FAILED,
        error=message[:5000],
        finished_at=timezone.now(),
    )


def osv_sync_url(*, url: str, timeout: float = 60.0) -> OsvSnapshot | None:
    """Download an OSV zip from a URL, conditional on the last successful download's ETag.

    Returns None when the server answers 304 (nothing new), else the new snapshot (failed,
    with the reason, when the download or the archive is bad).
    """
    previous = (
        OsvSnapshot.objects.filter(source=url[:1000], status=SnapshotStatus.READY)
        .exclude(etag="")
        .values_list("etag", flat=True)
        .first()
    )
    headers = {"If-None-Match": previous} if previous else {}
    limit = settings.OSV_MAX_DOWNLOAD_BYTES
    try:
        with requests.get(url, headers=headers, stream=True, timeout=timeout) as response:
            if response.status_code == 304:
                return None
            if response.status_code != 200:
                return _snapshot_failed(
                    source=url, message=f"HTTP {response.status_code} from {url}"
                )
            with tempfile.TemporaryFile(dir=settings.DATA_DIR) as handle:
                received = 0
                for chunk in response.iter_content(chunk_size=1024 * 1024):
                    received += len(chunk)
                    if received > limit:
                        return _snapshot_failed(
                            source=url,
                            message=f"the download exceeds OSV_MAX_DOWNLOAD_BYTES ({limit})",
                        )
                    handle.write(chunk)
                handle.seek(0)
                return osv_import_zip(
                    path_or_file=handle, source=url, etag=response.headers.get("ETag", "")
                )
    except requests.RequestException as error:
        return _snapshot_failed(source=url, message=f"download failed: {error}")


def snapshot_activate(*, snapshot: OsvSnapshot) -> OsvSnapshot:
    """Make a ready snapshot the active one (going back to an older import) and re-match."""
    from .tasks import rematch_task

    with transaction.atomic():
        locked = OsvSnapshot.objects.select_for_update().get(pk=snapshot.pk)
        if locked.status != SnapshotStatus.READY:
            raise ValidationFailed("Only a ready snapshot can be activated.", field="snapshot")
        OsvSnapshot.objects.filter(is_active=True).exclude(pk=locked.pk).update(is_active=False)
        locked.is_active = True
        locked.save(update_fields=["is_active"])
        job_enqueue(kind=rematch_task.name, args=[locked.pk])
    return locked


def osv_import_upload(*, archive: BinaryIO, name: str) -> OsvSnapshot:
    """Import an OSV zip uploaded through the API, all or nothing: unlike the admin and the
    command, which keep a failed snapshot as the record of the attempt, a bad archive here is
    a field error (`archive`) and leaves no row behind."""
    with transaction.atomic():
        snapshot = osv_import_zip(path_or_file=archive, source=f"upload: {name}")
        if snapshot.status != SnapshotStatus.READY:
            # Raised inside the transaction: the failed snapshot row is rolled back too.
            raise ValidationFailed(
                f"The archive cannot be imported: {snapshot.error}", field="archive"
            )
    return snapshot


def osv_sync_queue() -> str:
    """Queue a sync from OSV_SYNC_URL (an outbox job); returns the URL. A conflict when no
    URL is configured (the offline path is an upload)."""
    from .tasks import osv_sync_task

    if not settings.OSV_SYNC_URL:
        raise Conflict("No OSV_SYNC_URL is configured: upload an OSV zip instead.")
    job_enqueue(kind=osv_sync_task.name)
    return settings.OSV_SYNC_URL
