"""Pushing and pulling images over /v2/ from Python, with ``RegistryClient``: no engine, no
files. For load (the soak) and live-server tests.

Layers are real tar files, so the scanner reads them: small ones gzipped in memory, large
ones plain tar streamed in chunks (the 64 MiB layer of the soak is never held whole), sent
the way docker and podman send them (a chunked PATCH with no length, then PUT ?digest=).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .clients import RegistryClient

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_TAR = "application/vnd.oci.image.layer.v1.tar"
MEDIA_TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
BLOCK = 1024 * 1024


class RegistryError(RuntimeError):
    """A /v2/ answer that was not the one expected."""


def _expect(response, *statuses: int, what: str):
    if response.status_code not in statuses:
        raise RegistryError(f"{what}: HTTP {response.status_code} {response.text[:200]!r}")
    return response


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Layer:
    media_type: str
    digest: str
    size: int
    diff_id: str
    chunks: Callable[[], Iterator[bytes]]


def small_layer(seed: str, size: int = 4096) -> Layer:
    """A gzipped tar of one file of ``size`` bytes, unique to ``seed``."""
    payload = hashlib.sha256(seed.encode()).digest() * (size // 32 + 1)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo(f"srv/{seed}.bin")
        info.size, info.mtime = size, 0
        archive.addfile(info, io.BytesIO(payload[:size]))
    tar = raw.getvalue()
    data = gzip.compress(tar, mtime=0)
    return Layer(MEDIA_TAR_GZIP, sha256(data), len(data), sha256(tar), lambda: iter([data]))


def large_layer(seed: str, size: int) -> Layer:
    """A plain tar of one file of ``size`` bytes, streamed in 1 MiB chunks (hashed once here,
    generated again on each ``chunks()``)."""
    block = os.urandom(BLOCK)
    head = hashlib.sha256(seed.encode()).digest()
    info = tarfile.TarInfo(f"srv/{seed}.bin")
    info.size, info.mtime = size, 0
    header = info.tobuf(format=tarfile.PAX_FORMAT)
    trailer = b"\0" * (-size % 512) + b"\0" * 1024

    def chunks() -> Iterator[bytes]:
        yield header + head
        left = size - len(head)
        while left > 0:
            piece = block[: min(left, BLOCK)]
            left -= len(piece)
            yield piece
        yield trailer

    digest = hashlib.sha256()
    total = 0
    for piece in chunks():
        digest.update(piece)
        total += len(piece)
    value = "sha256:" + digest.hexdigest()
    return Layer(MEDIA_TAR, value, total, value, chunks)


def image(layers: list[Layer], *, label: str) -> tuple[bytes, bytes]:
    """(config, manifest) bytes of an image of ``layers``."""
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"soak": label}},
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        },
        sort_keys=True,
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": {"mediaType": MEDIA_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [
                {"mediaType": layer.media_type, "digest": layer.digest, "size": layer.size}
                for layer in layers
            ],
        },
        sort_keys=True,
    ).encode()
    return config, manifest


def push_blob(client: RegistryClient, name: str, data: bytes) -> str:
    """One request: ``POST .../uploads/?digest=`` with the bytes."""
    digest = sha256(data)
    response = client.request(
        "POST",
        f"/v2/{name}/blobs/uploads/?digest={digest}",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    _expect(response, 201, what=f"monolithic upload to {name}")
    return digest


def push_layer_chunked(client: RegistryClient, name: str, layer: Layer) -> None:
    """``POST`` to start, one streamed ``PATCH`` (chunked, no length), ``PUT ?digest=``."""
    started = _expect(client.request("POST", f"/v2/{name}/blobs/uploads/"), 202, what="start")
    location = started.headers["Location"]
    patched = client.request(
        "PATCH",
        location,
        data=layer.chunks(),
        headers={"Content-Type": "application/octet-stream"},
        timeout=300,
    )
    _expect(patched, 202, what=f"PATCH of {layer.size} bytes")
    location = patched.headers["Location"]
    separator = "&" if "?" in location else "?"
    finished = client.request("PUT", f"{location}{separator}digest={layer.digest}")
    _expect(finished, 201, what="PUT ?digest=")


def push_image(client: RegistryClient, name: str, tag: str, layers: list[Layer]) -> str:
    """Push the layers (small ones in one request, large ones chunked), the config and the
    manifest; return the manifest digest."""
    config, manifest = image(layers, label=f"{name}:{tag}")
    for layer in layers:
        exists = client.head(f"/v2/{name}/blobs/{layer.digest}")
        if exists.status_code == 200:
            continue
        if layer.size <= BLOCK:
            push_blob(client, name, b"".join(layer.chunks()))
        else:
            push_layer_chunked(client, name, layer)
    push_blob(client, name, config)
    response = client.request(
        "PUT",
        f"/v2/{name}/manifests/{tag}",
        data=manifest,
        headers={"Content-Type": MEDIA_MANIFEST},
    )
    _expect(response, 201, what=f"manifest PUT {name}:{tag}")
    digest = sha256(manifest)
    if response.headers.get("Docker-Content-Digest") != digest:
        raise RegistryError(f"{name}:{tag}: the registry says {response.headers}")
    return digest


def pull_image(client: RegistryClient, name: str, reference: str) -> int:
    """Pull the manifest and every blob, checking each digest; return the bytes read."""
    response = _expect(
        client.get(f"/v2/{name}/manifests/{reference}", headers={"Accept": MEDIA_MANIFEST}),
        200,
        what=f"manifest GET {name}:{reference}",
    )
    manifest = response.json()
    total = len(response.content)
    for descriptor in [manifest["config"], *manifest["layers"]]:
        digest = hashlib.sha256()
        with client.get(f"/v2/{name}/blobs/{descriptor['digest']}", stream=True) as blob:
            _expect(blob, 200, what=f"blob GET {descriptor['digest'][:19]}")
            for piece in blob.iter_content(BLOCK):
                digest.update(piece)
                total += len(piece)
        if "sha256:" + digest.hexdigest() != descriptor["digest"]:
            raise RegistryError(f"{name}:{reference}: blob {descriptor['digest']} does not match")
    return total
