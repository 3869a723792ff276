"""The scopes our 401 challenges name, through a client that asks for exactly those (issue 11).

``RegistryClient`` (tests/support) in ``token_only`` mode behaves as docker and containerd
do: it sends its password only to the token realm, asks for the scopes of the challenge,
and retries once. Against a live server (this process, the test database):

- a cross-repository mount's challenge also asks for ``repository:<from>:pull``, so the
  token the client fetches allows the mount (before: the client uploaded the blob again);
- an anonymous ``GET /v2/_catalog`` is a challenge for ``registry:catalog:*``, so a client
  that logs in on it lists what its user may see (before: an empty 200).
"""

from __future__ import annotations

import pytest

from registry_portal.accounts.choices import AccessLevel
from tests import factories
from tests.factories import PASSWORD
from tests.support.clients import RegistryClient, parse_challenge

from .helpers import V2, sha256

pytestmark = [V2, pytest.mark.django_db(transaction=True)]

BLOB = b"a layer shared between repositories"


@pytest.fixture
def portal(live_server, registry_settings, tmp_path):
    registry_settings.PORTAL_URL = live_server.url
    registry_settings.REGISTRY_TOKEN_SERVICE = "registry.test"
    registry_settings.REGISTRY_TOKEN_KEY_FILE = tmp_path / "keys" / "token.key"
    registry_settings.REGISTRY_TOKEN_CERT_FILE = tmp_path / "keys" / "token.crt"
    return live_server.url


@pytest.fixture
def acme():
    owner = factories.make_user("owner")
    org = factories.make_org("acme", admin=owner)
    writer = factories.make_user("writer")
    factories.make_team(org, members=[writer], level=AccessLevel.READ_WRITE)
    factories.make_repo(org, "src")
    factories.make_repo(org, "dst")
    return org


def push_blob(client: RegistryClient, name: str, data: bytes) -> None:
    response = client.request("POST", f"/v2/{name}/blobs/uploads/?digest={sha256(data)}", data=data)
    assert response.status_code == 201, response.text


def mount(client: RegistryClient, name: str, source: str, digest: str):
    return client.request("POST", f"/v2/{name}/blobs/uploads/?mount={digest}&from={source}")


def test_a_mount_challenge_asks_for_pull_on_the_source_too(portal, acme):
    anonymous = RegistryClient(portal)
    response = anonymous.request(
        "POST", f"/v2/acme/dst/blobs/uploads/?mount={sha256(BLOB)}&from=acme/src"
    )
    assert response.status_code == 401
    _, params = parse_challenge(response.headers["WWW-Authenticate"])
    assert params["scope"].split() == ["repository:acme/dst:pull,push", "repository:acme/src:pull"]


def test_a_client_that_follows_the_challenge_mounts_instead_of_uploading(portal, acme):
    writer = RegistryClient(portal, "writer", PASSWORD, token_only=True)
    push_blob(writer, "acme/src", BLOB)

    response = mount(writer, "acme/dst", "acme/src", sha256(BLOB))

    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"/v2/acme/dst/blobs/{sha256(BLOB)}"
    assert writer.token_requests[-1]["scope"] == [
        "repository:acme/dst:pull,push",
        "repository:acme/src:pull",
    ]
    assert writer.head(f"/v2/acme/dst/blobs/{sha256(BLOB)}").status_code == 200


def test_a_token_without_the_source_scope_is_challenged_for_both(portal, acme):
    writer = RegistryClient(portal, "writer", PASSWORD, token_only=True)
    push_blob(writer, "acme/src", BLOB)
    # A token for acme/dst alone, as a push to it would have fetched first.
    started = writer.request("POST", "/v2/acme/dst/blobs/uploads/")
    assert started.status_code == 202
    assert writer.token_requests[-1]["scope"] == ["repository:acme/dst:pull,push"]

    response = mount(writer, "acme/dst", "acme/src", sha256(BLOB))

    assert response.status_code == 201, response.text
    assert writer.token_requests[-1]["scope"] == [
        "repository:acme/dst:pull,push",
        "repository:acme/src:pull",
    ]


def test_a_source_the_user_may_not_pull_falls_back_to_an_upload(portal, acme):
    owner = RegistryClient(portal, "owner", PASSWORD, token_only=True)
    other = factories.make_org("zeta", admin=factories.make_user("zed"))
    factories.make_repo(other, "secret")
    zed = RegistryClient(portal, "zed", PASSWORD, token_only=True)
    push_blob(zed, "zeta/secret", BLOB)

    response = mount(owner, "acme/dst", "zeta/secret", sha256(BLOB))

    # Never a 401 loop and never a hint that the source exists: an upload starts instead.
    assert response.status_code == 202
    assert "/v2/acme/dst/blobs/uploads/" in response.headers["Location"]


def test_an_anonymous_catalog_request_is_challenged(portal, acme):
    response = RegistryClient(portal).get("/v2/_catalog")
    assert response.status_code == 401
    scheme, params = parse_challenge(response.headers["WWW-Authenticate"])
    assert (scheme, params["scope"]) == ("bearer", "registry:catalog:*")
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_a_client_that_logs_in_on_the_catalog_challenge_lists_its_repositories(portal, acme):
    factories.make_repo(factories.make_org("zeta"), "hidden")
    writer = RegistryClient(portal, "writer", PASSWORD, token_only=True)

    response = writer.get("/v2/_catalog")

    assert response.status_code == 200, response.text
    assert response.json() == {"repositories": ["acme/dst", "acme/src"]}
    assert writer.token_requests[-1]["scope"] == ["registry:catalog:*"]
