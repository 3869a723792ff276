"""Scan results in the pages: the Tags tab's summary column, a tag's Vulnerabilities and
Components pages (filters, pages, platforms, retry), and the scans on the Activity tab.

Images are pushed through the registry's services and scanned by scanning.services against
a tiny OSV zip (tests.scanning.db_images), as a real push would be.
"""

import html
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry_portal.registry import pages
from registry_portal.registry.models import Repository
from registry_portal.registry.services import tag_set
from scanning import services as scan_services
from scanning import tasks as scan_tasks
from scanning.models import Component, ComponentLicense, ScanReport
from tests import factories
from tests.scanning import db_images

from .test_pages import text as raw_text

REPO = "/repos/dev/website/-"
VULNS = f"{REPO}/tags/scanned/vulnerabilities/"
COMPONENTS = f"{REPO}/tags/scanned/components/"


def text(response) -> str:
    """The visible text of a page, entities decoded."""
    return html.unescape(raw_text(response))


@pytest.fixture(autouse=True)
def no_scan_jobs(outbox_published):
    """Pushes queue scan jobs on commit; the tests scan (or not) by themselves."""
    return outbox_published


@pytest.fixture
def snapshot(db):
    snapshot = scan_services.osv_import_zip(
        path_or_file=db_images.osv_zip(db_images.STANDARD_RECORDS), source="tiny-osv.zip"
    )
    assert snapshot.status == "ready", snapshot.error
    return snapshot


@pytest.fixture
def scanned(world, snapshot):
    """dev/website:scanned, a Debian image with a Python layer, scanned: libssl3 (critical,
    Apache-2.0), zlib1g (unknown severity, no license file) and requests (medium)."""
    manifest = db_images.push_image(
        world["source"], [db_images.BASE_LAYER, db_images.PYTHON_LAYER], tag="scanned"
    )
    report = scan_services.scan_manifest(manifest_id=manifest.pk)
    assert report.status == "done", report.error
    return report


def failed_report(world, tag="broken", error="the layer is not a tar archive"):
    manifest = factories.make_manifest()
    tag_set(repository=world["source"], name=tag, manifest=manifest)
    return ScanReport.objects.create(manifest=manifest, status="failed", error=error)


# --- the Tags tab ---------------------------------------------------------------------------


def test_tags_tab_shows_counts_licenses_and_scan_states(world, login, scanned):
    failed_report(world)
    queued = factories.make_manifest()
    tag_set(repository=world["source"], name="fresh", manifest=queued)
    ScanReport.objects.create(manifest=queued, status="queued")
    response = login(world["reader"]).get(f"{REPO}/tags/")
    rows = {tag.name: tag for tag in response.context["tags"]}
    assert rows["scanned"].scan.vulnerability_counts["critical"] == 1
    assert rows["scanned"].scan.licenses == ("Apache-2.0",)
    html = response.content.decode()
    row = re.search(r"<tr>\s*<td>\s*<a class=\"tag-name\"[^>]*>scanned</a>.*?</tr>", html, re.S)
    cells = text_of(row.group(0))
    assert "C 1 critical" in cells and "H 0 high" in cells and "M 1 medium" in cells
    assert "U 1 unknown" in cells and "Apache-2.0" in cells
    page = text(response)
    assert "scan failed" in page and "scanning…" in page and "not scanned" in page
    assert "the layer is not a tar archive" in html  # the failed badge's title


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def make_scanned_tags(world, count: int, start: int) -> None:
    """``count`` tags whose images have done reports with licenses; every third an index of
    two platform images (its licenses come from its platforms)."""
    for number in range(start, start + count):
        manifest = factories.make_manifest()
        tag_set(repository=world["source"], name=f"t{number:03d}", manifest=manifest)
        report = ScanReport.objects.create(manifest=manifest, status="done", high=number)
        platform_reports = [report]
        if number % 3 == 0:
            report.is_index = True
            report.save()
            platform_reports = []
            for platform in ("linux/amd64", "linux/arm64"):
                child = factories.make_manifest()
                manifest.children.add(child)
                platform_reports.append(
                    ScanReport.objects.create(manifest=child, status="done", platform=platform)
                )
        for child in platform_reports:
            component = Component.objects.create(report=child, name=f"lib{number}", type="deb")
            ComponentLicense.objects.create(component=component, report=child, spdx_id="MIT")


