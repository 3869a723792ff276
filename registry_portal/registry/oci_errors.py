"""The error format of the /v2/ Distribution API: OCI error codes, their statuses and bodies.

Every /v2/ response carries ``Docker-Distribution-API-Version: registry/2.0``; every error is
``{"errors": [{"code", "message", "detail"}]}`` served as exactly ``application/json``.
Project errors (``registry_portal.errors``) raised by services are mapped to codes here.
"""

from __future__ import annotations

import json

from django.http import HttpResponse

from registry_portal.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    PortalError,
    ValidationFailed,
)

API_VERSION_HEADER = "Docker-Distribution-API-Version"
API_VERSION = "registry/2.0"

STATUS_BY_CODE = {
    "BLOB_UNKNOWN": 404,
    "BLOB_UPLOAD_INVALID": 400,
    "BLOB_UPLOAD_UNKNOWN": 404,
    "DIGEST_INVALID": 400,
    "MANIFEST_BLOB_UNKNOWN": 400,
    "MANIFEST_INVALID": 400,
    "MANIFEST_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "NAME_UNKNOWN": 404,
    "SIZE_INVALID": 400,
    "TAG_INVALID": 400,
    "PAGINATION_NUMBER_INVALID": 400,
    "UNAUTHORIZED": 401,
    "DENIED": 403,
    "UNSUPPORTED": 405,
    "RANGE_INVALID": 416,
    "TOOMANYREQUESTS": 429,
}

DEFAULT_MESSAGES = {
    "BLOB_UNKNOWN": "blob unknown to registry",
    "BLOB_UPLOAD_INVALID": "blob upload invalid",
    "BLOB_UPLOAD_UNKNOWN": "blob upload unknown to registry",
    "DIGEST_INVALID": "provided digest did not match uploaded content",
    "MANIFEST_BLOB_UNKNOWN": "manifest references a manifest or blob unknown to registry",
    "MANIFEST_INVALID": "manifest invalid",
    "MANIFEST_UNKNOWN": "manifest unknown to registry",
    "NAME_INVALID": "invalid repository name",
    "NAME_UNKNOWN": "repository name not known to registry",
    "SIZE_INVALID": "provided length did not match content length",
    "TAG_INVALID": "invalid tag",
    "PAGINATION_NUMBER_INVALID": "invalid number of results requested",
    "UNAUTHORIZED": "authentication required",
    "DENIED": "requested access to the resource is denied",
    "UNSUPPORTED": "the operation is unsupported",
    "RANGE_INVALID": "invalid content range",
    "TOOMANYREQUESTS": "too many requests",
}

# A project error that names no OCI code is mapped by the field it concerns.
_CODE_BY_FIELD = {
    "name": "NAME_INVALID",
    "tag": "TAG_INVALID",
    "reference": "TAG_INVALID",
    "digest": "DIGEST_INVALID",
    "size": "SIZE_INVALID",
    "range": "RANGE_INVALID",
}


class OCIError(Exception):
    """An error the /v2/ views answer directly, with an OCI code and optional extra headers."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        detail=None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ):
        self.code = code
        self.message = message or DEFAULT_MESSAGES[code]
        self.detail = detail
        self.status = status or STATUS_BY_CODE[code]
        self.headers = headers or {}
        super().__init__(self.message)


def error_response(
    code: str,
    message: str | None = None,
    *,
    detail=None,
    status: int | None = None,
    headers: dict[str, str] | None = None,
    errors: list[dict] | None = None,
) -> HttpResponse:
    """An OCI error response. ``errors`` gives several entries at once (e.g. missing blobs)."""
    entries = errors or [
        {"code": code, "message": message or DEFAULT_MESSAGES[code], "detail": detail}
    ]
    response = HttpResponse(
        json.dumps({"errors": entries}).encode(),
        status=status or STATUS_BY_CODE[code],
        content_type="application/json",
    )
    for name, value in (headers or {}).items():
        response[name] = value
    response[API_VERSION_HEADER] = API_VERSION
    return response


def oci_error_response(error: OCIError) -> HttpResponse:
    return error_response(
        error.code,
        error.message,
        detail=error.detail,
        status=error.status,
        headers=error.headers,
    )


def portal_error_code(error: PortalError) -> str:
    """The OCI code for a project error: its own ``oci_code``, else by its kind and field."""
    code = getattr(error, "oci_code", None)
    if code:
        return code
    if isinstance(error, ValidationFailed):
        return _CODE_BY_FIELD.get(error.field or "", "MANIFEST_INVALID")
    if isinstance(error, PermissionDenied | Conflict):
        # An immutable tag is a refusal: clients show DENIED with our message.
        return "DENIED"
    if isinstance(error, NotFound):
        return "NAME_UNKNOWN"
    return "UNSUPPORTED"


def portal_error_response(error: PortalError) -> HttpResponse:
    """The OCI response for a project error. A list ``detail`` gives one entry per item."""
    code = portal_error_code(error)
    status = getattr(error, "oci_status", None)
    if isinstance(error.detail, list) and error.detail:
        entries = [
            {"code": code, "message": error.message, "detail": item} for item in error.detail
        ]
        return error_response(code, status=status, errors=entries)
    return error_response(code, error.message, detail=error.detail, status=status)
