"""The bytes on disk are always the bytes that were hashed: one request at a time per upload,
and a stored blob's bytes are never replaced."""

import hashlib

from registry_portal.registry import storage
from registry_portal.registry.models import Blob

from .helpers import V2, errors, sha256

pytestmark = V2

BLOB = bytes(range(256)) * 8


def test_a_second_writer_of_the_same_upload_is_refused_and_changes_nothing(reg, repo):
    location = reg.post("/v2/acme/app/blobs/uploads/")["Location"]
    first = reg.patch(location, BLOB[:1000], headers={"Content-Range": "0-999"})
    upload_id = first["Docker-Upload-UUID"]
    path = storage.upload_path(upload_id)

    # Another request is in the middle of writing this upload (it holds the upload).
    with storage.upload_locked(path):
        racing = reg.patch(first["Location"], b"X" * 500, headers={"Content-Range": "1000-1499"})
        finishing = reg.put(f"{first['Location']}?digest={sha256(b'X' * 1500)}")
    assert racing.status_code == 416 and errors(racing) == ["RANGE_INVALID"]
    assert finishing.status_code == 416
    assert path.read_bytes() == BLOB[:1000]  # untouched

    rest = reg.patch(
        first["Location"], BLOB[1000:], headers={"Content-Range": f"1000-{len(BLOB) - 1}"}
    )
    done = reg.put(f"{rest['Location']}?digest={sha256(BLOB)}")
    assert done.status_code == 201
    assert reg.get(f"/v2/acme/app/blobs/{sha256(BLOB)}").getvalue() == BLOB


def test_stored_bytes_are_never_replaced(reg, repo, tmp_path):
    digest = sha256(BLOB)
    assert reg.post(f"/v2/acme/app/blobs/uploads/?digest={digest}", BLOB).status_code == 201
    impostor = storage.upload_file_create("impostor")
    impostor.write_bytes(b"not the same bytes")
    storage.blob_commit(source=impostor, digest=digest)
    with storage.blob_open(digest) as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == digest.partition(":")[2]
    assert not impostor.exists()
    assert Blob.objects.filter(digest=digest).count() == 1
