"""The Docker token service at ``/auth/token``: bearer tokens for ``/v2/``.

``GET`` is the Docker token protocol: Basic credentials (a password or a personal access
token) or none for anonymous, ``service``, repeated ``scope``, ``account`` and
``offline_token=true`` for a refresh token. ``POST`` is its OAuth2 form, which containerd
and buildkit try first: ``grant_type=password`` (``username``, ``password``) or
``grant_type=refresh_token`` (``refresh_token``), with ``service``, space-separated
``scope`` and ``access_type=offline``. ``client_id`` is accepted on both and not used.

The service never refuses for lack of permission: the token grants what was asked,
narrowed by the permission function, possibly nothing. Only bad credentials (401) and
malformed requests (400) are refused.
"""

from __future__ import annotations

import base64
import binascii

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from registry_portal.accounts.models import AccessToken
from registry_portal.accounts.services import access_token_get, credentials_authenticate

from . import tokens


class TokenRequestRefused(Exception):
    """The request cannot get a token: bad credentials (401) or bad input (400)."""

    def __init__(self, status: int, oauth_error: str, message: str):
        self.status = status
        self.oauth_error = oauth_error
        self.message = message
        super().__init__(message)


def _bad_credentials(message: str = "Incorrect username or password.") -> TokenRequestRefused:
    return TokenRequestRefused(401, "invalid_grant", message)


def _bad_request(message: str, oauth_error: str = "invalid_request") -> TokenRequestRefused:
    return TokenRequestRefused(400, oauth_error, message)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def token(request: HttpRequest) -> JsonResponse:
    """Issue an access token (and a refresh token when asked for one)."""
    try:
        if request.method == "POST":
            return _token_oauth2(request)
        return _token_docker(request)
    except TokenRequestRefused as refusal:
        return _refusal_response(refusal)


def _token_docker(request: HttpRequest) -> JsonResponse:
    service = _service(request.GET.get("service"))
    requested = _scopes(request.GET.getlist("scope"))
    user, access_token = None, None
    credentials = _basic_credentials(request)
    if credentials is not None:
        user, access_token = _authenticate(request, *credentials)
        account = request.GET.get("account")
        if account and account != user.get_username():
            raise _bad_request("The account does not match the credentials.")
    offline = user is not None and request.GET.get("offline_token", "").lower() == "true"
    return _token_response(
        user=user,
        service=service,
        requested=requested,
        offline=offline,
        access_token=access_token,
        with_scope=False,
    )


def _token_oauth2(request: HttpRequest) -> JsonResponse:
    form = request.POST
    service = _service(form.get("service"))
    requested = _scopes(form.getlist("scope"))
    grant_type = form.get("grant_type", "")
    if grant_type == "password":
        username, password = form.get("username", ""), form.get("password", "")
        if not password:
            raise _bad_request("The password grant needs a username and a password.")
        user, access_token = _authenticate(request, username, password)
        offline = form.get("access_type") == "offline"
    elif grant_type == "refresh_token":
        raw = form.get("refresh_token", "")
        if not raw:
            raise _bad_request("The refresh_token grant needs a refresh_token.")
        try:
            user = tokens.refresh_token_user(raw=raw, service=service)
        except tokens.InvalidToken as exc:
            raise _bad_credentials(f"The refresh token is not valid: {exc}") from exc
        access_token, offline = None, False
    else:
        raise _bad_request(
            "grant_type must be 'password' or 'refresh_token'.", "unsupported_grant_type"
        )
    return _token_response(
        user=user,
        service=service,
        requested=requested,
        offline=offline,
        access_token=access_token,
        with_scope=True,
    )


def _service(requested: str | None) -> str:
    service = tokens.token_service()
    if requested and requested != service:
        raise _bad_request(f"This token service issues tokens for the service {service!r} only.")
    return service


def _scopes(values: list[str]) -> list[tokens.RequestedAccess]:
    try:
        return tokens.parse_scopes(values)
    except tokens.InvalidScope as exc:
        raise _bad_request(str(exc), "invalid_scope") from exc


def _basic_credentials(request: HttpRequest) -> tuple[str, str] | None:
    """``(username, password)`` from a Basic ``Authorization`` header; None when absent."""
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise _bad_credentials("The token service takes Basic credentials only.")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _bad_credentials("Malformed Basic credentials.") from exc
    username, separator, password = decoded.partition(":")
    if not separator:
        raise _bad_credentials("Malformed Basic credentials.")
    return username, password


def _authenticate(request: HttpRequest, username: str, password: str):
    """The active user and the personal access token used (None for a password), or 401."""
    user = credentials_authenticate(username=username, password=password, request=request)
    if user is None or not user.is_active:
        raise _bad_credentials()
    # Which token it was, so that a refresh token dies with it. A password that merely
    # looks like a token matches no row and binds to the password.
    access_token = access_token_get(secret=password)
    if access_token is not None and access_token.user_id != user.pk:
        access_token = None
    return user, access_token


def _token_response(
    *,
    user,
    service: str,
    requested: list[tokens.RequestedAccess],
    offline: bool,
    access_token: AccessToken | None,
    with_scope: bool,
) -> JsonResponse:
    """The token answer, with a refresh token bound to ``access_token`` (or the password)
    when ``offline``, and the granted ``scope`` for OAuth2 clients when ``with_scope``."""
    access = tokens.access_granted(user=user, requested=requested)
    raw, expires_in, issued_at = tokens.issue_token(
        user=user, access=access, service=service, lifetime=tokens.token_lifetime()
    )
    body = {
        "token": raw,
        "access_token": raw,
        "expires_in": expires_in,
        "issued_at": issued_at.isoformat().replace("+00:00", "Z"),
    }
    if with_scope:
        body["scope"] = " ".join(
            f"{entry['type']}:{entry['name']}:{','.join(entry['actions'])}" for entry in access
        )
    if offline:
        body["refresh_token"] = tokens.issue_refresh_token(
            user=user,
            service=service,
            access_token=access_token,
            lifetime=settings.REGISTRY_REFRESH_TOKEN_LIFETIME,
        )
    response = JsonResponse(body)
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


def _refusal_response(refusal: TokenRequestRefused) -> JsonResponse:
    """An error both Docker clients (``errors``) and OAuth2 clients (``error``) can read."""
    code = "UNAUTHORIZED" if refusal.status == 401 else refusal.oauth_error.upper()
    body = {
        "errors": [{"code": code, "message": refusal.message, "detail": None}],
        "error": refusal.oauth_error,
        "error_description": refusal.message,
    }
    response = JsonResponse(body, status=refusal.status)
    response["Cache-Control"] = "no-store"
    if refusal.status == 401:
        response["WWW-Authenticate"] = f'Basic realm="{tokens.token_service()}"'
    return response
