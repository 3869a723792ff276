"""Request ids: in log records, JSON lines, and carried into the Celery tasks a request queued."""

import json
import logging
import types

from registry_portal.observability import logs


def test_json_lines_carry_the_request_id():
    record = logging.LogRecord("portal", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
    token = logs.request_id_var.set("abc123")
    try:
        logs.RequestIdFilter().filter(record)
    finally:
        logs.request_id_var.reset(token)
    line = json.loads(logs.JsonFormatter().format(record))
    assert line["message"] == "hello world"
    assert line["request_id"] == "abc123"
    assert line["level"] == "WARNING"


def test_the_publishing_request_id_goes_into_the_message_headers():
    headers = {}
    logs.add_request_id_header(headers=headers)
    assert headers == {}  # outside a request: nothing
    token = logs.request_id_var.set("req-7")
    try:
        logs.add_request_id_header(headers=headers)
    finally:
        logs.request_id_var.reset(token)
    assert headers == {"request_id": "req-7"}


def test_a_task_runs_with_the_id_its_message_carried(caplog):
    task = types.SimpleNamespace(
        name="promotions.tasks.x", request=types.SimpleNamespace(request_id="req-9", headers=None)
    )
    with caplog.at_level(logging.INFO, logger="registry_portal.tasks"):
        logs.start_task(task_id="t1", task=task)
        assert logs.request_id_var.get() == "req-9"
        logs.end_task(task_id="t1")
    assert logs.request_id_var.get() == ""
    assert "req-9" in caplog.text
