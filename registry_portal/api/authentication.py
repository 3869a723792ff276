"""Authentication of the REST API: personal access tokens, and the browser's session.

A personal access token is the same secret that works as a registry password. It comes in
``Authorization: Bearer <token>`` or ``Authorization: Token <token>``. A header with another
scheme is left to the next authenticator; a token that is unknown, revoked or expired is a 401
(the caller meant to authenticate, so answering as anonymous would mislead). The session
(``rest_framework.authentication.SessionAuthentication``) enforces CSRF on unsafe methods.

Token checks are throttled like passwords (``registry_portal.accounts.throttling``): each
failure counts against the caller's address, and past the threshold the answer is a 429
(``throttled``, with ``Retry-After``), even for a valid token.
"""

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, Throttled

from registry_portal.accounts import throttling
from registry_portal.accounts.services import access_token_valid

LOCKED_OUT = "Too many failed sign-in attempts from this address."

KEYWORDS = ("bearer", "token")


class AccessTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer <personal access token>`` (or ``Token <...>``)."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in {k.encode() for k in KEYWORDS}:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("Send 'Authorization: Bearer <token>', with one token.")
        django_request = request._request
        if throttling.is_locked_out(django_request, username=None):
            raise Throttled(wait=throttling.retry_after_seconds(), detail=LOCKED_OUT)
        try:
            secret = parts[1].decode("ascii")
        except UnicodeDecodeError:
            secret = None
        token = access_token_valid(secret=secret) if secret is not None else None
        if token is None:
            if throttling.record_failure(django_request, username=None, sender=__name__):
                raise Throttled(wait=throttling.retry_after_seconds(), detail=LOCKED_OUT)
            raise AuthenticationFailed("The token is not valid: unknown, revoked or expired.")
        return token.user, token  # request.auth: the token, which may not create tokens

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
