"""/v2/ blobs and uploads: single-request, monolithic, chunked, streamed, resumed, mounted,
served with ranges, deleted; and every way a client can get it wrong."""

import hashlib
import io

import pytest

from registry_portal.registry import services, storage
from registry_portal.registry.models import Blob, RepositoryBlob, Upload
from tests import factories

from .helpers import V2, Registry, basic, errors, sha256

pytestmark = V2

BLOB = bytes(range(256)) * 8  # 2048 bytes


def start(reg, name="acme/app"):
    response = reg.post(f"/v2/{name}/blobs/uploads/")
    assert response.status_code == 202, response.content
    return response


def test_post_starts_an_upload_with_location_range_and_uuid(reg, repo):
    response = start(reg)
    upload_id = response["Docker-Upload-UUID"]
    assert response["Location"] == f"/v2/acme/app/blobs/uploads/{upload_id}"
    assert response["Range"] == "0-0"
    assert response["Docker-Distribution-API-Version"] == "registry/2.0"
    assert Upload.objects.filter(pk=upload_id, repository=repo).exists()


def test_post_without_trailing_slash_is_the_same_endpoint(reg, repo):
    assert reg.post("/v2/acme/app/blobs/uploads").status_code == 202


def test_single_request_upload_with_digest(reg, repo):
    digest = sha256(BLOB)
    response = reg.post(f"/v2/acme/app/blobs/uploads/?digest={digest}", BLOB)
    assert response.status_code == 201
    assert response["Location"] == f"/v2/acme/app/blobs/{digest}"
    assert response["Docker-Content-Digest"] == digest
    assert reg.get(f"/v2/acme/app/blobs/{digest}").getvalue() == BLOB


def test_single_request_upload_with_wrong_digest_keeps_nothing(reg, repo):
    wrong = sha256(b"other")
    response = reg.post(f"/v2/acme/app/blobs/uploads/?digest={wrong}", BLOB)
    assert response.status_code == 400
    assert errors(response) == ["DIGEST_INVALID"]
    assert not Blob.objects.exists()
    assert list(storage.uploads_dir().iterdir()) == []


def test_single_request_upload_with_invalid_digest(reg, repo):
    response = reg.post("/v2/acme/app/blobs/uploads/?digest=sha256:abc", BLOB)
    assert errors(response) == ["DIGEST_INVALID"]


def test_monolithic_post_then_put(reg, repo):
    location = start(reg)["Location"]
    digest = sha256(BLOB)
    response = reg.put(f"{location}?digest={digest}", BLOB)
    assert response.status_code == 201
    assert response["Location"] == f"/v2/acme/app/blobs/{digest}"
    assert response["Docker-Content-Digest"] == digest
    assert not Upload.objects.exists()
    blob = Blob.objects.get(digest=digest)
    assert blob.size == len(BLOB)
    assert RepositoryBlob.objects.filter(repository=repo, blob=blob).exists()
    path = storage.local_path(storage.blob_storage(), storage.blob_name(digest))
    assert path.endswith(f"sha256/{digest[7:9]}/{digest[7:]}")


def test_chunked_upload_with_content_range(reg, repo):
    location = start(reg)["Location"]
    first = reg.patch(location, BLOB[:1000], headers={"Content-Range": "0-999"})
    assert first.status_code == 202
    assert first["Range"] == "0-999"
    assert first["Docker-Upload-UUID"]
    second = reg.patch(first["Location"], BLOB[1000:1500], headers={"Content-Range": "1000-1499"})
    assert second.status_code == 202
    assert second["Range"] == "0-1499"
    done = reg.put(f"{second['Location']}?digest={sha256(BLOB)}", BLOB[1500:])
    assert done.status_code == 201
    assert reg.get(f"/v2/acme/app/blobs/{sha256(BLOB)}").getvalue() == BLOB


def test_streamed_patch_without_content_length(reg, repo):
    """docker and podman: Transfer-Encoding: chunked, no Content-Length, no Content-Range."""
    location = start(reg)["Location"]
    response = reg.patch_streamed(location, BLOB)
    assert response.status_code == 202, response.content
    assert response["Range"] == f"0-{len(BLOB) - 1}"
    done = reg.put(f"{response['Location']}?digest={sha256(BLOB)}")
    assert done.status_code == 201
    assert Blob.objects.get(digest=sha256(BLOB)).size == len(BLOB)


