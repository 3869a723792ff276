"""Prometheus metrics of the portal, and how they are collected across processes.

Two kinds, chosen so that every figure is right however many gunicorn processes and Celery
workers run:

- **Counted where they happen**, in the web processes: ``/v2/`` latency by route, pushes and
  pulls (count and bytes) by outcome. ``prometheus_client`` counters; with
  ``PROMETHEUS_MULTIPROC_DIR`` set (``make run`` sets it) each process writes its values to
  a file there and a scrape sums them, whichever process answers it.
- **Read from the database or the broker at scrape time** (``PortalCollector``): promotions
  by outcome and push-to-promoted latency, scan duration and queue wait, Celery queue depth,
  the age of the vulnerability data. The rows are the truth, written by whichever worker did
  the work, so these are exact with any number of workers and need no worker to export.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import time
from datetime import timedelta

from django.apps import apps
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Promotions and scans take from milliseconds (a tag rule) to minutes (a scan queue).
JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

V2_LATENCY = Histogram(
    "portal_v2_request_duration_seconds",
    "Time to answer a /v2/ request (to the first byte of the body), by route and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
PUSHES = Counter(
    "portal_pushes", "Manifest PUTs on /v2/ (one per pushed image), by outcome.", ["outcome"]
)
PUSH_BYTES = Counter(
    "portal_push_bytes",
    "Bytes received in /v2/ upload and manifest bodies, by outcome.",
    ["outcome"],
)
PULLS = Counter(
    "portal_pulls", "Manifest GETs on /v2/ (one per pulled image), by outcome.", ["outcome"]
)
PULL_BYTES = Counter(
    "portal_pull_bytes",
    "Bytes of blob and manifest bodies answered on /v2/, by outcome.",
    ["outcome"],
)


def outcome_of(status: int) -> str:
    """ok (2xx, 3xx), denied (401, 403), rejected (other 4xx), error (5xx)."""
    if status < 400:
        return "ok"
    if status in (401, 403):
        return "denied"
    return "rejected" if status < 500 else "error"


# --- Bytes received: the /v2/ views read bodies through ``counted`` -----------------------

_received: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "received", default=None
)


class CountingReader:
    """A body stream that adds the bytes read to the current request's count."""

    def __init__(self, stream, tally: list[int]):
        self._stream = stream
        self._tally = tally

    def read(self, *args):
        data = self._stream.read(*args)
        self._tally[0] += len(data)
        return data

    def readline(self, *args):
        data = self._stream.readline(*args)
        self._tally[0] += len(data)
        return data

    def __getattr__(self, name):
        return getattr(self._stream, name)


def counted(stream):
    """``stream`` counted into the current /v2/ request's received bytes (as is outside one)."""
    tally = _received.get()
    return stream if tally is None else CountingReader(stream, tally)


@contextlib.contextmanager
def counting_received():
    tally = [0]
    token = _received.set(tally)
    try:
        yield tally
    finally:
        _received.reset(token)


def observe_v2(*, route: str, method: str, status: int, seconds: float, received: int, sent: int):
    """One /v2/ request answered: its latency, and what it means for pushes and pulls."""
    V2_LATENCY.labels(route, method).observe(seconds)
    outcome = outcome_of(status)
    if received:
        PUSH_BYTES.labels(outcome).inc(received)
    if route == "registry-manifest" and method == "PUT":
        PUSHES.labels(outcome).inc()
    if method == "GET" and route in ("registry-manifest", "registry-blob"):
        if route == "registry-manifest":
            PULLS.labels(outcome).inc()
        if sent:
            PULL_BYTES.labels(outcome).inc(sent)


# --- Read at scrape time --------------------------------------------------------------------


def _duration_buckets(queryset, *, start: str, end: str, buckets) -> tuple[list, float, int]:
    """Cumulative bucket counts, the sum (seconds) and the count of ``end - start``."""
    queryset = queryset.filter(**{f"{start}__isnull": False, f"{end}__isnull": False}).annotate(
        duration=ExpressionWrapper(F(end) - F(start), output_field=DurationField())
    )
    aggregates = {
        f"le_{index}": Count("pk", filter=Q(duration__lte=timedelta(seconds=bound)))
        for index, bound in enumerate(buckets)
    }
    row = queryset.aggregate(total=Count("pk"), seconds=Sum("duration"), **aggregates)
    counts = [(str(bound), row[f"le_{index}"]) for index, bound in enumerate(buckets)]
    counts.append(("+Inf", row["total"]))
    total_seconds = row["seconds"].total_seconds() if row["seconds"] else 0.0
    return counts, total_seconds, row["total"]


