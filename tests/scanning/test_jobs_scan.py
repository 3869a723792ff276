"""Scan jobs: queued on commit by tag saves, retried on request, announced when finished."""

from __future__ import annotations

import pytest
from django.dispatch import receiver

from registry_portal.errors import ValidationFailed
from registry_portal.outbox import services as outbox_services
from registry_portal.registry import services as registry_services
from scanning import services, tasks
from scanning.models import ScanReport
from scanning.signals import scan_finished
from tests.scanning import db_images

pytestmark = pytest.mark.django_db


@pytest.fixture
def repository(make_org, make_repo):
    return make_repo(make_org())


@pytest.fixture
def queued(outbox_published):
    """The manifest ids of the scan jobs dispatched (a function: read it when needed)."""
    return lambda: [args[0] for args in outbox_published.args(tasks.scan_manifest_task.name)]


@pytest.fixture
def announced():
    events: list[dict] = []

    @receiver(scan_finished, weak=False, dispatch_uid="test-announced")
    def record(sender, **kwargs):
        events.append({key: kwargs[key] for key in ("manifest_id", "status", "error")})

    yield events
    scan_finished.disconnect(dispatch_uid="test-announced")


def test_a_tag_push_queues_the_scan_after_the_commit(
    repository, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        manifest = db_images.push_image(repository, [db_images.BASE_LAYER])
    assert queued() == []  # nothing before the commit
    for callback in callbacks:
        callback()
    assert queued() == [manifest.pk]


def test_a_second_tag_on_the_same_manifest_does_not_rescan(
    repository, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        manifest = db_images.push_image(repository, [db_images.BASE_LAYER], tag="one")
    report = services.scan_manifest(manifest_id=manifest.pk)
    with django_capture_on_commit_callbacks(execute=True):
        registry_services.tag_set(repository=repository, name="two", manifest=manifest)
    assert queued() == [manifest.pk, manifest.pk]  # the job is queued...
    again = services.scan_manifest(manifest_id=manifest.pk)
    assert (again.pk, again.attempt, again.finished_at) == (
        report.pk,
        1,
        report.finished_at,
    )  # ...and finds nothing to do


def test_pushing_by_digest_queues_nothing(repository, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        db_images.push_image(repository, [db_images.BASE_LAYER], tag=None)
    assert queued() == []


def test_scan_finished_is_sent_after_the_commit(
    repository, announced, django_capture_on_commit_callbacks
):
    manifest = db_images.push_image(repository, [db_images.BASE_LAYER])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.scan_manifest(manifest_id=manifest.pk)
    assert announced == []
    for callback in callbacks:
        callback()
    assert announced == [{"manifest_id": manifest.pk, "status": "done", "error": ""}]


def test_an_index_is_announced_once_all_platforms_are_done(
    repository, announced, django_capture_on_commit_callbacks
):
    amd = db_images.push_image(repository, [db_images.BASE_LAYER], tag=None, salt="a")
    arm = db_images.push_image(repository, [db_images.PYTHON_LAYER], tag=None, salt="b")
    index = db_images.push_index(repository, [(amd, "linux/amd64"), (arm, "linux/arm64")])
    with django_capture_on_commit_callbacks(execute=True):
        services.scan_manifest(manifest_id=index.pk)
    assert [event["manifest_id"] for event in announced] == [amd.pk, arm.pk, index.pk]
    assert announced[-1]["status"] == "done"


def test_a_failed_scan_is_retried_on_request(
    repository, announced, monkeypatch, django_capture_on_commit_callbacks
):
    manifest = db_images.push_image(repository, [db_images.BASE_LAYER])
    monkeypatch.setattr(services, "catalog", lambda tree, distro=None: 1 / 0)
    with django_capture_on_commit_callbacks(execute=True):
        report = services.scan_manifest(manifest_id=manifest.pk)
    assert report.status == "failed"
    assert "ZeroDivisionError" in report.error
    assert announced[-1]["status"] == "failed"
    monkeypatch.undo()
    published = []
    monkeypatch.setattr(outbox_services, "_publish", published.append)

    with django_capture_on_commit_callbacks(execute=True):
        services.scan_retry(report=report)
    report.refresh_from_db()
    assert (report.status, report.error) == ("queued", "")
    assert [(job.kind, job.args) for job in published] == [
        (tasks.scan_manifest_task.name, [manifest.pk])
    ]
    tasks.scan_manifest_task(manifest.pk)
    report.refresh_from_db()
    assert (report.status, report.attempt) == ("done", 2)
    with pytest.raises(ValidationFailed):
        services.scan_retry(report=report)


def test_retrying_a_failed_platform_completes_its_index(
    repository, announced, monkeypatch, django_capture_on_commit_callbacks
):
    amd = db_images.push_image(repository, [db_images.BASE_LAYER], tag=None, salt="a")
    arm = db_images.push_image(repository, [db_images.PYTHON_LAYER], tag=None, salt="b")
    index = db_images.push_index(repository, [(amd, "linux/amd64"), (arm, "linux/arm64")])
    real_inventory = services.image_inventory

    def fail_for_arm(*, manifest):
        if manifest.pk == arm.pk:
            raise services.ScanError("temporary trouble")
        return real_inventory(manifest=manifest)

    monkeypatch.setattr(services, "image_inventory", fail_for_arm)
    services.scan_manifest(manifest_id=index.pk)
    assert ScanReport.objects.get(manifest=index).status == "failed"
    monkeypatch.undo()
    monkeypatch.setattr(tasks.scan_manifest_task, "delay", lambda manifest_id: None)

    services.scan_retry(report=ScanReport.objects.get(manifest=arm))
    with django_capture_on_commit_callbacks(execute=True):
        services.scan_manifest(manifest_id=arm.pk)
    index_report = ScanReport.objects.get(manifest=index)
    assert (index_report.status, index_report.error) == ("done", "")
    assert announced[-1] == {"manifest_id": index.pk, "status": "done", "error": ""}


def test_a_database_error_propagates_for_the_task_to_retry(repository, monkeypatch):
    from django.db import OperationalError

    manifest = db_images.push_image(repository, [db_images.BASE_LAYER])

    def locked(**kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(services, "image_inventory", locked)
    with pytest.raises(OperationalError):
        services.scan_manifest(manifest_id=manifest.pk)
    assert ScanReport.objects.get(manifest=manifest).status == "queued"  # the retry claims it
    assert tasks.scan_manifest_task.max_retries == 5
    assert tasks.scan_manifest_task.acks_late is True
