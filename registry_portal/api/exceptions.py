"""The one exception handler of the REST API, and the one shape of its errors:

    {"error": {"code": "invalid", "message": "The policy is not valid.",
               "fields": {"rules.0": ["..."], "name": ["..."]}}}

It maps the project's errors (``registry_portal.errors``, raised by services) and DRF's own.
Field errors are flat: nested serializer errors become dotted keys (``rules.0.values``), the
same keys the services use. A service's ``PermissionDenied`` for an anonymous caller is a 401,
so that clients know to authenticate.

Errors Django raises before or around a view keep the shape under ``/api/`` too: a body
over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is a 413 ``request_too_large``, another rejected request
a 400, and a crash a 500 (``bad_request`` and ``server_error``, the project's ``handler400``
and ``handler500``, which leave pages to Django's own).
"""

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from registry_portal import errors

NON_FIELD_KEY = "non_field_errors"


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as ``{"a.0.b": [messages]}``."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        flat = {}
        for index, item in enumerate(detail):
            if item:
                flat.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return flat
    messages = detail if isinstance(detail, list) else [detail]
    return {prefix or NON_FIELD_KEY: [str(message) for message in messages]}


def error_body(*, code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _portal_error_response(exc: errors.PortalError, request) -> Response:
    fields: dict[str, list[str]] = {}
    if isinstance(exc.detail, dict):
        fields = {key: [str(m) for m in value] for key, value in exc.detail.items()}
    elif exc.field:
        fields = {exc.field: [exc.message]}
    if isinstance(exc, errors.ValidationFailed):
        code, status_code = "invalid", status.HTTP_400_BAD_REQUEST
    elif isinstance(exc, errors.PermissionDenied):
        if request is not None and not request.user.is_authenticated:
            body = error_body(code="not_authenticated", message=exc.message)
            return Response(body, status=401, headers={"WWW-Authenticate": 'Bearer realm="api"'})
        code, status_code = "permission_denied", status.HTTP_403_FORBIDDEN
    elif isinstance(exc, errors.NotFound):
        code, status_code = "not_found", status.HTTP_404_NOT_FOUND
    elif isinstance(exc, errors.TagImmutable):
        code, status_code = "tag_immutable", status.HTTP_409_CONFLICT
    elif isinstance(exc, errors.Conflict):
        code, status_code = "conflict", status.HTTP_409_CONFLICT
    else:
        code, status_code = "invalid", status.HTTP_400_BAD_REQUEST
    return Response(error_body(code=code, message=exc.message, fields=fields), status=status_code)


def _too_large_body() -> dict:
    return error_body(
        code="request_too_large",
        message="The request body is larger than "
        f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes (DATA_UPLOAD_MAX_MEMORY_SIZE).",
    )


def _rejected_body() -> dict:
    return error_body(code="bad_request", message="The request was rejected as malformed.")


def _is_api(request) -> bool:
    return request.path_info.startswith("/api/")


def bad_request(request, exception, *args, **kwargs):
    """``handler400``: the API's error shape under /api/ (413 for an oversized body)."""
    if not _is_api(request):
        return defaults.bad_request(request, exception, *args, **kwargs)
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse(_too_large_body(), status=413)
    return JsonResponse(_rejected_body(), status=400)


def server_error(request, *args, **kwargs):
    """``handler500``: the API's error shape under /api/."""
    if not _is_api(request):
        return defaults.server_error(request, *args, **kwargs)
    body = error_body(code="server_error", message="An internal error occurred.")
    return JsonResponse(body, status=500)


def exception_handler(exc, context) -> Response | None:
    """DRF's ``EXCEPTION_HANDLER``: every error the API answers goes through here."""
    request = context.get("request")
    if isinstance(exc, errors.PortalError):
        return _portal_error_response(exc, request)
    if isinstance(exc, RequestDataTooBig):
        return Response(_too_large_body(), status=413)
    if isinstance(exc, SuspiciousOperation):
        return Response(_rejected_body(), status=400)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # not an API error: a bug, left to Django's 500 handling and logging
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        message = "The input is not valid."
        if list(fields) == [NON_FIELD_KEY] and len(fields[NON_FIELD_KEY]) == 1:
            message = fields[NON_FIELD_KEY][0]
        response.data = error_body(code="invalid", message=message, fields=fields)
    else:
        code = exc.default_code if isinstance(exc, exceptions.APIException) else "error"
        response.data = error_body(code=code, message=str(getattr(exc, "detail", exc)))
    return response
