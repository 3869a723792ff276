"""A client killed in the middle of a streamed blob upload.

A raw socket starts ``PATCH <upload>`` with ``Transfer-Encoding: chunked`` (as docker,
podman and skopeo send it), writes half of the blob, and dies: a FIN (``close``) or a reset
(``SO_LINGER 0``). Then the upload must be resumable (``GET`` answers 204 with the
``Range`` the server kept, and the client continues from there) or gone (404); and the blob
digest must never be served with partial or corrupt content.

The cut-off PATCH itself may be logged with an error status (distribution logs a 500 for
it; nobody is there to read the answer); a traceback in the portal's log is still a failure.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import struct
import time
from urllib.parse import urljoin, urlsplit

import pytest

from .conftest import unique_repo

SIZE = 3 * 1024 * 1024 + 12345


def _absolute(client, response) -> str:
    return urljoin(client.base_url + "/", response.headers["Location"])


def _auth_header(client, name: str) -> tuple[dict[str, str], str]:
    """Start an upload; return the Authorization header it needed and its Location."""
    response = client.request("POST", f"/v2/{name}/blobs/uploads/")
    assert response.status_code == 202, response.text
    header = response.request.headers.get("Authorization")
    return ({"Authorization": header} if header else {}), _absolute(client, response)


def _kill_mid_patch(location: str, headers: dict[str, str], data: bytes, how: str) -> None:
    parts = urlsplit(location)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    head = [f"PATCH {path} HTTP/1.1", f"Host: {parts.netloc}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head += ["Content-Type: application/octet-stream", "Transfer-Encoding: chunked", "", ""]
    sock.sendall("\r\n".join(head).encode())
    for start in range(0, len(data), 64 * 1024):
        chunk = data[start : start + 64 * 1024]
        sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
    time.sleep(0.3)  # let the server read what was sent
    if how == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _upload_state(client, location: str, timeout: float = 10.0):
    """Poll GET <upload> until it answers the same twice (the server has settled)."""
    deadline = time.monotonic() + timeout
    previous = None
    while True:
        response = client.get(location)
        state = (response.status_code, response.headers.get("Range"))
        if state == previous or time.monotonic() > deadline:
            return response
        previous = state
        time.sleep(0.5)


def _kept(range_header: str | None) -> int:
    match = re.fullmatch(r"(?:bytes=)?0-(\d+)", (range_header or "").strip())
    assert match, f"bad Range header {range_header!r}"
    end = int(match.group(1))
    return 0 if end == 0 else end + 1


@pytest.mark.aborted_requests("PATCH")
@pytest.mark.parametrize(
    ("how", "then"), [("close", "resume"), ("reset", "resume"), ("close", "finish-truncated")]
)
def test_killed_client_mid_upload(target, how, then):
    data = os.urandom(SIZE)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    name = unique_repo("killed")
    client = target.pusher_client()
    headers, location = _auth_header(client, name)

    _kill_mid_patch(location, headers, data[: SIZE // 2], how)
    # Meanwhile and afterwards, the digest is unknown: never partial content.
    assert client.head(f"/v2/{name}/blobs/{digest}").status_code == 404

    status = _upload_state(client, location)
    assert status.status_code in (204, 404), (status.status_code, status.text)

    if then == "finish-truncated":
        # Claim the whole blob although only part of it arrived: refused, nothing kept.
        if status.status_code == 204:
            response = client.request("PUT", location, params={"digest": digest})
            assert response.status_code == 400, (response.status_code, response.text)
            assert "DIGEST_INVALID" in response.text
        assert client.get(f"/v2/{name}/blobs/{digest}").status_code == 404
        return

    if status.status_code == 404:  # the server dropped the upload: start again
        response = client.request("POST", f"/v2/{name}/blobs/uploads/")
        assert response.status_code == 202
        location, kept = _absolute(client, response), 0
    else:
        location, kept = _absolute(client, status), _kept(status.headers.get("Range"))
        assert kept <= SIZE // 2
    rest = data[kept:]
    response = client.request(
        "PATCH",
        location,
        data=rest,
        headers={
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{kept}-{SIZE - 1}",
        },
    )
    assert response.status_code == 202, (response.status_code, response.text)
    response = client.request("PUT", _absolute(client, response), params={"digest": digest})
    assert response.status_code == 201, (response.status_code, response.text)

    blob = client.get(f"/v2/{name}/blobs/{digest}")
    assert blob.status_code == 200
    assert hashlib.sha256(blob.content).hexdigest() == digest.split(":")[1]
    assert len(blob.content) == SIZE
