"""/v2/ manifests: push, pull, delete by tag and digest, and every validation rule."""

import hashlib
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry_portal.registry.models import Manifest, RepositoryManifest, Tag, TagEvent

from .helpers import (
    DOCKER_CONFIG,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    EMPTY_JSON_DIGEST,
    OCI_INDEX,
    OCI_MANIFEST,
    V2,
    descriptor,
    errors,
    image_manifest,
    index_manifest,
    sha256,
)

pytestmark = V2

CONFIG = b'{"architecture":"amd64","os":"linux"}'
LAYER = b"layer bytes"


@pytest.fixture
def blobs(reg, repo):
    for blob in (CONFIG, LAYER):
        reg.push_blob("acme/app", blob)


def test_put_and_get_by_tag_and_digest(reg, blobs):
    content = image_manifest(CONFIG, [LAYER])
    response = reg.push_manifest("acme/app", "v1", content)
    digest = sha256(content)
    assert response.status_code == 201
    assert response["Location"] == f"/v2/acme/app/manifests/{digest}"
    assert response["Docker-Content-Digest"] == digest
    assert "OCI-Subject" not in response
    for reference in ("v1", digest):
        got = reg.get(f"/v2/acme/app/manifests/{reference}")
        assert got.status_code == 200
        assert got.content == content
        assert got["Content-Type"] == OCI_MANIFEST
        assert got["Content-Length"] == str(len(content))
        assert got["Docker-Content-Digest"] == digest
        head = reg.head(f"/v2/acme/app/manifests/{reference}")
        assert head.status_code == 200
        assert head.content == b""
        assert head["Content-Length"] == str(len(content))
        assert head["Docker-Content-Digest"] == digest
        assert head["Content-Type"] == OCI_MANIFEST


def test_stored_media_type_is_served_whatever_accept_says(reg, blobs):
    content = image_manifest(CONFIG, [LAYER], media_type=DOCKER_MANIFEST, config_type=DOCKER_CONFIG)
    assert reg.push_manifest("acme/app", "docker", content).status_code == 201
    got = reg.get("/v2/acme/app/manifests/docker", HTTP_ACCEPT=OCI_MANIFEST)
    assert got["Content-Type"] == DOCKER_MANIFEST
    assert got.content == content


def test_bytes_are_stored_exactly(reg, blobs):
    odd = (
        b'{ "schemaVersion" : 2,\n  "mediaType": "' + OCI_MANIFEST.encode() + b'",\n'
        b'  "config": ' + json.dumps(descriptor("application/x-custom", CONFIG)).encode() + b","
        b' "layers": []  }\n'
    )
    response = reg.push_manifest("acme/app", "odd", odd)
    assert response.status_code == 201
    assert reg.get("/v2/acme/app/manifests/odd").content == odd
    assert response["Docker-Content-Digest"] == sha256(odd)


def test_put_by_digest(reg, blobs):
    content = image_manifest(CONFIG, [LAYER])
    digest = sha256(content)
    response = reg.push_manifest("acme/app", digest, content)
    assert response.status_code == 201
    assert not Tag.objects.exists()
    assert reg.get(f"/v2/acme/app/manifests/{digest}").content == content


def test_put_by_wrong_digest(reg, blobs):
    content = image_manifest(CONFIG, [LAYER])
    response = reg.push_manifest("acme/app", sha256(b"other"), content)
    assert errors(response) == ["DIGEST_INVALID"]
    assert not Manifest.objects.exists()


def test_put_by_sha512_digest(reg, blobs):
    content = image_manifest(CONFIG, [LAYER])
    digest = "sha512:" + hashlib.sha512(content).hexdigest()
    response = reg.push_manifest("acme/app", digest, content)
    assert response.status_code == 201
    assert response["Docker-Content-Digest"] == digest


def test_tag_exists_when_the_201_goes_out_and_history_is_recorded(reg, blobs, owner):
    reg.push_manifest("acme/app", "v1", image_manifest(CONFIG, [LAYER]))
    tag = Tag.objects.get(name="v1")
    assert tag.pushed_by == owner
    assert TagEvent.objects.filter(tag_name="v1", actor=owner).count() == 1


def test_missing_blobs_are_each_reported(reg, repo):
    reg.push_blob("acme/app", CONFIG)
    missing = [b"missing one", b"missing two"]
    response = reg.push_manifest("acme/app", "v1", image_manifest(CONFIG, missing))
    assert response.status_code == 400
    assert errors(response) == ["MANIFEST_BLOB_UNKNOWN", "MANIFEST_BLOB_UNKNOWN"]
    details = [e["detail"]["digest"] for e in response.json()["errors"]]
    assert details == [sha256(blob) for blob in missing]
    assert not Manifest.objects.exists()


