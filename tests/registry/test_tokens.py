"""The token module: signing key and certificate, kid, access and refresh tokens, scopes."""

import base64
import datetime
import hashlib
import hmac
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.utils import timezone

from registry_portal.accounts import services as account_services
from registry_portal.registry import tokens
from tests import factories

SERVICE = "registry.test:5000"
ISSUER = "test-issuer"
KID_RE = re.compile(r"^[A-Z2-7]{4}(?::[A-Z2-7]{4}){11}$")
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def token_settings(settings, tmp_path):
    """A fresh key in a temp dir, and a known service and issuer."""
    settings.REGISTRY_TOKEN_KEY_FILE = tmp_path / "keys" / "token.key"
    settings.REGISTRY_TOKEN_CERT_FILE = tmp_path / "keys" / "token.crt"
    settings.REGISTRY_TOKEN_SERVICE = SERVICE
    settings.REGISTRY_TOKEN_ISSUER = ISSUER
    # Real hashing costs about a second per user; the hasher is not under test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return settings


def _sign(claims: dict, *, private_key=None, kid: str | None = None, algorithm="ES256") -> str:
    """A token signed by hand: our key unless another is given."""
    key = tokens.signing_key()
    return jwt.encode(
        claims,
        private_key or key.private_key,
        algorithm=algorithm,
        headers={"kid": kid or key.kid},
    )


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _claims(**overrides) -> dict:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": SERVICE,
        "exp": now + 300,
        "nbf": now,
        "iat": now,
        "jti": "j1",
        "access": [{"type": "repository", "name": "acme/app", "actions": ["pull"]}],
    }
    claims.update(overrides)
    return claims


# --- Key and certificate ----------------------------------------------------------------


def test_key_and_certificate_are_generated_on_first_use(token_settings):
    key = tokens.signing_key()

    key_path = token_settings.REGISTRY_TOKEN_KEY_FILE
    cert_path = token_settings.REGISTRY_TOKEN_CERT_FILE
    assert key.key_path == key_path and key.certificate_path == cert_path
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"
    assert key.algorithm == "ES256"
    assert isinstance(key.private_key.curve, ec.SECP256R1)
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert certificate.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ) == key.public_key.public_bytes(serialization.Encoding.DER, spki)
    assert certificate.subject.rfc4514_string() == f"CN={ISSUER}"
    assert certificate.not_valid_after_utc > timezone.now() + datetime.timedelta(days=3000)
    # The certificate verifies with its own key: it is self-signed.
    certificate.verify_directly_issued_by(certificate)
    assert list(key_path.parent.glob(".*")) == []  # no temporary files left behind


def test_existing_key_is_reused(token_settings):
    first = tokens.signing_key()
    tokens._load_signing_key.cache_clear()

    again = tokens.signing_key()

    assert again.kid == first.kid
    assert again.certificate_pem() == first.certificate_pem()


