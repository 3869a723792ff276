"""Authentication: personal access tokens (Bearer and Token), revoked and expired tokens, and
the browser session with CSRF; 401 versus 403."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from registry_portal.accounts import services as account_services
from tests import factories

from .conftest import error_of


@pytest.fixture
def user(db):
    return factories.make_user("alice")


def _client(header: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    return client


@pytest.mark.parametrize("scheme", ["Bearer", "Token", "bearer"])
def test_a_valid_token_authenticates(user, scheme):
    _, secret = account_services.access_token_create(user=user, name="ci")
    response = _client(f"{scheme} {secret}").get("/api/v1/me/")
    assert response.status_code == 200
    assert response.json()["username"] == "alice"


def test_a_revoked_token_is_refused_with_401(user):
    token, secret = account_services.access_token_create(user=user, name="ci")
    account_services.access_token_revoke(token=token)
    response = _client(f"Bearer {secret}").get("/api/v1/me/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert error_of(response)["code"] == "authentication_failed"


def test_an_expired_token_is_refused_with_401(user):
    token, secret = account_services.access_token_create(
        user=user, name="ci", expires_at=timezone.now() + timedelta(hours=1)
    )
    type(token).objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(1))
    assert _client(f"Bearer {secret}").get("/api/v1/me/").status_code == 401


def test_a_bad_token_is_401_even_on_a_public_endpoint(db):
    response = _client("Bearer rpat_not-a-token").get("/api/v1/repositories/")
    assert response.status_code == 401


def test_a_token_of_an_inactive_user_is_refused(user):
    _, secret = account_services.access_token_create(user=user, name="ci")
    user.is_active = False
    user.save()
    assert _client(f"Bearer {secret}").get("/api/v1/me/").status_code == 401


def test_anonymous_is_401_where_authentication_is_needed(db):
    response = APIClient().get("/api/v1/me/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert error_of(response)["code"] == "not_authenticated"


def test_other_authorization_schemes_are_left_alone(db):
    assert _client("Basic Zm9vOmJhcg==").get("/api/v1/repositories/").status_code == 200


def test_a_session_needs_csrf_for_writes(user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get("/api/v1/me/").status_code == 200
    refused = client.post("/api/v1/me/tokens/", {"name": "from-browser"}, format="json")
    assert refused.status_code == 403
    assert "CSRF" in error_of(refused)["message"]
    assert not user.access_tokens.exists()

    client.get("/admin/login/")  # a page with a form: the browser gets the CSRF cookie
    csrf = client.cookies["csrftoken"].value
    accepted = client.post(
        "/api/v1/me/tokens/", {"name": "from-browser"}, format="json", HTTP_X_CSRFTOKEN=csrf
    )
    assert accepted.status_code == 201
    assert user.access_tokens.get().name == "from-browser"


def test_tokens_list_create_once_and_revoke(user):
    client = APIClient()
    client.force_authenticate(user)
    created = client.post("/api/v1/me/tokens/", {"name": "deploy"}, format="json")
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert secret.startswith("rpat_")
    listed = client.get("/api/v1/me/tokens/").json()["results"]
    assert [t["name"] for t in listed] == ["deploy"]
    assert "secret" not in listed[0]
    assert _client(f"Bearer {secret}").get("/api/v1/me/").status_code == 200

    duplicate = client.post("/api/v1/me/tokens/", {"name": "deploy"}, format="json")
    assert duplicate.status_code == 400
    assert "name" in error_of(duplicate)["fields"]

    token_id = created.json()["id"]
    assert client.delete(f"/api/v1/me/tokens/{token_id}/").status_code == 204
    assert client.get(f"/api/v1/me/tokens/{token_id}/").json()["active"] is False
    assert _client(f"Bearer {secret}").get("/api/v1/me/").status_code == 401


def test_a_user_sees_only_their_own_tokens(user):
    other = factories.make_user("bob")
    token, _ = account_services.access_token_create(user=other, name="bobs")
    client = APIClient()
    client.force_authenticate(user)
    assert client.get("/api/v1/me/tokens/").json()["results"] == []
    assert client.get(f"/api/v1/me/tokens/{token.pk}/").status_code == 404
    assert client.delete(f"/api/v1/me/tokens/{token.pk}/").status_code == 404
