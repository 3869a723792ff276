"""Promotion services on the database: permissions, push → promotion, provenance, chains,
cycles, failures, idempotency, dry run, apply, manual promotion and waiting for scans."""

import re
from dataclasses import dataclass

import pytest
from django.utils import timezone

from promotions import services
from promotions.choices import PromotionOutcome, Trigger
from promotions.models import PromotionRecord
from registry_portal.accounts.choices import AccessLevel
from registry_portal.errors import PermissionDenied, ValidationFailed
from registry_portal.registry.models import Tag
from registry_portal.registry.services import tag_set
from tests import factories

STABLE = [{"field": "tag_name", "operator": "ew", "values": ["stable"]}]
TIMESTAMP = "%Y%m%d-%H%M%S"


def push(repository, name, manifest=None, actor=None, django_capture_on_commit_callbacks=None):
    manifest = manifest or factories.make_manifest()
    with django_capture_on_commit_callbacks(execute=True):
        tag_set(repository=repository, name=name, manifest=manifest, actor=actor)
    return manifest


@pytest.fixture
def pusher(django_capture_on_commit_callbacks, eager_tasks):
    def _push(repository, name, manifest=None, actor=None):
        return push(repository, name, manifest, actor, django_capture_on_commit_callbacks)

    return _push


@pytest.fixture
def seed_policy(seed):
    return services.policy_create(
        actor=seed["lead"],
        source=seed["source"],
        target=seed["target"],
        name="to QA",
        rules=STABLE,
        tag_template=TIMESTAMP,
    )


# --- permissions ------------------------------------------------------------------------------


def test_a_read_write_developer_cannot_create_a_policy(seed):
    with pytest.raises(PermissionDenied):
        services.policy_create(
            actor=seed["developer"],
            source=seed["source"],
            target=seed["target"],
            name="p",
            rules=STABLE,
        )


def test_an_admin_of_only_the_source_cannot_create_a_policy(seed):
    only_source = factories.make_user()
    factories.make_team(
        seed["dev"], members=[only_source], level=AccessLevel.ADMIN, repository=seed["source"]
    )
    with pytest.raises(PermissionDenied, match="qa/website"):
        services.policy_create(
            actor=only_source, source=seed["source"], target=seed["target"], name="p", rules=STABLE
        )


def test_an_admin_of_either_side_may_delete(seed, seed_policy):
    only_target = factories.make_user()
    factories.make_team(
        seed["qa"], members=[only_target], level=AccessLevel.ADMIN, repository=seed["target"]
    )
    with pytest.raises(PermissionDenied):
        services.policy_delete(actor=seed["developer"], policy=seed_policy)
    services.policy_delete(actor=only_target, policy=seed_policy)
    assert not type(seed_policy).objects.filter(pk=seed_policy.pk).exists()


def test_invalid_policies_are_refused_with_field_errors_and_nothing_saved(seed):
    with pytest.raises(ValidationFailed) as caught:
        services.policy_create(
            actor=seed["lead"],
            source=seed["source"],
            target=seed["source"],
            name=" ",
            rules=[
                {"field": "vulns_critical", "operator": "sw", "values": ["x"]},
                {"field": "vulns_high", "operator": "gt", "values": ["many"]},
                {"field": "tag_name", "operator": "matches", "values": ["(a)\\1"]},
            ],
            tag_template="%q-%Y",
        )
    errors = caught.value.detail
    assert set(errors) == {"name", "target", "tag_template", "rules.0", "rules.1", "rules.2"}
    assert not type(seed["source"]).objects.get(pk=seed["source"].pk).promotion_policies.exists()


# --- the seed story ---------------------------------------------------------------------------


def test_a_stable_push_is_promoted_with_a_timestamp_tag_and_provenance(seed, seed_policy, pusher):
    before = timezone.now()
    manifest = pusher(seed["source"], "1.0-stable", actor=seed["developer"])

    promoted = Tag.objects.get(repository=seed["target"])
    assert promoted.manifest_id == manifest.pk  # zero-copy: the same manifest
    assert re.fullmatch(r"\d{8}-\d{6}", promoted.name)
    assert promoted.name >= before.strftime("%Y%m%d-%H%M%S")
    assert promoted.pushed_by is None  # the system promoted it
    assert promoted.provenance["source_repository"] == "dev/website"
    assert promoted.provenance["source_tag"] == "1.0-stable"
    assert promoted.provenance["digest"] == manifest.digest
    assert promoted.provenance["policy_name"] == "to QA"
    record = PromotionRecord.objects.get()
    assert (record.outcome, record.trigger) == (PromotionOutcome.PROMOTED, Trigger.PUSH)
    assert record.target_tag == promoted.name
    assert record.triggered_by == seed["developer"]


