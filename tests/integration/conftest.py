"""Fixtures for integration tests: a real Celery worker process on the configured broker,
using the test database (committed data, so tests use ``transactional_db``)."""

import os
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.services import need, port_open
from tests.support.servers import CeleryWorker

ROOT = Path(__file__).resolve().parents[2]


def database_url_for_tests() -> str:
    """A DATABASE_URL that points a child process at pytest-django's test database."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = db.get("HOST") or ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{db['NAME']}"


def broker_available() -> bool:
    url = settings.CELERY_BROKER_URL
    if url.startswith("redis://"):
        hostport = url.split("//", 1)[1].split("/", 1)[0]
        host, _, port = hostport.rpartition(":")
        return port_open(host or "127.0.0.1", int(port or 6379))
    return True


def wait_for(predicate, *, timeout: float = 30.0, interval: float = 0.1):
    """Poll until ``predicate()`` is truthy; returns its value or fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {predicate}")


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path):
    """Start a real worker against the real broker and the test database."""
    need(broker_available(), f"the Celery broker at {settings.CELERY_BROKER_URL}")
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url_for_tests()
    env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
    env["PORTAL_DATA_DIR"] = str(settings.DATA_DIR)
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    from registry_portal.celery import app

    app.control.purge()  # leftovers of an earlier, interrupted run
    worker = CeleryWorker(env, tmp_path / "worker.log")
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
