"""Bearer tokens of the Docker token service: the signing key, access and refresh tokens.

The token service (``token_views``) issues short-lived JWTs that ``/v2/`` verifies with
``decode_token``. They are signed with ES256 (or RS256 for an operator-supplied RSA key) and
carry a libtrust-form ``kid``, so that a stock distribution registry configured with our
certificate as ``auth.token.rootcertbundle`` trusts them too.

The private key is generated on first use into ``REGISTRY_TOKEN_KEY_FILE`` (default
``DATA_DIR/keys/token.key``, mode 0600), with a self-signed certificate for it in
``REGISTRY_TOKEN_CERT_FILE``. Both are published with a hard link, which fails if the file
exists: processes racing on first start all end up reading the one complete file that won.

Refresh tokens (``offline_token=true`` / ``access_type=offline``) are JWTs too, signed by the
same key with ``typ: refresh`` and the token service (the issuer) as audience, so neither
``/v2/`` nor a stock registry accepts them as access tokens. They are revocable enough:
on every use the user must still be active, and the credential the token was obtained with
must still be good. A password-bound refresh token dies when the password changes; a
token-bound one dies when that personal access token is revoked or expires (and never
outlives it). Rotating the key or ``SECRET_KEY`` invalidates every refresh token.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import functools
import hashlib
import os
import re
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from registry_portal.accounts.choices import Action
from registry_portal.accounts.models import AccessToken
from registry_portal.accounts.permissions import repository_name_actions

# Verification tolerates this much clock difference between the processes that issue and
# check tokens (several web processes on several machines).
CLOCK_SKEW_SECONDS = 10
MIN_TOKEN_LIFETIME = 60  # clients refresh tokens that live less than this (Docker token spec)
CERTIFICATE_LIFETIME = datetime.timedelta(days=3650)
REFRESH_TYPE = "refresh"
_CREDENTIAL_BINDING_SALT = "registry_portal.registry.tokens.refresh-password"
# Canonical order of granted actions, so that equal grants give equal claims.
_ACTION_ORDER = [str(action) for action in Action]
MAX_SCOPES = 50  # distinct resources per token request; real clients ask for a handful


class InvalidToken(Exception):
    """A bearer or refresh token that is malformed, forged, expired or not meant for us."""


class InvalidScope(ValueError):
    """A ``scope`` value that does not follow ``type:name:actions``."""


# --- Key management ---------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    """The token service's key pair, the JWS algorithm it signs with and its libtrust kid."""

    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = field(repr=False)
    algorithm: str
    kid: str
    key_path: Path
    certificate_path: Path

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
        return self.private_key.public_key()

    def certificate_pem(self) -> bytes:
        return self.certificate_path.read_bytes()


def key_id(public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey) -> str:
    """The libtrust key id: sha256 of the DER SubjectPublicKeyInfo, first 240 bits, base32.

    That is 48 base32 characters (no padding) in 12 groups of 4 joined by ``:``, the form a
    distribution registry computes for every key of its ``rootcertbundle``.
    """
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(encoded[start : start + 4] for start in range(0, len(encoded), 4))


def signing_key() -> SigningKey:
    """The configured signing key, generated (with its certificate) on first use."""
    return _load_signing_key(
        Path(settings.REGISTRY_TOKEN_KEY_FILE), Path(settings.REGISTRY_TOKEN_CERT_FILE)
    )


@functools.lru_cache(maxsize=8)
def _load_signing_key(key_path: Path, certificate_path: Path) -> SigningKey:
    private_key = _private_key_ensure(key_path)
    _certificate_ensure(certificate_path, private_key)
    if isinstance(private_key, rsa.RSAPrivateKey):
        algorithm = "RS256"
    elif isinstance(private_key, ec.EllipticCurvePrivateKey) and isinstance(
        private_key.curve, ec.SECP256R1
    ):
        algorithm = "ES256"
    else:
        raise ImproperlyConfigured(
            f"{key_path}: the token key must be an RSA or an EC P-256 private key."
        )
    return SigningKey(
        private_key=private_key,
        algorithm=algorithm,
        kid=key_id(private_key.public_key()),
        key_path=key_path,
        certificate_path=certificate_path,
    )


