"""Shared fixtures."""

import pytest

from tests import factories


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2 costs ~0.3 s a user: tests that make many users use a fast hasher."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _empty_cache(settings):
    """Each test starts with empty caches (remembered credentials, throttling counters).

    The shared cache is a fresh in-process one for each test: the configured one (the
    database, or Redis in CI) would carry counters from test to test, and clearing Redis
    would empty the broker's database. tests/accounts/test_throttling.py checks the real
    ones across processes.
    """
    from axes.handlers.proxy import AxesProxyHandler
    from django.core.cache import caches

    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "tests-shared",
        },
    }
    caches["default"].clear()
    caches["credentials"].clear()
    # axes keeps the cache it was built with: rebuild it on the test's cache.
    AxesProxyHandler.implementation = None
    yield
    AxesProxyHandler.implementation = None


@pytest.fixture
def make_user(db):
    return factories.make_user


@pytest.fixture
def make_org(db):
    return factories.make_org


@pytest.fixture
def make_repo(db):
    return factories.make_repo


@pytest.fixture
def eager_tasks():
    """Run queued Celery tasks in this process (on-commit callbacks still need capturing, or
    run at once outside a transaction); yields the promotions tasks module."""
    from promotions import tasks
    from registry_portal.celery import app as celery_app

    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    try:
        yield tasks
    finally:
        celery_app.conf.task_always_eager = False
        celery_app.conf.task_eager_propagates = False


class PublishedJobs(list):
    """Outbox jobs as they were dispatched (instead of being sent to the broker)."""

    def args(self, kind_suffix: str) -> list[list]:
        """The arguments of the dispatched jobs whose kind (task name) ends with the suffix."""
        return [job.args for job in self if job.kind.endswith(kind_suffix)]


@pytest.fixture
def outbox_published(monkeypatch):
    """Dispatched outbox jobs are recorded, not sent: yields the list of jobs."""
    from registry_portal.outbox import services as outbox_services

    published = PublishedJobs()
    monkeypatch.setattr(outbox_services, "_publish", published.append)
    return published


@pytest.fixture
def outbox_run_at_once(monkeypatch):
    """Dispatched outbox jobs run at once, in this process (as a worker would run them)."""
    from celery import current_app

    from registry_portal.outbox import services as outbox_services

    def run(job):
        current_app.tasks[job.kind].apply(
            args=list(job.args), kwargs={outbox_services.JOB_KWARG: job.pk}, throw=True
        )

    monkeypatch.setattr(outbox_services, "_publish", run)
