"""The token service at /auth/token: credentials, grants (the permission matrix), refresh."""

import base64
import datetime
from dataclasses import dataclass

import jwt
import pytest
from django.test import Client
from django.utils import timezone

from registry_portal.accounts import services as account_services
from registry_portal.accounts.choices import AccessLevel
from registry_portal.accounts.models import AccessToken, Organization
from registry_portal.accounts.permissions import personal_namespace_name
from registry_portal.registry import tokens
from tests import factories

SERVICE = "registry.test:5000"
URL = "/auth/token"
PUSH_ALL = "pull,push,delete"


@pytest.fixture(autouse=True)
def token_settings(settings, tmp_path):
    settings.REGISTRY_TOKEN_KEY_FILE = tmp_path / "keys" / "token.key"
    settings.REGISTRY_TOKEN_CERT_FILE = tmp_path / "keys" / "token.crt"
    settings.REGISTRY_TOKEN_SERVICE = SERVICE
    settings.REGISTRY_TOKEN_ISSUER = "test-issuer"
    # Real hashing costs about a second per user and login; the hasher is not under test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def get_token(client: Client, *scopes: str, user=None, password=factories.PASSWORD, **params):
    headers = {"Authorization": _basic(user.username, password)} if user is not None else {}
    query = {"service": SERVICE, "scope": list(scopes), **params}
    return client.get(URL, query, headers=headers)


def granted(response) -> dict[str, list[str]]:
    """``{name: actions}`` from the token of a 200 answer, after verifying the token."""
    assert response.status_code == 200, response.content
    claims = tokens.decode_token(response.json()["token"])
    return {entry["name"]: entry["actions"] for entry in claims["access"]}


# --- The permission matrix --------------------------------------------------------------


@dataclass
class World:
    users: dict
    org: Organization
    personal: Organization


@pytest.fixture
def world(db) -> World:
    """acme with one user per role, public and private repositories; a personal namespace."""
    org_admin = factories.make_user("orgadmin")
    org = factories.make_org("acme", admin=org_admin)
    users = {
        "anonymous": None,
        "outsider": factories.make_user("outsider"),
        "read-only": factories.make_user("reader"),
        "read-write": factories.make_user("writer"),
        "admin-team": factories.make_user("teamadmin"),
        "org-admin": org_admin,
        "superuser": factories.make_user("root", is_superuser=True, is_staff=True),
        "owner": factories.make_user("olivia"),
    }
    factories.make_team(org, members=[users["read-only"]], level=AccessLevel.READ_ONLY)
    factories.make_team(org, members=[users["read-write"]], level=AccessLevel.READ_WRITE)
    factories.make_team(org, members=[users["admin-team"]], level=AccessLevel.ADMIN)
    factories.make_repo(org, "public", is_public=True)
    factories.make_repo(org, "private")
    personal = Organization.objects.create(
        name=personal_namespace_name(users["owner"]), owner=users["owner"]
    )
    factories.make_repo(personal, "public", is_public=True)
    factories.make_repo(personal, "private")
    return World(users=users, org=org, personal=personal)


ALL = ["pull", "push", "delete"]
ACME_EXPECTED = {
    # role: (acme/public, acme/private, acme/new)
    "anonymous": (["pull"], None, None),
    "outsider": (["pull"], None, None),
    "read-only": (["pull"], ["pull"], None),
    "read-write": (["pull", "push"], ["pull", "push"], None),
    "admin-team": (ALL, ALL, None),
    "org-admin": (ALL, ALL, ALL),
    "superuser": (ALL, ALL, ALL),
    "owner": (["pull"], None, None),
}


@pytest.mark.parametrize("role", list(ACME_EXPECTED))
def test_matrix_in_an_organization(world, client, role):
    expected_public, expected_private, expected_new = ACME_EXPECTED[role]

    response = get_token(
        client,
        f"repository:acme/public:{PUSH_ALL}",
        f"repository:acme/private:{PUSH_ALL}",
        f"repository:acme/new:{PUSH_ALL}",
        user=world.users[role],
    )

    grants = granted(response)
    assert grants.get("acme/public") == expected_public
    assert grants.get("acme/private") == expected_private
    assert grants.get("acme/new") == expected_new


