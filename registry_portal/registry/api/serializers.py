"""Serializers of the registry API. They shape data; every write goes through services."""

import json

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from registry_portal.registry.manifests import INDEX_TYPES
from registry_portal.registry.models import Repository, Tag, TagEvent
from scanning.api.serializers import ScanSummarySerializer
from scanning.selectors import scan_summaries_for_tags


class RepositorySerializer(serializers.ModelSerializer):
    namespace = serializers.CharField(
        source="namespace.name",
        help_text="The organization or personal namespace; set on creation only.",
    )
    full_name = serializers.CharField(read_only=True)

    class Meta:
        model = Repository
        fields = (
            "id",
            "namespace_id",
            "namespace",
            "name",
            "full_name",
            "description",
            "is_public",
            "immutable_tags",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("namespace_id", "created_at", "updated_at")
        # Uniqueness is the service's check, with a precise field error.
        validators = []


class RepositoryUpdateSerializer(serializers.ModelSerializer):
    """The settings an admin may change."""

    class Meta:
        model = Repository
        fields = ("description", "is_public", "immutable_tags")


class PlatformSerializer(serializers.Serializer):
    os = serializers.CharField()
    architecture = serializers.CharField()
    variant = serializers.CharField(required=False)


class TagListSerializer(serializers.ListSerializer):
    """Tags, with the scan summaries of all their manifests read at once: the query count
    does not grow with the number of tags."""

    def to_representation(self, data):
        tags = list(data.all() if hasattr(data, "all") else data)
        self.child.scan_summaries = scan_summaries_for_tags(
            pairs={(tag.repository_id, tag.manifest_id) for tag in tags}
        )
        return super().to_representation(tags)


class TagSerializer(serializers.ModelSerializer):
    repository = serializers.CharField(source="repository.full_name", read_only=True)
    digest = serializers.CharField(source="manifest.digest", read_only=True)
    media_type = serializers.CharField(source="manifest.media_type", read_only=True)
    size = serializers.IntegerField(
        source="manifest.size", read_only=True, help_text="Of the manifest, in bytes."
    )
    artifact_type = serializers.CharField(source="manifest.artifact_type", read_only=True)
    pushed_by = serializers.CharField(
        source="pushed_by.username", read_only=True, allow_null=True, default=None
    )
    provenance = serializers.JSONField(
        read_only=True,
        allow_null=True,
        help_text="Set when a promotion made this tag: source repository, tag, digest, "
        "policy, record and time. Null for a pushed tag.",
    )
    scan = serializers.SerializerMethodField(
        help_text="The scan of the tag's manifest: status, distinct vulnerabilities per "
        "severity and SPDX license ids (/scan-reports/?digest= has the whole report). Null "
        "when the manifest has no report."
    )
    # (repository id, manifest id) -> summary, set by the list serializer
    scan_summaries = None

    class Meta:
        model = Tag
        list_serializer_class = TagListSerializer
        fields = (
            "id",
            "repository_id",
            "repository",
            "name",
            "digest",
            "media_type",
            "size",
            "artifact_type",
            "pushed_by",
            "pushed_at",
            "provenance",
            "scan",
        )
        read_only_fields = fields

    @extend_schema_field(ScanSummarySerializer(allow_null=True))
    def get_scan(self, tag: Tag) -> dict | None:
        summaries = self.scan_summaries
        if summaries is None:
            summaries = scan_summaries_for_tags(pairs=[(tag.repository_id, tag.manifest_id)])
        summary = summaries.get((tag.repository_id, tag.manifest_id))
        return ScanSummarySerializer(summary).data if summary is not None else None


class TagDetailSerializer(TagSerializer):
    platforms = serializers.SerializerMethodField(
        help_text="For an index (multi-platform image): the platforms of its manifests."
    )

    class Meta(TagSerializer.Meta):
        fields = (*TagSerializer.Meta.fields, "platforms")
        read_only_fields = fields

    @extend_schema_field(PlatformSerializer(many=True))
    def get_platforms(self, tag: Tag) -> list[dict]:
        manifest = tag.manifest
        if manifest.media_type not in INDEX_TYPES:
            return []
        try:
            entries = json.loads(bytes(manifest.content)).get("manifests", [])
        except (ValueError, AttributeError):
            return []
        platforms = []
        for entry in entries:
            platform = entry.get("platform") if isinstance(entry, dict) else None
            if isinstance(platform, dict) and platform.get("os"):
                platforms.append(
                    {
                        key: str(platform[key])
                        for key in ("os", "architecture", "variant")
                        if platform.get(key)
                    }
                )
        return platforms


class TagEventSerializer(serializers.ModelSerializer):
    repository = serializers.CharField(source="repository.full_name", read_only=True)
    tag = serializers.CharField(source="tag_name", read_only=True)
    actor = serializers.CharField(
        source="actor.username", read_only=True, allow_null=True, default=None
    )
    provenance = serializers.JSONField(read_only=True, allow_null=True)

    class Meta:
        model = TagEvent
        fields = (
            "id",
            "repository_id",
            "repository",
            "tag",
            "old_digest",
            "new_digest",
            "actor",
            "provenance",
            "created_at",
        )
        read_only_fields = fields
