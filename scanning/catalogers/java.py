"""Java archives: `*.jar`, `*.war`, `*.ear`, read from memory with `zipfile`.

Each `META-INF/maven/<group>/<artifact>/pom.properties` is a component (a shaded
jar carries several); its sibling `pom.xml` gives license names. An archive with
no pom.properties falls back to `META-INF/MANIFEST.MF`. Archives inside archives
(`WEB-INF/lib/*.jar`, Spring Boot's `BOOT-INF/lib/*.jar`) are read recursively,
within a depth cap, a per-archive size cap and a byte budget per top-level file.
Nested components' paths read `outer.war!/WEB-INF/lib/inner.jar`.
"""

from __future__ import annotations

import io
import logging
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from xml.etree import ElementTree

from packageurl import PackageURL

from scanning.catalogers.common import (
    MAVEN,
    Cataloger,
    Component,
    Distro,
    LicenseInfo,
    basename,
)
from scanning.layers import FileTree

logger = logging.getLogger(__name__)

ARCHIVE_SUFFIXES = (".jar", ".war", ".ear")
MAX_DEPTH = 4
MAX_NESTED_SIZE = 64 * 1024 * 1024
MAX_BUDGET = 256 * 1024 * 1024
MAX_ENTRIES = 100_000
MAX_METADATA_SIZE = 1024 * 1024

_POM_PROPERTIES = re.compile(r"^META-INF/maven/[^/]+/[^/]+/pom\.properties$")
_FILENAME_VERSION = re.compile(r"^(?P<name>.+?)-(?P<version>\d[\w.+-]*)$")
# zipfile reports damaged archives with many exception types: negative seeks
# (ValueError), unknown versions and methods (NotImplementedError), encrypted
# members (RuntimeError), undecodable names (UnicodeDecodeError, a ValueError).
_ZIP_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
    ValueError,
    struct.error,
)


def wants(path: str) -> bool:
    return path.lower().endswith(ARCHIVE_SUFFIXES)


@dataclass
class _Budget:
    remaining: int


