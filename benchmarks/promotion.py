"""Promotion benchmark: latency from a push to a pullable promoted tag, and a wide fan-out.

A live portal (the `make run` gunicorn configuration) and a real Celery worker on Redis when
it answers on 127.0.0.1:6379 (else the laptop's filesystem broker, which polls once a second
and so says little about latency):

- 30 pushes with skopeo of `dev/website:build-N-stable`; for each, the time from skopeo
  returning to `qa/website:build-N-stable` answering 200 on HEAD. p50 and p95.
  Targets: p50 <= 100 ms, p95 <= 300 ms (rules that need no scan).
- one push to a repository with 200 policies: the worker's task time for evaluating all of
  them (from its "succeeded in" log line). Target: within 1 s.

    python -m benchmarks.promotion [--pushes N] [--policies N] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support import images  # noqa: E402
from tests.support.clients import RegistryClient, Skopeo  # noqa: E402
from tests.support.servers import CeleryWorker, PortalServer  # noqa: E402

USER = ("bench-lead", "bench-lead-Pw-2024")
SETUP = {
    "users": [{"username": USER[0], "password": USER[1]}],
    "orgs": [{"name": n, "admins": [USER[0]]} for n in ("dev", "qa")],
    "repositories": [{"name": n} for n in ("dev/website", "qa/website", "dev/many", "qa/many")],
}
POLICIES = r"""
import os
from django.contrib.auth import get_user_model
from promotions import services
from registry_portal.registry.selectors import repository_get_by_full_name as repo
lead = get_user_model().objects.get(username="bench-lead")
services.policy_create(actor=lead, source=repo(full_name="dev/website"),
    target=repo(full_name="qa/website"), name="stable",
    rules=[{"field": "tag_name", "operator": "ew", "values": ["stable"]}])
for i in range(int(os.environ["BENCH_POLICIES"])):
    services.policy_create(actor=lead, source=repo(full_name="dev/many"),
        target=repo(full_name="qa/many"), name=f"policy {i}", tag_template=f"p{i}-%n",
        rules=[{"field": "tag_name", "operator": "sw", "values": [f"release-{i}"]},
               {"field": "last_updated", "operator": "af", "values": ["1d"]}])
print("POLICIES-OK")
"""
SUCCEEDED = re.compile(r"promote_pushed_tag\[[^]]+\] succeeded in ([0-9.]+)s")


def redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=30)
    parser.add_argument("--policies", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    skopeo_path = subprocess.run(["which", "skopeo"], capture_output=True, text=True).stdout
    if not skopeo_path.strip():
        print("skopeo is missing: apt-get install skopeo", file=sys.stderr)
        return 2
    broker = "redis://127.0.0.1:6379/9" if redis_up() else ""
    env = {"CELERY_BROKER_URL": broker} if broker else {}
    work = Path(tempfile.mkdtemp(prefix="bench-promotion-"))
    skopeo = Skopeo(skopeo_path.strip(), workdir=work / "skopeo")
    with PortalServer(work / "portal", env=env, access_log=False) as portal:
        portal.setup(SETUP)
        portal.manage("shell", "-c", POLICIES, env={"BENCH_POLICIES": str(args.policies)})
        portal.manage("shell", "-c", "from registry_portal.celery import app; app.control.purge()")
        worker = CeleryWorker(portal.env(), work / "worker.log", cwd=portal.source_dir)
        worker.start()
        try:
            result = measure(portal, skopeo, work, args, worker.log_path)
        finally:
            worker.stop()
    result["broker"] = broker or "filesystem (polls once a second)"
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(render(result))
    return 0


def measure(portal, skopeo, work: Path, args, log_path: Path) -> dict:
    layout = work / "image"
    images.write_image(layout, tag="t", layers=images.small_layers(2, size=2048, seed=7))
    client = RegistryClient(portal.url, *USER)
    client.head("/v2/qa/website/manifests/none")  # fetch a token once, as a puller would
    latencies, errors = [], 0
    for number in range(-1, args.pushes):  # -1: a warm-up push, not measured
        tag = f"build-{number}-stable"
        pushed = skopeo.push(layout, "t", f"{portal.host}/dev/website:{tag}", creds=USER)
        returned = time.monotonic()
        if not pushed.ok:
            errors += 1
            continue
        if number < 0:
            while client.head(f"/v2/qa/website/manifests/{tag}").status_code != 200:
                if time.monotonic() - returned > 60:
                    break
                time.sleep(0.05)
            continue
        while time.monotonic() - returned < 30:
            if client.head(f"/v2/qa/website/manifests/{tag}").status_code == 200:
                latencies.append(time.monotonic() - returned)
                break
            time.sleep(0.005)
        else:
            errors += 1
    # Wait for the worker to go idle, then time the one task that meets 200 policies.
    settled, count = time.monotonic(), -1
    while time.monotonic() - settled < 2.0:
        found = len(SUCCEEDED.findall(log_path.read_text(errors="replace")))
        if found != count:
            settled, count = time.monotonic(), found
        time.sleep(0.1)
    skopeo.push(layout, "t", f"{portal.host}/dev/many:release-7", creds=USER, check=True)
    deadline, fan_out = time.monotonic() + 60, None
    while time.monotonic() < deadline and fan_out is None:
        found = SUCCEEDED.findall(log_path.read_text(errors="replace"))
        if len(found) >= count + 2:  # the fan-out task and the chained one on qa/many
            fan_out = max(float(seconds) for seconds in found[count:])
        time.sleep(0.1)
    return {
        "pushes": args.pushes,
        "errors": errors,
        "latency_p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "latency_p95_ms": round(1000 * percentile(latencies, 0.95), 1) if latencies else None,
        "policies": args.policies,
        "fan_out_task_seconds": fan_out,
    }


def render(result: dict) -> str:
    return "\n".join(
        [
            f"Promotion latency over {result['pushes']} pushes (broker: {result['broker']}):",
            f"  p50 {result['latency_p50_ms']} ms (target <= 100), "
            f"p95 {result['latency_p95_ms']} ms (target <= 300), errors {result['errors']}",
            f"One push evaluated against {result['policies']} policies: "
            f"{result['fan_out_task_seconds']} s in the worker (target <= 1 s)",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
