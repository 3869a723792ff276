"""Registry data: repositories, content-addressed blobs and manifests, tags and uploads."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.urls import reverse

from registry_portal.accounts.permissions import (
    RepositoryQuerySet,
    RestrictedQuerySet,
    repository_q,
)

from .validators import validate_digest, validate_media_type, validate_repository_path, validate_tag


class ManifestQuerySet(RestrictedQuerySet):
    """Content-addressed manifests are seen where they are present: in any repository that
    holds them."""

    def restrict_q(self, user, action: str) -> Q:
        held = RepositoryManifest.objects.filter(
            repository_q(user, action, path="repository"), manifest=OuterRef("pk")
        )
        return Q(Exists(held))


class InRepositoryQuerySet(RestrictedQuerySet):
    """Rows of one repository (tags, their history): its permission is theirs."""

    repository_paths = ("repository",)


class Repository(models.Model):
    """A repository of images: ``<namespace>/<name>``, where name may contain slashes."""

    namespace = models.ForeignKey(
        "accounts.Organization",
        on_delete=models.PROTECT,
        related_name="repositories",
        verbose_name="namespace",
    )
    name = models.CharField(
        "name",
        max_length=255,
        validators=[validate_repository_path],
        help_text="The part after the namespace, e.g. 'website'.",
    )
    is_public = models.BooleanField(
        "public", default=False, help_text="Anyone, even anonymous, may pull a public repository."
    )
    immutable_tags = models.BooleanField(
        "immutable tags", default=False, help_text="Once a tag exists it can never be moved."
    )
    description = models.TextField("description", blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField("created", auto_now_add=True)
    updated_at = models.DateTimeField("updated", auto_now=True)

    objects = RepositoryQuerySet.as_manager()

    class Meta:
        ordering = ("namespace__name", "name")
        verbose_name_plural = "repositories"
        constraints = [
            models.UniqueConstraint(
                fields=("namespace", "name"),
                name="repository_unique_name_per_namespace",
                violation_error_message="A repository with this name already exists here.",
            )
        ]

    def __str__(self) -> str:
        return self.full_name

    def get_absolute_url(self) -> str:
        """The repository's Overview page ("View on site" in the admin)."""
        return reverse(
            "repos:overview", kwargs={"namespace": self.namespace.name, "name": self.name}
        )

    @property
    def full_name(self) -> str:
        return f"{self.namespace.name}/{self.name}"


class Blob(models.Model):
    """A content-addressed blob (a layer or a config); stored once, whatever links to it."""

    digest = models.CharField("digest", max_length=140, unique=True, validators=[validate_digest])
    size = models.BigIntegerField("size")
    created_at = models.DateTimeField("created", auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return self.digest


class RepositoryBlob(models.Model):
    """A repository may use a blob: it was pushed there, mounted, or came with a manifest."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="blob_links")
    blob = models.ForeignKey(Blob, on_delete=models.CASCADE, related_name="repository_links")
    created_at = models.DateTimeField("linked", auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(fields=("repository", "blob"), name="repository_blob_unique")
        ]

    def __str__(self) -> str:
        return f"{self.repository} → {self.blob}"


class Manifest(models.Model):
    """A manifest or index, content-addressed: the exact bytes as pushed, and what they name."""

    digest = models.CharField("digest", max_length=140, unique=True, validators=[validate_digest])
    media_type = models.CharField("media type", max_length=255, validators=[validate_media_type])
    content = models.BinaryField("content")
    size = models.PositiveIntegerField("size")
    config_digest = models.CharField(
        "config digest", max_length=140, blank=True, validators=[validate_digest]
    )
    subject_digest = models.CharField(
        "subject digest", max_length=140, blank=True, db_index=True, validators=[validate_digest]
    )
    artifact_type = models.CharField(
        "artifact type", max_length=255, blank=True, validators=[validate_media_type]
    )
    annotations = models.JSONField("annotations", default=dict, blank=True)
    blobs = models.ManyToManyField(Blob, related_name="manifests", blank=True)
    children = models.ManyToManyField("self", symmetrical=False, related_name="parents", blank=True)
    created_at = models.DateTimeField("created", auto_now_add=True)

    objects = ManifestQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return self.digest


class RepositoryManifest(models.Model):
    """A manifest is present in a repository (pushed, tagged, promoted or a child)."""

    repository = models.ForeignKey(
        Repository, on_delete=models.CASCADE, related_name="manifest_links"
    )
    manifest = models.ForeignKey(
        Manifest, on_delete=models.CASCADE, related_name="repository_links"
    )
    created_at = models.DateTimeField("linked", auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(
                fields=("repository", "manifest"), name="repository_manifest_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.repository}@{self.manifest}"


class Tag(models.Model):
    """A name in a repository pointing at a manifest. Written only by ``services.tag_set``."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField("name", max_length=128, validators=[validate_tag])
    manifest = models.ForeignKey(Manifest, on_delete=models.PROTECT, related_name="tags")
    pushed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="pushed by",
    )
    pushed_at = models.DateTimeField("pushed", db_index=True)
    provenance = models.JSONField(
        "provenance",
        null=True,
        blank=True,
        help_text="Set when a promotion made this tag: source repository, tag, digest, "
        "policy and time. Cleared by a later push.",
    )

    objects = InRepositoryQuerySet.as_manager()

    class Meta:
        ordering = ("repository", "name")
        constraints = [
            models.UniqueConstraint(
                fields=("repository", "name"),
                name="tag_unique_name_per_repository",
                violation_error_message="This tag already exists in the repository.",
            )
        ]
        indexes = [models.Index(fields=("repository", "-pushed_at"), name="tag_repo_pushed_idx")]

    def __str__(self) -> str:
        return f"{self.repository}:{self.name}"

    def get_absolute_url(self) -> str:
        """The tag's Vulnerabilities page ("View on site" in the admin)."""
        repository = self.repository
        return reverse(
            "repos:tag-vulnerabilities",
            kwargs={
                "namespace": repository.namespace.name,
                "name": repository.name,
                "tag": self.name,
            },
        )


class TagEvent(models.Model):
    """The history of a tag: every creation, move and deletion, with who did it."""

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="tag_events")
    tag_name = models.CharField("tag", max_length=128)
    old_digest = models.CharField("old digest", max_length=140, blank=True)
    new_digest = models.CharField(
        "new digest", max_length=140, blank=True, help_text="Empty when the tag was deleted."
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    provenance = models.JSONField("provenance", null=True, blank=True)
    created_at = models.DateTimeField("when", auto_now_add=True, db_index=True)

    objects = InRepositoryQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=("repository", "tag_name"), name="tagevent_repo_tag_idx")]

    def __str__(self) -> str:
        return (
            f"{self.repository}:{self.tag_name} {self.old_digest or '∅'} → {self.new_digest or '∅'}"
        )


class Upload(models.Model):
    """A resumable blob upload session. Its state lives here, so any web process continues it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="uploads")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    offset = models.BigIntegerField("bytes received", default=0)
    sha256_state = models.CharField(
        "sha256 of the received bytes",
        max_length=64,
        blank=True,
        help_text="Digest of bytes [0, offset), so a finishing request need not re-read them.",
    )
    created_at = models.DateTimeField("started", auto_now_add=True)
    updated_at = models.DateTimeField("last activity", auto_now=True, db_index=True)

    class Meta:
        ordering = ("-updated_at",)

    def __str__(self) -> str:
        return f"upload {self.id} to {self.repository} ({self.offset} bytes)"