PERSONAL_EXPECTED = {
    # role: (public, private, a new repository) in olivia's personal namespace
    "anonymous": (["pull"], None, None),
    "outsider": (["pull"], None, None),
    "org-admin": (["pull"], None, None),
    "superuser": (ALL, ALL, ALL),
    "owner": (ALL, ALL, ALL),
}


@pytest.mark.parametrize("role", list(PERSONAL_EXPECTED))
def test_matrix_in_a_personal_namespace(world, client, role):
    expected_public, expected_private, expected_new = PERSONAL_EXPECTED[role]

    response = get_token(
        client,
        f"repository:olivia/public:{PUSH_ALL}",
        f"repository:olivia/private:{PUSH_ALL}",
        f"repository:olivia/new:{PUSH_ALL}",
        user=world.users[role],
    )

    grants = granted(response)
    assert grants.get("olivia/public") == expected_public
    assert grants.get("olivia/private") == expected_private
    assert grants.get("olivia/new") == expected_new


def test_a_personal_namespace_not_yet_created_is_its_owners(world, client):
    newcomer = factories.make_user("Newcomer")

    grants = granted(
        get_token(
            client, "repository:newcomer/app:push,pull", "repository:olivia/x:push", user=newcomer
        )
    )

    assert grants == {"newcomer/app": ["pull", "push"]}


def test_a_grant_on_one_repository_gives_nothing_on_the_others(world, client):
    tester = factories.make_user("tester")
    private = world.org.repositories.get(name="private")
    factories.make_repo(world.org, "other")
    factories.make_team(
        world.org, members=[tester], level=AccessLevel.READ_WRITE, repository=private
    )

    grants = granted(
        get_token(
            client, "repository:acme/private:pull,push", "repository:acme/other:pull", user=tester
        )
    )

    assert grants == {"acme/private": ["pull", "push"]}


def test_star_means_every_action_the_user_has(world, client):
    writer = granted(get_token(client, "repository:acme/private:*", user=world.users["read-write"]))
    admin = granted(get_token(client, "repository:acme/private:*", user=world.users["org-admin"]))
    anonymous = granted(get_token(client, "repository:acme/public:*"))

    assert writer == {"acme/private": ["pull", "push"]}
    assert admin == {"acme/private": ["pull", "push", "delete", "admin"]}
    assert anonymous == {"acme/public": ["pull"]}


def test_catalog_is_granted_to_authenticated_users_only(world, client):
    assert granted(get_token(client, "registry:catalog:*", user=world.users["outsider"])) == {
        "catalog": ["*"]
    }
    assert granted(get_token(client, "registry:catalog:*")) == {}


def test_unknown_resource_types_and_host_port_names_get_nothing(world, client):
    response = get_token(
        client,
        "repository:localhost:5000/acme/private:pull",
        "registry:other:*",
        "plugin:acme/private:pull",
        user=world.users["org-admin"],
    )

    assert granted(response) == {}


def test_plugin_class_is_ignored(world, client):
    response = get_token(
        client, "repository(plugin):acme/private:pull", user=world.users["read-only"]
    )

    claims = tokens.decode_token(response.json()["token"])
    assert claims["access"] == [{"type": "repository", "name": "acme/private", "actions": ["pull"]}]


def test_no_scope_gives_a_token_without_access(world, client):
    response = get_token(client, user=world.users["outsider"])

    claims = tokens.decode_token(response.json()["token"])
    assert claims["access"] == [] and claims["sub"] == "outsider"


# --- The answer -------------------------------------------------------------------------


def test_answer_shape(world, client, settings):
    settings.REGISTRY_TOKEN_LIFETIME = 10  # raised to the one-minute minimum

    response = get_token(client, "repository:acme/public:pull")

    body = response.json()
    assert set(body) == {"token", "access_token", "expires_in", "issued_at"}
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 60
    claims = tokens.decode_token(body["token"])
    assert claims["sub"] == "" and claims["aud"] == SERVICE
    assert claims["exp"] - claims["iat"] == 60
    issued_at = datetime.datetime.fromisoformat(body["issued_at"])
    assert body["issued_at"].endswith("Z")
    assert issued_at == datetime.datetime.fromtimestamp(claims["iat"], datetime.UTC)
    assert response["Cache-Control"] == "no-store"


