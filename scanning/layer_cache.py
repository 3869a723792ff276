"""The database cache of what the layer reader kept of each layer (`LayerInventory`).

Why cache `LayerContents` rather than per-layer components: whiteouts and opaque
directories of upper layers hide lower files, so per-layer component lists cannot simply
be unioned. The kept contents (the files catalogers want, the links, directories and
whiteouts) are small for OS layers and are exactly what `squash` needs, so a cached layer
is re-squashed in milliseconds. A layer whose compressed contents exceed
`SCAN_LAYER_CACHE_MAX_BYTES` (big Go binaries, say) is not cached and is read again.

The cache key is the layer digest plus a fingerprint of the reader, the catalogers and
the read limits (a hash of their source files): when they change, what they keep may
change, and old entries are simply not found.
"""

from __future__ import annotations

import functools
import hashlib
import json
import struct
from pathlib import Path

import zstandard
from django.conf import settings
from django.db import IntegrityError, transaction

from .layers import LayerContents, LayerSource, ReadLimits, SkippedFile, read_layer
from .models import LayerInventory

_HEADER_LENGTH = struct.Struct(">I")
_FORMAT = b"layer-contents-v2"


@functools.cache
def _code_fingerprint() -> str:
    package = Path(__file__).resolve().parent
    digest = hashlib.sha256(_FORMAT)
    for path in sorted([package / "layers.py", *(package / "catalogers").glob("*.py")]):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def fingerprint(limits: ReadLimits) -> str:
    """The cache key part that changes with the reader, the catalogers and the limits."""
    return hashlib.sha256(f"{_code_fingerprint()}|{limits!r}".encode()).hexdigest()


def dumps(contents: LayerContents) -> bytes:
    """`LayerContents` as zstd-compressed bytes: a JSON header, then the file contents."""
    paths = list(contents.files)
    header = {
        "digest": contents.digest,
        "files": [[path, len(contents.files[path])] for path in paths],
        "modes": contents.modes,
        "symlinks": contents.symlinks,
        "hardlinks": contents.hardlinks,
        "directories": sorted(contents.directories),
        "whiteouts": sorted(contents.whiteouts),
        "opaque_dirs": sorted(contents.opaque_dirs),
        "skipped": {path: [s.size, s.reason] for path, s in contents.skipped.items()},
        "entry_count": contents.entry_count,
        "link_count": contents.link_count,
        "decompressed_bytes": contents.decompressed_bytes,
        "kept_bytes": contents.kept_bytes,
        "limits_hit": contents.limits_hit,
    }
    encoded = json.dumps(header, separators=(",", ":")).encode()
    raw = b"".join(
        [_HEADER_LENGTH.pack(len(encoded)), encoded, *(contents.files[p] for p in paths)]
    )
    return zstandard.ZstdCompressor(level=3).compress(raw)


def loads(data: bytes) -> LayerContents:
    """The inverse of `dumps`."""
    raw = zstandard.ZstdDecompressor().decompress(data)
    (length,) = _HEADER_LENGTH.unpack_from(raw)
    start = _HEADER_LENGTH.size
    header = json.loads(raw[start : start + length])
    offset = start + length
    files = {}
    for path, size in header["files"]:
        files[path] = raw[offset : offset + size]
        offset += size
    return LayerContents(
        digest=header["digest"],
        files=files,
        modes=header["modes"],
        symlinks=header["symlinks"],
        hardlinks=header["hardlinks"],
        directories=set(header["directories"]),
        whiteouts=set(header["whiteouts"]),
        opaque_dirs=set(header["opaque_dirs"]),
        skipped={
            path: SkippedFile(path, size, reason)
            for path, (size, reason) in header["skipped"].items()
        },
        entry_count=header["entry_count"],
        link_count=header["link_count"],
        decompressed_bytes=header["decompressed_bytes"],
        kept_bytes=header["kept_bytes"],
        limits_hit=header["limits_hit"],
    )


def layer_contents(
    *, source: LayerSource, wanted, accept, limits: ReadLimits
) -> tuple[LayerContents, bool]:
    """The layer's kept contents from the cache, else read (and cached when small enough).

    Returns the contents and whether they came from the cache.
    """
    key = fingerprint(limits)
    cached = (
        LayerInventory.objects.filter(layer_digest=source.digest, fingerprint=key)
        .values_list("contents", flat=True)
        .first()
    )
    if cached is not None:
        return loads(bytes(cached)), True
    contents = read_layer(source, wanted, limits, accept)
    data = dumps(contents)
    if len(data) <= settings.SCAN_LAYER_CACHE_MAX_BYTES:
        try:
            with transaction.atomic():
                LayerInventory.objects.create(
                    layer_digest=source.digest, fingerprint=key, contents=data, size=len(data)
                )
        except IntegrityError:
            pass  # another worker cached the same layer first: same bytes
    return contents, False
