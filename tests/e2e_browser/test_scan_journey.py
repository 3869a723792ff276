"""Scan results in a real browser: an image pushed through the registry's services is scanned
(the real job, run eagerly) against a tiny OSV zip imported with scanning.services; the lead
reads its vulnerabilities and components, promotes it now, sees the scan on the Activity tab;
a visitor without an account reads the same page once the repository is public; a failed
scan offers Retry."""

import re

import pytest
from playwright.sync_api import expect

from registry_portal.accounts.choices import AccessLevel
from registry_portal.registry.models import Tag
from scanning import services as scan_services
from scanning.models import ScanReport
from tests import factories
from tests.scanning import db_images

from .conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BROKEN_GZIP = (b"\x1f\x8b\x08\x00broken", "application/vnd.oci.image.layer.v1.tar+gzip")


@pytest.fixture
def scanned(transactional_db, eager_tasks):
    """dev/website:2.0-stable pushed and scanned: libssl3 with DEBIAN-CVE-2024-0001 (critical,
    fixed in 3.0.11-1~deb12u2), requests with a medium GHSA, zlib1g with an unknown one."""
    dev, qa = factories.make_org("dev"), factories.make_org("qa")
    source = factories.make_repo(dev, "website", description="Our web site, as built by CI.")
    target = factories.make_repo(qa, "website")
    lead = factories.make_user("lead")
    factories.make_team(dev, members=[lead], level=AccessLevel.ADMIN, repository=source)
    factories.make_team(qa, members=[lead], level=AccessLevel.ADMIN, repository=target)
    snapshot = scan_services.osv_import_zip(
        path_or_file=db_images.osv_zip(db_images.STANDARD_RECORDS), source="tiny-osv.zip"
    )
    assert snapshot.status == "ready", snapshot.error
    manifest = db_images.push_image(
        source, [db_images.BASE_LAYER, db_images.PYTHON_LAYER], tag="2.0-stable"
    )
    report = ScanReport.objects.get(manifest=manifest)
    assert report.status == "done", report.error
    return {"source": source, "target": target, "lead": lead}


def test_lead_reads_a_tags_vulnerabilities_and_promotes_it(page, scanned, screenshot):
    from promotions import services as promotion_services

    promotion_services.policy_create(
        actor=scanned["lead"],
        source=scanned["source"],
        target=scanned["target"],
        name="Stable to QA",
        rules=[{"field": "vulns_critical", "operator": "eq", "values": ["0"]}],
    )
    sign_in(page, "lead", factories.PASSWORD)
    page.goto("/repos/dev/website/-/tags/")
    row = page.locator("tr", has_text="2.0-stable")
    expect(row.locator(".sev-count.critical")).to_contain_text("1")
    expect(row.locator(".licenses")).to_contain_text("Apache-2.0")
    screenshot(page, "10-tags-with-scan")

    row.get_by_role("link", name="2.0-stable", exact=True).click()
    expect(page).to_have_title(re.compile("Vulnerabilities · dev/website:2.0-stable"))
    finding = page.locator("tbody tr", has_text="DEBIAN-CVE-2024-0001")
    expect(finding.locator(".sev")).to_have_text("critical")
    expect(finding).to_contain_text("libssl3")
    expect(finding).to_contain_text("3.0.11-1~deb12u2")
    expect(page.locator(".bands")).to_contain_text("CVSS v3 bands")
    expect(page.locator(".scan-facts")).to_contain_text("our scan of the image")
    screenshot(page, "11-tag-vulnerabilities")

    page.get_by_label("Severity").select_option("medium")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr")).to_contain_text("GHSA-aaaa-bbbb-cccc")

    page.get_by_role("navigation", name="Scan results").get_by_role(
        "link", name="Components"
    ).click()
    expect(page.locator("tbody tr", has_text="libssl3")).to_contain_text("Apache-2.0")
    expect(page.locator("tbody tr", has_text="zlib1g")).to_contain_text("unknown")
    screenshot(page, "12-tag-components")

    # The policy waits for no critical finding; the lead decides to promote anyway.
    page.get_by_role("link", name="Promote now…").click()
    page.get_by_label(re.compile("Stable to QA")).check()
    page.get_by_role("button", name="Promote now").click()
    expect(page.locator("#record-heading")).to_be_visible()
    expect(page.get_by_role("status").last).to_contain_text("promoted")
    screenshot(page, "13-promote-now")
    assert Tag.objects.filter(repository=scanned["target"], name="2.0-stable").exists()

    page.goto("/repos/dev/website/-/activity/")
    scans = page.locator("section", has=page.get_by_role("heading", name="Scans"))
    expect(scans.locator("tbody tr").first).to_contain_text("done")
    screenshot(page, "14-activity-scans")


def test_visitor_reads_a_public_repository_and_a_failed_scan_offers_retry(
    page, scanned, screenshot
):
    source = scanned["source"]
    assert page.goto("/repos/dev/website/-/tags/2.0-stable/vulnerabilities/").status == 404
    source.is_public = True
    source.save()
    page.goto("/repos/dev/website/-/tags/2.0-stable/vulnerabilities/")
    expect(page.locator("tbody tr", has_text="DEBIAN-CVE-2024-0001")).to_be_visible()
    expect(page.get_by_role("link", name="Sign in")).to_be_visible()
    expect(page.get_by_role("navigation", name="Repository")).not_to_contain_text("Activity")
    screenshot(page, "15-anonymous-public-vulnerabilities")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "16-vulnerabilities-narrow")
    page.set_viewport_size({"width": 1366, "height": 900})

    db_images.push_image(source, [], tag="broken", raw_layers=[BROKEN_GZIP])
    assert ScanReport.objects.get(manifest__tags__name="broken").status == "failed"
    page.goto("/repos/dev/website/-/tags/2.0-stable/vulnerabilities/")
    expect(page.get_by_role("button", name="Retry scan")).to_have_count(0)
    sign_in(page, "lead", factories.PASSWORD)
    page.goto("/repos/dev/website/-/tags/")
    expect(page.locator("tr", has_text="broken")).to_contain_text("scan failed")
    page.goto("/repos/dev/website/-/tags/broken/vulnerabilities/")
    expect(page.locator(".scan-failed")).to_contain_text("scan failed")
    screenshot(page, "17-scan-failed")
    page.get_by_role("button", name="Retry scan").click()
    expect(page.get_by_role("status")).to_contain_text("queued again")
    # The retried job ran at once (eagerly) and failed again, for the same reason.
    expect(page.locator(".scan-failed")).to_be_visible()
