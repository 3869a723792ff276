"""One row per job of follow-up work (a scan, a promotion evaluation, ...)."""

from django.db import models


class JobState(models.TextChoices):
    PENDING = "pending", "pending (not dispatched yet)"
    DISPATCHED = "dispatched", "dispatched"
    DONE = "done", "done"
    FAILED = "failed", "failed (gave up)"


UNFINISHED_STATES = (JobState.PENDING, JobState.DISPATCHED)


class OutboxJob(models.Model):
    """A job written in the transaction of the event that needs it.

    ``kind`` is the name of the Celery task that does it and ``args`` its positional
    arguments (ids, never objects). Dispatching sets ``dispatched_at`` and counts an attempt;
    the task sets ``done_at`` when its work is done. The sweeper dispatches again a job that
    was never dispatched, or that was dispatched longer than the visibility timeout ago and
    is not done.
    """

    kind = models.CharField("kind", max_length=200, help_text="The Celery task's name.")
    args = models.JSONField("arguments", default=list)
    key = models.CharField(
        "key",
        max_length=500,
        help_text="Kind and arguments: an unfinished job is not enqueued twice by the sweeper.",
    )
    state = models.CharField(
        "state", max_length=20, choices=JobState.choices, default=JobState.PENDING
    )
    attempts = models.PositiveIntegerField("attempts", default=0)
    created_at = models.DateTimeField("created", auto_now_add=True)
    dispatched_at = models.DateTimeField("last dispatched", null=True, blank=True)
    done_at = models.DateTimeField("done", null=True, blank=True)
    last_error = models.TextField("last error", blank=True)

    class Meta:
        ordering = ("-id",)
        verbose_name = "outbox job"
        indexes = [
            models.Index(
                fields=("state", "dispatched_at"),
                name="outbox_unfinished_idx",
                condition=models.Q(state__in=["pending", "dispatched"]),
            ),
            models.Index(fields=("key",), name="outbox_key_idx"),
            models.Index(
                fields=("done_at",), name="outbox_done_idx", condition=models.Q(state="done")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind}{tuple(self.args)!r} ({self.state})"
