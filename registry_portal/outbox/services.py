"""Every write of the outbox: enqueue a job, dispatch it, mark it done, sweep.

- ``job_enqueue`` writes the row in the caller's transaction and dispatches it after the
  commit. A dispatch never raises: when the broker is down it is logged and left to the
  sweeper, so the request that made the event still succeeds.
- ``job_dispatch`` first claims the job with a conditional UPDATE (only if nobody dispatched
  it since it was read), then publishes it. The dispatcher and the sweeper racing on one job
  publish it once; a job published twice anyway (a visibility timeout that passed while it
  ran) is harmless because every task is idempotent.
- ``job_done`` is called by the task (``OutboxTask``) in its own transaction.
- ``outbox_sweep`` (Celery beat, every ``OUTBOX_SWEEP_SECONDS``) dispatches again the jobs
  never dispatched and those past ``OUTBOX_VISIBILITY_SECONDS``, gives up after
  ``OUTBOX_MAX_ATTEMPTS``, removes jobs done ``OUTBOX_KEEP_DONE_HOURS`` ago, then runs the
  apps' sweep hooks (stale scan claims, promotions
  left waiting), which enqueue what their rows need.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone

from .models import UNFINISHED_STATES, JobState, OutboxJob

logger = logging.getLogger(__name__)

# The keyword argument that carries the job's id to its task.
JOB_KWARG = "outbox_job_id"
# A publish is tried twice, quickly: a broker that is down is the sweeper's business.
PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}

_sweep_hooks: list[Callable[[], int]] = []


def sweep_hook_register(hook: Callable[[], int]) -> None:
    """Run ``hook`` on each sweep (an app's ``ready()``): it enqueues the jobs its own rows
    need to move on, and returns how many it enqueued."""
    if hook not in _sweep_hooks:
        _sweep_hooks.append(hook)


def job_key(kind: str, args: Sequence) -> str:
    return f"{kind}:{json.dumps(list(args), separators=(',', ':'))}"[:500]


def job_enqueue(*, kind: str, args: Sequence = ()) -> OutboxJob:
    """Record a job in the current transaction; it is dispatched after the commit.

    ``kind`` is the name of a task with ``base=OutboxTask``; ``args`` are JSON values (ids).
    """
    _task(kind)
    job = OutboxJob.objects.create(kind=kind, args=list(args), key=job_key(kind, args))
    transaction.on_commit(functools.partial(job_dispatch, job=job))
    return job


def job_enqueue_unless_unfinished(
    *, kind: str, args: Sequence = (), unless_done_since: datetime | None = None
) -> OutboxJob | None:
    """Enqueue a job unless the same one (kind and arguments) is already waiting or running,
    or, with ``unless_done_since``, was done since then (what it had to do is done)."""
    same = OutboxJob.objects.filter(key=job_key(kind, args))
    unfinished = Q(state__in=UNFINISHED_STATES)
    if unless_done_since is not None:
        unfinished |= Q(state=JobState.DONE, done_at__gte=unless_done_since)
    if same.filter(unfinished).exists():
        return None
    return job_enqueue(kind=kind, args=args)


def _task(kind: str):
    """The task named ``kind``. Outside a worker, Celery imports the apps' task modules only
    when asked: a sweep in a shell dispatches kinds that nothing there imported yet."""
    if kind not in current_app.tasks:
        current_app.loader.import_default_modules()
    try:
        return current_app.tasks[kind]
    except KeyError:
        raise ValueError(f"no Celery task is named {kind!r}") from None


def _publish(job: OutboxJob) -> None:
    task = _task(job.kind)
    task.apply_async(
        args=list(job.args),
        kwargs={JOB_KWARG: job.pk},
        retry=True,
        retry_policy=PUBLISH_RETRY_POLICY,
    )


def job_dispatch(*, job: OutboxJob) -> bool:
    """Claim ``job`` as it was read (its ``dispatched_at``) and publish it; True if published.

    Never raises: a job that another dispatcher claimed first is left to it, and a failed
    publish (broker down) is logged and undone, for the sweeper to try again.
    """
    previous_state, previous_dispatched_at = job.state, job.dispatched_at
    now = timezone.now()
    try:
        claimed = OutboxJob.objects.filter(
            pk=job.pk, state__in=UNFINISHED_STATES, dispatched_at=previous_dispatched_at
        ).update(state=JobState.DISPATCHED, dispatched_at=now, attempts=F("attempts") + 1)
    except DatabaseError:
        logger.warning("outbox job %s not claimed (database error); the sweeper retries", job.pk)
        return False
    if not claimed:
        return False
    try:
        _publish(job)
    except Exception as error:  # noqa: BLE001 - any broker failure: the sweeper tries again
        logger.warning(
            "outbox job %s (%s) not dispatched, the sweeper retries: %s: %s",
            job.pk,
            job.kind,
            type(error).__name__,
            error,
        )
        _unclaim(job, now, previous_state, previous_dispatched_at, error)
        return False
    job.state, job.dispatched_at = JobState.DISPATCHED, now
    return True


def _unclaim(job, claimed_at, previous_state, previous_dispatched_at, error) -> None:
    """A failed publish: the job looks as it did before the claim, with the error."""
    try:
        OutboxJob.objects.filter(pk=job.pk, dispatched_at=claimed_at).update(
            state=previous_state,
            dispatched_at=previous_dispatched_at,
            attempts=F("attempts") - 1,
            last_error=f"dispatch failed: {type(error).__name__}: {error}"[:2000],
        )
    except DatabaseError:
        logger.warning("outbox job %s stays claimed until its visibility timeout", job.pk)


def job_done(*, job_id: int) -> bool:
    """Mark a job done (its task finished its work); idempotent. True the first time."""
    return bool(
        OutboxJob.objects.filter(pk=job_id)
        .exclude(state=JobState.DONE)
        .update(state=JobState.DONE, done_at=timezone.now(), last_error="")
    )


def job_error_record(*, job_id: int, error: str) -> None:
    """Note why the last run of an unfinished job failed (shown in the admin)."""
    OutboxJob.objects.filter(pk=job_id, state__in=UNFINISHED_STATES).update(last_error=error[:2000])


def _prune_done(now: datetime) -> None:
    """Jobs done longer than OUTBOX_KEEP_DONE_HOURS ago go, a batch per sweep."""
    old = OutboxJob.objects.filter(
        state=JobState.DONE,
        done_at__lt=now - timedelta(hours=settings.OUTBOX_KEEP_DONE_HOURS),
    ).values_list("pk", flat=True)[: settings.OUTBOX_SWEEP_BATCH]
    OutboxJob.objects.filter(pk__in=list(old)).delete()


def outbox_sweep(*, now: datetime | None = None) -> int:
    """Dispatch the jobs that are due again, give up on the exhausted, run the sweep hooks.

    Returns how many jobs were dispatched or enqueued.
    """
    now = now or timezone.now()
    visibility_passed = now - timedelta(seconds=settings.OUTBOX_VISIBILITY_SECONDS)
    OutboxJob.objects.filter(
        state=JobState.DISPATCHED,
        attempts__gte=settings.OUTBOX_MAX_ATTEMPTS,
        dispatched_at__lt=visibility_passed,
    ).update(state=JobState.FAILED)
    due = OutboxJob.objects.filter(
        Q(
            state=JobState.PENDING,
            created_at__lt=now - timedelta(seconds=settings.OUTBOX_DISPATCH_GRACE_SECONDS),
        )
        | Q(state=JobState.DISPATCHED, dispatched_at__lt=visibility_passed)
    ).order_by("pk")[: settings.OUTBOX_SWEEP_BATCH]
    moved = 0
    for job in due:
        moved += job_dispatch(job=job)
    _prune_done(now)
    for hook in _sweep_hooks:
        try:
            moved += hook()
        except DatabaseError:
            logger.warning("outbox sweep hook %s: database error", hook.__qualname__)
    return moved