def tags_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"{REPO}/tags/")
    assert response.status_code == 200
    return len(queries)


def test_tags_tab_scan_column_takes_the_same_queries_for_few_and_many_rows(world, login):
    client = login(world["lead"])
    make_scanned_tags(world, 3, start=0)
    few = tags_queries(client)
    make_scanned_tags(world, 30, start=3)
    assert tags_queries(client) == few
    tags = {tag.name: tag for tag in client.get(f"{REPO}/tags/").context["tags"]}
    assert tags["t003"].scan.licenses == ("MIT",)  # an index: its platforms' licenses
    assert tags["t004"].scan.vulnerability_counts["high"] == 4


def test_tags_pages_go_forward_and_back(world, login, monkeypatch):
    monkeypatch.setattr(pages, "TAGS_PER_PAGE", 2)
    for name in ("a", "b", "c", "d"):
        tag_set(repository=world["source"], name=name, manifest=factories.make_manifest())
    client = login(world["reader"])
    names = lambda response: [tag.name for tag in response.context["tags"]]  # noqa: E731
    first = client.get(f"{REPO}/tags/")
    assert names(first) == ["1.0-stable", "1.1-beta"]
    assert first.context["previous_url"] == "" and first.context["next_url"] == "?after=1.1-beta"
    second = client.get(f"{REPO}/tags/?after=1.1-beta")
    assert names(second) == ["a", "b"] and second.context["previous_url"] == "?before=a"
    third = client.get(f"{REPO}/tags/?after=b")
    assert names(third) == ["c", "d"] and third.context["next_url"] == ""
    back = client.get(f"{REPO}/tags/?before=c")
    assert names(back) == ["a", "b"]
    assert back.context["previous_url"] == "?before=a" and back.context["next_url"] == "?after=b"
    start = client.get(f"{REPO}/tags/?before=a")
    assert names(start) == ["1.0-stable", "1.1-beta"] and start.context["previous_url"] == ""
    assert "← Previous" in back.content.decode() and "← Previous" not in start.content.decode()
    searched = client.get(f"{REPO}/tags/?q=1.&before=1.1-beta")
    assert names(searched) == ["1.0-stable"]


# --- a tag's Vulnerabilities and Components pages --------------------------------------------


def test_vulnerabilities_page_lists_findings_worst_first(world, login, scanned):
    response = login(world["reader"]).get(VULNS)
    assert response.status_code == 200
    findings = list(response.context["page"])
    assert [f.vulnerability.osv_id for f in findings] == [
        "DEBIAN-CVE-2024-0001",
        "GHSA-aaaa-bbbb-cccc",
        "DEBIAN-CVE-2024-0002",
    ]
    page = text(response)
    assert "DEBIAN-CVE-2024-0001 critical 9.8 libssl3 source openssl Debian:12" in page
    assert "3.0.11-1~deb12u1 3.0.11-1~deb12u2" in page  # installed, fixed in
    assert "no fix yet" in page  # zlib
    assert "Severities use the CVSS v3 bands" in page
    assert "Inventory from our scan of the image" in page
    assert "OSV snapshot" in page and "tiny-osv.zip" in page
    assert "Debian GNU/Linux 12" in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"severity": "critical"}, ["DEBIAN-CVE-2024-0001"]),
        ({"severity": "unknown"}, ["DEBIAN-CVE-2024-0002"]),
        ({"component": "requests"}, ["GHSA-aaaa-bbbb-cccc"]),
        ({"ecosystem": "PyPI"}, ["GHSA-aaaa-bbbb-cccc"]),
        ({"vulnerability": "DEBIAN-CVE-2024-0002"}, ["DEBIAN-CVE-2024-0002"]),
        ({"severity": "low"}, []),
    ],
)
def test_vulnerabilities_filters(world, login, scanned, query, expected):
    response = login(world["reader"]).get(VULNS, query)
    assert response.status_code == 200
    assert [f.vulnerability.osv_id for f in response.context["page"]] == expected
    if not expected:
        assert "No vulnerability matches these filters." in text(response)