def test_processes_racing_on_first_start_share_one_key(token_settings):
    key_path = token_settings.REGISTRY_TOKEN_KEY_FILE
    cert_path = token_settings.REGISTRY_TOKEN_CERT_FILE
    program = (
        "import django; django.setup();"
        "from registry_portal.registry import tokens; print(tokens.signing_key().kid)"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "registry_portal.settings",
        "REGISTRY_TOKEN_KEY_FILE": str(key_path),
        "REGISTRY_TOKEN_CERT_FILE": str(cert_path),
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", program],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    outputs = [process.communicate(timeout=60) for process in processes]

    assert [process.returncode for process in processes] == [0] * 6, outputs
    kids = {stdout.strip() for stdout, _ in outputs}
    assert kids == {tokens.signing_key().kid}
    assert oct(key_path.stat().st_mode & 0o777) == "0o600"
    assert sorted(p.name for p in key_path.parent.iterdir()) == ["token.crt", "token.key"]


def test_kid_is_the_libtrust_form_of_the_key(token_settings):
    key = tokens.signing_key()
    # Independent computation: openssl derives the DER SubjectPublicKeyInfo itself.
    der = subprocess.run(
        ["openssl", "pkey", "-in", str(key.key_path), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    digest = hashlib.sha256(der).digest()[:30]
    encoded = base64.b32encode(digest).decode()  # 240 bits: 48 characters, no padding

    assert KID_RE.match(key.kid)
    assert key.kid.replace(":", "") == encoded
    assert len(encoded) == 48 and "=" not in encoded


def test_operator_rsa_key_signs_rs256(token_settings):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path = token_settings.REGISTRY_TOKEN_KEY_FILE
    key_path.parent.mkdir(parents=True)
    key_path.write_bytes(
        rsa_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )

    key = tokens.signing_key()
    raw, _, _ = tokens.issue_token(user=None, access=[], service=SERVICE, lifetime=60)

    assert key.algorithm == "RS256"
    assert jwt.get_unverified_header(raw) == {"alg": "RS256", "kid": key.kid, "typ": "JWT"}
    assert tokens.decode_token(raw)["sub"] == ""


def test_certificate_of_another_key_is_refused(token_settings):
    tokens.signing_key()
    tokens._load_signing_key.cache_clear()
    token_settings.REGISTRY_TOKEN_KEY_FILE.unlink()  # a new key, the old certificate

    with pytest.raises(ImproperlyConfigured, match="another key"):
        tokens.signing_key()


def test_unsupported_key_type_is_refused(token_settings):
    key_path = token_settings.REGISTRY_TOKEN_KEY_FILE
    key_path.parent.mkdir(parents=True)
    key_path.write_bytes(
        ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )

    with pytest.raises(ImproperlyConfigured, match="P-256"):
        tokens.signing_key()


# --- Access tokens ----------------------------------------------------------------------


def test_issue_and_decode_round_trip():
    access = [{"type": "repository", "name": "acme/app", "actions": ["pull", "push"]}]
    alice = get_user_model()(username="alice")  # unsaved: issuing needs no database
    before = int(time.time())

    raw, expires_in, issued_at = tokens.issue_token(
        user=alice, access=access, service=SERVICE, lifetime=300
    )
    claims = tokens.decode_token(raw)

    assert expires_in == 300
    assert claims["iss"] == ISSUER
    assert claims["sub"] == "alice"
    assert claims["aud"] == SERVICE
    assert claims["access"] == access
    assert before <= claims["iat"] <= int(time.time())
    assert claims["nbf"] == claims["iat"]
    assert claims["exp"] == claims["iat"] + 300
    assert issued_at == datetime.datetime.fromtimestamp(claims["iat"], datetime.UTC)
    header = jwt.get_unverified_header(raw)
    assert header["alg"] == "ES256" and header["kid"] == tokens.signing_key().kid
    other, _, _ = tokens.issue_token(user=alice, access=access, service=SERVICE, lifetime=300)
    assert tokens.decode_token(other)["jti"] != claims["jti"]


def test_anonymous_subject_is_empty():
    raw, _, _ = tokens.issue_token(user=None, access=[], service=SERVICE, lifetime=60)

    claims = tokens.decode_token(raw)

    assert claims["sub"] == "" and claims["access"] == []


def test_hand_signed_valid_token_decodes():
    # The baseline the rejections below differ from by one thing each.
    assert tokens.decode_token(_sign(_claims()))["sub"] == "alice"


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"exp": int(time.time()) - 60}, id="expired"),
        # (far ahead: the parameters are computed at collection, minutes before the run)
        pytest.param({"nbf": int(time.time()) + 10 * 365 * 86400}, id="not-yet-valid"),
        pytest.param({"aud": "another.registry"}, id="wrong-audience"),
        pytest.param({"iss": "someone-else"}, id="wrong-issuer"),
        pytest.param({"access": "everything"}, id="malformed-access"),
        pytest.param({"access": [{"type": "repository", "name": "a/b"}]}, id="access-no-actions"),
        pytest.param({"typ": "refresh"}, id="refresh-type"),
    ],
)
def test_bad_claims_are_rejected(overrides):
    with pytest.raises(tokens.InvalidToken):
        tokens.decode_token(_sign(_claims(**overrides)))


@pytest.mark.parametrize("missing", ["exp", "nbf", "iat", "jti", "aud", "iss", "sub", "access"])
def test_missing_claim_is_rejected(missing):
    claims = _claims()
    del claims[missing]

    with pytest.raises(tokens.InvalidToken):
        tokens.decode_token(_sign(claims))


def test_token_for_another_service_is_rejected():
    raw, _, _ = tokens.issue_token(user=None, access=[], service="elsewhere", lifetime=300)

    with pytest.raises(tokens.InvalidToken):
        tokens.decode_token(raw)


