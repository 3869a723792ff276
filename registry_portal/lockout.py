"""The 429 a locked-out caller gets, in the shape of the surface it called.

``axes.middleware.AxesMiddleware`` calls `lockout_response` (``AXES_LOCKOUT_CALLABLE``) for
any request that `registry_portal.accounts.throttling` marked as locked out, whatever the
view answered: the OCI error ``TOOMANYREQUESTS`` on ``/v2/`` and ``/auth/token``, the REST
API's error shape on ``/api/``, and a plain message on pages. Each has ``Retry-After``.
"""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse

from registry_portal.accounts.throttling import retry_after_seconds
from registry_portal.api.exceptions import error_body
from registry_portal.registry.oci_errors import error_response

STATUS = 429


def _message(retry_after: int) -> str:
    minutes = max(1, round(retry_after / 60))
    return (
        "Too many failed sign-in attempts for this user or from this address. "
        f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
    )


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    retry_after = retry_after_seconds()
    message = _message(retry_after)
    headers = {"Retry-After": str(retry_after)}
    path = request.path_info
    if path == "/v2" or path.startswith(("/v2/", "/auth/token")):
        return error_response("TOOMANYREQUESTS", message, headers=headers)
    if path.startswith("/api/"):
        return JsonResponse(
            error_body(code="throttled", message=message), status=STATUS, headers=headers
        )
    return HttpResponse(
        message, status=STATUS, content_type="text/plain; charset=utf-8", headers=headers
    )
