"""/metrics: who may scrape, the /v2/ counters, and the figures read at scrape time."""

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from promotions.models import PromotionRecord
from scanning.models import OsvSnapshot, ScanReport
from tests import factories
from tests.registry.helpers import V2, image_manifest
from tests.services import need, port_open


def scrape(client, **extra) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content[:300]
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- Who may scrape -------------------------------------------------------------------------


def test_loopback_may_scrape_by_default(client, db):
    assert client.get("/metrics").status_code == 200


def test_other_addresses_are_refused(client, db, settings):
    response = client.get("/metrics", REMOTE_ADDR="192.0.2.7")
    assert response.status_code == 403
    settings.METRICS_ALLOWED_NETWORKS = ["192.0.2.0/24"]
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="198.51.100.1").status_code == 403


def test_the_token_lets_a_scraper_in(client, db, settings):
    settings.METRICS_TOKEN = "s3cret-scrape"
    settings.METRICS_ALLOWED_NETWORKS = []
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused["WWW-Authenticate"] == 'Bearer realm="metrics"'
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrapE")
    assert wrong.status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape").status_code == 200


def test_django_prometheus_basics_are_there(client, db):
    samples = scrape(client)
    names = {name for name, _ in samples}
    assert "django_http_requests_total_by_method_total" in names
    assert any(name.startswith("django_db_execute") for name in names)


# --- Counted in the web process ---------------------------------------------------------------


@V2
def test_push_and_pull_are_counted_with_bytes_and_route_latency(reg, repo, client):
    config, layer = b'{"architecture":"amd64","os":"linux"}', b"x" * 5000
    content = image_manifest(config, [layer])
    before = {
        "pushes": value("portal_pushes_total", outcome="ok"),
        "push_bytes": value("portal_push_bytes_total", outcome="ok"),
        "pulls": value("portal_pulls_total", outcome="ok"),
        "pull_bytes": value("portal_pull_bytes_total", outcome="ok"),
        "denied": value("portal_pushes_total", outcome="denied"),
        "latency": value(
            "portal_v2_request_duration_seconds_count", route="registry-manifest", method="PUT"
        ),
    }
    digests = [reg.push_blob("acme/app", blob) for blob in (config, layer)]
    response = reg.request(
        "PUT",
        "/v2/acme/app/manifests/v1",
        content,
        content_type="application/vnd.oci.image.manifest.v1+json",
    )
    assert response.status_code == 201
    assert reg.request("GET", "/v2/acme/app/manifests/v1").status_code == 200
    assert reg.request("GET", f"/v2/acme/app/blobs/{digests[1]}").status_code == 200
    anonymous_push = client.generic(
        "PUT",
        "/v2/acme/app/manifests/v2",
        content,
        content_type="application/vnd.oci.image.manifest.v1+json",
    )
    assert anonymous_push.status_code == 401

    assert value("portal_pushes_total", outcome="ok") - before["pushes"] == 1
    assert value("portal_pushes_total", outcome="denied") - before["denied"] == 1
    pushed = len(config) + len(layer) + len(content)
    assert value("portal_push_bytes_total", outcome="ok") - before["push_bytes"] == pushed
    assert value("portal_pulls_total", outcome="ok") - before["pulls"] == 1
    assert value("portal_pull_bytes_total", outcome="ok") - before["pull_bytes"] == len(
        content
    ) + len(layer)
    latency = value(
        "portal_v2_request_duration_seconds_count", route="registry-manifest", method="PUT"
    )
    assert latency - before["latency"] == 2
    samples = scrape(client)
    assert samples[("portal_pushes_total", (("outcome", "ok"),))] >= 1


def test_made_up_methods_share_one_label(client, db):
    before = value(
        "portal_v2_request_duration_seconds_count", route="registry-base", method="other"
    )
    client.generic("FROB", "/v2/")
    after = value("portal_v2_request_duration_seconds_count", route="registry-base", method="other")
    assert after - before == 1


def test_every_response_has_a_request_id(client, db):
    given = client.get("/-/healthy", HTTP_X_REQUEST_ID="req-42.abc")
    assert given["X-Request-ID"] == "req-42.abc"
    generated = client.get("/-/healthy", HTTP_X_REQUEST_ID='no spaces "allowed"')
    assert len(generated["X-Request-ID"]) == 32
    assert generated["X-Request-ID"] != client.get("/-/healthy")["X-Request-ID"]


# --- Read from the database and the broker at scrape time ------------------------------------


def _record(outcome, *, seconds=None, key):
    pushed = timezone.now() - timedelta(hours=1)
    return PromotionRecord.objects.create(
        idempotency_key=key,
        policy_name="p",
        source_repository_name="dev/a",
        source_tag="t",
        digest="sha256:" + "0" * 64,
        trigger="push",
        outcome=outcome,
        pushed_at=pushed,
        finished_at=pushed + timedelta(seconds=seconds) if seconds is not None else None,
    )


