"""The permission matrix through the API: every kind of user × public/private repository ×
list/retrieve/update/delete, tags, and the promotion-policy rules of the reference
(admin on source AND target to create or change; either to delete). A private repository a
caller may not see is a 404, never a 403."""

import pytest

from promotions import services as promotion_services
from registry_portal.accounts.choices import AccessLevel
from registry_portal.registry.models import Repository, Tag
from registry_portal.registry.services import tag_set
from tests import factories

from .conftest import error_of

USERS = ("anonymous", "outsider", "reader", "writer", "admin", "org_admin", "superuser")
CAN_SEE_PRIVATE = {"reader", "writer", "admin", "org_admin", "superuser"}
ADMINS = {"admin", "org_admin", "superuser"}


def _user(world, kind):
    return None if kind == "anonymous" else world[kind]


def _repository(world, visibility):
    return world["private"] if visibility == "private" else world["public"]


def _expected_write(kind, visibility, success):
    if kind == "anonymous":
        return 401
    if kind in ADMINS:
        return success
    if visibility == "private" and kind not in CAN_SEE_PRIVATE:
        return 404
    return 403


@pytest.mark.parametrize("kind", USERS)
def test_repository_list_shows_what_the_user_may_see(world, client_for, kind):
    response = client_for(_user(world, kind)).get("/api/v1/repositories/?organization=dev")
    assert response.status_code == 200
    names = {r["full_name"] for r in response.json()["results"]}
    expected = {"dev/public"} | ({"dev/website"} if kind in CAN_SEE_PRIVATE else set())
    assert names == expected


@pytest.mark.parametrize("visibility", ["private", "public"])
@pytest.mark.parametrize("kind", USERS)
def test_repository_retrieve(world, client_for, kind, visibility):
    repository = _repository(world, visibility)
    response = client_for(_user(world, kind)).get(f"/api/v1/repositories/{repository.pk}/")
    visible = visibility == "public" or kind in CAN_SEE_PRIVATE
    assert response.status_code == (200 if visible else 404)
    if not visible:
        assert error_of(response)["code"] == "not_found"


@pytest.mark.parametrize("visibility", ["private", "public"])
@pytest.mark.parametrize("kind", USERS)
def test_repository_update(world, client_for, kind, visibility):
    repository = _repository(world, visibility)
    response = client_for(_user(world, kind)).patch(
        f"/api/v1/repositories/{repository.pk}/",
        {"description": "changed", "immutable_tags": True},
        format="json",
    )
    assert response.status_code == _expected_write(kind, visibility, 200)
    repository.refresh_from_db()
    changed = response.status_code == 200
    assert (repository.description == "changed") is changed
    assert repository.immutable_tags is changed
    if changed:
        assert response.json()["immutable_tags"] is True


@pytest.mark.parametrize("visibility", ["private", "public"])
@pytest.mark.parametrize("kind", USERS)
def test_repository_delete(world, client_for, kind, visibility):
    repository = _repository(world, visibility)
    response = client_for(_user(world, kind)).delete(f"/api/v1/repositories/{repository.pk}/")
    assert response.status_code == _expected_write(kind, visibility, 204)
    assert Repository.objects.filter(pk=repository.pk).exists() is (response.status_code != 204)


@pytest.mark.parametrize("visibility", ["private", "public"])
@pytest.mark.parametrize("kind", USERS)
def test_tag_delete_needs_the_delete_right(world, client_for, kind, visibility):
    repository = _repository(world, visibility)
    tag = tag_set(repository=repository, name="1.0", manifest=factories.make_manifest())
    response = client_for(_user(world, kind)).delete(f"/api/v1/tags/{tag.pk}/")
    assert response.status_code == _expected_write(kind, visibility, 204)
    assert Tag.objects.filter(pk=tag.pk).exists() is (response.status_code != 204)


@pytest.mark.parametrize("kind", USERS)
def test_tags_of_a_private_repository_are_listed_only_for_those_who_see_it(world, client_for, kind):
    tag_set(repository=world["private"], name="secret", manifest=factories.make_manifest())
    tag_set(repository=world["public"], name="open", manifest=factories.make_manifest())
    response = client_for(_user(world, kind)).get("/api/v1/tags/")
    names = {t["name"] for t in response.json()["results"]}
    assert names == ({"open", "secret"} if kind in CAN_SEE_PRIVATE else {"open"})


