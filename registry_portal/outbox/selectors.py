"""Reads of the outbox: the backlog per kind, for the admin and operators."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min
from django.utils import timezone

from .models import UNFINISHED_STATES, JobState, OutboxJob


@dataclass(frozen=True)
class Backlog:
    kind: str
    pending: int  # not done yet: never dispatched, or dispatched and not finished
    oldest_pending_at: datetime | None
    failed: int  # given up after OUTBOX_MAX_ATTEMPTS

    @property
    def oldest_pending_age(self) -> timedelta | None:
        return timezone.now() - self.oldest_pending_at if self.oldest_pending_at else None


def outbox_backlog() -> list[Backlog]:
    """Per kind: unfinished jobs, the age of the oldest, and the jobs given up on."""
    pending = {
        row["kind"]: row
        for row in OutboxJob.objects.filter(state__in=UNFINISHED_STATES)
        .values("kind")
        .annotate(count=Count("id"), oldest=Min("created_at"))
        .order_by()
    }
    failed = dict(
        OutboxJob.objects.filter(state=JobState.FAILED)
        .values("kind")
        .annotate(count=Count("id"))
        .order_by()
        .values_list("kind", "count")
    )
    return [
        Backlog(
            kind=kind,
            pending=pending[kind]["count"] if kind in pending else 0,
            oldest_pending_at=pending[kind]["oldest"] if kind in pending else None,
            failed=failed.get(kind, 0),
        )
        for kind in sorted(set(pending) | set(failed))
    ]
