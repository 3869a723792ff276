"""Soak: a bounded mixed load on the `make run` stack, and what it must leave behind.

The stack it starts itself: gunicorn with `registry_portal/gunicorn.conf.py` (the server
`make run` runs) and a Celery worker with its scheduler, `--concurrency 2` as in
`scripts/run-portal.sh`. On PostgreSQL and Redis when DATABASE_URL (a database of its own is
created on that server and dropped afterwards) and CELERY_BROKER_URL say so, else SQLite and
kombu's filesystem transport.

16 clients (threads, requests, 127.0.0.1 only) for the given minutes, each picking:
- push: a small image (two small gzipped layers) to dev/soak;
- push-64MiB: an image with a 64 MiB layer, streamed with a chunked PATCH (at most 2 at once);
- pull: a pushed image, every blob's digest checked;
- promote: push a `-stable` tag and wait for the policy's copy in qa/soak (push to pullable);
- scan: push and wait for the image's scan report to be done;
- api: one of the REST lists (tags, repositories, promotion records, scan reports).

Then it waits (bounded) for the worker to settle and reports: errors (must be 0: failed
operations, 5xx in the access log, tracebacks in the logs), p50/p95/p99 per operation, the
RSS of the web processes and of the worker sampled every few seconds (growth between the
first and the last third of the run is flagged), and promotion records not settled (must be
0). Exit status 1 when any of these fails.

    python -m benchmarks.soak --minutes N [--clients 16] [--json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.support import oci  # noqa: E402
from tests.support.clients import RegistryClient  # noqa: E402
from tests.support.servers import PortalServer, venv_bin  # noqa: E402

USER = ("soak", "soak-Pw-2024-long")
SOURCE, TARGET = "dev/soak", "qa/soak"
LARGE = 64 * 1024 * 1024
WEIGHTS = {"push": 25, "push-64MiB": 2, "pull": 30, "promote": 10, "scan": 5, "api": 28}
SETUP = {
    "users": [{"username": USER[0], "password": USER[1]}],
    "orgs": [{"name": "dev", "admins": [USER[0]]}, {"name": "qa", "admins": [USER[0]]}],
    "repositories": [{"name": SOURCE}, {"name": TARGET}],
    "tokens": [{"user": USER[0], "name": "soak"}],
}
POLICY = r"""
from django.contrib.auth import get_user_model
from promotions import services
from registry_portal.registry.selectors import repository_get_by_full_name as repo
services.policy_create(actor=get_user_model().objects.get(username="soak"),
    source=repo(full_name="dev/soak"), target=repo(full_name="qa/soak"), name="stable",
    rules=[{"field": "tag_name", "operator": "ew", "values": ["-stable"]}])
print("POLICY-OK")
"""
SETTLEMENT = r"""
import json
from django.db.models import Q
from promotions.models import PromotionRecord
from registry_portal.registry.models import Tag
from scanning.models import ScanReport
stable = set(Tag.objects.filter(repository__namespace__name="dev", repository__name="soak",
                                name__endswith="-stable").values_list("name", flat=True))