def test_promotions_by_outcome_and_latency_histogram(client, db):
    _record("promoted", seconds=0.2, key="a")
    _record("promoted", seconds=3, key="b")
    _record("promoted", seconds=400, key="c")
    _record("skipped", seconds=0.01, key="d")
    _record("failed", seconds=1, key="e")
    _record("waiting", key="f")
    samples = scrape(client)
    assert samples[("portal_promotions_total", (("outcome", "promoted"),))] == 3
    assert samples[("portal_promotions_total", (("outcome", "skipped"),))] == 1
    assert samples[("portal_promotions_total", (("outcome", "failed"),))] == 1
    assert samples[("portal_promotions_waiting", ())] == 1
    bucket = "portal_promotion_latency_seconds_bucket"
    assert samples[(bucket, (("le", "0.25"),))] == 1
    assert samples[(bucket, (("le", "5.0"),))] == 2
    assert samples[(bucket, (("le", "300.0"),))] == 2
    assert samples[(bucket, (("le", "+Inf"),))] == 3
    assert samples[("portal_promotion_latency_seconds_count", ())] == 3
    assert samples[("portal_promotion_latency_seconds_sum", ())] == pytest.approx(403.2)


def test_scan_duration_queue_wait_and_vulnerability_data_age(client, db):
    now = timezone.now()
    for status, wait, run in (("done", 2, 1.5), ("done", 40, 20), ("failed", 0.5, 0.2)):
        report = ScanReport.objects.create(manifest=factories.make_manifest(), status=status)
        ScanReport.objects.filter(pk=report.pk).update(
            queued_at=now - timedelta(seconds=wait + run),
            started_at=now - timedelta(seconds=run),
            finished_at=now,
        )
    ScanReport.objects.create(manifest=factories.make_manifest(), status="queued")
    samples = scrape(client)
    assert "portal_vulnerability_data_age_seconds" not in {name for name, _ in samples}
    assert samples[("portal_vulnerability_data_loaded", ())] == 0
    assert samples[("portal_scans", (("status", "queued"),))] == 1
    duration = "portal_scan_duration_seconds_bucket"
    assert samples[(duration, (("le", "2.5"), ("status", "done")))] == 1
    assert samples[(duration, (("le", "+Inf"), ("status", "done")))] == 2
    assert samples[(duration, (("le", "0.25"), ("status", "failed")))] == 1
    wait = "portal_scan_queue_wait_seconds_bucket"
    assert samples[(wait, (("le", "0.5"),))] == 1
    assert samples[(wait, (("le", "60.0"),))] == 3
    assert samples[("portal_scan_queue_wait_seconds_count", ())] == 3

    snapshot = OsvSnapshot.objects.create(source="all.zip", status="ready", is_active=True)
    OsvSnapshot.objects.filter(pk=snapshot.pk).update(finished_at=now - timedelta(hours=3))
    samples = scrape(client)
    assert samples[("portal_vulnerability_data_loaded", ())] == 1
    age = samples[("portal_vulnerability_data_age_seconds", ())]
    assert 3 * 3600 <= age < 3 * 3600 + 60


def test_queue_depth_on_the_filesystem_transport(client, db, settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path)}
    for index, queue in enumerate(["celery", "celery", "scans", "celery"]):
        (tmp_path / f"{1000 + index}_abc-{index}.{queue}.msg").write_bytes(b"{}")
    (tmp_path / "stray.txt").write_text("not a message")
    samples = scrape(client)
    assert samples[("portal_celery_queue_depth_supported", ())] == 1
    assert samples[("portal_celery_queue_depth", (("queue", "celery"),))] == 3
    assert samples[("portal_celery_queue_depth", (("queue", "scans"),))] == 1


def test_queue_depth_on_redis_counts_every_priority_list(client, db, settings):
    need(port_open("127.0.0.1", 6379), "Redis on 127.0.0.1:6379")
    import redis

    url = "redis://127.0.0.1:6379/15"
    settings.CELERY_BROKER_URL = url
    keys = ["celery", "celery\x06\x163", "scans"]
    connection = redis.Redis.from_url(url)
    connection.delete(*keys)
    try:
        connection.rpush("celery", "m1", "m2")
        connection.rpush("celery\x06\x163", "m3")
        connection.rpush("scans", "m4")
        samples = scrape(client)
    finally:
        connection.delete(*keys)
    assert samples[("portal_celery_queue_depth", (("queue", "celery"),))] == 3
    assert samples[("portal_celery_queue_depth", (("queue", "scans"),))] == 1


def test_an_unknown_broker_says_it_cannot(client, db, settings):
    settings.CELERY_BROKER_URL = "amqp://127.0.0.1:9//"
    samples = scrape(client)
    assert samples[("portal_celery_queue_depth_supported", ())] == 0
    assert samples[("portal_metrics_part_failed", (("part", "celery_queues"),))] == 0


def test_a_failing_part_is_reported_and_the_rest_still_answers(client, db, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"
    samples = scrape(client)
    assert samples[("portal_metrics_part_failed", (("part", "celery_queues"),))] == 1
    assert samples[("portal_metrics_part_failed", (("part", "promotions"),))] == 0
