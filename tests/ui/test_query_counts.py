"""No N+1 on any list: each page takes as many queries with a few rows as with many.

Each test renders the page with a small and a large world and asserts both stay under the
same bound, which is the small world's count (so it cannot drift up unnoticed either).
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from promotions import services as promotion_services
from registry_portal.accounts.choices import AccessLevel
from registry_portal.registry.services import tag_set
from tests import factories


def query_count(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def promote_tags(world, count: int) -> None:
    """``count`` promoted tags in qa/website (provenance badges), each via a policy record."""
    policy = promotion_services.policy_create(
        actor=world["lead"],
        source=world["source"],
        target=world["target"],
        name=f"To QA {count}",
        tag_template="%n-" + "x" * (count % 7),
    )
    for number in range(count):
        tag = tag_set(
            repository=world["source"],
            name=f"rc-{count}-{number}",
            manifest=factories.make_manifest(),
        )
        promotion_services.promotion_manual(actor=world["lead"], policy=policy, tag=tag)


def grow(world, size: int) -> None:
    """Add ``size`` of everything a list shows: tags, repositories, teams, policies, events."""
    for number in range(size):
        repository = factories.make_repo(world["dev"], f"grown-{size}-{number}")
        tag_set(repository=repository, name="latest", manifest=factories.make_manifest())
        factories.make_team(
            world["dev"],
            members=[world["lead"], factories.make_user()],
            level=AccessLevel.READ_ONLY,
            repository=repository,
        )
        promotion_services.policy_create(
            actor=world["lead"],
            source=world["source"],
            target=world["target"],
            name=f"policy-{size}-{number}",
            rules=[{"field": "tag_name", "operator": "sw", "values": [f"v{number}"]}],
        )
    promote_tags(world, size)


PAGES = [
    "/",
    "/orgs/dev/",
    "/orgs/dev/teams/leads/",
    "/repos/dev/website/",
    "/repos/dev/website/-/tags/",
    "/repos/qa/website/-/tags/",
    "/repos/dev/website/-/promotions/",
    "/repos/qa/website/-/promotions/",
    "/repos/dev/website/-/activity/",
    "/repos/dev/website/-/settings/",
    "/repos/dev/website/-/promotions/new/",
]


@pytest.mark.parametrize("url", PAGES)
def test_queries_do_not_grow_with_rows(world, client, url, django_assert_max_num_queries):
    factories.make_team(world["dev"], members=[world["lead"]], level=AccessLevel.ADMIN)
    client.force_login(world["lead"])
    grow(world, 2)
    small = query_count(client, url)
    grow(world, 20)
    with django_assert_max_num_queries(small):
        client.get(url)