def test_token_signed_by_another_key_is_rejected():
    stranger = ec.generate_private_key(ec.SECP256R1())

    # Even when it borrows our kid.
    with pytest.raises(tokens.InvalidToken):
        tokens.decode_token(_sign(_claims(), private_key=stranger))
    with pytest.raises(tokens.InvalidToken):
        tokens.decode_token(
            _sign(_claims(), private_key=stranger, kid=tokens.key_id(stranger.public_key()))
        )


def test_tampered_token_is_rejected():
    raw = _sign(_claims())
    header, payload, signature = raw.split(".")
    claims = jwt.decode(raw, options={"verify_signature": False})
    claims["access"][0]["actions"] = ["pull", "push", "delete"]
    forged_payload = _b64url(json.dumps(claims).encode()).decode()

    with pytest.raises(tokens.InvalidToken):
        tokens.decode_token(f"{header}.{forged_payload}.{signature}")


def test_algorithm_confusion_is_rejected():
    public_pem = tokens.signing_key().public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    unsigned = jwt.encode(_claims(), None, algorithm="none")
    # HS256 keyed with our public key, built by hand (PyJWT itself refuses to do it).
    signing_input = b".".join(
        _b64url(json.dumps(part).encode())
        for part in ({"alg": "HS256", "typ": "JWT", "kid": tokens.signing_key().kid}, _claims())
    )
    mac = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    hmac_signed = (signing_input + b"." + _b64url(mac)).decode()

    for raw in (unsigned, hmac_signed, "not-a-token", ""):
        with pytest.raises(tokens.InvalidToken):
            tokens.decode_token(raw)


def test_lifetime_is_never_under_a_minute(settings):
    settings.REGISTRY_TOKEN_LIFETIME = 5
    assert tokens.token_lifetime() == 60
    settings.REGISTRY_TOKEN_LIFETIME = 900
    assert tokens.token_lifetime() == 900


# --- Refresh tokens ---------------------------------------------------------------------


def _refresh(user, *, access_token=None, lifetime=3600, service=SERVICE) -> str:
    return tokens.issue_refresh_token(
        user=user, service=service, access_token=access_token, lifetime=lifetime
    )


@pytest.mark.django_db
def test_refresh_token_round_trip_and_is_no_access_token():
    alice = factories.make_user("alice")
    raw = _refresh(alice)

    assert tokens.refresh_token_user(raw=raw, service=SERVICE) == alice
    with pytest.raises(tokens.InvalidToken):
        tokens.decode_token(raw)
    access, _, _ = tokens.issue_token(user=alice, access=[], service=SERVICE, lifetime=60)
    with pytest.raises(tokens.InvalidToken):
        tokens.refresh_token_user(raw=access, service=SERVICE)


@pytest.mark.django_db
def test_refresh_token_is_bound_to_the_service():
    alice = factories.make_user("alice")

    with pytest.raises(tokens.InvalidToken, match="another service"):
        tokens.refresh_token_user(raw=_refresh(alice, service="other"), service=SERVICE)


@pytest.mark.django_db
def test_refresh_token_dies_with_the_password():
    alice = factories.make_user("alice")
    raw = _refresh(alice)
    alice.set_password("a-new-long-password")
    alice.save()

    with pytest.raises(tokens.InvalidToken, match="no longer valid"):
        tokens.refresh_token_user(raw=raw, service=SERVICE)


@pytest.mark.django_db
def test_refresh_token_dies_with_the_user():
    alice = factories.make_user("alice")
    raw = _refresh(alice)
    alice.is_active = False
    alice.save()

    with pytest.raises(tokens.InvalidToken, match="no longer active"):
        tokens.refresh_token_user(raw=raw, service=SERVICE)


@pytest.mark.django_db
def test_refresh_token_dies_with_its_access_token():
    alice = factories.make_user("alice")
    access_token, _ = account_services.access_token_create(user=alice, name="ci")
    raw = _refresh(alice, access_token=access_token)
    alice.set_password("a-new-long-password")  # not what this token is bound to
    alice.save()
    assert tokens.refresh_token_user(raw=raw, service=SERVICE) == alice

    account_services.access_token_revoke(token=access_token)

    with pytest.raises(tokens.InvalidToken, match="no longer valid"):
        tokens.refresh_token_user(raw=raw, service=SERVICE)


@pytest.mark.django_db
def test_refresh_token_never_outlives_its_access_token():
    alice = factories.make_user("alice")
    expires_at = timezone.now() + datetime.timedelta(hours=1)
    access_token, _ = account_services.access_token_create(
        user=alice, name="ci", expires_at=expires_at
    )

    raw = _refresh(alice, access_token=access_token, lifetime=30 * 24 * 3600)

    claims = jwt.decode(raw, options={"verify_signature": False})
    assert claims["exp"] == int(expires_at.timestamp())


