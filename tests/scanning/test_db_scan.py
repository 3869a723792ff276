"""The scan service against the database: images stored through the registry services."""

from __future__ import annotations

import pytest

from scanning import services
from scanning.choices import ScanStatus
from scanning.models import Component, Finding, LayerInventory, ScanReport
from scanning.selectors import manifest_scan_facts, report_summary_for_manifests
from tests.scanning import db_images
from tests.scanning.builders import File, tar_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def repository(make_org, make_repo):
    return make_repo(make_org())


@pytest.fixture
def snapshot():
    snapshot = services.osv_import_zip(
        path_or_file=db_images.osv_zip(db_images.STANDARD_RECORDS), source="test.zip"
    )
    assert snapshot.status == "ready", snapshot.error
    return snapshot


def test_a_pushed_image_gets_a_report_with_components_licenses_and_findings(repository, snapshot):
    manifest = db_images.push_image(repository, [db_images.BASE_LAYER, db_images.PYTHON_LAYER])
    report = services.scan_manifest(manifest_id=manifest.pk)

    assert report.status == ScanStatus.DONE, report.error
    assert report.sources == ["scan"]
    assert report.ecosystem == "Debian:12"
    assert report.snapshot == snapshot
    names = {(c.type, c.name, c.version) for c in report.components.all()}
    assert names == {
        ("deb", "libssl3", "3.0.11-1~deb12u1"),
        ("deb", "zlib1g", "1:1.2.13.dfsg-1"),
        ("pypi", "requests", "2.25.0"),
    }
    libssl = report.components.get(name="libssl3")
    assert libssl.source_name == "openssl"
    assert libssl.layer_digest == manifest_layer(manifest, 0)
    assert [lic["spdx"] for lic in libssl.licenses] == ["Apache-2.0"]
    findings = {
        (f.component.name, f.vulnerability.osv_id, f.severity, f.fixed_version)
        for f in Finding.objects.filter(report=report).select_related("component", "vulnerability")
    }
    assert findings == {
        ("libssl3", "DEBIAN-CVE-2024-0001", "critical", "3.0.11-1~deb12u2"),
        ("requests", "GHSA-aaaa-bbbb-cccc", "medium", "2.31.0"),
        ("zlib1g", "DEBIAN-CVE-2024-0002", "unknown", ""),
    }
    assert report.vulnerability_counts == {
        "critical": 1,
        "high": 0,
        "medium": 1,
        "low": 0,
        "unknown": 1,
    }

    facts = manifest_scan_facts(manifest=manifest)
    assert facts.status == "done"
    assert facts.component_names == {"libssl3", "zlib1g", "requests"}
    assert facts.licenses == {"Apache-2.0"}
    assert facts.vulnerability_counts == report.vulnerability_counts
    summary = report_summary_for_manifests([manifest.pk])[manifest.pk]
    assert summary.component_count == 3 and summary.vulnerability_counts["critical"] == 1


def manifest_layer(manifest, index: int) -> str:
    import json

    return json.loads(bytes(manifest.content))["layers"][index]["digest"]


def test_no_report_means_no_facts(repository):
    manifest = db_images.push_image(repository, [db_images.BASE_LAYER])
    assert manifest_scan_facts(manifest=manifest) is None


def test_scanning_twice_does_not_rescan_and_shared_layers_are_read_once(repository, snapshot):
    first = db_images.push_image(repository, [db_images.BASE_LAYER], tag="a")
    services.scan_manifest(manifest_id=first.pk)
    assert LayerInventory.objects.count() == 1
    again = services.scan_manifest(manifest_id=first.pk)
    assert again.attempt == 1  # not claimed again

    second = db_images.push_image(
        repository, [db_images.BASE_LAYER, db_images.PYTHON_LAYER], tag="b"
    )
    report = services.scan_manifest(manifest_id=second.pk)
    assert report.status == "done"
    assert LayerInventory.objects.count() == 2  # the base layer came from the cache
    assert report.component_count == 3


def test_whiteouts_across_layers_hide_packages_of_cached_layers(repository, snapshot):
    db_images.push_image(repository, [db_images.BASE_LAYER, db_images.PYTHON_LAYER], tag="a")
    hidden = db_images.push_image(
        repository,
        [
            db_images.BASE_LAYER,
            db_images.PYTHON_LAYER,
            [File("usr/lib/python3/dist-packages/.wh.requests-2.25.0.dist-info")],
        ],
        tag="b",
    )
    report = services.scan_manifest(manifest_id=hidden.pk)
    assert {c.name for c in report.components.all()} == {"libssl3", "zlib1g"}


@pytest.mark.parametrize(
    ("blob", "media_type", "message"),
    [
        (b"\x1f\x8b\x08\x00not-deflate" * 10, db_images.LAYER_MEDIA["gzip"], "corrupt"),
        (
            tar_bytes([File("etc/hostname", b"x" * 10_000)])[:3000],
            db_images.LAYER_MEDIA["none"],
            "ends inside",
        ),
    ],
    ids=["corrupt-gzip", "truncated-tar"],
)
def test_a_damaged_layer_fails_the_report_with_the_reason(
    repository, snapshot, blob, media_type, message
):
    manifest = db_images.push_image(
        repository, [db_images.BASE_LAYER], raw_layers=[(blob, media_type)]
    )
    report = services.scan_manifest(manifest_id=manifest.pk)
    assert report.status == "failed"
    assert message in report.error
    assert not Component.objects.filter(report=report).exists()
    facts = manifest_scan_facts(manifest=manifest)
    assert (facts.status, facts.error) == ("failed", report.error)


