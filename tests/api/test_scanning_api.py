"""The scanning API: scan reports, components, findings, the retry of a failed scan, OSV
snapshots (list, upload, sync) and the scan summary on tags.

Images are real (tiny layers pushed through the registry's services) and scanned by the
real scanner; the OSV data are zips built here. The permission matrix crosses every kind of
user with a public and a private repository; list endpoints keep their query count whatever
the number of rows.
"""

import pytest
import schemathesis
from django.core.files.uploadedfile import SimpleUploadedFile
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from registry_portal.accounts import services as account_services
from registry_portal.accounts.choices import AccessLevel
from registry_portal.registry.services import tag_set
from registry_portal.wsgi import application
from scanning import services as scanning_services
from scanning import tasks as scanning_tasks
from scanning.models import Finding, OsvSnapshot, ScanReport
from tests import factories
from tests.scanning import db_images

from .conftest import error_of
from .test_schemathesis import CHECKS, keep_test_connection  # noqa: F401 - a fixture

USERS = ("anonymous", "outsider", "reader", "writer", "admin", "superuser")
CAN_SEE_PRIVATE = {"reader", "writer", "admin", "superuser"}
CAN_PUSH = {"writer", "admin", "superuser"}
ZLIB_ONLY = [record for record in db_images.STANDARD_RECORDS if "zlib" in str(record)]


def _user(world, kind):
    return None if kind == "anonymous" else world[kind]


def _scan(repository, layers, *, tag="latest", salt=""):
    manifest = db_images.push_image(repository, layers, tag=tag, salt=salt)
    return scanning_services.scan_manifest(manifest_id=manifest.pk)


def _upload(client, data: bytes, name="all.zip"):
    return client.post(
        "/api/v1/osv-snapshots/upload/",
        {"archive": SimpleUploadedFile(name, data)},
        format="multipart",
    )


@pytest.fixture
def no_rematch(outbox_published):
    """Leave the re-match that an import queues un-run (tests that do not look at it)."""


@pytest.fixture
def scans(world, no_rematch):
    """A scanned Debian + Python image in dev/website (private) and a Debian one in
    dev/public, matched against the standard OSV records."""
    scanning_services.osv_import_zip(
        path_or_file=db_images.osv_zip(db_images.STANDARD_RECORDS), source="standard.zip"
    )
    private = _scan(world["private"], [db_images.BASE_LAYER, db_images.PYTHON_LAYER])
    public = _scan(world["public"], [db_images.BASE_LAYER])
    assert (private.status, public.status) == ("done", "done")
    return {**world, "private_report": private, "public_report": public}


def _report(scans, visibility):
    return scans["private_report" if visibility == "private" else "public_report"]


# --- the permission matrix ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", USERS)
def test_report_list_shows_the_reports_of_visible_repositories(scans, client_for, kind):
    response = client_for(_user(scans, kind)).get("/api/v1/scan-reports/")
    assert response.status_code == 200
    ids = {report["id"] for report in response.json()["results"]}
    expected = {scans["public_report"].pk}
    if kind in CAN_SEE_PRIVATE:
        expected.add(scans["private_report"].pk)
    assert ids == expected


@pytest.mark.parametrize("visibility", ["private", "public"])
@pytest.mark.parametrize("kind", USERS)
def test_report_retrieve(scans, client_for, kind, visibility):
    report = _report(scans, visibility)
    response = client_for(_user(scans, kind)).get(f"/api/v1/scan-reports/{report.pk}/")
    visible = visibility == "public" or kind in CAN_SEE_PRIVATE
    assert response.status_code == (200 if visible else 404)
    if not visible:
        assert error_of(response)["code"] == "not_found"
        return
    body = response.json()
    assert body["digest"] == report.manifest.digest
    assert body["repositories"] == [scans[visibility].full_name]
    assert body["vulnerabilities"] == report.vulnerability_counts
    assert body["platform_reports"] == []


