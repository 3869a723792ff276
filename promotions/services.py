"""Every write of the promotions app: policies, and the promotion attempts they lead to.

The decision itself is the pure ``promotions.engine``; here we gather the facts it needs,
record every attempt in a ``PromotionRecord`` and move tags with the registry's ``tag_set``,
as the system, with the record as provenance. Promoting copies no bytes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from registry_portal.accounts.choices import Action
from registry_portal.accounts.permissions import repository_allows
from registry_portal.errors import PermissionDenied, TagImmutable, ValidationFailed
from registry_portal.registry.models import Manifest, Repository, Tag
from registry_portal.registry.services import manifest_link, tag_set

from . import engine
from .choices import PromotionOutcome, Trigger, field_needs_scan
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
        created_by=actor,
        updated_by=actor,
    )
    _save_rules(policy, specs)
    return policy


_UNSET = object()


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


def _scan_facts(manifest: Manifest):
    """The scanner's facts for a manifest, or None while its scan is not finished."""
    from scanning.selectors import manifest_scan_facts

    return manifest_scan_facts(manifest=manifest)


def image_facts(*, manifest: Manifest, tag_name: str, pushed_at: datetime, need_scan: bool):
    """The engine's input for one pushed tag. Scan facts are read only when a rule needs them."""
    scan = _scan_facts(manifest) if need_scan else None
    if scan is None or scan.status != "done":
        return engine.ImageFacts(tag=tag_name, pushed_at=pushed_at, scan_done=False)
    return engine.ImageFacts(
        tag=tag_name,
        pushed_at=pushed_at,
        scan_done=True,
        component_names=frozenset(scan.component_names),
        licenses=frozenset(scan.licenses),
        vulnerability_counts=dict(scan.vulnerability_counts),
    )


def _rules(policy: PromotionPolicy) -> list[engine.Rule]:
    return [
        engine.Rule(field=r.field, operator=r.operator, values=tuple(r.values))
        for r in policy.rules.all()
    ]


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


def _promote(record: PromotionRecord, policy: PromotionPolicy, manifest: Manifest) -> None:
    """Render the target tag and set it, as the system. Sets the record's outcome."""
    now = timezone.now()
    record.finished_at = now
    try:
        target_tag = TagTemplate(policy.tag_template).render(now=now, tag=record.source_tag)
    except InvalidTagTemplateError as exc:
        record.outcome, record.reason = PromotionOutcome.FAILED, f"invalid target tag: {exc}"
        return
    record.target_tag = target_tag
    try:
        tag_set(
            repository=policy.target,
            name=target_tag,
            manifest=manifest,
            actor=None,
            provenance=_provenance(record, record.chain),
            source=policy.source,
        )
    except TagImmutable as exc:
        record.outcome, record.reason = PromotionOutcome.FAILED, exc.message
        return
    except ValidationFailed as exc:
        record.outcome, record.reason = PromotionOutcome.FAILED, exc.message
        return
    # Referrers follow the image: signatures and SBOMs of this manifest in the source.
    for referrer in Manifest.objects.filter(
        subject_digest=manifest.digest, repository_links__repository=record.source_repository
    ):
        manifest_link(repository=policy.target, manifest=referrer, source=policy.source)
    record.outcome = PromotionOutcome.PROMOTED
    record.reason = f"promoted to {policy.target.full_name}:{target_tag}"


