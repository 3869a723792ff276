"""The /v2/ Distribution API (OCI distribution-spec v1.1): a protocol surface of its own.

Views parse the protocol (names, references, headers, ranges, pagination), ask ``auth`` who
calls and what they may do, call ``services``/``selectors``, and answer with OCI headers and
error bodies. Blob bodies are never read through ``request.body``: they stream from the WSGI
input (to EOF when the body is chunked with no length) into storage.
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.http import FileResponse, HttpResponse, HttpResponseRedirect
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from registry_portal import grammar
from registry_portal.errors import PortalError
from registry_portal.observability.metrics import counted

from . import auth, selectors, services, storage
from .manifests import OCI_INDEX, ManifestTooLarge, manifest_effective_artifact_type
from .oci_errors import (
    API_VERSION,
    API_VERSION_HEADER,
    OCIError,
    error_response,
    oci_error_response,
    portal_error_response,
)

PULL, PUSH, DELETE = "pull", "push", "delete"
ACTIONS_BY_METHOD = {
    "GET": frozenset({PULL}),
    "HEAD": frozenset({PULL}),
    "POST": frozenset({PULL, PUSH}),
    "PUT": frozenset({PULL, PUSH}),
    "PATCH": frozenset({PULL, PUSH}),
    "DELETE": frozenset({DELETE}),
}
RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
CONTENT_RANGE_RE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")
OCTET_STREAM = "application/octet-stream"


def _empty(status: int, headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(b"", status=status)
    response["Content-Length"] = "0"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _json(value, *, status: int = 200, content_type: str = "application/json") -> HttpResponse:
    return HttpResponse(json.dumps(value).encode(), status=status, content_type=content_type)


def _body_stream(request):
    """The request body as a stream and its announced length (None: read to EOF).

    With a Content-Length, Django's limited stream; without one, the raw WSGI input when the
    server terminates it (gunicorn sets ``wsgi.input_terminated`` for chunked bodies).
    """
    raw_length = request.META.get("CONTENT_LENGTH") or ""
    if raw_length.strip():
        try:
            length = int(raw_length)
        except ValueError:
            raise OCIError("SIZE_INVALID", "The Content-Length is not a number.") from None
        if length < 0:
            raise OCIError("SIZE_INVALID", "The Content-Length is negative.")
        return counted(request), length
    if request.META.get("wsgi.input_terminated"):
        return counted(request.META["wsgi.input"]), None
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        raise OCIError(
            "BLOB_UPLOAD_INVALID",
            "This server cannot read a chunked body: run the portal under gunicorn.",
            status=411,
        )
    return request, 0


def _page_limit(request) -> int | None:
    """The ``n`` of a paginated list: None (all), or a number >= 0."""
    raw = request.GET.get("n")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise OCIError("PAGINATION_NUMBER_INVALID", f"n must be a number >= 0, not {raw[:40]!r}.")
    return int(raw)


def _paginate(response: HttpResponse, *, path: str, items: list[str], limit: int | None) -> None:
    """Add ``Link: <...>; rel="next"`` when a full page suggests more remain."""
    if limit and len(items) > limit:
        query = urlencode({"n": limit, "last": items[limit - 1]})
        response["Link"] = f'<{path}?{query}>; rel="next"'


@method_decorator(csrf_exempt, name="dispatch")
class RegistryView(View):
    """Base of every /v2/ view: OCI errors and the API version header on every response."""

    http_method_names = ["get", "head", "post", "put", "patch", "delete"]

    def dispatch(self, request, *args, **kwargs):
        try:
            response = self.handle(request, *args, **kwargs)
        except auth.AuthenticationFailed as failure:
            response = oci_error_response(
                auth.unauthorized(
                    failure.message, scope=self.scope_for(request, kwargs), error=failure.reason
                )
            )
        except OCIError as error:
            response = oci_error_response(error)
        except PortalError as error:
            response = portal_error_response(error)
        if request.method == "HEAD" and response.status_code >= 400:
            response.content = b""  # HEAD answers carry no body, errors included
        response[API_VERSION_HEADER] = API_VERSION
        return response

    def handle(self, request, *args, **kwargs):
        return super().dispatch(request, *args, **kwargs)

    def scope_for(self, request, kwargs) -> str | None:
        """The token scope a challenge names for this request."""
        return None

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise OCIError(
            "UNSUPPORTED",
            f"{request.method} is not supported here.",
            headers={"Allow": ", ".join(m.upper() for m in self._allowed_methods())},
        )


class BaseView(RegistryView):
    """``GET /v2/``: 200 for an authenticated caller, else the challenge clients discover."""

    def get(self, request):
        caller = auth.caller_authenticate(request)
        if caller.scheme == auth.ANONYMOUS:
            raise auth.unauthorized("Authentication required.")
        return _json({})

    head = get


class CatalogView(RegistryView):
    """``GET /v2/_catalog``: the repositories the caller may see, paginated."""

    def scope_for(self, request, kwargs) -> str:
        return "registry:catalog:*"

    def get(self, request):
        caller = auth.caller_authenticate(request)
        if caller.scheme == auth.ANONYMOUS:
            # As distribution and Harbor do: a client logs in on the challenge, then lists.
            raise auth.unauthorized("Authentication required.", scope=self.scope_for(request, {}))
        if not caller.may_list_catalog():
            raise auth.unauthorized(
                "Listing the catalog needs the registry:catalog:* scope.",
                scope=self.scope_for(request, {}),
                error="insufficient_scope",
            )
        limit = _page_limit(request)
        last = request.GET.get("last", "")
        names = selectors.catalog_page(
            user=caller.user, limit=None if limit is None else limit + 1, last=last
        )
        response = _json({"repositories": names[:limit] if limit is not None else names})
        _paginate(response, path="/v2/_catalog", items=names, limit=limit)
        return response


class RepositoryView(RegistryView):
    """A view under ``/v2/<name>/``: checks the name, authenticates and authorizes."""

    # Methods that may create the repository on first push.
    creates_repository: frozenset[str] = frozenset()

    def needed_actions(self, request) -> frozenset[str] | None:
        return ACTIONS_BY_METHOD.get(request.method)

    def scope_for(self, request, kwargs) -> str | None:
        actions = self.needed_actions(request)
        name = kwargs.get("name", "")
        return self.challenge_scope(request, name, actions) if actions and name else None

    def challenge_scope(self, request, name: str, actions) -> str:
        """The scopes a challenge for this request names (space-separated, as distribution)."""
        return auth.repository_scope(name, actions)

    def handle(self, request, *args, name: str, **kwargs):
        if request.method.lower() not in self._allowed_methods_lower():
            return self.http_method_not_allowed(request)
        if not grammar.is_valid_repository_name(name):
            raise OCIError(
                "NAME_INVALID",
                f"{name[:300]!r} is not a valid repository name: {grammar.REPOSITORY_NAME_RULES}.",
                detail={"name": name[:300]},
            )
        if "/" not in name:
            raise OCIError(
                "DENIED",
                f"Repositories live in a namespace: push to '<namespace>/{name}', where the "
                "namespace is an organization or your username.",
            )
        needed = self.needed_actions(request)
        self.caller = auth.caller_authenticate(request)
        self.repository = selectors.repository_get_by_full_name(full_name=name)
        actions = self.caller.repository_actions(name, self.repository)
        if not needed <= actions:
            raise auth.refusal(
                self.caller,
                scope=self.challenge_scope(request, name, needed),
                message=f"You may not {'/'.join(sorted(needed))} {name}.",
            )
        self.name = name
        if self.repository is None:
            if request.method not in self.creates_repository:
                raise OCIError("NAME_UNKNOWN", f"The repository {name} does not exist.")
            # A first push creates the repository with what it pushes, or not at all: an
            # invalid manifest leaves no empty repository behind.
            with transaction.atomic():
                self.repository = services.repository_get_or_create_for_push(
                    full_name=name, user=self.caller.user
                )
                response = super().handle(request, *args, **kwargs)
                if response.status_code >= 400:
                    transaction.set_rollback(True)
                return response
        return super().handle(request, *args, **kwargs)

    def _allowed_methods_lower(self) -> set[str]:
        return {m.lower() for m in self._allowed_methods()}


def _check_reference(reference: str) -> None:
    if grammar.is_digest_reference(reference):
        _check_digest(reference)
    elif not grammar.is_valid_tag(reference):
        raise OCIError(
            "TAG_INVALID", f"{reference[:140]!r} is not a valid tag: {grammar.TAG_RULES}."
        )


def _check_digest(digest: str) -> None:
    if not grammar.is_valid_digest(digest):
        raise OCIError(
            "DIGEST_INVALID", f"{digest[:140]!r} is not a valid digest: {grammar.DIGEST_RULES}."
        )


def _read_manifest_body(request) -> bytes:
    """The manifest bytes, reading at most the size limit plus one byte."""
    limit = settings.REGISTRY_MAX_MANIFEST_BYTES
    too_large = ManifestTooLarge(f"The manifest is larger than the limit of {limit} bytes.")
    stream, length = _body_stream(request)
    if length is not None and length > limit:
        raise too_large
    chunks, total = [], 0
    while total <= limit:
        chunk = stream.read(limit + 1 - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total > limit:
        raise too_large
    return b"".join(chunks)


class ManifestView(RepositoryView):
    """``/v2/<name>/manifests/<reference>``: GET, HEAD, PUT, DELETE by tag or digest."""

    creates_repository = frozenset({"PUT"})

    def get(self, request, reference: str):
        _check_reference(reference)
        manifest = selectors.manifest_by_reference(repository=self.repository, reference=reference)
        if manifest is None:
            raise OCIError("MANIFEST_UNKNOWN", f"{reference[:140]} is unknown to {self.name}.")
        content = bytes(manifest.content) if request.method == "GET" else b""
        response = HttpResponse(content, content_type=manifest.media_type)
        response["Content-Length"] = str(manifest.size)
        response["Docker-Content-Digest"] = manifest.digest
        return response

    head = get

    def put(self, request, reference: str):
        _check_reference(reference)
        content = _read_manifest_body(request)
        manifest = services.manifest_put(
            repository=self.repository,
            reference=reference,
            content=content,
            content_type=request.META.get("CONTENT_TYPE", ""),
            actor=self.caller.user if self.caller.user.is_authenticated else None,
        )
        headers = {
            "Location": f"/v2/{self.name}/manifests/{manifest.digest}",
            "Docker-Content-Digest": manifest.digest,
        }
        if manifest.subject_digest:
            headers["OCI-Subject"] = manifest.subject_digest
        return _empty(201, headers)

    def delete(self, request, reference: str):
        _check_reference(reference)
        services.manifest_delete(
            repository=self.repository,
            reference=reference,
            actor=self.caller.user if self.caller.user.is_authenticated else None,
        )
        return _empty(202)


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte of a ``Range: bytes=`` header; None for no range."""
    if not header:
        return None
    unsatisfiable = OCIError(
        "RANGE_INVALID",
        f"The range {header[:80]!r} cannot be satisfied for a blob of {size} bytes.",
        headers={"Content-Range": f"bytes */{size}"},
    )
    match = RANGE_RE.match(header.strip())
    if not match or match[1] == match[2] == "":
        raise unsatisfiable
    if match[1] == "":  # a suffix: the last N bytes
        count = int(match[2])
        if count == 0 or size == 0:
            raise unsatisfiable
        return max(size - count, 0), size - 1
    first = int(match[1])
    last = int(match[2]) if match[2] else size - 1
    if first >= size or last < first:
        raise unsatisfiable
    return first, min(last, size - 1)