@pytest.mark.parametrize("endpoint", ["components", "findings"])
@pytest.mark.parametrize("visibility", ["private", "public"])
@pytest.mark.parametrize("kind", USERS)
def test_components_and_findings_follow_the_report(scans, client_for, kind, visibility, endpoint):
    report = _report(scans, visibility)
    client = client_for(_user(scans, kind))
    listed = client.get(f"/api/v1/{endpoint}/?report_id={report.pk}")
    assert listed.status_code == 200
    rows = listed.json()["results"]
    visible = visibility == "public" or kind in CAN_SEE_PRIVATE
    manager = report.components if endpoint == "components" else report.findings
    assert len(rows) == (manager.count() if visible else 0)
    one = manager.first()
    detail = client.get(f"/api/v1/{endpoint}/{one.pk}/")
    assert detail.status_code == (200 if visible else 404)


@pytest.mark.parametrize("visibility", ["private", "public"])
@pytest.mark.parametrize("kind", USERS)
def test_retry_needs_push_on_a_repository_holding_the_manifest(
    scans, client_for, kind, visibility, outbox_published, django_capture_on_commit_callbacks
):
    report = _report(scans, visibility)
    ScanReport.objects.filter(pk=report.pk).update(status="failed", error="boom")
    client = client_for(_user(scans, kind))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/scan-reports/{report.pk}/retry/")
    if kind == "anonymous":
        expected = 401
    elif kind in CAN_PUSH:
        expected = 202
    elif visibility == "private" and kind not in CAN_SEE_PRIVATE:
        expected = 404
    else:
        expected = 403
    assert response.status_code == expected, response.content
    report.refresh_from_db()
    queued = [args[0] for args in outbox_published.args(scanning_tasks.scan_manifest_task.name)]
    if expected == 202:
        assert response.json()["status"] == "queued"
        assert (report.status, queued) == ("queued", [report.manifest_id])
    else:
        error_of(response)
        assert (report.status, report.error, queued) == ("failed", "boom", [])


def test_retrying_a_scan_that_did_not_fail_is_a_field_error(scans, client_for):
    report = scans["private_report"]
    response = client_for(scans["writer"]).post(f"/api/v1/scan-reports/{report.pk}/retry/")
    assert response.status_code == 400
    assert "status" in error_of(response)["fields"]
    report.refresh_from_db()
    assert report.status == "done"


def test_a_pusher_of_any_repository_holding_the_manifest_may_retry(
    scans, client_for, outbox_published
):
    """The image of private dev/website is promoted to qa/website: a writer of qa/website
    alone may retry its scan; a reader of dev/website, who may push nowhere, may not."""
    report = scans["private_report"]
    tag_set(repository=scans["target"], name="copy", manifest=report.manifest)
    qa_writer = factories.make_user("qa_writer")
    factories.make_team(
        scans["qa"], members=[qa_writer], level=AccessLevel.READ_WRITE, repository=scans["target"]
    )
    ScanReport.objects.filter(pk=report.pk).update(status="failed", error="boom")
    url = f"/api/v1/scan-reports/{report.pk}/retry/"
    assert client_for(scans["reader"]).post(url).status_code == 403
    response = client_for(qa_writer).post(url)
    assert response.status_code == 202
    assert response.json()["repositories"] == ["qa/website"]  # the one it may see


@pytest.mark.parametrize("kind", USERS)
def test_snapshots_are_listed_for_authenticated_users(scans, client_for, kind):
    client = client_for(_user(scans, kind))
    listed = client.get("/api/v1/osv-snapshots/")
    snapshot = OsvSnapshot.objects.get(is_active=True)
    detail = client.get(f"/api/v1/osv-snapshots/{snapshot.pk}/")
    if kind == "anonymous":
        assert (listed.status_code, detail.status_code) == (401, 401)
        assert error_of(listed)["code"] == "not_authenticated"
        return
    assert listed.status_code == 200
    assert [s["id"] for s in listed.json()["results"]] == [snapshot.pk]
    assert detail.json()["record_count"] == len(db_images.STANDARD_RECORDS)


@pytest.mark.parametrize("kind", USERS)
def test_only_superusers_upload_osv_data(scans, client_for, kind):
    before = OsvSnapshot.objects.count()
    response = _upload(client_for(_user(scans, kind)), db_images.osv_zip(ZLIB_ONLY).read())
    expected = {"anonymous": 401, "superuser": 201}.get(kind, 403)
    assert response.status_code == expected
    assert OsvSnapshot.objects.count() == before + (expected == 201)
    if expected == 201:
        body = response.json()
        assert (body["status"], body["is_active"], body["record_count"]) == ("ready", True, 1)
        assert body["source"] == "upload: all.zip"
    else:
        error_of(response)


