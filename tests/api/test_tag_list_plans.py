"""Tag lists at scale: the plans PostgreSQL makes for the API's tag lists.

The visibility filter is asked once per query (a hashed set of the caller's repositories),
never once per tag read; the cursor order has indexes of its own.
"""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from registry_portal.registry.models import Tag
from tests import factories
from tests.services import need


def _plan(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def _tag_query(client, url: str) -> str:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, response.content
    return next(q["sql"] for q in queries.captured_queries if 'FROM "registry_tag"' in q["sql"])


@pytest.fixture
def hidden_tags_newer_than_visible(db):
    user = factories.make_user("lister")
    mine = factories.make_repo(factories.make_org("mine", admin=user), "app")
    theirs = factories.make_repo(factories.make_org("theirs"), "app")
    manifest = factories.make_manifest()
    start = timezone.now() - datetime.timedelta(days=1)
    Tag.objects.bulk_create(
        [
            Tag(
                repository=mine,
                name=f"v{i}",
                manifest=manifest,
                pushed_at=start + datetime.timedelta(seconds=i),
            )
            for i in range(60)
        ]
        + [
            Tag(
                repository=theirs,
                name=f"v{i}",
                manifest=manifest,
                pushed_at=start + datetime.timedelta(hours=1, seconds=i),
            )
            for i in range(500)
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE registry_tag")
    return user


def test_the_visibility_filter_is_a_hashed_set_not_a_join_per_tag(
    hidden_tags_newer_than_visible, client_for
):
    need(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL)")
    client = client_for(hidden_tags_newer_than_visible)
    plan = _plan(_tag_query(client, "/api/v1/tags/"))
    assert "hashed SubPlan" in plan, plan
    assert "Semi Join" not in plan, plan
    response = client.get("/api/v1/tags/")
    assert {tag["repository"] for tag in response.json()["results"]} == {"mine/app"}
    assert len(response.json()["results"]) == 50


def test_the_cursor_order_has_its_indexes(db):
    indexes = {index.name: index.fields for index in Tag._meta.indexes}
    assert indexes["tag_repo_pushed_id_idx"] == ["repository", "-pushed_at", "-id"]
    assert indexes["tag_pushed_id_idx"] == ["-pushed_at", "-id"]
    with connection.cursor() as cursor:
        names = {name for name in connection.introspection.get_constraints(cursor, "registry_tag")}
    assert {"tag_repo_pushed_id_idx", "tag_pushed_id_idx"} <= names
