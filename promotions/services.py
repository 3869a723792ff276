"""Every write of the promotions app: policies, and the promotion attempts they lead to.

The decision itself is the pure ``promotions.engine``; here we gather the facts it needs,
record every attempt in a ``PromotionRecord`` and move tags with the registry's ``tag_set``,
as the system, with the record as provenance. Promoting copies no bytes.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from registry_portal import grammar
from registry_portal.accounts.choices import Action
from registry_portal.accounts.permissions import repository_allows
from registry_portal.errors import PermissionDenied, TagImmutable, ValidationFailed
from registry_portal.outbox.services import job_enqueue
from registry_portal.registry.models import Manifest, Repository, RepositoryManifest, Tag
from registry_portal.registry.services import manifest_link, tag_set
from scanning.selectors import manifest_scan_facts, manifests_scan_facts

from . import engine, tasks
from .choices import OnMove, PromotionOutcome, Trigger, field_needs_scan
from .models import PolicyRule, PromotionPolicy, PromotionRecord
from .tag_templates import InvalidTagTemplateError, TagTemplate

# --- policies ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleSpec:
    """A rule as a user gives it: plain strings."""

    field: str
    operator: str
    values: tuple[str, ...]

    @classmethod
    def from_data(cls, data) -> RuleSpec:
        if isinstance(data, RuleSpec):
            return data
        values = data.get("values", ())
        if isinstance(values, str):
            values = [values]
        return cls(
            field=str(data.get("field", "")),
            operator=str(data.get("operator", "")),
            values=tuple(str(v).strip() for v in values),
        )


def policy_errors(
    *,
    name: str,
    source: Repository | None,
    target: Repository | None,
    tag_template: str,
    rules: Iterable[RuleSpec],
) -> dict[str, list[str]]:
    """Field errors of a policy, in words a team lead understands; empty when it is valid.

    Rule errors are keyed ``rules.<index>``.
    """
    errors: dict[str, list[str]] = {}
    if not name.strip():
        errors.setdefault("name", []).append("Give the policy a name.")
    if source is None:
        errors.setdefault("source", []).append("Choose the source repository.")
    if target is None:
        errors.setdefault("target", []).append("Choose the target repository.")
    elif source is not None and source.pk == target.pk:
        errors.setdefault("target", []).append(
            "The target must be another repository than the source."
        )
    template_errors = TagTemplate(tag_template).validate()
    if template_errors:
        errors["tag_template"] = template_errors
    for index, rule in enumerate(rules):
        rule_errors = engine.validate_rule(rule.field, rule.operator, rule.values)
        if rule_errors:
            errors[f"rules.{index}"] = rule_errors
    return errors


def _check_may_change(actor, *repositories: Repository) -> None:
    for repository in repositories:
        if not repository_allows(actor, repository, Action.ADMIN):
            raise PermissionDenied(
                "Creating or changing a promotion policy needs admin rights on both the source "
                f"and the target repository; you are not an admin of {repository.full_name}."
            )


def _validated(*, name, source, target, tag_template, rules) -> list[RuleSpec]:
    specs = [RuleSpec.from_data(rule) for rule in rules]
    errors = policy_errors(
        name=name, source=source, target=target, tag_template=tag_template, rules=specs
    )
    if errors:
        raise ValidationFailed("The policy is not valid.", detail=errors)
    return specs


def _save_rules(policy: PromotionPolicy, specs: list[RuleSpec]) -> None:
    policy.rules.all().delete()
    PolicyRule.objects.bulk_create(
        PolicyRule(
            policy=policy,
            field=spec.field,
            operator=spec.operator,
            values=list(spec.values),
            position=position,
        )
        for position, spec in enumerate(specs)
    )


@transaction.atomic
def policy_create(
    *,
    actor,
    source: Repository,
    target: Repository,
    name: str,
    rules: Iterable = (),
    tag_template: str = "",
    description: str = "",
    enabled: bool = True,
    pass_on_missing_data: bool = False,
    on_move: str = OnMove.OVERWRITE,
) -> PromotionPolicy:
    """Create a policy. Needs admin on the source and the target repository."""
    specs = _validated(
        name=name, source=source, target=target, tag_template=tag_template, rules=rules
    )
    _check_may_change(actor, source, target)
    if PromotionPolicy.objects.filter(source=source, name=name.strip()).exists():
        raise ValidationFailed(
            "The policy is not valid.",
            detail={"name": ["This repository already has a policy with this name."]},
        )
    policy = PromotionPolicy.objects.create(
        source=source,
        target=target,
        name=name.strip(),
        description=description,
        tag_template=tag_template,
        enabled=enabled,
        pass_on_missing_data=bool(pass_on_missing_data),
        on_move=_on_move(on_move),
        created_by=actor,
        updated_by=actor,
    )
    _save_rules(policy, specs)
    return policy


_UNSET = object()


def _on_move(value) -> str:
    if value not in OnMove.values:
        raise ValidationFailed(
            f"Choose what a move does: {', '.join(OnMove.values)}.", field="on_move"
        )
    return value


@transaction.atomic
def policy_update(
    *,
    actor,
    policy: PromotionPolicy,
    target: Repository | object = _UNSET,
    name: str | object = _UNSET,
    rules: Iterable | object = _UNSET,
    tag_template: str | object = _UNSET,
    description: str | object = _UNSET,
    enabled: bool | object = _UNSET,
    pass_on_missing_data: bool | object = _UNSET,
    on_move: str | object = _UNSET,
) -> PromotionPolicy:
    """Change a policy; only the given arguments change. Needs admin on source and target
    (the old target and the new one)."""
    policy = PromotionPolicy.objects.select_for_update().get(pk=policy.pk)
    new_target = policy.target if target is _UNSET else target
    _check_may_change(actor, *[r for r in (policy.source, policy.target, new_target) if r])
    new_name = policy.name if name is _UNSET else name
    new_template = policy.tag_template if tag_template is _UNSET else tag_template
    specs = _validated(
        name=new_name,
        source=policy.source,
        target=new_target,
        tag_template=new_template,
        rules=policy_rule_specs(policy) if rules is _UNSET else rules,
    )
    if (
        PromotionPolicy.objects.filter(source=policy.source, name=new_name.strip())
        .exclude(pk=policy.pk)
        .exists()
    ):
        raise ValidationFailed(
            "The policy is not valid.",
            detail={"name": ["This repository already has a policy with this name."]},
        )
    policy.target, policy.name, policy.tag_template = new_target, new_name.strip(), new_template
    if description is not _UNSET:
        policy.description = description
    if enabled is not _UNSET:
        policy.enabled = bool(enabled)
    if pass_on_missing_data is not _UNSET:
        policy.pass_on_missing_data = bool(pass_on_missing_data)
    if on_move is not _UNSET:
        policy.on_move = _on_move(on_move)
    policy.updated_by = actor
    policy.save()
    if rules is not _UNSET:
        _save_rules(policy, specs)
    return policy


def policy_delete(*, actor, policy: PromotionPolicy) -> None:
    """Delete a policy: admin on the source or the target suffices. Records are kept."""
    repositories = [r for r in (policy.source, policy.target) if r is not None]
    if not any(repository_allows(actor, r, Action.ADMIN) for r in repositories):
        raise PermissionDenied(
            "Deleting a promotion policy needs admin rights on its source or its target."
        )
    policy.delete()


def policy_rule_specs(policy: PromotionPolicy) -> list[RuleSpec]:
    return [
        RuleSpec(field=r.field, operator=r.operator, values=tuple(r.values))
        for r in policy.rules.all()
    ]


def policy_cycle(*, source: Repository, target: Repository, exclude_policy_id=None) -> list[str]:
    """The repositories of a loop that a policy source → target would close, or [].

    Such a policy is allowed (promotions never re-enter a repository already in their
    chain), but the user is shown the loop when saving.
    """
    edges: dict[int, list[int]] = {}
    policies = PromotionPolicy.objects.filter(enabled=True, target__isnull=False)
    if exclude_policy_id is not None:
        policies = policies.exclude(pk=exclude_policy_id)
    for source_id, target_id in policies.values_list("source_id", "target_id"):
        edges.setdefault(source_id, []).append(target_id)
    # Breadth-first from the target: do we get back to the source?
    paths = {target.pk: [target.pk]}
    frontier = [target.pk]
    while frontier:
        following = []
        for repository_id in frontier:
            for next_id in edges.get(repository_id, ()):
                if next_id == source.pk:
                    ids = [source.pk, *paths[repository_id], source.pk]
                    names = dict(
                        (r.pk, r.full_name)
                        for r in Repository.objects.select_related("namespace").filter(pk__in=ids)
                    )
                    return [names[i] for i in ids]
                if next_id not in paths:
                    paths[next_id] = [*paths[repository_id], next_id]
                    following.append(next_id)
        frontier = following
    return []


# --- facts ------------------------------------------------------------------------------------


def _scan_facts(manifest: Manifest, repository: Repository):
    """The scanner's facts for a manifest as ``repository`` (the policy's source) sees it: its
    layers and the SBOMs linked there (issue #10), or None while it has no report."""
    return manifest_scan_facts(manifest=manifest, repository=repository)


def _facts_from_scan(scan, *, tag_name: str, pushed_at: datetime) -> engine.ImageFacts:
    if scan is None or scan.status != "done":
        return engine.ImageFacts(tag=tag_name, pushed_at=pushed_at, scan_done=False)
    return engine.ImageFacts(
        tag=tag_name,
        pushed_at=pushed_at,
        scan_done=True,
        component_names=frozenset(scan.component_names),
        components=frozenset(getattr(scan, "components", ())),
        licenses=frozenset(scan.licenses),
        vulnerability_counts=dict(scan.vulnerability_counts or {}),
        missing=dict(getattr(scan, "missing", {}) or {}),
    )


def image_facts(
    *,
    manifest: Manifest,
    repository: Repository,
    tag_name: str,
    pushed_at: datetime,
    need_scan: bool,
):
    """The engine's input for one tag pushed to ``repository`` (the policies' source). Scan
    facts are read only when a rule needs them."""
    scan = _scan_facts(manifest, repository) if need_scan else None
    return _facts_from_scan(scan, tag_name=tag_name, pushed_at=pushed_at)


def _rules(policy: PromotionPolicy) -> list[engine.Rule]:
    return [
        engine.Rule(field=r.field, operator=r.operator, values=tuple(r.values))
        for r in policy.rules.all()
    ]


def policy_revision(policy: PromotionPolicy) -> str:
    """A short hash of what decides the policy's promotions: its rules, target, template, and
    its choices on missing data and moves. Applying the same revision twice promotes once."""
    described = json.dumps(
        {
            "rules": [[r.field, r.operator, list(r.values)] for r in policy.rules.all()],
            "target": policy.target_id,
            "template": policy.tag_template,
            "pass_on_missing_data": policy.pass_on_missing_data,
            "on_move": policy.on_move,
        },
        sort_keys=True,
    )
    return hashlib.sha256(described.encode()).hexdigest()[:16]


# What can still arrive, so that a promotion missing it waits rather than fails: a new OSV
# snapshot (imported or synced) resumes the records that wait for vulnerability data.
ARRIVING_DATA = frozenset({engine.MissingData.VULNERABILITY_DATA})


def decision_outcome(decision: engine.Decision) -> tuple[str, str] | None:
    """The record's outcome and reason for an engine decision; None for a match (promote).

    Shared by every promotion and the dry run, so that the dry run shows what a record
    would say.
    """
    if decision.outcome == engine.Outcome.MATCH:
        return None
    if decision.outcome == engine.Outcome.NO_MATCH:
        return PromotionOutcome.SKIPPED, decision.summary
    if decision.outcome == engine.Outcome.NEEDS_SCAN:
        return PromotionOutcome.WAITING, decision.summary
    if set(decision.missing) <= ARRIVING_DATA:
        return PromotionOutcome.WAITING, f"waiting for vulnerability data: {decision.summary}"
    return (
        PromotionOutcome.FAILED,
        f"a rule needs data the scan could not give, so it does not pass: {decision.summary}",
    )


# --- promotion --------------------------------------------------------------------------------


def _provenance(record: PromotionRecord, chain: list[str]) -> dict:
    return {
        "source_repository": record.source_repository_name,
        "source_tag": record.source_tag,
        "digest": record.digest,
        "policy_id": record.policy_id,
        "policy_name": record.policy_name,
        "record_id": record.pk,
        "promoted_at": (record.finished_at or timezone.now()).isoformat(),
        "chain": chain,
    }


def _lock_target_tag(repository: Repository, tag: str) -> None:
    """Serialise writes to one (target repository, tag) until the transaction ends.

    PostgreSQL: a transaction-level advisory lock on a hash of the pair (it also covers a
    tag that does not exist yet, which no row lock can). SQLite: transactions are IMMEDIATE
    (see settings), so a writing transaction already holds the database's one write lock.
    """
    if connection.vendor != "postgresql":
        return
    digest = hashlib.sha256(f"promotion-target:{repository.pk}:{tag}".encode()).digest()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest[:8], "big", signed=True)]
        )


