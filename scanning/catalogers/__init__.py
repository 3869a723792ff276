"""Catalogers: turn a squashed image `FileTree` into a list of components.

`CATALOGERS` is the registry. `wanted(path)` is the union of what they read,
plus os-release, and `accept(path, data)` their content checks: the two
functions to give the layer reader. `catalog(tree)`
detects the distro and runs every cataloger. `detect_distro` maps os-release's
`ID` and `VERSION_ID` to the OSV ecosystem of the image's OS packages.
"""

from __future__ import annotations

import re

from scanning.catalogers import apk, dpkg, golang, java, npm, python, rpm
from scanning.catalogers.common import (
    APK,
    DEB,
    GOLANG,
    MAVEN,
    NPM,
    OS_PACKAGE_TYPES,
    PYPI,
    RPM,
    Cataloger,
    Component,
    Distro,
    LicenseInfo,
)
from scanning.layers import FileTree

__all__ = [
    "APK",
    "CATALOGERS",
    "DEB",
    "GOLANG",
    "MAVEN",
    "NPM",
    "OS_PACKAGE_TYPES",
    "OS_RELEASE_PATHS",
    "PYPI",
    "RPM",
    "Cataloger",
    "Component",
    "Distro",
    "LicenseInfo",
    "accept",
    "catalog",
    "detect_distro",
    "osv_ecosystem",
    "parse_os_release",
    "wanted",
]

CATALOGERS: tuple[Cataloger, ...] = (
    dpkg.CATALOGER,
    apk.CATALOGER,
    rpm.CATALOGER,
    python.CATALOGER,
    npm.CATALOGER,
    java.CATALOGER,
    golang.CATALOGER,
)

OS_RELEASE_PATHS = ("etc/os-release", "usr/lib/os-release")

_MAJOR_MINOR = re.compile(r"^(\d+)\.(\d+)")
_MAJOR = re.compile(r"^(\d+)")


def wanted(path: str) -> bool:
    """Every path any cataloger reads, and os-release."""
    return path in OS_RELEASE_PATHS or any(cataloger.wants(path) for cataloger in CATALOGERS)


def accept(path: str, data: bytes) -> bool:
    """Keep a wanted file if any cataloger that wants it has no use for a content check,
    or its check passes."""
    return path in OS_RELEASE_PATHS or any(
        cataloger.wants(path) and (cataloger.accepts is None or cataloger.accepts(path, data))
        for cataloger in CATALOGERS
    )


def parse_os_release(text: str) -> dict[str, str]:
    """`KEY=value` lines; values may be single- or double-quoted."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        values[key.strip()] = value
    return values


def osv_ecosystem(
    distro_id: str, version_id: str | None, pretty_name: str | None = None
) -> str | None:
    """The OSV ecosystem for an os-release ID and VERSION_ID, or None if OSV has none."""
    version = version_id or ""
    major_minor = _MAJOR_MINOR.match(version)
    major = _MAJOR.match(version)
    if distro_id == "debian":
        return f"Debian:{version}" if version else "Debian"
    if distro_id == "ubuntu":
        return f"Ubuntu:{version}" if version else "Ubuntu"
    if distro_id == "alpine":
        if major_minor is None:
            return "Alpine"
        return f"Alpine:v{major_minor.group(1)}.{major_minor.group(2)}"
    if distro_id == "wolfi":
        return "Wolfi"
    if distro_id == "chainguard":
        return "Chainguard"
    if distro_id == "rocky":
        return f"Rocky Linux:{major.group(1)}" if major else "Rocky Linux"
    if distro_id == "almalinux":
        return f"AlmaLinux:{major.group(1)}" if major else "AlmaLinux"
    if distro_id == "rhel":
        return "Red Hat"
    if distro_id == "mageia":
        return f"Mageia:{version}" if version else "Mageia"
    if distro_id == "photon":
        return f"Photon OS:{version}" if version else "Photon OS"
    if distro_id.startswith("opensuse") or distro_id in ("sles", "sle-micro"):
        # OSV names SUSE releases by PRETTY_NAME without the brand prefix.
        base = "openSUSE" if distro_id.startswith("opensuse") else "SUSE"
        if not pretty_name:
            return base
        return f"{base}:{pretty_name.removeprefix(base).strip()}"
    return None


def detect_distro(tree: FileTree) -> Distro | None:
    for path in OS_RELEASE_PATHS:
        data = tree.read(path)
        if data is None:
            continue
        values = parse_os_release(data.decode("utf-8", "replace"))
        distro_id = values.get("ID", "").strip().lower()
        if not distro_id:
            continue
        version_id = values.get("VERSION_ID") or None
        pretty_name = values.get("PRETTY_NAME") or None
        return Distro(
            id=distro_id,
            version_id=version_id,
            ecosystem=osv_ecosystem(distro_id, version_id, pretty_name),
            pretty_name=pretty_name,
        )
    return None


def catalog(tree: FileTree, distro: Distro | None = None) -> list[Component]:
    """Every component the catalogers find, sorted by type, name, version and path."""
    distro = distro if distro is not None else detect_distro(tree)
    components = [
        component for cataloger in CATALOGERS for component in cataloger.catalog(tree, distro)
    ]
    return sorted(components, key=lambda c: (c.type, c.name, c.version, c.path))
