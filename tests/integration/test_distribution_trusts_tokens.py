"""The proof that a stock distribution registry trusts our tokens.

Debian's ``docker-registry`` (distribution 2.8) is configured with our certificate as
``auth.token.rootcertbundle``, our issuer and a service name. Our server does not run at all:
the tokens come straight from ``issue_token``, and a real blob upload, manifest PUT and GET
go to the stock registry with ``Authorization: Bearer``.
"""

import hashlib
import json
import time
from urllib.parse import urljoin

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from django.contrib.auth import get_user_model

from registry_portal.registry import tokens
from tests.services import need_tool
from tests.support.servers import ReferenceRegistry

SERVICE = "portal.test"
ISSUER = "portal-test-issuer"
REALM = "http://portal.test/auth/token"
REPOSITORY = "alice/app"
TIMEOUT = 10
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"

pytestmark = pytest.mark.integration


@pytest.fixture
def token_settings(settings, tmp_path):
    settings.REGISTRY_TOKEN_KEY_FILE = tmp_path / "keys" / "token.key"
    settings.REGISTRY_TOKEN_CERT_FILE = tmp_path / "keys" / "token.crt"
    settings.REGISTRY_TOKEN_SERVICE = SERVICE
    settings.REGISTRY_TOKEN_ISSUER = ISSUER
    return settings


@pytest.fixture
def reference(token_settings, tmp_path):
    """docker-registry trusting our certificate; stopped (terminate, then kill) afterwards."""
    need_tool("docker-registry")
    auth = {
        "token": {
            "realm": REALM,
            "service": SERVICE,
            "issuer": ISSUER,
            "rootcertbundle": str(tokens.signing_key().certificate_path),
        }
    }
    with ReferenceRegistry(tmp_path / "reference", config={"auth": auth}) as registry:
        yield registry


def _token(*actions: str, service: str = SERVICE) -> str:
    alice = get_user_model()(username="alice")  # unsaved: issuing needs no database
    access = [{"type": "repository", "name": REPOSITORY, "actions": list(actions)}]
    raw, _, _ = tokens.issue_token(user=alice, access=access, service=service, lifetime=300)
    return raw


def _bearer(raw: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {raw}"}


def _digest(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def _start_upload(registry: ReferenceRegistry, raw: str) -> requests.Response:
    return requests.post(
        f"{registry.url}/v2/{REPOSITORY}/blobs/uploads/", headers=_bearer(raw), timeout=TIMEOUT
    )


def _push_blob(registry: ReferenceRegistry, raw: str, content: bytes) -> str:
    """Upload a blob (POST, then PUT with the digest); returns its digest."""
    started = _start_upload(registry, raw)
    assert started.status_code == 202, started.text
    digest = _digest(content)
    finished = requests.put(
        urljoin(registry.url, started.headers["Location"]),
        params={"digest": digest},
        data=content,
        headers={**_bearer(raw), "Content-Type": "application/octet-stream"},
        timeout=TIMEOUT,
    )
    assert finished.status_code == 201, finished.text
    assert finished.headers["Docker-Content-Digest"] == digest
    return digest


def test_challenge_sends_clients_to_our_token_service(reference):
    response = requests.get(f"{reference.url}/v2/", timeout=TIMEOUT)

    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert f'realm="{REALM}"' in challenge and f'service="{SERVICE}"' in challenge


def test_push_and_pull_with_our_token(reference):
    raw = _token("pull", "push")
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    layer = b"not really a tar, and the registry does not care" * 100

    config_digest = _push_blob(reference, raw, config)
    layer_digest = _push_blob(reference, raw, layer)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest,
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    put = requests.put(
        f"{reference.url}/v2/{REPOSITORY}/manifests/v1",
        data=manifest,
        headers={**_bearer(raw), "Content-Type": MANIFEST_TYPE},
        timeout=TIMEOUT,
    )
    pulled = requests.get(
        f"{reference.url}/v2/{REPOSITORY}/manifests/v1",
        headers={**_bearer(_token("pull")), "Accept": MANIFEST_TYPE},
        timeout=TIMEOUT,
    )
    blob = requests.get(
        f"{reference.url}/v2/{REPOSITORY}/blobs/{layer_digest}",
        headers=_bearer(_token("pull")),
        timeout=TIMEOUT,
    )

    assert put.status_code == 201, put.text
    assert put.headers["Docker-Content-Digest"] == _digest(manifest)
    assert pulled.status_code == 200, pulled.text
    assert pulled.content == manifest
    assert pulled.headers["Docker-Content-Digest"] == _digest(manifest)
    assert blob.status_code == 200 and blob.content == layer


def test_pull_only_token_cannot_push(reference):
    raw = _token("pull")

    pull = requests.get(
        f"{reference.url}/v2/{REPOSITORY}/manifests/v1", headers=_bearer(raw), timeout=TIMEOUT
    )
    push = _start_upload(reference, raw)

    assert pull.status_code == 404  # authorized, and there is nothing yet
    assert push.status_code == 401
    assert 'error="insufficient_scope"' in push.headers["WWW-Authenticate"]


def _claims() -> dict:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "sub": "alice",
        "aud": SERVICE,
        "exp": now + 300,
        "nbf": now,
        "iat": now,
        "jti": "hand-made",
        "access": [{"type": "repository", "name": REPOSITORY, "actions": ["pull", "push"]}],
    }


def test_token_signed_by_another_key_is_refused(reference):
    ours = tokens.signing_key()
    stranger = ec.generate_private_key(ec.SECP256R1())
    own_kid = tokens.key_id(stranger.public_key())

    control = jwt.encode(_claims(), ours.private_key, algorithm="ES256", headers={"kid": ours.kid})
    unknown_kid = jwt.encode(_claims(), stranger, algorithm="ES256", headers={"kid": own_kid})
    borrowed_kid = jwt.encode(_claims(), stranger, algorithm="ES256", headers={"kid": ours.kid})

    assert _start_upload(reference, control).status_code == 202
    assert _start_upload(reference, unknown_kid).status_code == 401
    assert _start_upload(reference, borrowed_kid).status_code == 401


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"aud": "elsewhere"}, id="another-service"),
        pytest.param({"iss": "someone-else"}, id="another-issuer"),
        # Beyond distribution's one-minute leeway.
        pytest.param(
            {
                "iat": int(time.time()) - 600,
                "nbf": int(time.time()) - 600,
                "exp": int(time.time()) - 120,
            },
            id="expired",
        ),
    ],
)
def test_token_with_wrong_claims_is_refused(reference, overrides):
    key = tokens.signing_key()
    raw = jwt.encode(
        {**_claims(), **overrides}, key.private_key, algorithm="ES256", headers={"kid": key.kid}
    )

    assert _start_upload(reference, raw).status_code == 401


def test_token_issued_for_another_service_is_refused(reference):
    assert _start_upload(reference, _token("pull", "push", service="elsewhere")).status_code == 401