def unique_tag(rendered: str, digest: str) -> str:
    """The deterministic tag a colliding promotion gets: the rendered tag and the first 8 hex
    digits of the image's digest (shortened to stay a valid tag)."""
    suffix = "-" + digest.split(":", 1)[-1][:8]
    return rendered[: grammar.MAX_TAG_LENGTH - len(suffix)] + suffix


def _written_from(tag: Tag) -> tuple[str, str] | None:
    """(source repository, source tag) a target tag was last promoted from; None if pushed."""
    if not tag.provenance:
        return None
    return tag.provenance.get("source_repository", ""), tag.provenance.get("source_tag", "")


def _current_digest(record: PromotionRecord) -> str:
    """What the record's source tag points at now: '' when it was deleted."""
    return (
        Tag.objects.filter(repository_id=record.source_repository_id, name=record.source_tag)
        .values_list("manifest__digest", flat=True)
        .first()
        or ""
    )


def _source_gone(record: PromotionRecord, current_digest: str) -> str:
    """Why the source no longer holds the evaluated image, or ''."""
    if not current_digest:
        return f"the source tag {record.source_tag} was deleted: only the current state is promoted"
    if current_digest != record.digest:
        return "superseded: the tag was pushed again, to another image, since"
    return ""


def _promote(record: PromotionRecord, policy: PromotionPolicy, manifest: Manifest) -> None:
    """Render the target tag and set it as the system, under the lock of (target, tag), if the
    source still holds the image. Sets the record's outcome; runs inside a transaction.

    A target tag last promoted from another source tag (or by another policy from another
    source) is a collision: the promotion gets ``unique_tag``. One last promoted from the same
    source tag, or pushed directly, is a move: overwritten (recording the previous digest), or
    kept if the policy says so.
    """
    now = timezone.now()
    record.finished_at = now
    try:
        rendered = TagTemplate(policy.tag_template).render(now=now, tag=record.source_tag)
    except InvalidTagTemplateError as exc:
        record.outcome, record.reason = PromotionOutcome.FAILED, f"invalid target tag: {exc}"
        return
    target = policy.target
    _lock_target_tag(target, rendered)
    gone = _source_gone(record, _current_digest(record))
    if gone:
        record.outcome, record.reason = PromotionOutcome.SKIPPED, gone
        return
    target_tag, note = rendered, ""
    existing = (
        Tag.objects.filter(repository=target, name=rendered).select_related("manifest").first()
    )
    if existing is not None and existing.manifest_id != manifest.pk:
        written_from = _written_from(existing)
        if written_from in (None, (record.source_repository_name, record.source_tag)):
            if policy.on_move == OnMove.KEEP:
                record.target_tag = rendered
                record.outcome = PromotionOutcome.SKIPPED
                record.reason = (
                    f"kept: {target.full_name}:{rendered} holds {existing.manifest.digest} and "
                    "the policy keeps a target tag that came from the same source tag"
                )
                return
            record.previous_digest = existing.manifest.digest
            note = f" (moved from {existing.manifest.digest})"
        else:
            target_tag = unique_tag(rendered, record.digest)
            _lock_target_tag(target, target_tag)
            taken = (
                Tag.objects.filter(repository=target, name=target_tag)
                .exclude(manifest=manifest)
                .exists()
            )
            if taken:
                record.target_tag = rendered
                record.outcome = PromotionOutcome.FAILED
                record.reason = (
                    f"collision: {target.full_name}:{rendered} came from "
                    f"{written_from[0]}:{written_from[1]}, and the unique tag {target_tag} is "
                    "taken by another image"
                )
                return
            note = (
                f" ({rendered} already holds {existing.manifest.digest} from "
                f"{written_from[0]}:{written_from[1]}: made unique)"
            )
    record.target_tag = target_tag
    try:
        tag_set(
            repository=target,
            name=target_tag,
            manifest=manifest,
            actor=None,
            provenance=_provenance(record, record.chain),
            source=policy.source,
        )
    except (TagImmutable, ValidationFailed) as exc:
        record.outcome, record.reason = PromotionOutcome.FAILED, exc.message
        return
    # Referrers follow the image: signatures and SBOMs of this manifest in the source. Found by
    # subject first (indexed), so a source with many manifests costs nothing more.
    linked_in_source = RepositoryManifest.objects.filter(
        manifest=OuterRef("pk"), repository_id=record.source_repository_id
    )
    for referrer in Manifest.objects.filter(subject_digest=manifest.digest).filter(
        Exists(linked_in_source)
    ):
        manifest_link(repository=target, manifest=referrer, source=policy.source)
    record.outcome = PromotionOutcome.PROMOTED
    record.reason = f"promoted to {target.full_name}:{target_tag}{note}"