class BlobView(RepositoryView):
    """``/v2/<name>/blobs/<digest>``: GET (with Range), HEAD, DELETE."""

    def _blob(self, digest: str):
        _check_digest(digest)
        blob = selectors.blob_in_repository(repository=self.repository, digest=digest)
        if blob is None:
            raise OCIError("BLOB_UNKNOWN", f"{digest} is unknown to {self.name}.")
        return blob

    def head(self, request, digest: str):
        blob = self._blob(digest)
        response = HttpResponse(b"", content_type=OCTET_STREAM)
        response["Content-Length"] = str(blob.size)
        response["Docker-Content-Digest"] = blob.digest
        response["Accept-Ranges"] = "bytes"
        return response

    def get(self, request, digest: str):
        blob = self._blob(digest)
        byte_range = _byte_range(request.META.get("HTTP_RANGE", ""), blob.size)
        redirect_url = storage.blob_redirect_url(blob.digest)
        if redirect_url is not None:
            response = HttpResponseRedirect(redirect_url, status=307)
            response["Docker-Content-Digest"] = blob.digest
            return response
        handle = storage.blob_open(blob.digest)
        first, last = byte_range if byte_range else (0, blob.size - 1)
        if first:
            handle.seek(first)
        length = last - first + 1
        response = FileResponse(
            storage.RangeFile(handle, length),
            status=206 if byte_range else 200,
            content_type=OCTET_STREAM,
        )
        response.block_size = storage.CHUNK_SIZE
        response["Content-Length"] = str(length)
        response["Docker-Content-Digest"] = blob.digest
        response["Accept-Ranges"] = "bytes"
        if byte_range:
            response["Content-Range"] = f"bytes {first}-{last}/{blob.size}"
        return response

    def delete(self, request, digest: str):
        _check_digest(digest)
        services.blob_delete(repository=self.repository, digest=digest)
        return _empty(202)


