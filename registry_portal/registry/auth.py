"""Who is calling /v2/, and what they may do to a repository.

Three ways in: ``Authorization: Bearer <jwt>`` issued by our token service, ``Authorization:
Basic`` (a password or a personal access token, for scripts), or nobody. What a caller may
do is always the permission function of ``accounts`` (asked now, not when a token was
issued); a Bearer token can only narrow it to the access it carries.

Refusals follow what clients expect: 401 with a ``WWW-Authenticate: Bearer`` challenge for
anonymous and Bearer callers (they fetch a token and retry), 403 ``DENIED`` for a Basic user
who lacks the right (clients show a permission error).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from registry_portal.accounts.choices import ACTIONS_BY_LEVEL, AccessLevel
from registry_portal.accounts.permissions import repository_actions, repository_name_actions
from registry_portal.accounts.services import credentials_authenticate

from .oci_errors import OCIError

BEARER, BASIC, ANONYMOUS = "bearer", "basic", "anonymous"
ALL_ACTIONS = ACTIONS_BY_LEVEL[AccessLevel.ADMIN]


class AuthenticationFailed(Exception):
    """Credentials were sent and are wrong (bad password, invalid or expired token)."""

    def __init__(self, message: str, *, reason: str | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class Caller:
    """The authenticated caller of a /v2/ request."""

    user: object
    scheme: str
    access: tuple = ()

    def _token_actions(self, type_: str, name: str) -> frozenset[str]:
        actions: set[str] = set()
        for entry in self.access:
            if not isinstance(entry, dict):
                continue
            if entry.get("type") == type_ and entry.get("name") == name:
                granted = entry.get("actions")
                if isinstance(granted, list):
                    actions.update(a for a in granted if isinstance(a, str))
        return ALL_ACTIONS if "*" in actions else frozenset(actions)

    def permitted_actions(self, full_name: str, repository=None) -> frozenset[str]:
        """What the caller's user may do on the repository, whatever a token narrows it to."""
        return (
            repository_actions(self.user, repository)
            if repository is not None
            else repository_name_actions(self.user, full_name)
        )

    def repository_actions(self, full_name: str, repository=None) -> frozenset[str]:
        """The actions this caller may take now on the repository (existing or to be pushed)."""
        allowed = self.permitted_actions(full_name, repository)
        if self.scheme == BEARER:
            return allowed & self._token_actions("repository", full_name)
        return allowed

    def may_list_catalog(self) -> bool:
        """Bearer callers need ``registry:catalog:*``; others see what they may see."""
        if self.scheme != BEARER:
            return True
        return self._token_actions("registry", "catalog") == ALL_ACTIONS


def _bearer(raw: str) -> Caller:
    from . import tokens

    try:
        claims = tokens.decode_token(raw)
    except tokens.InvalidToken as error:
        raise AuthenticationFailed(
            f"The token is invalid or expired: {error}", reason="invalid_token"
        ) from None
    subject = claims.get("sub") or ""
    user = AnonymousUser()
    if subject:
        user_model = get_user_model()
        user = user_model.objects.filter(
            **{user_model.USERNAME_FIELD: subject}, is_active=True
        ).first()
        if user is None:
            raise AuthenticationFailed(
                "The token's user no longer exists or is inactive.", reason="invalid_token"
            )
    access = claims.get("access") or []
    return Caller(
        user=user, scheme=BEARER, access=tuple(access if isinstance(access, list) else ())
    )


def _basic(raw: str, request) -> Caller:
    try:
        decoded = base64.b64decode(raw.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise AuthenticationFailed("The Basic credentials are malformed.") from None
    username, separator, password = decoded.partition(":")
    if not separator:
        raise AuthenticationFailed("The Basic credentials are malformed.")
    user = credentials_authenticate(username=username, password=password, request=request)
    if user is None or not user.is_active:
        raise AuthenticationFailed("The username or password is incorrect.")
    return Caller(user=user, scheme=BASIC)


def caller_authenticate(request) -> Caller:
    """The caller of a /v2/ request; raises ``AuthenticationFailed`` for wrong credentials."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, raw = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and raw.strip():
        return _bearer(raw.strip())
    if scheme == "basic" and raw.strip():
        return _basic(raw, request)
    return Caller(user=AnonymousUser(), scheme=ANONYMOUS)


def repository_scope(full_name: str, actions) -> str:
    """A token scope string, e.g. ``repository:dev/web:pull,push``."""
    order = ("pull", "push", "delete")
    return f"repository:{full_name}:{','.join(a for a in order if a in actions)}"


def challenge(*, scope: str | None = None, error: str | None = None) -> str:
    """The ``WWW-Authenticate`` value that sends clients to the token service."""
    parts = [
        f'Bearer realm="{settings.PORTAL_URL}/auth/token"',
        f'service="{settings.REGISTRY_TOKEN_SERVICE}"',
    ]
    if scope:
        parts.append(f'scope="{scope}"')
    if error:
        parts.append(f'error="{error}"')
    return ",".join(parts)


def unauthorized(message: str, *, scope: str | None = None, error: str | None = None) -> OCIError:
    return OCIError(
        "UNAUTHORIZED",
        message,
        headers={"WWW-Authenticate": challenge(scope=scope, error=error)},
    )


def refusal(caller: Caller, *, scope: str, message: str) -> OCIError:
    """The error for a caller lacking a right: 403 for Basic users, else a 401 challenge."""
    if caller.scheme == BASIC:
        return OCIError("DENIED", message)
    if caller.scheme == BEARER:
        return unauthorized(message, scope=scope, error="insufficient_scope")
    return unauthorized("Authentication required.", scope=scope)
