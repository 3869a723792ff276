"""The transactional outbox: follow-up work recorded in the transaction of the event that
needs it, dispatched to Celery after the commit, marked done by the task, and re-dispatched
by a periodic sweeper when it was never dispatched or did not finish in time.

The lowest floor of the project: it imports no other app, and every app may use it. An app
enqueues with ``registry_portal.outbox.services.job_enqueue``; its tasks take
``base=OutboxTask`` (``registry_portal.outbox.tasks``); what its own rows need to be moved
along (stale claims, records left waiting) it registers with ``sweep_hook_register``.
"""
