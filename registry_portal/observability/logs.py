"""Request ids and JSON logs.

Every request gets an id: the caller's ``X-Request-ID`` when it is a sane token, else a new
one. It is answered in ``X-Request-ID``, attached to every log record of the request (the
``request_id`` attribute), and carried into the Celery tasks the request queued: a message
header set at publish time, read back when the worker starts the task.

``LOG_FORMAT=json`` makes the console handler write one JSON object a line (settings.LOGGING);
the default stays Python's plain format.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import uuid
from datetime import UTC, datetime

REQUEST_ID_HEADER = "X-Request-ID"
CELERY_HEADER = "request_id"
# What we accept from a caller: short, printable, no spaces or quotes (it lands in logs).
_ACCEPTED = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
logger = logging.getLogger("registry_portal.tasks")


def request_id_from(value: str | None) -> str:
    """The caller's id when acceptable, else a new one (32 hex digits)."""
    if value and _ACCEPTED.fullmatch(value):
        return value
    return uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Gives every record a ``request_id`` attribute (empty outside a request or task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request_id, and the exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "") or request_id_var.get(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


# --- Celery: the id travels in a message header -------------------------------------------


def add_request_id_header(headers=None, **kwargs) -> None:
    """``before_task_publish``: the publishing request's id goes into the message headers."""
    request_id = request_id_var.get()
    if request_id and headers is not None:
        headers.setdefault(CELERY_HEADER, request_id)


def task_request_id(task) -> str:
    """The id a task's message carried (a custom header is an attribute of task.request)."""
    request = getattr(task, "request", None)
    value = getattr(request, CELERY_HEADER, None)
    if not value:
        value = (getattr(request, "headers", None) or {}).get(CELERY_HEADER)
    return value or ""


_task_tokens: dict[str, contextvars.Token] = {}


def start_task(task_id=None, task=None, **kwargs) -> None:
    """``task_prerun``: the task's logs carry the id of the request that queued it."""
    request_id = task_request_id(task)
    _task_tokens[task_id] = request_id_var.set(request_id)
    if request_id:
        logger.info("task %s started for request %s", getattr(task, "name", "?"), request_id)


def end_task(task_id=None, **kwargs) -> None:
    """``task_postrun``: back to no id."""
    token = _task_tokens.pop(task_id, None)
    if token is not None:
        try:
            request_id_var.reset(token)
        except ValueError:  # set in another context (a different thread): just clear it
            request_id_var.set("")


def keep_django_logging(**kwargs) -> None:
    """``setup_logging``: with LOG_FORMAT=json the worker keeps Django's LOGGING."""


def connect_celery_signals() -> None:
    from celery import signals

    signals.before_task_publish.connect(add_request_id_header, weak=False)
    signals.task_prerun.connect(start_task, weak=False)
    signals.task_postrun.connect(end_task, weak=False)


def connect_worker_logging() -> None:
    """With LOG_FORMAT=json, a receiver on ``setup_logging`` stops the worker from replacing
    the root logger's handlers: its lines (ours and Celery's) are JSON too. Connected when
    the Celery app is created, before the worker sets up its logging."""
    from celery import signals

    if os.environ.get("LOG_FORMAT", "").strip().lower() == "json":
        signals.setup_logging.connect(keep_django_logging, weak=False)