def test_chunked_body_without_a_terminated_input_is_refused(reg, repo):
    location = start(reg)["Location"]
    response = reg.request(
        "PATCH",
        location,
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": io.BytesIO(BLOB)},
    )
    assert response.status_code == 411
    assert errors(response) == ["BLOB_UPLOAD_INVALID"]


def test_out_of_order_chunk_is_416_with_the_current_range(reg, repo):
    location = start(reg)["Location"]
    reg.patch(location, BLOB[:100], headers={"Content-Range": "0-99"})
    response = reg.patch(location, BLOB[200:300], headers={"Content-Range": "200-299"})
    assert response.status_code == 416
    assert errors(response) == ["RANGE_INVALID"]
    assert response["Range"] == "0-99"
    assert response["Location"] == location
    # Nothing was written: the upload continues at 100.
    assert reg.get(location)["Range"] == "0-99"


def test_content_range_disagreeing_with_length_is_refused(reg, repo):
    location = start(reg)["Location"]
    response = reg.patch(location, BLOB[:10], headers={"Content-Range": "0-99"})
    assert errors(response) == ["SIZE_INVALID"]
    malformed = reg.patch(location, BLOB[:10], headers={"Content-Range": "9-0"})
    assert errors(malformed) == ["RANGE_INVALID"]


def test_upload_status_and_resume_after_an_interrupted_patch(reg, repo):
    """A client killed mid-chunk: the bytes that arrived count, GET says where to resume."""
    location = start(reg)["Location"]
    response = reg.request(
        "PATCH",
        location,
        CONTENT_LENGTH=str(len(BLOB)),
        **{"wsgi.input": io.BytesIO(BLOB[:700])},  # the connection dropped after 700 bytes
    )
    assert errors(response) == ["SIZE_INVALID"]
    status = reg.get(location)
    assert status.status_code == 204
    assert status["Range"] == "0-699"
    assert status["Docker-Upload-UUID"]
    resumed = reg.patch(location, BLOB[700:], headers={"Content-Range": f"700-{len(BLOB) - 1}"})
    assert resumed.status_code == 202
    assert reg.put(f"{location}?digest={sha256(BLOB)}").status_code == 201
    assert reg.get(f"/v2/acme/app/blobs/{sha256(BLOB)}").getvalue() == BLOB


def test_upload_continues_in_another_process(reg, repo, monkeypatch):
    """The hasher is not in this process (another worker, or a restart): re-read the file."""
    location = start(reg)["Location"]
    reg.patch(location, BLOB[:1024])
    monkeypatch.setattr(services, "_hashers", services._HasherCache())
    reg.patch(location, BLOB[1024:1536])
    monkeypatch.setattr(services, "_hashers", services._HasherCache())
    assert reg.put(f"{location}?digest={sha256(BLOB)}", BLOB[1536:]).status_code == 201


def test_upload_whose_file_was_corrupted_is_refused_not_stored(reg, repo, monkeypatch):
    location = start(reg)["Location"]
    reg.patch(location, BLOB[:1024])
    upload = Upload.objects.get()
    storage.upload_path(upload.pk).write_bytes(b"x" * 1024)
    monkeypatch.setattr(services, "_hashers", services._HasherCache())
    response = reg.put(f"{location}?digest={sha256(BLOB)}", BLOB[1024:])
    assert errors(response) == ["BLOB_UPLOAD_INVALID"]
    assert not Blob.objects.exists()


def test_digest_mismatch_keeps_nothing(reg, repo):
    location = start(reg)["Location"]
    response = reg.put(f"{location}?digest={sha256(b'something else')}", BLOB)
    assert response.status_code == 400
    assert errors(response) == ["DIGEST_INVALID"]
    assert not Blob.objects.exists()
    assert not Upload.objects.exists()
    assert list(storage.uploads_dir().iterdir()) == []
    assert reg.get(location).status_code == 404


def test_truncated_upload_fails_its_digest(reg, repo):
    location = start(reg)["Location"]
    reg.patch(location, BLOB[:1000])
    response = reg.put(f"{location}?digest={sha256(BLOB)}")
    assert errors(response) == ["DIGEST_INVALID"]
    assert not Blob.objects.exists()


def test_put_without_or_with_a_bad_digest(reg, repo):
    location = start(reg)["Location"]
    assert errors(reg.put(location, BLOB)) == ["DIGEST_INVALID"]
    assert errors(reg.put(f"{location}?digest=md5:abcd", BLOB)) == ["DIGEST_INVALID"]
    upper = "sha256:" + hashlib.sha256(BLOB).hexdigest().upper()
    assert errors(reg.put(f"{location}?digest={upper}", BLOB)) == ["DIGEST_INVALID"]


