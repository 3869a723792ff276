"""Every Celery task is bounded in time, and scanning's tasks have a queue of their own."""

import pytest
from django.conf import settings

from registry_portal.celery import app


@pytest.fixture(scope="module")
def project_tasks():
    app.loader.import_default_modules()
    app.finalize()
    tasks = {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}
    assert len(tasks) >= 9, sorted(tasks)
    return tasks


def test_every_registered_task_has_a_soft_and_a_hard_time_limit(project_tasks):
    for name, task in project_tasks.items():
        soft, hard = task.soft_time_limit, task.time_limit
        assert isinstance(soft, int) and soft > 0, name
        assert isinstance(hard, int) and hard > soft, name


def test_the_limits_come_from_settings(project_tasks):
    promote = project_tasks["promotions.tasks.promote_pushed_tag"]
    scan = project_tasks["scanning.tasks.scan_manifest_task"]
    osv_sync = project_tasks["scanning.tasks.osv_sync_task"]

    assert (promote.soft_time_limit, promote.time_limit) == (
        settings.CELERY_TASK_SOFT_TIME_LIMIT,
        settings.CELERY_TASK_TIME_LIMIT,
    )
    assert (scan.soft_time_limit, scan.time_limit) == (
        settings.SCAN_SOFT_TIME_LIMIT,
        settings.SCAN_TIME_LIMIT,
    )
    assert (osv_sync.soft_time_limit, osv_sync.time_limit) == (
        settings.OSV_TASK_SOFT_TIME_LIMIT,
        settings.OSV_TASK_TIME_LIMIT,
    )


def test_every_hard_limit_ends_before_redis_would_deliver_the_task_again(project_tasks):
    longest = max(task.time_limit for task in project_tasks.values())
    assert longest < 3600  # CELERY_VISIBILITY's default, in seconds


def route(name: str) -> str:
    return app.amqp.router.route({}, name)["queue"].name


def test_scanning_tasks_go_to_the_scans_queue_and_the_others_to_the_default_one(
    project_tasks,
):
    for name in project_tasks:
        expected = "scans" if name.startswith("scanning.") else "celery"
        assert route(name) == expected, name


def test_a_worker_started_without_queues_serves_both_and_each_queue_gets_its_own_messages():
    queues = app.amqp.queues
    assert set(queues) == {"celery", "scans"}
    bindings = {(queue.exchange.name, queue.routing_key) for queue in queues.values()}
    # Two queues bound alike would each receive a copy of the other's messages.
    assert len(bindings) == len(queues)
