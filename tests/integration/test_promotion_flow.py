"""Promotion end to end: skopeo pushes to a live portal (gunicorn), a real Celery worker on
the real broker promotes, and we read the result the way a user would (/v2/ and records).

In CI this runs on PostgreSQL and Redis; on a laptop on SQLite and the filesystem broker.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.services import need, need_tool
from tests.support import images
from tests.support.clients import RegistryClient, Skopeo
from tests.support.servers import CeleryWorker, PortalServer, own_redis_broker, venv_bin

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Promo-Secret-pw-42"
TIMESTAMP = re.compile(r"^\d{8}-\d{6}$")

SPEC = {
    "users": [{"username": u, "password": PASSWORD} for u in ("lead", "dev1")],
    "orgs": [
        {"name": "dev", "admins": ["lead"]},
        {"name": "qa", "admins": ["lead"]},
        {"name": "prod", "admins": ["lead"]},
    ],
    "repositories": [
        {"name": "dev/website"},
        {"name": "qa/website"},
        {"name": "prod/website"},
        {"name": "qa/locked", "immutable_tags": True},
        {"name": "dev/slow"},
        {"name": "qa/slow"},
    ],
    "teams": [
        {
            "org": "dev",
            "name": "developers",
            "members": ["dev1"],
            "grants": [{"level": "read-write"}],
        }
    ],
}

POLICIES = r"""
from django.contrib.auth import get_user_model
from promotions import services
from registry_portal.registry.selectors import repository_get_by_full_name as repo
lead = get_user_model().objects.get(username="lead")
def policy(source, target, name, rules, template=""):
    services.policy_create(actor=lead, source=repo(full_name=source), target=repo(full_name=target),
                           name=name, rules=rules, tag_template=template)
stable = [{"field": "tag_name", "operator": "ew", "values": ["stable"]}]
policy("dev/website", "qa/website", "to qa", stable, "%Y%m%d-%H%M%S")
policy("qa/website", "prod/website", "to prod", [])
policy("qa/website", "dev/website", "back to dev", [])
latest = [{"field": "tag_name", "operator": "eq", "values": ["latest"]}]
policy("dev/website", "qa/locked", "locked", latest)
policy("dev/slow", "qa/slow", "keep tag", [])
print("POLICIES-OK")
"""

RECORDS = r"""
import json
from promotions.models import PromotionRecord
print("RECORDS " + json.dumps([
    {"policy": r.policy_name, "tag": r.source_tag, "target": r.target_repository_name,
     "target_tag": r.target_tag, "outcome": r.outcome, "reason": r.reason, "trigger": r.trigger,
     "digest": r.digest}
    for r in PromotionRecord.objects.order_by("id")]))
