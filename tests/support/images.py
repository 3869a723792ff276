"""Tiny OCI images built in Python, with no container engine.

``write_image`` and ``write_index`` write an OCI image layout directory (``oci-layout``,
``index.json``, ``blobs/sha256/...``) that skopeo and podman read as ``oci:DIR:TAG``.
``read_layout`` and ``assert_same_image`` read such a directory back (for example after
``skopeo copy docker://... oci:DIR:TAG``) and compare manifests and blobs byte for byte.

Layers are real tar files (gzip or plain) with correct ``diff_ids`` in the config, so
podman can also unpack them. Large random layers are streamed to disk, never held whole in
memory.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

OCI_LAYOUT_VERSION = "1.0.0"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_ANNOTATION = "org.opencontainers.image.ref.name"
CHUNK = 1024 * 1024


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict | None = None
    annotations: dict | None = None

    def as_json(self) -> dict:
        value = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            value["platform"] = dict(self.platform)
        if self.annotations:
            value["annotations"] = dict(self.annotations)
        return value


@dataclass
class LayerSpec:
    """What one layer contains.

    ``files`` maps a path in the layer to its bytes; ``random_size`` adds one file of that
    many random bytes (from ``seed``, so deterministic when a seed is given).
    """

    files: dict[str, bytes] = field(default_factory=dict)
    random_size: int = 0
    seed: int | None = None
    gzip: bool = True


@dataclass
class Image:
    """One image written into a layout: the descriptors of what was written."""

    manifest: Descriptor
    config: Descriptor
    layers: list[Descriptor]
    diff_ids: list[str]

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def blob_digests(self) -> list[str]:
        return [self.config.digest, *(layer.digest for layer in self.layers)]


@dataclass
class ImageIndex:
    index: Descriptor
    images: list[Image]

    @property
    def digest(self) -> str:
        return self.index.digest


class _HashingWriter:
    """A write-only file that hashes (sha256) and counts what goes through it."""

    def __init__(self, handle):
        self.handle = handle
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.handle.write(data)
        self.hash.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.handle.flush()

    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


class _RandomReader(io.RawIOBase):
    """``size`` pseudo-random bytes, generated lazily (fast: os.urandom or a seeded PRNG)."""

    def __init__(self, size: int, seed: int | None):
        self.remaining = size
        self.rng = random.Random(seed) if seed is not None else None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.remaining, CHUNK)
        if n <= 0:
            return 0
        data = self.rng.randbytes(n) if self.rng is not None else os.urandom(n)
        buffer[:n] = data
        self.remaining -= n
        return n


class Layout:
    """An OCI image layout directory being written."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)
        (self.root / "oci-layout").write_text(
            json.dumps({"imageLayoutVersion": OCI_LAYOUT_VERSION})
        )
        index_path = self.root / "index.json"
        if index_path.exists():
            self.index = json.loads(index_path.read_text())
        else:
            self.index = {"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": []}
            self._save_index()

    # --- blobs ----------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        algorithm, _, hexpart = digest.partition(":")
        return self.root / "blobs" / algorithm / hexpart

    def add_bytes(self, data: bytes, media_type: str, **extra) -> Descriptor:
        digest = sha256_digest(data)
        path = self.blob_path(digest)
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        return Descriptor(media_type, digest, len(data), **extra)

    def add_layer(self, spec: LayerSpec) -> tuple[Descriptor, str]:
        """Write one layer blob; returns its descriptor and its diff_id (uncompressed digest)."""
        tmp = self.blobs / f".layer-{os.getpid()}-{random.getrandbits(64):x}.tmp"
        with open(tmp, "wb") as raw:
            outer = _HashingWriter(raw)
            if spec.gzip:
                # Random content does not compress: store it (level 0) so building a big layer
                # is quick; small deterministic layers get real compression.
                level = 0 if spec.random_size >= CHUNK else 6
                zipped = gzip.GzipFile(fileobj=outer, mode="wb", compresslevel=level, mtime=0)
                inner = _HashingWriter(zipped)
            else:
                zipped = None
                inner = outer
            _write_tar(inner, spec)
            if zipped is not None:
                zipped.close()
        digest = outer.digest()
        tmp.replace(self.blob_path(digest))
        media_type = MEDIA_LAYER_GZIP if spec.gzip else MEDIA_LAYER_TAR
        return Descriptor(media_type, digest, outer.size), inner.digest()

    # --- index.json -----------------------------------------------------------------------
    def _save_index(self) -> None:
        tmp = self.root / "index.json.tmp"
        tmp.write_text(json.dumps(self.index, indent=2))
        tmp.replace(self.root / "index.json")

    def tag(self, descriptor: Descriptor, tag: str) -> None:
        """Point ``tag`` (the ref.name annotation) at a manifest or index descriptor."""
        self.index["manifests"] = [
            m
            for m in self.index["manifests"]
            if (m.get("annotations") or {}).get(REF_ANNOTATION) != tag
        ]
        entry = descriptor.as_json()
        entry.pop("platform", None)
        entry["annotations"] = {**(entry.get("annotations") or {}), REF_ANNOTATION: tag}
        self.index["manifests"].append(entry)
        self._save_index()


