"""Receivers of the promotions app. They only queue jobs: an outbox row in the transaction of
the event, dispatched to Celery after the commit.

A tag saved as created, or with a new manifest, is a push (or a promotion into the
repository, which continues a chain): its repository's policies are evaluated. When a
scan finishes (scanning's ``scan_finished``), the promotions that waited for it resume; when
vulnerability data arrives (``vulnerability_data_changed``), those that waited for it do.
"""

from django.db.models.signals import post_save
from django.dispatch import receiver

from registry_portal.outbox.services import job_enqueue
from registry_portal.registry.models import Tag
from scanning.signals import scan_finished, vulnerability_data_changed

from . import tasks


@receiver(post_save, sender=Tag, dispatch_uid="promotions.queue_for_tag")
def queue_promotions_for_tag(sender, instance: Tag, created: bool, update_fields=None, **kwargs):
    if not (created or (update_fields and "manifest" in update_fields)):
        return
    job_enqueue(
        kind=tasks.promote_pushed_tag.name,
        args=[instance.pk, instance.manifest_id, instance.pushed_at.isoformat()],
    )


@receiver(scan_finished, dispatch_uid="promotions.resume_after_scan")
def resume_after_scan(sender, manifest_id: int, status: str, error: str = "", **kwargs):
    # Sent after the scan's commit: the job is its own transaction. Should it be lost in
    # between, the sweeper finds the records still waiting (promotions.sweeps).
    reason = (error or "unknown error") if status == "failed" else ""
    job_enqueue(kind=tasks.resume_waiting_promotions.name, args=[manifest_id, reason])


@receiver(vulnerability_data_changed, dispatch_uid="promotions.resume_after_vulnerability_data")
def resume_after_vulnerability_data(sender, **kwargs):
    job_enqueue(kind=tasks.resume_all_waiting_promotions.name, args=[])