"""


def start_worker(portal: PortalServer, log_path: Path) -> CeleryWorker:
    worker = CeleryWorker(portal.env(), log_path, cwd=portal.source_dir)
    WORKER_LOGS.append(log_path)
    worker.start()
    return worker


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    need_tool("skopeo")
    data = tmp_path_factory.mktemp("promo-portal")
    with PortalServer(data, env=own_redis_broker(7)) as server:
        server.setup(SPEC)
        assert "POLICIES-OK" in server.manage("shell", "-c", POLICIES)
        server.manage("shell", "-c", "from registry_portal.celery import app; app.control.purge()")
        yield server


@pytest.fixture(scope="module")
def worker(portal, tmp_path_factory):
    worker = start_worker(portal, tmp_path_factory.mktemp("worker") / "worker.log")
    yield worker
    worker.stop()


@pytest.fixture
def skopeo(tmp_path):
    return Skopeo(need_tool("skopeo"), workdir=tmp_path / "skopeo")


def push(skopeo, portal, tmp_path, reference: str, *, seed: int, creds=("dev1", PASSWORD)) -> str:
    layout = tmp_path / f"img-{seed}"
    image = images.write_image(layout, tag="t", layers=images.small_layers(2, seed=seed))
    skopeo.push(layout, "t", f"{portal.host}/{reference}", creds=creds, check=True)
    return image.digest


def tags(portal, name: str) -> dict[str, str]:
    client = RegistryClient(portal.url, "lead", PASSWORD)
    listed = client.get(f"/v2/{name}/tags/list").json().get("tags") or []
    digests = {}
    for tag in listed:
        response = client.head(
            f"/v2/{name}/manifests/{tag}", headers={"Accept": images.MEDIA_MANIFEST}
        )
        digests[tag] = response.headers["Docker-Content-Digest"]
    return digests


def records(portal) -> list[dict]:
    output = portal.manage("shell", "-c", RECORDS)
    return json.loads(output.split("RECORDS ", 1)[1])


# Worker logs of this module, shown when a wait times out (what did the worker do?).
WORKER_LOGS: list[Path] = []


def wait_until(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    logs = "\n".join(
        f"--- {path.name}:\n{path.read_text(errors='replace')[-3000:]}"
        for path in WORKER_LOGS
        if path.exists()
    )
    pytest.fail(f"timed out after {timeout}s\n{logs}")


def test_seed_story_chain_and_loop(portal, worker, skopeo, tmp_path):
    digest = push(skopeo, portal, tmp_path, "dev/website:1.0-stable", seed=1)
    plain = push(skopeo, portal, tmp_path, "dev/website:1.0", seed=2)

    qa = wait_until(lambda: tags(portal, "qa/website") or None)
    (qa_tag,) = qa
    assert TIMESTAMP.match(qa_tag), qa_tag
    assert qa[qa_tag] == digest  # the same image, byte for byte: zero-copy
    prod = wait_until(lambda: tags(portal, "prod/website") or None)
    assert list(prod.values()) == [digest]  # the chain went on: dev → qa → prod

    def loop_stopped_and_1_0_decided():
        # The tasks run in the order they were queued, which depends on timing: wait for both.
        found = records(portal)
        keys = {(r["policy"], r["tag"]) for r in found}
        return (
            found if ("to qa", "1.0") in keys and any(k[0] == "back to dev" for k in keys) else None
        )

    done = wait_until(loop_stopped_and_1_0_decided)
    by_policy = {(r["policy"], r["tag"]): r for r in done}
    assert by_policy[("to qa", "1.0")]["outcome"] == "skipped"  # 1.0 is not promoted
    assert by_policy[("back to dev", qa_tag)]["outcome"] == "skipped"  # the loop stops
    assert "loop" in by_policy[("back to dev", qa_tag)]["reason"]
    assert set(tags(portal, "dev/website")) == {"1.0-stable", "1.0"}
    assert plain not in prod.values()


def test_an_immutable_target_tag_gives_a_failed_record(portal, worker, skopeo, tmp_path):
    first = push(skopeo, portal, tmp_path, "dev/website:latest", seed=3)
    wait_until(lambda: tags(portal, "qa/locked").get("latest") == first)
    push(skopeo, portal, tmp_path, "dev/website:latest", seed=4)
    failed = wait_until(
        lambda: [r for r in records(portal) if r["policy"] == "locked" and r["outcome"] == "failed"]
    )
    assert "immutable" in failed[0]["reason"]
    assert tags(portal, "qa/locked") == {"latest": first}


def test_a_worker_killed_mid_promotion_loses_nothing(portal, worker, skopeo, tmp_path):
    """SIGKILL the worker while its promotion waits on a row lock; a new worker completes it."""
    if not os.environ.get("CELERY_BROKER_URL", "").startswith("redis://"):
        need(False, "Redis as the broker (redelivery after a worker dies)")
    # The target tag exists already, so the promotion must lock its row to move it.
    old = push(skopeo, portal, tmp_path, "qa/slow:v1", seed=6, creds=("lead", PASSWORD))
    worker.stop()
    lock_script = (
        "import time\n"
        "from django.db import transaction\n"
        "from registry_portal.registry.models import Tag\n"
        "with transaction.atomic():\n"
        "    rows = Tag.objects.filter(repository__namespace__name='qa', name='v1')\n"
        "    list(rows.select_for_update())\n"
        "    print('LOCKED', flush=True)\n"
        "    time.sleep(8)\n"
    )
    locker = subprocess.Popen(
        [venv_bin("python"), str(ROOT / "manage.py"), "shell", "-c", lock_script],
        cwd=ROOT,
        env=portal.env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: locker.stdout.readline().strip() == "LOCKED", 30)
        digest = push(skopeo, portal, tmp_path, "dev/slow:v1", seed=5)
        killed = start_worker(portal, tmp_path / "killed.log")
        log = killed.log_path
        wait_until(lambda: re.search(r"promote_pushed_tag\[[^]]+\] received", log.read_text()))
        time.sleep(1.0)  # it is now inside the promotion, waiting for the lock
        killed.stop(signal.SIGKILL)
    finally:
        locker.wait(timeout=60)
    time.sleep(1.0)
    assert tags(portal, "qa/slow") == {"v1": old}, log.read_text()[-2000:]
    assert not [r for r in records(portal) if r["policy"] == "keep tag"]

    worker.start()  # a worker runs again: the unacknowledged task is redelivered
    wait_until(lambda: tags(portal, "qa/slow").get("v1") == digest, timeout=90)
    promoted = [r for r in records(portal) if r["policy"] == "keep tag"]
    assert [r["outcome"] for r in promoted] == ["promoted"]
