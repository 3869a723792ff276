"""The OSV store: zip import into snapshots, URL sync with ETags, re-matching stored images."""

from __future__ import annotations

import http.server
import threading
import zipfile

import pytest
from django.core.management import CommandError, call_command

from scanning import services, tasks
from scanning.models import Finding, OsvAffected, OsvSnapshot, OsvVulnerability, ScanReport
from tests.scanning import db_images
from tests.scanning.db_images import osv_record, osv_zip

pytestmark = pytest.mark.django_db


@pytest.fixture
def rematches(outbox_published):
    """The re-match an import queues: an outbox job, recorded when dispatched, not sent."""
    return outbox_published


def test_import_makes_an_active_snapshot_and_queues_the_rematch(
    rematches, django_capture_on_commit_callbacks
):
    records = [
        *db_images.STANDARD_RECORDS,
        osv_record("GONE-1", "PyPI", "x", [{"introduced": "0"}], withdrawn="2024-02-01T00:00:00Z"),
    ]
    archive = osv_zip(records, extra={"BAD-1.json": b"{not json", "BAD-2.json": b'{"id": 3}'})
    with django_capture_on_commit_callbacks(execute=True):
        snapshot = services.osv_import_zip(path_or_file=archive, source="all.zip")
    assert (snapshot.status, snapshot.is_active, snapshot.record_count) == ("ready", True, 4)
    assert snapshot.malformed_count == 2
    assert [entry.split(":")[0] for entry in snapshot.malformed] == ["BAD-1.json", "BAD-2.json"]
    assert not OsvVulnerability.objects.filter(osv_id="GONE-1").exists()
    assert rematches.args(".rematch_task") == [[snapshot.pk]]
    requests_row = OsvAffected.objects.get(vulnerability__osv_id="GHSA-aaaa-bbbb-cccc")
    assert (requests_row.ecosystem_base, requests_row.name) == ("PyPI", "requests")

    second = services.osv_import_zip(path_or_file=osv_zip(records), source="again.zip")
    snapshot.refresh_from_db()
    assert second.is_active and not snapshot.is_active


def test_severity_comes_from_vectors_words_then_aliases():
    records = [
        osv_record(
            "CVE-1",
            "PyPI",
            "a",
            [{"introduced": "0"}],
            severity=[{"type": "CVSS_V3", "score": db_images.CRITICAL_VECTOR}],
        ),
        osv_record(
            "GHSA-1", "PyPI", "a", [{"introduced": "0"}], database_specific={"severity": "LOW"}
        ),
        osv_record("PYSEC-1", "PyPI", "a", [{"introduced": "0"}], aliases=["CVE-1"]),
        osv_record("PYSEC-2", "PyPI", "a", [{"introduced": "0"}], aliases=["NOWHERE-1"]),
    ]
    services.osv_import_zip(path_or_file=osv_zip(records), source="s.zip")
    found = {
        v.osv_id: (v.severity, v.score, v.severity_source) for v in OsvVulnerability.objects.all()
    }
    assert found == {
        "CVE-1": ("critical", 9.8, "CVSS_V3"),
        "GHSA-1": ("low", None, "database_specific"),
        "PYSEC-1": ("critical", 9.8, "CVE-1:CVSS_V3"),
        "PYSEC-2": ("unknown", None, "none"),
    }


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"this is not a zip", "not a readable zip"),
        (b"", "not a readable zip"),
    ],
)
def test_a_corrupt_zip_fails_the_snapshot_and_keeps_the_active_one(data, reason, tmp_path):
    good = services.osv_import_zip(
        path_or_file=osv_zip(db_images.STANDARD_RECORDS), source="good.zip"
    )
    path = tmp_path / "bad.zip"
    path.write_bytes(data)
    bad = services.osv_import_zip(path_or_file=str(path), source="bad.zip")
    assert bad.status == "failed" and reason in bad.error
    assert not bad.is_active and bad.record_count == 0
    good.refresh_from_db()
    assert good.is_active


def test_a_zip_damaged_midway_leaves_nothing_half_imported(tmp_path):
    records = [osv_record(f"R-{n}", "PyPI", f"p{n}", [{"introduced": "0"}]) for n in range(2500)]
    data = bytearray(osv_zip(records).getvalue())
    # Corrupt the compressed data of an entry near the end (the central directory survives).
    with zipfile.ZipFile(osv_zip(records)) as archive:
        victim = archive.getinfo("R-2400.json")
    data[victim.header_offset + 60 : victim.header_offset + 90] = b"\x00" * 30
    path = tmp_path / "damaged.zip"
    path.write_bytes(bytes(data))
    snapshot = services.osv_import_zip(path_or_file=str(path), source="damaged.zip")
    assert snapshot.status == "failed", snapshot.error
    assert "R-2400.json" in snapshot.error
    assert OsvVulnerability.objects.filter(snapshot=snapshot).count() == 0


def test_a_zip_of_only_malformed_entries_fails():
    snapshot = services.osv_import_zip(
        path_or_file=osv_zip([], extra={"A.json": b"[]"}), source="junk.zip"
    )
    assert snapshot.status == "failed"
    assert snapshot.error == "the archive holds no valid OSV record (1 malformed entries)"


