"""Reads of registry data that are more than one filter."""

from __future__ import annotations

import uuid

from django.db import connection
from django.db.models import F, Value
from django.db.models.functions import Collate, Concat

from registry_portal import grammar
from registry_portal.accounts.choices import Action

from .models import Blob, Manifest, Repository, RepositoryBlob, Tag, Upload


def repository_get_by_full_name(*, full_name: str) -> Repository | None:
    """The repository ``<namespace>/<name>``, or None."""
    namespace_name, _, name = full_name.partition("/")
    if not name:
        return None
    return (
        Repository.objects.select_related("namespace")
        .filter(namespace__name=namespace_name, name=name)
        .first()
    )


def manifest_in_repository(*, repository: Repository, digest: str) -> Manifest | None:
    """The manifest with this digest if it is present in the repository."""
    return Manifest.objects.filter(digest=digest, repository_links__repository=repository).first()


def tag_get(*, repository: Repository, name: str) -> Tag | None:
    return Tag.objects.select_related("manifest").filter(repository=repository, name=name).first()


def manifest_by_reference(*, repository: Repository, reference: str) -> Manifest | None:
    """The manifest a tag points at, or the manifest with that digest, in the repository."""
    if grammar.is_digest_reference(reference):
        return manifest_in_repository(repository=repository, digest=reference)
    tag = tag_get(repository=repository, name=reference)
    return tag.manifest if tag is not None else None


def blob_in_repository(*, repository: Repository, digest: str) -> Blob | None:
    """The blob with this digest if the repository may use it (pushed, mounted or linked)."""
    return Blob.objects.filter(
        digest=digest,
        pk__in=RepositoryBlob.objects.filter(repository=repository).values("blob_id"),
    ).first()


def upload_get(*, repository: Repository, upload_id: str) -> Upload | None:
    """An open upload of this repository; None for an unknown or malformed id."""
    try:
        key = uuid.UUID(upload_id)
    except ValueError:
        return None
    return Upload.objects.select_related("repository").filter(pk=key, repository=repository).first()


def _lexical(expression):
    """Byte-order comparison whatever the database's collation (tags and names are ASCII)."""
    if connection.vendor == "postgresql":
        return Collate(expression, "C")
    return expression


def tag_names_page(*, repository: Repository, limit: int | None, last: str = "") -> list[str]:
    """Tag names in lexical order after ``last``; at most ``limit`` (all when None)."""
    names = Tag.objects.filter(repository=repository).annotate(sort_name=_lexical(F("name")))
    if last:
        names = names.filter(sort_name__gt=last)
    names = names.order_by("sort_name").values_list("name", flat=True)
    return list(names if limit is None else names[:limit])


def catalog_page(*, user, limit: int | None, last: str = "") -> list[str]:
    """Full names of the repositories the user may see, in lexical order after ``last``."""
    names = Repository.objects.restrict(user, Action.PULL).annotate(
        full_name_sort=_lexical(Concat(F("namespace__name"), Value("/"), F("name")))
    )
    if last:
        names = names.filter(full_name_sort__gt=last)
    names = names.order_by("full_name_sort").values_list("full_name_sort", flat=True)
    return list(names if limit is None else names[:limit])


def referrers_list(*, repository: Repository, subject_digest: str) -> list[Manifest]:
    """Manifests of this repository whose ``subject`` is the digest, oldest first."""
    return list(
        Manifest.objects.filter(
            subject_digest=subject_digest, repository_links__repository=repository
        ).order_by("created_at", "pk")
    )
