"""/v2/ authentication and permissions: the base challenge, Basic and Bearer callers, the
permission matrix, pushes that create repositories, and the protocol's own errors."""

import json

import pytest
from django.test import Client

from registry_portal.accounts.choices import AccessLevel
from registry_portal.registry import tokens
from registry_portal.registry.models import Repository
from tests import factories

from .helpers import V2, Registry, basic, errors, image_manifest, sha256

pytestmark = V2

CHALLENGE = 'Bearer realm="http://registry.test/auth/token",service="registry.test"'


@pytest.fixture
def fake_tokens(monkeypatch):
    """Bearer tokens whose raw value is their JSON claims; "bad" is an invalid token."""

    def decode_token(raw: str) -> dict:
        if raw == "bad":
            raise tokens.InvalidToken("signature verification failed")
        return json.loads(raw)

    monkeypatch.setattr(tokens, "decode_token", decode_token)


def bearer(sub: str, *access) -> str:
    return "Bearer " + json.dumps({"sub": sub, "access": list(access)})


def repository_access(name: str, *actions: str) -> dict:
    return {"type": "repository", "name": name, "actions": list(actions)}


# --- Base and protocol errors ---------------------------------------------------------------


def test_base_challenges_anonymous_callers(anonymous, db):
    response = anonymous.get("/v2/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == CHALLENGE
    assert response["Docker-Distribution-API-Version"] == "registry/2.0"
    assert response["Content-Type"] == "application/json"
    assert errors(response) == ["UNAUTHORIZED"]


def test_base_with_basic_credentials(reg):
    response = reg.get("/v2/")
    assert response.status_code == 200
    assert response.json() == {}
    assert response["Docker-Distribution-API-Version"] == "registry/2.0"


@pytest.mark.parametrize(
    "header", ["Basic b3duZXI6d3Jvbmc=", "Basic !!!", "Basic bm9jb2xvbg=="]
)  # owner:wrong, not base64, no colon
def test_base_with_wrong_basic_credentials(client, owner, header):
    response = Registry(client, header).get("/v2/")
    assert response.status_code == 401
    assert errors(response) == ["UNAUTHORIZED"]
    assert response["WWW-Authenticate"].startswith("Bearer realm=")


def test_personal_access_token_works_as_password(client, owner, repo):
    from registry_portal.accounts.services import access_token_create

    _, secret = access_token_create(user=owner, name="ci")
    assert Registry(client, basic(owner, secret)).get("/v2/").status_code == 200


def test_unknown_endpoint_is_an_oci_404_without_slash_redirect(reg, repo):
    for path in ("/v2/acme/app/tags/list/", "/v2/acme/app/whatever", "/v2/acme"):
        response = reg.get(path)
        assert response.status_code == 404, path
        assert response["Docker-Distribution-API-Version"] == "registry/2.0"
        assert response["Content-Type"] == "application/json"


def test_method_not_allowed_is_unsupported(reg, repo):
    response = reg.request("PATCH", "/v2/acme/app/manifests/v1")
    assert response.status_code == 405
    assert errors(response) == ["UNSUPPORTED"]


@pytest.mark.parametrize(
    "name", ["Acme/app", "acme/-app", "acme//app", "acme/app_", "a/" + "b" * 254]
)
def test_invalid_names(reg, repo, name):
    response = reg.get(f"/v2/{name}/tags/list")
    assert response.status_code == 400
    assert errors(response) == ["NAME_INVALID"]


def test_single_component_names_are_denied_with_a_namespace_hint(reg):
    response = reg.post("/v2/app/blobs/uploads/")
    assert response.status_code == 403
    assert errors(response) == ["DENIED"]
    assert "namespace" in response.json()["errors"][0]["message"]


def test_csrf_does_not_apply_to_v2(owner, repo):
    client = Client(enforce_csrf_checks=True)
    registry = Registry(client, basic(owner))
    assert registry.post("/v2/acme/app/blobs/uploads/").status_code == 202
    assert registry.post("/v2/acme/app/unknown").status_code == 404


def test_unknown_repository_for_someone_who_may_create_it(reg, org):
    response = reg.get("/v2/acme/nothing/manifests/latest")
    assert response.status_code == 404
    assert errors(response) == ["NAME_UNKNOWN"]


# --- Permission matrix through /v2/ with Basic auth ------------------------------------------

ROLES = ["anonymous", "outsider", "read-only", "read-write", "admin-team", "org-admin"]
ALLOWED = {
    ("pull", True): {"anonymous", "outsider", "read-only", "read-write", "admin-team", "org-admin"},
    ("pull", False): {"read-only", "read-write", "admin-team", "org-admin"},
    ("push", True): {"read-write", "admin-team", "org-admin"},
    ("push", False): {"read-write", "admin-team", "org-admin"},
    ("delete", True): {"admin-team", "org-admin"},
    ("delete", False): {"admin-team", "org-admin"},
}
LEVELS = {
    "read-only": AccessLevel.READ_ONLY,
    "read-write": AccessLevel.READ_WRITE,
    "admin-team": AccessLevel.ADMIN,
}


@pytest.fixture
def matrix_repo(reg, org, request):
    repository = factories.make_repo(org, "matrix", is_public=request.param)
    reg.push_image("acme/matrix", "v1")
    return repository


def caller(client, role: str, org, repository) -> Registry:
    if role == "anonymous":
        return Registry(client)
    if role == "org-admin":
        user = factories.make_user("admin2")
        from registry_portal.accounts.services import membership_set

        membership_set(organization=org, user=user, is_admin=True)
        return Registry(client, basic(user))
    user = factories.make_user(role.replace("-", ""))
    if role in LEVELS:
        factories.make_team(org, members=[user], level=LEVELS[role], repository=repository)
    return Registry(client, basic(user))


def attempt(registry: Registry, action: str):
    if action == "pull":
        return registry.get("/v2/acme/matrix/manifests/v1"), 200
    if action == "push":
        return registry.post("/v2/acme/matrix/blobs/uploads/"), 202
    return registry.delete("/v2/acme/matrix/manifests/v1"), 202


@pytest.mark.parametrize("matrix_repo", [True, False], ids=["public", "private"], indirect=True)
@pytest.mark.parametrize("action", ["pull", "push", "delete"])
@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(client, org, matrix_repo, role, action):
    registry = caller(client, role, org, matrix_repo)
    response, success = attempt(registry, action)
    if role in ALLOWED[(action, matrix_repo.is_public)]:
        assert response.status_code == success, response.content
    elif role == "anonymous":
        assert response.status_code == 401
        assert errors(response) == ["UNAUTHORIZED"]
        scope = {"pull": "pull", "push": "pull,push", "delete": "delete"}[action]
        assert response["WWW-Authenticate"] == (
            f'{CHALLENGE},scope="repository:acme/matrix:{scope}"'
        )
    else:
        assert response.status_code == 403
        assert errors(response) == ["DENIED"]


def test_org_wide_grant_applies_to_every_repository(client, org, repo):
    user = factories.make_user("dev")
    factories.make_team(org, members=[user], level=AccessLevel.READ_WRITE)
    assert Registry(client, basic(user)).post("/v2/acme/app/blobs/uploads/").status_code == 202


# --- Pushes that create repositories ---------------------------------------------------------


def test_org_admin_push_creates_the_repository(reg, org, owner):
    reg.push_image("acme/new/deep", "v1")
    created = Repository.objects.get(namespace=org, name="new/deep")
    assert created.created_by == owner
    assert not created.is_public


def test_push_to_personal_namespace_creates_it(client, db):
    user = factories.make_user("Bob.Smith")
    registry = Registry(client, basic(user))
    registry.push_image("bob-smith/tool", "v1")
    repository = Repository.objects.get(name="tool")
    assert repository.namespace.owner == user


def test_push_that_may_not_create_is_denied(client, org, repo):
    writer = factories.make_user("writer")
    factories.make_team(org, members=[writer], level=AccessLevel.READ_WRITE)
    registry = Registry(client, basic(writer))
    for name in ("acme/brand-new", "someone-else/tool"):
        response = registry.post(f"/v2/{name}/blobs/uploads/")
        assert response.status_code == 403, name
        assert errors(response) == ["DENIED"]
    assert not Repository.objects.filter(name__in=["brand-new", "tool"]).exists()


# --- Bearer tokens ---------------------------------------------------------------------------


def test_bearer_token_grants_what_it_carries(client, fake_tokens, reg, repo, owner):
    reg.push_image("acme/app", "v1")
    registry = Registry(client, bearer("owner", repository_access("acme/app", "pull")))
    assert registry.get("/v2/").status_code == 200
    assert registry.get("/v2/acme/app/manifests/v1").status_code == 200
    push = registry.post("/v2/acme/app/blobs/uploads/")
    assert push.status_code == 401
    assert push["WWW-Authenticate"] == (
        f'{CHALLENGE},scope="repository:acme/app:pull,push",error="insufficient_scope"'
    )


def test_bearer_token_is_intersected_with_the_permission_now(client, fake_tokens, org, repo):
    user = factories.make_user("demoted")
    factories.make_team(org, members=[user], level=AccessLevel.READ_ONLY, repository=repo)
    registry = Registry(client, bearer("demoted", repository_access("acme/app", "pull", "push")))
    assert registry.post("/v2/acme/app/blobs/uploads/").status_code == 401


def test_bearer_token_for_another_repository_gives_nothing_here(client, fake_tokens, reg, repo):
    reg.push_image("acme/app", "v1")
    registry = Registry(client, bearer("owner", repository_access("acme/other", "pull")))
    assert registry.get("/v2/acme/app/manifests/v1").status_code == 401


def test_anonymous_bearer_token_pulls_public_repositories(client, fake_tokens, reg, org):
    factories.make_repo(org, "open", is_public=True)
    reg.push_image("acme/open", "v1")
    registry = Registry(client, bearer("", repository_access("acme/open", "pull", "push")))
    assert registry.get("/v2/acme/open/manifests/v1").status_code == 200
    assert registry.post("/v2/acme/open/blobs/uploads/").status_code == 401


@pytest.mark.parametrize("header", ["Bearer bad", None])
def test_invalid_bearer_tokens(client, fake_tokens, repo, header):
    header = header or bearer("ghost", repository_access("acme/app", "pull"))
    response = Registry(client, header).get("/v2/acme/app/manifests/v1")
    assert response.status_code == 401
    assert errors(response) == ["UNAUTHORIZED"]
    assert response["WWW-Authenticate"] == (
        f'{CHALLENGE},scope="repository:acme/app:pull",error="invalid_token"'
    )


def test_catalog_needs_the_catalog_scope_in_a_bearer_token(client, fake_tokens, repo, owner):
    without = Registry(client, bearer("owner", repository_access("acme/app", "pull")))
    response = without.get("/v2/_catalog")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == (
        f'{CHALLENGE},scope="registry:catalog:*",error="insufficient_scope"'
    )
    with_scope = Registry(
        client, bearer("owner", {"type": "registry", "name": "catalog", "actions": ["*"]})
    )
    assert with_scope.get("/v2/_catalog").json() == {"repositories": ["acme/app"]}


def test_full_push_with_a_bearer_token(client, fake_tokens, repo):
    registry = Registry(client, bearer("owner", repository_access("acme/app", "pull", "push")))
    content = registry.push_image("acme/app", "v1", layers=(b"x" * 100,))
    assert registry.get(f"/v2/acme/app/manifests/{sha256(content)}").content == content
    assert registry.get("/v2/acme/app/manifests/v1").content == image_manifest(
        json.dumps({"tag": "v1"}).encode(), [b"x" * 100]
    )
