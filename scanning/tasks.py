"""Celery tasks of the scanning app. They take ids, re-read rows, and are idempotent; only
database errors are retried (with backoff): a bad image is a recorded failure, not a retry."""

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from registry_portal.outbox.tasks import JobNotFinished, OutboxTask
from registry_portal.registry.models import Manifest

from . import services
from .choices import FINISHED_STATUSES
from .models import OsvSnapshot

RETRY = {
    "acks_late": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "max_retries": 5,
    "retry_backoff": True,
    "retry_backoff_max": 60,
}


# Time limits and the queue (scans) come from settings: CELERY_TASK_ANNOTATIONS, ROUTES.
@shared_task(**RETRY, base=OutboxTask)
def scan_manifest_task(manifest_id: int) -> str | None:
    """Scan a pushed manifest once; returns the report's status.

    A report still running under another job's claim leaves this job unfinished: the outbox
    dispatches it again until the report is finished, or its claim is stale and taken over.
    """
    report = services.scan_manifest(manifest_id=manifest_id)
    if report is not None and report.status not in FINISHED_STATUSES:
        raise JobNotFinished(f"report {report.pk} is {report.status} (attempt {report.attempt})")
    return report.status if report is not None else None


@shared_task(**RETRY, base=OutboxTask)
def rematch_task(snapshot_id: int) -> int:
    """Re-match stored reports against a snapshot, if it is still the active one."""
    snapshot = OsvSnapshot.objects.filter(pk=snapshot_id, is_active=True).first()
    if snapshot is None:
        return 0
    return services.rematch(snapshot=snapshot)


@shared_task(**RETRY, base=OutboxTask)
def osv_sync_task() -> int | None:
    """Sync OSV data from OSV_SYNC_URL (off when empty); returns the new snapshot's id."""
    if not settings.OSV_SYNC_URL:
        return None
    snapshot = services.osv_sync_url(url=settings.OSV_SYNC_URL)
    return snapshot.pk if snapshot is not None else None


@shared_task(**RETRY, base=OutboxTask)
def sbom_ingest_task(subject_digest: str) -> str | None:
    """Ingest the SBOM referrers of a manifest into its finished report."""
    manifest = Manifest.objects.filter(digest=subject_digest).first()
    if manifest is None:
        return None
    report = services.sbom_ingest(manifest=manifest)
    return report.status if report is not None else None
