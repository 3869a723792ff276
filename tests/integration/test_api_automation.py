"""The automation scenario of the REST API against a live portal: tokens only, a real skopeo
push, a real worker. A release script would do exactly this."""

from __future__ import annotations

import re
import time

import pytest
import requests

from tests.integration.test_promotion_flow import start_worker
from tests.services import need_tool
from tests.support import images
from tests.support.clients import Skopeo
from tests.support.servers import PortalServer, own_redis_broker

PASSWORD = "Api-Secret-pw-42"


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    need_tool("skopeo")
    with PortalServer(tmp_path_factory.mktemp("api-portal"), env=own_redis_broker(7)) as server:
        server.tokens = server.setup(
            {
                "users": [
                    {"username": "root", "password": PASSWORD, "superuser": True},
                    {"username": "lead", "password": PASSWORD},
                    {"username": "dev1", "password": PASSWORD},
                    {"username": "qa1", "password": PASSWORD},
                ],
                "tokens": [{"user": user, "name": user} for user in ("root", "lead", "qa1")],
            }
        )["tokens"]
        worker = start_worker(server, tmp_path_factory.mktemp("api-worker") / "worker.log")
        try:
            yield server
        finally:
            worker.stop()


def api(portal, user: str):
    """A session with ``user``'s personal access token, as a script would hold it."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {portal.tokens[user]}"
    session.base = portal.url + "/api/v1"
    return session


def call(session, method: str, path: str, **kwargs):
    response = session.request(method, session.base + path, timeout=30, **kwargs)
    assert response.status_code < 400, (method, path, response.status_code, response.text)
    return response.json() if response.content else None


def test_the_seed_story_scripted_against_a_live_portal(portal, tmp_path):
    root, lead, tester = api(portal, "root"), api(portal, "lead"), api(portal, "qa1")
    for name in ("dev", "qa"):
        call(root, "POST", "/organizations/", json={"name": name, "admin": "lead"})
    repositories = {}
    for namespace in ("dev", "qa"):
        created = call(
            lead, "POST", "/repositories/", json={"namespace": namespace, "name": "website"}
        )
        repositories[namespace] = created["id"]
    for org, team, member in (("dev", "developers", "dev1"), ("qa", "testers", "qa1")):
        created = call(
            lead, "POST", "/teams/", json={"organization": org, "name": team, "members": [member]}
        )
        call(
            lead,
            "POST",
            "/grants/",
            json={
                "team_id": created["id"],
                "level": "read-write",
                "repository_id": repositories[org],
            },
        )
    policy = call(
        lead,
        "POST",
        "/policies/",
        json={
            "name": "stable builds to QA",
            "source": "dev/website",
            "target": "qa/website",
            "rules": [{"field": "tag_name", "operator": "ew", "values": ["stable"]}],
            "tag_template": "%Y%m%d-%H%M%S",
        },
    )

    skopeo = Skopeo(need_tool("skopeo"), workdir=tmp_path / "skopeo")
    layout = tmp_path / "image"
    image = images.write_image(layout, tag="t", layers=images.small_layers(2, seed=21))
    for tag in ("1.0-stable", "1.0"):
        skopeo.push(
            layout, "t", f"{portal.host}/dev/website:{tag}", creds=("dev1", PASSWORD), check=True
        )

    deadline = time.monotonic() + 60
    records = []
    while time.monotonic() < deadline and len(records) < 2:
        records = call(lead, "GET", "/promotion-records/", params={"policy_id": policy["id"]})
        records = records["results"]
        time.sleep(0.3)
    outcomes = {r["source_tag"]: r for r in records}
    assert outcomes["1.0-stable"]["outcome"] == "promoted"
    assert outcomes["1.0"]["outcome"] == "skipped"

    tags = call(tester, "GET", "/tags/", params={"repository": "qa/website"})["results"]
    (promoted,) = tags
    assert re.fullmatch(r"\d{8}-\d{6}", promoted["name"])
    assert promoted["digest"] == image.digest
    assert promoted["provenance"]["source_repository"] == "dev/website"
    assert promoted["provenance"]["source_tag"] == "1.0-stable"
    # QA sees nothing of development's private repository.
    hidden = tester.get(tester.base + f"/repositories/{repositories['dev']}/", timeout=30)
    assert hidden.status_code == 404
