"""Tenant isolation of content (issue #10, findings 2 and 3): what a repository shows depends
only on content linked into it, and no blob becomes readable elsewhere by naming it."""

from __future__ import annotations

import json

import pytest

from registry_portal.registry import services as registry_services
from registry_portal.registry.models import RepositoryBlob
from scanning import services as scan_services
from scanning.models import Component
from tests import factories
from tests.registry.helpers import V2, Registry, basic, descriptor, image_manifest, sha256
from tests.scanning import db_images

CYCLONEDX = json.dumps(
    {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "components": [
            {"type": "library", "name": "invented", "version": "6.6.6", "purl": "pkg:npm/x@6.6.6"}
        ],
    }
).encode()


@pytest.fixture
def tenants(db):
    """qa/website (private, qa's) and dev1 with only his personal namespace."""
    qa_admin = factories.make_user("qa-admin")
    dev1 = factories.make_user("dev1")
    qa = factories.make_org("qa", admin=qa_admin)
    website = factories.make_repo(qa, "website")
    personal = registry_services.repository_create_in_namespace(
        actor=dev1, namespace_name="dev1", name="sbom"
    )
    return {"qa_admin": qa_admin, "dev1": dev1, "website": website, "personal": personal}


def test_an_sbom_referrer_pushed_elsewhere_does_not_reach_the_image_report(tenants):
    """Finding 2: dev1's SBOM whose subject is qa's private image stays out of qa's report."""
    image = db_images.push_image(tenants["website"], [[db_images.DEBIAN_OS_RELEASE]])
    poison = db_images.push_referrer(
        tenants["personal"], image, CYCLONEDX, "application/vnd.cyclonedx+json"
    )
    report = scan_services.scan_manifest(manifest_id=image.pk)
    assert f"sbom:{poison.digest}" not in report.sources
    assert not Component.objects.filter(report=report, origin__startswith="sbom:").exists()
    # The same SBOM pushed by qa into qa/website counts.
    own = db_images.push_referrer(
        tenants["website"], image, CYCLONEDX, "application/vnd.cyclonedx+json"
    )
    report = scan_services.sbom_ingest(manifest=image)
    assert f"sbom:{own.digest}" in report.sources


def test_the_sbom_reader_reads_only_blobs_linked_to_the_referrer_repository(tenants):
    """Finding 3: an SBOM layer naming a blob of another repository is not read."""
    image = db_images.push_image(tenants["personal"], [[db_images.DEBIAN_OS_RELEASE]])
    secret = db_images.store_blob(tenants["website"], CYCLONEDX)  # qa's private blob
    empty = db_images.store_blob(tenants["personal"], b"{}")
    body = {
        "schemaVersion": 2,
        "mediaType": db_images.MEDIA_MANIFEST,
        "artifactType": "application/vnd.cyclonedx+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        # urls: the descriptor field that skips the presence check.
        "layers": [
            {
                "mediaType": "application/vnd.cyclonedx+json",
                "digest": secret,
                "size": len(CYCLONEDX),
                "urls": ["https://example.invalid/x"],
            }
        ],
        "subject": {"mediaType": db_images.MEDIA_MANIFEST, "digest": image.digest, "size": 1},
    }
    db_images.put(tenants["personal"], body, None, db_images.MEDIA_MANIFEST)
    report = scan_services.scan_manifest(manifest_id=image.pk)
    assert not Component.objects.filter(report=report, origin__startswith="sbom:").exists()


@V2
def test_repushing_a_manifest_does_not_link_its_blobs(client, tenants):
    """Finding 3: the exact bytes of qa's manifest, with a `urls` on the layer, pushed into
    dev1's namespace, give dev1 neither the layer nor the config."""
    qa = Registry(client, basic(tenants["qa_admin"]))
    config, layer = b'{"os":"linux"}', b"qa private layer"
    qa.push_blob("qa/website", config)
    qa.push_blob("qa/website", layer)
    content = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptor("application/vnd.oci.image.config.v1+json", config),
            "layers": [
                descriptor(
                    "application/vnd.oci.image.layer.v1.tar",
                    layer,
                    urls=["https://example.invalid/layer"],
                )
            ],
        }
    ).encode()
    assert qa.push_manifest("qa/website", "v1", content).status_code == 201

    dev1 = Registry(client, basic(tenants["dev1"]))
    dev1.push_blob("dev1/sbom", config)  # he knows the config: the layer he has not
    assert dev1.push_manifest("dev1/sbom", "stolen", content).status_code == 201
    assert dev1.get(f"/v2/dev1/sbom/blobs/{sha256(layer)}").status_code == 404
    assert not RepositoryBlob.objects.filter(
        repository=tenants["personal"], blob__digest=sha256(layer)
    ).exists()


@V2
def test_repushing_by_digest_does_not_link_blobs_either(client, tenants):
    """A guard beside the finding: without `urls`, every layer must be in the repository."""
    qa = Registry(client, basic(tenants["qa_admin"]))
    content = qa.push_image("qa/website", "v1", layers=(b"private bytes",))
    dev1 = Registry(client, basic(tenants["dev1"]))
    response = dev1.push_manifest("dev1/sbom", sha256(content), content)
    assert response.status_code == 400  # the blobs are unknown to dev1/sbom
    assert dev1.get(f"/v2/dev1/sbom/blobs/{sha256(b'private bytes')}").status_code == 404
    assert image_manifest  # the helper this module shares with the /v2/ tests
