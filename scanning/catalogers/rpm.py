"""RPM packages: the sqlite rpmdb of current Fedora, RHEL 9, Rocky, Alma and SUSE.

`rpmdb.sqlite` lives in `var/lib/rpm` or `usr/lib/sysimage/rpm`. sqlite needs a
file, so the database bytes go to a temporary file for the time of one query
(the only thing the scanner ever writes to disk). Each row of `Packages` is an
RPM header blob, parsed here defensively: counts, offsets and lengths are all
checked against the blob before use. The older BerkeleyDB `Packages` file is not
read.
"""

from __future__ import annotations

import logging
import sqlite3
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packageurl import PackageURL

from scanning.catalogers.common import RPM, Cataloger, Component, Distro, LicenseInfo
from scanning.layers import FileTree

logger = logging.getLogger(__name__)

DATABASE_PATHS = ("var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite")

TAG_NAME = 1000
TAG_VERSION = 1001
TAG_RELEASE = 1002
TAG_EPOCH = 1003
TAG_LICENSE = 1014
TAG_ARCH = 1022
TAG_SOURCERPM = 1044
_TAGS = frozenset(
    {TAG_NAME, TAG_VERSION, TAG_RELEASE, TAG_EPOCH, TAG_LICENSE, TAG_ARCH, TAG_SOURCERPM}
)

TYPE_INT32 = 4
TYPE_STRING = 6
TYPE_STRING_ARRAY = 8
TYPE_I18NSTRING = 9

HEADER_MAGIC = b"\x8e\xad\xe8\x01"
_MAX_INDEX_ENTRIES = 0x10000
_MAX_DATA_LENGTH = 256 * 1024 * 1024
_MAX_STRING = 64 * 1024


class RpmHeaderError(ValueError):
    """A header blob that cannot be parsed."""


@dataclass(frozen=True)
class RpmPackage:
    name: str
    version: str
    release: str | None
    epoch: int | None
    arch: str | None
    license: str | None
    source_rpm: str | None

    @property
    def full_version(self) -> str:
        """`[epoch:]version[-release]`, the form OSV RPM ecosystems compare."""
        version = f"{self.version}-{self.release}" if self.release else self.version
        return f"{self.epoch}:{version}" if self.epoch is not None else version


def wants(path: str) -> bool:
    return path in DATABASE_PATHS


def _string_at(data: bytes, offset: int) -> str:
    end = data.find(b"\0", offset, offset + _MAX_STRING)
    if end < 0:
        raise RpmHeaderError(f"unterminated string at data offset {offset}")
    return data[offset:end].decode("utf-8", "replace")


def parse_header(blob: bytes) -> dict[int, str | int]:
    """The tags this cataloger needs, from one header blob (with or without its magic)."""
    if blob.startswith(HEADER_MAGIC):
        blob = blob[8:]
    if len(blob) < 8:
        raise RpmHeaderError("blob shorter than the header preamble")
    index_count, data_length = struct.unpack_from(">II", blob, 0)
    if index_count == 0 or index_count > _MAX_INDEX_ENTRIES:
        raise RpmHeaderError(f"implausible index entry count {index_count}")
    if data_length > _MAX_DATA_LENGTH:
        raise RpmHeaderError(f"implausible data length {data_length}")
    data_start = 8 + 16 * index_count
    if data_start + data_length > len(blob):
        raise RpmHeaderError("index and data run past the end of the blob")
    data = blob[data_start : data_start + data_length]
    values: dict[int, str | int] = {}
    for position in range(8, data_start, 16):
        tag, kind, offset, count = struct.unpack_from(">IIII", blob, position)
        if tag not in _TAGS:
            continue
        if offset >= data_length or count == 0:
            raise RpmHeaderError(f"tag {tag}: offset {offset} outside the data")
        if kind in (TYPE_STRING, TYPE_STRING_ARRAY, TYPE_I18NSTRING):
            values[tag] = _string_at(data, offset)
        elif kind == TYPE_INT32:
            if offset % 4 or offset + 4 > data_length:
                raise RpmHeaderError(f"tag {tag}: misplaced int32 at {offset}")
            values[tag] = struct.unpack_from(">I", data, offset)[0]
        else:
            raise RpmHeaderError(f"tag {tag}: unexpected type {kind}")
    return values


