"""Nothing lost when a worker, the broker or the database fails: real processes, real faults.

A live portal (gunicorn), a real Celery worker and a real ``celery beat`` (the outbox's
sweeper), with short timeouts so a fault heals in seconds: the sweeper runs every second, a
dispatched job not done after 6 s is dispatched again, a scan claim is stale after 6 s.
Every stable tag pushed to dev/website must end up promoted to qa/website exactly once (one
record, one target tag event), and no scan may stay running or queued.

The faults: the worker's process group SIGKILLed mid-task (on kombu's filesystem transport,
which deletes a message when it is fetched, and on Redis); the broker down for 10 s while
pushes go on (a Redis of the test's own); PostgreSQL stopped for 8 s (a cluster of the test's
own); ``make run``'s worker killed; the dispatcher and the sweeper racing on the same jobs.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.services import need, need_tool, port_open
from tests.support import images
from tests.support.clients import Skopeo
from tests.support.private_services import PrivatePostgres, PrivateRedis, postgres_bin
from tests.support.servers import (
    REPO_ROOT,
    CeleryBeat,
    CeleryWorker,
    PortalServer,
    ServerError,
    venv_bin,
)

PASSWORD = "Nothing-Lost-pw-42"
REDIS_DATABASE = 14  # this test module's database on the shared Redis
SETTLE_SECONDS = 30.0  # the bound the issue sets, from the worker's (or broker's) return
FAST = {
    "OUTBOX_SWEEP_SECONDS": "1",
    "OUTBOX_VISIBILITY_SECONDS": "6",
    "OUTBOX_DISPATCH_GRACE_SECONDS": "1",
    "SCAN_STALE_SECONDS": "6",
    "CELERY_VISIBILITY": "4",
    "LOG_LEVEL": "INFO",
}
SPEC = {
    "users": [{"username": u, "password": PASSWORD} for u in ("lead", "dev1")],
    "orgs": [{"name": "dev", "admins": ["lead"]}, {"name": "qa", "admins": ["lead"]}],
    "repositories": [{"name": "dev/website"}, {"name": "qa/website"}],
    "teams": [
        {
            "org": "dev",
            "name": "developers",
            "members": ["dev1"],
            "grants": [{"level": "read-write"}],
        }
    ],
}
# A stable tag whose image has the package "hello" (so the policy waits for the scan).
POLICY = r"""
from django.contrib.auth import get_user_model
from promotions import services
from registry_portal.registry.selectors import repository_get_by_full_name as repo
services.policy_create(
    actor=get_user_model().objects.get(username="lead"),
    source=repo(full_name="dev/website"), target=repo(full_name="qa/website"), name="to qa",
    rules=[{"field": "tag_name", "operator": "ew", "values": ["stable"]},
           {"field": "component_name", "operator": "oo", "values": ["hello"]}])
