"""What the outbox's sweeper does for scanning: scans that nothing would move on any more.

A report whose claim is stale (``running`` for longer than ``SCAN_STALE_SECONDS``: its
worker died, or the database went away before it could put the report back) and a report
left ``queued`` with no job to run it get a scan job, unless one is already unfinished. The
job's claim takes the stale one over (``services._claim``).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from registry_portal.outbox.services import job_enqueue_unless_unfinished

from .choices import ScanStatus
from .models import ScanReport

# Reports handled by one sweep, oldest first.
SWEEP_BATCH = 200


def scans_requeue_stale() -> int:
    """Enqueue a scan for each report with a stale claim or left queued; returns how many."""
    from .tasks import scan_manifest_task

    now = timezone.now()
    stale = now - timedelta(seconds=settings.SCAN_STALE_SECONDS)
    # A queued report is normally claimed within seconds of its job; one queued for longer
    # than the outbox's visibility timeout has lost its job.
    forgotten = now - timedelta(
        seconds=settings.OUTBOX_VISIBILITY_SECONDS + settings.OUTBOX_DISPATCH_GRACE_SECONDS
    )
    manifest_ids = (
        ScanReport.objects.filter(
            Q(status=ScanStatus.RUNNING, started_at__lt=stale)
            | Q(status=ScanStatus.QUEUED, queued_at__lt=forgotten)
            & (Q(started_at__isnull=True) | Q(started_at__lt=forgotten))
        )
        .order_by("pk")
        .values_list("manifest_id", flat=True)[:SWEEP_BATCH]
    )
    enqueued = 0
    for manifest_id in manifest_ids:
        job = job_enqueue_unless_unfinished(kind=scan_manifest_task.name, args=[manifest_id])
        enqueued += job is not None
    return enqueued
