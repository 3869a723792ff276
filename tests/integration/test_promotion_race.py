"""No promoted image is lost under concurrent pushes: two real workers on the real broker
(Redis and PostgreSQL in CI) race on the same target tags.

- Two quick pushes of ``latest`` (v1 then v2) under a keep-the-tag policy: the target ends on
  v2, because the write happens under the lock of (target, tag) and re-checks that the source
  still holds the evaluated image.
- Pushes of different source tags that render the same target tag (a template without %n):
  every record that says "promoted" points at a target tag holding its digest; the later
  ones got a unique tag.
- The lock, made to matter (PostgreSQL only): while the test holds an uncommitted row of the
  target tag, two jobs for two source tags rendering that tag are both under way. The first
  waits at its insert holding the lock of (target, tag); the second waits for that lock, so
  it sees the first one's tag when it gets it and makes its own unique. Without the lock both
  would see no tag, and the second would overwrite the first when the row is released.
  SQLite has no such lock to test: its transactions are IMMEDIATE, so a writer holds the
  database's one write lock, and an uncommitted row blocks every other writer (the jobs and
  the test's own pushes end in "database is locked"). The first two races run on both.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction
from django.utils import timezone

from promotions import services
from promotions.models import PromotionRecord
from registry_portal.accounts.choices import AccessLevel
from registry_portal.registry.models import Tag
from registry_portal.registry.services import tag_set
from tests import factories
from tests.integration.conftest import wait_for
from tests.services import need
from tests.support.servers import CeleryWorker

ROUNDS = 6


@pytest.fixture
def postgresql():
    """Listed before the worker fixtures: the check comes before any worker starts."""
    need(
        connection.vendor == "postgresql",
        "PostgreSQL (its advisory lock; an uncommitted row blocks every SQLite writer)",
    )


@pytest.fixture
def two_workers(celery_worker_process, tmp_path):
    second = CeleryWorker(celery_worker_process.env, tmp_path / "worker-2.log")
    second.start()
    try:
        yield celery_worker_process, second
    finally:
        second.stop()


def test_concurrent_pushes_lose_no_image(two_workers):
    _race(*two_workers)


def test_a_held_target_tag_makes_the_lock_matter(postgresql, two_workers):
    lead, source, target = _repositories()
    _held_target_tag(lead, source, target)


def _repositories():
    lead = factories.make_user("lead")
    dev, qa = factories.make_org("dev"), factories.make_org("qa")
    source, target = factories.make_repo(dev, "website"), factories.make_repo(qa, "website")
    for org, repository in ((dev, source), (qa, target)):
        factories.make_team(org, members=[lead], level=AccessLevel.ADMIN, repository=repository)
    return lead, source, target


def _race(first_worker, second_worker):
    lead, source, target = _repositories()
    services.policy_create(
        actor=lead,
        source=source,
        target=target,
        name="latest moves",
        rules=[{"field": "tag_name", "operator": "eq", "values": ["latest"]}],
    )
    services.policy_create(
        actor=lead,
        source=source,
        target=target,
        name="one name",
        rules=[{"field": "tag_name", "operator": "sw", "values": ["rc-"]}],
        tag_template="release",
    )

    pushed = 0
    for round_number in range(ROUNDS):
        # Two pushes at once: the same tag twice (a move), and two tags that collide.
        for name in ("latest", "latest"):
            tag_set(repository=source, name=name, manifest=factories.make_manifest())
            pushed += 1
        threads = [
            threading.Thread(target=_push_in_thread, args=(source, f"rc-{round_number}-{side}"))
            for side in ("a", "b")
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        pushed += 2

    def all_decided():
        records = PromotionRecord.objects.all()
        # Each push is evaluated by both policies.
        return records.count() == 2 * pushed and not records.filter(outcome="waiting").exists()

    wait_for(all_decided, timeout=120)
    outputs = first_worker.output() + second_worker.output()
    assert "promote_pushed_tag" in first_worker.output()
    assert "promote_pushed_tag" in second_worker.output(), outputs[-3000:]

    decided = [
        (r.policy_name, r.source_tag, r.outcome, r.target_tag, r.reason)
        for r in PromotionRecord.objects.order_by("pk")
    ]
    # The move: the target holds what the source holds now.
    assert Tag.objects.filter(repository=target, name="latest").exists(), decided
    assert (
        Tag.objects.get(repository=target, name="latest").manifest_id
        == Tag.objects.get(repository=source, name="latest").manifest_id
    )
    for record in PromotionRecord.objects.filter(policy_name="latest moves", source_tag="latest"):
        assert record.outcome in ("promoted", "skipped"), record.reason
        if record.outcome == "skipped":
            assert "superseded" in record.reason

    # The collisions: every "promoted" record points at a tag holding its digest.
    collided = PromotionRecord.objects.filter(policy_name="one name", source_tag__startswith="rc-")
    assert [r.outcome for r in collided] == ["promoted"] * (2 * ROUNDS), decided
    for record in collided:
        held = Tag.objects.get(repository=target, name=record.target_tag)
        assert held.manifest.digest == record.digest, record.reason
    assert len({record.target_tag for record in collided}) == 2 * ROUNDS


class _Release(Exception):
    pass


def _hold_uncommitted_tag(target, held, release):
    """Insert target:held in a transaction that is rolled back on ``release``."""
    try:
        with transaction.atomic():
            Tag.objects.create(
                repository=target,
                name="held",
                manifest=factories.make_manifest(),
                pushed_at=timezone.now(),
            )
            held.set()
            release.wait(60)
            raise _Release
    except _Release:
        pass
    finally:
        connection.close()


def _held_target_tag(lead, source, target):
    services.policy_create(
        actor=lead,
        source=source,
        target=target,
        name="held",
        rules=[{"field": "tag_name", "operator": "sw", "values": ["held-"]}],
        tag_template="held",
    )
    held, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=_hold_uncommitted_tag, args=(target, held, release))
    holder.start()
    try:
        assert held.wait(30)
        for name in ("held-a", "held-b"):
            tag_set(repository=source, name=name, manifest=factories.make_manifest())
        time.sleep(3)  # both jobs are under way and waiting
    finally:
        release.set()
        holder.join()

    def both_decided():
        return (
            PromotionRecord.objects.filter(policy_name="held").exclude(outcome="waiting").count()
            == 2
        )

    wait_for(both_decided, timeout=60)
    records = list(PromotionRecord.objects.filter(policy_name="held"))
    assert [r.outcome for r in records] == ["promoted", "promoted"], [r.reason for r in records]
    for record in records:
        held_tag = Tag.objects.get(repository=target, name=record.target_tag)
        assert held_tag.manifest.digest == record.digest, record.reason
    assert sorted(r.target_tag == "held" for r in records) == [False, True]


def _push_in_thread(repository, name):
    from django.db import connection

    try:
        tag_set(repository=repository, name=name, manifest=factories.make_manifest())
    finally:
        connection.close()
