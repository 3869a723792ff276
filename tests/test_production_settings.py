"""Production settings (issue 11): what PORTAL_URL implies, `check --deploy`, hosts, and the
API's error shape for requests Django itself rejects (an oversized body, a bad host)."""

from __future__ import annotations

import json
import re
import secrets

import pytest
from django.core.exceptions import RequestDataTooBig
from django.test import RequestFactory

from registry_portal.accounts import services as account_services
from registry_portal.api.exceptions import bad_request
from tests import factories
from tests.support.django_process import django_output, django_process

# The deploy checks we keep, and why. Nothing else may appear.
KEPT_DEPLOY_WARNINGS = {
    # HSTS on every subdomain binds names this portal does not serve: the operator opts in
    # with SECURE_HSTS_INCLUDE_SUBDOMAINS=true when the whole domain is HTTPS-only.
    "security.W005": "HSTS for subdomains is the operator's decision",
    # Preloading is close to irreversible (browsers ship the list): SECURE_HSTS_PRELOAD=true
    # when the operator means it.
    "security.W021": "HSTS preload is the operator's decision",
}


def production_env(tmp_path, **extra: str) -> dict[str, str]:
    return {
        "PORTAL_DATA_DIR": str(tmp_path),
        "PORTAL_URL": "https://registry.example.com",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "TRUSTED_PROXY_HEADERS": "true",
        "SECURE_HSTS_SECONDS": "31536000",
        "DATABASE_URL": "postgres://portal@db.example.com:5432/portal",
        "CELERY_BROKER_URL": "redis://redis.example.com:6379/0",
        **extra,
    }


def deploy_check_ids(env: dict[str, str]) -> set[str]:
    result = django_process(env, manage=["check", "--deploy"])
    assert result.returncode == 0, result.stderr
    return set(re.findall(r"\(([a-z_]+\.[WE]\d+)\)", result.stdout + result.stderr))


def test_check_deploy_in_production_warns_only_about_what_we_keep(tmp_path):
    assert deploy_check_ids(production_env(tmp_path)) <= set(KEPT_DEPLOY_WARNINGS)


def test_check_deploy_sees_the_laptop_defaults_as_what_they_are(tmp_path):
    """The checks that pass in production are real: without HTTPS they fire."""
    found = deploy_check_ids({"PORTAL_DATA_DIR": str(tmp_path)})
    assert {"security.W004", "security.W012", "security.W016"} <= found


SHOW = (
    "from django.conf import settings as s\n"
    "import json\n"
    "print(json.dumps({name: getattr(s, name, None) for name in ["
    "'ALLOWED_HOSTS', 'CSRF_TRUSTED_ORIGINS', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE',"
    "'SECURE_PROXY_SSL_HEADER', 'SECURE_HSTS_SECONDS', 'SECURE_SSL_REDIRECT', 'DEBUG']}))\n"
)


def test_an_https_portal_url_secures_cookies_origins_hosts_and_hsts(tmp_path):
    shown = json.loads(
        django_output(production_env(tmp_path, PORTAL_URL="https://registry.example.com/"), SHOW)
    )
    assert shown == {
        "ALLOWED_HOSTS": ["registry.example.com"],
        "CSRF_TRUSTED_ORIGINS": ["https://registry.example.com"],
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SECURE_HSTS_SECONDS": 31536000,
        "SECURE_SSL_REDIRECT": True,
        "DEBUG": False,
    }


def test_without_a_trusted_proxy_forwarded_headers_mean_nothing(tmp_path):
    env = production_env(tmp_path)
    del env["TRUSTED_PROXY_HEADERS"]
    shown = json.loads(django_output(env, SHOW))
    assert shown["SECURE_PROXY_SSL_HEADER"] is None
    assert shown["SECURE_SSL_REDIRECT"] is False  # it could not tell HTTPS from HTTP
    assert shown["SESSION_COOKIE_SECURE"] is True


def test_the_laptop_default_answers_on_loopback_names_only_and_asks_for_no_https(tmp_path):
    shown = json.loads(
        django_output({"PORTAL_DATA_DIR": str(tmp_path), "SECURE_HSTS_SECONDS": "600"}, SHOW)
    )
    assert shown["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1", "[::1]"]
    assert shown["CSRF_TRUSTED_ORIGINS"] == ["http://127.0.0.1:8000"]
    assert shown["SESSION_COOKIE_SECURE"] is False
    assert shown["SECURE_HSTS_SECONDS"] == 0  # HSTS over plain HTTP means nothing


def test_allowed_hosts_from_the_environment_win(tmp_path):
    env = production_env(tmp_path, ALLOWED_HOSTS="registry.example.com,10.0.0.5")
    shown = json.loads(django_output(env, SHOW))
    assert shown["ALLOWED_HOSTS"] == ["registry.example.com", "10.0.0.5"]


@pytest.mark.django_db
def test_a_host_the_portal_is_not_is_refused(client):
    assert client.get("/accounts/login/", HTTP_HOST="evil.example").status_code == 400
    assert client.get("/accounts/login/", HTTP_HOST="localhost").status_code == 200
    api = client.get("/api/v1/organizations/", HTTP_HOST="evil.example")
    assert api.status_code == 400
    assert json.loads(api.content)["error"]["code"] == "bad_request"


# --- the API's errors are always its JSON shape -------------------------------------------


@pytest.mark.django_db
def test_an_oversized_api_body_is_a_json_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    user = factories.make_user("root", is_superuser=True, is_staff=True)
    _, secret = account_services.access_token_create(user=user, name="api")
    body = json.dumps({"name": "x" * 2000})

    response = client.post(
        "/api/v1/organizations/",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {secret}",
    )

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["error"]["code"] == "request_too_large"


def test_django_rejections_outside_the_api_views_keep_the_shape_under_api_only():
    factory = RequestFactory()
    api = bad_request(factory.post("/api/v1/organizations/"), RequestDataTooBig())
    assert api.status_code == 413
    assert json.loads(api.content)["error"]["code"] == "request_too_large"
    page = bad_request(factory.post("/accounts/login/"), RequestDataTooBig())
    assert page.status_code == 400
    assert page["Content-Type"].startswith("text/html")
