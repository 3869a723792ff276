"""Every write to registry data. Views, admin, tasks and other apps call these."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from registry_portal.accounts.models import Organization
from registry_portal.accounts.permissions import (
    namespace_may_create_repository,
    personal_namespace_name,
)
from registry_portal.errors import PermissionDenied, TagImmutable, ValidationFailed

from .models import Manifest, Repository, RepositoryBlob, RepositoryManifest, Tag, TagEvent
from .selectors import repository_get_by_full_name
from .validators import is_valid_repository_name, is_valid_tag


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
    if not is_valid_repository_name(full_name):
        raise ValidationFailed(
            "Repository names are lowercase path components separated by '/', "
            "at most 255 characters.",
            field="name",
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


def manifest_link(*, repository: Repository, manifest: Manifest) -> None:
    """Make a manifest, its child manifests and their blobs present in a repository.

    References only: no bytes are copied. Idempotent.
    """
    manifests = [manifest, *manifest.children.all()]
    RepositoryManifest.objects.bulk_create(
        [RepositoryManifest(repository=repository, manifest=m) for m in manifests],
        ignore_conflicts=True,
    )
    blob_ids = Manifest.blobs.through.objects.filter(
        manifest_id__in=[m.pk for m in manifests]
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
) -> Tag:
    """Create or move a tag: the only writer of tags.

    Records the move in the tag history and refuses to move a tag of a repository with
    immutable tags. A push (``provenance=None``) clears a promotion's provenance. The tag is
    saved only when something changed; receivers of ``post_save`` learn whether the tag
    points at a new manifest from ``created`` or ``"manifest" in update_fields``.
    """
    if not is_valid_tag(name):
        raise ValidationFailed(
            f"'{name[:140]}' is not a valid tag: use up to 128 letters, digits, '_', '.' and '-', "
            "not starting with '.' or '-'.",
            field="tag",
        )
    manifest_link(repository=repository, manifest=manifest)
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


@transaction.atomic
def tag_delete(*, tag: Tag, actor=None) -> None:
    """Delete a tag and record it in the history."""
    TagEvent.objects.create(
        repository=tag.repository,
        tag_name=tag.name,
        old_digest=tag.manifest.digest,
        actor=actor,
    )
    tag.delete()