def test_default_lifetime_is_five_minutes(world, client):
    assert get_token(client).json()["expires_in"] == 300


def test_service_may_be_omitted_but_not_wrong(world, client):
    omitted = client.get(URL, {"scope": "repository:acme/public:pull"})
    wrong = client.get(URL, {"service": "elsewhere", "scope": "repository:acme/public:pull"})

    assert granted(omitted) == {"acme/public": ["pull"]}
    assert wrong.status_code == 400
    assert wrong.json()["error"] == "invalid_request"


def test_malformed_scope_is_a_bad_request(world, client):
    response = get_token(client, "repository-acme-public")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_account_must_match_the_credentials(world, client):
    reader = world.users["read-only"]

    assert get_token(client, user=reader, account="reader").status_code == 200
    assert get_token(client, user=reader, account="writer").status_code == 400


@pytest.mark.parametrize("method", ["put", "delete", "patch"])
def test_other_methods_are_not_allowed(world, client, method):
    assert getattr(client, method)(URL).status_code == 405


# --- Credentials ------------------------------------------------------------------------


def _assert_unauthorized(response) -> None:
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == f'Basic realm="{SERVICE}"'
    body = response.json()
    assert body["errors"][0]["code"] == "UNAUTHORIZED"
    assert "token" not in body


def test_wrong_password_is_401(world, client):
    _assert_unauthorized(get_token(client, user=world.users["read-only"], password="wrong"))


def test_unknown_user_is_401(world, client):
    headers = {"Authorization": _basic("nobody", factories.PASSWORD)}
    _assert_unauthorized(client.get(URL, {"service": SERVICE}, headers=headers))


def test_inactive_user_is_401(world, client):
    reader = world.users["read-only"]
    reader.is_active = False
    reader.save()

    _assert_unauthorized(get_token(client, "repository:acme/public:pull", user=reader))


@pytest.mark.parametrize(
    "header",
    ["Basic !!!not-base64", "Basic " + base64.b64encode(b"no-colon").decode(), "Bearer abc"],
)
def test_malformed_authorization_is_401(world, client, header):
    _assert_unauthorized(client.get(URL, {"service": SERVICE}, headers={"Authorization": header}))


def test_personal_access_token_as_password(world, client):
    writer = world.users["read-write"]
    _, secret = account_services.access_token_create(user=writer, name="ci")

    grants = granted(
        get_token(client, "repository:acme/private:push,pull", user=writer, password=secret)
    )

    assert grants == {"acme/private": ["pull", "push"]}
    assert AccessToken.objects.get(user=writer).last_used_at is not None


def test_personal_access_token_without_username(world, client):
    writer = world.users["read-write"]
    _, secret = account_services.access_token_create(user=writer, name="ci")
    headers = {"Authorization": _basic("", secret)}

    response = client.get(
        URL, {"service": SERVICE, "scope": "repository:acme/private:push"}, headers=headers
    )

    assert granted(response) == {"acme/private": ["push"]}
    assert tokens.decode_token(response.json()["token"])["sub"] == "writer"


def test_revoked_personal_access_token_is_401(world, client):
    writer = world.users["read-write"]
    token, secret = account_services.access_token_create(user=writer, name="ci")
    account_services.access_token_revoke(token=token)

    _assert_unauthorized(get_token(client, user=writer, password=secret))


def test_expired_personal_access_token_is_401(world, client):
    writer = world.users["read-write"]
    token, secret = account_services.access_token_create(
        user=writer, name="ci", expires_at=timezone.now() + datetime.timedelta(hours=1)
    )
    AccessToken.objects.filter(pk=token.pk).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )

    _assert_unauthorized(get_token(client, user=writer, password=secret))


def test_personal_access_token_of_another_user_is_401(world, client):
    _, secret = account_services.access_token_create(user=world.users["read-write"], name="ci")

    _assert_unauthorized(get_token(client, user=world.users["read-only"], password=secret))


# --- Refresh tokens: offline_token and the OAuth2 POST form -----------------------------


def _post(client: Client, **form) -> object:
    return client.post(URL, {"service": SERVICE, "client_id": "tests", **form})


