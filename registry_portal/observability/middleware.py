"""One middleware: a request id for every request, and the /v2/ figures of ``metrics``.

First in MIDDLEWARE (after django-prometheus' "before"), so every log line of the request,
the other middleware's included, carries its id.
"""

from __future__ import annotations

import time

from . import logs, metrics

# Any other method is "other": a label value per made-up method would grow without bound.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ObservabilityMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = logs.request_id_from(request.META.get("HTTP_X_REQUEST_ID"))
        request.request_id = request_id
        token = logs.request_id_var.set(request_id)
        try:
            if request.path_info.startswith("/v2"):
                response = self._v2(request)
            else:
                response = self.get_response(request)
        finally:
            logs.request_id_var.reset(token)
        response[logs.REQUEST_ID_HEADER] = request_id
        return response

    def _v2(self, request):
        started = time.perf_counter()
        with metrics.counting_received() as received:
            response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        sent = 0
        if request.method == "GET" and response.status_code in (200, 206):
            sent = int(response.get("Content-Length") or 0)
        metrics.observe_v2(
            route=match.url_name if match and match.url_name else "unknown",
            method=request.method if request.method in KNOWN_METHODS else "other",
            status=response.status_code,
            seconds=time.perf_counter() - started,
            received=received[0],
            sent=sent,
        )
        return response
