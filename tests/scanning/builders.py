"""Tiny synthetic layers and images, built in memory for the scanning tests."""

from __future__ import annotations

import gzip
import io
import tarfile
from dataclasses import dataclass

import zstandard

from scanning.catalogers import accept, wanted
from scanning.layers import FileTree, LayerSource, read_layer, squash

OCI_TAR = "application/vnd.oci.image.layer.v1.tar"
OCI_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@dataclass
class File:
    path: str
    data: bytes = b""
    mode: int = 0o644


@dataclass
class Dir:
    path: str


@dataclass
class Symlink:
    path: str
    target: str


@dataclass
class Hardlink:
    path: str
    target: str


Member = File | Dir | Symlink | Hardlink


def tar_bytes(members: list[Member]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for member in members:
            info = tarfile.TarInfo(member.path)
            if isinstance(member, File):
                info.size = len(member.data)
                info.mode = member.mode
                archive.addfile(info, io.BytesIO(member.data))
                continue
            if isinstance(member, Dir):
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif isinstance(member, Symlink):
                info.type, info.linkname = tarfile.SYMTYPE, member.target
            else:
                info.type, info.linkname = tarfile.LNKTYPE, member.target
            archive.addfile(info)
    return buffer.getvalue()


def compress(data: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, mtime=0)  # the same layer twice is the same blob
    if compression == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


MEDIA_TYPES = {"none": OCI_TAR, "gzip": OCI_GZIP, "zstd": OCI_ZSTD}


def layer(
    digest: str, members: list[Member], compression: str = "none", media_type: str | None = None
) -> LayerSource:
    blob = compress(tar_bytes(members), compression)
    return LayerSource(
        digest=digest,
        media_type=media_type if media_type is not None else MEDIA_TYPES[compression],
        open=lambda: io.BytesIO(blob),
    )


def raw_layer(digest: str, blob: bytes, media_type: str = OCI_TAR) -> LayerSource:
    return LayerSource(digest=digest, media_type=media_type, open=lambda: io.BytesIO(blob))


def image(*layers: list[Member]) -> FileTree:
    """A squashed tree from member lists, one per layer, read as a scan reads them."""
    return squash(
        read_layer(layer(f"sha256:{index:02d}", members), wanted, accept=accept)
        for index, members in enumerate(layers)
    )