def test_missing_config_is_reported(reg, repo):
    reg.push_blob("acme/app", LAYER)
    response = reg.push_manifest("acme/app", "v1", image_manifest(CONFIG, [LAYER]))
    assert errors(response) == ["MANIFEST_BLOB_UNKNOWN"]


def test_blobs_of_another_repository_do_not_count(reg, org, blobs):
    from tests import factories

    factories.make_repo(org, "other")
    response = reg.push_manifest("acme/other", "v1", image_manifest(CONFIG, [LAYER]))
    assert errors(response) == ["MANIFEST_BLOB_UNKNOWN", "MANIFEST_BLOB_UNKNOWN"]


def test_descriptor_size_must_match_the_blob(reg, blobs):
    body = json.loads(image_manifest(CONFIG, [LAYER]))
    body["layers"][0]["size"] += 1
    response = reg.push_manifest("acme/app", "v1", json.dumps(body).encode())
    assert errors(response) == ["MANIFEST_INVALID"]


def test_non_distributable_layers_with_urls_are_not_checked(reg, blobs):
    body = json.loads(image_manifest(CONFIG, [LAYER]))
    body["layers"].append(
        {
            "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
            "digest": sha256(b"foreign"),
            "size": 7,
            "urls": ["https://example.com/foreign.tar.gz"],
        }
    )
    assert reg.push_manifest("acme/app", "v1", json.dumps(body).encode()).status_code == 201


def test_empty_layers_and_the_empty_json_config(reg, repo):
    """An artifact with the empty JSON descriptor as config and no layers."""
    body = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.thing",
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": EMPTY_JSON_DIGEST,
            "size": 2,
        },
        "layers": [],
    }
    assert reg.push_manifest("acme/app", "thing", json.dumps(body).encode()).status_code == 201
    assert reg.get(f"/v2/acme/app/blobs/{EMPTY_JSON_DIGEST}").getvalue() == b"{}"


def test_artifacts_with_unknown_media_types(reg, repo):
    sbom = b'{"spdxVersion": "SPDX-2.3"}'
    config = b"helm config"
    for blob in (sbom, config):
        reg.push_blob("acme/app", blob)
    content = image_manifest(
        config,
        [sbom],
        config_type="application/vnd.cncf.helm.config.v1+json",
        layer_type="application/spdx+json",
        annotations={"org.example": "yes"},
    )
    assert reg.push_manifest("acme/app", "chart", content).status_code == 201
    manifest = Manifest.objects.get(digest=sha256(content))
    assert manifest.annotations == {"org.example": "yes"}
    assert manifest.config_digest == sha256(config)


def test_subject_gets_the_oci_subject_header(reg, blobs):
    subject = image_manifest(CONFIG, [LAYER])
    reg.push_manifest("acme/app", "v1", subject)
    signature = image_manifest(
        CONFIG,
        [],
        artifactType="application/vnd.example.sig",
        subject=descriptor(OCI_MANIFEST, subject),
    )
    response = reg.push_manifest("acme/app", sha256(signature), signature)
    assert response.status_code == 201
    assert response["OCI-Subject"] == sha256(subject)


def test_subject_need_not_exist(reg, blobs):
    signature = image_manifest(CONFIG, [], subject=descriptor(OCI_MANIFEST, b"not pushed"))
    assert reg.push_manifest("acme/app", "sig", signature).status_code == 201


@pytest.mark.parametrize("media_type", [OCI_INDEX, DOCKER_LIST])
def test_index_with_children_present(reg, blobs, media_type):
    children = [
        image_manifest(CONFIG, [LAYER]),
        image_manifest(CONFIG, [], annotations={"variant": "slim"}),
    ]
    for child in children:
        assert reg.push_manifest("acme/app", sha256(child), child).status_code == 201
    index = index_manifest(children, media_type=media_type)
    response = reg.push_manifest("acme/app", "multi", index)
    assert response.status_code == 201
    got = reg.get("/v2/acme/app/manifests/multi")
    assert got["Content-Type"] == media_type
    assert got.content == index
    parent = Manifest.objects.get(digest=sha256(index))
    assert {m.digest for m in parent.children.all()} == {sha256(c) for c in children}


