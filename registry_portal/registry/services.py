"""Every write to registry data. Views, admin, tasks and other apps call these.

Blob uploads stream into a file while hashing; their state (offset, and the sha256 of the
bytes so far) lives in the ``Upload`` row, so any web process continues any upload. The live
hasher of an upload stays in a small in-process cache between requests; a request that lands
in another process (or after a restart) recomputes it by re-reading the file.

Deleting never races with a push: a blob or manifest row is locked (``select_for_update``)
while it is linked or collected, and the upload file becomes the blob under that lock.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from registry_portal import grammar
from registry_portal.accounts.models import Organization
from registry_portal.accounts.permissions import (
    namespace_may_create_repository,
    personal_namespace_name,
)
from registry_portal.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    TagImmutable,
    ValidationFailed,
)

from . import storage
from .manifests import (
    EMPTY_JSON_CONTENT,
    EMPTY_JSON_DIGEST,
    ManifestBlobUnknown,
    ManifestInvalid,
    manifest_parse,
)
from .models import (
    Blob,
    Manifest,
    Repository,
    RepositoryBlob,
    RepositoryManifest,
    Tag,
    TagEvent,
    Upload,
)
from .selectors import repository_get_by_full_name


def repository_create(
    *,
    namespace: Organization,
    name: str,
    created_by=None,
    is_public: bool = False,
    immutable_tags: bool = False,
    description: str = "",
) -> Repository:
    """Create a repository in a namespace. The caller has checked the permission."""
    full_name = f"{namespace.name}/{name}"
    if not grammar.is_valid_repository_name(full_name):
        raise ValidationFailed(
            f"Not a valid repository name: {grammar.REPOSITORY_NAME_RULES}.", field="name"
        )
    if Repository.objects.filter(namespace=namespace, name=name).exists():
        raise ValidationFailed("A repository with this name already exists here.", field="name")
    return Repository.objects.create(
        namespace=namespace,
        name=name,
        created_by=created_by,
        is_public=is_public,
        immutable_tags=immutable_tags,
        description=description,
    )


def repository_get_or_create_for_push(*, full_name: str, user) -> Repository:
    """The repository a push goes to; created on first push for those who may create it."""
    repository = repository_get_by_full_name(full_name=full_name)
    if repository is not None:
        return repository
    namespace_name, _, name = full_name.partition("/")
    if not name or not namespace_may_create_repository(user, namespace_name):
        raise PermissionDenied(f"You may not create repositories in '{namespace_name}'.")
    with transaction.atomic():
        namespace = Organization.objects.filter(name=namespace_name).first()
        if namespace is None:
            owner = None if namespace_name != personal_namespace_name(user) else user
            namespace, _ = Organization.objects.get_or_create(
                name=namespace_name, defaults={"owner": owner}
            )
        try:
            with transaction.atomic():
                return repository_create(namespace=namespace, name=name, created_by=user)
        except (IntegrityError, ValidationFailed):
            # A concurrent push created it first: use that one.
            existing = repository_get_by_full_name(full_name=full_name)
            if existing is None:
                raise
            return existing


def manifest_link(
    *, repository: Repository, manifest: Manifest, source: Repository | None = None
) -> None:
    """Make a manifest and its child manifests present in a repository, with those of their
    blobs that ``source`` may use (a promotion's or mirror's source; by default the repository
    itself, whose blobs a push has checked).

    A manifest row is shared by everyone who pushed the same bytes, so its blob list is never
    a reason to link a blob by itself: that would hand out another repository's layers to
    whoever re-pushes its manifest. References only: no bytes are copied. Idempotent.
    """
    source = source if source is not None else repository
    manifests = [manifest, *manifest.children.all()]
    RepositoryManifest.objects.bulk_create(
        [RepositoryManifest(repository=repository, manifest=m) for m in manifests],
        ignore_conflicts=True,
    )
    if source.pk == repository.pk:
        return
    blob_ids = Manifest.blobs.through.objects.filter(
        manifest_id__in=[m.pk for m in manifests],
        blob_id__in=RepositoryBlob.objects.filter(repository=source).values("blob_id"),
    ).values_list("blob_id", flat=True)
    RepositoryBlob.objects.bulk_create(
        [RepositoryBlob(repository=repository, blob_id=blob_id) for blob_id in set(blob_ids)],
        ignore_conflicts=True,
    )


@transaction.atomic
def tag_set(
    *,
    repository: Repository,
    name: str,
    manifest: Manifest,
    actor=None,
    provenance: dict | None = None,
    source: Repository | None = None,
) -> Tag:
    """Create or move a tag: the only writer of tags.

    The manifest is linked into the repository with the blobs ``source`` may use (a
    promotion's source; by default the repository's own, which a push has checked).

    Records the move in the tag history and refuses to move a tag of a repository with
    immutable tags. A push (``provenance=None``) clears a promotion's provenance. The tag is
    saved only when something changed; receivers of ``post_save`` learn whether the tag
    points at a new manifest from ``created`` or ``"manifest" in update_fields``.
    """
    if not grammar.is_valid_tag(name):
        raise ValidationFailed(
            f"{name[:140]!r} is not a valid tag: use {grammar.TAG_RULES}.", field="tag"
        )
    manifest_link(repository=repository, manifest=manifest, source=source)
    now = timezone.now()
    tag = Tag.objects.select_for_update().filter(repository=repository, name=name).first()
    if tag is None:
        try:
            with transaction.atomic():
                tag = Tag.objects.create(
                    repository=repository,
                    name=name,
                    manifest=manifest,
                    pushed_by=actor,
                    pushed_at=now,
                    provenance=provenance,
                )
        except IntegrityError:
            # Created concurrently: lock it and treat this as a move.
            tag = Tag.objects.select_for_update().get(repository=repository, name=name)
        else:
            TagEvent.objects.create(
                repository=repository,
                tag_name=name,
                new_digest=manifest.digest,
                actor=actor,
                provenance=provenance,
            )
            return tag
    if tag.manifest_id == manifest.pk:
        if tag.provenance != provenance and provenance is None:
            tag.provenance, tag.pushed_by, tag.pushed_at = None, actor, now
            tag.save(update_fields=["provenance", "pushed_by", "pushed_at"])
        return tag
    if repository.immutable_tags:
        raise TagImmutable(
            f"The tag '{name}' is immutable in {repository.full_name}: "
            "it cannot be moved to another image."
        )
    old_digest = tag.manifest.digest
    tag.manifest, tag.pushed_by, tag.pushed_at, tag.provenance = manifest, actor, now, provenance
    tag.save(update_fields=["manifest", "pushed_by", "pushed_at", "provenance"])
    TagEvent.objects.create(
        repository=repository,
        tag_name=name,
        old_digest=old_digest,
        new_digest=manifest.digest,
        actor=actor,
        provenance=provenance,
    )
    return tag


def _check_delete_enabled() -> None:
    if not settings.REGISTRY_DELETE_ENABLED:
        raise DeleteDisabled()


@transaction.atomic
def tag_delete(*, tag: Tag, actor=None) -> None:
    """Delete a tag and record it in the history.

    The rules of every surface live here: deletion must be enabled
    (``REGISTRY_DELETE_ENABLED``) and the repository's tags must not be immutable."""
    _check_delete_enabled()
    if tag.repository.immutable_tags:
        raise TagImmutable(
            f"The tag '{tag.name}' is immutable in {tag.repository.full_name}: "
            "it cannot be deleted."
        )
    TagEvent.objects.create(
        repository=tag.repository,
        tag_name=tag.name,
        old_digest=tag.manifest.digest,
        actor=actor,
    )
    tag.delete()