def test_a_tar_bomb_is_stopped_by_the_limits_and_the_report_says_it_is_incomplete(
    repository, settings
):
    settings.SCAN_MAX_ENTRIES = 50
    members = [File(f"junk/{n}", b"") for n in range(100)]
    manifest = db_images.push_image(repository, [db_images.BASE_LAYER, members])
    report = services.scan_manifest(manifest_id=manifest.pk)
    assert report.status == "done", report.error
    assert report.incomplete_reasons == ["max_entries"]
    assert not report.is_complete
    assert any("more than 50 entries" in note for note in report.notes)
    # What was read before the cap still counts: the base layer's packages.
    assert report.components.filter(name="libssl3").exists()
    facts = manifest_scan_facts(manifest=manifest)
    assert facts.incomplete_reasons == {"max_entries"}
    assert not facts.complete


def test_a_layer_over_the_size_setting_is_not_read(repository, settings):
    settings.SCAN_MAX_LAYER_BYTES = 100
    manifest = db_images.push_image(repository, [db_images.BASE_LAYER])
    report = services.scan_manifest(manifest_id=manifest.pk)
    assert report.status == "failed"
    assert "SCAN_MAX_LAYER_BYTES" in report.error


def test_malformed_package_databases_degrade_without_failing(repository, snapshot):
    manifest = db_images.push_image(
        repository,
        [
            [
                db_images.DEBIAN_OS_RELEASE,
                File("var/lib/dpkg/status", b"\xff\xfe garbage\n\nPackage:\n"),
                File("lib/apk/db/installed", b"P\nV\n\x00\x00"),
                File("usr/lib/sysimage/rpm/rpmdb.sqlite", b"not sqlite"),
                File("app/node_modules/x/package.json", b"{not json"),
            ]
        ],
    )
    report = services.scan_manifest(manifest_id=manifest.pk)
    assert report.status == "done", report.error


def test_an_unexpected_error_is_recorded_and_the_worker_survives(repository, monkeypatch):
    manifest = db_images.push_image(repository, [db_images.BASE_LAYER])

    def explode(tree, distro=None):
        raise RuntimeError("cataloger bug")

    monkeypatch.setattr(services, "catalog", explode)
    report = services.scan_manifest(manifest_id=manifest.pk)
    assert report.status == "failed"
    assert report.error == "internal error while scanning: RuntimeError: cataloger bug"


def test_a_non_image_artifact_is_done_with_nothing(repository):
    subject = db_images.push_image(repository, [db_images.BASE_LAYER])
    artifact = db_images.push_referrer(
        repository, subject, b"signature", "application/vnd.example.signature"
    )
    report = services.scan_manifest(manifest_id=artifact.pk)
    assert report.status == "done"
    assert report.component_count == 0
    assert "not a container image" in report.notes[0]


def test_without_a_snapshot_the_scan_is_done_and_says_so(repository):
    manifest = db_images.push_image(repository, [db_images.BASE_LAYER])
    report = services.scan_manifest(manifest_id=manifest.pk)
    assert report.status == "done"
    assert report.snapshot is None
    assert "no OSV snapshot" in report.notes[-1]


def test_an_index_scans_each_platform_and_aggregates(repository, snapshot):
    amd = db_images.push_image(repository, [db_images.BASE_LAYER], tag=None, salt="amd64")
    arm = db_images.push_image(
        repository, [db_images.BASE_LAYER, db_images.PYTHON_LAYER], tag=None, salt="arm64"
    )
    index = db_images.push_index(repository, [(amd, "linux/amd64"), (arm, "linux/arm64")])
    report = services.scan_manifest(manifest_id=index.pk)

    assert report.status == "done" and report.is_index
    platforms = dict(
        ScanReport.objects.filter(manifest__in=[amd, arm]).values_list("platform", "status")
    )
    assert platforms == {"linux/amd64": "done", "linux/arm64": "done"}
    # The same openssl/zlib vulnerabilities in both platforms count once.
    assert report.vulnerability_counts == {
        "critical": 1,
        "high": 0,
        "medium": 1,
        "low": 0,
        "unknown": 1,
    }
    facts = manifest_scan_facts(manifest=index)
    assert facts.component_names == {"libssl3", "zlib1g", "requests"}


def test_an_index_fails_when_a_platform_fails_and_names_it(repository, snapshot):
    good = db_images.push_image(repository, [db_images.BASE_LAYER], tag=None)
    bad = db_images.push_image(
        repository,
        [],
        tag=None,
        raw_layers=[(b"\x1f\x8b\x08\x00broken", "application/vnd.oci.image.layer.v1.tar+gzip")],
    )
    index = db_images.push_index(repository, [(good, "linux/amd64"), (bad, "linux/arm64")])
    report = services.scan_manifest(manifest_id=index.pk)
    assert report.status == "failed"
    assert report.error.startswith("linux/arm64: ")
    assert manifest_scan_facts(manifest=index).status == "failed"


def test_a_stale_running_report_is_claimed_again(repository, settings):
    manifest = db_images.push_image(repository, [db_images.BASE_LAYER])
    from django.utils import timezone

    ScanReport.objects.create(
        manifest=manifest,
        status="running",
        attempt=1,
        started_at=timezone.now(),
    )
    assert services.scan_manifest(manifest_id=manifest.pk).status == "running"  # live: left
    ScanReport.objects.filter(manifest=manifest).update(
        started_at=timezone.now() - timezone.timedelta(seconds=settings.SCAN_STALE_SECONDS + 1)
    )
    report = services.scan_manifest(manifest_id=manifest.pk)
    assert (report.status, report.attempt) == ("done", 2)
