"""The outbox's side of Celery: the base class of outbox tasks, and the sweeper task."""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.db import DatabaseError

from . import services

logger = logging.getLogger(__name__)


class JobNotFinished(Exception):  # noqa: N818 - a state, not an error
    """Raised by an outbox task whose work is not finished though nothing failed (another
    live job holds it): its job stays unfinished, and the sweeper dispatches it again after
    the visibility timeout."""


class OutboxTask(Task):
    """A task that marks its outbox job done, in its own transaction, once its work is done.

    The job's id comes as the keyword argument ``outbox_job_id`` and is not passed on to
    ``run``. A task called without one (directly, or by ``.delay``) runs as usual.
    """

    # Celery checks the arguments against ``run``, which knows nothing of the job's id:
    # apply_async checks them itself, without it.
    typing = False

    def apply_async(self, args=None, kwargs=None, **options):
        checked = {k: v for k, v in (kwargs or {}).items() if k != services.JOB_KWARG}
        self.__header__(*(args or ()), **checked)
        return super().apply_async(args, kwargs, **options)

    def __call__(self, *args, **kwargs):
        job_id = kwargs.pop(services.JOB_KWARG, None)
        try:
            # self.run, not super().__call__: the worker has pushed the full request (its
            # kwargs keep the job id, so a retry carries it along).
            result = self.run(*args, **kwargs)
        except JobNotFinished as reason:
            logger.info("%s%r not finished yet: %s", self.name, args, reason)
            return None
        if job_id is not None:
            services.job_done(job_id=job_id)
        return result

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        job_id = (kwargs or {}).get(services.JOB_KWARG)
        if job_id is None:
            return
        try:
            services.job_error_record(job_id=job_id, error=f"{type(exc).__name__}: {exc}")
        except DatabaseError:
            logger.warning("outbox job %s: its error was not recorded", job_id)


@shared_task(ignore_result=True)
def outbox_sweep() -> int:
    """Dispatch again what was never dispatched or did not finish; move stale claims on."""
    return services.outbox_sweep()