# --- Errors of the data path (each names its OCI code for /v2/) ------------------------------


class DeleteDisabled(Conflict):
    oci_code = "UNSUPPORTED"
    oci_status = 405
    default_message = "Deletion is disabled on this registry."


class DigestInvalid(ValidationFailed):
    oci_code = "DIGEST_INVALID"
    default_message = "The digest is invalid or does not match the content."


class BlobUnknown(NotFound):
    oci_code = "BLOB_UNKNOWN"
    default_message = "The blob is unknown to this repository."


class ManifestUnknown(NotFound):
    oci_code = "MANIFEST_UNKNOWN"
    default_message = "The manifest is unknown to this repository."


class UploadUnknown(NotFound):
    oci_code = "BLOB_UPLOAD_UNKNOWN"
    default_message = "The upload is unknown: it finished, was cancelled or expired."


class UploadInvalid(ValidationFailed):
    oci_code = "BLOB_UPLOAD_INVALID"
    default_message = "The upload's stored bytes are not what was received: start again."


class UploadSizeInvalid(ValidationFailed):
    """Fewer bytes arrived than announced; those that did arrive are kept for a resume."""

    oci_code = "SIZE_INVALID"


class UploadRangeInvalid(ValidationFailed):
    """A chunk does not start where the upload stands; ``offset`` says where it does."""

    oci_code = "RANGE_INVALID"

    def __init__(self, message: str | None = None, *, offset: int):
        super().__init__(message or f"The upload continues at byte {offset}.", field="range")
        self.offset = offset


