"""Save & Apply, the OSV re-match and the OSV sync are outbox jobs too: with the broker down,
the request that queues them still succeeds after its commit, and the work runs once the
sweeper dispatches it.

The broker is down at kombu's producer, below Celery: ``.delay`` and the outbox's publish
both fail there, as they do when Redis refuses connections (before these kinds were outbox
jobs, the on-commit ``.delay`` raised into the request after its commit: a 500)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from celery import current_app
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerDown
from kombu.messaging import Producer
from rest_framework.test import APIClient

from promotions import services as promotion_services
from promotions import tasks as promotion_tasks
from promotions.models import PromotionRecord
from registry_portal.outbox import services
from registry_portal.outbox.models import JobState, OutboxJob
from registry_portal.registry.services import tag_set
from scanning import services as scanning_services
from scanning import tasks as scanning_tasks
from scanning.models import OsvSnapshot
from tests import factories
from tests.scanning import db_images

APPLY = promotion_tasks.apply_policy.name
REMATCH = scanning_tasks.rematch_task.name
OSV_SYNC = scanning_tasks.osv_sync_task.name
STABLE = [{"field": "tag_name", "operator": "ew", "values": ["stable"]}]


@pytest.fixture
def broker_down(monkeypatch):
    def refused(self, *args, **kwargs):
        raise BrokerDown("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(Producer, "publish", refused)


def broker_back_running(monkeypatch, kind: str) -> list[OutboxJob]:
    """The broker is back: jobs of ``kind`` run at once, as a worker would run them; the
    others (the push's own scan and promotion) are only recorded. Returns those."""
    others: list[OutboxJob] = []

    def publish(job):
        if job.kind != kind:
            others.append(job)
            return
        current_app.tasks[job.kind].apply(
            args=list(job.args), kwargs={services.JOB_KWARG: job.pk}, throw=True
        )

    monkeypatch.setattr(services, "_publish", publish)
    return others


def sweep_later() -> int:
    return services.outbox_sweep(now=timezone.now() + timedelta(minutes=1))


def api_client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.mark.django_db(transaction=True)
def test_save_and_apply_answers_202_with_the_broker_down_and_applies_once_swept(
    broker_down, monkeypatch, caplog
):
    lead = factories.make_user("lead")
    dev, qa = factories.make_org("dev", admin=lead), factories.make_org("qa", admin=lead)
    source, target = factories.make_repo(dev, "website"), factories.make_repo(qa, "website")
    tag_set(repository=source, name="1.0-stable", manifest=factories.make_manifest())
    policy = promotion_services.policy_create(
        actor=lead, source=source, target=target, name="to qa", rules=STABLE
    )

    response = api_client(lead).post(f"/api/v1/policies/{policy.pk}/apply/")
    assert response.status_code == 202, response.content
    assert "not dispatched, the sweeper retries" in caplog.text
    job = OutboxJob.objects.get(kind=APPLY)
    assert (job.args, job.state) == ([policy.pk, lead.pk], JobState.PENDING)
    assert "Connection refused" in job.last_error
    assert not PromotionRecord.objects.exists()

    broker_back_running(monkeypatch, APPLY)
    sweep_later()
    job.refresh_from_db()
    assert (job.state, job.attempts) == (JobState.DONE, 1)
    (record,) = PromotionRecord.objects.filter(trigger="apply")
    assert (record.source_tag, record.outcome) == ("1.0-stable", "promoted")
    assert list(target.tags.values_list("manifest_id", flat=True)) == [
        source.tags.get().manifest_id
    ]
    sweep_later()  # done: not dispatched again
    assert PromotionRecord.objects.filter(trigger="apply").count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_osv_upload_answers_201_with_the_broker_down_and_rematches_once_swept(
    broker_down, monkeypatch
):
    first = scanning_services.osv_import_zip(
        path_or_file=db_images.osv_zip(db_images.STANDARD_RECORDS), source="v1.zip"
    )
    repository = factories.make_repo(factories.make_org("dev"), "app")
    manifest = db_images.push_image(repository, [db_images.BASE_LAYER])
    report = scanning_services.scan_manifest(manifest_id=manifest.pk)
    assert report.snapshot_id == first.pk
    OutboxJob.objects.filter(kind=REMATCH).delete()  # the first import's, not looked at here

    admin = factories.make_user("root", is_staff=True, is_superuser=True)
    archive = db_images.osv_zip(db_images.STANDARD_RECORDS[:1]).getvalue()
    response = api_client(admin).post(
        "/api/v1/osv-snapshots/upload/",
        {"archive": SimpleUploadedFile("all.zip", archive)},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    second = OsvSnapshot.objects.get(is_active=True)
    job = OutboxJob.objects.get(kind=REMATCH)
    assert (job.args, job.state) == ([second.pk], JobState.PENDING)
    report.refresh_from_db()
    assert report.snapshot_id == first.pk  # not matched again yet

    broker_back_running(monkeypatch, REMATCH)
    sweep_later()
    job.refresh_from_db()
    assert job.state == JobState.DONE
    report.refresh_from_db()
    assert report.snapshot_id == second.pk


@pytest.mark.django_db(transaction=True)
def test_an_osv_sync_answers_202_with_the_broker_down(broker_down, settings):
    settings.OSV_SYNC_URL = "https://osv.example/all.zip"
    admin = factories.make_user("root", is_staff=True, is_superuser=True)
    response = api_client(admin).post("/api/v1/osv-snapshots/sync/")
    assert response.status_code == 202, response.content
    job = OutboxJob.objects.get(kind=OSV_SYNC)
    assert (job.args, job.state) == ([], JobState.PENDING)


def test_these_kinds_mark_their_job_done(db, outbox_run_at_once, settings):
    """Each task is an OutboxTask: it takes the job's id and marks the job done."""
    settings.OSV_SYNC_URL = ""
    for kind, args in ((REMATCH, [0]), (OSV_SYNC, [])):
        job = services.job_enqueue(kind=kind, args=args)
        services.job_dispatch(job=job)
        job.refresh_from_db()
        assert job.state == JobState.DONE, kind
