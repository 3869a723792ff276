"""The layer reader: stream image layers and squash them into one file tree.

Each layer is a tar archive, plain, gzip or zstd compressed. `read_layer` streams
one layer (never unpacking to disk, never holding a whole layer in memory) and
keeps only what the catalogers need: the regular files a `wanted(path)`
predicate selects and, when given, an `accept(path, data)` check lets through
once read (so most executables need not stay in memory); every symlink and
hardlink (to resolve wanted paths); the whiteouts and opaque directories; and
the directories (so that a directory can replace a lower symlink). The result,
`LayerContents`, depends only on the layer's bytes and on those two functions,
so a caller may cache it by digest (`LayerCache` does, in process).

`squash` applies the layers in order, following the OCI image-spec `layer.md`
rules, and gives a `FileTree` that resolves symlinks and hardlinks for reads and
remembers which layer each file came from.

Hostile layers are expected, and reading one is bounded in time and memory:
- A damaged archive, a decompression bomb, or a path (or link target) too long
  or too deep is a `LayerError` subclass with a message naming the layer.
- The caps that a real image may also reach do not fail the read: the reader
  stops (or skips the file) and records which cap it hit in
  `LayerContents.limits_hit` (the `ReadLimits` field name, and a sentence for
  the report). What it kept is right but incomplete, and the scan says so.
  - `max_entries` and `max_links` (symlinks plus hardlinks): reading stops.
  - `max_kept_bytes`: counts the kept file contents and every name kept for
    squashing (directory, whiteout and link paths, and link targets). A file
    that does not fit is skipped; a name that does not fit stops reading.
  - `max_file_size`: a wanted file over it is skipped.
- Hardlinks resolve in one pass over the links (a chain of n links costs n).
Memory stays bounded by the kept-bytes cap and the one file being read (at
most the per-file cap).

Known approximation: the paths of regular files that no cataloger wants are not
recorded, so such a file does not shadow a lower layer's symlink or kept file at
the same path. Recording every path would cost memory proportional to the
layer's entry count.
"""

from __future__ import annotations

import fnmatch
import gzip
import tarfile
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import zstandard

Wanted = Callable[[str], bool]
Accept = Callable[[str, bytes], bool]

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

_READ_CHUNK = 1 * MIB
_OPAQUE_MARKER = ".wh..wh..opq"
_WHITEOUT_PREFIX = ".wh."


class LayerError(Exception):
    """A layer cannot be read. The message says which layer and why."""


class CorruptLayerError(LayerError):
    """The compression stream or the tar archive is damaged or truncated."""


class LayerLimitError(LayerError):
    """The layer exceeds one of the `ReadLimits` (bomb, too many entries, ...)."""


class UnsafePathError(LayerError):
    """A member path escapes the root with '..'."""


@dataclass(frozen=True)
class ReadLimits:
    """Bounds on what one layer may cost to read."""

    max_file_size: int = 64 * MIB
    max_kept_bytes: int = 512 * MIB
    max_decompressed_bytes: int = 8 * GIB
    max_entries: int = 500_000
    max_links: int = 200_000
    max_path_length: int = 4096
    max_path_depth: int = 128


@dataclass(frozen=True)
class LayerSource:
    """One layer as the caller has it: its digest, media type and a way to open it."""

    digest: str
    media_type: str
    open: Callable[[], BinaryIO]


@dataclass(frozen=True)
class SkippedFile:
    """A wanted regular file whose content was not kept, and why."""

    path: str
    size: int
    reason: str