def test_index_children_must_be_in_the_repository(reg, blobs):
    child = image_manifest(CONFIG, [LAYER])
    response = reg.push_manifest("acme/app", "multi", index_manifest([child]))
    assert response.status_code == 400
    assert errors(response) == ["MANIFEST_BLOB_UNKNOWN"]
    assert response.json()["errors"][0]["detail"] == {"digest": sha256(child)}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"not json", OCI_MANIFEST),
        (b"[]", OCI_MANIFEST),
        (
            b'{"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": []}',
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
        ),
        (b'{"schemaVersion": 1, "fsLayers": []}', "application/json"),
        (b'{"schemaVersion": 3, "config": {}, "layers": []}', OCI_MANIFEST),
        (b'{"schemaVersion": true, "layers": []}', OCI_MANIFEST),
        (b'{"schemaVersion": 2, "layers": []}', OCI_MANIFEST),
        (
            b'{"schemaVersion": 2, "mediaType": "' + OCI_INDEX.encode() + b'", "manifests": []}',
            OCI_MANIFEST,
        ),
        (
            b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.artifact.manifest.v1+json"}',
            "application/vnd.oci.artifact.manifest.v1+json",
        ),
        (b'{"schemaVersion": 2, "manifests": {}}', OCI_INDEX),
        (
            b'{"schemaVersion": 2, "config": {"mediaType": "x", "digest": "sha256:12", "size": 1}}',
            OCI_MANIFEST,
        ),
        (
            b'{"schemaVersion": 2, "config": {"mediaType": "x", "digest": "'
            + sha256(b"x").encode()
            + b'", "size": -1}}',
            OCI_MANIFEST,
        ),
        (
            b'{"schemaVersion": 2, "config": {"mediaType": "x", "digest": "'
            + sha256(b"x").encode()
            + b'", "size": 1}, "annotations": {"a": 1}}',
            OCI_MANIFEST,
        ),
    ],
)
def test_invalid_manifests(reg, blobs, body, content_type):
    response = reg.push_manifest("acme/app", "bad", body, media_type=content_type)
    assert response.status_code == 400, response.content
    assert errors(response) == ["MANIFEST_INVALID"]
    assert not Manifest.objects.exists()


def test_media_type_may_be_omitted_and_is_taken_from_content_type(reg, blobs):
    body = json.loads(image_manifest(CONFIG, [LAYER]))
    del body["mediaType"]
    content = json.dumps(body).encode()
    assert reg.push_manifest("acme/app", "v1", content, media_type=OCI_MANIFEST).status_code == 201
    assert reg.get("/v2/acme/app/manifests/v1")["Content-Type"] == OCI_MANIFEST


def test_oversized_manifest_is_413(reg, blobs, settings):
    settings.REGISTRY_MAX_MANIFEST_BYTES = 1000
    body = json.loads(image_manifest(CONFIG, [LAYER]))
    body["annotations"] = {"padding": "x" * 1000}
    response = reg.push_manifest("acme/app", "big", json.dumps(body).encode())
    assert response.status_code == 413
    assert errors(response) == ["SIZE_INVALID"]
    assert "1000" in response.json()["errors"][0]["message"]


def test_oversized_streamed_manifest_is_413_after_reading_limit_plus_one(reg, blobs, settings):
    import io

    settings.REGISTRY_MAX_MANIFEST_BYTES = 1000
    stream = io.BytesIO(b"{" + b" " * 5000 + b"}")
    response = reg.request(
        "PUT",
        "/v2/acme/app/manifests/big",
        content_type=OCI_MANIFEST,
        CONTENT_LENGTH="",
        **{"wsgi.input": stream, "wsgi.input_terminated": True},
    )
    assert response.status_code == 413
    assert stream.tell() == 1001


def test_four_mib_manifest_is_accepted(reg, blobs):
    body = json.loads(image_manifest(CONFIG, [LAYER]))
    body["annotations"] = {"padding": "x" * (4 * 1024 * 1024 - 1000)}
    content = json.dumps(body).encode()
    assert len(content) <= 4 * 1024 * 1024
    assert reg.push_manifest("acme/app", "big", content).status_code == 201


@pytest.mark.parametrize("tag", [".hidden", "-dash", "a" * 129, "has+plus"])
def test_invalid_tags(reg, blobs, tag):
    response = reg.push_manifest("acme/app", tag, image_manifest(CONFIG, [LAYER]))
    assert response.status_code == 400
    assert errors(response) == ["TAG_INVALID"]
    assert errors(reg.get(f"/v2/acme/app/manifests/{tag}")) == ["TAG_INVALID"]