def _settle(
    record: PromotionRecord,
    policy: PromotionPolicy,
    facts: engine.ImageFacts | None,
    *,
    evaluate_rules: bool,
    current_digest: str | None,
    rules: list[engine.Rule] | None = None,
) -> bool:
    """Decide every outcome that needs no promotion; False when the image is to be promoted.

    ``current_digest`` is what the source tag holds now ('' when deleted; None: not known).
    Writes nothing, so the settled records of many policies can be saved in one statement.
    """
    target = policy.target
    if target is None:
        record.outcome = PromotionOutcome.FAILED
        record.reason = "the target repository was deleted"
        return True
    record.target_repository, record.target_repository_name = target, target.full_name
    if target.full_name in record.chain:
        record.outcome = PromotionOutcome.SKIPPED
        record.reason = (
            f"stopped a loop: the image already came through {target.full_name} "
            f"({' → '.join(record.chain)})"
        )
        return True
    gone = _source_gone(record, current_digest) if current_digest is not None else ""
    if gone:
        record.outcome, record.reason = PromotionOutcome.SKIPPED, gone
        return True
    if evaluate_rules:
        decision = engine.evaluate(
            _rules(policy) if rules is None else rules,
            facts,
            now=timezone.now(),
            pass_on_missing_data=policy.pass_on_missing_data,
        )
        record.rule_results = [
            {"rule": str(result.rule), "matched": result.matched, "reason": result.reason}
            for result in decision.results
        ]
        settled = decision_outcome(decision)
        if settled is not None:
            record.outcome, record.reason = settled
            return True
    return False