def test_offline_token_gives_a_refresh_token_that_works(world, client):
    writer = world.users["read-write"]

    first = get_token(client, user=writer, offline_token="true", client_id="docker")
    refresh_token = first.json()["refresh_token"]
    refreshed = _post(
        client,
        grant_type="refresh_token",
        refresh_token=refresh_token,
        scope="repository:acme/private:pull,push repository:acme/public:pull",
    )

    assert granted(refreshed) == {"acme/private": ["pull", "push"], "acme/public": ["pull"]}
    body = refreshed.json()
    assert body["scope"] == "repository:acme/private:pull,push repository:acme/public:pull"
    assert "refresh_token" not in body
    assert tokens.decode_token(body["access_token"])["sub"] == "writer"


def test_no_refresh_token_unless_asked_or_for_anonymous(world, client):
    assert "refresh_token" not in get_token(client, user=world.users["read-write"]).json()
    assert "refresh_token" not in get_token(client, offline_token="true").json()


def test_refresh_sees_current_permissions(world, client):
    outsider = world.users["outsider"]
    refresh_token = get_token(client, user=outsider, offline_token="true").json()["refresh_token"]
    factories.make_team(world.org, members=[outsider], level=AccessLevel.READ_ONLY)

    refreshed = _post(
        client,
        grant_type="refresh_token",
        refresh_token=refresh_token,
        scope="repository:acme/private:pull",
    )

    assert granted(refreshed) == {"acme/private": ["pull"]}


def test_password_grant(world, client):
    response = _post(
        client,
        grant_type="password",
        username="reader",
        password=factories.PASSWORD,
        scope="repository:acme/private:pull,push",
        access_type="offline",
    )

    assert granted(response) == {"acme/private": ["pull"]}
    body = response.json()
    assert body["scope"] == "repository:acme/private:pull"
    assert (
        tokens.refresh_token_user(raw=body["refresh_token"], service=SERVICE)
        == world.users["read-only"]
    )


def test_password_grant_without_offline_has_no_refresh_token(world, client):
    response = _post(client, grant_type="password", username="reader", password=factories.PASSWORD)

    assert response.status_code == 200 and "refresh_token" not in response.json()


def test_password_grant_with_personal_access_token(world, client):
    writer = world.users["read-write"]
    token, secret = account_services.access_token_create(user=writer, name="ci")
    response = _post(
        client, grant_type="password", username="writer", password=secret, access_type="offline"
    )
    refresh_token = response.json()["refresh_token"]
    assert _post(client, grant_type="refresh_token", refresh_token=refresh_token).status_code == 200

    account_services.access_token_revoke(token=token)

    _assert_unauthorized(_post(client, grant_type="refresh_token", refresh_token=refresh_token))


def test_password_grant_with_bad_password_is_401(world, client):
    _assert_unauthorized(_post(client, grant_type="password", username="reader", password="nope"))


def test_refresh_grant_after_password_change_is_401(world, client):
    reader = world.users["read-only"]
    refresh_token = get_token(client, user=reader, offline_token="true").json()["refresh_token"]
    reader.set_password("another-long-password")
    reader.save()

    response = _post(client, grant_type="refresh_token", refresh_token=refresh_token)

    _assert_unauthorized(response)
    assert response.json()["error"] == "invalid_grant"


def test_refresh_grant_with_an_access_token_is_401(world, client):
    access_token = get_token(client, user=world.users["read-only"]).json()["token"]

    _assert_unauthorized(_post(client, grant_type="refresh_token", refresh_token=access_token))


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({}, "unsupported_grant_type"),
        ({"grant_type": "password", "username": "reader"}, "invalid_request"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
    ],
)
def test_malformed_post_is_400(world, client, form, error):
    response = _post(client, **form)

    assert response.status_code == 400
    assert response.json()["error"] == error


def test_post_needs_no_csrf_token(world):
    client = Client(enforce_csrf_checks=True)

    response = _post(client, grant_type="password", username="reader", password=factories.PASSWORD)

    assert response.status_code == 200


def test_token_is_signed_with_a_libtrust_kid(world, client):
    raw = get_token(client).json()["token"]

    header = jwt.get_unverified_header(raw)
    assert header["alg"] == "ES256"
    assert header["kid"] == tokens.signing_key().kid