print("POLICY-OK")
"""
DPKG_STATUS = (
    b"Package: hello\nStatus: install ok installed\nVersion: 2.10-3\nArchitecture: amd64\n"
    b"Source: hello\n\n"
)
OS_RELEASE = b'ID=debian\nVERSION_ID="12"\n'


# --- reading the portal's database from the test ----------------------------------------------


class PortalDatabase:
    """Plain SQL on a live portal's database (SQLite file or PostgreSQL), one connection per
    query; ``None`` while the database does not answer."""

    def __init__(self, portal: PortalServer):
        self.portal = portal

    def rows(self, sql: str, params: tuple = ()) -> list[tuple] | None:
        url = self.portal.database_url
        try:
            if not url:
                path = self.portal.data_dir / "portal.sqlite3"
                with contextlib.closing(sqlite3.connect(path, timeout=30)) as connection:
                    return connection.execute(sql, params).fetchall()
            import psycopg

            conninfo = "postgresql" + url[url.index("://") :]
            with psycopg.connect(conninfo, connect_timeout=3) as connection:
                return connection.execute(sql.replace("?", "%s"), params).fetchall()
        except Exception:  # noqa: BLE001 - a database that is down answers nothing
            return None

    def settled(self, expected: dict[str, str]) -> str | None:
        """None when every tag in ``expected`` (tag -> digest) is promoted exactly once and
        nothing is left running; otherwise what is still missing."""
        records = self.rows(
            "SELECT source_tag, digest, outcome FROM promotions_promotionrecord "
            "WHERE policy_name = 'to qa'"
        )
        events = self.rows(
            "SELECT e.tag_name, e.new_digest FROM registry_tagevent e "
            "JOIN registry_repository r ON r.id = e.repository_id "
            "JOIN accounts_organization o ON o.id = r.namespace_id "
            "WHERE o.name = 'qa' AND r.name = 'website'"
        )
        scans = self.rows(
            "SELECT status FROM scanning_scanreport WHERE status IN ('queued', 'running')"
        )
        if records is None or events is None or scans is None:
            return "the database does not answer"
        for tag, digest in expected.items():
            mine = [(d, outcome) for t, d, outcome in records if t == tag]
            if mine != [(digest, "promoted")]:
                return f"{tag}: records {mine}"
            if [d for t, d in events if t == tag] != [digest]:
                return f"{tag}: target tag events {[e for e in events if e[0] == tag]}"
        if scans:
            return f"{len(scans)} scan(s) {sorted({s for (s,) in scans})}"
        return None

    def exactly_once_violations(self, expected: dict[str, str]) -> list[str]:
        """Duplicates, which no waiting can repair: more than one record or target event."""
        records = self.rows("SELECT source_tag FROM promotions_promotionrecord") or []
        events = (
            self.rows(
                "SELECT e.tag_name FROM registry_tagevent e "
                "JOIN registry_repository r ON r.id = e.repository_id "
                "JOIN accounts_organization o ON o.id = r.namespace_id "
                "WHERE o.name = 'qa' AND r.name = 'website'"
            )
            or []
        )
        problems = []
        for tag in expected:
            if sum(1 for (t,) in records if t == tag) > 1:
                problems.append(f"{tag}: several promotion records")
            if sum(1 for (t,) in events if t == tag) > 1:
                problems.append(f"{tag}: several target tag events")
        return problems

    def unfinished_jobs(self) -> list[tuple]:
        return self.rows(
            "SELECT id, kind, args, state, attempts, last_error FROM outbox_outboxjob "
            "WHERE state IN ('pending', 'dispatched')"
        )


# --- the world --------------------------------------------------------------------------------


class World:
    """A portal with the policy, plus a worker and a scheduler it can kill and start again."""

    def __init__(self, portal: PortalServer, logs: Path, skopeo: Skopeo):
        self.portal = portal
        self.logs = logs
        self.skopeo = skopeo
        self.db = PortalDatabase(portal)
        self.worker: CeleryWorker | None = None
        self.beat: CeleryBeat | None = None
        self.pushed: dict[str, str] = {}
        self._workers = 0

    def start_worker(self) -> CeleryWorker:
        self._workers += 1
        self.worker = CeleryWorker(
            self.portal.env(), self.logs / f"worker-{self._workers}.log", cwd=REPO_ROOT
        )
        self.worker.start()
        return self.worker

    def start_beat(self) -> None:
        self.beat = CeleryBeat(self.portal.env(), self.logs / "beat.log", cwd=REPO_ROOT)
        self.beat.start()

    def stop(self) -> None:
        for process in (self.worker, self.beat):
            if process is not None:
                process.stop()

    def push(self, tag: str, *, size: int = 256) -> str:
        layout = self.logs / f"img-{tag}"
        image = images.write_image(
            layout,
            tag="t",
            layers=[
                images.LayerSpec(
                    files={"var/lib/dpkg/status": DPKG_STATUS, "etc/os-release": OS_RELEASE},
                    random_size=size,
                )
            ],
        )
        self.skopeo.push(
            layout,
            "t",
            f"{self.portal.host}/dev/website:{tag}",
            creds=("dev1", PASSWORD),
            check=True,
            timeout=120,
        )
        self.pushed[tag] = image.digest
        return image.digest

    def logs_text(self) -> str:
        parts = [
            f"--- {path.name}:\n{path.read_text(errors='replace')[-2500:]}"
            for path in sorted(self.logs.glob("*.log"))
        ]
        parts.append(f"--- portal:\n{self.portal.log_text()[-2500:]}")
        return "\n".join(parts)

    def wait_jobs_done(self, timeout: float = SETTLE_SECONDS) -> None:
        """Every outbox job done (none pending, none dispatched and unfinished)."""
        deadline = time.monotonic() + timeout
        while (unfinished := self.db.unfinished_jobs()) != [] and time.monotonic() < deadline:
            time.sleep(0.3)
        assert unfinished == [], f"{unfinished}\n{self.logs_text()}"

    def wait_settled(self, *, since: float, timeout: float = SETTLE_SECONDS) -> float:
        """Seconds from ``since`` until everything pushed is settled; fails after timeout."""
        missing = "not checked"
        while time.monotonic() < since + timeout:
            duplicates = self.db.exactly_once_violations(self.pushed)
            assert not duplicates, duplicates
            missing = self.db.settled(self.pushed)
            if missing is None:
                return time.monotonic() - since
            time.sleep(0.3)
        pytest.fail(f"not settled {timeout}s after the fault healed: {missing}\n{self.logs_text()}")


def redis_broker_env(kind: str) -> dict[str, str]:
    """The broker of a test: kombu's filesystem transport in the portal's data dir, or this
    module's database on the shared Redis (emptied first: it is ours)."""
    if kind == "filesystem":
        return {}
    need(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
    import redis

    url = f"redis://127.0.0.1:6379/{REDIS_DATABASE}"
    redis.Redis.from_url(url).flushdb()
    return {"CELERY_BROKER_URL": url}


@contextlib.contextmanager
def world_of(tmp_path: Path, *, env: dict[str, str], database_url: str | None = None):
    skopeo = Skopeo(need_tool("skopeo"), workdir=tmp_path / "skopeo")
    logs = tmp_path / "logs"
    logs.mkdir()
    portal = PortalServer(tmp_path / "portal", env={**FAST, **env}, database_url=database_url)
    with portal:
        portal.setup(SPEC)
        assert "POLICY-OK" in portal.manage("shell", "-c", POLICY)
        world = World(portal, logs, skopeo)
        try:
            yield world
        finally:
            world.stop()


_TASK_LINE = re.compile(
    r"((?:promotions|scanning)\.tasks\.\w+)\[(?P<id>[0-9a-f-]+)\] (?P<what>received|succeeded)"
)


def tasks_in_hand(log: str) -> set[str]:
    """Ids of the scan and promotion tasks a worker received and has not finished."""
    received, finished = set(), set()
    for match in _TASK_LINE.finditer(log):
        (received if match["what"] == "received" else finished).add(match["id"])
    return received - finished


def in_hand_lines(worker: CeleryWorker) -> list[str]:
    log = worker.output()
    return [line for line in log.splitlines() if any(i in line for i in tasks_in_hand(log))]


def received_lines(worker: CeleryWorker, task: str) -> int:
    return sum(
        1 for line in worker.output().splitlines() if f"{task}[" in line and "received" in line
    )


# --- the faults -------------------------------------------------------------------------------


@pytest.mark.parametrize("broker", ["filesystem", "redis"])
def test_a_worker_killed_mid_task_loses_nothing(tmp_path, broker):
    """Three times: pushes go on while the worker's process group is SIGKILLed as soon as it
    holds a scan or a promotion it has not finished; a new worker comes. Every stable tag is
    then promoted exactly once within 30 s, and no scan stays running. (Before the outbox: a
    promotion lost on the filesystem transport, and scans left running for good.)"""
    with world_of(tmp_path, env=redis_broker_env(broker)) as world:
        world.start_beat()
        world.start_worker()
        killed_while_busy = 0
        for round_ in range(3):
            tags = [f"r{round_}-{n}-stable" for n in range(4)]
            offset = len(world.worker.output())
            pushes = threading.Thread(target=lambda tags=tags: [world.push(t) for t in tags])
            pushes.start()
            deadline = time.monotonic() + 60
            while not tasks_in_hand(world.worker.output()[offset:]):
                assert time.monotonic() < deadline, world.logs_text()
                time.sleep(0.01)
            world.worker.kill_group()  # holding a scan or a promotion it has not finished
            killed_while_busy += bool(tasks_in_hand(world.worker.output()[offset:]))
            pushes.join(timeout=120)
            assert not pushes.is_alive()
            world.start_worker()
        returned = time.monotonic()
        took = world.wait_settled(since=returned)
        assert killed_while_busy >= 1, "no kill hit a task: the test proved nothing"
        world.wait_jobs_done()
        print(f"{broker}: settled {took:.1f}s after the worker returned")


def test_the_broker_down_for_10_s_fails_no_push_and_loses_no_work(tmp_path):
    """A Redis of the test's own stops for 10 s while pushes go on: each manifest PUT answers
    201, and every promotion and scan happens once the broker is back. (Before: 500s, and
    nothing queued for those tags.)"""
    try:
        broker = PrivateRedis(tmp_path / "redis")
    except ServerError as exc:
        need(False, str(exc))
    with broker, world_of(tmp_path, env={"CELERY_BROKER_URL": broker.url(0)}) as world:
        world.start_beat()
        world.start_worker()
        world.push("before-stable")
        world.wait_settled(since=time.monotonic())
        log_offset = world.portal.log_size()
        broker.stop()
        down_at = time.monotonic()
        for n in range(3):
            world.push(f"during-{n}-stable")  # check=True: skopeo succeeded
        time.sleep(max(0.0, 10 - (time.monotonic() - down_at)))
        broker.start()
        back = time.monotonic()
        requests = world.portal.requests_logged(since=log_offset)
        puts = [
            status for method, path, status in requests if method == "PUT" and "/manifests/" in path
        ]
        assert puts == [201, 201, 201], requests
        assert not [r for r in requests if r[2] >= 500], requests
        took = world.wait_settled(since=back)
        world.wait_jobs_done()
        print(f"broker down: settled {took:.1f}s after it returned")


def test_postgresql_stopped_for_8_s_lets_every_scan_and_promotion_settle(tmp_path):
    """A PostgreSQL cluster of the test's own stops for 8 s in the middle of a scan, while the
    worker works through a backlog: every scan and promotion settles once it is back (before:
    the scan stayed running, and the promotion waiting for it waited for good)."""
    if postgres_bin() is None or not shutil.which("runuser"):
        need(False, "PostgreSQL's server programs (initdb, pg_ctl) and runuser")
    with (
        PrivatePostgres() as cluster,
        world_of(
            tmp_path,
            # The claim outlives the outage: the task's own retry after it finds the claim
            # live and leaves (before the outbox, for good); it is stale 20 s after it began.
            env={
                **redis_broker_env("redis" if _ci_redis() else "filesystem"),
                "SCAN_STALE_SECONDS": "20",
            },
            database_url=cluster.url,
        ) as world,
    ):
        world.start_beat()
        for n in range(3):
            # Big enough that the database goes away in the middle of a scan.
            world.push(f"pg-{n}-stable", size=48 * 1024 * 1024)  # queued: no worker yet
        world.start_worker()
        deadline = time.monotonic() + 60
        while not any("scan_manifest_task" in line for line in in_hand_lines(world.worker)):
            assert time.monotonic() < deadline, world.logs_text()
            time.sleep(0.01)
        cluster.stop()
        time.sleep(8)
        cluster.start()
        took = world.wait_settled(since=time.monotonic())
        assert "OperationalError" in world.worker.output()  # the outage hit the work
        world.wait_jobs_done()
        print(f"postgresql down: settled {took:.1f}s after it returned")


def test_the_dispatcher_and_the_sweeper_racing_give_one_target_tag_event(tmp_path):
    """Jobs dispatched at commit, then dispatched again by two sweeps at once that take every
    unfinished job as timed out: each promotion runs several times, and still one record and
    one target tag event result per tag."""
    with world_of(tmp_path, env={}) as world:
        for n in range(3):
            world.push(f"race-{n}-stable")  # dispatched at commit; no worker yet
        sweep = "from registry_portal.outbox.services import outbox_sweep; print(outbox_sweep())"
        racing = [
            subprocess.Popen(
                [venv_bin("python"), "manage.py", "shell", "-c", sweep],
                cwd=REPO_ROOT,
                env={**world.portal.env(), "OUTBOX_VISIBILITY_SECONDS": "0"},
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        dispatched = [int(process.communicate(timeout=120)[0].split()[-1]) for process in racing]
        assert sum(dispatched) >= 6, dispatched  # each of the 6 jobs, once or more
        worker = world.start_worker()
        world.wait_settled(since=time.monotonic())
        deliveries = received_lines(worker, "promotions.tasks.promote_pushed_tag")
        assert deliveries > 3, worker.output()[-3000:]  # more deliveries than pushes...
        assert not world.db.exactly_once_violations(world.pushed)  # ...one effect each


def _ci_redis() -> bool:
    return os.environ.get("CELERY_BROKER_URL", "").startswith("redis://")


# --- make run ---------------------------------------------------------------------------------


class RunPortal:
    """``scripts/run-portal.sh`` (what ``make run`` starts), in its own process group."""

    def __init__(self, portal: PortalServer, log_path: Path):
        self.portal = portal
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.run_dir = portal.data_dir / "run"

    def start(self) -> None:
        env = {**self.portal.env(), "BIN": str(Path(venv_bin("python")).parent), "STOP_GRACE": "5"}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                ["bash", str(REPO_ROOT / "scripts" / "run-portal.sh")],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.portal._wait_ready()

    def pid(self, name: str, *, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(FileNotFoundError, ValueError):
                pid = int((self.run_dir / f"{name}.pid").read_text())
                if alive(pid):
                    return pid
            time.sleep(0.1)
        raise AssertionError(f"no live {name} after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def signal_group(self, sig: int) -> None:
        os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(FileNotFoundError):
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return False
    return True


def group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def make_run(tmp_path: Path):
    skopeo = Skopeo(need_tool("skopeo"), workdir=tmp_path / "skopeo")
    logs = tmp_path / "logs"
    logs.mkdir()
    portal = PortalServer(tmp_path / "portal", env=FAST)
    run = RunPortal(portal, logs / "run-portal.log")
    groups: list[int] = []
    try:
        # What `make run` does before the script: the database, the users, the policy.
        if portal.admin_database_url.startswith("postgres"):
            from tests.support.servers import postgres_create_database

            portal.database_url = postgres_create_database(portal.admin_database_url)
            portal._created_database = True
        portal.manage("migrate", "--noinput")
        portal.setup(SPEC)
        assert "POLICY-OK" in portal.manage("shell", "-c", POLICY)
        run.start()
        world = World(portal, logs, skopeo)
        yield run, world, groups
    finally:
        run.kill()
        for group in groups:  # whatever the script left behind: our own children
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        portal.stop()


def test_make_run_survives_its_worker_and_stops_cleanly(tmp_path):
    """``make run``'s worker is SIGKILLed: the web server goes on answering, a new worker
    comes, the work queued meanwhile completes; then TERM stops every process."""
    with make_run(tmp_path) as (run, world, groups):
        web, beat, worker = run.pid("web"), run.pid("beat"), run.pid("worker")
        groups += [web, beat, worker]
        world.push("1-stable")
        world.wait_settled(since=time.monotonic())
        os.killpg(worker, signal.SIGKILL)
        import requests

        statuses = [requests.get(world.portal.url + "/v2/", timeout=5).status_code]
        world.push("2-stable")  # while the worker is down (or just coming back)
        statuses.append(requests.get(world.portal.url + "/v2/", timeout=5).status_code)
        new_worker = run.pid("worker")
        assert new_worker != worker
        groups.append(new_worker)
        assert statuses == [401, 401]
        assert run.pid("web") == web  # the same web server all along
        world.wait_settled(since=time.monotonic())

        run.signal_group(signal.SIGTERM)
        run.process.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(group_alive(g) for g in groups) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [g for g in groups if group_alive(g)], run.log()


def test_ctrl_c_stops_make_run_every_time(tmp_path):
    """SIGINT to the process group (a terminal's Ctrl-C), twice in a row: every process of the
    portal ends within the grace period, none hangs (the embedded beat used to)."""
    with make_run(tmp_path) as (run, world, groups):
        for attempt in range(2):
            if attempt:
                run.start()
            groups[:] = [run.pid("web"), run.pid("beat"), run.pid("worker")]
            started = time.monotonic()
            run.signal_group(signal.SIGINT)
            run.process.wait(timeout=30)
            deadline = time.monotonic() + 10
            while any(group_alive(g) for g in groups) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not [g for g in groups if group_alive(g)], run.log()
            stopped_in = time.monotonic() - started
            assert stopped_in < 20, run.log()
            print(f"Ctrl-C #{attempt + 1}: everything stopped in {stopped_in:.1f}s")