def test_an_invalid_filter_is_a_field_error_and_lists_nothing(world, login, scanned):
    response = login(world["reader"]).get(VULNS, {"severity": "catastrophic"})
    assert response.status_code == 400
    assert response.context["page"] is None
    page = text(response)
    assert "Select a valid choice" in page and "Correct the filters above." in page
    assert "DEBIAN-CVE-2024-0001" not in page


def test_components_page_with_licenses_layers_and_paths(world, login, scanned):
    response = login(world["reader"]).get(COMPONENTS)
    assert response.status_code == 200
    components = {c.name: c for c in response.context["page"]}
    assert set(components) == {"libssl3", "zlib1g", "requests"}
    page = text(response)
    assert "libssl3 3.0.11-1~deb12u1 deb Debian:12 Apache-2.0" in page
    assert "zlib1g 1:1.2.13.dfsg-1 deb Debian:12 unknown" in page
    assert "var/lib/dpkg/status" in page
    layer = components["libssl3"].layer_digest
    assert layer[:19] in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"q": "ssl"}, {"libssl3"}),
        ({"q": "lib"}, {"libssl3", "zlib1g"}),
        ({"type": "pypi"}, {"requests"}),
        ({"ecosystem": "Debian:12"}, {"libssl3", "zlib1g"}),
        ({"license": "apache-2.0", "type": "deb"}, {"libssl3"}),
    ],
)
def test_components_filters(world, login, scanned, query, expected):
    response = login(world["reader"]).get(COMPONENTS, query)
    assert {c.name for c in response.context["page"]} == expected


def test_scan_lists_are_paginated_and_pages_keep_the_filters(world, login, scanned, monkeypatch):
    monkeypatch.setattr(pages, "SCAN_ROWS_PER_PAGE", 1)
    client = login(world["reader"])
    first = client.get(COMPONENTS, {"type": "deb"})
    assert first.context["page"].paginator.count == 2
    assert "?type=deb&amp;page=2" in first.content.decode()
    second = client.get(COMPONENTS, {"type": "deb", "page": 2})
    assert [c.name for c in second.context["page"]] == ["zlib1g"]
    assert client.get(VULNS, {"page": "many"}).status_code == 200  # a bad page: the first


def test_an_index_has_a_page_per_platform(world, login, snapshot):
    repository = world["source"]
    amd = db_images.push_image(repository, [db_images.BASE_LAYER], tag=None, salt="amd64")
    arm = db_images.push_image(
        repository, [db_images.BASE_LAYER, db_images.PYTHON_LAYER], tag=None, salt="arm64"
    )
    index = db_images.push_index(
        repository, [(amd, "linux/amd64"), (arm, "linux/arm64")], tag="multi"
    )
    assert scan_services.scan_manifest(manifest_id=index.pk).status == "done"
    client = login(world["reader"])
    url = f"{REPO}/tags/multi/components/"
    every = client.get(url)
    assert len(every.context["page"].object_list) == 5  # 2 + 3, per platform
    assert [r.platform for r in every.context["platforms"]] == ["linux/amd64", "linux/arm64"]
    arm_only = client.get(url, {"platform": "linux/arm64"})
    assert {c.name for c in arm_only.context["page"]} == {"libssl3", "zlib1g", "requests"}
    amd_vulns = client.get(f"{REPO}/tags/multi/vulnerabilities/", {"platform": "linux/amd64"})
    assert "GHSA-aaaa-bbbb-cccc" not in [f.vulnerability.osv_id for f in amd_vulns.context["page"]]
    unknown = client.get(url, {"platform": "plan9/mips"})
    assert unknown.status_code == 400
    assert "This image has no platform “plan9/mips”." in text(unknown)


def test_a_tag_without_a_scan_says_so(world, login):
    response = login(world["reader"]).get(f"{REPO}/tags/1.0-stable/vulnerabilities/")
    assert response.status_code == 200
    assert "This image has not been scanned." in text(response)
    assert response.context["page"] is None