# --- Blob uploads ---------------------------------------------------------------------------


class _HasherCache:
    """Live sha256 objects of uploads in this process, keyed by (upload id, offset).

    Bounded (least recently used out) and thread-safe; an entry is taken out while a request
    writes, so a failed request never leaves a hasher that saw bytes the upload did not keep.
    """

    def __init__(self, size: int = 256):
        self._size = size
        self._items: OrderedDict[tuple[str, int], object] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, upload_id, offset: int):
        with self._lock:
            return self._items.pop((str(upload_id), offset), None)

    def put(self, upload_id, offset: int, hasher) -> None:
        with self._lock:
            self._items[(str(upload_id), offset)] = hasher
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_hashers = _HasherCache()


def _upload_hasher(upload: Upload):
    """The sha256 of the upload's bytes so far: cached, or recomputed from its file."""
    hasher = _hashers.take(upload.pk, upload.offset)
    if hasher is not None:
        return hasher
    hasher = hashlib.sha256()
    if upload.offset:
        read = storage.file_hash(
            path=storage.upload_path(upload.pk), hasher=hasher, length=upload.offset
        )
        if read != upload.offset or hasher.hexdigest() != upload.sha256_state:
            raise UploadInvalid()
    return hasher


def upload_start(*, repository: Repository, user=None) -> Upload:
    """Open a resumable upload session (an empty file and its row)."""
    upload_id = uuid.uuid4()
    storage.upload_file_create(upload_id)
    return Upload.objects.create(
        id=upload_id,
        repository=repository,
        created_by=user if user is not None and user.is_authenticated else None,
    )


def upload_append(
    *, upload: Upload, stream, start: int | None = None, length: int | None = None
) -> Upload:
    """Append a chunk read from ``stream`` (to EOF, or ``length`` bytes) to an upload.

    ``start`` (from Content-Range) must be the upload's offset. Bytes that arrived before a
    short body are kept, so the client can resume from the reported Range.
    """
    with _upload_exclusive(upload):
        return _append(upload=upload, stream=stream, start=start, length=length)


@contextlib.contextmanager
def _upload_exclusive(upload: Upload):
    """One request at a time per upload; then re-read its state, which the last one moved."""
    try:
        with storage.upload_locked(storage.upload_path(upload.pk)):
            current = Upload.objects.filter(pk=upload.pk).values("offset", "sha256_state").first()
            if current is None:
                raise UploadUnknown()
            upload.offset, upload.sha256_state = current["offset"], current["sha256_state"]
            yield
    except FileNotFoundError:
        raise UploadUnknown() from None
    except storage.UploadBusy:
        raise UploadRangeInvalid(
            "Another request is writing to this upload: wait for it, then resume.",
            offset=upload.offset,
        ) from None


