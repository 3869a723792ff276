"""Choices of the scanning app: scan status, severities, snapshot status, SBOM types."""

from django.db import models


class ScanStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    DONE = "done", "done"
    FAILED = "failed", "failed"


FINISHED_STATUSES = frozenset({ScanStatus.DONE, ScanStatus.FAILED})


class IncompleteReason(models.TextChoices):
    """Why a finished scan did not read all of the image: `ScanReport.incomplete_reasons`.

    The first four are the layer reader's caps (`ReadLimits` field names); a report's notes
    say which layer hit them. A gate must treat any of them as missing data.
    """

    MAX_ENTRIES = "max_entries", "a layer has more entries than SCAN_MAX_ENTRIES"
    MAX_LINKS = "max_links", "a layer has more symlinks and hardlinks than SCAN_MAX_LINKS"
    MAX_KEPT_BYTES = "max_kept_bytes", "a layer kept more than SCAN_MAX_KEPT_BYTES"
    MAX_FILE_SIZE = "max_file_size", "a wanted file is larger than SCAN_MAX_FILE_BYTES"
    LAYER_SKIPPED = "layer_skipped", "a layer was not read (foreign, or not a tar)"


class Severity(models.TextChoices):
    """A finding's severity: the CVSS v3 qualitative bands, "none" for a 0.0 score, else
    "unknown" (a state of its own, shown as such)."""

    CRITICAL = "critical", "critical"
    HIGH = "high", "high"
    MEDIUM = "medium", "medium"
    LOW = "low", "low"
    NONE = "none", "none"
    UNKNOWN = "unknown", "unknown"


# The severities a report counts (a 0.0 "none" score is not a vulnerability to count);
# `ScanFacts.vulnerability_counts` has exactly these keys.
COUNTED_SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "unknown")


class SnapshotStatus(models.TextChoices):
    IMPORTING = "importing", "importing"
    READY = "ready", "ready"
    FAILED = "failed", "failed"


# Where an inventory came from: our own scan of the layers, or an SBOM referrer.
SOURCE_SCAN = "scan"
SBOM_SOURCE_PREFIX = "sbom:"

CYCLONEDX_MEDIA_TYPE = "application/vnd.cyclonedx+json"
SPDX_MEDIA_TYPE = "application/spdx+json"
SBOM_ARTIFACT_TYPES = frozenset({CYCLONEDX_MEDIA_TYPE, SPDX_MEDIA_TYPE})
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
DSSE_MEDIA_TYPES = frozenset(
    {"application/vnd.dsse.envelope.v1+json", "application/vnd.in-toto+json"}
)
CYCLONEDX_PREDICATE = "https://cyclonedx.org/bom"
SPDX_PREDICATE = "https://spdx.dev/Document"