def test_creating_a_repository_needs_the_namespace(world, client_for):
    body = {"namespace": "dev", "name": "api-made", "is_public": False}
    assert client_for(None).post("/api/v1/repositories/", body, format="json").status_code == 401
    writer = client_for(world["writer"]).post("/api/v1/repositories/", body, format="json")
    assert writer.status_code == 403
    created = client_for(world["org_admin"]).post("/api/v1/repositories/", body, format="json")
    assert created.status_code == 201
    assert created.json()["full_name"] == "dev/api-made"
    again = client_for(world["org_admin"]).post("/api/v1/repositories/", body, format="json")
    assert again.status_code == 400
    assert "name" in error_of(again)["fields"]


def test_anyone_may_create_in_their_personal_namespace(world, client_for):
    outsider = client_for(world["outsider"])
    body = {"namespace": "outsider", "name": "tools"}
    assert outsider.post("/api/v1/repositories/", body, format="json").status_code == 201
    foreign = {"namespace": "reader", "name": "tools"}
    assert outsider.post("/api/v1/repositories/", foreign, format="json").status_code == 403


# --- promotion policies -----------------------------------------------------------------------

STABLE = [{"field": "tag_name", "operator": "ew", "values": ["stable"]}]
POLICY_USERS = ("anonymous", "outsider", "writer", "source_admin", "target_admin", "lead")


@pytest.fixture
def policy_world(world):
    """On top of ``world``: an admin of only the source (read-only on the target), an admin
    of only the target (read-only on the source), and a writer of both."""
    source, target = world["private"], world["target"]
    people = {
        "source_admin": factories.make_user("source_admin"),
        "target_admin": factories.make_user("target_admin"),
        "both_writer": factories.make_user("both_writer"),
    }
    for kind, source_level, target_level in (
        ("source_admin", AccessLevel.ADMIN, AccessLevel.READ_ONLY),
        ("target_admin", AccessLevel.READ_ONLY, AccessLevel.ADMIN),
        ("both_writer", AccessLevel.READ_WRITE, AccessLevel.READ_WRITE),
    ):
        factories.make_team(
            world["dev"], members=[people[kind]], level=source_level, repository=source
        )
        factories.make_team(
            world["qa"], members=[people[kind]], level=target_level, repository=target
        )
    policy = promotion_services.policy_create(
        actor=world["lead"], source=source, target=target, name="to QA", rules=STABLE
    )
    return {**world, **people, "writer": people["both_writer"], "policy": policy}


def _policy_body(name="new"):
    return {"name": name, "source": "dev/website", "target": "qa/website", "rules": STABLE}


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("anonymous", 401),
        ("outsider", 400),  # it can see neither repository: they are unknown to it
        ("writer", 403),
        ("source_admin", 403),
        ("target_admin", 403),
        ("lead", 201),
    ],
)
def test_policy_create_needs_admin_on_source_and_target(policy_world, client_for, kind, expected):
    client = client_for(_user(policy_world, kind))
    response = client.post("/api/v1/policies/", _policy_body(), format="json")
    assert response.status_code == expected
    assert policy_world["private"].promotion_policies.filter(name="new").exists() is (
        expected == 201
    )
    if kind == "outsider":
        assert set(error_of(response)["fields"]) == {"source", "target"}


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("anonymous", 401),
        ("outsider", 404),
        ("writer", 403),
        ("source_admin", 403),
        ("target_admin", 403),
        ("lead", 200),
    ],
)
def test_policy_update_needs_admin_on_source_and_target(policy_world, client_for, kind, expected):
    policy = policy_world["policy"]
    client = client_for(_user(policy_world, kind))
    response = client.patch(
        f"/api/v1/policies/{policy.pk}/", {"tag_template": "%n-qa"}, format="json"
    )
    assert response.status_code == expected
    policy.refresh_from_db()
    assert (policy.tag_template == "%n-qa") is (expected == 200)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("anonymous", 401),
        ("outsider", 404),
        ("writer", 403),
        ("source_admin", 204),
        ("target_admin", 204),
        ("lead", 204),
    ],
)
def test_policy_delete_needs_admin_on_either(policy_world, client_for, kind, expected):
    policy = policy_world["policy"]
    response = client_for(_user(policy_world, kind)).delete(f"/api/v1/policies/{policy.pk}/")
    assert response.status_code == expected
    assert type(policy).objects.filter(pk=policy.pk).exists() is (expected != 204)


@pytest.mark.parametrize("kind", POLICY_USERS)
def test_policy_visibility_follows_either_repository(policy_world, client_for, kind):
    response = client_for(_user(policy_world, kind)).get("/api/v1/policies/")
    names = [p["name"] for p in response.json()["results"]]
    assert names == ([] if kind in {"anonymous", "outsider"} else ["to QA"])