def _new_record(
    *, key, policy, repository, tag_name, manifest, pushed_at, trigger, actor, chain, revision=""
) -> PromotionRecord:
    return PromotionRecord(
        idempotency_key=key,
        policy=policy,
        policy_name=policy.name,
        source_repository=repository,
        source_repository_name=repository.full_name,
        source_tag=tag_name,
        digest=manifest.digest,
        manifest=manifest,
        trigger=trigger,
        outcome=PromotionOutcome.FAILED,
        triggered_by=actor,
        pushed_at=pushed_at,
        chain=chain,
        revision=revision,
    )


def _save_promoting(record: PromotionRecord, policy: PromotionPolicy, manifest) -> PromotionRecord:
    """Save a record and promote, in one transaction; a concurrent duplicate keeps the first."""
    try:
        with transaction.atomic():
            record.save()
            _promote(record, policy, manifest)
            record.save()
            return record
    except IntegrityError:
        return PromotionRecord.objects.get(idempotency_key=record.idempotency_key)


def _attempt(
    *,
    key: str,
    policy: PromotionPolicy,
    repository: Repository,
    tag_name: str,
    manifest: Manifest,
    pushed_at: datetime,
    trigger: str,
    actor,
    chain: list[str],
    facts: engine.ImageFacts | None,
    evaluate_rules: bool = True,
    current_digest: str | None = None,
) -> PromotionRecord:
    """One attempt, recorded once under ``key``: a repeated delivery returns the first record."""
    existing = PromotionRecord.objects.filter(idempotency_key=key).first()
    if existing is not None:
        return existing
    record = _new_record(
        key=key,
        policy=policy,
        repository=repository,
        tag_name=tag_name,
        manifest=manifest,
        pushed_at=pushed_at,
        trigger=trigger,
        actor=actor,
        chain=chain,
        revision=policy_revision(policy),
    )
    if _settle(record, policy, facts, evaluate_rules=evaluate_rules, current_digest=current_digest):
        record.finished_at = timezone.now() if record.outcome != "waiting" else None
        PromotionRecord.objects.bulk_create([record], ignore_conflicts=True)
        return PromotionRecord.objects.get(idempotency_key=key)
    return _save_promoting(record, policy, manifest)