def _publish_exclusively(path: Path, content: bytes, *, mode: int) -> None:
    """Create ``path`` with ``content`` unless it exists, never exposing a partial file.

    The content is written to a private temporary file first and then hard-linked into
    place: ``link`` fails when the target exists, like ``O_EXCL``, so the first process
    wins and the others keep its file.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temporary_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary_name, mode)
        # If another process won the race, its file is the one everybody uses.
        with contextlib.suppress(FileExistsError):
            os.link(temporary_name, path)
    finally:
        os.unlink(temporary_name)


def _private_key_ensure(path: Path) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    if not path.exists():
        new_key = ec.generate_private_key(ec.SECP256R1())
        _publish_exclusively(
            path,
            new_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            mode=0o600,
        )
    try:
        private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{path}: not a PEM private key without password.") from exc
    if not isinstance(private_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ImproperlyConfigured(f"{path}: the token key must be an RSA or EC private key.")
    return private_key


def _certificate_ensure(
    path: Path, private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
) -> None:
    """Make sure ``path`` holds a certificate for this key; create a self-signed one if not."""
    public_der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if not path.exists():
        _publish_exclusively(path, _self_signed_certificate(private_key), mode=0o644)
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except ValueError as exc:
        raise ImproperlyConfigured(f"{path}: not a PEM X.509 certificate.") from exc
    certificate_der = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if certificate_der != public_der:
        raise ImproperlyConfigured(
            f"{path} is a certificate for another key than the token key. "
            "Delete it to have one generated for the current key."
        )


def _self_signed_certificate(private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, token_issuer())])
    now = datetime.datetime.now(datetime.UTC)
    public_key = private_key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CERTIFICATE_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(private_key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


# --- Settings ---------------------------------------------------------------------------


def token_issuer() -> str:
    """The ``iss`` of our tokens; a downstream registry's ``auth.token.issuer``."""
    return settings.REGISTRY_TOKEN_ISSUER


def token_service() -> str:
    """The service (JWT audience) our tokens are for: ``REGISTRY_TOKEN_SERVICE``."""
    return settings.REGISTRY_TOKEN_SERVICE


def token_lifetime() -> int:
    """Seconds an access token lives: ``REGISTRY_TOKEN_LIFETIME``, never under a minute."""
    return max(MIN_TOKEN_LIFETIME, int(settings.REGISTRY_TOKEN_LIFETIME))


# --- Access tokens ----------------------------------------------------------------------


def _subject(user) -> str:
    return user.get_username() if user is not None and user.is_authenticated else ""


def issue_token(
    *, user, access: list[dict], service: str, lifetime: int
) -> tuple[str, int, datetime.datetime]:
    """Sign an access token for ``service`` granting ``access``; ``user`` may be anonymous.

    Returns ``(jwt, expires_in, issued_at)``.
    """
    key = signing_key()
    issued_at = int(time.time())
    claims = {
        "iss": token_issuer(),
        "sub": _subject(user),
        "aud": service,
        "exp": issued_at + lifetime,
        "nbf": issued_at,
        "iat": issued_at,
        "jti": uuid.uuid4().hex,
        "access": access,
    }
    raw = jwt.encode(claims, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid})
    return raw, lifetime, datetime.datetime.fromtimestamp(issued_at, datetime.UTC)


def _is_access_list(value) -> bool:
    return isinstance(value, list) and all(
        isinstance(entry, dict)
        and isinstance(entry.get("type"), str)
        and isinstance(entry.get("name"), str)
        and isinstance(entry.get("actions"), list)
        and all(isinstance(action, str) for action in entry["actions"])
        for entry in value
    )


