"""Registry hygiene: expiring abandoned uploads, garbage collection, and where blob pulls go
(sendfile-able local files, or a redirect to a presigned URL for S3-compatible storage)."""

import os
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.core.files.storage import FileSystemStorage, Storage
from django.core.management import call_command
from django.http import FileResponse
from django.utils import timezone

from registry_portal.registry import services, storage, tasks
from registry_portal.registry.models import Blob, Manifest, Upload

from .helpers import V2, errors, image_manifest, sha256

pytestmark = V2


# --- Upload expiry ---------------------------------------------------------------------------


def test_idle_uploads_expire_and_live_ones_stay(reg, repo, settings):
    settings.REGISTRY_UPLOAD_TTL_HOURS = 1
    stale = reg.post("/v2/acme/app/blobs/uploads/")["Location"]
    live = reg.post("/v2/acme/app/blobs/uploads/")["Location"]
    reg.patch(stale, b"partial")
    stale_id = stale.rsplit("/", 1)[1]
    Upload.objects.filter(pk=stale_id).update(updated_at=timezone.now() - timedelta(hours=2))
    stray = storage.uploads_dir() / "single-leftover"
    stray.write_bytes(b"from a killed request")
    old = time.time() - 3 * 3600
    os.utime(stray, (old, old))

    assert services.uploads_expire() == 2
    assert not stray.exists()
    assert not storage.upload_path(stale_id).exists()
    assert errors(reg.get(stale)) == ["BLOB_UPLOAD_UNKNOWN"]
    assert reg.get(live).status_code == 204


def test_expire_command_and_task(reg, repo, settings):
    settings.REGISTRY_UPLOAD_TTL_HOURS = 0
    reg.post("/v2/acme/app/blobs/uploads/")
    out = StringIO()
    call_command("registry_expire_uploads", stdout=out)
    assert "Removed 1 upload(s)" in out.getvalue()
    reg.post("/v2/acme/app/blobs/uploads/")
    assert tasks.expire_uploads.apply().get() == 1
    assert not Upload.objects.exists()


# --- Garbage collection ----------------------------------------------------------------------


@pytest.fixture
def orphaned(reg, repo):
    """A tagged image, and a deleted one whose manifest and private layer nothing uses."""
    config = b'{"config": 1}'
    shared, private = b"shared layer", b"private layer"
    for blob in (config, shared, private):
        reg.push_blob("acme/app", blob)
    kept = image_manifest(config, [shared])
    dropped = image_manifest(config, [shared, private])
    reg.push_manifest("acme/app", "kept", kept)
    reg.push_manifest("acme/app", "dropped", dropped)
    assert reg.delete(f"/v2/acme/app/manifests/{sha256(dropped)}").status_code == 202
    assert reg.delete(f"/v2/acme/app/blobs/{sha256(private)}").status_code == 202
    return {"kept": kept, "dropped": dropped, "private": private, "shared": shared}


def test_gc_dry_run_reports_and_changes_nothing(orphaned):
    report = services.garbage_collect(dry_run=True, grace=timedelta(0))
    assert report.manifests == [sha256(orphaned["dropped"])]
    assert report.blobs == [sha256(orphaned["private"])]
    assert report.bytes_freed == len(orphaned["private"])
    assert Manifest.objects.count() == 2
    assert storage.blob_exists(sha256(orphaned["private"]))


def test_gc_removes_what_nothing_references(reg, orphaned):
    report = services.garbage_collect(grace=timedelta(0))
    assert report.manifests == [sha256(orphaned["dropped"])]
    assert report.blobs == [sha256(orphaned["private"])]
    assert not storage.blob_exists(sha256(orphaned["private"]))
    assert not Blob.objects.filter(digest=sha256(orphaned["private"])).exists()
    assert reg.get("/v2/acme/app/manifests/kept").content == orphaned["kept"]
    assert reg.get(f"/v2/acme/app/blobs/{sha256(orphaned['shared'])}").status_code == 200
    assert services.garbage_collect(grace=timedelta(0)).blobs == []


