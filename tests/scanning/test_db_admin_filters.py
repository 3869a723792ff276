"""The scanning admin (scoped, read-only, retry, OSV upload) and the shared FilterSets."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from registry_portal.accounts.choices import AccessLevel
from scanning import services
from scanning.filtersets import ComponentFilterSet, FindingFilterSet, ScanReportFilterSet
from scanning.models import Component, Finding, OsvSnapshot, ScanReport
from tests import factories
from tests.scanning import db_images

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(make_org, make_repo):
    """Two repositories, one scanned image in each; a staff user who may push to the first."""
    services.osv_import_zip(
        path_or_file=db_images.osv_zip(db_images.STANDARD_RECORDS), source="s.zip"
    )
    org = make_org()
    mine, theirs = make_repo(org, "mine"), make_repo(make_org(), "theirs")
    python_image = db_images.push_image(mine, [db_images.BASE_LAYER, db_images.PYTHON_LAYER])
    debian_image = db_images.push_image(theirs, [db_images.BASE_LAYER])
    for manifest in (python_image, debian_image):
        services.scan_manifest(manifest_id=manifest.pk)
    staff = factories.make_user(is_staff=True)
    factories.make_team(org, members=[staff], level=AccessLevel.READ_WRITE, repository=mine)
    return {
        "mine": mine,
        "theirs": theirs,
        "python": ScanReport.objects.get(manifest=python_image),
        "debian": ScanReport.objects.get(manifest=debian_image),
        "staff": staff,
    }


def test_staff_see_only_reports_of_visible_repositories(client, world):
    client.force_login(world["staff"])
    response = client.get(reverse("admin:scanning_scanreport_changelist"))
    assert response.status_code == 200
    assert list(response.context["cl"].queryset) == [world["python"]]
    other = reverse("admin:scanning_scanreport_change", args=[world["debian"].pk])
    assert client.get(other).status_code in (302, 403, 404)
    components = client.get(reverse("admin:scanning_component_changelist"))
    assert {c.report_id for c in components.context["cl"].queryset} == {world["python"].pk}
    findings = client.get(reverse("admin:scanning_finding_changelist") + "?severity=critical")
    assert [f.report_id for f in findings.context["cl"].queryset] == [world["python"].pk]
    assert client.get(reverse("admin:scanning_osvsnapshot_changelist")).status_code == 403


def test_the_report_page_is_read_only_and_links_its_rows(client, world):
    client.force_login(world["staff"])
    url = reverse("admin:scanning_scanreport_change", args=[world["python"].pk])
    response = client.get(url)
    assert response.status_code == 200
    assert f"report__id__exact={world['python'].pk}" in response.content.decode()
    assert client.post(url, {}).status_code == 403


def test_retry_action_queues_failed_scans_the_user_may_push(client, world, outbox_published):
    ScanReport.objects.filter(pk=world["python"].pk).update(status="failed", error="boom")
    client.force_login(world["staff"])
    with_callbacks = client.post(
        reverse("admin:scanning_scanreport_changelist"),
        {"action": "retry_scans", "_selected_action": [world["python"].pk]},
        follow=True,
    )
    assert "1 scan(s) queued again." in with_callbacks.content.decode()
    world["python"].refresh_from_db()
    assert world["python"].status == "queued"


def test_superusers_upload_an_osv_zip(client, world, outbox_published):
    admin = factories.make_user(is_staff=True, is_superuser=True)
    client.force_login(admin)
    url = reverse("admin:scanning_osvsnapshot_upload")
    assert client.get(url).status_code == 200
    upload = SimpleUploadedFile("all.zip", db_images.osv_zip(db_images.STANDARD_RECORDS).read())
    response = client.post(url, {"archive": upload})
    assert response.status_code == 302
    newest = OsvSnapshot.objects.first()
    assert (newest.source, newest.is_active, newest.record_count) == ("upload: all.zip", True, 4)

    bad = client.post(url, {"archive": SimpleUploadedFile("bad.zip", b"nope")})
    assert bad.status_code == 200
    assert "not a readable zip" in bad.content.decode()
    assert OsvSnapshot.objects.get(is_active=True) == newest
    staff = world["staff"]
    client.force_login(staff)
    assert client.get(url).status_code == 403


def test_report_filters(world):
    reports = ScanReport.objects.all()

    def ids(**data):
        filterset = ScanReportFilterSet(data, queryset=reports)
        assert filterset.is_valid(), filterset.errors
        return {report.pk for report in filterset.qs}

    python, debian = world["python"].pk, world["debian"].pk
    assert ids(repository=world["mine"].full_name) == {python}
    assert ids(repository_id=world["theirs"].pk) == {debian}
    assert ids(digest=world["debian"].manifest.digest) == {debian}
    assert ids(severity="medium") == {python}
    assert ids(severity="critical") == {python, debian}
    assert ids(component="requests") == {python}
    assert ids(license="apache-2.0") == {python, debian}
    assert ids(ecosystem="PyPI") == {python}
    assert ids(status="done", q="bookworm") == {python, debian}
    assert not ScanReportFilterSet({"repository_id": "-1"}, queryset=reports).is_valid()


def test_component_and_finding_filters(world):
    components = ComponentFilterSet(
        {"repository": world["theirs"].full_name, "license": "Apache-2.0"},
        queryset=Component.objects.all(),
    ).qs
    assert [c.name for c in components] == ["libssl3"]
    assert [
        c.name for c in ComponentFilterSet({"q": "openssl"}, queryset=Component.objects.all()).qs
    ] == [
        "libssl3",
        "libssl3",
    ]
    findings = FindingFilterSet(
        {"vulnerability": "GHSA-aaaa-bbbb-cccc", "fixable": True}, queryset=Finding.objects.all()
    ).qs
    assert [f.component.name for f in findings] == ["requests"]
    unfixed = FindingFilterSet(
        {"fixable": False, "ecosystem": "Debian:12"}, queryset=Finding.objects.all()
    ).qs
    assert {f.vulnerability.osv_id for f in unfixed} == {"DEBIAN-CVE-2024-0002"}
