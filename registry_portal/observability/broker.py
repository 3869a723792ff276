"""The Celery broker, asked directly and cheaply: queue depths and a reachability check.

Redis: ``LLEN`` of each queue's lists (kombu keeps one list per priority step) in one round
trip, with half-second socket timeouts. kombu's filesystem transport: the message files of
each queue in its folder. Any other broker: depths are not known (None) and readiness asks
kombu for a connection.
"""

from __future__ import annotations

import functools
import os

from django.conf import settings

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
# kombu's Redis transport: one list per priority step; step 0 is the queue's own name.
REDIS_PRIORITY_SEPARATOR = "\x06\x16"
REDIS_PRIORITY_STEPS = (3, 6, 9)
TIMEOUT_SECONDS = 0.5


def queue_names() -> list[str]:
    queues = getattr(settings, "CELERY_TASK_QUEUES", None) or ()
    names = [queue.name for queue in queues]
    return names or [getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")]


def _broker_url() -> str:
    return settings.CELERY_BROKER_URL or ""


@functools.cache
def _redis(url: str):
    import redis

    return redis.Redis.from_url(
        url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
    )


def _filesystem_folder() -> str:
    return settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]


def queue_depths() -> dict[str, int] | None:
    """Messages waiting per queue, or None when this broker's depths cannot be read."""
    url = _broker_url()
    names = queue_names()
    if url.startswith(REDIS_SCHEMES):
        pipeline = _redis(url).pipeline(transaction=False)
        for name in names:
            pipeline.llen(name)
            for step in REDIS_PRIORITY_STEPS:
                pipeline.llen(f"{name}{REDIS_PRIORITY_SEPARATOR}{step}")
        lengths = pipeline.execute()
        per_queue = 1 + len(REDIS_PRIORITY_STEPS)
        return {
            name: sum(lengths[index * per_queue : (index + 1) * per_queue])
            for index, name in enumerate(names)
        }
    if url.startswith("filesystem://"):
        # kombu names a message file "<time>_<uuid>.<queue>.msg".
        depths = dict.fromkeys(names, 0)
        with os.scandir(_filesystem_folder()) as entries:
            for entry in entries:
                queue = entry.name.partition(".")[2].removesuffix(".msg")
                if queue in depths and entry.name.endswith(".msg"):
                    depths[queue] += 1
        return depths
    return None


def check() -> str:
    """Raise when the broker cannot be reached; else say what was checked."""
    url = _broker_url()
    if url.startswith(REDIS_SCHEMES):
        _redis(url).ping()
        return "redis ping"
    if url.startswith("filesystem://"):
        folder = _filesystem_folder()
        if not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
            raise OSError(f"the broker folder {folder} is not writable")
        return "filesystem folder writable"
    from registry_portal.celery import app

    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=TIMEOUT_SECONDS)
    return "kombu connection"
