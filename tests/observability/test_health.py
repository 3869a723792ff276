"""/-/healthy asks nothing; /-/ready checks the database, the broker and storage, fast."""

import time

import pytest

from tests.services import need, port_open


def test_healthy_answers_without_the_database(client, settings):
    # No `db` fixture: a database query would fail this test.
    response = client.get("/-/healthy")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db(transaction=True)
def test_ready_when_everything_answers(client, settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "blobs": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "blobs")},
        },
    }
    response = client.get("/-/ready")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "broker", "storage"}
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.django_db(transaction=True)
def test_a_broker_that_does_not_answer_is_named_and_the_answer_is_fast(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"  # the discard port: refused
    started = time.monotonic()
    response = client.get("/-/ready")
    assert time.monotonic() - started < settings.HEALTH_READY_TIMEOUT + 1
    body = response.json()
    assert response.status_code == 503
    assert body["failed"] == ["broker"]
    assert body["checks"]["database"]["ok"] and body["checks"]["storage"]["ok"]


@pytest.mark.django_db(transaction=True)
def test_a_check_that_hangs_is_cut_off_at_the_timeout(client, settings, monkeypatch):
    from registry_portal.observability import health

    settings.HEALTH_READY_TIMEOUT = 0.3
    monkeypatch.setitem(health.CHECKS, "storage", lambda: time.sleep(2))
    started = time.monotonic()
    response = client.get("/-/ready")
    assert time.monotonic() - started < 1.0
    assert response.status_code == 503
    assert response.json()["failed"] == ["storage"]
    assert "no answer within 0.3 s" in response.json()["checks"]["storage"]["error"]


@pytest.mark.django_db(transaction=True)
def test_broken_storage_is_named(client, settings, tmp_path):
    location = tmp_path / "blobs"
    location.write_text("a file where the blob directory should be")
    settings.STORAGES = {
        **settings.STORAGES,
        "blobs": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location)},
        },
    }
    response = client.get("/-/ready")
    assert response.status_code == 503
    assert response.json()["failed"] == ["storage"]


@pytest.mark.django_db(transaction=True)
def test_ready_with_redis(client, settings):
    need(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/15"
    response = client.get("/-/ready")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["broker"]["detail"] == "redis ping"