def _upload_headers(name: str, upload) -> dict[str, str]:
    return {
        "Location": f"/v2/{name}/blobs/uploads/{upload.pk}",
        "Range": f"0-{max(upload.offset - 1, 0)}",
        "Docker-Upload-UUID": str(upload.pk),
    }


def _blob_created(name: str, blob) -> HttpResponse:
    return _empty(
        201,
        {"Location": f"/v2/{name}/blobs/{blob.digest}", "Docker-Content-Digest": blob.digest},
    )


class UploadStartView(RepositoryView):
    """``POST /v2/<name>/blobs/uploads/``: start an upload, upload in one request, or mount."""

    creates_repository = frozenset({"POST"})

    def post(self, request):
        mount, source_name = request.GET.get("mount"), request.GET.get("from")
        if mount and source_name:
            blob = self._mount(mount, source_name)
            if blob is not None:
                return _blob_created(self.name, blob)
        elif "digest" in request.GET:
            stream, length = _body_stream(request)
            blob = services.blob_upload_monolithic(
                repository=self.repository,
                digest=request.GET["digest"],
                stream=stream,
                length=length,
            )
            return _blob_created(self.name, blob)
        upload = services.upload_start(repository=self.repository, user=self.caller.user)
        return _empty(202, _upload_headers(self.name, upload))

    def challenge_scope(self, request, name: str, actions) -> str:
        """A mount's challenge also asks for ``pull`` on ``from``, as the reference registry
        does: a client that takes its scopes from the challenge then gets a token for both."""
        scope = auth.repository_scope(name, actions)
        source_name = request.GET.get("from", "")
        if (
            request.GET.get("mount")
            and source_name != name
            and grammar.is_valid_repository_name(source_name)
        ):
            scope += " " + auth.repository_scope(source_name, {PULL})
        return scope

    def _mount(self, digest: str, source_name: str):
        """The mounted blob, or None to fall back to an upload (never an error for the source).

        One exception: a bearer token that lacks ``pull`` on ``from`` while its user has it
        gets the challenge for both scopes (insufficient_scope), so the client fetches a
        token that allows the mount instead of uploading the blob again. A source the user
        may not pull, or that does not exist, falls back to an upload as before.
        """
        if not grammar.is_valid_digest(digest) or not grammar.is_valid_repository_name(source_name):
            return None
        source = selectors.repository_get_by_full_name(full_name=source_name)
        if source is None:
            return None
        if PULL not in self.caller.repository_actions(source_name, source):
            if self.caller.scheme == auth.BEARER and PULL in self.caller.permitted_actions(
                source_name, source
            ):
                raise auth.unauthorized(
                    f"The token does not allow pulling from {source_name}, to mount from it.",
                    scope=self.challenge_scope(self.request, self.name, {PULL, PUSH}),
                    error="insufficient_scope",
                )
            return None
        return services.upload_mount(repository=self.repository, digest=digest, source=source)