# --- Scopes and grants ------------------------------------------------------------------


def _parsed(*values: str) -> list[tuple[str, str, list[str]]]:
    return [(item.type, item.name, item.actions) for item in tokens.parse_scopes(values)]


def test_parse_scope():
    assert _parsed("repository:acme/app:pull,push") == [
        ("repository", "acme/app", ["pull", "push"])
    ]


def test_parse_scope_with_host_port_in_the_name():
    assert _parsed("repository:localhost:5000/acme/app:pull") == [
        ("repository", "localhost:5000/acme/app", ["pull"])
    ]


def test_parse_repeated_and_space_separated_scopes_merge_per_resource():
    assert _parsed(
        "repository:acme/app:pull",
        "repository:acme/app:push,pull repository:acme/base:pull",
        "registry:catalog:*",
    ) == [
        ("repository", "acme/app", ["pull", "push"]),
        ("repository", "acme/base", ["pull"]),
        ("registry", "catalog", ["*"]),
    ]


def test_parse_scope_drops_the_resource_class_and_empty_actions():
    assert _parsed("repository(plugin):acme/plugin:pull", "repository:acme/app:") == [
        ("repository", "acme/plugin", ["pull"]),
        ("repository", "acme/app", []),
    ]


def test_parse_no_scope():
    assert _parsed() == []
    assert _parsed("") == []


@pytest.mark.parametrize(
    "value", ["repository", "repository:acme", ":acme/app:pull", "Repo!:acme/app:pull"]
)
def test_parse_malformed_scope(value):
    with pytest.raises(tokens.InvalidScope):
        tokens.parse_scopes([value])


def test_parse_too_many_scopes():
    values = [f"repository:acme/app{index}:pull" for index in range(tokens.MAX_SCOPES + 1)]

    with pytest.raises(tokens.InvalidScope, match="At most"):
        tokens.parse_scopes(values)


# --- The registry_token_cert command ----------------------------------------------------


def _command(*args: str) -> str:
    output = io.StringIO()
    call_command("registry_token_cert", *args, stdout=output)
    return output.getvalue()


def test_command_prints_the_certificate(token_settings):
    pem = _command()

    assert pem == token_settings.REGISTRY_TOKEN_CERT_FILE.read_text()
    certificate = x509.load_pem_x509_certificate(pem.encode())
    assert tokens.key_id(certificate.public_key()) == tokens.signing_key().kid


def test_command_prints_the_path(token_settings):
    assert _command("--path").strip() == str(token_settings.REGISTRY_TOKEN_CERT_FILE)


def test_command_prints_a_registry_auth_config(token_settings):
    token_settings.PORTAL_URL = "https://portal.example"

    config = _command("--config")

    assert 'realm: "https://portal.example/auth/token"' in config
    assert f'service: "{SERVICE}"' in config
    assert f'issuer: "{ISSUER}"' in config
    assert f'rootcertbundle: "{token_settings.REGISTRY_TOKEN_CERT_FILE}"' in config
    assert tokens.signing_key().kid in config


def test_a_verified_token_is_remembered_but_still_expires(monkeypatch):
    raw = _sign(_claims(exp=int(time.time()) + 60))
    assert tokens.decode_token(raw)["sub"] == "alice"
    with monkeypatch.context() as patched:
        patched.setattr(tokens, "_verify_access_token", lambda raw: pytest.fail("re-verified"))
        assert tokens.decode_token(raw)["sub"] == "alice"  # the signature is not checked again
    later = time.time() + 60 + tokens.CLOCK_SKEW_SECONDS + 1
    monkeypatch.setattr(tokens.time, "time", lambda: later)
    with pytest.raises(tokens.InvalidToken):
        tokens.decode_token(raw)


def test_a_remembered_token_does_not_vouch_for_a_tampered_copy():
    raw = _sign(_claims())
    tokens.decode_token(raw)
    header, payload, signature = raw.split(".")
    forged = _b64url(
        json.dumps(
            _claims(
                access=[{"type": "repository", "name": "acme/app", "actions": ["pull", "push"]}]
            )
        ).encode()
    )
    with pytest.raises(tokens.InvalidToken):
        tokens.decode_token(".".join([header, forged.decode(), signature]))