def package_from_header(blob: bytes) -> RpmPackage:
    values = parse_header(blob)
    name, version = values.get(TAG_NAME), values.get(TAG_VERSION)
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        raise RpmHeaderError("header without a name or version")

    def text(tag: int) -> str | None:
        value = values.get(tag)
        return value if isinstance(value, str) and value else None

    epoch = values.get(TAG_EPOCH)
    return RpmPackage(
        name=name,
        version=version,
        release=text(TAG_RELEASE),
        epoch=epoch if isinstance(epoch, int) else None,
        arch=text(TAG_ARCH),
        license=text(TAG_LICENSE),
        source_rpm=text(TAG_SOURCERPM),
    )


def split_source_rpm(source_rpm: str) -> tuple[str, str | None]:
    """'bash-5.1.8-6.el9.src.rpm' -> ('bash', '5.1.8-6.el9')."""
    stem = source_rpm.removesuffix(".rpm").removesuffix(".src").removesuffix(".nosrc")
    parts = stem.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return stem, None
    return parts[0], f"{parts[1]}-{parts[2]}"


def read_sqlite_blobs(database: bytes) -> list[bytes]:
    """Every `Packages.blob` of an rpmdb.sqlite given as bytes."""
    with tempfile.NamedTemporaryFile(suffix=".sqlite") as handle:
        handle.write(database)
        handle.flush()
        # immutable: no journal, no -shm file, no locking on a copy nobody else has.
        uri = f"{Path(handle.name).as_uri()}?immutable=1"
        connection = sqlite3.connect(uri, uri=True)
        try:
            rows = connection.execute("SELECT blob FROM Packages").fetchall()
        finally:
            connection.close()
    return [bytes(row[0]) for row in rows if isinstance(row[0], bytes | memoryview)]


def catalog(tree: FileTree, distro: Distro | None) -> list[Component]:
    components: list[Component] = []
    seen: set[str] = set()
    for path in DATABASE_PATHS:
        entry = tree.entry(path)
        # var/lib/rpm is often a symlink to usr/lib/sysimage/rpm: read it once.
        if entry is None or entry.data is None or entry.path in seen:
            continue
        seen.add(entry.path)
        try:
            blobs = read_sqlite_blobs(entry.data)
        except sqlite3.DatabaseError as error:
            logger.warning("unreadable rpm database %s: %s", entry.path, error)
            continue
        for blob in blobs:
            try:
                package = package_from_header(blob)
            except RpmHeaderError as error:
                logger.warning("skipping a malformed rpm header in %s: %s", entry.path, error)
                continue
            if package.name == "gpg-pubkey":  # imported signing keys, not software
                continue
            components.append(_component(package, distro, entry.path, entry.layer))
    return components


def _component(
    package: RpmPackage, distro: Distro | None, path: str, layer: str | None
) -> Component:
    qualifiers = {}
    if package.arch:
        qualifiers["arch"] = package.arch
    if package.epoch is not None:
        qualifiers["epoch"] = str(package.epoch)
    if distro is not None:
        qualifiers["distro"] = distro.purl_qualifier
    version = f"{package.version}-{package.release}" if package.release else package.version
    purl = PackageURL(
        type="rpm",
        namespace=distro.id if distro is not None else None,
        name=package.name,
        version=version,
        qualifiers=qualifiers,
    )
    source_name, source_version = package.name, package.full_version
    if package.source_rpm:
        source_name, source_release = split_source_rpm(package.source_rpm)
        if source_release is not None:
            source_version = (
                f"{package.epoch}:{source_release}" if package.epoch is not None else source_release
            )
    licenses = [LicenseInfo.from_raw(package.license, f"{path}#LICENSE")] if package.license else []
    return Component(
        name=package.name,
        version=package.full_version,
        type=RPM,
        ecosystem=distro.ecosystem if distro is not None else None,
        purl=purl.to_string(),
        source_name=source_name,
        source_version=source_version,
        licenses=licenses,
        layer_digest=layer,
        path=path,
    )


CATALOGER = Cataloger(name="rpm", wants=wants, catalog=catalog)
