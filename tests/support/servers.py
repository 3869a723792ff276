"""Live servers on free loopback ports, for end-to-end tests and the benchmark.

- ``PortalServer``: this project under gunicorn with ``registry_portal/gunicorn.conf.py`` (the
  server ``make run`` uses), its own data dir, and its own database: a SQLite file in the data
  dir, or, when ``DATABASE_URL`` points at PostgreSQL, a fresh database created on that
  server and dropped afterwards. Migrated before it starts; ``setup()`` creates users,
  organizations, teams, grants, repositories and access tokens through the project's
  services.
- ``ReferenceRegistry``: Debian's ``docker-registry`` (distribution 2.8) with a temp root
  directory, for comparison.

Both wait for readiness with bounded polling and always stop (terminate, then kill) in
``stop()``; use them as context managers. Logs go to a file in the data dir; ``log_text()``,
``tracebacks()`` and ``status_counts()`` read it.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = float(os.environ.get("E2E_START_TIMEOUT", "90"))
STOP_TIMEOUT = 15.0

# A combined/common access log line: ... "METHOD /path HTTP/1.1" STATUS SIZE ...
_ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) ')


class ServerError(RuntimeError):
    pass


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (bind to port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def venv_bin(name: str) -> str:
    """An executable next to the running Python (the venv), else on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise ServerError(f"cannot find the '{name}' executable")
    return found


def http_status_counts(log_text: str) -> collections.Counter:
    """Count HTTP statuses in an access log (gunicorn's and distribution's formats)."""
    return collections.Counter(int(m["status"]) for m in _ACCESS_LINE.finditer(log_text))


class _Process:
    """A server subprocess in its own process group, logging to a file."""

    name = "server"

    def __init__(self, data_dir: str | os.PathLike | None = None, *, port: int | None = None):
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix=f"{self.name}-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.log_path = self.data_dir / f"{self.name}.log"
        self.process: subprocess.Popen | None = None
        self._log_handle = None

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the registry host for image references."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def _spawn(self, argv: list[str], env: dict[str, str], cwd: Path = REPO_ROOT) -> None:
        self._log_handle = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: we can kill workers too
        )

    def _wait_ready(self, path: str = "/v2/", ok=lambda response: True) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        last_error = "no attempt"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with {self.process.returncode} while starting:\n"
                    + self.log_text()[-4000:]
                )
            try:
                response = requests.get(self.url + path, timeout=2)
                if ok(response):
                    return
                last_error = f"HTTP {response.status_code}"
            except requests.RequestException as exc:
                last_error = str(exc)
            time.sleep(0.1)
        raise ServerError(
            f"{self.name} not ready on {self.url} after {START_TIMEOUT}s ({last_error}):\n"
            + self.log_text()[-4000:]
        )

    def _terminate(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)  # the group we started
                process.wait(timeout=STOP_TIMEOUT)
        if process is not None:
            # Workers left behind by a master that died: same process group, started by us.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, offset: int) -> str:
        with contextlib.suppress(FileNotFoundError), open(self.log_path, "rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")
        return ""

    def tracebacks(self, since: int = 0) -> list[str]:
        """Each Python traceback in the log (since a byte offset), as text."""
        text = self.log_since(since)
        return [block for block in re.split(r"(?=Traceback \(most recent call last\))", text)[1:]]

    def status_counts(self, since: int = 0) -> collections.Counter:
        return http_status_counts(self.log_since(since))

    def requests_logged(self, since: int = 0) -> list[tuple[str, str, int]]:
        """``(method, path, status)`` of each request in the access log since an offset."""
        return [
            (m["method"], m["path"], int(m["status"]))
            for m in _ACCESS_LINE.finditer(self.log_since(since))
        ]

    def cleanup(self) -> None:
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def stop(self) -> None:
        self._terminate()


# --- PostgreSQL: one fresh database per live server -------------------------------------------


def _is_postgres(url: str) -> bool:
    return urlsplit(url).scheme in {"postgres", "postgresql", "pgsql", "postgis"}


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _pg_connect(url: str):
    import psycopg

    parts = urlsplit(url)
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, ""))
    return psycopg.connect(conninfo, autocommit=True, connect_timeout=10)


def postgres_create_database(url: str) -> str:
    """Create a fresh database on the server of ``url``; return the URL that points at it."""
    name = f"portal_live_{secrets.token_hex(6)}"
    with _pg_connect(url) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return _with_database(url, name)


def postgres_drop_database(admin_url: str, database_url: str) -> None:
    name = urlsplit(database_url).path.lstrip("/")
    if not re.fullmatch(r"portal_live_[0-9a-f]+", name):  # only ever drop what we created
        raise ValueError(f"refusing to drop {name!r}")
    with _pg_connect(admin_url) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- Our portal -------------------------------------------------------------------------------

