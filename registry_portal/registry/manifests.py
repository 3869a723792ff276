"""Parsing and validation of pushed manifests (pure: bytes in, a ``ParsedManifest`` out).

Accepted: OCI image manifests and indexes, Docker schema 2 manifests and manifest lists, and
artifacts (any config and layer media types, ``artifactType``, ``subject``, annotations).
Refused: schema 1, a ``schemaVersion`` other than 2, a ``mediaType`` that contradicts the
``Content-Type``, malformed descriptors. Whether the referenced blobs and child manifests are
present in the repository is checked by ``services.manifest_put``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from registry_portal import grammar
from registry_portal.errors import ValidationFailed

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_TYPES = IMAGE_TYPES | INDEX_TYPES
# Content-Types that say nothing about the manifest: the body decides.
GENERIC_CONTENT_TYPES = frozenset({"", "application/json", "application/octet-stream"})

# The empty JSON descriptor of artifacts: the two bytes "{}".
EMPTY_JSON_CONTENT = b"{}"
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


class ManifestInvalid(ValidationFailed):
    oci_code = "MANIFEST_INVALID"
    default_message = "The manifest is not valid."


class ManifestBlobUnknown(ValidationFailed):
    """``detail`` lists the missing digests: one OCI error each."""

    oci_code = "MANIFEST_BLOB_UNKNOWN"
    default_message = "The manifest references blobs unknown to this repository."


class ManifestTooLarge(ValidationFailed):
    oci_code = "SIZE_INVALID"
    oci_status = 413


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    artifact_type: str = ""
    annotations: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ParsedManifest:
    """What a manifest says: its media type and the descriptors it references."""

    media_type: str
    config: Descriptor | None
    layers: tuple[Descriptor, ...]
    children: tuple[Descriptor, ...]
    subject: Descriptor | None
    artifact_type: str
    annotations: dict

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def blob_descriptors(self) -> tuple[Descriptor, ...]:
        """The config and the layers: blobs that must be in the repository."""
        return ((self.config,) if self.config else ()) + self.layers


def _string_map(value, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ManifestInvalid(f"{where} must be a map of strings to strings.")
    return value


def _descriptor(value, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ManifestInvalid(f"{where} must be a descriptor object.")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalid(f"{where} has no mediaType.")
    if not grammar.is_valid_media_type(media_type):
        raise ManifestInvalid(
            f"{where} has an invalid mediaType {media_type[:140]!r}: {grammar.MEDIA_TYPE_RULES}."
        )
    if not grammar.is_valid_digest(digest):
        raise ManifestInvalid(f"{where} has an invalid digest: {str(digest)[:140]!r}.")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestInvalid(f"{where} has an invalid size.")
    urls = value.get("urls") or []
    if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
        raise ManifestInvalid(f"{where}: urls must be a list of strings.")
    artifact_type = _artifact_type(value, where=f"{where}: ")
    return Descriptor(
        media_type=media_type,
        digest=digest,
        size=size,
        urls=tuple(urls),
        artifact_type=artifact_type,
        annotations=_string_map(value.get("annotations"), f"{where} annotations"),
    )


def _artifact_type(value: dict, *, where: str = "") -> str:
    artifact_type = value.get("artifactType") or ""
    if not isinstance(artifact_type, str):
        raise ManifestInvalid(f"{where}artifactType must be a string.")
    if artifact_type and not grammar.is_valid_media_type(artifact_type):
        raise ManifestInvalid(
            f"{where}artifactType {artifact_type[:140]!r} is not a media type: "
            f"{grammar.MEDIA_TYPE_RULES}."
        )
    return artifact_type


def _media_type(body: dict, content_type: str) -> str:
    """The manifest's media type from its body and the request's Content-Type."""
    declared = body.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise ManifestInvalid("mediaType must be a string.")
    for candidate in (declared, content_type):
        if candidate in DOCKER_SCHEMA1:
            raise ManifestInvalid(
                "Docker schema 1 manifests are not supported: push schema 2 or OCI."
            )
    if content_type not in GENERIC_CONTENT_TYPES and content_type not in MANIFEST_TYPES:
        raise ManifestInvalid(f"Unsupported manifest media type {content_type!r}.")
    if declared and content_type in MANIFEST_TYPES and declared != content_type:
        raise ManifestInvalid(
            f"The manifest's mediaType {declared!r} does not match the Content-Type "
            f"{content_type!r}."
        )
    media_type = declared or (content_type if content_type in MANIFEST_TYPES else "")
    if not media_type:
        media_type = OCI_INDEX if "manifests" in body else OCI_MANIFEST
    if media_type not in MANIFEST_TYPES:
        raise ManifestInvalid(f"Unsupported manifest media type {media_type!r}.")
    return media_type


def manifest_parse(content: bytes, *, content_type: str = "") -> ParsedManifest:
    """Parse and validate manifest bytes; raises ``ManifestInvalid`` with a precise message."""
    try:
        body = json.loads(content)
    except (UnicodeDecodeError, ValueError) as error:
        raise ManifestInvalid(f"The manifest is not valid JSON: {error}.") from None
    if not isinstance(body, dict):
        raise ManifestInvalid("The manifest must be a JSON object.")
    content_type = (content_type or "").split(";", 1)[0].strip().lower()
    schema_version = body.get("schemaVersion")
    if schema_version == 1:
        raise ManifestInvalid("Docker schema 1 manifests are not supported: push schema 2 or OCI.")
    if schema_version != 2 or isinstance(schema_version, bool):
        raise ManifestInvalid("schemaVersion must be 2.")
    media_type = _media_type(body, content_type)
    artifact_type = _artifact_type(body)
    subject = _descriptor(body["subject"], "subject") if body.get("subject") is not None else None
    annotations = _string_map(body.get("annotations"), "annotations")
    if media_type in INDEX_TYPES:
        entries = body.get("manifests")
        if not isinstance(entries, list):
            raise ManifestInvalid("An index must have a list of manifests.")
        children = tuple(_descriptor(e, f"manifests[{i}]") for i, e in enumerate(entries))
        return ParsedManifest(media_type, None, (), children, subject, artifact_type, annotations)
    config = _descriptor(body.get("config"), "config")
    layers_value = body.get("layers", [])
    if not isinstance(layers_value, list):
        raise ManifestInvalid("layers must be a list.")
    layers = tuple(_descriptor(e, f"layers[{i}]") for i, e in enumerate(layers_value))
    return ParsedManifest(media_type, config, layers, (), subject, artifact_type, annotations)


def manifest_effective_artifact_type(*, artifact_type: str, content: bytes) -> str:
    """The artifact type referrers report: ``artifactType``, else the config media type."""
    if artifact_type:
        return artifact_type
    try:
        config = json.loads(content).get("config") or {}
    except (ValueError, AttributeError):
        return ""
    media_type = config.get("mediaType") if isinstance(config, dict) else None
    return media_type if isinstance(media_type, str) else ""
