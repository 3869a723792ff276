"""Artifacts with a ``subject`` pushed with the oras Python package, found as referrers.

skopeo pushes an image; oras pushes two artifacts (an SBOM and a signature, told apart by
their config media type, which is their artifact type) whose ``subject`` is that image.
Then ``GET /v2/<name>/referrers/<digest>`` lists both, and ``?artifactType=`` filters.
The reference registry (distribution 2.8) has no referrers API: there, only the push and
pull of the artifacts are checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from tests.support import images
from tests.support.clients import parse_challenge

from .conftest import creds, unique_repo

oras_provider = pytest.importorskip("oras.provider", reason="needs the 'oras' Python package")
import oras.oci  # noqa: E402 - after the importorskip

SBOM_TYPE = "application/vnd.example.sbom.v1+json"
SIGNATURE_TYPE = "application/vnd.example.signature.v1+json"


def oras_registry(target, user_creds, name: str):
    """An oras Registry for plain HTTP, logged in for pull and push on ``name``.

    oras-py caches the first token it gets and, on a 401 for lack of scope, retries with the
    same token (oras-project/oras-py#187): its first request (HEAD of a blob) gets a
    pull-only token, then the upload POST fails. So we ask the token service once for
    ``pull,push`` ourselves and hand oras that token, as a CI script would.
    """
    registry = oras_provider.Registry(hostname=target.host, insecure=True, tls_verify=False)
    if user_creds is None:
        return registry
    registry.auth.set_basic_auth(*user_creds)
    response = requests.get(f"{target.server.url}/v2/", timeout=30)
    scheme, params = parse_challenge(response.headers.get("WWW-Authenticate", ""))
    if response.status_code == 401 and scheme == "bearer":
        token = requests.get(
            params["realm"],
            params={"service": params.get("service", ""), "scope": f"repository:{name}:pull,push"},
            auth=user_creds,
            timeout=30,
        )
        assert token.status_code == 200, token.text
        registry.auth.set_token_auth(token.json()["token"])
    return registry


def push_artifact(registry, target, name, tag, workdir: Path, artifact_type, subject):
    workdir.mkdir(parents=True, exist_ok=True)
    payload = workdir / f"{tag}.json"
    payload.write_text(json.dumps({"artifact": tag, "for": subject.digest}))
    config = workdir / f"{tag}-config.json"
    config.write_text("{}")
    response = registry.push(
        target=target.ref(name, tag),
        files=[f"{payload}:application/json"],
        manifest_config=f"{config}:{artifact_type}",
        manifest_annotations={"org.example.kind": tag},
        subject=subject,
        disable_path_validation=True,
        quiet=True,
    )
    assert response.status_code == 201, (response.status_code, response.text)
    return response.headers["Docker-Content-Digest"], payload


@pytest.fixture
def push_subject(skopeo, tmp_path):
    """Push an image with skopeo; return its repository and its descriptor as a Subject."""

    def push(target):
        layout = tmp_path / "img"
        image = images.write_image(layout, tag="v1")
        name = unique_repo("oras")
        skopeo.push(layout, "v1", target.ref(name, "v1"), creds=target.pusher, check=True)
        size = len(images.read_layout(layout, "v1").manifests[image.digest])
        return name, oras.oci.Subject(images.MEDIA_MANIFEST, image.digest, size)

    return push


def test_oras_push_and_pull_artifact_with_subject(target, push_subject, tmp_path):
    name, subject = push_subject(target)
    registry = oras_registry(target, target.pusher, name)
    digest, payload = push_artifact(
        registry, target, name, "sbom", tmp_path / "a", SBOM_TYPE, subject
    )

    manifest = target.pusher_client().get(
        f"/v2/{name}/manifests/{digest}", headers={"Accept": images.MEDIA_MANIFEST}
    )
    assert manifest.status_code == 200
    body = manifest.json()
    assert body["subject"]["digest"] == subject.digest
    assert body["config"]["mediaType"] == SBOM_TYPE

    out = tmp_path / "pulled"
    registry.pull(target=target.ref(name, "sbom"), outdir=str(out))
    assert (out / payload.name).read_bytes() == payload.read_bytes()


def test_referrers_lists_oras_artifacts(portal, push_subject, tmp_path):
    target = portal
    name, subject = push_subject(target)
    registry = oras_registry(target, creds("alice"), name)
    sbom, _ = push_artifact(registry, target, name, "sbom", tmp_path / "s", SBOM_TYPE, subject)
    signature, _ = push_artifact(
        registry, target, name, "sig", tmp_path / "g", SIGNATURE_TYPE, subject
    )

    client = target.client("carol")  # read-only is enough to discover referrers
    response = client.referrers(name, subject.digest)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith(images.MEDIA_INDEX)
    index = response.json()
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == images.MEDIA_INDEX
    found = {d["digest"]: d for d in index["manifests"]}
    assert set(found) == {sbom, signature}
    assert found[sbom]["artifactType"] == SBOM_TYPE
    assert found[signature]["artifactType"] == SIGNATURE_TYPE
    assert found[sbom]["annotations"]["org.example.kind"] == "sbom"
    assert found[sbom]["mediaType"] == images.MEDIA_MANIFEST

    filtered = client.referrers(name, subject.digest, artifact_type=SIGNATURE_TYPE)
    assert filtered.status_code == 200
    assert "artifactType" in filtered.headers.get("OCI-Filters-Applied", "")
    assert [d["digest"] for d in filtered.json()["manifests"]] == [signature]

    # An unknown subject still answers 200 with an empty index.
    unknown = "sha256:" + "0" * 64
    empty = client.referrers(name, unknown)
    assert empty.status_code == 200
    assert empty.json()["manifests"] == []

    # Someone who may not pull the repository does not see its referrers.
    assert target.client("mallory").referrers(name, subject.digest).status_code in (401, 403, 404)