def _chain_for(tag: Tag, repository: Repository | None = None) -> tuple[str, list[str]]:
    """The trigger and the chain of a pushed tag: a promoted tag continues its chain."""
    name = (repository or tag.repository).full_name
    if tag.provenance and tag.provenance.get("chain") is not None:
        return Trigger.CHAIN, [*tag.provenance["chain"], name]
    return Trigger.PUSH, [name]


def promotions_for_push(
    *, tag_id: int, manifest_id: int, pushed_at: datetime
) -> list[PromotionRecord]:
    """Evaluate every enabled policy of the repository a tag was pushed to (or promoted into).

    Idempotent: the key of each attempt is the policy and the push (tag, digest, time).
    """
    tag = Tag.objects.select_related("repository__namespace").filter(pk=tag_id).first()
    manifest = Manifest.objects.filter(pk=manifest_id).first()
    if tag is None or manifest is None:
        return []  # deleted since the push: nothing left to promote
    policies = list(
        PromotionPolicy.objects.filter(source=tag.repository, enabled=True)
        .select_related("target__namespace")
        .prefetch_related("rules")
    )
    if not policies:
        return []
    trigger, chain = _chain_for(tag)
    need_scan = any(field_needs_scan(r.field) for p in policies for r in p.rules.all())
    facts = image_facts(
        manifest=manifest,
        repository=tag.repository,
        tag_name=tag.name,
        pushed_at=pushed_at,
        need_scan=need_scan,
    )
    # The tag was just read: if it points elsewhere now, this push was superseded.
    current = manifest.digest if tag.manifest_id == manifest.pk else tag.manifest.digest
    keys = {
        policy.pk: f"push:{policy.pk}:{tag.pk}:{manifest.digest}:{pushed_at.isoformat()}"
        for policy in policies
    }
    done = set(
        PromotionRecord.objects.filter(idempotency_key__in=keys.values()).values_list(
            "idempotency_key", flat=True
        )
    )
    settled, promoting = [], []
    for policy in policies:
        if keys[policy.pk] in done:
            continue  # a repeated delivery: this attempt is recorded already
        record = _new_record(
            key=keys[policy.pk],
            policy=policy,
            repository=tag.repository,
            tag_name=tag.name,
            manifest=manifest,
            pushed_at=pushed_at,
            trigger=trigger,
            actor=tag.pushed_by,
            chain=chain,
            revision=policy_revision(policy),
        )
        if _settle(record, policy, facts, evaluate_rules=True, current_digest=current):
            if record.outcome != PromotionOutcome.WAITING:
                record.finished_at = timezone.now()
            settled.append(record)
        else:
            promoting.append((record, policy))
    # Most policies of a busy repository do not match: their records go in one statement.
    PromotionRecord.objects.bulk_create(settled, ignore_conflicts=True)
    for record, policy in promoting:
        _save_promoting(record, policy, manifest)
    if any(record.outcome == PromotionOutcome.WAITING for record in settled):
        _resume_if_scan_finished(manifest, tag.repository)
    return list(PromotionRecord.objects.filter(idempotency_key__in=keys.values()))