def _write_tar(handle, spec: LayerSpec) -> None:
    """A deterministic tar stream: fixed mtime, owner and mode."""
    with tarfile.open(fileobj=handle, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        directories = sorted(
            {str(Path(p).parent) for p in spec.files if str(Path(p).parent) != "."}
        )
        for directory in directories:
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for path, content in sorted(spec.files.items()):
            info = tarfile.TarInfo(path)
            info.size = len(content)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
        if spec.random_size:
            info = tarfile.TarInfo(f"random-{spec.seed if spec.seed is not None else 'x'}.bin")
            info.size = spec.random_size
            info.mode = 0o644
            tar.addfile(info, io.BufferedReader(_RandomReader(spec.random_size, spec.seed), CHUNK))


def small_layers(count: int, *, size: int = 1024, seed: int | None = None, gzip: bool = True):
    """``count`` layer specs, each with a text file and ``size`` random bytes.

    With a seed the content is deterministic; without one it is unique to this call (so a
    registry cannot already have it).
    """
    base = seed if seed is not None else random.SystemRandom().getrandbits(48)
    return [
        LayerSpec(
            files={f"layer{i}/hello.txt": f"layer {i} of image {base}\n".encode()},
            random_size=size,
            seed=base * 1000 + i,
            gzip=gzip,
        )
        for i in range(count)
    ]


def write_image(
    root: str | os.PathLike,
    *,
    tag: str | None = "latest",
    layers: Iterable[LayerSpec] | None = None,
    architecture: str = "amd64",
    os_name: str = "linux",
    variant: str | None = None,
    labels: dict | None = None,
) -> Image:
    """Write one image (config, layers, manifest) into the layout at ``root``; tag it.

    With ``tag=None`` the image is written but not referenced from index.json (a child of an
    index).
    """
    layout = Layout(root)
    layer_specs = list(layers) if layers is not None else small_layers(2)
    written = [layout.add_layer(spec) for spec in layer_specs]
    layer_descriptors = [descriptor for descriptor, _ in written]
    diff_ids = [diff_id for _, diff_id in written]
    config = {
        "architecture": architecture,
        "os": os_name,
        "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"], "Labels": labels or {}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "tests.support.images"}]
        * len(diff_ids),
    }
    if variant:
        config["variant"] = variant
    config_descriptor = layout.add_bytes(canonical_json(config), MEDIA_CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config_descriptor.as_json(),
        "layers": [d.as_json() for d in layer_descriptors],
    }
    platform = {"architecture": architecture, "os": os_name}
    if variant:
        platform["variant"] = variant
    manifest_descriptor = layout.add_bytes(canonical_json(manifest), MEDIA_MANIFEST)
    manifest_descriptor = Descriptor(
        MEDIA_MANIFEST, manifest_descriptor.digest, manifest_descriptor.size, platform=platform
    )
    if tag is not None:
        layout.tag(manifest_descriptor, tag)
    return Image(manifest_descriptor, config_descriptor, layer_descriptors, diff_ids)


