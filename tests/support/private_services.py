"""Services a fault test owns and may stop: a Redis server and a PostgreSQL cluster of its own,
on free loopback ports, never the shared ones (6379, 5432) other tests and helpers use.

- ``PrivateRedis``: ``redis-server`` with no persistence; ``stop()`` and ``start()`` again on
  the same port (a broker outage; it comes back empty, as a restarted Redis without
  persistence does).
- ``PrivatePostgres``: ``initdb`` + ``pg_ctl`` from ``/usr/lib/postgresql/*/bin`` in a
  temporary directory, as the ``postgres`` user when run as root (initdb refuses root);
  ``stop()`` (fast: open connections are cut) and ``start()`` again on the same port.

Both always end in ``close()`` (or as context managers) and wait with bounded polling.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .servers import ServerError, free_port

WAIT_SECONDS = 30.0


def _wait_port(port: int, *, open_: bool, timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                is_open = True
        except OSError:
            is_open = False
        if is_open == open_:
            return
        time.sleep(0.1)
    raise ServerError(f"port {port} still {'closed' if open_ else 'open'} after {timeout}s")


class PrivateRedis:
    """A redis-server of this test's own, on a free port."""

    def __init__(self, directory: str | os.PathLike | None = None):
        self.executable = shutil.which("redis-server")
        if self.executable is None:
            raise ServerError("redis-server is not installed")
        self.directory = Path(directory or tempfile.mkdtemp(prefix="redis-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def url(self, database: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(
            [
                *(self.executable, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        _wait_port(self.port, open_=True)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.kill()  # an outage, not a clean shutdown
        process.wait(timeout=10)
        _wait_port(self.port, open_=False)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def postgres_bin() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin with initdb, if any."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    return Path(candidates[-1]).parent if candidates else None


class PrivatePostgres:
    """A PostgreSQL cluster of this test's own (trust authentication, loopback only)."""

    def __init__(self):
        self.bin = postgres_bin()
        if self.bin is None:
            raise ServerError("PostgreSQL's server programs are not installed")
        self.root = Path(tempfile.mkdtemp(prefix="pg-private-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.user = None
        if os.geteuid() == 0:
            try:
                self.user = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise ServerError("running as root needs a 'postgres' user for initdb") from exc
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
        self.root.chmod(0o755)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str, timeout: float = 120) -> None:
        command = [str(self.bin / argv[0]), *argv[1:]]
        if self.user is not None:
            command = ["runuser", "-u", "postgres", "--", *command]
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, check=False, cwd=self.root
        )
        if completed.returncode != 0:
            raise ServerError(f"{' '.join(argv[:2])} failed:\n{completed.stdout}{completed.stderr}")

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-o",
            options,
            "-w",
            "start",
        )
        _wait_port(self.port, open_=True)

    def stop(self) -> None:
        with contextlib.suppress(ServerError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        _wait_port(self.port, open_=False)

    def log_text(self) -> str:
        try:
            return (self.root / "log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(ServerError):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self):
        try:
            self.init()
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