@pytest.mark.parametrize("kind", USERS)
def test_only_superusers_trigger_a_sync(
    scans, client_for, kind, settings, outbox_published, django_capture_on_commit_callbacks
):
    settings.OSV_SYNC_URL = "https://osv.example/all.zip"
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(_user(scans, kind)).post("/api/v1/osv-snapshots/sync/")
    expected = {"anonymous": 401, "superuser": 202}.get(kind, 403)
    assert response.status_code == expected
    assert outbox_published.args(".osv_sync_task") == ([[]] if expected == 202 else [])
    if expected == 202:
        assert response.json()["source"] == "https://osv.example/all.zip"


def test_a_sync_without_a_configured_url_is_a_conflict(scans, client_for, settings):
    settings.OSV_SYNC_URL = ""
    response = client_for(scans["superuser"]).post("/api/v1/osv-snapshots/sync/")
    assert response.status_code == 409
    assert "OSV_SYNC_URL" in error_of(response)["message"]


def test_a_sync_url_is_shown_whole_to_superusers_only(scans, client_for):
    url = "https://mirror.example/osv/all.zip?token=s3cr3t-t0ken"
    OsvSnapshot.objects.create(
        source=url,
        status="failed",
        error="download failed: HTTPSConnectionPool(host='mirror.example', port=443): Max "
        "retries exceeded with url: /osv/all.zip?token=s3cr3t-t0ken",
    )
    for kind, shows_secret in (("reader", False), ("superuser", True)):
        newest = client_for(scans[kind]).get("/api/v1/osv-snapshots/").json()["results"][0]
        text = newest["source"] + newest["error"]
        assert ("s3cr3t-t0ken" in text) is shows_secret
        assert newest["source"].startswith("https://mirror.example/osv/all.zip")


# --- the OSV upload, end to end ----------------------------------------------------------------


def test_an_uploaded_zip_becomes_the_snapshot_and_findings_are_matched_again(
    world, client_for, eager_tasks, django_capture_on_commit_callbacks
):
    scanning_services.osv_import_zip(path_or_file=db_images.osv_zip(ZLIB_ONLY), source="z.zip")
    report = _scan(world["private"], [db_images.BASE_LAYER, db_images.PYTHON_LAYER])
    client = client_for(world["reader"])

    def found():
        rows = client.get(f"/api/v1/findings/?report_id={report.pk}").json()["results"]
        return {row["vulnerability"]["osv_id"]: row["severity"] for row in rows}

    assert found() == {"DEBIAN-CVE-2024-0002": "unknown"}
    archive = db_images.osv_zip(db_images.STANDARD_RECORDS).read()
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(client_for(world["superuser"]), archive, name="standard.zip")
    assert response.status_code == 201, response.content
    snapshot = OsvSnapshot.objects.get(pk=response.json()["id"])
    assert (snapshot.is_active, snapshot.record_count) == (True, 4)

    assert found() == {
        "DEBIAN-CVE-2024-0001": "critical",
        "GHSA-aaaa-bbbb-cccc": "medium",
        "DEBIAN-CVE-2024-0002": "unknown",
    }
    detail = client.get(f"/api/v1/scan-reports/{report.pk}/").json()
    assert detail["snapshot_id"] == snapshot.pk
    assert detail["vulnerabilities"] == {
        "critical": 1,
        "high": 0,
        "medium": 1,
        "low": 0,
        "unknown": 1,
    }


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"this is not a zip", "not a readable zip"),
        (db_images.osv_zip([], {"broken.json": b"{not json"}).read(), "no valid OSV record"),
        (b"", "empty"),
    ],
)
def test_a_bad_archive_is_a_field_error_and_saves_nothing(
    scans, client_for, data, says, django_capture_on_commit_callbacks
):
    active = OsvSnapshot.objects.get(is_active=True)
    count, findings = OsvSnapshot.objects.count(), Finding.objects.count()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = _upload(client_for(scans["superuser"]), data, name="bad.zip")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid"
    assert list(error["fields"]) == ["archive"]
    assert says in error["fields"]["archive"][0]
    assert OsvSnapshot.objects.count() == count
    assert OsvSnapshot.objects.get(is_active=True) == active
    assert Finding.objects.count() == findings
    assert callbacks == []