class UploadView(RepositoryView):
    """``/v2/<name>/blobs/uploads/<id>``: status, chunk (PATCH), finish (PUT), cancel."""

    def _upload(self, upload_id: str):
        upload = selectors.upload_get(repository=self.repository, upload_id=upload_id)
        if upload is None:
            raise OCIError("BLOB_UPLOAD_UNKNOWN", "The upload is unknown: it finished or expired.")
        return upload

    def _range_refused(self, upload, error: services.UploadRangeInvalid) -> HttpResponse:
        upload.offset = error.offset
        return error_response(
            "RANGE_INVALID", error.message, headers=_upload_headers(self.name, upload)
        )

    def get(self, request, upload_id: str):
        upload = self._upload(upload_id)
        return _empty(204, _upload_headers(self.name, upload))

    def _chunk(self, request):
        """(stream, start, length) of a chunk: Content-Range checked against Content-Length."""
        header = request.META.get("HTTP_CONTENT_RANGE", "").strip()
        stream, length = _body_stream(request)
        if not header:
            return stream, None, length
        match = CONTENT_RANGE_RE.match(header)
        if not match or int(match[2]) < int(match[1]):
            raise OCIError("RANGE_INVALID", f"Content-Range {header[:80]!r} is not valid.")
        start, range_length = int(match[1]), int(match[2]) - int(match[1]) + 1
        if length is not None and length != range_length:
            raise OCIError(
                "SIZE_INVALID",
                f"Content-Range announces {range_length} bytes, Content-Length {length}.",
            )
        return stream, start, range_length

    def patch(self, request, upload_id: str):
        upload = self._upload(upload_id)
        stream, start, length = self._chunk(request)
        try:
            upload = services.upload_append(
                upload=upload, stream=stream, start=start, length=length
            )
        except services.UploadRangeInvalid as error:
            return self._range_refused(upload, error)
        return _empty(202, _upload_headers(self.name, upload))

    def put(self, request, upload_id: str):
        upload = self._upload(upload_id)
        digest = request.GET.get("digest", "")
        _check_digest(digest)
        stream, start, length = self._chunk(request)
        try:
            blob = services.upload_finish(
                upload=upload, digest=digest, stream=stream, start=start, length=length
            )
        except services.UploadRangeInvalid as error:
            return self._range_refused(upload, error)
        return _blob_created(self.name, blob)

    def delete(self, request, upload_id: str):
        upload = self._upload(upload_id)
        services.upload_cancel(upload=upload)
        return _empty(204)

    def needed_actions(self, request) -> frozenset[str] | None:
        """Cancelling an upload is part of pushing, not a deletion of content."""
        if request.method == "DELETE":
            return ACTIONS_BY_METHOD["PUT"]
        return super().needed_actions(request)