@dataclass
class LayerContents:
    """What one layer contributes: the cacheable result of `read_layer`."""

    digest: str
    files: dict[str, bytes] = field(default_factory=dict)
    modes: dict[str, int] = field(default_factory=dict)
    symlinks: dict[str, str] = field(default_factory=dict)
    hardlinks: dict[str, str] = field(default_factory=dict)
    directories: set[str] = field(default_factory=set)
    whiteouts: set[str] = field(default_factory=set)
    opaque_dirs: set[str] = field(default_factory=set)
    skipped: dict[str, SkippedFile] = field(default_factory=dict)
    entry_count: int = 0
    link_count: int = 0
    decompressed_bytes: int = 0
    kept_bytes: int = 0
    # The `ReadLimits` field names of the caps this layer reached -> what that cost, in words.
    limits_hit: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True when no cap left anything of the layer unread."""
        return not self.limits_hit


def normalise_path(name: str, limits: ReadLimits = ReadLimits()) -> str:
    """Return a tar member name as a relative POSIX path ('' for the root).

    Leading '/' and './' go, '.' and empty components go, '..' is resolved
    lexically and raises `UnsafePathError` if it would climb above the root.
    """
    if len(name) > limits.max_path_length:
        raise LayerLimitError(f"path longer than {limits.max_path_length} characters")
    parts: list[str] = []
    for component in name.split("/"):
        if component in ("", "."):
            continue
        if component == "..":
            if not parts:
                raise UnsafePathError(f"path escapes the root: {name!r}")
            parts.pop()
            continue
        parts.append(component)
    if len(parts) > limits.max_path_depth:
        raise LayerLimitError(f"path deeper than {limits.max_path_depth} components")
    return "/".join(parts)


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


def _join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


class _CountingReader:
    """Counts the decompressed bytes tarfile pulls, and stops a bomb."""

    def __init__(self, stream: BinaryIO, limit: int, digest: str) -> None:
        self._stream = stream
        self._limit = limit
        self._digest = digest
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = _READ_CHUNK
        try:
            data = self._stream.read(size)
        except (OSError, EOFError, zlib.error, zstandard.ZstdError) as error:
            raise CorruptLayerError(
                f"layer {self._digest}: corrupt compressed stream: {error}"
            ) from error
        self.count += len(data)
        if self.count > self._limit:
            raise LayerLimitError(
                f"layer {self._digest}: more than {self._limit} decompressed bytes "
                "(decompression bomb?)"
            )
        return data


def detect_compression(media_type: str, head: bytes) -> str:
    """Return 'gzip', 'zstd' or 'none' from the media type, else from the magic bytes."""
    media_type = media_type.lower()
    if media_type.endswith(("+gzip", ".tar.gzip", ".tar.gz")):
        return "gzip"
    if media_type.endswith(("+zstd", ".tar.zstd")):
        return "zstd"
    if media_type.endswith(("tar", ".tar")):
        return "none"
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


class _Peekable:
    """Gives back the bytes read to sniff the magic, then reads on."""

    def __init__(self, stream: BinaryIO, head: bytes) -> None:
        self._stream = stream
        self._head = head

    def read(self, size: int = -1) -> bytes:
        if not self._head:
            return self._stream.read(size)
        if size is None or size < 0:
            data, self._head = self._head, b""
            return data + self._stream.read()
        data, self._head = self._head[:size], self._head[size:]
        return data


def _decompressed(raw: BinaryIO, media_type: str) -> BinaryIO:
    head = raw.read(4)
    stream = _Peekable(raw, head)
    compression = detect_compression(media_type, head)
    if compression == "gzip":
        return gzip.GzipFile(fileobj=stream, mode="rb")
    if compression == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True)
    return stream  # type: ignore[return-value]


def read_layer(
    source: LayerSource,
    wanted: Wanted,
    limits: ReadLimits = ReadLimits(),
    accept: Accept | None = None,
) -> LayerContents:
    """Stream one layer and keep what `wanted` asks for, plus links and whiteouts.

    A wanted file that `accept` refuses once read is dropped as if unwanted.
    """
    contents = LayerContents(digest=source.digest)
    raw = source.open()
    try:
        counter = _CountingReader(
            _decompressed(raw, source.media_type), limits.max_decompressed_bytes, source.digest
        )
        try:
            archive = tarfile.open(fileobj=counter, mode="r|")  # noqa: SIM115 - closed below
        except tarfile.TarError as error:
            raise CorruptLayerError(f"layer {source.digest}: not a tar archive: {error}") from error
        try:
            stopped = _read_members(
                archive, contents, _Selection(wanted, accept, limits), source.digest
            )
        except tarfile.TarError as error:
            raise CorruptLayerError(
                f"layer {source.digest}: damaged tar archive: {error}"
            ) from error
        finally:
            archive.close()
        # tarfile treats a header cut short as a clean end of the archive.
        # A partial block after the last member is a header cut in the middle.
        leftover = counter.count - archive.offset
        if not stopped and (leftover < 0 or 0 < leftover < tarfile.BLOCKSIZE):
            raise CorruptLayerError(
                f"layer {source.digest}: truncated tar archive "
                f"({counter.count} bytes, the last header ends at {archive.offset})"
            )
        contents.decompressed_bytes = counter.count
    finally:
        raw.close()
    _resolve_hardlinks_within(contents, limits)
    return contents


@dataclass(frozen=True)
class _Selection:
    wanted: Wanted
    accept: Accept | None
    limits: ReadLimits


class _Stop(Exception):
    """A cap was reached: keep what was read, read no further."""


def _read_members(
    archive: tarfile.TarFile, contents: LayerContents, selection: _Selection, digest: str
) -> bool:
    """Record the members; True when a cap stopped the reading before the end."""
    limits = selection.limits
    while True:
        member = archive.next()
        if member is None:
            return False
        # Stream mode would otherwise remember every header it has seen.
        archive.members.clear()
        if contents.entry_count >= limits.max_entries:
            contents.limits_hit["max_entries"] = (
                f"layer {digest}: more than {limits.max_entries} entries; "
                "the rest of the layer was not read"
            )
            return True
        contents.entry_count += 1
        try:
            _record_member(archive, member, contents, selection, digest)
        except _Stop:
            return True
        _skip_to_next_header(archive, digest)


def _keep_name(contents: LayerContents, limits: ReadLimits, digest: str, *names: str) -> None:
    """Count the names kept for squashing against the kept-bytes cap, or stop the reading."""
    cost = sum(len(name) for name in names)
    if contents.kept_bytes + cost > limits.max_kept_bytes:
        contents.limits_hit["max_kept_bytes"] = (
            f"layer {digest}: the paths and link targets kept reached the kept-bytes cap "
            f"({limits.max_kept_bytes} bytes); the rest of the layer was not read"
        )
        raise _Stop
    contents.kept_bytes += cost


def _count_link(contents: LayerContents, limits: ReadLimits, digest: str) -> None:
    if contents.link_count >= limits.max_links:
        contents.limits_hit["max_links"] = (
            f"layer {digest}: more than {limits.max_links} symlinks and hardlinks; "
            "the rest of the layer was not read"
        )
        raise _Stop
    contents.link_count += 1


def _link_target(linkname: str, limits: ReadLimits, digest: str) -> str:
    if len(linkname) > limits.max_path_length:
        raise LayerLimitError(
            f"layer {digest}: link target longer than {limits.max_path_length} characters"
        )
    return linkname


def _member_path(name: str, limits: ReadLimits, digest: str) -> str:
    try:
        return normalise_path(name, limits)
    except LayerError as error:
        raise type(error)(f"layer {digest}: {error}") from error


def _record_member(
    archive: tarfile.TarFile,
    member: tarfile.TarInfo,
    contents: LayerContents,
    selection: _Selection,
    digest: str,
) -> None:
    limits = selection.limits
    path = _member_path(member.name, limits, digest)
    if not path:
        return
    directory, _, name = path.rpartition("/")
    if name == _OPAQUE_MARKER:
        if directory not in contents.opaque_dirs:
            _keep_name(contents, limits, digest, directory)
            contents.opaque_dirs.add(directory)
        return
    if name.startswith(_WHITEOUT_PREFIX):
        hidden = name[len(_WHITEOUT_PREFIX) :]
        # '.wh..wh.*' other than the opaque marker are aufs internals.
        if hidden and not hidden.startswith(_WHITEOUT_PREFIX) and hidden not in (".", ".."):
            hidden_path = _join(directory, hidden)
            if hidden_path not in contents.whiteouts:
                _keep_name(contents, limits, digest, hidden_path)
                contents.whiteouts.add(hidden_path)
        return
    _forget(contents, path)
    if member.isdir():
        _keep_name(contents, limits, digest, path)
        contents.directories.add(path)
    elif member.issym():
        _count_link(contents, limits, digest)
        target = _link_target(member.linkname, limits, digest)
        _keep_name(contents, limits, digest, path, target)
        contents.symlinks[path] = target
    elif member.islnk():
        _count_link(contents, limits, digest)
        target = _member_path(member.linkname, limits, digest)
        _keep_name(contents, limits, digest, path, target)
        contents.hardlinks[path] = target
    elif member.isreg() and selection.wanted(path):
        _keep_file(archive, member, path, contents, selection, digest)


def _skip_to_next_header(archive: tarfile.TarFile, digest: str) -> None:
    """Read past the rest of the member ourselves.

    tarfile's own skip in stream mode reads a declared size block by block even
    when the stream has long ended, which a member claiming a terabyte turns
    into minutes of spinning; here a short stream stops at once.
    """
    stream = archive.fileobj
    assert stream is not None  # an open archive always has its stream
    remaining = archive.offset - stream.tell()
    while remaining > 0:
        chunk = stream.read(min(remaining, _READ_CHUNK))
        if not chunk:
            raise CorruptLayerError(f"layer {digest}: archive ends inside a member's data")
        remaining -= len(chunk)


def _forget(contents: LayerContents, path: str) -> None:
    """A later member of the same archive replaces an earlier one at its path."""
    if path in contents.files:
        contents.kept_bytes -= len(contents.files.pop(path))
        contents.modes.pop(path, None)
    for links in (contents.symlinks, contents.hardlinks):
        target = links.pop(path, None)
        if target is not None:
            contents.kept_bytes -= len(path) + len(target)
    if path in contents.directories:
        contents.directories.discard(path)
        contents.kept_bytes -= len(path)
    contents.skipped.pop(path, None)


def _keep_file(
    archive: tarfile.TarFile,
    member: tarfile.TarInfo,
    path: str,
    contents: LayerContents,
    selection: _Selection,
    digest: str,
) -> None:
    limits = selection.limits
    if member.size > limits.max_file_size:
        contents.skipped[path] = SkippedFile(path, member.size, "larger than the per-file cap")
        contents.limits_hit["max_file_size"] = (
            f"layer {digest}: wanted files larger than the per-file cap "
            f"({limits.max_file_size} bytes) were not read"
        )
        return
    if contents.kept_bytes + member.size > limits.max_kept_bytes:
        contents.skipped[path] = SkippedFile(path, member.size, "layer kept-bytes cap reached")
        contents.limits_hit["max_kept_bytes"] = (
            f"layer {digest}: the kept-bytes cap ({limits.max_kept_bytes} bytes) was reached; "
            "further wanted files were not read"
        )
        return
    handle = archive.extractfile(member)
    assert handle is not None  # always a file object for a regular member
    chunks = []
    remaining = member.size
    while remaining > 0:
        chunk = handle.read(min(remaining, _READ_CHUNK))
        if not chunk:
            raise CorruptLayerError(f"layer {digest}: {path} ends before its declared size")
        chunks.append(chunk)
        remaining -= len(chunk)
    data = b"".join(chunks)
    if selection.accept is not None and not selection.accept(path, data):
        return
    contents.files[path] = data
    contents.modes[path] = member.mode
    contents.kept_bytes += len(data)


def _resolve_hardlinks_within(contents: LayerContents, limits: ReadLimits) -> None:
    """A hardlink to a file kept in the same layer becomes that file's content.

    The target may be whited out by a later layer while the link lives on, so the
    content is attached now rather than looked up after squashing.

    Linear in the number of links: each chain is walked once and every link on it
    remembers where the chain ends (None for a loop), so a chain of n links met
    from its far end costs n steps, not n * n / 2.
    """
    hardlinks = contents.hardlinks
    ends: dict[str, str | None] = {}
    for start in hardlinks:
        chain: list[str] = []
        on_chain: set[str] = set()
        current = start
        while current in hardlinks and current not in ends and current not in on_chain:
            chain.append(current)
            on_chain.add(current)
            current = hardlinks[current]
        if current in ends:
            end = ends[current]
        elif current in on_chain:
            end = None  # a loop: no file at its end
        else:
            end = current
        for link in chain:
            ends[link] = end
    for path, end in ends.items():
        if end is None or end not in contents.files:
            continue
        data = contents.files[end]
        # The bytes are shared in memory, but every later step (the layer cache, the
        # catalogers) treats the link as a file of its own: it counts as one.
        if contents.kept_bytes + len(data) > limits.max_kept_bytes:
            contents.limits_hit["max_kept_bytes"] = (
                f"layer {contents.digest}: the kept-bytes cap ({limits.max_kept_bytes} bytes) "
                "was reached; further hardlinks stay links to their target"
            )
            continue
        contents.files[path] = data
        contents.modes[path] = contents.modes.get(end, 0o644)
        contents.kept_bytes += len(data)
        del hardlinks[path]


# --- squashing -----------------------------------------------------------------

FILE = "file"
SYMLINK = "symlink"
HARDLINK = "hardlink"
DIRECTORY = "directory"
SKIPPED = "skipped"


@dataclass(frozen=True)
class Entry:
    """One path in the squashed tree."""

    path: str
    kind: str
    layer: str
    data: bytes | None = None
    target: str | None = None
    mode: int = 0
    size: int = 0


class FileTree:
    """The squashed view of an image's kept files, links and directories."""

    max_link_hops = 40
    # Bounds on one lookup, so that long link targets (up to max_path_length each, up to
    # max_link_hops of them) cannot make every read of a cataloger slow: no stored path is
    # deeper than ReadLimits.max_path_depth, and a real path resolves in a few dozen steps.
    max_resolve_steps = 4096
    max_resolve_depth = 256

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._children: dict[str, set[str]] = {}

    # building

    def _put(self, entry: Entry) -> None:
        self._entries[entry.path] = entry
        child = entry.path
        while child:
            directory = _parent(child)
            names = self._children.setdefault(directory, set())
            if child in names:
                break
            names.add(child)
            child = directory

    def _remove_subtree(self, path: str) -> None:
        for child in self._children.pop(path, set()):
            self._remove_subtree(child)
        self._entries.pop(path, None)
        if path:
            siblings = self._children.get(_parent(path))
            if siblings is not None:
                siblings.discard(path)

    def _clear_directory(self, path: str) -> None:
        for child in list(self._children.get(path, set())):
            self._remove_subtree(child)

    def apply(self, layer: LayerContents) -> None:
        """Lay one more layer on top of the tree."""
        # Whiteouts and opaque markers only hide what lower layers put there.
        for directory in layer.opaque_dirs:
            self._clear_directory(directory)
        for path in layer.whiteouts:
            self._remove_subtree(path)
        for path in layer.directories:
            existing = self._entries.get(path)
            if existing is not None and existing.kind != DIRECTORY:
                self._remove_subtree(path)
            self._put(Entry(path, DIRECTORY, layer.digest))
        replaced = (
            list(layer.files) + list(layer.symlinks) + list(layer.hardlinks) + list(layer.skipped)
        )
        for path in replaced:
            self._remove_subtree(path)
        for path, data in layer.files.items():
            mode = layer.modes.get(path, 0o644)
            self._put(Entry(path, FILE, layer.digest, data=data, mode=mode, size=len(data)))
        for path, target in layer.symlinks.items():
            self._put(Entry(path, SYMLINK, layer.digest, target=target))
        for path, target in layer.hardlinks.items():
            self._put(Entry(path, HARDLINK, layer.digest, target=target))
        for path, skipped in layer.skipped.items():
            self._put(Entry(path, SKIPPED, layer.digest, size=skipped.size))

    # reading

    def resolve(self, path: str) -> str | None:
        """Follow symlinks in every component of `path`; None on a loop, too many hops, or
        a walk longer or deeper than any real path needs."""
        pending = [part for part in reversed(path.split("/")) if part not in ("", ".")]
        resolved: list[str] = []
        hops = steps = 0
        while pending:
            steps += 1
            if steps > self.max_resolve_steps or len(resolved) > self.max_resolve_depth:
                return None
            name = pending.pop()
            if name == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = "/".join([*resolved, name])
            entry = self._entries.get(candidate)
            if entry is not None and entry.kind == SYMLINK and entry.target is not None:
                hops += 1
                if hops > self.max_link_hops:
                    return None
                if entry.target.startswith("/"):
                    resolved = []
                pending.extend(
                    part for part in reversed(entry.target.split("/")) if part not in ("", ".")
                )
                continue
            resolved.append(name)
        return "/".join(resolved)

    def entry(self, path: str) -> Entry | None:
        """The entry `path` leads to, after symlinks and hardlinks."""
        hops = 0
        current: str | None = path
        while current is not None:
            resolved = self.resolve(current)
            if resolved is None:
                return None
            found = self._entries.get(resolved)
            if found is None or found.kind != HARDLINK:
                return found
            hops += 1
            if hops > self.max_link_hops:
                return None
            current = found.target
        return None

    def read(self, path: str) -> bytes | None:
        """The content of the regular file `path` leads to, or None."""
        found = self.entry(path)
        if found is None or found.kind != FILE:
            return None
        return found.data

    def layer_of(self, path: str) -> str | None:
        """The digest of the layer that provided the file `path` leads to."""
        found = self.entry(path)
        return found.layer if found is not None else None

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self.entry(path) is not None

    def __len__(self) -> int:
        return len(self._entries)

    def iter(
        self, prefix: str = "", predicate: Callable[[str], bool] | None = None
    ) -> Iterator[Entry]:
        """Kept regular files whose stored path starts with `prefix` and passes `predicate`.

        Stored paths, not symlink aliases: each file is seen once.
        """
        prefix = prefix.strip("/")
        for path in sorted(self._entries):
            entry = self._entries[path]
            if entry.kind != FILE:
                continue
            if prefix and path != prefix and not path.startswith(prefix + "/"):
                continue
            if predicate is None or predicate(path):
                yield entry

    def glob(self, pattern: str) -> Iterator[Entry]:
        """Kept regular files whose stored path matches a shell pattern ('*' crosses '/')."""
        pattern = pattern.lstrip("/")
        return self.iter(predicate=lambda path: fnmatch.fnmatchcase(path, pattern))

    def skipped(self) -> list[Entry]:
        """Wanted files whose content was not kept (too large, or over the layer cap)."""
        return [entry for entry in self._entries.values() if entry.kind == SKIPPED]


