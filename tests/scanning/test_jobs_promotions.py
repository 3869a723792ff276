"""A policy that needs a scan waits for it, and `scan_finished` resumes it (DB, no worker)."""

from __future__ import annotations

import pytest

from promotions.models import PromotionRecord
from promotions.services import policy_create
from scanning import services, tasks
from tests import factories
from tests.scanning import db_images

pytestmark = pytest.mark.django_db


@pytest.fixture
def synchronous_jobs(outbox_run_at_once):
    """Queued jobs run at once (their on_commit callbacks are executed by the test)."""


@pytest.mark.parametrize(
    ("records", "outcome"),
    [(db_images.STANDARD_RECORDS[1:2], "promoted"), (db_images.STANDARD_RECORDS, "skipped")],
    ids=["clean", "critical"],
)
def test_a_policy_on_critical_vulnerabilities_waits_for_the_scan(
    make_org, make_repo, synchronous_jobs, django_capture_on_commit_callbacks, records, outcome
):
    services.osv_import_zip(path_or_file=db_images.osv_zip(records), source="s.zip")
    lead = factories.make_user()
    source, target = make_repo(make_org(admin=lead)), make_repo(make_org(admin=lead))
    policy_create(
        actor=lead,
        source=source,
        target=target,
        name="no criticals",
        rules=[{"field": "vulns_critical", "operator": "eq", "values": ["0"]}],
    )
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        manifest = db_images.push_image(source, [db_images.BASE_LAYER, db_images.PYTHON_LAYER])
    # The promotion job runs first and waits; the scan job then finishes and resumes it.
    (scan_callback,) = [
        c for c in callbacks if c.keywords["job"].kind == tasks.scan_manifest_task.name
    ]
    with django_capture_on_commit_callbacks(execute=True):
        for callback in callbacks:
            if callback is not scan_callback:
                callback()
    assert PromotionRecord.objects.get().outcome == "waiting"
    with django_capture_on_commit_callbacks(execute=True):
        scan_callback()
    record = PromotionRecord.objects.get()
    assert record.outcome == outcome, record.reason
    assert target.tags.filter(manifest=manifest).exists() == (outcome == "promoted")
