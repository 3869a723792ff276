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
