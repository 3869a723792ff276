"""Signals of the scanning app, and its receivers. Receivers only queue tasks, on commit.

- `scan_finished` is sent (after the commit) when a manifest's report reaches done or
  failed, with `manifest_id`, `status` and `error`; for an index, once every platform
  report has. Promotions listens to it; scanning imports nothing of promotions.
- `vulnerability_data_changed` is sent (after the commit) when the stored reports were
  re-matched against a new active OSV snapshot: what waited for vulnerability data can go on.
- A tag saved as created, or moved to another manifest, queues the scan of its manifest.
- A new manifest that refers to another (`subject`) and may carry an SBOM queues its
  ingestion into the subject's report.
"""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import Signal, receiver

from registry_portal.registry.models import Manifest, Tag

scan_finished = Signal()
vulnerability_data_changed = Signal()


@receiver(post_save, sender=Tag, dispatch_uid="scanning.queue_scan_for_tag")
def queue_scan_for_tag(sender, instance: Tag, created: bool, update_fields=None, **kwargs):
    if not (created or (update_fields and "manifest" in update_fields)):
        return
    from . import tasks

    manifest_id = instance.manifest_id
    transaction.on_commit(lambda: tasks.scan_manifest_task.delay(manifest_id))


@receiver(post_save, sender=Manifest, dispatch_uid="scanning.queue_sbom_for_referrer")
def queue_sbom_for_referrer(sender, instance: Manifest, created: bool, **kwargs):
    if not created or not instance.subject_digest:
        return
    from . import sbom, tasks

    if not sbom.is_sbom_referrer(
        artifact_type=instance.artifact_type, content=bytes(instance.content)
    ):
        return
    subject_digest = instance.subject_digest
    transaction.on_commit(lambda: tasks.sbom_ingest_task.delay(subject_digest))