def _resume_if_scan_finished(manifest: Manifest, repository: Repository) -> None:
    """The scan may have finished between reading its facts and saving the waiting records;
    its announcement then found nothing to resume, so resume here. Deciding is once-only."""
    scan = _scan_facts(manifest, repository)
    if scan is not None and scan.status in ("done", "failed"):
        promotions_resume_waiting(
            manifest_id=manifest.pk,
            scan_failed_reason=(scan.error or "unknown error") if scan.status == "failed" else "",
        )


def promotions_resume_waiting(*, manifest_id: int, scan_failed_reason: str = "") -> int:
    """Decide the attempts that waited for this manifest's scan (or for data it lacked, such
    as vulnerability data); each exactly once. Returns how many were decided.

    Only the current state is promoted: a record whose policy was deleted or disabled, or
    whose source tag was deleted or moved on since, ends as skipped with the reason.
    """
    decided = 0
    manifest = Manifest.objects.filter(pk=manifest_id).first()
    with transaction.atomic():
        records = list(
            PromotionRecord.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(outcome=PromotionOutcome.WAITING, manifest_id=manifest_id)
            .select_related("policy__target__namespace", "source_repository")
            .prefetch_related("policy__rules")
        )
        # The facts as each record's source repository sees the image (its SBOMs differ).
        scans: dict = {}
        for record in records:
            policy = record.policy
            current = _current_digest(record)
            gone = _source_gone(record, current)
            if policy is None or manifest is None:
                record.outcome, record.reason = PromotionOutcome.SKIPPED, "the policy was deleted"
            elif not policy.enabled:
                record.outcome = PromotionOutcome.SKIPPED
                record.reason = "the policy was disabled while the promotion waited"
            elif gone:
                record.outcome, record.reason = PromotionOutcome.SKIPPED, gone
            elif scan_failed_reason:
                record.outcome = PromotionOutcome.FAILED
                record.reason = f"the image's scan failed: {scan_failed_reason}"
            else:
                source = record.source_repository_id
                if source not in scans:
                    scans[source] = _scan_facts(manifest, record.source_repository)
                scan = scans[source]
                facts = _facts_from_scan(
                    scan, tag_name=record.source_tag, pushed_at=record.pushed_at
                )
                if not facts.scan_done:
                    continue  # not this manifest's final report yet
                if not _settle(record, policy, facts, evaluate_rules=True, current_digest=current):
                    _promote(record, policy, manifest)
                if record.outcome == PromotionOutcome.WAITING:
                    record.save(update_fields=["reason", "rule_results"])
                    continue  # still waiting (for vulnerability data)
            record.finished_at = record.finished_at or timezone.now()
            record.save()
            decided += 1
    return decided


def promotions_resume_all_waiting() -> int:
    """Vulnerability data arrived (an OSV import or sync re-matched the reports): decide the
    records that wait, manifest by manifest. Returns how many were decided."""
    manifest_ids = (
        PromotionRecord.objects.filter(outcome=PromotionOutcome.WAITING, manifest__isnull=False)
        .order_by("manifest_id")
        .values_list("manifest_id", flat=True)
        .distinct()
    )
    return sum(
        promotions_resume_waiting(manifest_id=manifest_id) for manifest_id in list(manifest_ids)
    )


def promotion_manual(*, actor, policy: PromotionPolicy, tag: Tag) -> PromotionRecord:
    """Promote one tag now through a policy, whatever its rules: the user decides.

    Needs the same rights as changing the policy (admin on source and target).
    """
    if tag.repository_id != policy.source_id:
        raise ValidationFailed("The tag is not in the policy's source repository.", field="tag")
    _check_may_change(actor, *[r for r in (policy.source, policy.target) if r])
    trigger, chain = _chain_for(tag)
    return _attempt(
        key=f"manual:{uuid.uuid4()}",
        policy=policy,
        repository=tag.repository,
        tag_name=tag.name,
        manifest=tag.manifest,
        pushed_at=tag.pushed_at,
        trigger=Trigger.MANUAL,
        actor=actor,
        chain=chain,
        facts=None,
        evaluate_rules=False,
    )


# --- apply ------------------------------------------------------------------------------------

APPLY_BATCH = 500


@dataclass(frozen=True)
class ApplyHandle:
    """What a queued apply answers: the policy and the revision it applies. The records of
    this apply are the policy's records with this revision and the trigger "apply"."""

    policy_id: int
    revision: str

    @property
    def records_query(self) -> dict[str, str]:
        return {"policy_id": str(self.policy_id), "revision": self.revision, "trigger": "apply"}