def test_sha512_digest(reg, repo):
    location = start(reg)["Location"]
    reg.patch(location, BLOB[:100])
    digest = "sha512:" + hashlib.sha512(BLOB).hexdigest()
    response = reg.put(f"{location}?digest={digest}", BLOB[100:])
    assert response.status_code == 201
    assert response["Docker-Content-Digest"] == digest
    assert reg.get(f"/v2/acme/app/blobs/{digest}").getvalue() == BLOB


def test_zero_byte_blob(reg, repo):
    digest = sha256(b"")
    location = start(reg)["Location"]
    assert reg.put(f"{location}?digest={digest}").status_code == 201
    head = reg.head(f"/v2/acme/app/blobs/{digest}")
    assert head.status_code == 200
    assert head["Content-Length"] == "0"
    assert reg.get(f"/v2/acme/app/blobs/{digest}").getvalue() == b""


def test_cancel_upload(reg, repo):
    location = start(reg)["Location"]
    reg.patch(location, BLOB[:10])
    response = reg.delete(location)
    assert response.status_code == 204
    assert not Upload.objects.exists()
    assert reg.get(location).status_code == 404
    assert errors(reg.patch(location, BLOB)) == ["BLOB_UPLOAD_UNKNOWN"]


def test_unknown_or_malformed_upload_ids(reg, repo):
    for upload_id in ("0b5a3c5e-0000-4000-8000-000000000000", "not-a-uuid"):
        response = reg.get(f"/v2/acme/app/blobs/uploads/{upload_id}")
        assert response.status_code == 404
        assert errors(response) == ["BLOB_UPLOAD_UNKNOWN"]


def test_upload_of_another_repository_is_unknown_here(reg, repo, org):
    factories.make_repo(org, "other")
    location = start(reg)["Location"]
    other = location.replace("acme/app", "acme/other")
    assert errors(reg.get(other)) == ["BLOB_UPLOAD_UNKNOWN"]


# --- Pull ------------------------------------------------------------------------------------


@pytest.fixture
def pushed(reg, repo):
    return reg.push_blob("acme/app", BLOB)


def test_get_and_head_blob(reg, pushed):
    response = reg.get(f"/v2/acme/app/blobs/{pushed}")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Length"] == str(len(BLOB))
    assert response["Docker-Content-Digest"] == pushed
    assert response.getvalue() == BLOB
    head = reg.head(f"/v2/acme/app/blobs/{pushed}")
    assert head.status_code == 200
    assert head["Content-Length"] == str(len(BLOB))
    assert head["Docker-Content-Digest"] == pushed
    assert head.content == b""


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=500-1499", 500, 1499),
        ("bytes=500-", 500, len(BLOB) - 1),
        ("bytes=-500", len(BLOB) - 500, len(BLOB) - 1),
        ("bytes=1000-999999", 1000, len(BLOB) - 1),
        ("bytes=0-0", 0, 0),
    ],
)
def test_range_requests(reg, pushed, header, first, last):
    response = reg.get(f"/v2/acme/app/blobs/{pushed}", HTTP_RANGE=header)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {first}-{last}/{len(BLOB)}"
    assert response["Content-Length"] == str(last - first + 1)
    assert response.getvalue() == BLOB[first : last + 1]


@pytest.mark.parametrize(
    "header",
    ["bytes=5000-5999", "bytes=2048-", "bytes=500-0", "bytes=-0", "bytes=a-b", "items=0-1"],
)
def test_unsatisfiable_ranges_are_416(reg, pushed, header):
    response = reg.get(f"/v2/acme/app/blobs/{pushed}", HTTP_RANGE=header)
    assert response.status_code == 416
    assert errors(response) == ["RANGE_INVALID"]
    assert response["Content-Range"] == f"bytes */{len(BLOB)}"


def test_unknown_blob(reg, repo):
    digest = sha256(b"never pushed")
    response = reg.get(f"/v2/acme/app/blobs/{digest}")
    assert response.status_code == 404
    assert errors(response) == ["BLOB_UNKNOWN"]
    head = reg.head(f"/v2/acme/app/blobs/{digest}")
    assert head.status_code == 404
    assert head.content == b""


def test_invalid_blob_digest(reg, repo):
    assert errors(reg.get("/v2/acme/app/blobs/sha256:xyz")) == ["DIGEST_INVALID"]


