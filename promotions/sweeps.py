"""What the outbox's sweeper does for promotions: records left waiting for a scan that has
finished (the job resuming them was lost between the scan's commit and its own).

Records waiting for a scan that is still running need nothing here: scanning's sweep takes a
stale claim over, and the scan's end resumes them.
"""

from __future__ import annotations

from registry_portal.outbox.services import job_enqueue_unless_unfinished
from scanning.selectors import report_summary_for_manifests

from .choices import PromotionOutcome
from .models import PromotionRecord
from .tasks import resume_waiting_promotions

# Manifests handled by one sweep.
SWEEP_BATCH = 200


def promotions_resume_forgotten() -> int:
    """Enqueue the resumption of records waiting on a finished scan; returns how many."""
    manifest_ids = list(
        PromotionRecord.objects.filter(outcome=PromotionOutcome.WAITING, manifest__isnull=False)
        .order_by("manifest_id")
        .values_list("manifest_id", flat=True)
        .distinct()[:SWEEP_BATCH]
    )
    enqueued = 0
    for manifest_id, summary in report_summary_for_manifests(manifest_ids).items():
        if summary.status not in ("done", "failed"):
            continue
        reason = (summary.error or "unknown error") if summary.status == "failed" else ""
        # Resumed since the scan finished, and still waiting: for something else (its own
        # event moves it on), not for this scan.
        job = job_enqueue_unless_unfinished(
            kind=resume_waiting_promotions.name,
            args=[manifest_id, reason],
            unless_done_since=summary.finished_at,
        )
        enqueued += job is not None
    return enqueued