recorded = set(PromotionRecord.objects.values_list("source_tag", flat=True))
print("SETTLEMENT " + json.dumps({
    "records": PromotionRecord.objects.count(),
    "unsettled": PromotionRecord.objects.filter(
        Q(outcome="waiting") | Q(finished_at__isnull=True)).count(),
    "not_promoted": PromotionRecord.objects.exclude(outcome="promoted").count(),
    "stable_tags_without_record": len(stable - recorded),
    "scans_unfinished": ScanReport.objects.filter(status__in=["queued", "running"]).count(),
}))
"""


# --- Figures (pure: tested in tests/benchmarks/test_soak_helpers.py) ------------------------


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * fraction // 1)))
    return ordered[int(rank) - 1]


def rss_growth(
    samples: list[int],
    *,
    min_samples: int = 6,
    ratio: float = 1.25,
    floor_bytes: int = 64 * 1024 * 1024,
) -> str | None:
    """Why the RSS looks unbounded, or None. The first third is warm-up (imports, caches,
    pools filling); growth means the last third's median above the middle third's by
    ``ratio`` and by more than ``floor_bytes``."""
    if len(samples) < min_samples:
        return None
    third = len(samples) // 3
    middle = statistics.median(samples[third : 2 * third])
    last = statistics.median(samples[2 * third :])
    if last > middle * ratio and last - middle > floor_bytes:
        return f"RSS grew from {middle / 2**20:.0f} MiB to {last / 2**20:.0f} MiB"
    return None


def process_tree(root: int, proc: Path = Path("/proc")) -> list[int]:
    """``root`` and its descendants, from /proc/<pid>/stat (Linux)."""
    children = defaultdict(list)
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children[parent].append(int(entry.name))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


def rss_bytes(pid: int, proc: Path = Path("/proc")) -> int:
    try:
        for line in (proc / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


# --- The load -------------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    operation: str
    seconds: float
    error: str = ""


class Load:
    """The shared state of the clients: what was pushed, what happened, when to stop."""

    def __init__(self, url: str, api_token: str, deadline: float):
        self.url = url
        self.api_token = api_token
        self.deadline = deadline
        self.lock = threading.Lock()
        self.pushed: list[str] = []
        self.outcomes: list[Outcome] = []
        self.large_slots = threading.BoundedSemaphore(2)
        self.stop = threading.Event()
        self.counter = 0

    def next_number(self) -> int:
        with self.lock:
            self.counter += 1
            return self.counter

    def record(self, outcome: Outcome) -> None:
        with self.lock:
            self.outcomes.append(outcome)


def wait_for(predicate, *, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"no result within {timeout:.0f} s")


class CountingRetry(Retry):
    """One retry of an idempotent request (GET, HEAD) whose kept-alive connection the server
    closed as it was reused, as docker and skopeo do; each retry is counted and reported."""

    retried = 0
    lock = threading.Lock()

    def increment(self, *args, **kwargs):
        with CountingRetry.lock:
            CountingRetry.retried += 1
        return super().increment(*args, **kwargs)


def retrying(session: requests.Session) -> requests.Session:
    retry = CountingRetry(total=1, connect=1, read=1, status=0, allowed_methods={"GET", "HEAD"})
    session.mount("http://", HTTPAdapter(max_retries=retry))
    return session


class Client(threading.Thread):
    def __init__(self, number: int, load: Load):
        super().__init__(name=f"soak-{number}", daemon=True)
        self.number = number
        self.load = load
        self.random = random.Random(number)
        self.registry = RegistryClient(load.url, *USER)
        retrying(self.registry.session)
        self.api = retrying(requests.Session())
        self.api.headers["Authorization"] = f"Bearer {load.api_token}"
        self.tokens_at = time.monotonic()

    def run(self) -> None:
        operations, weights = zip(*WEIGHTS.items(), strict=True)
        while time.monotonic() < self.load.deadline and not self.load.stop.is_set():
            if time.monotonic() - self.tokens_at > 120:  # tokens live 300 s: renew early
                self.registry._tokens.clear()
                self.tokens_at = time.monotonic()
            operation = self.random.choices(operations, weights)[0]
            started = time.monotonic()
            try:
                getattr(self, "op_" + operation.replace("-", "_"))()
            except Exception as error:  # every failure is counted and reported
                request = getattr(error, "request", None)
                where = f"{request.method} {request.path_url[:80]}: " if request else ""
                self.load.record(
                    Outcome(operation, time.monotonic() - started, (where + repr(error))[:300])
                )
            else:
                self.load.record(Outcome(operation, time.monotonic() - started))

    def _push(self, tag: str, layers) -> str:
        digest = oci.push_image(self.registry, SOURCE, tag, layers)
        with self.load.lock:
            self.load.pushed.append(tag)
        return digest

    def _small(self, tag: str) -> list[oci.Layer]:
        return [oci.small_layer(f"{tag}-a"), oci.small_layer(f"{tag}-b", 16384)]

    def op_push(self) -> None:
        tag = f"c{self.number}-{self.load.next_number()}"
        self._push(tag, self._small(tag))

    def op_push_64MiB(self) -> None:  # noqa: N802 - the operation's name
        tag = f"big{self.number}-{self.load.next_number()}"
        layer = oci.large_layer(tag, LARGE)
        with self.load.large_slots:
            self._push(tag, [oci.small_layer(tag), layer])

    def op_pull(self) -> None:
        with self.load.lock:
            choices = list(self.load.pushed[-200:])
        if not choices:
            return self.op_push()
        oci.pull_image(self.registry, SOURCE, self.random.choice(choices))

    def op_promote(self) -> None:
        tag = f"c{self.number}-{self.load.next_number()}-stable"
        digest = self._push(tag, self._small(tag))

        def promoted():
            response = self.registry.head(
                f"/v2/{TARGET}/manifests/{tag}", headers={"Accept": oci.MEDIA_MANIFEST}
            )
            return (
                response.status_code == 200
                and response.headers.get("Docker-Content-Digest") == digest
            )

        wait_for(promoted, timeout=120)

    def op_scan(self) -> None:
        tag = f"s{self.number}-{self.load.next_number()}"
        digest = self._push(tag, self._small(tag))

        def finished():
            response = self.api.get(
                f"{self.load.url}/api/v1/scan-reports/", params={"digest": digest}, timeout=30
            )
            response.raise_for_status()
            reports = response.json()["results"]
            statuses = {report["status"] for report in reports}
            return statuses if statuses and statuses <= {"done", "failed"} else None

        statuses = wait_for(finished, timeout=180, interval=0.5)
        if statuses != {"done"}:
            raise RuntimeError(f"scan of {tag} ended {statuses}")

    def op_api(self) -> None:
        path = self.random.choice(
            [
                f"/api/v1/tags/?repository={SOURCE}",
                "/api/v1/tags/",
                "/api/v1/repositories/",
                "/api/v1/promotion-records/",
                "/api/v1/scan-reports/",
            ]
        )
        response = self.api.get(self.load.url + path, timeout=60)
        if response.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {response.status_code}")


def queue_depths(metrics_text: str) -> dict[str, int]:
    """``portal_celery_queue_depth{queue=...}`` of a /metrics answer."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        sample.labels["queue"]: int(sample.value)
        for family in text_string_to_metric_families(metrics_text)
        if family.name == "portal_celery_queue_depth"
        for sample in family.samples
    }


