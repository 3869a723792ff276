"""Throttled authentication (issue 11): failures counted per username and per address on every
path that checks a password or a token, and a 429 with Retry-After in each surface's shape
past the threshold."""

from __future__ import annotations

import base64
import json
import secrets

import pytest
from django.test import Client

from registry_portal.accounts import services as account_services
from tests import factories
from tests.factories import PASSWORD
from tests.services import need, port_open
from tests.support.django_process import django_output

pytestmark = pytest.mark.django_db

LIMIT = 3


@pytest.fixture(autouse=True)
def _small_threshold(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.PORTAL_URL = "http://registry.test"
    settings.REGISTRY_TOKEN_SERVICE = "registry.test"


@pytest.fixture
def alice(db):
    return factories.make_user("alice")


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def token_get(username: str, password: str, address: str = "10.0.0.1"):
    return Client().get(
        "/auth/token",
        {"service": "registry.test"},
        HTTP_AUTHORIZATION=basic(username, password),
        REMOTE_ADDR=address,
    )


def v2_get(username: str, password: str, address: str = "10.0.0.1"):
    return Client().get("/v2/", HTTP_AUTHORIZATION=basic(username, password), REMOTE_ADDR=address)


def assert_oci_429(response) -> None:
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response["Content-Type"] == "application/json"
    assert response["Docker-Distribution-API-Version"] == "registry/2.0"
    assert [e["code"] for e in json.loads(response.content)["errors"]] == ["TOOMANYREQUESTS"]


# --- each surface -----------------------------------------------------------------------------


def test_token_service_answers_429_past_the_threshold_even_to_the_right_password(alice):
    answers = [token_get("alice", "wrong").status_code for _ in range(LIMIT - 1)]
    assert answers == [401] * (LIMIT - 1)

    assert_oci_429(token_get("alice", "wrong"))
    assert_oci_429(token_get("alice", PASSWORD))
    # The OAuth2 form of the token service too.
    response = Client().post(
        "/auth/token",
        {"grant_type": "password", "username": "alice", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.1",
    )
    assert_oci_429(response)


def test_v2_basic_auth_answers_429_past_the_threshold(alice):
    assert v2_get("alice", PASSWORD).status_code == 200
    for _ in range(LIMIT - 1):
        assert v2_get("alice", "wrong").status_code == 401
    assert_oci_429(v2_get("alice", "wrong"))
    # The password checked a moment ago is remembered in this process; still refused.
    assert_oci_429(v2_get("alice", PASSWORD))


def test_a_personal_access_token_as_registry_password_is_throttled_too(alice):
    _, secret = account_services.access_token_create(user=alice, name="ci")
    for _ in range(LIMIT):
        v2_get("alice", "rpat_wrong")
    assert_oci_429(v2_get("alice", secret))


def test_the_login_page_answers_a_plain_429(alice):
    client = Client(REMOTE_ADDR="10.0.0.2")
    for _ in range(LIMIT - 1):
        response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    # A success in between (a redirect) resets nothing.
    signed_in = Client(REMOTE_ADDR="10.0.0.2")
    response = signed_in.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert response.status_code == 429
    assert response["Content-Type"].startswith("text/plain")
    assert int(response["Retry-After"]) > 0
    assert b"Too many failed sign-in attempts" in response.content


def test_the_admin_login_answers_429(alice):
    client = Client(REMOTE_ADDR="10.0.0.3")
    statuses = [
        client.post("/admin/login/", {"username": "alice", "password": "wrong"}).status_code
        for _ in range(LIMIT)
    ]
    assert statuses == [200] * (LIMIT - 1) + [429]


def test_api_tokens_are_throttled_per_address_with_the_api_error_shape(alice):
    _, secret = account_services.access_token_create(user=alice, name="api")
    client = Client(REMOTE_ADDR="10.0.0.4")
    assert (
        client.get("/api/v1/organizations/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code
        == 200
    )
    statuses = [
        client.get("/api/v1/organizations/", HTTP_AUTHORIZATION="Bearer rpat_guess").status_code
        for _ in range(LIMIT)
    ]
    assert statuses == [401] * (LIMIT - 1) + [429]

    response = client.get("/api/v1/organizations/", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert json.loads(response.content)["error"]["code"] == "throttled"
    # Another address is not affected.
    other = Client(REMOTE_ADDR="10.0.0.5")
    assert (
        other.get("/api/v1/organizations/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code
        == 200
    )


# --- what is counted --------------------------------------------------------------------------


def test_failures_count_per_username_across_addresses(alice):
    factories.make_user("bob")
    for number in range(LIMIT):
        token_get("alice", "wrong", address=f"10.1.0.{number}")
    assert_oci_429(token_get("alice", PASSWORD, address="10.1.0.99"))
    # The addresses themselves are below the threshold: bob signs in from one of them.
    assert token_get("bob", PASSWORD, address="10.1.0.0").status_code == 200


def test_failures_count_per_address_across_usernames(alice):
    for number in range(LIMIT):
        token_get(f"nobody{number}", "wrong", address="10.2.0.1")
    assert_oci_429(token_get("alice", PASSWORD, address="10.2.0.1"))
    assert token_get("alice", PASSWORD, address="10.2.0.2").status_code == 200


def test_a_success_does_not_reset_another_address_count(alice):
    for _ in range(LIMIT - 1):
        token_get("alice", "wrong", address="10.3.0.1")
    assert token_get("alice", PASSWORD, address="10.3.0.2").status_code == 200
    assert_oci_429(token_get("alice", "wrong", address="10.3.0.1"))


def test_a_username_that_looks_like_an_address_does_not_lock_that_address_out(alice):
    for number in range(LIMIT):
        token_get("10.4.0.9", "wrong", address=f"10.4.1.{number}")
    assert token_get("alice", PASSWORD, address="10.4.0.9").status_code == 200


def test_behind_a_trusted_proxy_the_forwarded_address_counts(alice, settings):
    settings.TRUSTED_PROXY_HEADERS = True

    def through_proxy(client_address: str, username: str, password: str):
        return Client().get(
            "/v2/",
            HTTP_AUTHORIZATION=basic(username, password),
            REMOTE_ADDR="192.168.0.1",  # the proxy
            HTTP_X_FORWARDED_FOR=f"1.2.3.4, {client_address}",  # the first part is the client's say
        )

    for number in range(LIMIT):
        # A different username each time: only the address counts up.
        through_proxy("10.5.0.1", f"nobody{number}", "wrong")
    assert_oci_429(through_proxy("10.5.0.1", "alice", PASSWORD))
    # Another client behind the same proxy is not locked out.
    assert through_proxy("10.5.0.2", "alice", PASSWORD).status_code == 200


# --- where the counters live ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "backend"),
    [
        ({}, "django.core.cache.backends.db.DatabaseCache"),
        (
            {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/12"},
            "registry_portal.cache.RedisWithDatabaseFallback",
        ),
        (
            {"CACHE_URL": "redis://127.0.0.1:6379/12"},
            "registry_portal.cache.RedisWithDatabaseFallback",
        ),
        (
            {"CELERY_BROKER_URL": "redis://127.0.0.1:6379/12", "CACHE_URL": "db://"},
            "django.core.cache.backends.db.DatabaseCache",
        ),
    ],
)
def test_the_counters_live_in_a_cache_every_process_shares(env, backend, tmp_path):
    code = (
        "from django.conf import settings; print(settings.CACHES[settings.AXES_CACHE]['BACKEND'])"
    )
    assert django_output({"PORTAL_DATA_DIR": str(tmp_path), **env}, code) == backend


@pytest.mark.parametrize("cache", ["db", "redis"])
def test_failures_counted_in_one_process_lock_out_in_another(cache, tmp_path):
    """Two processes: what one counts, the other sees (the laptop's database cache; Redis)."""
    env = {"PORTAL_DATA_DIR": str(tmp_path), "AUTH_THROTTLE_FAILURES": str(LIMIT)}
    if cache == "redis":
        need(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
        env["CACHE_URL"] = "redis://127.0.0.1:6379/12"
    # Fresh names and addresses: counters in Redis outlive the test (nothing is flushed).
    tag = secrets.token_hex(4)
    carol, dave = f"carol-{tag}", f"dave-{tag}"
    net = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    fail = (
        "from django.core.management import call_command\n"
        "from django.test import RequestFactory\n"
        "from registry_portal.accounts import throttling\n"
        "call_command('createcachetable', verbosity=0)\n"
        f"request = RequestFactory().get('/v2/', REMOTE_ADDR='{net}.1')\n"
        f"for _ in range({LIMIT}): throttling.record_failure(request, username='{carol}')\n"
        "print(request.axes_locked_out)\n"
    )
    assert django_output(env, fail) == "True"
    check = (
        "from django.test import RequestFactory\n"
        "from registry_portal.accounts import throttling\n"
        "def locked(address, username):\n"
        "    request = RequestFactory().get('/v2/', REMOTE_ADDR=address)\n"
        "    return throttling.is_locked_out(request, username=username)\n"
        f"print(locked('{net}.2', '{carol}'), locked('{net}.1', '{dave}'),\n"
        f"      locked('{net}.3', '{dave}'))\n"
    )
    assert django_output(env, check) == "True True False"