def _append(*, upload: Upload, stream, start: int | None, length: int | None) -> Upload:
    if start is not None and start != upload.offset:
        raise UploadRangeInvalid(
            f"The chunk starts at byte {start} but the upload continues at byte {upload.offset}.",
            offset=upload.offset,
        )
    path = storage.upload_path(upload.pk)
    hasher = _upload_hasher(upload)
    interrupted = False
    try:
        written = storage.upload_write(
            path=path, offset=upload.offset, stream=stream, hashers=(hasher,), limit=length
        )
    except storage.BodyInterrupted as error:
        written, interrupted = error.written, True
    if written:
        new_offset = upload.offset + written
        now = timezone.now()
        updated = Upload.objects.filter(pk=upload.pk, offset=upload.offset).update(
            offset=new_offset, sha256_state=hasher.copy().hexdigest(), updated_at=now
        )
        if not updated:
            current = Upload.objects.filter(pk=upload.pk).values_list("offset", flat=True).first()
            if current is None:
                raise UploadUnknown()
            raise UploadRangeInvalid(offset=current)
        upload.offset, upload.updated_at = new_offset, now
        upload.sha256_state = hasher.copy().hexdigest()
    _hashers.put(upload.pk, upload.offset, hasher)
    if interrupted or (length is not None and written < length):
        raise UploadSizeInvalid(
            f"The body ended after {written} bytes"
            + (f" of {length}" if length is not None else "")
            + f"; the upload continues at byte {upload.offset}."
        )
    return upload


def _blob_lock_or_create(*, digest: str, size: int) -> Blob:
    """The blob row, locked for this transaction; created when new."""
    blob = Blob.objects.select_for_update().filter(digest=digest).first()
    if blob is not None:
        return blob
    try:
        with transaction.atomic():
            return Blob.objects.create(digest=digest, size=size)
    except IntegrityError:
        return Blob.objects.select_for_update().get(digest=digest)


def _blob_store(*, repository: Repository, digest: str, size: int, source, upload=None) -> Blob:
    """Turn a verified upload file into the blob, link it to the repository, end the upload."""
    with transaction.atomic():
        blob = _blob_lock_or_create(digest=digest, size=size)
        storage.blob_commit(source=source, digest=digest)
        RepositoryBlob.objects.bulk_create(
            [RepositoryBlob(repository=repository, blob=blob)], ignore_conflicts=True
        )
        if upload is not None:
            Upload.objects.filter(pk=upload.pk).delete()
    return blob


def _digest_check(digest: str) -> str:
    if not grammar.is_valid_digest(digest):
        raise DigestInvalid(f"{digest[:140]!r} is not a valid digest: use {grammar.DIGEST_RULES}.")
    return digest.partition(":")[0]


def upload_finish(
    *,
    upload: Upload,
    digest: str,
    stream=None,
    start: int | None = None,
    length: int | None = None,
) -> Blob:
    """Append the last chunk (if any), verify the digest and make the upload a blob.

    A digest mismatch keeps nothing: the upload is discarded.
    """
    algorithm = _digest_check(digest)
    with _upload_exclusive(upload):
        if stream is not None and length != 0:
            upload = _append(upload=upload, stream=stream, start=start, length=length)
        elif start is not None and start != upload.offset:
            raise UploadRangeInvalid(offset=upload.offset)
        path = storage.upload_path(upload.pk)
        if algorithm == "sha256":
            hasher = _upload_hasher(upload)
        else:
            # sha512 digests are rare: they are computed on this path only, by re-reading.
            hasher = hashlib.new(algorithm)
            storage.file_hash(path=path, hasher=hasher, length=upload.offset)
        actual = f"{algorithm}:{hasher.hexdigest()}"
        if actual != digest:
            upload_cancel(upload=upload)
            raise DigestInvalid(
                f"The uploaded content has digest {actual}, not {digest}: the upload was discarded."
            )
        return _blob_store(
            repository=upload.repository,
            digest=digest,
            size=upload.offset,
            source=path,
            upload=upload,
        )


