"""SBOM referrers (CycloneDX, SPDX; plain or in a DSSE envelope) as another inventory source."""

from __future__ import annotations

import base64
import json

import pytest

from scanning import sbom, selectors, services, tasks
from scanning.models import Component
from scanning.selectors import manifest_scan_facts
from tests.scanning import db_images

pytestmark = pytest.mark.django_db

CYCLONEDX = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.5",
    "components": [
        {
            "type": "library",
            "name": "requests",
            "version": "2.25.0",
            "purl": "pkg:pypi/requests@2.25.0",
            "licenses": [{"license": {"id": "Apache-2.0"}}],
            "components": [
                {
                    "type": "library",
                    "name": "left-pad",
                    "version": "1.3.0",
                    "purl": "pkg:npm/left-pad@1.3.0",
                    "licenses": [{"expression": "MIT OR WTFPL"}],
                }
            ],
        },
        {"type": "operating-system", "name": "debian", "version": "12"},
    ],
}
SPDX = {
    "spdxVersion": "SPDX-2.3",
    "SPDXID": "SPDXRef-DOCUMENT",
    "documentDescribes": ["SPDXRef-image"],
    "packages": [
        {"SPDXID": "SPDXRef-image", "name": "my-image"},
        {
            "SPDXID": "SPDXRef-libssl3",
            "name": "libssl3",
            "versionInfo": "3.0.11-1~deb12u1",
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "Apache-2.0",
            "externalRefs": [
                {
                    "referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl",
                    "referenceLocator": "pkg:deb/debian/libssl3@3.0.11-1~deb12u1"
                    "?arch=amd64&upstream=openssl&distro=debian-12",
                }
            ],
        },
    ],
}


def dsse(predicate_type: str, predicate: dict) -> bytes:
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "image", "digest": {"sha256": "00"}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }
    payload = base64.b64encode(json.dumps(statement).encode()).decode()
    return json.dumps(
        {"payloadType": "application/vnd.in-toto+json", "payload": payload, "signatures": []}
    ).encode()


def test_parse_cyclonedx_nested_components_and_licenses():
    kind, components = sbom.parse_sbom(json.dumps(CYCLONEDX).encode())
    assert kind == "cyclonedx"
    found = {(c.type, c.name, c.version, c.ecosystem) for c in components}
    assert found == {("pypi", "requests", "2.25.0", "PyPI"), ("npm", "left-pad", "1.3.0", "npm")}
    left_pad = next(c for c in components if c.name == "left-pad")
    assert [info.spdx for info in left_pad.licenses] == ["MIT OR WTFPL"]


def test_parse_spdx_in_a_dsse_envelope_takes_the_source_package_from_the_purl():
    kind, (component,) = sbom.parse_sbom(dsse("https://spdx.dev/Document", SPDX))
    assert kind == "spdx"
    assert (component.type, component.ecosystem, component.source_name) == (
        "deb",
        "Debian:12",
        "openssl",
    )
    assert [info.spdx for info in component.licenses] == ["Apache-2.0"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"{", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"payloadType": "x", "payload": "%%%"}', "not base64 JSON"),
        (dsse("https://slsa.dev/provenance/v1", {}), "is not an SBOM"),
        (b'{"hello": 1}', "neither CycloneDX"),
    ],
)
def test_unreadable_documents_are_refused_with_a_reason(data, message):
    with pytest.raises(sbom.SbomError, match=message):
        sbom.parse_sbom(data)


@pytest.fixture
def repository(make_org, make_repo):
    return make_repo(make_org())


def test_an_sbom_pushed_before_the_scan_is_part_of_the_report(repository):
    services.osv_import_zip(
        path_or_file=db_images.osv_zip(db_images.STANDARD_RECORDS), source="s.zip"
    )
    image = db_images.push_image(repository, [[db_images.DEBIAN_OS_RELEASE]])
    referrer = db_images.push_referrer(
        repository, image, json.dumps(CYCLONEDX).encode(), "application/vnd.cyclonedx+json"
    )
    report = services.scan_manifest(manifest_id=image.pk)
    assert report.sources == ["scan", f"sbom:{referrer.digest}"]
    origins = set(Component.objects.filter(report=report).values_list("name", "origin"))
    assert origins == {
        ("requests", f"sbom:{referrer.digest}"),
        ("left-pad", f"sbom:{referrer.digest}"),
    }
    facts = manifest_scan_facts(manifest=image, repository=repository)
    assert facts.licenses == {"Apache-2.0", "MIT", "WTFPL"}
    assert facts.vulnerability_counts["medium"] == 1  # requests 2.25.0, from the SBOM


def test_an_sbom_attestation_pushed_later_is_ingested_by_its_job(
    repository, outbox_published, django_capture_on_commit_callbacks
):
    services.osv_import_zip(
        path_or_file=db_images.osv_zip(db_images.STANDARD_RECORDS), source="s.zip"
    )
    image = db_images.push_image(repository, [[db_images.DEBIAN_OS_RELEASE]])
    report = services.scan_manifest(manifest_id=image.pk)
    assert report.component_count == 0
    with django_capture_on_commit_callbacks(execute=True):
        referrer = db_images.push_referrer(
            repository,
            image,
            dsse("https://spdx.dev/Document", SPDX),
            "application/vnd.dsse.envelope.v1+json",
        )
    assert outbox_published.args(tasks.sbom_ingest_task.name) == [[image.digest]]
    assert tasks.sbom_ingest_task(image.digest) == "done"
    report.refresh_from_db()
    assert report.sources == ["scan", f"sbom:{referrer.digest}"]
    assert report.critical == 0  # the stored counts are the layers' (shared by digest)
    seen = selectors.report_for_manifest(manifest=image, repository=repository)
    assert seen.vulnerability_counts["critical"] == 1  # openssl, by its source package
    # Ingesting again replaces, never duplicates.
    services.sbom_ingest(manifest=image)
    assert Component.objects.filter(report=report).count() == 1


def test_a_broken_sbom_is_noted_and_the_scan_still_done(repository):
    image = db_images.push_image(repository, [[db_images.DEBIAN_OS_RELEASE]])
    referrer = db_images.push_referrer(
        repository, image, b"{broken", "application/vnd.cyclonedx+json"
    )
    report = services.scan_manifest(manifest_id=image.pk)
    assert report.status == "done"
    assert any(note.startswith(f"SBOM {referrer.digest}: no components") for note in report.notes)
    assert report.sources == ["scan"]