def test_a_tag_not_meeting_the_rules_is_skipped_with_the_reason(seed, seed_policy, pusher):
    pusher(seed["source"], "1.0")
    assert not Tag.objects.filter(repository=seed["target"]).exists()
    record = PromotionRecord.objects.get()
    assert record.outcome == PromotionOutcome.SKIPPED
    assert "does not end with 'stable'" in record.reason


def test_a_later_manual_push_clears_the_provenance(seed, seed_policy, pusher):
    manifest = pusher(seed["source"], "1.0-stable")
    promoted = Tag.objects.get(repository=seed["target"])
    tag_set(repository=seed["target"], name=promoted.name, manifest=manifest, actor=seed["tester"])
    promoted.refresh_from_db()
    assert promoted.provenance is None


def test_the_pusher_needs_no_access_to_the_target(seed, seed_policy, pusher):
    from registry_portal.accounts.permissions import repository_actions

    assert repository_actions(seed["developer"], seed["target"]) == frozenset()
    pusher(seed["source"], "2.0-stable", actor=seed["developer"])
    assert Tag.objects.filter(repository=seed["target"]).count() == 1


def test_disabled_policies_do_nothing(seed, seed_policy, pusher):
    services.policy_update(actor=seed["lead"], policy=seed_policy, enabled=False)
    pusher(seed["source"], "1.0-stable")
    assert not PromotionRecord.objects.exists()


# --- chains and cycles ------------------------------------------------------------------------


def test_chain_dev_qa_prod_and_a_cycle_back_to_dev_stops(seed, seed_policy, pusher):
    prod_org = factories.make_org("prod", admin=seed["lead"])
    prod = factories.make_repo(prod_org, "website")
    services.policy_create(
        actor=seed["lead"], source=seed["target"], target=prod, name="to prod", rules=[]
    )
    assert services.policy_cycle(source=seed["source"], target=prod) == []
    loop = services.policy_cycle(source=seed["target"], target=seed["source"])
    assert loop == ["qa/website", "dev/website", "qa/website"]
    services.policy_create(
        actor=seed["lead"], source=seed["target"], target=seed["source"], name="back", rules=[]
    )

    manifest = pusher(seed["source"], "3.0-stable")

    prod_tag = Tag.objects.get(repository=prod)
    assert prod_tag.manifest_id == manifest.pk
    assert prod_tag.provenance["chain"] == ["dev/website", "qa/website"]
    assert Tag.objects.filter(repository=seed["source"]).count() == 1  # never came back
    back = PromotionRecord.objects.get(policy_name="back")
    assert back.outcome == PromotionOutcome.SKIPPED
    assert "loop" in back.reason
    assert PromotionRecord.objects.filter(trigger=Trigger.CHAIN).count() == 2


# --- failures ---------------------------------------------------------------------------------


def test_an_immutable_target_tag_fails_the_record_and_changes_nothing(seed, pusher):
    seed["target"].immutable_tags = True
    seed["target"].save()
    services.policy_create(
        actor=seed["lead"], source=seed["source"], target=seed["target"], name="keep", rules=[]
    )
    first = pusher(seed["source"], "latest")
    pusher(seed["source"], "latest")  # another image under the same tag
    target_tag = Tag.objects.get(repository=seed["target"], name="latest")
    assert target_tag.manifest_id == first.pk
    failed = PromotionRecord.objects.get(outcome=PromotionOutcome.FAILED)
    assert "immutable" in failed.reason


def test_a_deleted_target_repository_fails_the_record(seed, seed_policy, pusher):
    seed["target"].delete()
    pusher(seed["source"], "1.0-stable")
    record = PromotionRecord.objects.get()
    assert record.outcome == PromotionOutcome.FAILED
    assert "deleted" in record.reason