def blob_upload_monolithic(
    *, repository: Repository, digest: str, stream, length: int | None
) -> Blob:
    """A single-request upload (POST with ``?digest=``): stream, verify, store."""
    algorithm = _digest_check(digest)
    path = storage.upload_file_create(f"single-{uuid.uuid4()}")
    try:
        hasher = hashlib.new(algorithm)
        try:
            written = storage.upload_write(
                path=path, offset=0, stream=stream, hashers=(hasher,), limit=length
            )
        except storage.BodyInterrupted as error:
            raise UploadSizeInvalid(
                f"The body was interrupted after {error.written} bytes."
            ) from None
        if length is not None and written != length:
            raise UploadSizeInvalid(f"The body ended after {written} of {length} bytes.")
        actual = f"{algorithm}:{hasher.hexdigest()}"
        if actual != digest:
            raise DigestInvalid(f"The uploaded content has digest {actual}, not {digest}.")
        return _blob_store(repository=repository, digest=digest, size=written, source=path)
    finally:
        path.unlink(missing_ok=True)


def upload_cancel(*, upload: Upload) -> None:
    """Abandon an upload: its row and its file."""
    Upload.objects.filter(pk=upload.pk).delete()
    storage.upload_path(upload.pk).unlink(missing_ok=True)


def upload_mount(*, repository: Repository, digest: str, source: Repository) -> Blob | None:
    """Link a blob of ``source`` into ``repository`` without copying bytes.

    Returns None when ``source`` has no such blob. The caller has checked that it may pull
    ``source``.
    """
    _digest_check(digest)
    with transaction.atomic():
        blob = (
            Blob.objects.select_for_update()
            .filter(
                digest=digest,
                pk__in=RepositoryBlob.objects.filter(repository=source).values("blob_id"),
            )
            .first()
        )
        if blob is None:
            return None
        RepositoryBlob.objects.bulk_create(
            [RepositoryBlob(repository=repository, blob=blob)], ignore_conflicts=True
        )
    return blob


def blob_delete(*, repository: Repository, digest: str) -> None:
    """Unlink a blob from a repository; its bytes go with garbage collection."""
    _check_delete_enabled()
    _digest_check(digest)
    deleted, _ = RepositoryBlob.objects.filter(repository=repository, blob__digest=digest).delete()
    if not deleted:
        raise BlobUnknown()


def uploads_expire(*, now=None) -> int:
    """Remove uploads idle for REGISTRY_UPLOAD_TTL_HOURS, and stray upload files as old.

    Returns how many uploads (rows or stray files) were removed.
    """
    cutoff = (now or timezone.now()) - timedelta(hours=settings.REGISTRY_UPLOAD_TTL_HOURS)
    removed = 0
    for upload in Upload.objects.filter(updated_at__lt=cutoff).only("pk"):
        upload_cancel(upload=upload)
        removed += 1
    live = {str(pk) for pk in Upload.objects.values_list("pk", flat=True)}
    for path in storage.uploads_dir().iterdir():
        if path.name in live or not path.is_file():
            continue
        try:
            stale = path.stat().st_mtime < cutoff.timestamp()
        except FileNotFoundError:
            continue
        if stale:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


# --- Manifests ------------------------------------------------------------------------------