def test_sha256_dash_tag_is_a_tag_not_a_digest(reg, blobs):
    """The referrers fallback tag scheme: never normalised into a digest."""
    tag = "sha256-" + "a" * 64
    content = image_manifest(CONFIG, [LAYER])
    assert reg.push_manifest("acme/app", tag, content).status_code == 201
    assert Tag.objects.filter(name=tag).exists()


def test_invalid_digest_reference(reg, blobs):
    assert errors(reg.get("/v2/acme/app/manifests/sha256:beef")) == ["DIGEST_INVALID"]


def test_unknown_manifest(reg, repo):
    response = reg.get("/v2/acme/app/manifests/nope")
    assert response.status_code == 404
    assert errors(response) == ["MANIFEST_UNKNOWN"]
    assert reg.head(f"/v2/acme/app/manifests/{sha256(b'x')}").status_code == 404


def test_moving_a_tag(reg, blobs):
    first = image_manifest(CONFIG, [LAYER])
    second = image_manifest(CONFIG, [])
    reg.push_manifest("acme/app", "v1", first)
    reg.push_manifest("acme/app", "v1", second)
    assert reg.get("/v2/acme/app/manifests/v1").content == second


def test_immutable_tags_cannot_move_or_be_deleted(reg, blobs, repo):
    repo.immutable_tags = True
    repo.save()
    reg.push_manifest("acme/app", "v1", image_manifest(CONFIG, [LAYER]))
    again = reg.push_manifest("acme/app", "v1", image_manifest(CONFIG, []))
    assert again.status_code == 403
    assert errors(again) == ["DENIED"]
    assert "immutable" in again.json()["errors"][0]["message"]
    # Nothing of the refused push remains.
    assert reg.get("/v2/acme/app/manifests/v1").content == image_manifest(CONFIG, [LAYER])
    assert not Manifest.objects.filter(digest=sha256(image_manifest(CONFIG, []))).exists()
    same = reg.push_manifest("acme/app", "v1", image_manifest(CONFIG, [LAYER]))
    assert same.status_code == 201
    delete = reg.delete("/v2/acme/app/manifests/v1")
    assert errors(delete) == ["DENIED"]
    assert "immutable" in delete.json()["errors"][0]["message"]


def test_delete_by_tag(reg, blobs):
    content = image_manifest(CONFIG, [LAYER])
    reg.push_manifest("acme/app", "v1", content)
    response = reg.delete("/v2/acme/app/manifests/v1")
    assert response.status_code == 202
    assert reg.get("/v2/acme/app/manifests/v1").status_code == 404
    # The manifest itself is still there by digest.
    assert reg.get(f"/v2/acme/app/manifests/{sha256(content)}").status_code == 200
    assert errors(reg.delete("/v2/acme/app/manifests/v1")) == ["MANIFEST_UNKNOWN"]


def test_delete_by_digest_removes_its_tags(reg, blobs, repo):
    content = image_manifest(CONFIG, [LAYER])
    reg.push_manifest("acme/app", "v1", content)
    reg.push_manifest("acme/app", "latest", content)
    digest = sha256(content)
    response = reg.delete(f"/v2/acme/app/manifests/{digest}")
    assert response.status_code == 202
    for reference in (digest, "v1", "latest"):
        assert reg.get(f"/v2/acme/app/manifests/{reference}").status_code == 404
    assert not RepositoryManifest.objects.filter(repository=repo).exists()
    assert errors(reg.delete(f"/v2/acme/app/manifests/{digest}")) == ["MANIFEST_UNKNOWN"]


def test_delete_disabled_is_405(reg, blobs, settings):
    reg.push_manifest("acme/app", "v1", image_manifest(CONFIG, [LAYER]))
    settings.REGISTRY_DELETE_ENABLED = False
    response = reg.delete("/v2/acme/app/manifests/v1")
    assert response.status_code == 405
    assert errors(response) == ["UNSUPPORTED"]
    assert Tag.objects.filter(name="v1").exists()


def test_manifest_pull_query_count(reg, blobs):
    """Pulling a manifest by tag stays a handful of queries (auth, permission, manifest)."""
    reg.push_manifest("acme/app", "v1", image_manifest(CONFIG, [LAYER]))
    with CaptureQueriesContext(connection) as queries:
        assert reg.get("/v2/acme/app/manifests/v1").status_code == 200
    assert len(queries) <= 6, [q["sql"] for q in queries.captured_queries]
