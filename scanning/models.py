"""Scan reports and what they hold (components, licenses, findings), the OSV store, and the
per-layer cache of what the layer reader kept.

One `ScanReport` per manifest. An index's report aggregates the reports of its platform
manifests (reached through the registry's `Manifest.children`, since a platform manifest
may belong to several indexes). Findings point at one snapshot's `OsvVulnerability`; a new
snapshot replaces them (`services.rematch`) without re-reading any layer.
"""

from django.db import models
from django.db.models import Exists, OuterRef, Q

from registry_portal.accounts.permissions import RestrictedQuerySet, repository_q
from registry_portal.registry.models import RepositoryManifest

from .choices import ScanStatus, Severity, SnapshotStatus


class ManifestHeldQuerySet(RestrictedQuerySet):
    """Scan data is seen where its manifest is: in any repository that holds it."""

    manifest_path = "manifest"

    def restrict_q(self, user, action: str) -> Q:
        held = RepositoryManifest.objects.filter(
            repository_q(user, action, path="repository"),
            manifest=OuterRef(self.manifest_path),
        )
        return Q(Exists(held))


class ReportPartQuerySet(ManifestHeldQuerySet):
    """A component or finding is seen where its manifest is; one from an SBOM only where its
    referrer is linked too (issue #10: a referrer counts only where it is linked)."""

    manifest_path = "report__manifest"
    referrer_path = "referrer"

    def restrict_q(self, user, action: str) -> Q:
        linked = RepositoryManifest.objects.filter(
            repository_q(user, action, path="repository"),
            manifest=OuterRef(self.referrer_path),
        )
        return super().restrict_q(user, action) & (
            Q(**{f"{self.referrer_path}__isnull": True}) | Q(Exists(linked))
        )


class FindingQuerySet(ReportPartQuerySet):
    referrer_path = "component__referrer"


