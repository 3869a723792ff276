"""Blob bytes: content-addressed files in ``storages["blobs"]``, and the files of uploads.

A blob lives at ``<algorithm>/<first two hex>/<hex>``. An upload streams into its own file
(``uploads/<id>`` in the same filesystem as the blobs when the storage is local, so the
finished upload becomes the blob by an atomic ``os.replace``; under the data dir when the
storage is remote, and then saved to it once). Bytes are read and written in 1 MiB chunks and
hashed as they pass: nothing is held whole in memory, and nothing is written twice locally.
"""

from __future__ import annotations

import contextlib
import fcntl
import inspect
import os
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, Protocol

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

CHUNK_SIZE = 1024 * 1024
UPLOADS_DIR = "uploads"


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def blob_storage() -> Storage:
    return storages["blobs"]


def blob_name(digest: str) -> str:
    """The storage name of a blob: ``sha256/ab/abcdef...``."""
    algorithm, _, hex_digest = digest.partition(":")
    return f"{algorithm}/{hex_digest[:2]}/{hex_digest}"


def local_path(storage: Storage, name: str) -> str | None:
    """The filesystem path of a name, or None when the storage is not on local disk."""
    try:
        return storage.path(name)
    except NotImplementedError:
        return None


def uploads_dir() -> Path:
    """Where upload files live: beside the blobs when local, else under the data dir."""
    path = local_path(blob_storage(), UPLOADS_DIR)
    directory = Path(path) if path is not None else Path(settings.DATA_DIR) / UPLOADS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def upload_path(upload_id) -> Path:
    return uploads_dir() / str(upload_id)


def upload_file_create(upload_id) -> Path:
    """Create the empty file of a new upload."""
    path = upload_path(upload_id)
    path.touch(exist_ok=False)
    return path


class UploadBusy(Exception):
    """Another request is writing or finishing the same upload right now."""


@contextlib.contextmanager
def upload_locked(path: Path):
    """Hold the upload's file exclusively: one request at a time appends to or finishes an
    upload, so the bytes on disk are always the bytes that were hashed. Raises
    ``UploadBusy`` at once instead of waiting, and ``FileNotFoundError`` without the file."""
    with open(path, "rb") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UploadBusy() from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class BodyInterrupted(Exception):
    """Reading the request body failed (client gone, malformed chunking) after ``written``
    bytes had been written; those bytes are a valid prefix of what the client sent."""

    def __init__(self, written: int):
        super().__init__(f"The request body was interrupted after {written} bytes.")
        self.written = written


def upload_write(
    *,
    path: Path,
    offset: int,
    stream: Readable,
    hashers: Iterable[Hasher],
    limit: int | None = None,
) -> int:
    """Write ``stream`` (to EOF, or ``limit`` bytes) into the file at ``offset``; hash as it goes.

    Anything past ``offset`` (left by an interrupted request) is dropped first. Returns the
    number of bytes written; raises ``BodyInterrupted`` when reading the body fails.
    """
    hashers = tuple(hashers)
    written = 0
    with open(path, "r+b") as handle:
        handle.truncate(offset)
        handle.seek(offset)
        while limit is None or written < limit:
            want = CHUNK_SIZE if limit is None else min(CHUNK_SIZE, limit - written)
            try:
                chunk = stream.read(want)
            except OSError as error:  # gunicorn's NoMoreData and friends, socket errors
                raise BodyInterrupted(written) from error
            if not chunk:
                break
            handle.write(chunk)
            for hasher in hashers:
                hasher.update(chunk)
            written += len(chunk)
    return written


def file_hash(*, path: Path, hasher: Hasher, length: int) -> int:
    """Feed the first ``length`` bytes of a file to ``hasher``; returns how many there were."""
    read = 0
    with open(path, "rb") as handle:
        while read < length:
            chunk = handle.read(min(CHUNK_SIZE, length - read))
            if not chunk:
                break
            hasher.update(chunk)
            read += len(chunk)
    return read


def blob_commit(*, source: Path, digest: str) -> None:
    """Make the finished upload file the blob's bytes, then forget the upload file.

    One atomic rename on local storage, one save on remote storage; skipped when the blob is
    already there, so stored bytes are never replaced.
    """
    storage = blob_storage()
    name = blob_name(digest)
    target = local_path(storage, name)
    if target is not None:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.exists(target):
            # The blob is stored already: its bytes are never replaced, whatever arrives.
            source.unlink(missing_ok=True)
            return
        os.replace(source, target)
        return
    if not storage.exists(name):
        with open(source, "rb") as handle:
            storage.save(name, File(handle, name=name))
    source.unlink(missing_ok=True)


def blob_write_small(*, digest: str, content: bytes) -> None:
    """Store a small blob given in memory (the empty JSON config), unless it is there."""
    storage = blob_storage()
    name = blob_name(digest)
    target = local_path(storage, name)
    if target is not None:
        if not os.path.exists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            temporary = upload_path(f"small-{os.getpid()}-{digest.partition(':')[2]}")
            temporary.write_bytes(content)
            os.replace(temporary, target)
        return
    if not storage.exists(name):
        storage.save(name, ContentFile(content, name=name))


def blob_exists(digest: str) -> bool:
    return blob_storage().exists(blob_name(digest))


def blob_open(digest: str) -> BinaryIO:
    """An open binary file of the blob (local file or storage stream)."""
    storage = blob_storage()
    name = blob_name(digest)
    path = local_path(storage, name)
    if path is not None:
        return open(path, "rb")  # noqa: SIM115 - the response closes it
    return storage.open(name, "rb")


def blob_remove(digest: str) -> None:
    """Delete the blob's bytes (garbage collection only)."""
    storage = blob_storage()
    name = blob_name(digest)
    if storage.exists(name):
        storage.delete(name)


def redirect_url_for(*, storage: Storage, name: str, mode: str, expire: int) -> str | None:
    """Where to redirect a blob pull, or None to serve the bytes ourselves.

    ``mode`` (setting REGISTRY_BLOB_REDIRECT): ``auto`` redirects only when the storage is
    remote and can presign URLs (django-storages' S3Storage: ``url(name, expire=...)``);
    ``true`` redirects whenever the storage gives a URL; ``false`` never redirects.
    """
    if mode in {"false", "0", "no", "off"}:
        return None
    presigns = "expire" in inspect.signature(storage.url).parameters
    if mode == "auto" and (not presigns or local_path(storage, name) is not None):
        return None
    return storage.url(name, expire=expire) if presigns else storage.url(name)


def blob_redirect_url(digest: str) -> str | None:
    """The presigned URL a pull of this blob is redirected to, per the settings, or None."""
    return redirect_url_for(
        storage=blob_storage(),
        name=blob_name(digest),
        mode=settings.REGISTRY_BLOB_REDIRECT,
        expire=settings.REGISTRY_BLOB_REDIRECT_SECONDS,
    )


class RangeFile:
    """A read-only view of ``length`` bytes of an open file from its current position.

    It keeps ``fileno()`` so gunicorn's ``wsgi.file_wrapper`` can sendfile exactly
    ``Content-Length`` bytes from the file's position; plain iteration stops at the range end.
    """

    def __init__(self, handle: BinaryIO, length: int):
        self._handle = handle
        self._remaining = length

    def read(self, size: int = -1) -> bytes:
        if self._remaining <= 0:
            return b""
        size = self._remaining if size is None or size < 0 else min(size, self._remaining)
        data = self._handle.read(size)
        self._remaining -= len(data)
        return data

    def fileno(self) -> int:
        return self._handle.fileno()

    def close(self) -> None:
        self._handle.close()
