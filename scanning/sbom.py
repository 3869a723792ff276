"""SBOMs pushed beside an image as OCI referrers: CycloneDX or SPDX JSON, plain or wrapped in
an in-toto statement inside a DSSE envelope. Pure parsing: bytes in, components out.

`is_sbom_referrer(artifact_type, content)` says whether a referrer manifest may carry one
(by its artifact type, else its config or layer media types); `parse_sbom(data)` reads a
document into catalogued `Component`s, typed and placed in an OSV ecosystem from their purl.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from packageurl import PackageURL

from .catalogers import Component, LicenseInfo, osv_ecosystem
from .choices import (
    CYCLONEDX_MEDIA_TYPE,
    CYCLONEDX_PREDICATE,
    DSSE_MEDIA_TYPES,
    SBOM_ARTIFACT_TYPES,
    SPDX_MEDIA_TYPE,
    SPDX_PREDICATE,
)

SBOM_MEDIA_TYPES = SBOM_ARTIFACT_TYPES | DSSE_MEDIA_TYPES
MAX_COMPONENTS = 200_000
_NO_LICENSE = frozenset({"", "NOASSERTION", "NONE"})

# purl type -> OSV ecosystem, for language packages (OS packages use the distro qualifier).
_LANGUAGE_ECOSYSTEMS = {
    "pypi": "PyPI",
    "npm": "npm",
    "maven": "Maven",
    "golang": "Go",
    "cargo": "crates.io",
    "gem": "RubyGems",
    "nuget": "NuGet",
    "composer": "Packagist",
    "hex": "Hex",
    "pub": "Pub",
}
_OS_TYPES = {"deb", "apk", "rpm"}


class SbomError(ValueError):
    """The document is not an SBOM we can read; the message says why."""


def is_sbom_referrer(*, artifact_type: str, content: bytes) -> bool:
    """Whether a referrer manifest may carry an SBOM: its artifact type, else config or layer
    media types, is CycloneDX, SPDX or a DSSE/in-toto envelope."""
    if artifact_type in SBOM_MEDIA_TYPES:
        return True
    try:
        body = json.loads(content)
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    descriptors = [body.get("config"), *(body.get("layers") or [])]
    return any(
        isinstance(item, dict) and item.get("mediaType") in SBOM_MEDIA_TYPES for item in descriptors
    )


def sbom_layer_digests(content: bytes) -> list[str]:
    """The digests of the layers of a referrer manifest that may hold the document."""
    body = json.loads(content)
    layers = body.get("layers") or [] if isinstance(body, dict) else []
    return [
        item["digest"]
        for item in layers
        if isinstance(item, dict) and isinstance(item.get("digest"), str)
    ]


def _document(data: Any) -> tuple[str, dict]:
    """('cyclonedx' | 'spdx', the document), unwrapping DSSE and in-toto."""
    if not isinstance(data, dict):
        raise SbomError("the document is not a JSON object")
    if "payloadType" in data and "payload" in data:
        try:
            payload = base64.b64decode(data["payload"], validate=True)
            data = json.loads(payload)
        except (binascii.Error, ValueError, TypeError) as error:
            raise SbomError(f"the DSSE envelope's payload is not base64 JSON: {error}") from error
        if not isinstance(data, dict):
            raise SbomError("the DSSE payload is not a JSON object")
    if "predicateType" in data:
        predicate_type = str(data.get("predicateType", ""))
        predicate = data.get("predicate")
        if not isinstance(predicate, dict):
            raise SbomError("the in-toto statement has no predicate object")
        if predicate_type.startswith(CYCLONEDX_PREDICATE):
            return "cyclonedx", predicate
        if predicate_type.startswith(SPDX_PREDICATE):
            return "spdx", predicate
        raise SbomError(f"the in-toto predicate type {predicate_type!r} is not an SBOM")
    if data.get("bomFormat") == "CycloneDX":
        return "cyclonedx", data
    if "spdxVersion" in data:
        return "spdx", data
    raise SbomError("neither CycloneDX (bomFormat) nor SPDX (spdxVersion)")


def parse_sbom(data: bytes) -> tuple[str, list[Component]]:
    """The format ('cyclonedx' or 'spdx') and the components of an SBOM document."""
    try:
        decoded = json.loads(data)
    except (ValueError, RecursionError) as error:
        raise SbomError(f"not JSON: {error}") from error
    kind, document = _document(decoded)
    components = _cyclonedx(document) if kind == "cyclonedx" else _spdx(document)
    return kind, components


def media_type_for(kind: str) -> str:
    return CYCLONEDX_MEDIA_TYPE if kind == "cyclonedx" else SPDX_MEDIA_TYPE


def _component(name: str, version: str, purl_text: str, licenses: list[LicenseInfo]) -> Component:
    """A component typed and placed by its purl; without a usable purl, type 'generic'."""
    try:
        purl = PackageURL.from_string(purl_text) if purl_text else None
    except ValueError:
        purl = None
    if purl is None:
        return Component(
            name=name, version=version, type="generic", ecosystem=None, purl="", licenses=licenses
        )
    qualifiers = purl.qualifiers if isinstance(purl.qualifiers, dict) else {}
    source_name = source_version = None
    if purl.type in _OS_TYPES:
        distro = qualifiers.get("distro", "")
        distro_id, _, distro_version = distro.partition("-")
        ecosystem = osv_ecosystem(distro_id or (purl.namespace or ""), distro_version or None)
        upstream = qualifiers.get("upstream", "")
        if upstream and purl.type != "rpm":
            source_name, _, source_version = upstream.partition("@")
            source_version = source_version or None
    else:
        ecosystem = _LANGUAGE_ECOSYSTEMS.get(purl.type)
    if purl.type == "maven" and purl.namespace:
        full_name = f"{purl.namespace}:{purl.name}"
    elif purl.type in ("npm", "golang", "composer") and purl.namespace:
        full_name = f"{purl.namespace}/{purl.name}"
    else:
        full_name = purl.name
    return Component(
        name=full_name or name,
        version=version or purl.version or "",
        type=purl.type,
        ecosystem=ecosystem,
        purl=purl_text,
        source_name=source_name,
        source_version=source_version,
        licenses=licenses,
    )


def _cyclonedx_licenses(entries: Any) -> list[LicenseInfo]:
    found = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("expression"), str):
            found.append(LicenseInfo.from_raw(entry["expression"], "sbom"))
            continue
        license_value = entry.get("license")
        if isinstance(license_value, dict):
            raw = license_value.get("id") or license_value.get("name")
            if isinstance(raw, str) and raw.strip():
                found.append(LicenseInfo.from_raw(raw, "sbom"))
    return found


def _cyclonedx(document: dict) -> list[Component]:
    components: list[Component] = []
    pending = list(document.get("components") or [])
    while pending:
        item = pending.pop()
        if not isinstance(item, dict):
            continue
        if len(components) >= MAX_COMPONENTS:
            raise SbomError(f"more than {MAX_COMPONENTS} components")
        pending.extend(item.get("components") or [])
        name = item.get("name")
        if not isinstance(name, str) or not name:
            continue
        version = item.get("version") if isinstance(item.get("version"), str) else ""
        purl = item.get("purl") if isinstance(item.get("purl"), str) else ""
        if item.get("type") in ("container", "operating-system") and not purl:
            continue
        components.append(
            _component(name, version, purl, _cyclonedx_licenses(item.get("licenses")))
        )
    return components


def _spdx_purl(package: dict) -> str:
    for reference in package.get("externalRefs") or []:
        if (
            isinstance(reference, dict)
            and reference.get("referenceType") == "purl"
            and isinstance(reference.get("referenceLocator"), str)
        ):
            return reference["referenceLocator"]
    return ""


def _spdx(document: dict) -> list[Component]:
    components = []
    described = set(document.get("documentDescribes") or [])
    for package in document.get("packages") or []:
        if not isinstance(package, dict):
            continue
        if len(components) >= MAX_COMPONENTS:
            raise SbomError(f"more than {MAX_COMPONENTS} packages")
        name = package.get("name")
        if not isinstance(name, str) or not name:
            continue
        purl = _spdx_purl(package)
        if package.get("SPDXID") in described and not purl:
            continue  # the image itself
        if purl.startswith("pkg:oci/") or purl.startswith("pkg:docker/"):
            continue
        licenses = []
        for key in ("licenseConcluded", "licenseDeclared"):
            raw = package.get(key)
            if isinstance(raw, str) and raw.strip() not in _NO_LICENSE:
                licenses.append(LicenseInfo.from_raw(raw, f"sbom:{key}"))
                break
        version = package.get("versionInfo") if isinstance(package.get("versionInfo"), str) else ""
        components.append(_component(name, version, purl, licenses))
    return components
