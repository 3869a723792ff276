"""Metrics and request ids on a live stack: gunicorn with two processes, a real worker.

- The counters of /metrics are right whichever process answers the scrape: every request
  counted once across both gunicorn processes (prometheus_client's multiprocess mode).
- A push's request id is in the JSON log lines of the worker's scan of that image.
- /-/ready answers 200 on the real stack.
"""

from __future__ import annotations

import json
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support import oci
from tests.support.clients import RegistryClient
from tests.support.servers import CeleryWorker, PortalServer, own_redis_broker

PASSWORD = "Metrics-pw-2024-x"
SPEC = {
    "users": [{"username": "ops", "password": PASSWORD}],
    "orgs": [{"name": "ops", "admins": ["ops"]}],
    "repositories": [{"name": "ops/app"}],
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    data = tmp_path_factory.mktemp("metrics-portal")
    (data / "prometheus").mkdir()
    env = {
        **own_redis_broker(15),
        "WEB_WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(data / "prometheus"),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
    }
    with PortalServer(data, env=env) as server:
        server.setup(SPEC)
        worker = CeleryWorker(server.env(), data / "worker.log", cwd=server.source_dir)
        worker.start()
        try:
            yield server, worker
        finally:
            worker.stop()


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    response = requests.get(f"{url}/metrics", timeout=30)
    assert response.status_code == 200, response.text[:300]
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_counters_add_up_across_processes_and_request_ids_reach_the_worker(stack):
    server, worker = stack
    client = RegistryClient(server.url, "ops", PASSWORD)
    oci.push_image(
        client, "ops/app", "v1", [oci.small_layer("a"), oci.large_layer("b", 3 * 1024 * 1024)]
    )
    # One more image pushed with a request id: the worker scans what that push queued.
    client.session.headers["X-Request-ID"] = "trace-me-0042"
    oci.push_image(client, "ops/app", "v2", [oci.small_layer("c")])
    answer = client.get("/v2/ops/app/tags/list")
    del client.session.headers["X-Request-ID"]
    assert answer.headers["X-Request-ID"] == "trace-me-0042"
    pulls = 20
    for _ in range(pulls):
        client.session.close()  # a new connection each time: either process may answer
        oci.pull_image(client, "ops/app", "v1")
    # Each scrape may be answered by either process: all must show every request.
    for _ in range(4):
        samples = scrape(server.url)
        assert samples[("portal_pulls_total", (("outcome", "ok"),))] == pulls
        assert samples[("portal_pushes_total", (("outcome", "ok"),))] == 2
        route = (("method", "GET"), ("route", "registry-manifest"))
        assert samples[("portal_v2_request_duration_seconds_count", route)] == pulls

    deadline = time.monotonic() + 60
    lines = []
    while time.monotonic() < deadline:
        lines = [
            json.loads(line)
            for line in worker.output().splitlines()
            if line.startswith("{") and "trace-me-0042" in line
        ]
        if lines:
            break
        time.sleep(0.5)
    assert lines, worker.output()[-3000:]
    assert all(line["request_id"] == "trace-me-0042" for line in lines)


def test_ready_on_the_live_stack(stack):
    server, _ = stack
    response = requests.get(f"{server.url}/-/ready", timeout=10)
    assert response.status_code == 200, response.text
    assert requests.get(f"{server.url}/-/healthy", timeout=10).json() == {"status": "ok"}