def policy_apply_queue(*, actor, policy: PromotionPolicy) -> ApplyHandle:
    """Save & Apply: queue the evaluation of the policy, as it is now, against the tags its
    source has (an outbox job, dispatched after the commit). The one way every surface applies
    a policy.

    Needs admin on the source and the target. A disabled policy is refused.
    """
    policy = PromotionPolicy.objects.prefetch_related("rules").get(pk=policy.pk)
    _check_may_change(actor, *[r for r in (policy.source, policy.target) if r])
    if not policy.enabled:
        raise ValidationFailed(
            "A disabled policy promotes nothing: enable it before applying it.", field="enabled"
        )
    # An outbox job, written in the caller's transaction: a broker that is down at the
    # commit leaves it to the sweeper instead of failing the request.
    job_enqueue(kind=tasks.apply_policy.name, args=[policy.pk, actor.pk])
    return ApplyHandle(policy_id=policy.pk, revision=policy_revision(policy))


def policy_apply(*, actor, policy: PromotionPolicy) -> list[PromotionRecord]:
    """The apply job: evaluate the policy, as it is now, against the tags its source has.

    The idempotency key holds the policy's revision, so the same revision applied twice
    promotes each (tag, digest) once, and a changed policy is evaluated afresh. Batched: a
    fixed number of queries per ``APPLY_BATCH`` tags to read, decide and record them; each
    promotion is then one push into the target (``tag_set``, which chains). A policy
    disabled (or deleted) by the time the job runs applies nothing.
    """
    _check_may_change(actor, *[r for r in (policy.source, policy.target) if r])
    policy = (
        PromotionPolicy.objects.select_related("source__namespace", "target__namespace")
        .prefetch_related("rules")
        .filter(pk=policy.pk, enabled=True)
        .first()
    )
    if policy is None:
        return []
    rules = _rules(policy)
    revision = policy_revision(policy)
    need_scan = any(rule.needs_scan for rule in rules)
    records: list[PromotionRecord] = []
    last_pk = 0
    while True:
        tags = list(
            Tag.objects.filter(repository=policy.source, pk__gt=last_pk)
            .select_related("manifest")
            .defer("manifest__content")
            .order_by("pk")[:APPLY_BATCH]
        )
        if not tags:
            return records
        last_pk = tags[-1].pk
        keys = {
            tag.pk: f"apply:{policy.pk}:{revision}:{tag.pk}:{tag.manifest.digest}" for tag in tags
        }
        done = set(
            PromotionRecord.objects.filter(idempotency_key__in=keys.values()).values_list(
                "idempotency_key", flat=True
            )
        )
        scans = (
            manifests_scan_facts(
                manifest_ids={tag.manifest_id for tag in tags}, repository=policy.source
            )
            if need_scan
            else {}
        )
        settled, promoting = [], []
        for tag in tags:
            if keys[tag.pk] in done:
                continue
            trigger, chain = _chain_for(tag, policy.source)
            record = _new_record(
                key=keys[tag.pk],
                policy=policy,
                repository=policy.source,
                tag_name=tag.name,
                manifest=tag.manifest,
                pushed_at=tag.pushed_at,
                trigger=Trigger.APPLY,
                actor=actor,
                chain=chain,
                revision=revision,
            )
            facts = _facts_from_scan(
                scans.get(tag.manifest_id), tag_name=tag.name, pushed_at=tag.pushed_at
            )
            if _settle(
                record,
                policy,
                facts,
                evaluate_rules=True,
                current_digest=tag.manifest.digest,
                rules=rules,
            ):
                if record.outcome != PromotionOutcome.WAITING:
                    record.finished_at = timezone.now()
                settled.append(record)
            else:
                promoting.append((record, tag.manifest))
        PromotionRecord.objects.bulk_create(settled, ignore_conflicts=True)
        for record, manifest in promoting:
            _save_promoting(record, policy, manifest)
        records += PromotionRecord.objects.filter(idempotency_key__in=keys.values())


# --- dry run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DryRunRow:
    tag: str
    digest: str
    outcome: str  # an engine.Outcome value
    target_tag: str
    reason: str
    record_outcome: str = ""  # what the record would say: promoted, skipped, waiting, failed
    warning: str = ""  # a rendering that repeats, or a target tag that exists


