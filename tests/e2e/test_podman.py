"""podman push and pull against the live portal (and the reference registry).

podman runs here as root without a container engine: each test gets its own vfs storage
(``--root``/``--runroot`` in tmp), cgroupfs and file events, and plain HTTP with
``--tls-verify=false``. A cheap probe (``podman info``) first checks that podman can run at
all on this machine; when it cannot, for environmental reasons (no user namespaces, no
storage driver, ...), the tests are skipped with podman's own reason, even in CI, because
"podman where podman works" is the requirement.

podman re-compresses layers from its storage when it pushes, so the pushed digests differ
from the source layout; what must round-trip exactly is what podman pushed (manifest digest)
and the layer contents (the config's ``diff_ids``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.services import need_tool
from tests.support import images
from tests.support.clients import Result

from .conftest import creds, unique_repo
from .test_skopeo import assert_permission_error

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


class Podman:
    def __init__(self, executable: str, workdir: Path):
        self.executable = executable
        self.workdir = workdir
        for sub in ("root", "tmp"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        # podman refuses a runroot longer than 50 characters: pytest's tmp paths are longer.
        self.runroot = Path(tempfile.mkdtemp(prefix="podman-run-", dir="/tmp"))
        self.auth_file = workdir / "auth.json"
        self.auth_file.write_text('{"auths": {}}')

    def argv(self, *args: str) -> list[str]:
        return [
            self.executable,
            "--storage-driver=vfs",
            f"--root={self.workdir / 'root'}",
            f"--runroot={self.runroot}",
            f"--tmpdir={self.workdir / 'tmp'}",
            "--cgroup-manager=cgroupfs",
            "--events-backend=file",
            *args,
        ]

    def run(self, *args: str, timeout: float = 300) -> Result:
        argv = self.argv(*args)
        completed = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={**os.environ, "REGISTRY_AUTH_FILE": str(self.auth_file)},
        )
        return Result(argv, completed.returncode, completed.stdout, completed.stderr, 0.0)

    def cleanup(self) -> None:
        shutil.rmtree(self.runroot, ignore_errors=True)


@functools.cache
def _probe(executable: str, workdir: str) -> str | None:
    """None when podman can run here, else the reason it cannot."""
    podman = Podman(executable, Path(workdir))
    try:
        result = podman.run("info", "--format", "{{.Store.GraphDriverName}}", timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"podman cannot run on this machine: {exc}"
    finally:
        podman.cleanup()
    if not result.ok:
        first = (result.stderr.strip().splitlines() or ["no message"])[-1]
        return f"podman cannot run on this machine: {first}"
    return None


@pytest.fixture
def podman(tmp_path, tmp_path_factory):
    executable = need_tool("podman")
    reason = _probe(executable, str(tmp_path_factory.mktemp("podman-probe")))
    if reason:
        pytest.skip(reason)  # environmental: skipped even with REQUIRE_SERVICES=1
    podman = Podman(executable, tmp_path / "podman")
    yield podman
    podman.run("rmi", "--all", "--force")  # vfs layers are plain directories: free them now
    podman.cleanup()


def _login_args(user_creds) -> list[str]:
    return [f"--creds={user_creds[0]}:{user_creds[1]}"] if user_creds else []


def test_podman_push_and_pull(target, podman, tmp_path):
    layout = tmp_path / "src"
    image = images.write_image(layout, tag="v1", layers=images.small_layers(3, size=2048))
    loaded = podman.run("pull", "--quiet", f"oci:{layout}:v1")
    assert loaded.ok, str(loaded)
    image_id = loaded.stdout.strip().splitlines()[-1]

    name = unique_repo("podman")
    digest_file = tmp_path / "digest"
    pushed = podman.run(
        "push",
        "--tls-verify=false",
        *_login_args(target.pusher),
        f"--digestfile={digest_file}",
        image_id,
        f"docker://{target.ref(name, 'v1')}",
    )
    assert pushed.ok, str(pushed)
    digest = digest_file.read_text().strip()

    client = target.pusher_client()
    manifest = client.get(
        f"/v2/{name}/manifests/v1",
        headers={"Accept": f"{images.MEDIA_MANIFEST}, {DOCKER_MANIFEST}"},
    )
    assert manifest.status_code == 200
    assert manifest.headers["Docker-Content-Digest"] == digest
    assert "sha256:" + hashlib.sha256(manifest.content).hexdigest() == digest
    for layer in manifest.json()["layers"]:
        blob = client.get(f"/v2/{name}/blobs/{layer['digest']}")
        assert blob.status_code == 200
        assert "sha256:" + hashlib.sha256(blob.content).hexdigest() == layer["digest"]

    removed = podman.run("rmi", "--all", "--force")
    assert removed.ok, str(removed)
    pulled = podman.run(
        "pull", "--tls-verify=false", *_login_args(target.pusher), target.ref(name, "v1")
    )
    assert pulled.ok, str(pulled)
    inspected = podman.run("image", "inspect", target.ref(name, "v1"))
    assert inspected.ok, str(inspected)
    info = json.loads(inspected.stdout)[0]
    assert info["Digest"] == digest
    assert info["RootFS"]["Layers"] == image.diff_ids  # the same layer contents


def test_podman_push_without_access_is_denied(portal, podman, tmp_path):
    layout = tmp_path / "src"
    images.write_image(layout, tag="v1")
    loaded = podman.run("pull", "--quiet", f"oci:{layout}:v1")
    assert loaded.ok, str(loaded)
    image_id = loaded.stdout.strip().splitlines()[-1]
    result = podman.run(
        "push",
        "--tls-verify=false",
        *_login_args(creds("mallory")),
        image_id,
        f"docker://{portal.ref('acme/private', 'podman-denied')}",
    )
    assert_permission_error(result)