def parse_properties(text: str) -> dict[str, str]:
    """Java .properties, the simple subset Maven writes (`key=value`, `#` comments)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        match = re.match(r"^([^=:\s]+)\s*[=:\s]\s*(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2).strip()
    return values


def parse_manifest(text: str) -> dict[str, str]:
    """The main section of a MANIFEST.MF; continuation lines start with one space."""
    values: dict[str, str] = {}
    key: str | None = None
    for line in text.splitlines():
        if not line.strip():
            break
        if line.startswith(" ") and key is not None:
            values[key] += line[1:]
            continue
        name, separator, value = line.partition(":")
        if separator:
            key = name.strip()
            values[key] = value.strip()
    return values


def pom_license_names(pom: bytes) -> list[str]:
    """`<licenses><license><name>` from a pom.xml, ignoring XML namespaces."""
    try:
        root = ElementTree.fromstring(pom)  # noqa: S314 - no entity expansion beyond expat's limits
    except ElementTree.ParseError:
        return []
    names = []
    for element in root.iter():
        if element.tag.rpartition("}")[2] != "license":
            continue
        for child in element:
            if child.tag.rpartition("}")[2] == "name" and child.text and child.text.strip():
                names.append(child.text.strip())
    return names


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes | None:
    if info.file_size > cap:
        return None
    try:
        with archive.open(info) as handle:
            data = handle.read(cap + 1)
    except _ZIP_ERRORS as error:
        logger.warning("unreadable archive member %s: %s", info.filename, error)
        return None
    return data if len(data) <= cap else None


def _maven_component(
    group: str | None,
    artifact: str,
    version: str,
    licenses: list[LicenseInfo],
    path: str,
    layer: str | None,
) -> Component:
    return Component(
        name=f"{group}:{artifact}" if group else artifact,
        version=version,
        type=MAVEN,
        ecosystem="Maven",
        purl=PackageURL(type="maven", namespace=group, name=artifact, version=version).to_string(),
        licenses=licenses,
        layer_digest=layer,
        path=path,
    )


def catalog_archive(
    data: bytes, path: str, layer: str | None, depth: int = 0, budget: _Budget | None = None
) -> list[Component]:
    """Components in one archive given as bytes, and in the archives it contains."""
    budget = budget if budget is not None else _Budget(MAX_BUDGET)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except _ZIP_ERRORS as error:
        logger.warning("unreadable java archive %s: %s", path, error)
        return []
    with archive:
        members = archive.infolist()
        if len(members) > MAX_ENTRIES:
            logger.warning("java archive %s has too many entries, skipped", path)
            return []
        components = _from_pom_properties(archive, members, path, layer)
        if not components:
            components = _from_manifest(archive, path, layer)
        if depth >= MAX_DEPTH:
            return components
        for info in members:
            if not info.filename.lower().endswith(ARCHIVE_SUFFIXES) or info.is_dir():
                continue
            if info.file_size > min(MAX_NESTED_SIZE, budget.remaining):
                logger.warning("nested archive %s!/%s over the size caps", path, info.filename)
                continue
            nested = _read_member(archive, info, MAX_NESTED_SIZE)
            if nested is None:
                continue
            budget.remaining -= len(nested)
            components += catalog_archive(
                nested, f"{path}!/{info.filename}", layer, depth + 1, budget
            )
    return components


def _from_pom_properties(
    archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], path: str, layer: str | None
) -> list[Component]:
    names = {info.filename: info for info in members}
    components = []
    for info in members:
        if not _POM_PROPERTIES.match(info.filename):
            continue
        raw = _read_member(archive, info, MAX_METADATA_SIZE)
        if raw is None:
            continue
        properties = parse_properties(raw.decode("utf-8", "replace"))
        group = properties.get("groupId")
        artifact = properties.get("artifactId")
        version = properties.get("version")
        if not group or not artifact or not version:
            continue
        pom_name = info.filename.rpartition("/")[0] + "/pom.xml"
        licenses = []
        if pom_name in names:
            pom = _read_member(archive, names[pom_name], MAX_METADATA_SIZE)
            if pom is not None:
                found_in = f"{path}!/{pom_name}"
                licenses = [LicenseInfo.from_raw(n, found_in) for n in pom_license_names(pom)]
        components.append(_maven_component(group, artifact, version, licenses, path, layer))
    return components


def _from_manifest(archive: zipfile.ZipFile, path: str, layer: str | None) -> list[Component]:
    try:
        info = archive.getinfo("META-INF/MANIFEST.MF")
    except KeyError:
        return []
    raw = _read_member(archive, info, MAX_METADATA_SIZE)
    manifest = parse_manifest(raw.decode("utf-8", "replace")) if raw is not None else {}
    stem = basename(path).rsplit(".", 1)[0]
    from_filename = _FILENAME_VERSION.match(stem)
    artifact = (
        manifest.get("Implementation-Title")
        or manifest.get("Bundle-SymbolicName", "").split(";")[0].strip()
        or (from_filename.group("name") if from_filename else stem)
    )
    version = (
        manifest.get("Implementation-Version")
        or manifest.get("Bundle-Version")
        or manifest.get("Specification-Version")
        or (from_filename.group("version") if from_filename else "")
    )
    if not artifact or not version:
        return []
    group = manifest.get("Implementation-Vendor-Id") or None
    licenses = []
    if manifest.get("Bundle-License"):
        found_in = f"{path}!/META-INF/MANIFEST.MF#Bundle-License"
        licenses = [LicenseInfo.from_raw(manifest["Bundle-License"], found_in)]
    return [_maven_component(group, artifact, version, licenses, path, layer)]


def catalog(tree: FileTree, distro: Distro | None) -> list[Component]:
    components = []
    for entry in tree.iter(predicate=wants):
        components += catalog_archive(entry.data or b"", entry.path, entry.layer)
    return components


CATALOGER = Cataloger(name="java", wants=wants, catalog=catalog)