def test_a_template_rendering_an_invalid_tag_fails_the_record(seed, pusher):
    services.policy_create(
        actor=seed["lead"],
        source=seed["source"],
        target=seed["target"],
        name="long",
        rules=[],
        tag_template="%n-%A-%B-%n",
    )
    pusher(seed["source"], "x" * 80)
    record = PromotionRecord.objects.get()
    assert record.outcome == PromotionOutcome.FAILED
    assert "not a valid tag" in record.reason
    assert not Tag.objects.filter(repository=seed["target"]).exists()


# --- idempotency ------------------------------------------------------------------------------


def test_the_same_push_delivered_twice_promotes_once(seed, seed_policy, pusher, eager_tasks):
    pusher(seed["source"], "1.0-stable")
    tag = Tag.objects.get(repository=seed["source"])
    args = (tag.pk, tag.manifest_id, tag.pushed_at.isoformat())
    eager_tasks.promote_pushed_tag.delay(*args)
    eager_tasks.promote_pushed_tag.delay(*args)
    assert PromotionRecord.objects.count() == 1
    assert Tag.objects.filter(repository=seed["target"]).count() == 1


def test_a_superseded_push_is_skipped(seed, seed_policy, django_capture_on_commit_callbacks):
    first = factories.make_manifest()
    with django_capture_on_commit_callbacks(execute=False):
        tag_set(repository=seed["source"], name="1.0-stable", manifest=first)
    tag = Tag.objects.get(repository=seed["source"])
    args = dict(tag_id=tag.pk, manifest_id=first.pk, pushed_at=tag.pushed_at)
    tag_set(repository=seed["source"], name="1.0-stable", manifest=factories.make_manifest())
    (record,) = services.promotions_for_push(**args)
    assert record.outcome == PromotionOutcome.SKIPPED
    assert "superseded" in record.reason


# --- dry run, apply, manual -------------------------------------------------------------------


def test_dry_run_lists_what_would_be_promoted_and_writes_nothing(seed):
    for name in ("1.0", "1.0-stable", "2.0-stable"):
        tag_set(repository=seed["source"], name=name, manifest=factories.make_manifest())
    rows = services.policy_dry_run(
        actor=seed["lead"], source=seed["source"], rules=STABLE, tag_template="qa-%n"
    )
    by_tag = {row.tag: row for row in rows}
    assert by_tag["1.0-stable"].target_tag == "qa-1.0-stable"
    assert by_tag["2.0-stable"].outcome == "match"
    assert by_tag["1.0"].outcome == "no_match" and by_tag["1.0"].target_tag == ""
    assert not PromotionRecord.objects.exists()
    assert not Tag.objects.filter(repository=seed["target"]).exists()


def test_apply_promotes_existing_tags_once(seed, seed_policy):
    for name in ("1.0", "1.0-stable"):
        tag_set(repository=seed["source"], name=name, manifest=factories.make_manifest())
    first = services.policy_apply(actor=seed["lead"], policy=seed_policy)
    again = services.policy_apply(actor=seed["lead"], policy=seed_policy)
    assert sorted(r.outcome for r in first) == ["promoted", "skipped"]
    assert [r.pk for r in first] == [r.pk for r in again]
    assert Tag.objects.filter(repository=seed["target"]).count() == 1
    with pytest.raises(PermissionDenied):
        services.policy_apply(actor=seed["developer"], policy=seed_policy)


def test_manual_promotion_promotes_whatever_the_rules(seed, seed_policy):
    manifest = factories.make_manifest()
    tag = tag_set(repository=seed["source"], name="hotfix", manifest=manifest)
    with pytest.raises(PermissionDenied):
        services.promotion_manual(actor=seed["developer"], policy=seed_policy, tag=tag)
    record = services.promotion_manual(actor=seed["lead"], policy=seed_policy, tag=tag)
    assert (record.outcome, record.trigger) == (PromotionOutcome.PROMOTED, Trigger.MANUAL)
    assert Tag.objects.get(repository=seed["target"]).manifest_id == manifest.pk


# --- waiting for the scan ---------------------------------------------------------------------


@dataclass
class FakeScan:
    status: str
    component_names: frozenset = frozenset()
    licenses: frozenset = frozenset()
    vulnerability_counts: dict | None = None
    error: str = ""