def _manifest_blob_ids(*, repository: Repository, parsed) -> list[int]:
    """Ids of the blobs the manifest references; each missing one is MANIFEST_BLOB_UNKNOWN."""
    descriptors = parsed.blob_descriptors
    if not descriptors:
        return []
    wanted = {d.digest for d in descriptors}
    if EMPTY_JSON_DIGEST in wanted:
        _empty_json_blob_link(repository=repository)
    present = dict(
        Blob.objects.filter(
            digest__in=wanted,
            pk__in=RepositoryBlob.objects.filter(repository=repository).values("blob_id"),
        ).values_list("digest", "size")
    )
    missing = []
    for descriptor in descriptors:
        size = present.get(descriptor.digest)
        if size is None:
            # A non-distributable layer (with urls) may be absent: it is then fetched from its
            # urls by clients, and never linked here, whatever blob has its digest.
            if not descriptor.urls:
                missing.append(descriptor.digest)
        elif size != descriptor.size:
            raise ManifestInvalid(
                f"The descriptor of {descriptor.digest} says {descriptor.size} bytes, "
                f"the blob has {size}."
            )
    if missing:
        raise ManifestBlobUnknown(detail=[{"digest": digest} for digest in dict.fromkeys(missing)])
    return list(Blob.objects.filter(digest__in=present).values_list("pk", flat=True))


def _empty_json_blob_link(*, repository: Repository) -> None:
    """The empty JSON descriptor ("{}") is always available: store and link it on demand."""
    storage.blob_write_small(digest=EMPTY_JSON_DIGEST, content=EMPTY_JSON_CONTENT)
    blob = _blob_lock_or_create(digest=EMPTY_JSON_DIGEST, size=len(EMPTY_JSON_CONTENT))
    RepositoryBlob.objects.bulk_create(
        [RepositoryBlob(repository=repository, blob=blob)], ignore_conflicts=True
    )


def _manifest_child_ids(*, repository: Repository, parsed) -> list[int]:
    """Ids of an index's child manifests; each must already be in the repository."""
    if not parsed.children:
        return []
    wanted = {d.digest for d in parsed.children}
    present = dict(
        Manifest.objects.filter(
            digest__in=wanted,
            pk__in=RepositoryManifest.objects.filter(repository=repository).values("manifest_id"),
        ).values_list("digest", "pk")
    )
    missing = [d.digest for d in parsed.children if d.digest not in present]
    if missing:
        raise ManifestBlobUnknown(
            "The index references manifests unknown to this repository.",
            detail=[{"digest": digest} for digest in dict.fromkeys(missing)],
        )
    return list(present.values())


def manifest_put(
    *,
    repository: Repository,
    reference: str,
    content: bytes,
    content_type: str = "",
    actor=None,
) -> Manifest:
    """Store a pushed manifest exactly as received, link it and its blobs, and set the tag.

    ``reference`` is a tag or the digest the client computed. Everything happens in one
    transaction: the tag exists when this returns, or nothing changed.
    """
    is_digest = grammar.is_digest_reference(reference)
    if is_digest:
        algorithm = _digest_check(reference)
    elif not grammar.is_valid_tag(reference):
        raise ValidationFailed(
            f"{reference[:140]!r} is not a valid tag: use {grammar.TAG_RULES}.", field="tag"
        )
    else:
        algorithm = "sha256"
    parsed = manifest_parse(content, content_type=content_type)
    digest = f"{algorithm}:{hashlib.new(algorithm, content).hexdigest()}"
    if is_digest and digest != reference:
        raise DigestInvalid(f"The manifest's digest is {digest}, not {reference}.")
    with transaction.atomic():
        blob_ids = _manifest_blob_ids(repository=repository, parsed=parsed)
        child_ids = _manifest_child_ids(repository=repository, parsed=parsed)
        manifest = Manifest.objects.select_for_update().filter(digest=digest).first()
        if manifest is None:
            manifest = _manifest_create(
                digest=digest,
                content=content,
                parsed=parsed,
                blob_ids=blob_ids,
                child_ids=child_ids,
            )
        if is_digest:
            manifest_link(repository=repository, manifest=manifest)
        else:
            tag_set(repository=repository, name=reference, manifest=manifest, actor=actor)
        if manifest.subject_digest:
            referrer_follow_promotions(repository=repository, referrer=manifest)
    return manifest


