"""The soak's own figures: percentiles, RSS growth, process trees, its verdict."""

import os

from benchmarks import soak


def test_percentiles_are_nearest_rank():
    values = [float(n) for n in range(1, 101)]
    assert soak.percentile(values, 0.50) == 50
    assert soak.percentile(values, 0.95) == 95
    assert soak.percentile(values, 0.99) == 99
    assert soak.percentile([3.0], 0.99) == 3
    assert soak.percentile([], 0.5) == 0


MIB = 2**20


def test_rss_that_levels_off_after_warm_up_is_not_growth():
    warm_up = [100 * MIB, 200 * MIB, 300 * MIB, 320 * MIB]
    flat = [330 * MIB, 335 * MIB, 332 * MIB, 338 * MIB, 334 * MIB, 336 * MIB, 333 * MIB, 337 * MIB]
    assert soak.rss_growth(warm_up + flat) is None


def test_rss_that_keeps_climbing_is_flagged():
    climbing = [300 * MIB + n * 40 * MIB for n in range(12)]
    assert "grew" in soak.rss_growth(climbing)


def test_too_few_samples_say_nothing():
    assert soak.rss_growth([MIB, 900 * MIB]) is None


def test_process_tree_and_rss_of_this_process(tmp_path):
    tree = soak.process_tree(os.getppid())
    assert os.getpid() in tree
    assert soak.rss_bytes(os.getpid()) > 10 * MIB
    assert soak.rss_bytes(999_999_999) == 0


def _report(**changes):
    report = {
        "errors": 0,
        "http_5xx": 0,
        "tracebacks": 0,
        "rss": {"web": {"growth": None}, "worker": {"growth": None}},
        "settlement": {"unsettled": 0, "stable_tags_without_record": 0, "scans_unfinished": 0},
        "operations": {"push": {"count": 3}},
    }
    report.update(changes)
    return report


def test_the_verdict_names_each_failure():
    assert soak.failures(_report()) == []
    assert soak.failures(_report(errors=2)) == ["2 operations failed"]
    unsettled = _report(
        settlement={"unsettled": 1, "stable_tags_without_record": 0, "scans_unfinished": 0}
    )
    assert soak.failures(unsettled) == ["1 promotion records not settled"]
    growing = _report(rss={"web": {"growth": "RSS grew"}, "worker": {"growth": None}})
    assert soak.failures(growing) == ["web: RSS grew"]
    assert soak.failures(_report(operations={"push": {"count": 0}})) == ["no operation ran"]


def test_summary_separates_failed_operations_from_latencies():
    outcomes = [
        soak.Outcome("pull", 0.1),
        soak.Outcome("pull", 0.3),
        soak.Outcome("pull", 9.0, error="boom"),
    ]
    row = soak.summarize(outcomes)["pull"]
    assert row["count"] == 3 and row["errors"] == 1
    assert row["p99_ms"] == 300.0


def test_queue_depths_are_read_from_the_metrics_text():
    text = (
        "# HELP portal_celery_queue_depth Messages waiting in each Celery queue.\n"
        "# TYPE portal_celery_queue_depth gauge\n"
        'portal_celery_queue_depth{queue="celery"} 4.0\n'
        'portal_celery_queue_depth{queue="scans"} 17.0\n'
        "# TYPE portal_scans gauge\n"
        'portal_scans{status="queued"} 3.0\n'
    )
    assert soak.queue_depths(text) == {"celery": 4, "scans": 17}
