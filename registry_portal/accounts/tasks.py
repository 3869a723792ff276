"""Periodic housekeeping of accounts data."""

from datetime import timedelta

from celery import shared_task

from . import services


@shared_task(acks_late=True, max_retries=3)
def purge_access_tokens(days: int = 30) -> int:
    """Delete access tokens revoked or expired more than ``days`` ago (idempotent)."""
    return services.access_token_purge(older_than=timedelta(days=days))