def _decode(raw: str, *, audience: str, required: list[str]) -> dict:
    key = signing_key()
    try:
        return jwt.decode(
            raw,
            key.public_key,
            algorithms=[key.algorithm],
            audience=audience,
            issuer=token_issuer(),
            leeway=CLOCK_SKEW_SECONDS,
            options={"require": required},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from exc


# A client sends the same token with every request of a push (30 and more): its signature is
# verified once per process, then only its validity window is checked. Keyed by the whole
# token, so any other token (or a tampered one) is verified in full.
_VERIFIED_MAX = 2048
_verified: OrderedDict[str, dict] = OrderedDict()
_verified_lock = threading.Lock()


def decode_token(raw: str) -> dict:
    """The claims of an access token we signed for our service; raises ``InvalidToken``.

    Checks the signature (with our key and algorithm only), ``exp``/``nbf`` with a small
    clock-skew allowance, ``aud`` against the configured service, ``iss`` and the shape of
    ``access``.
    """
    with _verified_lock:
        claims = _verified.get(raw)
    if claims is not None:
        if time.time() < claims["exp"] + CLOCK_SKEW_SECONDS:
            return claims
        with _verified_lock:
            _verified.pop(raw, None)
        raise InvalidToken("Signature has expired")
    claims = _verify_access_token(raw)
    with _verified_lock:
        _verified[raw] = claims
        while len(_verified) > _VERIFIED_MAX:
            _verified.popitem(last=False)
    return claims


def _verify_access_token(raw: str) -> dict:
    claims = _decode(
        raw,
        audience=token_service(),
        required=["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "access"],
    )
    if claims.get("typ") == REFRESH_TYPE:
        raise InvalidToken("A refresh token is not an access token.")
    if not _is_access_list(claims["access"]):
        raise InvalidToken("The access claim is malformed.")
    return claims


# --- Refresh tokens ---------------------------------------------------------------------


def _password_binding(user) -> str:
    # Changes whenever the password does (Django rotates the hash), like session hashes.
    return salted_hmac(_CREDENTIAL_BINDING_SALT, user.password, algorithm="sha256").hexdigest()


def issue_refresh_token(
    *, user, service: str, access_token: AccessToken | None, lifetime: int
) -> str:
    """A refresh token for ``user`` and ``service``, bound to the credential used to log in.

    ``access_token`` is the personal access token the user authenticated with, or None for
    the password. The refresh token never outlives that access token.
    """
    key = signing_key()
    issued_at = int(time.time())
    expires = issued_at + lifetime
    claims = {
        "iss": token_issuer(),
        "sub": user.get_username(),
        "aud": token_issuer(),
        "typ": REFRESH_TYPE,
        "uid": user.pk,
        "service": service,
        "iat": issued_at,
        "nbf": issued_at,
        "jti": uuid.uuid4().hex,
    }
    if access_token is not None:
        claims["pat"] = access_token.pk
        if access_token.expires_at is not None:
            expires = min(expires, int(access_token.expires_at.timestamp()))
    else:
        claims["pwd"] = _password_binding(user)
    claims["exp"] = expires
    return jwt.encode(claims, key.private_key, algorithm=key.algorithm, headers={"kid": key.kid})


def refresh_token_user(*, raw: str, service: str):
    """The user a refresh token for ``service`` stands for; raises ``InvalidToken``.

    The user must still be active and still hold the credential the token is bound to.
    """
    claims = _decode(
        raw,
        audience=token_issuer(),
        required=["iss", "sub", "aud", "exp", "nbf", "iat", "jti", "typ", "uid", "service"],
    )
    if claims["typ"] != REFRESH_TYPE:
        raise InvalidToken("Not a refresh token.")
    if claims["service"] != service:
        raise InvalidToken("The refresh token was issued for another service.")
    user = get_user_model().objects.filter(pk=claims["uid"], is_active=True).first()
    if user is None or user.get_username() != claims["sub"]:
        raise InvalidToken("The user of the refresh token is no longer active.")
    if "pat" in claims:
        credential_alive = (
            AccessToken.objects.filter(pk=claims["pat"], user=user, revoked_at__isnull=True)
            .exclude(expires_at__lte=timezone.now())
            .exists()
        )
    else:
        credential_alive = isinstance(claims.get("pwd"), str) and constant_time_compare(
            claims["pwd"], _password_binding(user)
        )
    if not credential_alive:
        raise InvalidToken("The credential the refresh token was obtained with is no longer valid.")
    return user


# --- Scopes and grants ------------------------------------------------------------------

_TYPE_CLASS_RE = re.compile(r"^(?P<type>[a-z0-9]+)(?:\([a-z0-9]+\))?$")


@dataclass
class RequestedAccess:
    """One resource a client asks access to, with the actions it asks for."""

    type: str
    name: str
    actions: list[str]


def parse_scopes(values: Iterable[str]) -> list[RequestedAccess]:
    """Parse ``scope`` values: ``type:name:actions`` items, space-separated within a value.

    The name may contain a ``host:port`` colon, so the type ends at the first colon and the
    actions start after the last one. A resource class (``repository(plugin)``) is dropped.
    Requests for the same resource are merged. Raises ``InvalidScope``.
    """
    merged: dict[tuple[str, str], RequestedAccess] = {}
    for value in values:
        for item in value.split():
            resource_type, _, rest = item.partition(":")
            name, separator, actions = rest.rpartition(":")
            type_match = _TYPE_CLASS_RE.match(resource_type)
            if not separator or not name or type_match is None:
                raise InvalidScope(f"Malformed scope {item!r}: expected type:name:actions.")
            key = (type_match["type"], name)
            requested = merged.setdefault(key, RequestedAccess(key[0], name, []))
            for action in actions.split(","):
                if action and action not in requested.actions:
                    requested.actions.append(action)
            if len(merged) > MAX_SCOPES:
                raise InvalidScope(f"At most {MAX_SCOPES} resources may be asked for at once.")
    return list(merged.values())


def _granted_actions(user, requested: RequestedAccess) -> list[str]:
    if requested.type == "repository":
        allowed = {str(action) for action in repository_name_actions(user, requested.name)}
        wanted = allowed if "*" in requested.actions else set(requested.actions)
        return [action for action in _ACTION_ORDER if action in wanted & allowed]
    if requested.type == "registry" and requested.name == "catalog":
        # The catalog filters itself by the permission function; it is open to any user.
        authenticated = user is not None and user.is_authenticated and user.is_active
        return ["*"] if authenticated and "*" in requested.actions else []
    return []


def access_granted(*, user, requested: list[RequestedAccess]) -> list[dict]:
    """The ``access`` claim: what was asked, narrowed to what the permission function allows.

    Never refuses: resources with nothing allowed are left out. ``*`` on a repository means
    every action the user has there.
    """
    granted = []
    for item in requested:
        actions = _granted_actions(user, item)
        if actions:
            granted.append({"type": item.type, "name": item.name, "actions": actions})
    return granted
