"""Promotion policies, their rules, and the record of every promotion attempt."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse

from registry_portal.accounts.choices import Action
from registry_portal.accounts.permissions import RestrictedQuerySet, repository_q

from .choices import FIELD_OPERATORS, OnMove, PromotionOutcome, RuleField, RuleOperator, Trigger


class PromotionPolicyQuerySet(RestrictedQuerySet):
    """A policy is seen from its source or its target; changing it needs admin on both (the
    target may be gone), deleting it admin on either (``services._check_may_change``,
    ``services.policy_delete``)."""

    repository_paths = ("source", "target")

    def restrict_q(self, user, action: str) -> Q:
        if action == Action.ADMIN:
            return repository_q(user, action, path="source") & (
                Q(target__isnull=True) | repository_q(user, action, path="target")
            )
        return super().restrict_q(user, action)


class PromotionRecordQuerySet(RestrictedQuerySet):
    """A record is seen from its source or its target repository."""

    repository_paths = ("source_repository", "target_repository")


MISSING_DATA_HELP = (
    "Off (the default): a rule whose data is missing never passes. Without a vulnerability "
    "snapshot, with licenses not recognised, with layers skipped or unreadable, or with the "
    "OS not identified, the promotion waits (for vulnerability data) or fails, and its record "
    "says what is missing. On: such rules are decided on the data the scan has, and the "
    "record says so."
)
ON_MOVE_HELP = (
    "When the target tag was last promoted from the same source tag (a keep-the-tag policy, "
    "or latest moving on): move it to the new image (recorded with the previous digest), or "
    "keep it. A target tag last promoted from another source tag is never overwritten: the "
    "promotion gets a unique tag, <tag>-<first 8 hex digits of the digest>, and its record "
    "says so."
)


class PromotionPolicy(models.Model):
    """When a pushed tag of ``source`` meets every rule, promote the image to ``target``."""

    name = models.CharField("name", max_length=100)
    description = models.TextField("description", blank=True)
    source = models.ForeignKey(
        "registry.Repository",
        on_delete=models.CASCADE,
        related_name="promotion_policies",
        verbose_name="source repository",
    )
    target = models.ForeignKey(
        "registry.Repository",
        on_delete=models.SET_NULL,
        null=True,
        related_name="incoming_promotion_policies",
        verbose_name="target repository",
        help_text="Empty when the target repository was deleted: promotions then fail.",
    )
    enabled = models.BooleanField("enabled", default=True)
    tag_template = models.CharField(
        "tag template",
        max_length=200,
        blank=True,
        help_text="Empty keeps the source tag. Placeholders: %n (the tag), %Y %m %d %H %M %S "
        "(the promotion's time, UTC)…",
    )
    pass_on_missing_data = models.BooleanField(
        "pass on missing data",
        default=False,
        help_text=MISSING_DATA_HELP,
    )
    on_move = models.CharField(
        "when the target tag came from the same source tag",
        max_length=16,
        choices=OnMove.choices,
        default=OnMove.OVERWRITE,
        help_text=ON_MOVE_HELP,
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField("created", auto_now_add=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField("changed", auto_now=True)

    objects = PromotionPolicyQuerySet.as_manager()

    class Meta:
        ordering = ("source", "name")
        verbose_name_plural = "promotion policies"
        constraints = [
            models.CheckConstraint(
                condition=~Q(source=models.F("target")),
                name="policy_target_differs_from_source",
                violation_error_message="The target must be another repository.",
            ),
            models.UniqueConstraint(
                fields=("source", "name"),
                name="policy_unique_name_per_source",
                violation_error_message="This repository already has a policy with this name.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.source} → {self.target or 'deleted repository'})"

    def get_absolute_url(self) -> str:
        """The policy on its source's Promotions tab ("View on site" in the admin)."""
        source = self.source
        url = reverse(
            "promotions:policies", kwargs={"namespace": source.namespace.name, "name": source.name}
        )
        return f"{url}#policy-{self.pk}"


class PolicyRule(models.Model):
    """One criterion of a policy; every rule of a policy must match."""

    policy = models.ForeignKey(PromotionPolicy, on_delete=models.CASCADE, related_name="rules")
    field = models.CharField("field", max_length=32, choices=RuleField.choices)
    operator = models.CharField("operator", max_length=16, choices=RuleOperator.choices)
    values = models.JSONField("values", default=list)
    position = models.PositiveSmallIntegerField("position", default=0)

    class Meta:
        ordering = ("policy", "position", "id")
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    *[
                        Q(field=field, operator__in=[str(op) for op in operators])
                        for field, operators in FIELD_OPERATORS.items()
                    ],
                    _connector=Q.OR,
                ),
                name="rule_operator_fits_field",
                violation_error_message="This operator does not apply to this field.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_field_display()} {self.get_operator_display()} {', '.join(self.values)}"


class PromotionRecord(models.Model):
    """One promotion attempt and its outcome: the audit trail, and what makes jobs idempotent.

    Names are copied, so a record still reads right after a policy or repository is deleted.
    """

    idempotency_key = models.CharField("key", max_length=255, unique=True, editable=False)
    policy = models.ForeignKey(
        PromotionPolicy, on_delete=models.SET_NULL, null=True, related_name="records"
    )
    policy_name = models.CharField("policy", max_length=100)
    source_repository = models.ForeignKey(
        "registry.Repository", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    source_repository_name = models.CharField("source repository", max_length=255)
    source_tag = models.CharField("source tag", max_length=128)
    digest = models.CharField("digest", max_length=140, db_index=True)
    manifest = models.ForeignKey(
        "registry.Manifest", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    target_repository = models.ForeignKey(
        "registry.Repository", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    target_repository_name = models.CharField("target repository", max_length=255, blank=True)
    target_tag = models.CharField("target tag", max_length=128, blank=True)
    previous_digest = models.CharField(
        "previous digest",
        max_length=140,
        blank=True,
        help_text="What the target tag held before this promotion moved it.",
    )
    revision = models.CharField(
        "policy revision",
        max_length=16,
        blank=True,
        db_index=True,
        help_text="The policy's rules, target and template as evaluated (a hash).",
    )
    trigger = models.CharField("trigger", max_length=16, choices=Trigger.choices)
    outcome = models.CharField(
        "outcome", max_length=16, choices=PromotionOutcome.choices, db_index=True
    )
    reason = models.TextField("reason", blank=True)
    rule_results = models.JSONField("rule results", default=list, blank=True)
    chain = models.JSONField(
        "chain",
        default=list,
        blank=True,
        help_text="The repositories the image came through, first to last.",
    )
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    pushed_at = models.DateTimeField("pushed")
    created_at = models.DateTimeField("created", auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField("finished", null=True, blank=True)

    objects = PromotionRecordQuerySet.as_manager()

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=("policy", "-created_at"), name="record_policy_created_idx"),
            models.Index(fields=("outcome", "manifest"), name="record_outcome_manifest_idx"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.source_repository_name}:{self.source_tag} → "
            f"{self.target_repository_name}:{self.target_tag or '?'} ({self.outcome})"
        )