_SETUP_SCRIPT = r"""
import json, os
from django.contrib.auth import get_user_model
from registry_portal.accounts import services as accounts
from registry_portal.accounts.choices import AccessLevel
from registry_portal.accounts.models import Organization, Team
from registry_portal.registry import services as registry
from registry_portal.registry.selectors import repository_get_by_full_name

spec = json.loads(os.environ["PORTAL_SETUP_JSON"])
User = get_user_model()
LEVELS = {"read-only": AccessLevel.READ_ONLY, "read-write": AccessLevel.READ_WRITE,
          "admin": AccessLevel.ADMIN}
result = {"tokens": {}}

def user(name):
    return User.objects.get(username=name)

for u in spec.get("users", []):
    if not User.objects.filter(username=u["username"]).exists():
        make = User.objects.create_superuser if u.get("superuser") else User.objects.create_user
        make(username=u["username"], password=u["password"], email=u.get("email", ""))
for o in spec.get("orgs", []):
    org = Organization.objects.filter(name=o["name"]).first()
    if org is None:
        org = accounts.organization_create(name=o["name"])
    for name in o.get("admins", []):
        accounts.membership_set(organization=org, user=user(name), is_admin=True)
    for name in o.get("members", []):
        accounts.membership_set(organization=org, user=user(name))
for r in spec.get("repositories", []):
    if repository_get_by_full_name(full_name=r["name"]) is None:
        namespace, _, name = r["name"].partition("/")
        registry.repository_create(
            namespace=Organization.objects.get(name=namespace), name=name,
            is_public=r.get("public", False), immutable_tags=r.get("immutable_tags", False))
for t in spec.get("teams", []):
    org = Organization.objects.get(name=t["org"])
    team = Team.objects.filter(organization=org, name=t["name"]).first()
    if team is None:
        team = accounts.team_create(organization=org, name=t["name"])
    for name in t.get("members", []):
        accounts.team_add_member(team=team, user=user(name))
    for g in t.get("grants", []):
        repo = g.get("repository") and repository_get_by_full_name(full_name=g["repository"])
        accounts.access_grant(team=team, level=LEVELS[g["level"]], repository=repo or None)
for k in spec.get("tokens", []):
    _, secret = accounts.access_token_create(user=user(k["user"]), name=k["name"])
    result["tokens"][k["name"]] = secret
print("PORTAL-SETUP-RESULT " + json.dumps(result))
"""


