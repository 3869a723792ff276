"""The Celery wiring, proved with a real worker process on the real broker."""

import os
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from registry_portal.accounts import services
from registry_portal.accounts.models import AccessToken
from registry_portal.accounts.tasks import purge_access_tokens
from tests import factories
from tests.integration.conftest import wait_for
from tests.services import services_required


def test_ci_uses_postgresql_and_a_real_broker():
    """With REQUIRE_SERVICES=1 (CI) the suite must run on PostgreSQL and Redis, not defaults."""
    if not services_required():
        pytest.skip("only meaningful with REQUIRE_SERVICES=1")
    assert connection.vendor == "postgresql", os.environ.get("DATABASE_URL")
    assert settings.CELERY_BROKER_URL.startswith("redis://")


def test_a_real_worker_runs_a_task_and_writes_the_database(celery_worker_process):
    user = factories.make_user()
    old, _ = services.access_token_create(user=user, name="old")
    kept, _ = services.access_token_create(user=user, name="kept")
    services.access_token_revoke(token=old)
    AccessToken.objects.filter(pk=old.pk).update(revoked_at=timezone.now() - timedelta(days=90))

    purge_access_tokens.delay(days=30)

    wait_for(lambda: not AccessToken.objects.filter(pk=old.pk).exists(), timeout=60)
    assert AccessToken.objects.filter(pk=kept.pk).exists()
    assert "purge_access_tokens" in celery_worker_process.output()


def test_every_scheduled_task_exists():
    """A typo in the beat schedule would only show in production, once a day."""
    from registry_portal.celery import app

    app.loader.import_default_modules()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks, entry["task"]
    assert "registry_portal.registry.tasks.expire_uploads" in {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }


def test_a_worker_started_without_queues_takes_tasks_of_the_scans_queue(celery_worker_process):
    """Scanning's tasks go to their own queue (settings.CELERY_TASK_ROUTES); a worker started
    as `make run` and the integration tests start it (no -Q) must still serve it."""
    from registry_portal.celery import app
    from scanning.tasks import rematch_task

    assert app.amqp.router.route({}, rematch_task.name)["queue"].name == "scans"
    result = rematch_task.delay(snapshot_id=0)

    wait_for(lambda: f"[{result.id}] succeeded" in celery_worker_process.output(), timeout=60)