def test_a_running_scan_says_so(world, login):
    tag = world["source"].tags.get(name="1.0-stable")
    ScanReport.objects.create(manifest=tag.manifest, status="running")
    page = text(login(world["reader"]).get(f"{REPO}/tags/1.0-stable/components/"))
    assert "scanning…" in page and "is running" in page


def test_an_unknown_tag_is_a_404(world, login):
    assert login(world["lead"]).get(f"{REPO}/tags/nope/vulnerabilities/").status_code == 404


USERS = ["outsider", "reader", "writer", "lead", "dev_admin"]
MAY_PUSH = {"writer", "lead", "dev_admin"}


@pytest.mark.parametrize("user", USERS)
def test_retry_scan_needs_push_rights(world, login, user, no_scan_jobs):
    report = failed_report(world)
    client = login(world[user])
    page = client.get(f"{REPO}/tags/broken/vulnerabilities/")
    if user == "outsider":
        assert page.status_code == 404
    else:
        assert "the layer is not a tar archive" in text(page)
        assert ("Retry scan" in text(page)) == (user in MAY_PUSH)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("django.db.transaction.on_commit", lambda callback, **kw: callback())
        response = client.post(f"{REPO}/tags/broken/scan/retry/")
    report.refresh_from_db()
    if user in MAY_PUSH:
        assert response.status_code == 302 and response["Location"].endswith("/vulnerabilities/")
        assert report.status == "queued" and report.error == ""
        assert no_scan_jobs.args(scan_tasks.scan_manifest_task.name) == [[report.manifest_id]]
    else:
        assert response.status_code == (404 if user == "outsider" else 403)
        assert report.status == "failed" and no_scan_jobs == []


def test_retrying_a_scan_that_did_not_fail_changes_nothing(world, login, scanned):
    client = login(world["writer"])
    response = client.post(f"{REPO}/tags/scanned/scan/retry/", follow=True)
    assert "Only a failed scan can be retried." in text(response)
    scanned.refresh_from_db()
    assert scanned.status == "done"
    assert client.post(f"{REPO}/tags/1.0-stable/scan/retry/").status_code == 404  # no report


def test_anonymous_may_read_a_public_repositorys_scan_but_not_retry(client, world, scanned):
    failed_report(world)
    Repository.objects.filter(pk=world["source"].pk).update(is_public=True)
    assert "DEBIAN-CVE-2024-0001" in text(client.get(VULNS))
    assert "libssl3" in text(client.get(COMPONENTS))
    page = text(client.get(f"{REPO}/tags/broken/vulnerabilities/"))
    assert "scan failed" in page and "Retry scan" not in page
    response = client.post(f"{REPO}/tags/broken/scan/retry/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_scan_page_queries_do_not_grow_with_rows(world, login, scanned, monkeypatch):
    client = login(world["reader"])
    counts = []
    for url in (VULNS, COMPONENTS):
        with CaptureQueriesContext(connection) as few:
            client.get(url)
        counts.append(len(few))
    more = db_images.osv_record(
        "DEBIAN-CVE-2024-0009", "Debian:12", "openssl", [{"introduced": "0"}]
    )
    scan_services.osv_import_zip(
        path_or_file=db_images.osv_zip([*db_images.STANDARD_RECORDS, more]), source="more.zip"
    )
    scan_services.report_rematch(report=scanned, snapshot=scan_services.active_snapshot())
    component = Component.objects.get(report=scanned, name="libssl3")
    for number in range(10):
        extra = Component.objects.create(report=scanned, name=f"extra{number}", type="deb")
        ComponentLicense.objects.create(component=extra, report=scanned, spdx_id="MIT")
    assert component.findings.count() == 2
    for url, before in zip((VULNS, COMPONENTS), counts, strict=True):
        with CaptureQueriesContext(connection) as many:
            response = client.get(url)
        assert len(response.context["page"].object_list) > 3
        assert len(many) == before


# --- the Activity tab -------------------------------------------------------------------------


def test_activity_lists_scans_with_their_errors(world, login, scanned):
    failed_report(world, error="gzip: invalid header")
    page = text(login(world["reader"]).get(f"{REPO}/activity/"))
    assert "Scans" in page
    assert "failed broken" in page and "gzip: invalid header" in page
    assert "done scanned" in page and "3 components" in page
