"""The outbox on the database: jobs written with their event, dispatched after the commit
(a broker failure never fails the request), claimed once, marked done by their task, and
dispatched again by the sweeper; the sweep hooks move stale scans and forgotten promotions."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerDown

from promotions import services as promotion_services
from promotions import tasks as promotion_tasks
from promotions.models import PromotionRecord
from registry_portal.accounts.choices import AccessLevel
from registry_portal.outbox import services
from registry_portal.outbox.models import JobState, OutboxJob
from registry_portal.outbox.selectors import outbox_backlog
from registry_portal.registry.models import TagEvent
from registry_portal.registry.services import tag_set
from scanning import tasks as scan_tasks
from scanning.models import ScanReport
from tests import factories
from tests.registry.conftest import registry_settings  # noqa: F401 - used by V2
from tests.registry.helpers import V2, Registry, basic

PROMOTE = promotion_tasks.promote_pushed_tag.name
SCAN = scan_tasks.scan_manifest_task.name
STABLE = [{"field": "tag_name", "operator": "ew", "values": ["stable"]}]


@pytest.fixture
def world(db):
    lead = factories.make_user("lead")
    dev, qa = factories.make_org("dev", admin=lead), factories.make_org("qa", admin=lead)
    source, target = factories.make_repo(dev, "website"), factories.make_repo(qa, "website")
    promotion_services.policy_create(
        actor=lead, source=source, target=target, name="to qa", rules=STABLE
    )
    return {"lead": lead, "source": source, "target": target}


@pytest.fixture
def sweep(django_capture_on_commit_callbacks):
    """A sweep whose hooks' jobs are dispatched (as in autocommit, outside the test's
    transaction)."""

    def _sweep(**kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return services.outbox_sweep(**kwargs)

    return _sweep


def kinds(jobs) -> list[str]:
    return sorted(job.kind for job in jobs)


def test_a_push_writes_its_jobs_in_its_own_transaction(world):
    manifest = factories.make_manifest()
    with pytest.raises(RuntimeError), transaction.atomic():
        tag_set(repository=world["source"], name="1.0-stable", manifest=manifest)
        assert kinds(OutboxJob.objects.all()) == [PROMOTE, SCAN]
        raise RuntimeError("the request fails after the tag was saved")
    assert not OutboxJob.objects.exists()  # rolled back with the tag
    tag_set(repository=world["source"], name="1.0-stable", manifest=manifest)
    jobs = list(OutboxJob.objects.all())
    assert kinds(jobs) == [PROMOTE, SCAN]
    assert {job.state for job in jobs} == {JobState.PENDING}


def test_jobs_are_dispatched_after_the_commit_and_marked_done_by_their_task(
    world, outbox_run_at_once, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        tag_set(repository=world["source"], name="1.0-stable", manifest=factories.make_manifest())
    assert set(OutboxJob.objects.values_list("state", flat=True)) == {JobState.PENDING}
    with django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:
            callback()
    jobs = OutboxJob.objects.filter(kind__in=[PROMOTE, SCAN])
    assert {(job.state, job.attempts) for job in jobs} == {(JobState.DONE, 1)}
    assert all(job.done_at and job.dispatched_at for job in jobs)
    assert world["target"].tags.count() == 1


def test_a_broker_down_at_commit_is_logged_and_left_to_the_sweeper(
    world, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    def broker_down(job):
        raise BrokerDown("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(services, "_publish", broker_down)
    with django_capture_on_commit_callbacks(execute=True):  # would raise into the request
        tag_set(repository=world["source"], name="1.0-stable", manifest=factories.make_manifest())
    assert "not dispatched, the sweeper retries" in caplog.text
    job = OutboxJob.objects.get(kind=PROMOTE)
    assert (job.state, job.attempts, job.dispatched_at) == (JobState.PENDING, 0, None)
    assert "Connection refused" in job.last_error

    published = []
    monkeypatch.setattr(services, "_publish", published.append)
    services.outbox_sweep(now=timezone.now() + timedelta(seconds=3))
    assert kinds(published) == [PROMOTE, SCAN]
    job.refresh_from_db()
    assert (job.state, job.attempts) == (JobState.DISPATCHED, 1)


@V2
@pytest.mark.django_db(transaction=True)
def test_a_manifest_put_answers_201_while_the_broker_is_down(client, monkeypatch, caplog):
    """Before the outbox, the on-commit .delay raised after the commit: a 500, and no job."""

    def broker_down(job):
        raise BrokerDown("Connection refused")

    monkeypatch.setattr(services, "_publish", broker_down)
    user = factories.make_user("pusher")
    org = factories.make_org("dev")
    repository = factories.make_repo(org, "app")
    factories.make_team(org, members=[user], level=AccessLevel.READ_WRITE, repository=repository)
    registry = Registry(client, basic(user))
    registry.push_image("dev/app", "1.0")  # asserts 201
    assert repository.tags.filter(name="1.0").exists()
    assert OutboxJob.objects.filter(kind=SCAN, state=JobState.PENDING).count() == 1
    assert "not dispatched" in caplog.text


def test_the_dispatcher_and_the_sweeper_racing_on_a_job_publish_it_once(world, outbox_published):
    tag_set(repository=world["source"], name="1.0-stable", manifest=factories.make_manifest())
    job = OutboxJob.objects.get(kind=PROMOTE)
    as_read_by_the_sweeper = OutboxJob.objects.get(pk=job.pk)
    assert services.job_dispatch(job=job) is True  # the on-commit dispatch
    assert services.job_dispatch(job=as_read_by_the_sweeper) is False  # claimed already
    assert [published.pk for published in outbox_published] == [job.pk]
    job.refresh_from_db()
    assert job.attempts == 1


def test_a_job_delivered_twice_has_its_effect_once(world, outbox_published):
    """The visibility timeout passed while the first delivery ran: both run, one promotion."""
    tag_set(repository=world["source"], name="1.0-stable", manifest=factories.make_manifest())
    job = OutboxJob.objects.get(kind=PROMOTE)
    services.job_dispatch(job=job)
    services.outbox_sweep(now=timezone.now() + timedelta(hours=1))
    deliveries = [published for published in outbox_published if published.pk == job.pk]
    assert len(deliveries) == 2
    for delivery in deliveries:
        promotion_tasks.promote_pushed_tag.apply(
            args=delivery.args, kwargs={services.JOB_KWARG: job.pk}, throw=True
        )
    assert PromotionRecord.objects.filter(outcome="promoted").count() == 1
    assert TagEvent.objects.filter(repository=world["target"]).count() == 1
    job.refresh_from_db()
    assert (job.state, job.attempts) == (JobState.DONE, 2)
    assert services.job_done(job_id=job.pk) is False  # idempotent


def test_the_sweeper_leaves_young_and_done_jobs_alone_and_gives_up_in_the_end(
    world, outbox_published, settings
):
    settings.OUTBOX_MAX_ATTEMPTS = 2
    tag_set(repository=world["source"], name="1.0-stable", manifest=factories.make_manifest())
    now = timezone.now()
    services.outbox_sweep(now=now)  # within the dispatch grace: the dispatcher's turn
    assert outbox_published == []
    services.outbox_sweep(now=now + timedelta(seconds=settings.OUTBOX_DISPATCH_GRACE_SECONDS + 1))
    assert len(outbox_published) == 2
    scan = OutboxJob.objects.get(kind=SCAN)
    services.job_done(job_id=scan.pk)
    later = now + timedelta(seconds=settings.OUTBOX_VISIBILITY_SECONDS + 10)
    services.outbox_sweep(now=later)
    assert kinds(outbox_published) == [PROMOTE, PROMOTE, SCAN]  # not the done scan
    services.outbox_sweep(now=later + timedelta(seconds=settings.OUTBOX_VISIBILITY_SECONDS + 10))
    promote = OutboxJob.objects.get(kind=PROMOTE)
    assert (promote.state, promote.attempts) == (JobState.FAILED, 2)
    (backlog,) = [row for row in outbox_backlog() if row.kind == PROMOTE]
    assert (backlog.pending, backlog.failed) == (0, 1)


def test_a_stale_scan_claim_is_requeued_by_the_sweeper_and_taken_over(
    world, outbox_published, sweep, settings
):
    from tests.scanning import db_images

    manifest = db_images.push_image(world["source"], [db_images.BASE_LAYER], tag=None)
    report = ScanReport.objects.create(
        manifest=manifest, status="running", attempt=1, started_at=timezone.now()
    )
    sweep()
    assert outbox_published.args(SCAN) == []  # a live claim is left to its job
    assert scan_tasks.scan_manifest_task.apply(args=[manifest.pk]).result is None  # not done
    ScanReport.objects.filter(pk=report.pk).update(
        started_at=timezone.now() - timedelta(seconds=settings.SCAN_STALE_SECONDS + 1)
    )
    sweep()
    assert outbox_published.args(SCAN) == [[manifest.pk]]
    sweep()
    assert outbox_published.args(SCAN) == [[manifest.pk]]  # not twice while unfinished
    (job,) = [job for job in outbox_published if job.kind == SCAN]
    scan_tasks.scan_manifest_task.apply(args=job.args, kwargs={services.JOB_KWARG: job.pk})
    report.refresh_from_db()
    assert (report.status, report.attempt) == ("done", 2)
    assert OutboxJob.objects.get(pk=job.pk).state == JobState.DONE


def test_a_scan_job_that_finds_the_report_running_stays_unfinished(world, outbox_published):
    from tests.scanning import db_images

    manifest = db_images.push_image(world["source"], [db_images.BASE_LAYER], tag=None)
    ScanReport.objects.create(
        manifest=manifest, status="running", attempt=1, started_at=timezone.now()
    )
    job = services.job_enqueue(kind=SCAN, args=[manifest.pk])
    scan_tasks.scan_manifest_task.apply(args=[manifest.pk], kwargs={services.JOB_KWARG: job.pk})
    job.refresh_from_db()
    assert job.state != JobState.DONE  # the sweeper dispatches it again later


def test_promotions_left_waiting_on_a_finished_scan_are_resumed_by_the_sweeper(
    world, outbox_published, sweep
):
    from tests.scanning import db_images

    promotion_services.policy_create(
        actor=world["lead"],
        source=world["source"],
        target=factories.make_repo(world["target"].namespace, "scanned"),
        name="needs a scan",
        rules=[{"field": "vulns_critical", "operator": "eq", "values": ["0"]}],
    )
    manifest = db_images.push_image(world["source"], [db_images.BASE_LAYER], tag="2.0")
    tag = world["source"].tags.get(name="2.0")
    promotion_services.promotions_for_push(
        tag_id=tag.pk, manifest_id=manifest.pk, pushed_at=tag.pushed_at
    )
    waiting = PromotionRecord.objects.get(outcome="waiting")
    # The scan finishes, and its resume job is lost (the process died after the commit).
    ScanReport.objects.create(
        manifest=manifest, status="failed", error="corrupt", finished_at=timezone.now()
    )
    sweep()
    resume = promotion_tasks.resume_waiting_promotions.name
    assert outbox_published.args(resume) == [[manifest.pk, "corrupt"]]
    (job,) = [job for job in outbox_published if job.kind == resume]
    promotion_tasks.resume_waiting_promotions.apply(
        args=job.args, kwargs={services.JOB_KWARG: job.pk}, throw=True
    )
    waiting.refresh_from_db()
    assert (waiting.outcome, waiting.reason) == ("failed", "the image's scan failed: corrupt")
    sweep()
    assert len(outbox_published.args(resume)) == 1  # nothing waits any more
    # A record still waiting after its resumption waits for something else: no new job.
    PromotionRecord.objects.filter(pk=waiting.pk).update(outcome="waiting")
    sweep()
    assert len(outbox_published.args(resume)) == 1


def test_the_sweeper_removes_jobs_done_long_ago(world, outbox_published, settings):
    tag_set(repository=world["source"], name="1.0-stable", manifest=factories.make_manifest())
    scan, promote = OutboxJob.objects.get(kind=SCAN), OutboxJob.objects.get(kind=PROMOTE)
    services.job_done(job_id=scan.pk)
    services.job_done(job_id=promote.pk)
    OutboxJob.objects.filter(pk=scan.pk).update(
        done_at=timezone.now() - timedelta(hours=settings.OUTBOX_KEEP_DONE_HOURS, seconds=1)
    )
    services.outbox_sweep()
    assert list(OutboxJob.objects.values_list("pk", flat=True)) == [promote.pk]


def test_an_unknown_kind_is_refused_at_once(db):
    with pytest.raises(ValueError, match="no Celery task"):
        services.job_enqueue(kind="nowhere.tasks.typo", args=[1])


def test_the_admin_shows_the_backlog_per_kind(world, admin_client, outbox_published):
    tag_set(repository=world["source"], name="1.0-stable", manifest=factories.make_manifest())
    OutboxJob.objects.filter(kind=SCAN).update(created_at=timezone.now() - timedelta(minutes=5))
    page = admin_client.get("/admin/outbox/outboxjob/").content.decode()
    assert "Backlog per kind" in page
    assert SCAN in page and PROMOTE in page
    assert re.search(r"\b30\d s ago", page)  # the oldest scan job, 300 s old
