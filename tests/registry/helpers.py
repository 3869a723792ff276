"""Helpers for /v2/ protocol tests: credentials, digests, blobs and manifests built in Python."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import pytest

from tests.factories import PASSWORD

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
# Marks a module as a /v2/ test module: blob storage in a temporary directory, fast hashing.
V2 = pytest.mark.usefixtures("registry_settings")
EMPTY_JSON_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def basic(user, password: str = PASSWORD) -> str:
    raw = f"{user.get_username()}:{password}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def descriptor(media_type: str, data: bytes, **extra) -> dict:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def image_manifest(
    config: bytes,
    layers: list[bytes] = (),
    *,
    media_type: str = OCI_MANIFEST,
    config_type: str = OCI_CONFIG,
    layer_type: str = OCI_LAYER,
    **extra,
) -> bytes:
    body = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(config_type, config),
        "layers": [descriptor(layer_type, layer) for layer in layers],
        **extra,
    }
    return json.dumps(body).encode()


def index_manifest(children: list[bytes], *, media_type: str = OCI_INDEX, **extra) -> bytes:
    manifests = [
        descriptor(json.loads(child).get("mediaType", OCI_MANIFEST), child) for child in children
    ]
    body = {"schemaVersion": 2, "mediaType": media_type, "manifests": manifests, **extra}
    return json.dumps(body).encode()


class Registry:
    """A Django test client speaking /v2/ as one caller (``auth``: an Authorization value)."""

    def __init__(self, client, auth: str | None = None):
        self.client = client
        self.auth = auth

    def request(self, method: str, path: str, data: bytes = b"", headers=None, **extra):
        if self.auth:
            extra.setdefault("HTTP_AUTHORIZATION", self.auth)
        for name, value in (headers or {}).items():
            extra["HTTP_" + name.upper().replace("-", "_")] = value
        content_type = extra.pop("content_type", "application/octet-stream")
        return self.client.generic(method, path, data, content_type=content_type, **extra)

    def get(self, path, **extra):
        return self.request("GET", path, **extra)

    def head(self, path, **extra):
        return self.request("HEAD", path, **extra)

    def delete(self, path, **extra):
        return self.request("DELETE", path, **extra)

    def post(self, path, data=b"", **extra):
        return self.request("POST", path, data, **extra)

    def put(self, path, data=b"", **extra):
        return self.request("PUT", path, data, **extra)

    def patch(self, path, data=b"", **extra):
        return self.request("PATCH", path, data, **extra)

    def patch_streamed(self, path, data: bytes, **extra):
        """A PATCH as docker sends it: chunked, no Content-Length (raw input read to EOF)."""
        extra.update(
            {
                "CONTENT_LENGTH": "",
                "HTTP_TRANSFER_ENCODING": "chunked",
                "wsgi.input": io.BytesIO(data),
                "wsgi.input_terminated": True,
            }
        )
        return self.request("PATCH", path, **extra)

    def push_blob(self, name: str, data: bytes) -> str:
        """POST then PUT with the whole body; returns the digest."""
        started = self.post(f"/v2/{name}/blobs/uploads/")
        assert started.status_code == 202, started.content
        digest = sha256(data)
        finished = self.put(f"{started['Location']}?digest={digest}", data)
        assert finished.status_code == 201, finished.content
        return digest

    def push_manifest(self, name: str, reference: str, content: bytes, media_type=None):
        media_type = media_type or json.loads(content).get("mediaType", OCI_MANIFEST)
        return self.put(f"/v2/{name}/manifests/{reference}", content, content_type=media_type)

    def push_image(self, name: str, tag: str, layers=(b"layer",), config=None, **extra):
        """Push config and layers and an OCI manifest tagged ``tag``; returns the bytes."""
        config = config if config is not None else json.dumps({"tag": tag}).encode()
        for blob in (config, *layers):
            self.push_blob(name, blob)
        content = image_manifest(config, list(layers), **extra)
        response = self.push_manifest(name, tag, content)
        assert response.status_code == 201, response.content
        return content


def errors(response) -> list[str]:
    """The OCI error codes of a response."""
    assert response["Content-Type"] == "application/json"
    return [entry["code"] for entry in json.loads(response.content)["errors"]]