class Sampler(threading.Thread):
    """RSS of the web server's process tree and the worker's, and the Celery queue depths
    (from /metrics), every ``interval`` seconds."""

    def __init__(self, web_pid: int, worker_pid: int, url: str, interval: float = 5.0):
        super().__init__(name="soak-rss", daemon=True)
        self.roots = {"web": web_pid, "worker": worker_pid}
        self.url = url
        self.interval = interval
        self.samples: dict[str, list[int]] = {"web": [], "worker": []}
        self.queue_depth_max: dict[str, int] = {}
        self.stop = threading.Event()

    def sample(self) -> None:
        for group, root in self.roots.items():
            self.samples[group].append(sum(rss_bytes(pid) for pid in process_tree(root)))
        try:
            depths = queue_depths(requests.get(f"{self.url}/metrics", timeout=10).text)
        except requests.RequestException:
            return
        for queue, depth in depths.items():
            self.queue_depth_max[queue] = max(depth, self.queue_depth_max.get(queue, 0))

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.sample()


# --- The run ------------------------------------------------------------------------------


def start_worker(server: PortalServer, log_path: Path) -> subprocess.Popen:
    """The worker `make run` starts: its scheduler embedded, two processes."""
    return subprocess.Popen(
        [
            *(venv_bin("celery"), "-A", "registry_portal", "worker", "--beat"),
            *("--loglevel", "INFO", "--concurrency", "2"),
            *("--schedule", str(server.data_dir / "celerybeat-schedule")),
        ],
        cwd=server.source_dir,
        env=server.env(),
        stdout=open(log_path, "ab"),  # noqa: SIM115 - the child holds it
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_worker(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def settlement(server: PortalServer) -> dict:
    output = server.manage("shell", "-c", SETTLEMENT)
    return json.loads(output.split("SETTLEMENT ", 1)[1])


def summarize(outcomes: list[Outcome]) -> dict[str, dict]:
    table = {}
    for operation in WEIGHTS:
        done = [o for o in outcomes if o.operation == operation]
        seconds = [o.seconds for o in done if not o.error]
        table[operation] = {
            "count": len(done),
            "errors": sum(1 for o in done if o.error),
            "p50_ms": round(percentile(seconds, 0.50) * 1000, 1),
            "p95_ms": round(percentile(seconds, 0.95) * 1000, 1),
            "p99_ms": round(percentile(seconds, 0.99) * 1000, 1),
        }
    return table


def run(minutes: float, clients: int) -> dict:
    env = {"WEB_WORKERS": os.environ.get("WEB_WORKERS", "2"), "LOG_LEVEL": "WARNING"}
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if broker:
        env["CELERY_BROKER_URL"] = broker
    with tempfile.TemporaryDirectory(prefix="soak-") as data:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(Path(data) / "prometheus")
        Path(env["PROMETHEUS_MULTIPROC_DIR"]).mkdir()
        with PortalServer(data, env=env) as server:
            tokens = server.setup(SETUP)["tokens"]
            assert "POLICY-OK" in server.manage("shell", "-c", POLICY)
            if broker:
                server.manage(
                    "shell", "-c", "from registry_portal.celery import app; app.control.purge()"
                )
            worker_log = Path(data) / "worker.log"
            worker = start_worker(server, worker_log)
            sampler = Sampler(server.process.pid, worker.pid, server.url)
            try:
                sampler.sample()
                sampler.start()
                started = time.monotonic()
                load = Load(server.url, tokens["soak"], started + minutes * 60)
                threads = [Client(number, load) for number in range(clients)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    # Bounded: an operation's own timeouts end it; never wait forever.
                    thread.join(timeout=max(0.0, load.deadline - time.monotonic()) + 400)
                load.stop.set()
                ran = time.monotonic() - started
                settle_started = time.monotonic()
                state = settlement(server)
                while (
                    state["unsettled"]
                    or state["stable_tags_without_record"]
                    or state["scans_unfinished"]
                ) and time.monotonic() - settle_started < 180:
                    time.sleep(5)
                    state = settlement(server)
                state["settle_seconds"] = round(time.monotonic() - settle_started, 1)
                metrics = requests.get(f"{server.url}/metrics", timeout=30)
            finally:
                sampler.stop.set()
                stop_worker(worker)
            statuses = server.status_counts()
            web_tracebacks = server.tracebacks()
            worker_text = worker_log.read_text(errors="replace")
            worker_tracebacks = worker_text.count("Traceback (most recent call last)")
    outcomes = load.outcomes
    table = summarize(outcomes)
    server_errors = sum(count for status, count in statuses.items() if int(status) >= 500)
    rss = {
        group: {
            "first_mib": round(values[0] / 2**20, 1) if values else 0,
            "last_mib": round(values[-1] / 2**20, 1) if values else 0,
            "max_mib": round(max(values) / 2**20, 1) if values else 0,
            "samples": len(values),
            "growth": rss_growth(values),
        }
        for group, values in sampler.samples.items()
    }
    errors = [o for o in outcomes if o.error]
    report = {
        "minutes": minutes,
        "clients": clients,
        "seconds": round(ran, 1),
        "database": "postgresql"
        if os.environ.get("DATABASE_URL", "").startswith("postgres")
        else "sqlite",
        "broker": broker.split("://")[0] if broker else "filesystem",
        "operations": table,
        "errors": len(errors),
        "error_samples": sorted({o.error for o in errors})[:10],
        "http_5xx": server_errors,
        "retried_requests": CountingRetry.retried,
        "queue_depth_max": sampler.queue_depth_max,
        "tracebacks": len(web_tracebacks) + worker_tracebacks,
        "traceback_samples": [t[-800:] for t in web_tracebacks[:2]],
        "rss": rss,
        "settlement": state,
        "metrics_ok": metrics.status_code == 200,
    }
    report["failures"] = failures(report)
    return report


def failures(report: dict) -> list[str]:
    found = []
    if report["errors"]:
        found.append(f"{report['errors']} operations failed")
    if report["http_5xx"]:
        found.append(f"{report['http_5xx']} responses were 5xx")
    if report["tracebacks"]:
        found.append(f"{report['tracebacks']} tracebacks in the logs")
    for group, figures in report["rss"].items():
        if figures["growth"]:
            found.append(f"{group}: {figures['growth']}")
    state = report["settlement"]
    if state["unsettled"]:
        found.append(f"{state['unsettled']} promotion records not settled")
    if state["stable_tags_without_record"]:
        found.append(f"{state['stable_tags_without_record']} -stable pushes have no record")
    if state["scans_unfinished"]:
        found.append(f"{state['scans_unfinished']} scans not finished")
    if not any(op["count"] for op in report["operations"].values()):
        found.append("no operation ran")
    return found


def print_report(report: dict) -> None:
    print(
        f"Soak: {report['clients']} clients for {report['seconds']:.0f} s on "
        f"{report['database']} + {report['broker']}"
    )
    print(f"  {'operation':<12}{'count':>7}{'errors':>8}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}")
    for operation, row in report["operations"].items():
        print(
            f"  {operation:<12}{row['count']:>7}{row['errors']:>8}{row['p50_ms']:>10.1f}"
            f"{row['p95_ms']:>10.1f}{row['p99_ms']:>10.1f}"
        )
    for group, figures in report["rss"].items():
        print(
            f"  RSS {group:<7} first {figures['first_mib']:.0f} MiB, last "
            f"{figures['last_mib']:.0f} MiB, max {figures['max_mib']:.0f} MiB "
            f"({figures['samples']} samples){' GROWING' if figures['growth'] else ''}"
        )
    state = report["settlement"]
    print(
        f"  promotion records: {state['records']} ({state['unsettled']} not settled, "
        f"{state['not_promoted']} not promoted); settled after {state['settle_seconds']} s"
    )
    print(
        f"  errors {report['errors']}, 5xx {report['http_5xx']}, tracebacks "
        f"{report['tracebacks']}; GET/HEAD retried on a reset connection: "
        f"{report['retried_requests']}"
    )
    depths = ", ".join(f"{queue} {depth}" for queue, depth in report["queue_depth_max"].items())
    print(f"  Celery queue depth, highest sampled (/metrics): {depths or 'not read'}")
    for sample in report["error_samples"]:
        print(f"    {sample}")
    for sample in report["traceback_samples"]:
        print(f"    {sample}")
    print("  " + ("PASS" if not report["failures"] else "FAIL: " + "; ".join(report["failures"])))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("MINUTES", 2)))
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not 0 < args.minutes <= 24 * 60:
        parser.error("--minutes must be above 0 and at most a day")
    report = run(args.minutes, args.clients)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
