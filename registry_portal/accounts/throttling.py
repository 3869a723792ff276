"""Throttled authentication: failed sign-ins counted per username and per client address.

The counting and the lockout are django-axes (its cache handler, on Django's shared cache:
Redis, or the database; see README "Throttled authentication"). This module is the
portal's side of it:

- `ThrottledAuthenticationBackend` (first in ``AUTHENTICATION_BACKENDS``) refuses every
  password check of a locked-out username or address, and Django's ``authenticate()``
  reports each failure (``user_login_failed``), which axes counts. That covers the login
  page, the admin login, ``/auth/token`` and Basic auth on ``/v2/``.
- `is_locked_out` and `record_failure` do the same for the checks that do not go through
  ``authenticate()``: personal access tokens (the REST API, and as a registry password)
  and the remembered-credentials shortcut of `credentials_authenticate`.
- A request that is, or becomes, locked out is marked (``request.axes_locked_out``), and
  ``axes.middleware.AxesMiddleware`` replaces its answer with `registry_portal.lockout`'s
  429 in the shape of its surface.

A success resets nothing (``AXES_RESET_ON_SUCCESS`` is off): a login from one address must
not clear what another address has guessed against the same username. Signed bearer tokens
(our JWTs) are not counted: they cannot be guessed, and clients present expired ones in
good faith.
"""

from __future__ import annotations

from axes.backends import AxesStandaloneBackend
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth.signals import user_login_failed

# Prefixed so that no username can share a counter with an address (axes hashes the bare
# values): guessing with the username "10.0.0.7" must not lock out the address 10.0.0.7.
USERNAME_KEY_PREFIX = "user:"


def client_address(request) -> str:
    """The address failures are counted against (``AXES_CLIENT_IP_CALLABLE``).

    Behind a reverse proxy (``TRUSTED_PROXY_HEADERS``) it is the last ``X-Forwarded-For``
    entry, the one our proxy appended; a client can put anything before it. Otherwise it
    is the peer address.
    """
    if settings.TRUSTED_PROXY_HEADERS:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        last = forwarded.rsplit(",", 1)[-1].strip()
        if last:
            return last
    return request.META.get("REMOTE_ADDR", "")


def _raw_username(request, credentials: dict | None) -> str:
    if credentials:
        return credentials.get("username") or ""
    data = getattr(request, "POST", None)
    return (data.get("username") if data is not None else "") or ""


def counted_username(request, credentials: dict | None) -> str | None:
    """The username failures are counted against (``AXES_USERNAME_CALLABLE``), or None."""
    username = _raw_username(request, credentials)
    return f"{USERNAME_KEY_PREFIX}{username.casefold()}" if username else None


def lockout_parameters(request, credentials: dict | None) -> list[str]:
    """Count per address, and per username when there is one (``AXES_LOCKOUT_PARAMETERS``).

    Either counter past the threshold locks out. A token sent without a username counts
    against its address only (axes would otherwise share one counter among all of them).
    """
    if counted_username(request, credentials) is None:
        return ["ip_address"]
    return ["ip_address", "username"]


def retry_after_seconds() -> int:
    """How long a locked-out caller should wait (the counters' cool-off)."""
    cool_off = get_cool_off()
    return max(1, int(cool_off.total_seconds())) if cool_off else 3600


class ThrottledAuthenticationBackend(AxesStandaloneBackend):
    """Refuses the password checks of a locked-out username or address (checks only).

    Code that calls ``authenticate()`` without a request (a management command, a shell)
    is not throttled: there is no address to count, and no network caller.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def _credentials(username: str | None) -> dict:
    return {"username": username or None}


def is_locked_out(request, *, username: str | None) -> bool:
    """True when the request's address or `username` is past the threshold.

    The request is then marked, so its answer becomes a 429 whatever the view returns.
    """
    if request is None or not settings.AXES_ENABLED:
        return False
    credentials = _credentials(username)
    if AxesProxyHandler.is_allowed(request, credentials):
        return False
    request.axes_locked_out = True
    request.axes_credentials = credentials
    return True


def record_failure(request, *, username: str | None, sender: str = __name__) -> bool:
    """Count one failed check that did not go through ``authenticate()``.

    Returns True when this failure locked the caller out (the answer becomes a 429).
    """
    if request is None or not settings.AXES_ENABLED:
        return False
    user_login_failed.send(sender=sender, credentials=_credentials(username), request=request)
    return bool(getattr(request, "axes_locked_out", False))
