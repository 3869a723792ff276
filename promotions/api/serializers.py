"""Serializers of the promotions API.

They check shapes only (types, known fields and operators). What makes a policy valid (an
operator that fits its field, a numeric count, a safe regex, a tag template that renders a
valid tag) is decided by ``promotions.services``, whose field errors (``rules.0``...) the API
answers as they are.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from promotions.choices import (
    COMPONENT_NAME_HELP,
    OnMove,
    PromotionOutcome,
    RuleField,
    RuleOperator,
)
from promotions.engine import MAX_VALUE_LENGTH, MAX_VALUES, Outcome
from promotions.models import (
    MISSING_DATA_HELP,
    ON_MOVE_HELP,
    PolicyRule,
    PromotionPolicy,
    PromotionRecord,
)
from registry_portal.accounts.choices import Action
from registry_portal.grammar import is_valid_repository_name
from registry_portal.registry.filtersets import repository_full_name_q
from registry_portal.registry.models import Repository
from registry_portal.registry.validators import validate_tag

MAX_RULES = 50


@extend_schema_field(OpenApiTypes.STR)
class RepositoryNameField(serializers.Field):
    """A repository the caller may see, by its full name ``namespace/name``."""

    default_error_messages = {
        "unknown": "No repository '{name}' that you can see.",
        "invalid": "Give a repository as 'namespace/name'.",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str) or "/" not in data or not is_valid_repository_name(data):
            self.fail("invalid")
        user = self.context["request"].user
        repository = (
            Repository.objects.restrict(user, Action.PULL)
            .select_related("namespace")
            .filter(repository_full_name_q("", data))
            .first()
        )
        if repository is None:
            self.fail("unknown", name=data[:255])
        return repository

    def to_representation(self, repository):
        return repository.full_name


class RuleSerializer(serializers.ModelSerializer):
    field = serializers.ChoiceField(choices=RuleField.choices)
    operator = serializers.ChoiceField(
        choices=RuleOperator.choices,
        help_text="Which operators fit which field: see the promotion policy reference.",
    )
    values = serializers.ListField(
        child=serializers.CharField(allow_blank=True, max_length=MAX_VALUE_LENGTH),
        max_length=MAX_VALUES,
        help_text="One value, or several for 'oo' and 'noo'. Counts are numbers; "
        "'last updated' takes a date or a duration such as 7d. " + COMPONENT_NAME_HELP,
    )

    class Meta:
        model = PolicyRule
        fields = ("field", "operator", "values")


class PolicySerializer(serializers.ModelSerializer):
    source = RepositoryNameField(read_only=True)
    target = RepositoryNameField(read_only=True, allow_null=True)
    rules = RuleSerializer(many=True, read_only=True)
    created_by = serializers.CharField(
        source="created_by.username", read_only=True, allow_null=True, default=None
    )
    updated_by = serializers.CharField(
        source="updated_by.username", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = PromotionPolicy
        fields = (
            "id",
            "name",
            "description",
            "source_id",
            "source",
            "target_id",
            "target",
            "enabled",
            "tag_template",
            "pass_on_missing_data",
            "on_move",
            "rules",
            "created_by",
            "created_at",
            "updated_by",
            "updated_at",
        )
        read_only_fields = fields


class PolicySavedSerializer(PolicySerializer):
    loop = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="When this policy closes a loop of enabled policies, the repositories of "
        "the loop (first = last). Allowed: a promotion never re-enters a repository of its "
        "chain; shown so that it is seen. Empty otherwise.",
    )
    warnings = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="Warnings, not errors: another enabled policy may write the same target "
        "tag (the later promotion then gets a unique tag).",
    )

    class Meta(PolicySerializer.Meta):
        fields = (*PolicySerializer.Meta.fields, "loop", "warnings")
        read_only_fields = fields


class PolicyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, allow_blank=True)
    description = serializers.CharField(allow_blank=True, required=False, default="")
    source = RepositoryNameField(help_text="The repository whose pushes are evaluated.")
    target = RepositoryNameField(help_text="The repository images are promoted to.")
    enabled = serializers.BooleanField(required=False, default=True)
    tag_template = serializers.CharField(
        max_length=200,
        allow_blank=True,
        required=False,
        default="",
        help_text="Empty keeps the source tag; placeholders such as %n (the tag) and "
        "%Y%m%d-%H%M%S (the promotion's time, UTC).",
    )
    rules = RuleSerializer(
        many=True, required=False, default=list, max_length=MAX_RULES, help_text="All must match."
    )
    pass_on_missing_data = serializers.BooleanField(
        required=False, default=False, help_text=MISSING_DATA_HELP
    )
    on_move = serializers.ChoiceField(
        choices=OnMove.choices, required=False, default=OnMove.OVERWRITE, help_text=ON_MOVE_HELP
    )


class PolicyUpdateSerializer(PolicyCreateSerializer):
    """Everything but the source, which a policy keeps for life."""

    source = None


class DryRunSerializer(serializers.Serializer):
    source = RepositoryNameField(help_text="The repository whose tags are evaluated.")
    target = RepositoryNameField(
        required=False,
        default=None,
        help_text="Optional: the target, to flag target tags that exist already.",
    )
    tag_template = serializers.CharField(
        max_length=200, allow_blank=True, required=False, default=""
    )
    rules = RuleSerializer(many=True, required=False, default=list, max_length=MAX_RULES)
    pass_on_missing_data = serializers.BooleanField(
        required=False, default=False, help_text=MISSING_DATA_HELP
    )
    on_move = serializers.ChoiceField(
        choices=OnMove.choices, required=False, default=OnMove.OVERWRITE, help_text=ON_MOVE_HELP
    )


class DryRunRowSerializer(serializers.Serializer):
    tag = serializers.CharField()
    digest = serializers.CharField()
    outcome = serializers.ChoiceField(
        choices=[outcome.value for outcome in Outcome],
        help_text="The engine's decision. match: would be promoted, as target_tag; "
        "missing_data: a rule's data is missing (see reason).",
    )
    record_outcome = serializers.CharField(
        help_text="What the promotion record would say, as a real run: "
        + ", ".join(PromotionOutcome.values)
        + "."
    )
    target_tag = serializers.CharField(help_text="Empty unless the tag would be promoted.")
    reason = serializers.CharField()
    warning = serializers.CharField(
        help_text="A target tag this run renders more than once, or that exists already from "
        "another source tag (made unique at run time), or a move. Empty otherwise."
    )


class ApplyHandleSerializer(serializers.Serializer):
    policy_id = serializers.IntegerField()
    revision = serializers.CharField(help_text="The policy revision being applied.")
    records = serializers.URLField(help_text="The records of this apply, as they are written.")


class PromoteSerializer(serializers.Serializer):
    tag = serializers.CharField(
        max_length=128,
        validators=[validate_tag],
        help_text="A tag of the policy's source repository, promoted now.",
    )


class RuleResultSerializer(serializers.Serializer):
    rule = serializers.CharField(help_text="The rule, in words.")
    matched = serializers.BooleanField(
        allow_null=True,
        help_text="Null: not decided: it waits for the scan, or the data it needs is missing "
        "(the reason says which).",
    )
    reason = serializers.CharField()


class PromotionRecordSerializer(serializers.ModelSerializer):
    policy = serializers.CharField(source="policy_name", read_only=True)
    source_repository = serializers.CharField(source="source_repository_name", read_only=True)
    target_repository = serializers.CharField(source="target_repository_name", read_only=True)
    triggered_by = serializers.CharField(
        source="triggered_by.username", read_only=True, allow_null=True, default=None
    )
    rule_results = RuleResultSerializer(many=True, read_only=True)
    chain = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = PromotionRecord
        fields = (
            "id",
            "policy_id",
            "policy",
            "source_repository_id",
            "source_repository",
            "source_tag",
            "digest",
            "target_repository_id",
            "target_repository",
            "target_tag",
            "previous_digest",
            "revision",
            "trigger",
            "outcome",
            "reason",
            "rule_results",
            "chain",
            "triggered_by",
            "pushed_at",
            "created_at",
            "finished_at",
        )
        read_only_fields = fields
