"""``/metrics`` for Prometheus, behind a bearer token or an IP allow-list (settings).

``METRICS_TOKEN``: a scraper that sends ``Authorization: Bearer <token>`` is let in.
``METRICS_ALLOWED_NETWORKS``: addresses (REMOTE_ADDR) let in without a token; by default
loopback only. Anyone else gets 403 (401 with a challenge when a token would help).
"""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from prometheus_client import CONTENT_TYPE_LATEST

from . import metrics


def _networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(item, strict=False) for item in settings.METRICS_ALLOWED_NETWORKS]


def scraper_allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    presented = header[len("Bearer ") :].strip() if header.startswith("Bearer ") else ""
    if token and presented and hmac.compare_digest(presented.encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(address in network for network in _networks())


@never_cache
def metrics_view(request):
    if not scraper_allowed(request):
        response = HttpResponse(
            "Forbidden: a metrics token or an allowed address is needed.\n",
            status=401 if settings.METRICS_TOKEN else 403,
            content_type="text/plain",
        )
        if settings.METRICS_TOKEN:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(metrics.render(), content_type=CONTENT_TYPE_LATEST)