def referrer_follow_promotions(*, repository: Repository, referrer: Manifest) -> int:
    """Referrers follow a promoted image: a signature or SBOM pushed for an image that was
    promoted out of ``repository`` is linked into every repository it was promoted into,
    along the whole chain. Read from the tags' provenance; returns how many repositories.
    """
    reached: set[int] = set()
    frontier = [repository.full_name]
    while frontier:
        promoted = (
            Tag.objects.filter(
                manifest__digest=referrer.subject_digest,
                provenance__source_repository__in=frontier,
            )
            .exclude(repository_id__in=reached | {repository.pk})
            .select_related("repository__namespace")
        )
        frontier = []
        for tag in promoted:
            if tag.repository_id not in reached:
                reached.add(tag.repository_id)
                manifest_link(repository=tag.repository, manifest=referrer, source=repository)
                frontier.append(tag.repository.full_name)
    return len(reached)


def _manifest_create(*, digest: str, content: bytes, parsed, blob_ids, child_ids) -> Manifest:
    try:
        with transaction.atomic():
            manifest = Manifest.objects.create(
                digest=digest,
                media_type=parsed.media_type,
                content=content,
                size=len(content),
                config_digest=parsed.config.digest if parsed.config else "",
                subject_digest=parsed.subject.digest if parsed.subject else "",
                artifact_type=parsed.artifact_type,
                annotations=parsed.annotations,
            )
            Manifest.blobs.through.objects.bulk_create(
                [Manifest.blobs.through(manifest_id=manifest.pk, blob_id=pk) for pk in blob_ids]
            )
            Manifest.children.through.objects.bulk_create(
                [
                    Manifest.children.through(from_manifest_id=manifest.pk, to_manifest_id=pk)
                    for pk in child_ids
                ]
            )
            return manifest
    except IntegrityError:
        # Pushed concurrently (same bytes, same digest): use that row.
        return Manifest.objects.select_for_update().get(digest=digest)


@transaction.atomic
def manifest_delete(*, repository: Repository, reference: str, actor=None) -> None:
    """Delete a tag, or remove a manifest (by digest) and its tags from the repository.

    Tags of a repository with immutable tags cannot be deleted. Bytes go with garbage
    collection. A tag is looked up by name without the grammar check, so that a tag stored
    before the check existed can still be deleted.
    """
    _check_delete_enabled()
    if grammar.is_digest_reference(reference):
        _digest_check(reference)
        link = RepositoryManifest.objects.filter(
            repository=repository, manifest__digest=reference
        ).first()
        if link is None:
            raise ManifestUnknown()
        tags = list(
            Tag.objects.select_related("manifest", "repository").filter(
                repository=repository, manifest_id=link.manifest_id
            )
        )
    else:
        link = None
        tags = list(
            Tag.objects.select_related("manifest", "repository").filter(
                repository=repository, name=reference
            )
        )
        if not tags:
            raise ManifestUnknown(f"The tag '{reference[:140]}' is unknown to this repository.")
    if tags and repository.immutable_tags:
        raise TagImmutable(
            f"The tag '{tags[0].name}' is immutable in {repository.full_name}: "
            "it cannot be deleted."
        )
    for tag in tags:
        tag_delete(tag=tag, actor=actor)
    if link is not None:
        link.delete()


# --- Garbage collection ---------------------------------------------------------------------


@dataclass
class GarbageReport:
    """What a garbage collection removed (or, in a dry run, would remove)."""

    manifests: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    bytes_freed: int = 0


def _unreferenced_manifests(cutoff):
    """Manifests in no repository, with no tag, and no parent that is in a repository."""
    linked = RepositoryManifest.objects.filter(manifest=OuterRef("pk"))
    tagged = Tag.objects.filter(manifest=OuterRef("pk"))
    linked_parent = Manifest.children.through.objects.filter(
        to_manifest=OuterRef("pk"),
        from_manifest__in=RepositoryManifest.objects.values("manifest_id"),
    )
    return Manifest.objects.filter(created_at__lt=cutoff).filter(
        ~Exists(linked), ~Exists(tagged), ~Exists(linked_parent)
    )


