"""Health probes for a load balancer or an orchestrator.

- ``/-/healthy``: liveness. The process answers; nothing else is asked.
- ``/-/ready``: readiness. The database, the broker and the blob storage, checked at once in
  threads and bounded by ``HEALTH_READY_TIMEOUT`` seconds in all: 200 when all answer, 503
  naming each check that failed or did not answer in time.
"""

from __future__ import annotations

import concurrent.futures
import os
import time

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from . import broker

# Shared, so a probe never starts more threads than this; a hung check holds one thread until
# its own timeout, and later probes still answer in time (their unfinished checks fail).
_pool = concurrent.futures.ThreadPoolExecutor(max_workers=6, thread_name_prefix="ready")


def check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()  # this thread's own connection
    return connection.vendor


def check_storage() -> str:
    storage = storages["blobs"]
    if isinstance(storage, FileSystemStorage):
        location = storage.location
        if not os.path.isdir(location):
            os.makedirs(location, exist_ok=True)
        if not os.access(location, os.R_OK | os.W_OK | os.X_OK):
            raise OSError(f"{location} is not writable")
        return "filesystem writable"
    storage.exists("-/ready")  # one round trip to the object store
    return type(storage).__name__


CHECKS = {"database": check_database, "broker": broker.check, "storage": check_storage}


def run_checks(timeout: float) -> dict[str, dict]:
    started = time.monotonic()
    futures = {name: _pool.submit(check) for name, check in CHECKS.items()}
    concurrent.futures.wait(futures.values(), timeout=timeout)
    results = {}
    for name, future in futures.items():
        if not future.done():
            results[name] = {"ok": False, "error": f"no answer within {timeout} s"}
            continue
        error = future.exception()
        if error is not None:
            results[name] = {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
        else:
            results[name] = {"ok": True, "detail": future.result()}
    results["_seconds"] = round(time.monotonic() - started, 4)
    return results


@never_cache
def healthy(request):
    return JsonResponse({"status": "ok"})


@never_cache
def ready(request):
    results = run_checks(settings.HEALTH_READY_TIMEOUT)
    seconds = results.pop("_seconds")
    failed = sorted(name for name, result in results.items() if not result["ok"])
    return JsonResponse(
        {
            "status": "unready" if failed else "ready",
            "failed": failed,
            "checks": results,
            "seconds": seconds,
        },
        status=503 if failed else 200,
    )