def squash(layers: Iterable[LayerContents]) -> FileTree:
    """Apply the layers bottom-up into one `FileTree`."""
    tree = FileTree()
    for layer in layers:
        tree.apply(layer)
    return tree


class LayerCache:
    """A small in-process LRU of `LayerContents`, keyed by layer digest.

    One cache serves one `wanted` predicate, one `accept` check and one set of
    limits: the contents depend on all three. It is bounded by the kept bytes
    it holds.
    """

    def __init__(
        self,
        wanted: Wanted,
        limits: ReadLimits = ReadLimits(),
        max_bytes: int = 256 * MIB,
        accept: Accept | None = None,
    ) -> None:
        self.wanted = wanted
        self.accept = accept
        self.limits = limits
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, LayerContents] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def read(self, source: LayerSource) -> LayerContents:
        with self._lock:
            cached = self._items.get(source.digest)
            if cached is not None:
                self._items.move_to_end(source.digest)
                return cached
        contents = read_layer(source, self.wanted, self.limits, self.accept)
        with self._lock:
            if source.digest not in self._items and contents.kept_bytes <= self.max_bytes:
                self._items[source.digest] = contents
                self._bytes += contents.kept_bytes
                while self._bytes > self.max_bytes:
                    _, evicted = self._items.popitem(last=False)
                    self._bytes -= evicted.kept_bytes
        return contents

    def __contains__(self, digest: object) -> bool:
        return digest in self._items

    def __len__(self) -> int:
        return len(self._items)


def read_image(
    sources: Iterable[LayerSource],
    wanted: Wanted,
    limits: ReadLimits = ReadLimits(),
    cache: LayerCache | None = None,
    accept: Accept | None = None,
) -> FileTree:
    """Read every layer (through `cache` when given) and squash them.

    A cache holds contents read with its own predicate and limits, so it must
    have been built with the same `wanted`, `accept` and `limits`.
    """
    if cache is not None:
        if cache.wanted is not wanted or cache.accept is not accept or cache.limits != limits:
            raise ValueError("the cache was built for another predicate or other limits")
        return squash(cache.read(source) for source in sources)
    return squash(read_layer(source, wanted, limits, accept) for source in sources)
