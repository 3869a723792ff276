"""scanning.0003 names the referrer of each SBOM component (by its origin digest), drops
those whose referrer is gone, and makes the stored counts the layer scan's alone."""

import pytest

from tests.support.migrations import migrate, migrate_to_latest

BEFORE = [("scanning", "0002_i11b_incomplete_reasons")]
AFTER = [("scanning", "0003_i10b_component_referrer")]


def manifest(Manifest, letter):
    return Manifest.objects.create(
        digest="sha256:" + letter * 64,
        media_type="application/vnd.oci.image.manifest.v1+json",
        content=b"{}",
        size=2,
    )


@pytest.mark.django_db(transaction=True)
def test_sbom_components_name_their_referrer_and_counts_become_the_layers():
    apps = migrate(BEFORE)
    try:
        Manifest = apps.get_model("registry", "Manifest")
        ScanReport = apps.get_model("scanning", "ScanReport")
        Component = apps.get_model("scanning", "Component")
        Finding = apps.get_model("scanning", "Finding")
        OsvSnapshot = apps.get_model("scanning", "OsvSnapshot")
        OsvVulnerability = apps.get_model("scanning", "OsvVulnerability")
        image, referrer = manifest(Manifest, "a"), manifest(Manifest, "b")
        report = ScanReport.objects.create(
            manifest=image,
            status="done",
            sources=["scan", f"sbom:{referrer.digest}", "sbom:sha256:" + "c" * 64],
            component_count=3,
            critical=1,
            high=1,
        )
        layer = Component.objects.create(report=report, name="zlib", type="deb")
        sbom = Component.objects.create(
            report=report, name="invented", type="npm", origin=f"sbom:{referrer.digest}"
        )
        Component.objects.create(
            report=report, name="orphan", type="npm", origin="sbom:sha256:" + "c" * 64
        )
        snapshot = OsvSnapshot.objects.create(source="s.zip")
        for component, osv_id, severity in ((layer, "A", "high"), (sbom, "B", "critical")):
            vulnerability = OsvVulnerability.objects.create(
                snapshot=snapshot, osv_id=osv_id, modified="x", severity=severity, raw={}
            )
            Finding.objects.create(
                component=component, report=report, vulnerability=vulnerability, severity=severity
            )

        apps = migrate(AFTER)

        Component = apps.get_model("scanning", "Component")
        ScanReport = apps.get_model("scanning", "ScanReport")
        rows = dict(Component.objects.values_list("name", "referrer_id"))
        assert rows == {"zlib": None, "invented": referrer.pk}
        report = ScanReport.objects.get(pk=report.pk)
        assert (report.critical, report.high, report.component_count) == (0, 1, 1)
    finally:
        migrate_to_latest()
