"""Celery tasks of the registry; the scheduler runs ``expire_uploads`` hourly (settings)."""

from celery import shared_task

from . import services


@shared_task(acks_late=True, max_retries=3, autoretry_for=(OSError,), retry_backoff=True)
def expire_uploads() -> int:
    """Remove uploads idle for longer than REGISTRY_UPLOAD_TTL_HOURS (idempotent)."""
    return services.uploads_expire()
