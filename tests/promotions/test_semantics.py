"""Semantics a release can rely on (promotion-policies.md): gates fail closed, no silent
overwrite, apply means the policy as it is now, only the current state is promoted, names
compare as their ecosystem compares them. Real scans of real (tiny) images on the database;
queued jobs run in this process."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from promotions import services
from promotions.choices import OnMove, PromotionOutcome
from promotions.models import PromotionRecord
from registry_portal.outbox import services as outbox_services
from registry_portal.registry.models import RepositoryManifest, Tag
from registry_portal.registry.services import manifest_put, tag_delete, tag_set
from scanning import services as scanning_services
from scanning import tasks as scanning_tasks
from tests import factories
from tests.scanning import db_images
from tests.scanning.builders import File

STABLE = {"field": "tag_name", "operator": "ew", "values": ["stable"]}
NO_CRITICALS = {"field": "vulns_critical", "operator": "eq", "values": ["0"]}
DTR_TEMPLATE = "%Y%m%d-%H%M%S"
FROZEN = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def jobs(outbox_run_at_once, django_capture_on_commit_callbacks):
    """Queued jobs (outbox jobs) run at once, on commit, as a worker would run them."""

    def run(function, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return function(*args, **kwargs)

    return run


def policy(seed, *rules, **fields):
    fields.setdefault("name", "to QA")
    return services.policy_create(
        actor=seed["lead"], source=seed["source"], target=seed["target"], rules=rules, **fields
    )


def push_image(jobs, repository, layers, tag, **kwargs):
    return jobs(db_images.push_image, repository, layers, tag=tag, **kwargs)


def metadata(name: str, license_text: str) -> File:
    return File(
        f"usr/lib/python3/site-packages/{name}-1.0.dist-info/METADATA",
        f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\nLicense: {license_text}\n".encode(),
    )


# --- gates fail closed ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("records", "outcome"),
    [(db_images.STANDARD_RECORDS[1:2], "promoted"), (db_images.STANDARD_RECORDS, "skipped")],
    ids=["clean", "critical"],
)
def test_no_vulnerability_data_waits_and_an_osv_import_resumes(seed, jobs, records, outcome):
    """`make run` starts with no OSV data: a "critical = 0" gate must not pass then."""
    policy(seed, NO_CRITICALS)
    manifest = push_image(
        jobs, seed["source"], [db_images.BASE_LAYER, db_images.PYTHON_LAYER], "1.0"
    )

    record = PromotionRecord.objects.get()
    assert record.outcome == PromotionOutcome.WAITING
    assert "waiting for vulnerability data" in record.reason
    assert "no vulnerability snapshot was used" in record.reason
    assert record.rule_results == [
        {
            "rule": "critical vulnerabilities (CVSS 9.0–10.0) = '0'",
            "matched": None,
            "reason": "cannot be decided: no vulnerability snapshot was used: vulnerabilities "
            "were not matched (load or sync OSV data)",
        }
    ]
    assert not seed["target"].tags.exists()
    (row,) = services.policy_dry_run(
        actor=seed["lead"], source=seed["source"], rules=[NO_CRITICALS]
    )
    assert (row.outcome, row.record_outcome, row.reason) == (
        "missing_data",
        "waiting",
        record.reason,
    )

    jobs(scanning_services.osv_import_zip, path_or_file=db_images.osv_zip(records), source="z")

    record.refresh_from_db()
    assert record.outcome == outcome, record.reason
    assert record.rule_results[0]["matched"] is (outcome == "promoted")
    assert seed["target"].tags.filter(manifest=manifest).exists() == (outcome == "promoted")


def test_a_license_gate_fails_when_a_license_is_not_recognised(seed, jobs):
    policy(seed, {"field": "license", "operator": "noo", "values": ["GPL-3.0-only"]})
    push_image(
        jobs,
        seed["source"],
        [[db_images.DEBIAN_OS_RELEASE, metadata("inhouse", "Our Very Own License v2")]],
        "1.0",
    )
    record = PromotionRecord.objects.get()
    assert record.outcome == PromotionOutcome.FAILED
    assert "inhouse: 'Our Very Own License v2'" in record.reason
    assert "was not recognised" in record.reason
    assert not seed["target"].tags.exists()


def test_a_policy_that_opts_in_passes_on_missing_data_and_says_so(seed, jobs):
    policy(
        seed,
        {"field": "license", "operator": "noo", "values": ["GPL-3.0-only"]},
        pass_on_missing_data=True,
    )
    manifest = push_image(
        jobs, seed["source"], [[metadata("inhouse", "Our Very Own License v2")]], "1.0"
    )
    record = PromotionRecord.objects.get()
    assert record.outcome == PromotionOutcome.PROMOTED
    assert "as the policy allows" in record.rule_results[0]["reason"]
    assert seed["target"].tags.get().manifest == manifest


def test_a_component_gate_fails_when_a_layer_was_skipped(seed, jobs):
    policy(seed, {"field": "component_name", "operator": "noo", "values": ["log4j-core"]})
    push_image(
        jobs,
        seed["source"],
        [[metadata("requests", "Apache-2.0")]],
        "1.0",
        raw_layers=[(b"not a tar", "application/vnd.example.blob")],
    )
    record = PromotionRecord.objects.get()
    assert record.outcome == PromotionOutcome.FAILED
    assert "the scan did not read the whole image" in record.reason
    assert "not a tar layer, skipped" in record.reason


def test_a_vulnerability_gate_fails_when_the_os_is_not_identified(seed, jobs):
    jobs(
        scanning_services.osv_import_zip,
        path_or_file=db_images.osv_zip(db_images.STANDARD_RECORDS[1:2]),
        source="z",
    )
    policy(seed, NO_CRITICALS)
    push_image(jobs, seed["source"], [[db_images.DPKG_STATUS]], "1.0")  # no os-release
    record = PromotionRecord.objects.get()
    assert record.outcome == PromotionOutcome.FAILED
    assert "the OS was not identified" in record.reason


def test_component_names_compare_as_pypi_does(seed, jobs):
    policy(seed, {"field": "component_name", "operator": "oo", "values": ["django"]})
    push_image(jobs, seed["source"], [[metadata("Django", "BSD-3-Clause")]], "1.0")
    record = PromotionRecord.objects.get()
    assert record.outcome == PromotionOutcome.PROMOTED, record.reason
    assert record.rule_results == [
        {
            "rule": "component name one of 'django'",
            "matched": True,
            "reason": "the image contains component 'Django'",
        }
    ]


# --- no silent overwrite ----------------------------------------------------------------------


@pytest.fixture
def frozen_clock(monkeypatch):
    """Every promotion happens in the same second, as in one apply or two quick pushes."""
    from django.utils import timezone

    monkeypatch.setattr(services.timezone, "now", lambda: FROZEN)
    return timezone


def test_dtr_template_over_three_tags_in_one_second_loses_no_image(seed, frozen_clock):
    dtr = policy(seed, STABLE, tag_template=DTR_TEMPLATE)
    manifests = {}
    for name in ("1.0-stable", "2.0-stable", "3.0-stable"):
        manifests[name] = factories.make_manifest()
        tag_set(repository=seed["source"], name=name, manifest=manifests[name])

    rows = services.policy_dry_run(
        actor=seed["lead"], source=seed["source"], rules=[STABLE], tag_template=DTR_TEMPLATE
    )
    assert {row.target_tag for row in rows} == {"20240601-120000"}
    assert all("3 tags render 20240601-120000" in row.warning for row in rows)

    records = services.policy_apply(actor=seed["lead"], policy=dtr)

    assert [r.outcome for r in records] == ["promoted"] * 3
    assert len({r.target_tag for r in records}) == 3
    for record in records:  # every "promoted" points at a tag holding that digest
        held = Tag.objects.get(repository=seed["target"], name=record.target_tag)
        assert held.manifest.digest == record.digest
    unique = [r for r in records if r.target_tag != "20240601-120000"]
    assert len(unique) == 2
    for record in unique:
        assert record.target_tag == services.unique_tag("20240601-120000", record.digest)
        assert "made unique" in record.reason


def test_two_pushes_in_the_same_second_do_not_overwrite_each_other(
    seed, jobs, frozen_clock, eager_tasks
):
    policy(seed, STABLE, tag_template=DTR_TEMPLATE)
    first = jobs(
        tag_set, repository=seed["source"], name="a-stable", manifest=factories.make_manifest()
    )
    second = jobs(
        tag_set, repository=seed["source"], name="b-stable", manifest=factories.make_manifest()
    )
    held = {t.manifest_id for t in seed["target"].tags.all()}
    assert held == {first.manifest_id, second.manifest_id}
    assert PromotionRecord.objects.filter(outcome="promoted").count() == 2


def test_a_move_overwrites_and_records_the_previous_digest(seed, jobs, eager_tasks):
    policy(seed, {"field": "tag_name", "operator": "eq", "values": ["latest"]})
    v1 = jobs(tag_set, repository=seed["source"], name="latest", manifest=factories.make_manifest())
    v2 = jobs(tag_set, repository=seed["source"], name="latest", manifest=factories.make_manifest())
    assert seed["target"].tags.get(name="latest").manifest_id == v2.manifest_id
    moved = PromotionRecord.objects.get(digest=v2.manifest.digest)
    assert moved.outcome == PromotionOutcome.PROMOTED
    assert moved.previous_digest == v1.manifest.digest
    assert f"moved from {v1.manifest.digest}" in moved.reason


def test_a_policy_may_keep_the_target_tag_on_a_move(seed, jobs, eager_tasks):
    policy(seed, {"field": "tag_name", "operator": "eq", "values": ["latest"]}, on_move=OnMove.KEEP)
    v1 = jobs(tag_set, repository=seed["source"], name="latest", manifest=factories.make_manifest())
    v2 = jobs(tag_set, repository=seed["source"], name="latest", manifest=factories.make_manifest())
    assert seed["target"].tags.get(name="latest").manifest_id == v1.manifest_id
    kept = PromotionRecord.objects.get(digest=v2.manifest.digest)
    assert kept.outcome == PromotionOutcome.SKIPPED
    assert kept.reason.startswith("kept:")


def test_two_policies_into_one_target_tag_collide_visibly(seed, jobs, eager_tasks):
    """Another source writes qa/website:latest: never overwritten silently."""
    staging = factories.make_repo(seed["dev"], "staging")
    factories.make_team(seed["dev"], members=[seed["lead"]], level=3, repository=staging)
    latest = {"field": "tag_name", "operator": "eq", "values": ["latest"]}
    policy(seed, latest)
    other = services.policy_create(
        actor=seed["lead"], source=staging, target=seed["target"], name="staging", rules=[latest]
    )
    warnings = services.policy_target_warnings(policies=[other])[other.pk]
    assert "“to QA” (from dev/website) also writes to qa/website keeping the tag" in warnings[0]

    first = jobs(
        tag_set, repository=seed["source"], name="latest", manifest=factories.make_manifest()
    )
    second = jobs(tag_set, repository=staging, name="latest", manifest=factories.make_manifest())
    assert seed["target"].tags.get(name="latest").manifest_id == first.manifest_id
    record = PromotionRecord.objects.get(policy=other)
    assert record.target_tag == services.unique_tag("latest", second.manifest.digest)
    assert seed["target"].tags.get(name=record.target_tag).manifest_id == second.manifest_id


# --- apply means the policy as it is now ------------------------------------------------------


def test_apply_after_the_rules_change_evaluates_again(seed):
    for name in ("1.0", "1.0-stable"):
        tag_set(repository=seed["source"], name=name, manifest=factories.make_manifest())
    stable = policy(seed, STABLE)
    first = {
        r.source_tag: r.outcome for r in services.policy_apply(actor=seed["lead"], policy=stable)
    }
    assert first == {"1.0": "skipped", "1.0-stable": "promoted"}
    assert services.policy_apply(actor=seed["lead"], policy=stable)  # same revision: same records
    assert PromotionRecord.objects.count() == 2

    services.policy_update(actor=seed["lead"], policy=stable, rules=[])
    again = {
        r.source_tag: r.outcome for r in services.policy_apply(actor=seed["lead"], policy=stable)
    }
    assert again == {"1.0": "promoted", "1.0-stable": "promoted"}
    assert set(seed["target"].tags.values_list("name", flat=True)) == {"1.0", "1.0-stable"}


def test_apply_after_the_target_changes_promotes_to_the_new_target(seed):
    tag_set(repository=seed["source"], name="1.0-stable", manifest=factories.make_manifest())
    stable = policy(seed, STABLE)
    services.policy_apply(actor=seed["lead"], policy=stable)
    prod = factories.make_repo(factories.make_org("prod", admin=seed["lead"]), "website")
    services.policy_update(actor=seed["lead"], policy=stable, target=prod)
    (record,) = services.policy_apply(actor=seed["lead"], policy=stable)
    assert (record.target_repository, record.outcome) == (prod, "promoted")
    assert prod.tags.filter(name="1.0-stable").exists()


def _tags(seed, count: int, start: int) -> None:
    manifests = [factories.make_manifest() for _ in range(count)]
    Tag.objects.bulk_create(
        Tag(
            repository=seed["source"],
            name=f"build-{start + index}",
            manifest=manifest,
            pushed_at=FROZEN,
        )
        for index, manifest in enumerate(manifests)
    )


def _insert_statements(count: int) -> int:
    """How many INSERTs ``bulk_create`` needs for ``count`` records: one on PostgreSQL; SQLite
    splits at its 999 bound parameters."""
    fields = [f for f in PromotionRecord._meta.concrete_fields if not f.primary_key]
    per_statement = connection.ops.bulk_batch_size(fields, [None] * count)
    return -(-count // per_statement)


def test_apply_costs_the_same_queries_for_20_or_400_tags(seed, django_assert_max_num_queries):
    """Batched: reading, deciding and recording tags takes a fixed number of queries (the
    database's own limit on one INSERT aside)."""
    gate = policy(seed, STABLE, NO_CRITICALS)
    tag_set(repository=seed["source"], name="1.0-stable", manifest=factories.make_manifest())
    _tags(seed, 20, 0)
    with CaptureQueriesContext(connection) as small:
        services.policy_apply(actor=seed["lead"], policy=gate)
    PromotionRecord.objects.all().delete()
    _tags(seed, 380, 20)
    extra_inserts = _insert_statements(401) - _insert_statements(21)
    with django_assert_max_num_queries(len(small) + extra_inserts):
        records = services.policy_apply(actor=seed["lead"], policy=gate)
    assert len(records) == 401
    assert {r.outcome for r in records} == {"skipped", "waiting"}
    with django_assert_max_num_queries(len(small)):  # applied again: nothing to record
        services.policy_apply(actor=seed["lead"], policy=gate)


def test_apply_queue_answers_a_handle_and_refuses_a_disabled_policy(seed, jobs):
    from registry_portal.errors import ValidationFailed

    tag_set(repository=seed["source"], name="1.0-stable", manifest=factories.make_manifest())
    stable = policy(seed, STABLE)
    handle = jobs(services.policy_apply_queue, actor=seed["lead"], policy=stable)
    assert handle.revision == services.policy_revision(stable)
    (record,) = PromotionRecord.objects.filter(revision=handle.revision, trigger="apply")
    assert record.outcome == "promoted"
    services.policy_update(actor=seed["lead"], policy=stable, enabled=False)
    with pytest.raises(ValidationFailed, match="disabled"):
        services.policy_apply_queue(actor=seed["lead"], policy=stable)


# --- only the current state is promoted -------------------------------------------------------


def _waiting_record(seed, jobs):
    policy(seed, NO_CRITICALS)
    push_image(jobs, seed["source"], [db_images.BASE_LAYER], "1.0")
    record = PromotionRecord.objects.get()
    assert record.outcome == PromotionOutcome.WAITING
    return record


def _osv_arrives(jobs):
    jobs(
        scanning_services.osv_import_zip,
        path_or_file=db_images.osv_zip(db_images.STANDARD_RECORDS[1:2]),
        source="z",
    )


def test_a_policy_disabled_while_waiting_ends_the_record_as_skipped(seed, jobs):
    record = _waiting_record(seed, jobs)
    services.policy_update(actor=seed["lead"], policy=record.policy, enabled=False)
    _osv_arrives(jobs)
    record.refresh_from_db()
    assert (record.outcome, record.reason) == (
        "skipped",
        "the policy was disabled while the promotion waited",
    )
    assert not seed["target"].tags.exists()


def test_a_source_tag_deleted_while_waiting_ends_the_record_as_skipped(seed, jobs):
    record = _waiting_record(seed, jobs)
    tag_delete(tag=seed["source"].tags.get(name="1.0"))
    _osv_arrives(jobs)
    record.refresh_from_db()
    assert record.outcome == "skipped"
    assert "the source tag 1.0 was deleted" in record.reason
    assert not seed["target"].tags.exists()


def test_a_source_tag_moved_on_while_waiting_ends_the_record_as_skipped(seed, jobs, monkeypatch):
    record = _waiting_record(seed, jobs)
    # The new image is still being scanned: only the old record is decided here.
    run_job = outbox_services._publish
    monkeypatch.setattr(
        outbox_services,
        "_publish",
        lambda job: None if job.kind == scanning_tasks.scan_manifest_task.name else run_job(job),
    )
    jobs(tag_set, repository=seed["source"], name="1.0", manifest=factories.make_manifest())
    _osv_arrives(jobs)
    record.refresh_from_db()
    assert record.outcome == "skipped"
    assert "superseded" in record.reason
    assert not seed["target"].tags.exists()


# --- referrers --------------------------------------------------------------------------------


def test_referrers_present_at_promotion_time_follow_the_image(seed):
    image = factories.make_manifest()
    tag_set(repository=seed["source"], name="1.0-stable", manifest=image)
    signature = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
                "size": 2,
            },
            "layers": [],
            "subject": {"mediaType": image.media_type, "digest": image.digest, "size": image.size},
        }
    ).encode()
    referrer = manifest_put(
        repository=seed["source"],
        reference="sha256:" + hashlib.sha256(signature).hexdigest(),
        content=signature,
        content_type="application/vnd.oci.image.manifest.v1+json",
    )
    assert not RepositoryManifest.objects.filter(
        manifest=referrer, repository=seed["target"]
    ).exists()

    (record,) = services.policy_apply(actor=seed["lead"], policy=policy(seed, STABLE))

    assert record.outcome == "promoted"
    assert RepositoryManifest.objects.filter(manifest=referrer, repository=seed["target"]).exists()


class _DoneScan:
    status, error = "done", ""
    component_names = licenses = components = frozenset()
    vulnerability_counts = {"critical": 0}
    missing: dict = {}


@pytest.mark.parametrize("change", ["disable", "delete tag"])
def test_a_record_waiting_for_its_scan_promotes_only_the_current_state(
    seed, jobs, monkeypatch, change
):
    scans = {}
    monkeypatch.setattr(
        services, "_scan_facts", lambda manifest, repository=None: scans.get(manifest.pk)
    )
    gate = policy(seed, NO_CRITICALS)
    tag = jobs(tag_set, repository=seed["source"], name="1.0", manifest=factories.make_manifest())
    assert PromotionRecord.objects.get().outcome == PromotionOutcome.WAITING
    if change == "disable":
        services.policy_update(actor=seed["lead"], policy=gate, enabled=False)
    else:
        tag_delete(tag=tag)
    scans[tag.manifest_id] = _DoneScan()
    assert services.promotions_resume_waiting(manifest_id=tag.manifest_id) == 1
    record = PromotionRecord.objects.get()
    assert record.outcome == PromotionOutcome.SKIPPED
    assert ("disabled" if change == "disable" else "was deleted") in record.reason
    assert not seed["target"].tags.exists()
