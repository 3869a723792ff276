"""Celery tasks of the promotions app. They take ids, re-read rows, and are idempotent."""

from datetime import datetime

from celery import shared_task
from django.contrib.auth import get_user_model
from django.db import InterfaceError, OperationalError

from registry_portal.outbox.tasks import OutboxTask

from . import services
from .models import PromotionPolicy

RETRY = {
    "acks_late": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "max_retries": 5,
    "retry_backoff": True,
    "retry_backoff_max": 60,
}


@shared_task(**RETRY, base=OutboxTask)
def promote_pushed_tag(tag_id: int, manifest_id: int, pushed_at: str) -> list[int]:
    """Evaluate the policies of the repository a tag was pushed to; promote on a match."""
    records = services.promotions_for_push(
        tag_id=tag_id, manifest_id=manifest_id, pushed_at=datetime.fromisoformat(pushed_at)
    )
    return [record.pk for record in records]


@shared_task(**RETRY, base=OutboxTask)
def resume_waiting_promotions(manifest_id: int, scan_failed_reason: str = "") -> int:
    """Decide the promotions that waited for this manifest's scan."""
    return services.promotions_resume_waiting(
        manifest_id=manifest_id, scan_failed_reason=scan_failed_reason
    )


@shared_task(**RETRY, base=OutboxTask)
def resume_all_waiting_promotions() -> int:
    """Vulnerability data arrived: decide the promotions that waited for it."""
    return services.promotions_resume_all_waiting()


@shared_task(**RETRY, base=OutboxTask)
def apply_policy(policy_id: int, actor_id: int) -> int:
    """Save & Apply in the background: evaluate a policy against existing tags."""
    policy = PromotionPolicy.objects.filter(pk=policy_id).first()
    actor = get_user_model().objects.filter(pk=actor_id).first()
    if policy is None or actor is None:
        return 0
    return len(services.policy_apply(actor=actor, policy=policy))