def test_a_vulnerability_rule_waits_for_the_scan_then_decides(seed, pusher, monkeypatch):
    scans: dict[int, FakeScan] = {}
    monkeypatch.setattr(
        services, "_scan_facts", lambda manifest, repository=None: scans.get(manifest.pk)
    )
    services.policy_create(
        actor=seed["lead"],
        source=seed["source"],
        target=seed["target"],
        name="clean",
        rules=[*STABLE, {"field": "vulns_critical", "operator": "eq", "values": ["0"]}],
    )
    clean = pusher(seed["source"], "1.0-stable")
    dirty = pusher(seed["source"], "2.0-stable")
    assert set(PromotionRecord.objects.values_list("outcome", flat=True)) == {"waiting"}
    assert not Tag.objects.filter(repository=seed["target"]).exists()

    scans[clean.pk] = FakeScan("done", vulnerability_counts={"critical": 0, "high": 3})
    scans[dirty.pk] = FakeScan("done", vulnerability_counts={"critical": 2})
    assert services.promotions_resume_waiting(manifest_id=clean.pk) == 1
    assert services.promotions_resume_waiting(manifest_id=dirty.pk) == 1
    assert services.promotions_resume_waiting(manifest_id=clean.pk) == 0  # never twice

    outcomes = dict(PromotionRecord.objects.values_list("source_tag", "outcome"))
    assert outcomes == {"1.0-stable": "promoted", "2.0-stable": "skipped"}
    assert Tag.objects.get(repository=seed["target"]).manifest_id == clean.pk


def test_a_failed_scan_fails_the_waiting_promotion(seed, pusher, monkeypatch):
    monkeypatch.setattr(services, "_scan_facts", lambda manifest, repository=None: None)
    services.policy_create(
        actor=seed["lead"],
        source=seed["source"],
        target=seed["target"],
        name="gpl-free",
        rules=[{"field": "license", "operator": "noo", "values": ["GPL-3.0-only"]}],
    )
    manifest = pusher(seed["source"], "1.0")
    services.promotions_resume_waiting(manifest_id=manifest.pk, scan_failed_reason="corrupt layer")
    record = PromotionRecord.objects.get()
    assert record.outcome == PromotionOutcome.FAILED
    assert "corrupt layer" in record.reason


def test_a_scan_finishing_while_the_push_is_evaluated_is_not_missed(seed, pusher, monkeypatch):
    """The facts say 'not scanned'; by the time the waiting record is saved, the scan is done."""
    calls = []

    def scan_facts(manifest, repository=None):
        calls.append(manifest.pk)
        if len(calls) == 1:
            return None  # read for the decision: no report yet
        return FakeScan("done", vulnerability_counts={"critical": 0})

    monkeypatch.setattr(services, "_scan_facts", scan_facts)
    services.policy_create(
        actor=seed["lead"],
        source=seed["source"],
        target=seed["target"],
        name="clean",
        rules=[{"field": "vulns_critical", "operator": "eq", "values": ["0"]}],
    )
    pusher(seed["source"], "1.0")
    assert PromotionRecord.objects.get().outcome == PromotionOutcome.PROMOTED


def test_referrers_pushed_after_the_promotion_follow_the_image(seed, seed_policy, pusher):
    import hashlib
    import json

    from registry_portal.registry.models import RepositoryManifest
    from registry_portal.registry.services import manifest_put

    prod_org = factories.make_org("prod", admin=seed["lead"])
    prod = factories.make_repo(prod_org, "website")
    services.policy_create(actor=seed["lead"], source=seed["target"], target=prod, name="p")
    image = pusher(seed["source"], "1.0-stable")
    assert Tag.objects.filter(repository=prod, manifest=image).exists()

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
            "subject": {
                "mediaType": image.media_type,
                "digest": image.digest,
                "size": image.size,
            },
        }
    ).encode()
    referrer = manifest_put(
        repository=seed["source"],
        reference="sha256:" + hashlib.sha256(signature).hexdigest(),
        content=signature,
        content_type="application/vnd.oci.image.manifest.v1+json",
    )
    linked = set(
        RepositoryManifest.objects.filter(manifest=referrer).values_list(
            "repository__namespace__name", flat=True
        )
    )
    assert linked == {"dev", "qa", "prod"}