class TagsListView(RepositoryView):
    """``GET /v2/<name>/tags/list?n=&last=``: tag names in lexical order, paginated."""

    def get(self, request):
        limit = _page_limit(request)
        names = selectors.tag_names_page(
            repository=self.repository,
            limit=None if limit is None else limit + 1,
            last=request.GET.get("last", ""),
        )
        response = _json({"name": self.name, "tags": names[:limit] if limit is not None else names})
        _paginate(response, path=f"/v2/{self.name}/tags/list", items=names, limit=limit)
        return response


class ReferrersView(RepositoryView):
    """``GET /v2/<name>/referrers/<digest>``: an index of the manifests whose subject it is."""

    def get(self, request, digest: str):
        _check_digest(digest)
        wanted_type = request.GET.get("artifactType", "")
        descriptors = []
        for manifest in selectors.referrers_list(repository=self.repository, subject_digest=digest):
            content = bytes(manifest.content)
            artifact_type = manifest_effective_artifact_type(
                artifact_type=manifest.artifact_type, content=content
            )
            if wanted_type and artifact_type != wanted_type:
                continue
            descriptor = {
                "mediaType": manifest.media_type,
                "digest": manifest.digest,
                "size": manifest.size,
            }
            if artifact_type:
                descriptor["artifactType"] = artifact_type
            if manifest.annotations:
                descriptor["annotations"] = manifest.annotations
            descriptors.append(descriptor)
        response = _json(
            {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors},
            content_type=OCI_INDEX,
        )
        if wanted_type:
            response["OCI-Filters-Applied"] = "artifactType"
        return response


@csrf_exempt
def unknown_endpoint(request, *args, **kwargs):
    """Any other path under /v2/: an OCI 404 (and no APPEND_SLASH redirect)."""
    response = error_response("UNSUPPORTED", "There is no such endpoint in /v2/.", status=404)
    response[API_VERSION_HEADER] = API_VERSION
    return response