def _unreferenced_blobs(cutoff, *, ignoring_manifests=()):
    """Blobs linked to no repository and referenced by no manifest (but those ignored)."""
    linked = RepositoryBlob.objects.filter(blob=OuterRef("pk"))
    referenced = Manifest.blobs.through.objects.filter(blob=OuterRef("pk")).exclude(
        manifest_id__in=list(ignoring_manifests)
    )
    return Blob.objects.filter(created_at__lt=cutoff).filter(~Exists(linked), ~Exists(referenced))


def garbage_collect(*, dry_run: bool = False, grace: timedelta | None = None) -> GarbageReport:
    """Remove manifests and blobs that nothing references, older than a grace period.

    Each row is locked and re-checked in its own transaction before it goes, so a concurrent
    push that links it (it takes the same lock) either wins and keeps it, or waits and
    re-creates it. ``dry_run`` reports without changing anything.
    """
    if grace is None:
        grace = timedelta(minutes=settings.REGISTRY_GC_GRACE_MINUTES)
    cutoff = timezone.now() - grace
    report = GarbageReport()
    candidates = list(_unreferenced_manifests(cutoff).values_list("pk", "digest"))
    for pk, digest in candidates:
        if dry_run:
            report.manifests.append(digest)
            continue
        with transaction.atomic():
            locked = _unreferenced_manifests(cutoff).select_for_update().filter(pk=pk)
            if not list(locked.values_list("pk")):
                continue
            Manifest.objects.filter(pk=pk).delete()
        report.manifests.append(digest)
    ignoring = [pk for pk, _ in candidates] if dry_run else []
    blobs = _unreferenced_blobs(cutoff, ignoring_manifests=ignoring)
    for pk, digest, size in blobs.values_list("pk", "digest", "size"):
        if dry_run:
            report.blobs.append(digest)
            report.bytes_freed += size
            continue
        with transaction.atomic():
            locked = _unreferenced_blobs(cutoff).select_for_update().filter(pk=pk).values_list("pk")
            if not list(locked):
                continue
            Blob.objects.filter(pk=pk).delete()
            storage.blob_remove(digest)
        report.blobs.append(digest)
        report.bytes_freed += size
    return report


def repository_update(
    *,
    repository: Repository,
    is_public: bool | None = None,
    immutable_tags: bool | None = None,
    description: str | None = None,
) -> Repository:
    """Change a repository's settings; only the given arguments change. The caller has
    checked the permission (admin)."""
    changed = []
    for field_name, value in (
        ("is_public", is_public),
        ("immutable_tags", immutable_tags),
        ("description", description),
    ):
        if value is not None and getattr(repository, field_name) != value:
            setattr(repository, field_name, value)
            changed.append(field_name)
    if changed:
        repository.save(update_fields=[*changed, "updated_at"])
    return repository


# --- Repository management (pages and the REST API) -----------------------------------------


def repository_create_in_namespace(
    *,
    actor,
    namespace_name: str,
    name: str,
    is_public: bool = False,
    immutable_tags: bool = False,
    description: str = "",
) -> Repository:
    """Create a repository as ``actor``, who must be allowed to create in the namespace.

    A user's personal namespace is created on first use, as on a first push.
    """
    if not namespace_may_create_repository(actor, namespace_name):
        raise PermissionDenied(f"You may not create repositories in '{namespace_name}'.")
    with transaction.atomic():
        namespace = Organization.objects.filter(name=namespace_name).first()
        if namespace is None:
            owner = actor if namespace_name == personal_namespace_name(actor) else None
            namespace, _ = Organization.objects.get_or_create(
                name=namespace_name, defaults={"owner": owner}
            )
        return repository_create(
            namespace=namespace,
            name=name,
            created_by=actor,
            is_public=is_public,
            immutable_tags=immutable_tags,
            description=description,
        )


@transaction.atomic
def repository_delete(*, repository: Repository) -> None:
    """Delete a repository with its tags (recorded in no history: it goes with them).

    Policies from it go too; policies into it keep their records and fail from now on.
    Manifests and blobs it used are left to garbage collection. The caller checked admin.
    """
    repository.delete()
