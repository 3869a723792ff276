"""Reads of registry data that are more than one filter."""

from .models import Manifest, Repository, Tag


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
