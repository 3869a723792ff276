"""Scanning end to end: skopeo pushes to a live portal (gunicorn), a real Celery worker scans
the image, and a promotion policy on critical vulnerabilities waits for the scan, then
decides. OSV data comes from `manage.py osv_import` of a small zip built here.

In CI this runs on PostgreSQL and Redis; on a laptop on SQLite and the filesystem broker.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.integration.test_promotion_flow import start_worker
from tests.scanning import db_images
from tests.services import need_tool
from tests.support import images
from tests.support.clients import Skopeo
from tests.support.servers import PortalServer, own_redis_broker

PASSWORD = "Scan-Secret-pw-42"
SPEC = {
    "users": [{"username": "lead", "password": PASSWORD}],
    "orgs": [{"name": "dev", "admins": ["lead"]}, {"name": "qa", "admins": ["lead"]}],
    "repositories": [{"name": "dev/app"}, {"name": "qa/app"}],
}
POLICY = r"""
from django.contrib.auth import get_user_model
from promotions import services
from registry_portal.registry.selectors import repository_get_by_full_name as repo
lead = get_user_model().objects.get(username="lead")
services.policy_create(actor=lead, source=repo(full_name="dev/app"),
    target=repo(full_name="qa/app"), name="no criticals",
    rules=[{"field": "vulns_critical", "operator": "eq", "values": ["0"]}])
print("POLICY-OK")
"""
STATE = r"""
import json, sys
from promotions.models import PromotionRecord
from registry_portal.registry.models import Manifest
from scanning.models import Finding
from scanning.selectors import manifest_scan_facts
digest = sys.argv[-1]
manifest = Manifest.objects.get(digest=digest)
facts = manifest_scan_facts(manifest=manifest)
records = [[r.outcome, r.reason] for r in PromotionRecord.objects.filter(digest=digest)]
findings = sorted(Finding.objects.filter(report__manifest=manifest)
                  .values_list("component__name", "vulnerability__osv_id", "severity"))
print("STATE " + json.dumps(None if facts is None else {
    "status": facts.status, "error": facts.error,
    "components": sorted(facts.component_names), "licenses": sorted(facts.licenses),
    "counts": facts.vulnerability_counts, "findings": findings, "records": records}))
"""


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    need_tool("skopeo")
    data = tmp_path_factory.mktemp("scan-portal")
    with PortalServer(data, env=own_redis_broker(8)) as server:
        server.setup(SPEC)
        assert "POLICY-OK" in server.manage("shell", "-c", POLICY)
        archive = data / "osv-all.zip"
        archive.write_bytes(db_images.osv_zip(db_images.STANDARD_RECORDS).getvalue())
        assert "4 records" in server.manage("osv_import", str(archive))
        server.manage("shell", "-c", "from registry_portal.celery import app; app.control.purge()")
        yield server


@pytest.fixture(scope="module")
def worker(portal, tmp_path_factory):
    worker = start_worker(portal, tmp_path_factory.mktemp("scan-worker") / "worker.log")
    yield worker
    worker.stop()


def state(portal, digest: str) -> dict | None:
    output = portal.manage("shell", "-c", STATE.replace("sys.argv[-1]", repr(digest)))
    return json.loads(output.split("STATE ", 1)[1])


def wait_for_decision(portal, worker, digest: str, timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    current = None
    while time.monotonic() < deadline:
        current = state(portal, digest)
        finished = current and current["status"] in ("done", "failed")
        if finished and current["records"] and current["records"][0][0] != "waiting":
            return current
        time.sleep(0.5)
    log = worker.log_path.read_text(errors="replace")
    pytest.fail(f"no decision after {timeout}s: {current}\n{log[-3000:]}")


def layer_files(*members: db_images.File) -> dict[str, bytes]:
    return {member.path: member.data for member in members}


def push(portal, tmp_path: Path, tag: str, files: dict[str, bytes]) -> str:
    skopeo = Skopeo(need_tool("skopeo"), workdir=tmp_path / "skopeo")
    layout = tmp_path / f"layout-{tag}"
    image = images.write_image(layout, tag=tag, layers=[images.LayerSpec(files=files)])
    skopeo.push(layout, tag, f"{portal.host}/dev/app:{tag}", creds=("lead", PASSWORD), check=True)
    return image.digest


def test_a_push_is_scanned_and_a_critical_vulnerability_blocks_the_promotion(
    portal, worker, tmp_path
):
    digest = push(
        portal,
        tmp_path,
        "vulnerable",
        layer_files(
            db_images.DEBIAN_OS_RELEASE,
            db_images.DPKG_STATUS,
            db_images.OPENSSL_COPYRIGHT,
            db_images.REQUESTS_METADATA,
        ),
    )
    result = wait_for_decision(portal, worker, digest)
    assert result["status"] == "done", result
    assert result["components"] == ["libssl3", "requests", "zlib1g"]
    assert result["licenses"] == ["Apache-2.0"]
    assert result["counts"] == {"critical": 1, "high": 0, "medium": 1, "low": 0, "unknown": 1}
    assert ["libssl3", "DEBIAN-CVE-2024-0001", "critical"] in result["findings"]
    (record,) = result["records"]
    assert record[0] == "skipped" and "critical" in record[1]


def test_a_clean_image_is_promoted_once_scanned(portal, worker, tmp_path):
    digest = push(portal, tmp_path, "clean", layer_files(db_images.REQUESTS_METADATA))
    result = wait_for_decision(portal, worker, digest)
    assert result["counts"]["critical"] == 0 and result["counts"]["medium"] == 1
    assert result["records"] == [["promoted", result["records"][0][1]]]


def test_a_corrupt_layer_fails_the_scan_and_the_waiting_promotion(portal, worker, tmp_path):
    skopeo = Skopeo(need_tool("skopeo"), workdir=tmp_path / "skopeo")
    layout = images.Layout(tmp_path / "broken")
    # A gzip header followed by garbage, stored under its own (correct) digest.
    layer = layout.add_bytes(b"\x1f\x8b\x08\x00" + os.urandom(4000), images.MEDIA_LAYER_GZIP)
    config = layout.add_bytes(
        images.canonical_json(
            {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        ),
        images.MEDIA_CONFIG,
    )
    manifest = layout.add_bytes(
        images.canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": images.MEDIA_MANIFEST,
                "config": config.as_json(),
                "layers": [layer.as_json()],
            }
        ),
        images.MEDIA_MANIFEST,
    )
    layout.tag(manifest, "broken")
    skopeo.push(
        layout.root, "broken", f"{portal.host}/dev/app:broken", creds=("lead", PASSWORD), check=True
    )
    decided = wait_for_decision(portal, worker, manifest.digest)
    assert decided["status"] == "failed" and "corrupt" in decided["error"], decided
    assert decided["records"][0][0] == "failed"
    assert "scan failed" in decided["records"][0][1]