def _histogram(name: str, documentation: str, labels: dict[str, str], queryset, **fields):
    counts, total, _ = _duration_buckets(queryset, **fields)
    family = HistogramMetricFamily(name, documentation, labels=list(labels))
    family.add_metric(list(labels.values()), counts, total)
    return family


def promotion_metrics():
    PromotionRecord = apps.get_model("promotions", "PromotionRecord")
    by_outcome = dict(
        PromotionRecord.objects.values_list("outcome").annotate(n=Count("pk")).order_by()
    )
    ended = CounterMetricFamily(
        "portal_promotions",
        "Promotion attempts that ended (promoted, skipped, failed), from the records.",
        labels=["outcome"],
    )
    for outcome in ("promoted", "skipped", "failed"):
        ended.add_metric([outcome], by_outcome.get(outcome, 0))
    yield ended
    yield GaugeMetricFamily(
        "portal_promotions_waiting",
        "Promotion records waiting (for a scan or for the vulnerability data).",
        value=by_outcome.get("waiting", 0),
    )
    yield _histogram(
        "portal_promotion_latency_seconds",
        "From the push of the source tag to the promoted tag (records that promoted).",
        {},
        PromotionRecord.objects.filter(outcome="promoted"),
        start="pushed_at",
        end="finished_at",
        buckets=JOB_BUCKETS,
    )


def scan_metrics():
    ScanReport = apps.get_model("scanning", "ScanReport")
    states = GaugeMetricFamily("portal_scans", "Scan reports by status.", labels=["status"])
    by_status = dict(ScanReport.objects.values_list("status").annotate(n=Count("pk")).order_by())
    for status in ("queued", "running", "done", "failed"):
        states.add_metric([status], by_status.get(status, 0))
    yield states
    duration = HistogramMetricFamily(
        "portal_scan_duration_seconds",
        "From a scan's start to its end, by status.",
        labels=["status"],
    )
    for status in ("done", "failed"):
        counts, total, _ = _duration_buckets(
            ScanReport.objects.filter(status=status),
            start="started_at",
            end="finished_at",
            buckets=JOB_BUCKETS,
        )
        duration.add_metric([status], counts, total)
    yield duration
    yield _histogram(
        "portal_scan_queue_wait_seconds",
        "From a scan being queued to a worker starting it.",
        {},
        ScanReport.objects.all(),
        start="queued_at",
        end="started_at",
        buckets=JOB_BUCKETS,
    )


def vulnerability_data_metrics():
    OsvSnapshot = apps.get_model("scanning", "OsvSnapshot")
    active = OsvSnapshot.objects.filter(is_active=True).values_list("finished_at", "created_at")
    row = active.first()
    yield GaugeMetricFamily(
        "portal_vulnerability_data_loaded",
        "1 when an OSV snapshot is active.",
        value=int(bool(row)),
    )
    if row:
        imported = row[0] or row[1]
        yield GaugeMetricFamily(
            "portal_vulnerability_data_age_seconds",
            "Seconds since the active OSV snapshot was imported.",
            value=(timezone.now() - imported).total_seconds(),
        )


def queue_metrics():
    from . import broker

    depths = broker.queue_depths()
    yield GaugeMetricFamily(
        "portal_celery_queue_depth_supported",
        "1 when the broker's queue depths can be read (Redis, the filesystem transport).",
        value=int(depths is not None),
    )
    if depths is not None:
        family = GaugeMetricFamily(
            "portal_celery_queue_depth", "Messages waiting in each Celery queue.", labels=["queue"]
        )
        for queue, depth in sorted(depths.items()):
            family.add_metric([queue], depth)
        yield family


class PortalCollector:
    """The figures read from the database and the broker when Prometheus scrapes."""

    parts = {
        "promotions": promotion_metrics,
        "scans": scan_metrics,
        "vulnerability_data": vulnerability_data_metrics,
        "celery_queues": queue_metrics,
    }

    def collect(self):
        failed = GaugeMetricFamily(
            "portal_metrics_part_failed",
            "1 when a part of the scrape-time metrics could not be read (see the log).",
            labels=["part"],
        )
        started = time.monotonic()
        for name, part in self.parts.items():
            try:
                families = list(part())
            except Exception:
                logger.exception("metrics: reading %s failed", name)
                failed.add_metric([name], 1)
                continue
            failed.add_metric([name], 0)
            yield from families
        yield failed
        yield GaugeMetricFamily(
            "portal_metrics_collect_seconds",
            "Time spent reading the scrape-time metrics.",
            value=time.monotonic() - started,
        )


class _Default:
    """The process's own registry (one process: the counters live here)."""

    def collect(self):
        return REGISTRY.collect()


def multiprocess_dir() -> str:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


def render() -> bytes:
    """The text exposition: every process's counters, and the scrape-time figures."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Default())
    registry.register(PortalCollector())
    return generate_latest(registry)