def test_blob_of_another_repository_is_unknown_here(reg, org, pushed):
    factories.make_repo(org, "other")
    assert errors(reg.get(f"/v2/acme/other/blobs/{pushed}")) == ["BLOB_UNKNOWN"]


def test_delete_blob(reg, pushed, settings):
    response = reg.delete(f"/v2/acme/app/blobs/{pushed}")
    assert response.status_code == 202
    assert reg.get(f"/v2/acme/app/blobs/{pushed}").status_code == 404
    assert errors(reg.delete(f"/v2/acme/app/blobs/{pushed}")) == ["BLOB_UNKNOWN"]
    settings.REGISTRY_DELETE_ENABLED = False
    disabled = reg.delete(f"/v2/acme/app/blobs/{pushed}")
    assert disabled.status_code == 405
    assert errors(disabled) == ["UNSUPPORTED"]


# --- Mount -----------------------------------------------------------------------------------


def test_mount_from_a_repository_the_caller_may_pull(reg, pushed, org):
    factories.make_repo(org, "target")
    response = reg.post(f"/v2/acme/target/blobs/uploads/?mount={pushed}&from=acme/app")
    assert response.status_code == 201
    assert response["Location"] == f"/v2/acme/target/blobs/{pushed}"
    assert response["Docker-Content-Digest"] == pushed
    assert reg.get(f"/v2/acme/target/blobs/{pushed}").getvalue() == BLOB
    assert Blob.objects.count() == 1


def test_mount_falls_back_to_an_upload_when_the_source_lacks_the_blob(reg, repo):
    missing = sha256(b"missing")
    for source in ("acme/app", "acme/nowhere", "NOT/valid", "acme/app"):
        response = reg.post(f"/v2/acme/app/blobs/uploads/?mount={missing}&from={source}")
        assert response.status_code == 202
        assert "/blobs/uploads/" in response["Location"]
    no_source = reg.post(f"/v2/acme/app/blobs/uploads/?mount={missing}")
    assert no_source.status_code == 202


def test_mount_needs_pull_on_the_source(client, pushed, owner, org):
    """A user who may push to their own namespace cannot mount from a repository they cannot
    pull: they get an upload instead, not the blob and not an error."""
    outsider = factories.make_user("mallory")
    registry = Registry(client, basic(outsider))
    response = registry.post(f"/v2/mallory/stash/blobs/uploads/?mount={pushed}&from=acme/app")
    assert response.status_code == 202
    assert registry.get(f"/v2/mallory/stash/blobs/{pushed}").status_code == 404


class CutOffInput:
    """A chunked request body whose client disappears after ``limit`` bytes."""

    def __init__(self, data: bytes, limit: int):
        self._data, self._limit, self._position = data, limit, 0

    def read(self, size=-1):
        if self._position >= self._limit:
            raise OSError("No more data: the client went away")
        chunk = self._data[self._position : min(self._position + size, self._limit)]
        self._position += len(chunk)
        return chunk

    def readline(self, size=-1):
        return self.read(size)


def test_killed_client_mid_streamed_patch_resumes_and_never_serves_a_corrupt_blob(reg, repo):
    location = start(reg)["Location"]
    response = reg.request(
        "PATCH",
        location,
        CONTENT_LENGTH="",
        HTTP_TRANSFER_ENCODING="chunked",
        **{"wsgi.input": CutOffInput(BLOB, 1200), "wsgi.input_terminated": True},
    )
    assert response.status_code == 400
    assert errors(response) == ["SIZE_INVALID"]
    assert reg.get(f"/v2/acme/app/blobs/{sha256(BLOB)}").status_code == 404
    status = reg.get(location)
    assert status["Range"] == "0-1199"
    assert reg.patch_streamed(location, BLOB[1200:]).status_code == 202
    assert reg.put(f"{location}?digest={sha256(BLOB)}").status_code == 201
    assert reg.get(f"/v2/acme/app/blobs/{sha256(BLOB)}").getvalue() == BLOB


def test_killed_client_mid_single_request_upload_keeps_nothing(reg, repo):
    response = reg.request(
        "POST",
        f"/v2/acme/app/blobs/uploads/?digest={sha256(BLOB)}",
        CONTENT_LENGTH="",
        **{"wsgi.input": CutOffInput(BLOB, 1000), "wsgi.input_terminated": True},
    )
    assert errors(response) == ["SIZE_INVALID"]
    assert not Blob.objects.exists()
    assert list(storage.uploads_dir().iterdir()) == []