def write_index(
    root: str | os.PathLike,
    *,
    tag: str = "latest",
    platforms: Iterable[tuple[str, str]] = (("linux", "amd64"), ("linux", "arm64")),
    layers_per_image: int = 2,
    layer_size: int = 1024,
    seed: int | None = None,
) -> ImageIndex:
    """Write a multi-platform image index (by default linux/amd64 + linux/arm64) and tag it."""
    base = seed if seed is not None else random.SystemRandom().getrandbits(40)
    images = []
    for n, (os_name, architecture) in enumerate(platforms):
        images.append(
            write_image(
                root,
                tag=None,
                layers=small_layers(layers_per_image, size=layer_size, seed=base * 100 + n),
                architecture=architecture,
                os_name=os_name,
                variant="v8" if architecture == "arm64" else None,
            )
        )
    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [image.manifest.as_json() for image in images],
    }
    layout = Layout(root)
    descriptor = layout.add_bytes(canonical_json(index), MEDIA_INDEX)
    layout.tag(descriptor, tag)
    return ImageIndex(descriptor, images)


# --- reading back ---------------------------------------------------------------------------


@dataclass
class LayoutContent:
    """What a layout holds under one tag: every manifest/index and blob reachable from it."""

    root: Path
    top: Descriptor
    manifests: dict[str, bytes]  # digest -> exact bytes (manifests and indexes)
    blobs: dict[str, Path]  # digest -> file (configs and layers)

    def blob_digest_on_disk(self, digest: str) -> str:
        return file_digest(self.blobs[digest])


def file_digest(path: str | os.PathLike) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            sha.update(chunk)
    return "sha256:" + sha.hexdigest()


def _walk(layout: Layout, descriptor: dict, manifests: dict, blobs: dict) -> None:
    digest = descriptor["digest"]
    data = layout.blob_path(digest).read_bytes()
    manifests[digest] = data
    body = json.loads(data)
    for child in body.get("manifests", []):
        path = layout.blob_path(child["digest"])
        if path.exists():  # a single-platform pull keeps only one child
            _walk(layout, child, manifests, blobs)
    for blob in [body.get("config"), *body.get("layers", [])]:
        if blob:
            blobs[blob["digest"]] = layout.blob_path(blob["digest"])


def read_layout(root: str | os.PathLike, tag: str | None = None) -> LayoutContent:
    """Read the manifest graph under ``tag`` (or the only entry of index.json)."""
    layout = Layout(root)
    entries = layout.index["manifests"]
    if tag is not None:
        entries = [e for e in entries if (e.get("annotations") or {}).get(REF_ANNOTATION) == tag]
    if len(entries) != 1:
        raise ValueError(f"expected one index.json entry for tag {tag!r} in {root}: {entries}")
    entry = entries[0]
    manifests: dict[str, bytes] = {}
    blobs: dict[str, Path] = {}
    _walk(layout, entry, manifests, blobs)
    top = Descriptor(entry["mediaType"], entry["digest"], entry["size"])
    return LayoutContent(Path(root), top, manifests, blobs)


def iter_problems(expected: LayoutContent, actual: LayoutContent) -> Iterator[str]:
    """Every difference between two layouts' content, as human-readable lines."""
    if expected.top.digest != actual.top.digest:
        yield f"top digest {actual.top.digest} != expected {expected.top.digest}"
    for digest, data in expected.manifests.items():
        got = actual.manifests.get(digest)
        if got is None:
            yield f"manifest {digest} missing"
        elif got != data:
            yield f"manifest {digest} bytes differ"
    for digest in set(actual.manifests) - set(expected.manifests):
        yield f"unexpected manifest {digest}"
    for digest, path in expected.blobs.items():
        other = actual.blobs.get(digest)
        if other is None or not other.exists():
            yield f"blob {digest} missing"
            continue
        got = file_digest(other)
        if got != digest or os.path.getsize(other) != os.path.getsize(path):
            yield f"blob {digest} content differs (hashes to {got})"
    for digest in set(actual.blobs) - set(expected.blobs):
        yield f"unexpected blob {digest}"


def assert_same_image(expected_root, actual_root, *, expected_tag=None, actual_tag=None) -> None:
    """Assert that two layouts hold byte-identical manifests and blobs under their tags."""
    expected = read_layout(expected_root, expected_tag)
    actual = read_layout(actual_root, actual_tag)
    problems = list(iter_problems(expected, actual))
    assert not problems, "layouts differ:\n" + "\n".join(problems)


def random_bytes(size: int, seed: int | None = None) -> bytes:
    return random.Random(seed).randbytes(size) if seed is not None else os.urandom(size)
