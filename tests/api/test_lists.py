"""List endpoints: bounded query counts whatever the number of rows, filters and paging."""

import uuid

import pytest

from promotions import services as promotion_services
from registry_portal.accounts import services as account_services
from registry_portal.accounts.choices import AccessLevel
from registry_portal.registry.services import tag_set
from tests import factories

ENDPOINTS = (
    "/api/v1/organizations/",
    "/api/v1/teams/",
    "/api/v1/grants/",
    "/api/v1/repositories/",
    "/api/v1/tags/",
    "/api/v1/tag-events/",
    "/api/v1/policies/",
    "/api/v1/promotion-records/",
    "/api/v1/me/tokens/",
)


def _grow(world, rows: int) -> None:
    """Add ``rows`` of everything that the list endpoints show."""
    lead = world["lead"]
    for _ in range(rows):
        account_services.access_token_create(user=lead, name=f"t{uuid.uuid4()}")
        repository = factories.make_repo(world["dev"])
        factories.make_team(
            world["dev"],
            members=[lead, world["reader"]],
            level=AccessLevel.ADMIN,
            repository=repository,
        )
        tag_set(
            repository=repository, name="1.0-stable", manifest=factories.make_manifest(), actor=lead
        )
        policy = promotion_services.policy_create(
            actor=lead,
            source=repository,
            target=world["target"],
            name="p",
            rules=[{"field": "tag_name", "operator": "ew", "values": ["stable"]}],
            tag_template="%n-" + str(repository.pk),
        )
        promotion_services.policy_apply(actor=lead, policy=policy)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_list_query_count_does_not_grow_with_rows(
    world, client_for, endpoint, django_assert_max_num_queries
):
    client = client_for(world["lead"])
    client.get("/api/v1/me/")  # the token's first use records it: not part of the count
    _grow(world, 2)
    with django_assert_max_num_queries(12) as few:
        assert client.get(endpoint).status_code == 200
    _grow(world, 8)
    with django_assert_max_num_queries(len(few.captured_queries)) as many:
        response = client.get(endpoint)
    assert response.status_code == 200
    assert len(response.json()["results"]) >= 2
    assert len(many.captured_queries) == len(few.captured_queries)


def test_cursor_pages_walk_every_tag_once(world, client_for):
    for index in range(7):
        tag_set(repository=world["private"], name=f"t{index}", manifest=factories.make_manifest())
    client = client_for(world["reader"])
    seen, url = [], "/api/v1/tags/?repository=dev/website&page_size=3"
    while url:
        page = client.get(url).json()
        seen += [tag["name"] for tag in page["results"]]
        url = page["next"]
    assert sorted(seen) == [f"t{i}" for i in range(7)]
    assert seen == [f"t{i}" for i in reversed(range(7))]  # most recently pushed first


def test_filters_by_name_digest_and_outcome(world, client_for):
    manifest = factories.make_manifest()
    tag_set(repository=world["private"], name="a-stable", manifest=manifest)
    tag_set(repository=world["private"], name="b", manifest=factories.make_manifest())
    client = client_for(world["lead"])
    by_digest = client.get(f"/api/v1/tags/?digest={manifest.digest}").json()["results"]
    assert [t["name"] for t in by_digest] == ["a-stable"]
    assert client.get("/api/v1/tags/?q=stab").json()["results"][0]["name"] == "a-stable"
    assert client.get("/api/v1/tags/?repository=qa/website").json()["results"] == []

    policy = promotion_services.policy_create(
        actor=world["lead"],
        source=world["private"],
        target=world["target"],
        name="p",
        rules=[{"field": "tag_name", "operator": "ew", "values": ["stable"]}],
    )
    promotion_services.policy_apply(actor=world["lead"], policy=policy)
    promoted = client.get("/api/v1/promotion-records/?outcome=promoted").json()["results"]
    assert [r["source_tag"] for r in promoted] == ["a-stable"]
    skipped = client.get(f"/api/v1/promotion-records/?outcome=skipped&policy_id={policy.pk}")
    assert [r["source_tag"] for r in skipped.json()["results"]] == ["b"]
    tagged = client.get("/api/v1/promotion-records/?tag=a-stable&repository=qa/website")
    assert len(tagged.json()["results"]) == 1
    history = client.get("/api/v1/tag-events/?repository=qa/website").json()["results"]
    assert [e["tag"] for e in history] == ["a-stable"]


def test_a_bad_filter_value_is_a_field_error(world, client_for):
    response = client_for(world["lead"]).get("/api/v1/tags/?pushed_after=yesterday")
    assert response.status_code == 400
    assert "pushed_after" in response.json()["error"]["fields"]


@pytest.mark.parametrize("moment", ["0392-02-23T05:01:12.4+17:36", "2026-01-01T00:00:00-13:30"])
def test_an_impossible_time_zone_offset_is_a_field_error(world, client_for, moment):
    """Found by schemathesis: PostgreSQL refused the offset with a 500."""
    response = client_for(world["lead"]).get("/api/v1/tags/", {"pushed_after": moment})
    assert response.status_code == 400
    assert "pushed_after" in response.json()["error"]["fields"]


def test_a_time_with_an_offset_filters_in_utc(world, client_for):
    later = client_for(world["lead"]).get(
        "/api/v1/tags/", {"pushed_after": "2999-01-01T01:00+01:00"}
    )
    assert later.status_code == 200
    assert later.json()["results"] == []
