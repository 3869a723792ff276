"""Receivers of the promotions app. They only queue tasks, and only after the commit.

A tag saved as created, or with a new manifest, is a push (or a promotion into the
repository, which continues a chain): its repository's policies are evaluated. When a
scan finishes (scanning's ``scan_finished``), the promotions that waited for it resume; when
vulnerability data arrives (``vulnerability_data_changed``), those that waited for it do.
"""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from registry_portal.registry.models import Tag
from scanning.signals import scan_finished, vulnerability_data_changed

from . import tasks


@receiver(post_save, sender=Tag, dispatch_uid="promotions.queue_for_tag")
def queue_promotions_for_tag(sender, instance: Tag, created: bool, update_fields=None, **kwargs):
    if not (created or (update_fields and "manifest" in update_fields)):
        return
    args = (instance.pk, instance.manifest_id, instance.pushed_at.isoformat())
    transaction.on_commit(lambda: tasks.promote_pushed_tag.delay(*args))


@receiver(scan_finished, dispatch_uid="promotions.resume_after_scan")
def resume_after_scan(sender, manifest_id: int, status: str, error: str = "", **kwargs):
    reason = (error or "unknown error") if status == "failed" else ""
    transaction.on_commit(lambda: tasks.resume_waiting_promotions.delay(manifest_id, reason))


@receiver(vulnerability_data_changed, dispatch_uid="promotions.resume_after_vulnerability_data")
def resume_after_vulnerability_data(sender, **kwargs):
    transaction.on_commit(tasks.resume_all_waiting_promotions.delay)