def test_an_upload_without_a_file_is_a_field_error(scans, client_for):
    response = client_for(scans["superuser"]).post(
        "/api/v1/osv-snapshots/upload/", {}, format="multipart"
    )
    assert response.status_code == 400
    assert list(error_of(response)["fields"]) == ["archive"]


def test_an_upload_as_json_is_refused_with_the_error_shape(scans, client_for):
    response = client_for(scans["superuser"]).post(
        "/api/v1/osv-snapshots/upload/", {"archive": "x"}, format="json"
    )
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


# --- filters -----------------------------------------------------------------------------------


def _ids(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_report_filters(scans, client_for):
    client = client_for(scans["reader"])
    private, public = scans["private_report"], scans["public_report"]
    ScanReport.objects.filter(pk=public.pk).update(status="failed")
    assert _ids(client, "/api/v1/scan-reports/?repository=dev/website") == {private.pk}
    assert _ids(client, f"/api/v1/scan-reports/?repository_id={scans['public'].pk}") == {public.pk}
    assert _ids(client, f"/api/v1/scan-reports/?digest={public.manifest.digest}") == {public.pk}
    assert _ids(client, "/api/v1/scan-reports/?status=failed") == {public.pk}
    assert _ids(client, "/api/v1/scan-reports/?severity=medium") == {private.pk}
    assert _ids(client, "/api/v1/scan-reports/?license=apache-2.0") == {private.pk, public.pk}
    bad = client.get("/api/v1/scan-reports/?status=exploded")
    assert bad.status_code == 400
    assert "status" in error_of(bad)["fields"]


def test_component_filters(scans, client_for):
    client = client_for(scans["reader"])
    report = scans["private_report"]
    base = f"/api/v1/components/?report_id={report.pk}"
    rows = client.get(base).json()["results"]
    assert {row["name"] for row in rows} == {"libssl3", "zlib1g", "requests"}
    by_name = client.get(f"{base}&name=libssl3").json()["results"]
    assert [(row["name"], row["license_ids"]) for row in by_name] == [("libssl3", ["Apache-2.0"])]
    assert by_name[0]["digest"] == report.manifest.digest
    assert {r["name"] for r in client.get(f"{base}&license=Apache-2.0").json()["results"]} == {
        "libssl3",
        "requests",
    }
    assert [r["name"] for r in client.get(f"{base}&ecosystem=PyPI").json()["results"]] == [
        "requests"
    ]
    everywhere = client.get("/api/v1/components/?name=libssl3").json()["results"]
    assert {row["report_id"] for row in everywhere} == {report.pk, scans["public_report"].pk}
    assert client.get("/api/v1/components/?report_id=0").status_code == 400


def test_finding_filters(scans, client_for):
    client = client_for(scans["reader"])
    report = scans["private_report"]
    base = f"/api/v1/findings/?report_id={report.pk}"
    critical = client.get(f"{base}&severity=critical").json()["results"]
    assert [(f["vulnerability"]["osv_id"], f["component"]["name"]) for f in critical] == [
        ("DEBIAN-CVE-2024-0001", "libssl3")
    ]
    assert critical[0]["fixed_version"] == "3.0.11-1~deb12u2"
    by_id = client.get(f"{base}&vulnerability=GHSA-aaaa-bbbb-cccc").json()["results"]
    assert [(f["component"]["name"], f["severity"]) for f in by_id] == [("requests", "medium")]
    assert client.get(f"{base}&severity=high").json()["results"] == []
    assert client.get("/api/v1/findings/?severity=dire").status_code == 400


def test_an_index_report_lists_its_platform_reports(world, client_for):
    amd64 = db_images.push_image(world["private"], [db_images.BASE_LAYER], tag=None, salt="a")
    arm64 = db_images.push_image(world["private"], [db_images.PYTHON_LAYER], tag=None, salt="b")
    index = db_images.push_index(world["private"], [(amd64, "linux/amd64"), (arm64, "linux/arm64")])
    report = scanning_services.scan_manifest(manifest_id=index.pk)
    body = client_for(world["reader"]).get(f"/api/v1/scan-reports/{report.pk}/").json()
    assert body["is_index"] is True
    assert [(p["platform"], p["digest"]) for p in body["platform_reports"]] == [
        ("linux/amd64", amd64.digest),
        ("linux/arm64", arm64.digest),
    ]


# --- the scan summary on tags ------------------------------------------------------------------


def test_tags_carry_their_scan_summary(scans, client_for):
    client = client_for(scans["reader"])
    unscanned = db_images.push_image(scans["private"], [db_images.BASE_LAYER], tag=None, salt="u")
    tag_set(repository=scans["private"], name="unscanned", manifest=unscanned)
    rows = client.get("/api/v1/tags/?repository=dev/website").json()["results"]
    summaries = {row["name"]: row["scan"] for row in rows}
    assert summaries["unscanned"] is None
    assert summaries["latest"] == {
        "status": "done",
        "error": "",
        "vulnerabilities": {"critical": 1, "high": 0, "medium": 1, "low": 0, "unknown": 1},
        "licenses": ["Apache-2.0"],
    }
    latest = next(row for row in rows if row["name"] == "latest")
    detail = client.get(f"/api/v1/tags/{latest['id']}/").json()
    assert detail["scan"] == summaries["latest"]


# --- query counts ------------------------------------------------------------------------------

LISTS = (
    "/api/v1/scan-reports/",
    "/api/v1/components/",
    "/api/v1/findings/",
    "/api/v1/osv-snapshots/",
    "/api/v1/tags/",
)


def _grow(scans, rows: int) -> None:
    """Add ``rows`` scanned images (with findings) in each repository, and OSV snapshots."""
    for index in range(rows):
        for repository in (scans["private"], scans["public"]):
            salt = f"{repository.pk}-{OsvSnapshot.objects.count()}-{index}"
            _scan(repository, [db_images.BASE_LAYER, db_images.PYTHON_LAYER], tag=salt, salt=salt)
        OsvSnapshot.objects.create(source=f"grown-{salt}.zip", status="failed", error="x")


@pytest.mark.parametrize("endpoint", LISTS)
def test_list_query_count_does_not_grow_with_rows(
    scans, client_for, endpoint, django_assert_max_num_queries
):
    client = client_for(scans["reader"])
    client.get("/api/v1/me/")  # the token's first use records it: not part of the count
    _grow(scans, 1)
    with django_assert_max_num_queries(12) as few:
        assert client.get(endpoint).status_code == 200
    _grow(scans, 4)
    with django_assert_max_num_queries(len(few.captured_queries)) as many:
        response = client.get(endpoint)
    assert response.status_code == 200
    assert len(response.json()["results"]) >= 6
    assert len(many.captured_queries) == len(few.captured_queries)


# --- the schema, with data behind every scanning operation -------------------------------------

schema = schemathesis.openapi.from_wsgi("/api/schema/", application).include(
    path_regex=r"^/api/v1/(scan-reports|components|findings|osv-snapshots|tags)/"
)


@pytest.fixture
def superuser_token(scans):
    """A superuser's token, with scanned images, findings and a snapshot to find."""
    _, secret = account_services.access_token_create(user=scans["superuser"], name="fuzz")
    return secret


@pytest.fixture
def existing_ids(scans):
    """An existing object per path with an id, so that every operation answers with data
    (the schemathesis test of the whole API tries random ids)."""
    report = scans["private_report"]
    ids = {
        "scan-reports": report.pk,
        "components": report.components.first().pk,
        "findings": report.findings.first().pk,
        "osv-snapshots": OsvSnapshot.objects.get(is_active=True).pk,
        "tags": report.manifest.tags.get().pk,
    }
    return {f"/api/v1/{name}/{{id}}/": pk for name, pk in ids.items()} | {
        "/api/v1/scan-reports/{id}/retry/": report.pk
    }


@schema.parametrize()
@hypothesis_settings(
    max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
def test_the_scanning_api_conforms_to_its_schema_with_data(
    case,
    superuser_token,
    existing_ids,
    keep_test_connection,  # noqa: F811 - the fixture imported above
):
    if case.path in existing_ids:
        case.path_parameters = {**case.path_parameters, "id": existing_ids[case.path]}
    case.call_and_validate(headers={"Authorization": f"Bearer {superuser_token}"}, checks=CHECKS)