def policy_dry_run(
    *,
    actor,
    source: Repository,
    rules: Iterable,
    tag_template: str = "",
    target: Repository | None = None,
    pass_on_missing_data: bool = False,
    on_move: str = OnMove.OVERWRITE,
    limit: int = 500,
) -> list[DryRunRow]:
    """Which existing tags of ``source`` a policy would promote now, and under which tag, with
    the outcome each record would have. Writes nothing. Needs pull on the source (on every
    surface: it shows the source's tags and scans).

    Renderings that repeat (``%Y%m%d-%H%M%S`` over many tags) and target tags that exist from
    another source tag are flagged: at run time they are made unique (``unique_tag``). The
    ``limit`` most recently pushed tags are considered.
    """
    if not repository_allows(actor, source, Action.PULL):
        raise PermissionDenied("A dry run shows the source's tags: it needs pull on the source.")
    specs = [RuleSpec.from_data(rule) for rule in rules]
    errors = policy_errors(
        name="dry run", source=source, target=target, tag_template=tag_template, rules=specs
    )
    errors.pop("target", None)
    if errors:
        raise ValidationFailed("The policy is not valid.", detail=errors)
    engine_rules = [engine.Rule(field=s.field, operator=s.operator, values=s.values) for s in specs]
    need_scan = any(rule.needs_scan for rule in engine_rules)
    template = TagTemplate(tag_template)
    now = timezone.now()
    tags = list(
        Tag.objects.filter(repository=source)
        .select_related("manifest")
        .defer("manifest__content")
        .order_by("-pushed_at")[:limit]
    )
    scans = (
        manifests_scan_facts(manifest_ids={t.manifest_id for t in tags}, repository=source)
        if need_scan
        else {}
    )
    rows = []
    for tag in tags:
        facts = _facts_from_scan(
            scans.get(tag.manifest_id), tag_name=tag.name, pushed_at=tag.pushed_at
        )
        decision = engine.evaluate(
            engine_rules, facts, now=now, pass_on_missing_data=pass_on_missing_data
        )
        target_tag = ""
        settled = decision_outcome(decision)
        record_outcome, reason = settled or (PromotionOutcome.PROMOTED, decision.summary)
        if settled is None:
            try:
                target_tag = template.render(now=now, tag=tag.name)
            except InvalidTagTemplateError as exc:
                record_outcome, reason = PromotionOutcome.FAILED, f"would fail: {exc}"
        rows.append(
            DryRunRow(
                tag=tag.name,
                digest=tag.manifest.digest,
                outcome=str(decision.outcome),
                target_tag=target_tag,
                reason=reason,
                record_outcome=str(record_outcome),
            )
        )
    return _flag_collisions(rows, source=source, target=target, on_move=on_move)


def _flag_collisions(
    rows: list[DryRunRow], *, source: Repository, target: Repository | None, on_move: str
) -> list[DryRunRow]:
    """Flag the renderings that repeat within this run and the target tags that exist."""
    rendered = Counter(row.target_tag for row in rows if row.target_tag)
    existing = {}
    if target is not None and rendered:
        existing = {
            tag.name: tag
            for tag in Tag.objects.filter(repository=target, name__in=list(rendered))
            .select_related("manifest")
            .defer("manifest__content")
        }
    flagged = []
    for row in rows:
        warning, outcome = "", row.record_outcome
        if row.target_tag and rendered[row.target_tag] > 1:
            warning = (
                f"{rendered[row.target_tag]} tags render {row.target_tag}: at run time all but "
                f"the first get a unique tag ({unique_tag(row.target_tag, row.digest)})"
            )
        current = existing.get(row.target_tag)
        if current is not None and current.manifest.digest != row.digest:
            written_from = _written_from(current)
            if written_from in (None, (source.full_name, row.tag)):
                if on_move == OnMove.KEEP:
                    outcome = PromotionOutcome.SKIPPED
                    warning = f"{row.target_tag} exists in the target: the policy keeps it"
                else:
                    warning = warning or (
                        f"moves {row.target_tag} from {current.manifest.digest} in the target"
                    )
            else:
                warning = (
                    f"{row.target_tag} exists in the target, from {written_from[0]}:"
                    f"{written_from[1]}: it would be made unique "
                    f"({unique_tag(row.target_tag, row.digest)})"
                )
        flagged.append(replace(row, warning=warning, record_outcome=str(outcome)))
    return flagged


# --- two policies, one target tag -------------------------------------------------------------


def _may_write_same_tag(first: PromotionPolicy, second: PromotionPolicy) -> bool:
    """Whether two policies into one target can render the same tag for different images:
    the same template (keeping the tag is %n) from two sources, or neither naming the source
    tag (then any two promotions in the same second, or the same day for %Y%m%d, render the
    same)."""
    one = first.tag_template or "%n"
    other = second.tag_template or "%n"
    if first.source_id == second.source_id and "%n" in one and "%n" in other:
        return False  # the same source tag renders the same image: a move at most
    return one == other or ("%n" not in one and "%n" not in other)


def policy_target_warnings(*, policies: Iterable[PromotionPolicy]) -> dict[int, list[str]]:
    """policy id -> warnings that another enabled policy may write the same target tag (the
    later writer's promotion is then made unique). One query however many policies."""
    policies = [p for p in policies if p.target_id is not None]
    others = list(
        PromotionPolicy.objects.filter(
            enabled=True, target_id__in={p.target_id for p in policies}
        ).select_related("source__namespace", "target__namespace")
    )
    warnings: dict[int, list[str]] = {}
    for policy in policies:
        for other in others:
            if other.pk == policy.pk or other.target_id != policy.target_id:
                continue
            if not _may_write_same_tag(policy, other):
                continue
            warnings.setdefault(policy.pk, []).append(
                f"The policy “{other.name}” (from {other.source.full_name}) also writes to "
                f"{other.target.full_name} "
                + (
                    f"with the template {other.tag_template}"
                    if other.tag_template
                    else "keeping the tag"
                )
                + ": both can write the same target tag. A promotion never overwrites a tag "
                "that came from another source tag: the later one gets a unique tag."
            )
    return warnings