@functools.cache
def _gunicorn_has_control_socket(gunicorn: str) -> bool:
    completed = subprocess.run(
        [gunicorn, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    return "--no-control-socket" in completed.stdout


class PortalServer(_Process):
    """This portal under gunicorn, on a free loopback port, with its own data and database."""

    name = "portal"

    def __init__(
        self,
        data_dir=None,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
        database_url: str | None = None,
        access_log: bool = True,
        source_dir: str | os.PathLike | None = None,
    ):
        super().__init__(data_dir, port=port)
        # The code to run: this checkout, or PORTAL_SOURCE_DIR (e.g. a `git archive HEAD`
        # export, to measure committed code while the work tree is being edited).
        self.source_dir = Path(source_dir or os.environ.get("PORTAL_SOURCE_DIR") or REPO_ROOT)
        self.extra_env = dict(env or {})
        self.admin_database_url = (
            database_url if database_url is not None else os.environ.get("DATABASE_URL", "")
        )
        self.database_url = ""  # the one this server uses (set in start)
        self.access_log = access_log
        self._created_database = False

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("DATABASE_URL", None)
        # Tasks the live server queues (scans, promotions) stay in its own data dir (kombu's
        # filesystem transport): on a shared broker (CI's Redis) a worker started by another
        # test, on another database, would take them.
        env.pop("CELERY_BROKER_URL", None)
        env.pop("CELERY_TASK_ALWAYS_EAGER", None)
        env.update(
            DJANGO_SETTINGS_MODULE="registry_portal.settings",
            PORTAL_DATA_DIR=str(self.data_dir),
            HOST="127.0.0.1",
            PORT=str(self.port),
            PORTAL_URL=self.url,
            PYTHONUNBUFFERED="1",
        )
        if self.database_url:
            env["DATABASE_URL"] = self.database_url
        if self.access_log:
            env["WEB_ACCESS_LOG"] = "-"
        env.update(self.extra_env)
        return env

    def manage(self, *args: str, env: dict | None = None, timeout: float = 300) -> str:
        """Run ``manage.py`` with this server's environment; return stdout, raise on failure."""
        completed = subprocess.run(
            [venv_bin("python"), str(self.source_dir / "manage.py"), *args],
            cwd=self.source_dir,
            env={**self.env(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if completed.returncode != 0:
            raise ServerError(
                f"manage.py {' '.join(args)[:80]} failed ({completed.returncode}):\n"
                f"{completed.stdout[-2000:]}\n{completed.stderr[-4000:]}"
            )
        return completed.stdout

    def setup(self, spec: dict) -> dict:
        """Create users, orgs, repositories, teams, grants and tokens. Idempotent by name.

        ``spec``: ``{"users": [{"username", "password", "superuser"?}],
        "orgs": [{"name", "admins": [...], "members": [...]}],
        "repositories": [{"name": "org/repo", "public": bool, "immutable_tags": bool}],
        "teams": [{"org", "name", "members": [...],
                   "grants": [{"level": "read-only|read-write|admin", "repository"?}]}],
        "tokens": [{"user", "name"}]}``. Returns ``{"tokens": {name: secret}}``.
        """
        output = self.manage(
            "shell", "-c", _SETUP_SCRIPT, env={"PORTAL_SETUP_JSON": json.dumps(spec)}
        )
        for line in output.splitlines():
            if line.startswith("PORTAL-SETUP-RESULT "):
                return json.loads(line.split(" ", 1)[1])
        raise ServerError(f"setup printed no result:\n{output[-2000:]}")

    def start(self) -> None:
        if self.admin_database_url and _is_postgres(self.admin_database_url):
            self.database_url = postgres_create_database(self.admin_database_url)
            self._created_database = True
        elif self.admin_database_url:
            self.database_url = self.admin_database_url
        self.manage("migrate", "--noinput")
        gunicorn = venv_bin("gunicorn")
        argv = [gunicorn, "-c", str(self.source_dir / "registry_portal" / "gunicorn.conf.py")]
        if _gunicorn_has_control_socket(gunicorn):
            # gunicorn >= 24 listens on ~/.gunicorn/gunicorn.ctl by default: several live
            # servers (tests, benchmark, `make run`) would fight over it.
            argv.append("--no-control-socket")
        self._spawn([*argv, "registry_portal.wsgi"], self.env(), cwd=self.source_dir)
        self._wait_ready()

    def stop(self) -> None:
        try:
            self._terminate()
        finally:
            if self._created_database:
                self._created_database = False
                with contextlib.suppress(Exception):
                    postgres_drop_database(self.admin_database_url, self.database_url)
            self.cleanup()


# --- The reference: distribution 2.8 ----------------------------------------------------------


def _merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


class ReferenceRegistry(_Process):
    """Debian's ``docker-registry serve`` with a temp root directory, no auth by default.

    ``config`` is merged into the generated configuration (e.g. an ``auth: token`` section).
    The file is JSON, which the registry's YAML parser reads.
    """

    name = "reference"

    def __init__(self, data_dir=None, *, port: int | None = None, config: dict | None = None):
        super().__init__(data_dir, port=port)
        self.config = _merge(
            {
                "version": "0.1",
                "log": {"level": "info", "accesslog": {"disabled": False}},
                "storage": {
                    "filesystem": {"rootdirectory": str(self.data_dir / "storage")},
                    "delete": {"enabled": True},
                    "cache": {"blobdescriptor": "inmemory"},
                    "maintenance": {"uploadpurging": {"enabled": False}},
                },
                "http": {"addr": self.host, "secret": secrets.token_hex(16)},
            },
            config or {},
        )

    def start(self) -> None:
        executable = shutil.which("docker-registry")
        if executable is None:
            raise ServerError("docker-registry is not installed (apt-get install docker-registry)")
        config_path = self.data_dir / "config.yml"
        config_path.write_text(json.dumps(self.config, indent=2))
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        self._spawn([executable, "serve", str(config_path)], env)
        self._wait_ready()

    def stop(self) -> None:
        try:
            self._terminate()
        finally:
            self.cleanup()


# --- A Celery worker ----------------------------------------------------------------------


class CeleryWorker:
    """A real ``celery worker`` child process (solo pool), with the environment given: a live
    portal's (``server.env()``) or the test database's. ``stop`` (or ``stop(SIGKILL)``)
    always ends it; its log is kept in ``log_path``."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: str | os.PathLike,
        *,
        cwd: str | os.PathLike = REPO_ROOT,
    ):
        self.env = env
        self.cwd = cwd
        self.log_path = Path(log_path)
        self.process: subprocess.Popen | None = None
        self._log = None

    def start(self) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                *(venv_bin("celery"), "-A", "registry_portal", "worker", "--pool", "solo"),
                *("--loglevel", "INFO", "--without-gossip", "--without-mingle"),
                "--without-heartbeat",
            ],
            cwd=self.cwd,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, for kill_group()
        )

    def kill_group(self) -> None:
        """SIGKILL the worker's process group (a machine or OOM killer's way), and reap it."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.stop()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class CeleryBeat(CeleryWorker):
    """A real ``celery beat`` child process (the periodic tasks: the outbox sweeper), with its
    schedule file next to its log."""

    def start(self) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        schedule = self.log_path.with_name(self.log_path.stem + "-schedule")
        self.process = subprocess.Popen(
            [
                venv_bin("celery"),
                "-A",
                "registry_portal",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(schedule),
            ],
            cwd=self.cwd,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def own_redis_broker(database: int) -> dict[str, str]:
    """Environment giving a live portal a Redis database of its own when the run uses Redis
    (so no other test's worker takes its tasks); {} leaves it its filesystem broker. Redis
    named but not answering skips the test (fails it with REQUIRE_SERVICES=1)."""
    if not os.environ.get("CELERY_BROKER_URL", "").startswith("redis://"):
        return {}
    from tests.services import need, port_open

    need(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
    return {"CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{database}", "CELERY_VISIBILITY": "4"}