def test_gc_keeps_anything_younger_than_the_grace_period(orphaned):
    report = services.garbage_collect(grace=timedelta(hours=1))
    assert report.manifests == report.blobs == []


def test_gc_keeps_children_of_an_index_in_a_repository(reg, repo):
    config = b"{}cfg"
    reg.push_blob("acme/app", config)
    child = image_manifest(config)
    reg.push_manifest("acme/app", sha256(child), child)
    from .helpers import index_manifest

    reg.push_manifest("acme/app", "multi", index_manifest([child]))
    # Someone deletes the child by digest while the index still names it.
    reg.delete(f"/v2/acme/app/manifests/{sha256(child)}")
    assert services.garbage_collect(grace=timedelta(0)).manifests == []


def test_a_blob_pushed_again_after_collection_is_whole(reg, orphaned):
    services.garbage_collect(grace=timedelta(0))
    digest = reg.push_blob("acme/app", orphaned["private"])
    assert reg.get(f"/v2/acme/app/blobs/{digest}").getvalue() == orphaned["private"]


def test_gc_command(orphaned):
    out = StringIO()
    call_command("registry_gc", "--dry-run", "--grace-minutes=0", stdout=out)
    assert "Would remove 1 manifest(s) and 1 blob(s)" in out.getvalue()
    assert Manifest.objects.count() == 2
    call_command("registry_gc", "--grace-minutes=0", stdout=out)
    assert "Removed 1 manifest(s) and 1 blob(s)" in out.getvalue()
    assert Manifest.objects.count() == 1


# --- Where pulls go --------------------------------------------------------------------------


class PresigningStorage(Storage):
    """Stands for django-storages' S3Storage: remote (no path), presigned URLs."""

    def url(self, name, parameters=None, expire=None, http_method=None):
        return f"https://bucket.example/{name}?X-Amz-Expires={expire}&X-Amz-Signature=sig"


class PlainUrlStorage(Storage):
    def url(self, name):
        return f"https://cdn.example/{name}"


def test_redirect_decision(tmp_path):
    s3, cdn, local = PresigningStorage(), PlainUrlStorage(), FileSystemStorage(tmp_path)
    name = "sha256/ab/abcd"
    decide = storage.redirect_url_for
    assert decide(storage=s3, name=name, mode="auto", expire=60) == (
        "https://bucket.example/sha256/ab/abcd?X-Amz-Expires=60&X-Amz-Signature=sig"
    )
    assert decide(storage=s3, name=name, mode="false", expire=60) is None
    assert decide(storage=local, name=name, mode="auto", expire=60) is None
    assert decide(storage=cdn, name=name, mode="auto", expire=60) is None
    assert decide(storage=cdn, name=name, mode="true", expire=60) == (
        "https://cdn.example/sha256/ab/abcd"
    )


def test_blob_pull_redirects_to_the_presigned_url(reg, repo, monkeypatch):
    digest = reg.push_blob("acme/app", b"in the bucket")
    monkeypatch.setattr(storage, "blob_storage", PresigningStorage)
    response = reg.get(f"/v2/acme/app/blobs/{digest}")
    assert response.status_code == 307
    assert response["Location"].startswith(f"https://bucket.example/{storage.blob_name(digest)}")
    assert response["Docker-Content-Digest"] == digest
    assert response["Docker-Distribution-API-Version"] == "registry/2.0"


def test_local_blob_pull_is_a_file_response_that_gunicorn_can_sendfile(reg, repo):
    digest = reg.push_blob("acme/app", b"local bytes")
    response = reg.get(f"/v2/acme/app/blobs/{digest}")
    assert response.status_code == 200
    assert isinstance(response, FileResponse)
    assert response.block_size == storage.CHUNK_SIZE
    assert response.getvalue() == b"local bytes"