def _settle(
    record: PromotionRecord,
    policy: PromotionPolicy,
    facts: engine.ImageFacts | None,
    *,
    evaluate_rules: bool,
    current_digest: str | None,
) -> bool:
    """Decide every outcome that needs no promotion; False when the image is to be promoted.

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
    if current_digest is not None and current_digest != record.digest:
        record.outcome = PromotionOutcome.SKIPPED
        record.reason = "superseded: the tag was pushed again, to another image, since"
        return True
    if evaluate_rules:
        decision = engine.evaluate(_rules(policy), facts, now=timezone.now())
        record.rule_results = [
            {"rule": str(result.rule), "matched": result.matched, "reason": result.reason}
            for result in decision.results
        ]
        if decision.outcome == engine.Outcome.NEEDS_SCAN:
            record.outcome, record.reason = PromotionOutcome.WAITING, decision.summary
            return True
        if decision.outcome == engine.Outcome.NO_MATCH:
            record.outcome, record.reason = PromotionOutcome.SKIPPED, decision.summary
            return True
    return False


def _new_record(
    *, key, policy, repository, tag_name, manifest, pushed_at, trigger, actor, chain
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
    )
    if _settle(record, policy, facts, evaluate_rules=evaluate_rules, current_digest=current_digest):
        record.finished_at = timezone.now() if record.outcome != "waiting" else None
        PromotionRecord.objects.bulk_create([record], ignore_conflicts=True)
        return PromotionRecord.objects.get(idempotency_key=key)
    return _save_promoting(record, policy, manifest)


def _chain_for(tag: Tag) -> tuple[str, list[str]]:
    """The trigger and the chain of a pushed tag: a promoted tag continues its chain."""
    if tag.provenance and tag.provenance.get("chain") is not None:
        return Trigger.CHAIN, [*tag.provenance["chain"], tag.repository.full_name]
    return Trigger.PUSH, [tag.repository.full_name]


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
        manifest=manifest, tag_name=tag.name, pushed_at=pushed_at, need_scan=need_scan
    )
    # The tag was just read: if it points elsewhere now, this push was superseded.
    current = manifest.digest if tag.manifest_id == manifest.pk else ""
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
        _resume_if_scan_finished(manifest)
    return list(PromotionRecord.objects.filter(idempotency_key__in=keys.values()))


def _resume_if_scan_finished(manifest: Manifest) -> None:
    """The scan may have finished between reading its facts and saving the waiting records;
    its announcement then found nothing to resume, so resume here. Deciding is once-only."""
    scan = _scan_facts(manifest)
    if scan is not None and scan.status in ("done", "failed"):
        promotions_resume_waiting(
            manifest_id=manifest.pk,
            scan_failed_reason=(scan.error or "unknown error") if scan.status == "failed" else "",
        )


def promotions_resume_waiting(*, manifest_id: int, scan_failed_reason: str = "") -> int:
    """Decide the attempts that waited for this manifest's scan; each exactly once.

    Returns how many were decided.
    """
    decided = 0
    manifest = Manifest.objects.filter(pk=manifest_id).first()
    with transaction.atomic():
        records = list(
            PromotionRecord.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(outcome=PromotionOutcome.WAITING, manifest_id=manifest_id)
            .select_related("policy__target__namespace", "source_repository")
        )
        for record in records:
            policy = record.policy
            if policy is None or manifest is None:
                record.outcome, record.reason = PromotionOutcome.FAILED, "the policy was deleted"
            elif scan_failed_reason:
                record.outcome = PromotionOutcome.FAILED
                record.reason = f"the image's scan failed: {scan_failed_reason}"
            else:
                facts = image_facts(
                    manifest=manifest,
                    tag_name=record.source_tag,
                    pushed_at=record.pushed_at,
                    need_scan=True,
                )
                if not facts.scan_done:
                    continue  # not this manifest's final report yet
                current = (
                    Tag.objects.filter(repository=record.source_repository, name=record.source_tag)
                    .values_list("manifest__digest", flat=True)
                    .first()
                )
                if not _settle(record, policy, facts, evaluate_rules=True, current_digest=current):
                    _promote(record, policy, manifest)
            record.finished_at = record.finished_at or timezone.now()
            record.save()
            decided += 1
    return decided


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


def policy_apply(*, actor, policy: PromotionPolicy) -> list[PromotionRecord]:
    """Save & Apply: evaluate the policy against the tags the source has now.

    Applying twice promotes each (tag, digest) once.
    """
    _check_may_change(actor, *[r for r in (policy.source, policy.target) if r])
    policy = (
        PromotionPolicy.objects.select_related("source__namespace", "target__namespace")
        .prefetch_related("rules")
        .get(pk=policy.pk)
    )
    need_scan = any(field_needs_scan(r.field) for r in policy.rules.all())
    records = []
    for tag in Tag.objects.filter(repository=policy.source).select_related("manifest"):
        trigger, chain = _chain_for(tag)
        records.append(
            _attempt(
                key=f"apply:{policy.pk}:{tag.pk}:{tag.manifest.digest}",
                policy=policy,
                repository=policy.source,
                tag_name=tag.name,
                manifest=tag.manifest,
                pushed_at=tag.pushed_at,
                trigger=Trigger.APPLY,
                actor=actor,
                chain=chain,
                facts=image_facts(
                    manifest=tag.manifest,
                    tag_name=tag.name,
                    pushed_at=tag.pushed_at,
                    need_scan=need_scan,
                ),
            )
        )
    return records


# --- dry run ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DryRunRow:
    tag: str
    digest: str
    outcome: str  # an engine.Outcome value
    target_tag: str
    reason: str


def policy_dry_run(
    *,
    source: Repository,
    rules: Iterable,
    tag_template: str = "",
    limit: int = 500,
) -> list[DryRunRow]:
    """Which existing tags of ``source`` a policy would promote now, and under which tag.

    Writes nothing. The ``limit`` most recently pushed tags are considered.
    """
    specs = [RuleSpec.from_data(rule) for rule in rules]
    errors = policy_errors(
        name="dry run", source=source, target=None, tag_template=tag_template, rules=specs
    )
    errors.pop("target", None)
    if errors:
        raise ValidationFailed("The policy is not valid.", detail=errors)
    engine_rules = [engine.Rule(field=s.field, operator=s.operator, values=s.values) for s in specs]
    need_scan = any(rule.needs_scan for rule in engine_rules)
    template = TagTemplate(tag_template)
    now = timezone.now()
    rows = []
    tags = Tag.objects.filter(repository=source).select_related("manifest").order_by("-pushed_at")
    for tag in tags[:limit]:
        facts = image_facts(
            manifest=tag.manifest, tag_name=tag.name, pushed_at=tag.pushed_at, need_scan=need_scan
        )
        decision = engine.evaluate(engine_rules, facts, now=now)
        target_tag = ""
        reason = decision.summary
        if decision.outcome == engine.Outcome.MATCH:
            try:
                target_tag = template.render(now=now, tag=tag.name)
            except InvalidTagTemplateError as exc:
                reason = f"would fail: {exc}"
        rows.append(
            DryRunRow(
                tag=tag.name,
                digest=tag.manifest.digest,
                outcome=str(decision.outcome),
                target_tag=target_tag,
                reason=reason,
            )
        )
    return rows