def test_the_osv_import_command(tmp_path, capsys):
    path = tmp_path / "all.zip"
    path.write_bytes(osv_zip(db_images.STANDARD_RECORDS, extra={"X.json": b"1"}).getvalue())
    call_command("osv_import", str(path))
    out, err = capsys.readouterr()
    assert "4 records, 1 malformed entries skipped" in out
    assert "X.json" in err
    (tmp_path / "bad.zip").write_bytes(b"nope")
    with pytest.raises(CommandError, match="not a readable zip"):
        call_command("osv_import", str(tmp_path / "bad.zip"))


# --- URL sync --------------------------------------------------------------------------------


class _OsvHandler(http.server.BaseHTTPRequestHandler):
    body = b""
    etag = '"v1"'
    status = 200
    seen: list[str | None] = []

    def do_GET(self):  # noqa: N802 - the http.server API
        type(self).seen.append(self.headers.get("If-None-Match"))
        if self.status != 200:
            self.send_response(self.status)
            self.end_headers()
            return
        if self.headers.get("If-None-Match") == self.etag:
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("ETag", self.etag)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def osv_server():
    handler = type("Handler", (_OsvHandler,), {"seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/all.zip"
    server.shutdown()
    server.server_close()


def test_url_sync_is_conditional_on_the_etag(osv_server, rematches):
    handler, url = osv_server
    handler.body = osv_zip(db_images.STANDARD_RECORDS).getvalue()
    first = services.osv_sync_url(url=url)
    assert (first.status, first.etag, first.record_count) == ("ready", '"v1"', 4)
    assert services.osv_sync_url(url=url) is None  # 304: no new snapshot
    assert handler.seen == [None, '"v1"']
    assert OsvSnapshot.objects.count() == 1

    handler.etag = '"v2"'
    handler.body = osv_zip(db_images.STANDARD_RECORDS[:1]).getvalue()
    second = services.osv_sync_url(url=url)
    assert (second.etag, second.record_count, second.is_active) == ('"v2"', 1, True)


def test_url_sync_failures_are_recorded(osv_server, settings):
    handler, url = osv_server
    handler.status = 500
    failed = services.osv_sync_url(url=url)
    assert (failed.status, failed.error) == ("failed", f"HTTP 500 from {url}")
    handler.status = 200
    handler.body = b"x" * 2000
    settings.OSV_MAX_DOWNLOAD_BYTES = 1000
    assert "OSV_MAX_DOWNLOAD_BYTES" in services.osv_sync_url(url=url).error
    unreachable = services.osv_sync_url(url="http://127.0.0.1:9/all.zip", timeout=2)
    assert unreachable.error.startswith("download failed")
    assert not OsvSnapshot.objects.filter(is_active=True).exists()


def test_the_sync_task_is_off_without_a_url(settings):
    settings.OSV_SYNC_URL = ""
    assert tasks.osv_sync_task() is None


def test_the_sync_task_and_command_use_the_setting(osv_server, settings, rematches, capsys):
    handler, url = osv_server
    handler.body = osv_zip(db_images.STANDARD_RECORDS).getvalue()
    settings.OSV_SYNC_URL = url
    snapshot_id = tasks.osv_sync_task()
    assert OsvSnapshot.objects.get(pk=snapshot_id).record_count == 4
    call_command("osv_sync")
    assert "unchanged (304)" in capsys.readouterr().out


# --- re-matching -----------------------------------------------------------------------------


def test_a_new_snapshot_rematches_stored_images_without_reading_layers(
    make_org, make_repo, monkeypatch
):
    repository = make_repo(make_org())
    services.osv_import_zip(path_or_file=osv_zip(db_images.STANDARD_RECORDS), source="v1.zip")
    manifest = db_images.push_image(repository, [db_images.BASE_LAYER, db_images.PYTHON_LAYER])
    report = services.scan_manifest(manifest_id=manifest.pk)
    assert report.vulnerability_counts["critical"] == 1

    def no_layer_reads(**kwargs):
        raise AssertionError("a re-match must not read layers")

    monkeypatch.setattr(services, "image_inventory", no_layer_reads)
    newer = [
        osv_record(
            "DEBIAN-CVE-2024-0001",
            "Debian:12",
            "openssl",
            [{"introduced": "0"}, {"fixed": "3.0.0"}],  # now fixed before our version
        ),
        osv_record(
            "PYSEC-9",
            "PyPI",
            "requests",
            [{"introduced": "0"}, {"last_affected": "2.25.0"}],
            severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}],
        ),
    ]
    snapshot = services.osv_import_zip(path_or_file=osv_zip(newer), source="v2.zip")
    assert tasks.rematch_task(snapshot.pk) == 1
    report.refresh_from_db()
    assert report.snapshot == snapshot
    assert report.vulnerability_counts == {
        "critical": 0,
        "high": 1,
        "medium": 0,
        "low": 0,
        "unknown": 0,
    }
    assert list(Finding.objects.values_list("vulnerability__osv_id", "fixed_version")) == [
        ("PYSEC-9", "")
    ]
    stale = services.osv_import_zip(path_or_file=osv_zip(newer), source="v3.zip")
    assert tasks.rematch_task(snapshot.pk) == 0  # no longer the active snapshot
    assert ScanReport.objects.get(pk=report.pk).snapshot_id == snapshot.pk != stale.pk
