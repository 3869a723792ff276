"""Serializers of the scanning API. They shape data; the retry, the sync and the upload are
``scanning.services`` calls made by the views."""

from urllib.parse import urlsplit, urlunsplit

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from scanning.choices import ScanStatus, Severity
from scanning.models import Component, Finding, OsvSnapshot, OsvVulnerability, ScanReport
from scanning.selectors import report_platform_reports


class VulnerabilityCountsSerializer(serializers.Serializer):
    """Distinct vulnerabilities per severity ("unknown" when no severity could be found)."""

    critical = serializers.IntegerField()
    high = serializers.IntegerField()
    medium = serializers.IntegerField()
    low = serializers.IntegerField()
    unknown = serializers.IntegerField()


class ScanSummarySerializer(serializers.Serializer):
    """A scan report in a few fields, as tags show it."""

    status = serializers.ChoiceField(choices=ScanStatus.choices)
    error = serializers.CharField(help_text="Why the scan failed; empty otherwise.")
    vulnerabilities = VulnerabilityCountsSerializer(source="vulnerability_counts")
    licenses = serializers.ListField(
        child=serializers.CharField(),
        help_text="The SPDX license ids the image's components use.",
    )


class PlatformReportSerializer(serializers.ModelSerializer):
    digest = serializers.CharField(source="manifest.digest", read_only=True)

    class Meta:
        model = ScanReport
        fields = ("id", "digest", "platform", "status")
        read_only_fields = fields


class ScanReportSerializer(serializers.ModelSerializer):
    digest = serializers.CharField(source="manifest.digest", read_only=True)
    media_type = serializers.CharField(source="manifest.media_type", read_only=True)
    repositories = serializers.SerializerMethodField(
        help_text="The repositories holding the manifest that the caller may see (full names)."
    )
    vulnerabilities = VulnerabilityCountsSerializer(source="vulnerability_counts", read_only=True)
    sources = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Where the inventory came from: 'scan' (the layers) and/or "
        "'sbom:<digest>' (an SBOM referrer).",
    )
    notes = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Degraded results: what was skipped and why.",
    )
    incomplete_reasons = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Empty when every layer was read in full; else why not: a layer reader cap "
        "(max_entries, max_links, max_kept_bytes, max_file_size) or layer_skipped.",
    )
    snapshot_id = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The OSV snapshot the findings come from."
    )

    class Meta:
        model = ScanReport
        fields = (
            "id",
            "manifest_id",
            "digest",
            "media_type",
            "repositories",
            "status",
            "error",
            "is_index",
            "platform",
            "distro",
            "ecosystem",
            "component_count",
            "vulnerabilities",
            "sources",
            "snapshot_id",
            "notes",
            "incomplete_reasons",
            "queued_at",
            "started_at",
            "finished_at",
        )
        read_only_fields = fields

    def get_repositories(self, report: ScanReport) -> list[str]:
        # `visible_links` is prefetched by the view, restricted to the caller's repositories.
        return [link.repository.full_name for link in report.manifest.visible_links]


class ScanReportDetailSerializer(ScanReportSerializer):
    platform_reports = serializers.SerializerMethodField(
        help_text="For an index: the reports of its platform manifests, whose components "
        "and findings make up this report (filter /components/ and /findings/ by their ids)."
    )

    class Meta(ScanReportSerializer.Meta):
        fields = (*ScanReportSerializer.Meta.fields, "platform_reports")
        read_only_fields = fields

    @extend_schema_field(PlatformReportSerializer(many=True))
    def get_platform_reports(self, report: ScanReport) -> list[dict]:
        platforms = report_platform_reports(report=report).select_related("manifest")
        return PlatformReportSerializer(platforms.defer("manifest__content"), many=True).data


class LicenseSerializer(serializers.Serializer):
    raw = serializers.CharField(help_text="As the package declares it.")
    spdx = serializers.CharField(
        allow_null=True, help_text="The SPDX expression, when it could be normalised."
    )
    found_in = serializers.CharField(help_text="Where it was read.")


class ComponentSerializer(serializers.ModelSerializer):
    digest = serializers.CharField(source="report.manifest.digest", read_only=True)
    licenses = LicenseSerializer(many=True, read_only=True)
    license_ids = serializers.SlugRelatedField(
        slug_field="spdx_id",
        many=True,
        read_only=True,
        help_text="The SPDX license ids the component uses (empty: unknown).",
    )

    class Meta:
        model = Component
        fields = (
            "id",
            "report_id",
            "digest",
            "name",
            "version",
            "type",
            "ecosystem",
            "purl",
            "source_name",
            "source_version",
            "licenses",
            "license_ids",
            "layer_digest",
            "path",
            "origin",
        )
        read_only_fields = fields


class VulnerabilitySerializer(serializers.ModelSerializer):
    aliases = serializers.ListField(child=serializers.CharField(), read_only=True)
    severity = serializers.ChoiceField(choices=Severity.choices, read_only=True)

    class Meta:
        model = OsvVulnerability
        fields = (
            "osv_id",
            "aliases",
            "summary",
            "modified",
            "severity",
            "score",
            "severity_source",
        )
        read_only_fields = fields


class FindingComponentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Component
        fields = ("id", "name", "version", "type", "ecosystem", "purl")
        read_only_fields = fields


class FindingSerializer(serializers.ModelSerializer):
    digest = serializers.CharField(source="report.manifest.digest", read_only=True)
    component = FindingComponentSerializer(read_only=True)
    vulnerability = VulnerabilitySerializer(read_only=True)
    severity = serializers.ChoiceField(choices=Severity.choices, read_only=True)

    class Meta:
        model = Finding
        fields = (
            "id",
            "report_id",
            "digest",
            "component",
            "vulnerability",
            "severity",
            "score",
            "fixed_version",
        )
        read_only_fields = fields


def _redact_url(text: str, url: str) -> str:
    """``text`` with the secrets a URL may carry (user info, query, fragment) blanked out,
    whether it quotes the URL whole or in parts (as a requests error does)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    text = text.replace(url, urlunsplit((parts.scheme, host, parts.path, "", "")))
    for secret in (parts.query, parts.fragment, parts.password):
        if secret and len(secret) >= 4:  # shorter ones would blank unrelated text
            text = text.replace(secret, "***")
    return text


class OsvSnapshotSerializer(serializers.ModelSerializer):
    """A snapshot. Only superusers see a sync URL whole (it may carry a token); others see
    it without user info and query, in `source` and in `error`."""

    malformed = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="The first 100 malformed entries of the archive: 'entry: reason'.",
    )

    class Meta:
        model = OsvSnapshot
        fields = (
            "id",
            "source",
            "status",
            "is_active",
            "error",
            "record_count",
            "malformed_count",
            "malformed",
            "created_at",
            "finished_at",
        )
        read_only_fields = fields

    def to_representation(self, snapshot: OsvSnapshot) -> dict:
        data = super().to_representation(snapshot)
        request = self.context.get("request")
        source = snapshot.source
        is_url = source.startswith(("http://", "https://"))
        if is_url and not (request and request.user.is_superuser):
            data["source"] = _redact_url(source, source)
            data["error"] = _redact_url(snapshot.error, source)
        return data


class OsvUploadSerializer(serializers.Serializer):
    archive = serializers.FileField(
        help_text="An OSV all.zip: one JSON record per entry (ossf/osv-schema).",
        allow_empty_file=False,
    )


class OsvSyncSerializer(serializers.Serializer):
    source = serializers.CharField(help_text="The URL the sync downloads from (OSV_SYNC_URL).")
    message = serializers.CharField()
