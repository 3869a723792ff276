"""The shapes every cataloger shares: components, licenses, the distro, the registry entry.

Plain dataclasses, no Django: the scan job turns them into rows later.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from scanning.layers import FileTree
from scanning.licenses import normalise

# Component types.
DEB = "deb"
APK = "apk"
RPM = "rpm"
PYPI = "pypi"
NPM = "npm"
MAVEN = "maven"
GOLANG = "golang"

OS_PACKAGE_TYPES = frozenset({DEB, APK, RPM})


@dataclass(frozen=True)
class LicenseInfo:
    """One license statement: the raw text, its SPDX form if known, and where it was read."""

    raw: str
    spdx: str | None
    found_in: str

    @classmethod
    def from_raw(cls, raw: str, found_in: str) -> LicenseInfo:
        raw = raw.strip()
        return cls(raw=raw, spdx=normalise(raw), found_in=found_in)


@dataclass
class Component:
    """One installed package, library or module found in an image."""

    name: str
    version: str
    type: str
    ecosystem: str | None
    purl: str
    source_name: str | None = None
    source_version: str | None = None
    licenses: list[LicenseInfo] = field(default_factory=list)
    layer_digest: str | None = None
    path: str = ""


@dataclass(frozen=True)
class Distro:
    """The operating system named by os-release, and its OSV ecosystem if it has one."""

    id: str
    version_id: str | None
    ecosystem: str | None
    pretty_name: str | None = None

    @property
    def purl_qualifier(self) -> str:
        """The purl `distro` qualifier, e.g. 'debian-12'."""
        return f"{self.id}-{self.version_id}" if self.version_id else self.id


@dataclass(frozen=True)
class Cataloger:
    """A registry entry: which stored paths it needs, and how it turns them into components.

    `accepts(path, data)`, when set, lets the layer reader drop a wanted file
    once read because its content is of no use (an executable that is not Go).
    """

    name: str
    wants: Callable[[str], bool]
    catalog: Callable[[FileTree, Distro | None], list[Component]]
    accepts: Callable[[str, bytes], bool] | None = None


def basename(path: str) -> str:
    return path.rpartition("/")[2]