class OsvSnapshot(models.Model):
    """One import of OSV data (a zip file or a URL download). Matching names the snapshot."""

    source = models.CharField("source", max_length=1000, help_text="File name or URL.")
    etag = models.CharField("ETag", max_length=500, blank=True)
    status = models.CharField(
        "status", max_length=16, choices=SnapshotStatus.choices, default=SnapshotStatus.IMPORTING
    )
    error = models.TextField("error", blank=True)
    record_count = models.PositiveIntegerField("records", default=0)
    malformed_count = models.PositiveIntegerField("malformed entries", default=0)
    malformed = models.JSONField(
        "malformed entries (first 100)", default=list, blank=True, help_text="entry: reason"
    )
    is_active = models.BooleanField(
        "active", default=False, help_text="The snapshot new scans and re-matches use."
    )
    created_at = models.DateTimeField("created", auto_now_add=True)
    finished_at = models.DateTimeField("finished", null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name = "OSV snapshot"
        constraints = [
            models.UniqueConstraint(
                fields=("is_active",),
                condition=models.Q(is_active=True),
                name="osvsnapshot_one_active",
                violation_error_message="Only one OSV snapshot can be active.",
            )
        ]

    def __str__(self) -> str:
        return f"OSV snapshot {self.pk} ({self.source}, {self.status})"


class OsvVulnerability(models.Model):
    """One non-withdrawn OSV record of a snapshot, with its computed severity."""

    snapshot = models.ForeignKey(
        OsvSnapshot, on_delete=models.CASCADE, related_name="vulnerabilities"
    )
    osv_id = models.CharField("OSV id", max_length=255)
    aliases = models.JSONField("aliases", default=list, blank=True)
    summary = models.TextField("summary", blank=True)
    modified = models.CharField("modified", max_length=64)
    severity = models.CharField("severity", max_length=16, choices=Severity.choices)
    score = models.FloatField("CVSS score", null=True, blank=True)
    severity_source = models.CharField("severity from", max_length=300, blank=True)
    raw = models.JSONField("record")

    class Meta:
        ordering = ("osv_id",)
        verbose_name = "OSV vulnerability"
        verbose_name_plural = "OSV vulnerabilities"
        constraints = [
            models.UniqueConstraint(
                fields=("snapshot", "osv_id"),
                name="osvvulnerability_unique_id_per_snapshot",
                violation_error_message="This record is already in the snapshot.",
            )
        ]

    def __str__(self) -> str:
        return self.osv_id


class OsvAffected(models.Model):
    """One `affected[]` entry, indexed by (snapshot, ecosystem base, package name) so matching
    a batch of components is one indexed query. Debian/Ubuntu/Alpine name source packages;
    PyPI names are stored normalised (PEP 503)."""

    snapshot = models.ForeignKey(OsvSnapshot, on_delete=models.CASCADE, related_name="+")
    vulnerability = models.ForeignKey(
        OsvVulnerability, on_delete=models.CASCADE, related_name="affected"
    )
    ecosystem = models.CharField("ecosystem", max_length=255, help_text="e.g. 'Debian:12'")
    ecosystem_base = models.CharField("ecosystem base", max_length=100, help_text="e.g. 'Debian'")
    name = models.CharField("package", max_length=500)
    entry = models.JSONField("affected entry", help_text="package, ranges and versions")

    class Meta:
        ordering = ("id",)
        verbose_name = "OSV affected package"
        indexes = [
            models.Index(
                fields=("snapshot", "ecosystem_base", "name"), name="osvaffected_lookup_idx"
            )
        ]

    def __str__(self) -> str:
        return f"{self.ecosystem}/{self.name}"


class ScanReport(models.Model):
    """The scan of one manifest: its status, where its inventory came from, severity counts."""

    manifest = models.OneToOneField(
        "registry.Manifest", on_delete=models.CASCADE, related_name="scan_report"
    )
    status = models.CharField(
        "status", max_length=16, choices=ScanStatus.choices, default=ScanStatus.QUEUED
    )
    error = models.TextField("error", blank=True)
    attempt = models.PositiveIntegerField(
        "attempt", default=0, help_text="Incremented by each claim; a stale run cannot save."
    )
    queued_at = models.DateTimeField("queued", auto_now_add=True)
    started_at = models.DateTimeField("started", null=True, blank=True)
    finished_at = models.DateTimeField("finished", null=True, blank=True)
    sources = models.JSONField(
        "sources", default=list, blank=True, help_text="'scan' and/or 'sbom:<digest>'"
    )
    snapshot = models.ForeignKey(
        OsvSnapshot,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="reports",
        verbose_name="OSV snapshot",
    )
    is_index = models.BooleanField("index", default=False)
    platform = models.CharField("platform", max_length=100, blank=True, help_text="os/arch")
    distro = models.CharField("distro", max_length=255, blank=True)
    ecosystem = models.CharField("OS ecosystem", max_length=255, blank=True)
    # The counts below are of the layer scan only (shared by digest). What a repository shows
    # adds the SBOM components linked there: `scanning.selectors` computes it.
    component_count = models.PositiveIntegerField("components", default=0)
    critical = models.PositiveIntegerField("critical", default=0)
    high = models.PositiveIntegerField("high", default=0)
    medium = models.PositiveIntegerField("medium", default=0)
    low = models.PositiveIntegerField("low", default=0)
    unknown = models.PositiveIntegerField("unknown", default=0)
    notes = models.JSONField(
        "notes", default=list, blank=True, help_text="Degraded results: files skipped and why."
    )
    incomplete_reasons = models.JSONField(
        "incomplete because",
        default=list,
        blank=True,
        help_text="Empty when every layer was read in full; else the IncompleteReason codes "
        "(a reader cap hit, a layer skipped). The notes say which layer.",
    )

    objects = ManifestHeldQuerySet.as_manager()

    class Meta:
        ordering = ("-queued_at", "-id")
        indexes = [models.Index(fields=("status",), name="scanreport_status_idx")]

    def __str__(self) -> str:
        return f"scan of {self.manifest_id} ({self.status})"

    @property
    def is_complete(self) -> bool:
        """False when a reader cap or a skipped layer left part of the image unread."""
        return not self.incomplete_reasons

    @property
    def vulnerability_counts(self) -> dict[str, int]:
        return {
            "critical": self.critical,
            "high": self.high,
            "medium": self.medium,
            "low": self.low,
            "unknown": self.unknown,
        }


class Component(models.Model):
    """One package, library or module in an image, found by a scan or listed by an SBOM."""

    report = models.ForeignKey(ScanReport, on_delete=models.CASCADE, related_name="components")
    name = models.CharField("name", max_length=500)
    version = models.CharField("version", max_length=255, blank=True)
    type = models.CharField("type", max_length=32, help_text="deb, apk, rpm, pypi, npm, ...")
    ecosystem = models.CharField("ecosystem", max_length=255, blank=True)
    purl = models.CharField("purl", max_length=2000, blank=True)
    source_name = models.CharField("source package", max_length=500, blank=True)
    source_version = models.CharField("source version", max_length=255, blank=True)
    layer_digest = models.CharField("layer", max_length=140, blank=True)
    path = models.CharField("path", max_length=4096, blank=True)
    origin = models.CharField(
        "found by", max_length=200, default="scan", help_text="'scan' or 'sbom:<digest>'"
    )
    # Issue #10: a layer scan is shared by digest, an SBOM is not. A component listed by an
    # SBOM names the referrer manifest it came from, and counts for the image only in the
    # repositories where that referrer is linked (`scanning.selectors.visible_in`).
    referrer = models.ForeignKey(
        "registry.Manifest",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="SBOM referrer",
        help_text="Empty for a component found in the layers.",
    )
    licenses = models.JSONField(
        "licenses", default=list, blank=True, help_text="[{raw, spdx, found_in}]"
    )

    objects = ReportPartQuerySet.as_manager()

    class Meta:
        ordering = ("type", "name", "version", "id")
        indexes = [
            models.Index(fields=("name",), name="component_name_idx"),
            models.Index(fields=("ecosystem", "name"), name="component_ecosystem_name_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.version}".strip()


class ComponentLicense(models.Model):
    """One SPDX license id a component uses (from its normalised expressions), for filters."""

    component = models.ForeignKey(Component, on_delete=models.CASCADE, related_name="license_ids")
    report = models.ForeignKey(ScanReport, on_delete=models.CASCADE, related_name="+")
    spdx_id = models.CharField("SPDX id", max_length=255)

    class Meta:
        ordering = ("spdx_id",)
        verbose_name = "component license"
        constraints = [
            models.UniqueConstraint(
                fields=("component", "spdx_id"),
                name="componentlicense_unique",
                violation_error_message="This license is already recorded for the component.",
            )
        ]
        indexes = [models.Index(fields=("spdx_id",), name="componentlicense_spdx_idx")]

    def __str__(self) -> str:
        return self.spdx_id


class Finding(models.Model):
    """A vulnerability that affects a component, per the report's OSV snapshot."""

    component = models.ForeignKey(Component, on_delete=models.CASCADE, related_name="findings")
    report = models.ForeignKey(ScanReport, on_delete=models.CASCADE, related_name="findings")
    vulnerability = models.ForeignKey(
        OsvVulnerability, on_delete=models.CASCADE, related_name="findings"
    )
    severity = models.CharField("severity", max_length=16, choices=Severity.choices)
    score = models.FloatField("CVSS score", null=True, blank=True)
    fixed_version = models.CharField("fixed in", max_length=255, blank=True)

    objects = FindingQuerySet.as_manager()

    class Meta:
        ordering = ("id",)
        constraints = [
            models.UniqueConstraint(
                fields=("component", "vulnerability"),
                name="finding_unique_component_vulnerability",
                violation_error_message="This vulnerability is already recorded for the component.",
            )
        ]
        indexes = [models.Index(fields=("report", "severity"), name="finding_report_sev_idx")]

    def __str__(self) -> str:
        return f"{self.vulnerability_id} in {self.component}"


class LayerInventory(models.Model):
    """What the layer reader kept of one layer (zstd-compressed), so a shared base layer is
    read once. Keyed by the layer digest and a fingerprint of the reader and catalogers: a
    change to what they want invalidates the cache by itself."""

    layer_digest = models.CharField("layer digest", max_length=140)
    fingerprint = models.CharField("reader fingerprint", max_length=64)
    contents = models.BinaryField("contents")
    size = models.PositiveIntegerField("compressed size")
    created_at = models.DateTimeField("created", auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)
        verbose_name_plural = "layer inventories"
        constraints = [
            models.UniqueConstraint(
                fields=("layer_digest", "fingerprint"),
                name="layerinventory_unique",
                violation_error_message="This layer is already cached.",
            )
        ]

    def __str__(self) -> str:
        return self.layer_digest
