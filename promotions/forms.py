"""Forms of the promotion policy pages: the policy, its rule rows, and the choices they offer.

The forms only shape the input: choices, and rule values split into a list. The rules
themselves are validated by ``services.policy_errors`` (through ``policy_create``,
``policy_update`` and ``policy_dry_run``), whose messages the views put next to the
fields, so the browser, the admin and the API refuse the same policies with the same words.
"""

from django import forms
from django.db.models import Exists, OuterRef

from registry_portal.accounts.choices import Action
from registry_portal.accounts.models import Organization
from registry_portal.registry.models import Repository

from .choices import (
    COMPONENT_NAME_HELP,
    FIELD_OPERATORS,
    MULTI_VALUE_OPERATORS,
    VULNERABILITY_FIELDS,
    OnMove,
    RuleField,
    RuleOperator,
    operator_label,
)
from .models import MISSING_DATA_HELP, ON_MOVE_HELP

KEEP_TAG, TEMPLATE_TAG = "keep", "template"


def rule_values(operator: str, text: str) -> list[str]:
    """The values of a rule row: comma-separated for one-of operators, else the one value."""
    if operator in MULTI_VALUE_OPERATORS:
        return [value.strip() for value in text.split(",") if value.strip()]
    return [text.strip()] if text.strip() else []


class OperatorSelect(forms.Select):
    """Each option says which fields it fits, so the page's script can filter them."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        fields = [str(f) for f, operators in FIELD_OPERATORS.items() if value in operators]
        option["attrs"]["data-fields"] = " ".join(fields)
        if value == RuleOperator.EQUALS:
            option["attrs"]["data-count-label"] = operator_label(VULNERABILITY_FIELDS[0], value)
        return option


class FieldSelect(forms.Select):
    """Each option says what its values are: text, a count, or a time."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if value in VULNERABILITY_FIELDS:
            option["attrs"]["data-kind"] = "count"
        elif value == RuleField.LAST_UPDATED:
            option["attrs"]["data-kind"] = "time"
        else:
            option["attrs"]["data-kind"] = "text"
        return option


class RuleForm(forms.Form):
    """One rule row: field, operator, values."""

    field = forms.ChoiceField(label="Field", choices=RuleField.choices, widget=FieldSelect)
    operator = forms.ChoiceField(
        label="Operator",
        choices=[(op.value, op.label) for op in RuleOperator],
        widget=OperatorSelect,
    )
    values = forms.CharField(
        label="Value",
        required=False,
        max_length=4000,
        help_text="Several values (one of, not one of): separate them with commas. "
        + COMPONENT_NAME_HELP,
    )

    def rule(self) -> dict:
        """The rule as the services take it."""
        data = self.cleaned_data
        return {
            "field": data["field"],
            "operator": data["operator"],
            "values": rule_values(data["operator"], data["values"]),
        }


RuleFormSet = forms.formset_factory(RuleForm, extra=0, can_delete=True, max_num=50)


class TargetRepositorySelect(forms.Select):
    """Each repository option carries its organization, for the page's script to filter."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if getattr(value, "instance", None) is not None:
            option["attrs"]["data-org"] = str(value.instance.namespace_id)
        return option


class TargetChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.full_name


class PolicyForm(forms.Form):
    """A promotion policy but its rules: name, target, tag template, enabled."""

    name = forms.CharField(label="Name", max_length=100)
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    target_organization = forms.ModelChoiceField(
        label="Target organization",
        queryset=Organization.objects.none(),
        empty_label="Choose an organization…",
    )
    target = TargetChoiceField(
        label="Target repository",
        queryset=Repository.objects.none(),
        empty_label="Choose a repository…",
        widget=TargetRepositorySelect,
        help_text="Only repositories you administer are offered.",
    )
    tag_mode = forms.ChoiceField(
        label="Tag in the target",
        choices=[(KEEP_TAG, "Keep the source tag"), (TEMPLATE_TAG, "Use a tag template")],
        widget=forms.RadioSelect,
        initial=KEEP_TAG,
    )
    tag_template = forms.CharField(
        label="Tag template",
        required=False,
        max_length=200,
        help_text="For example %Y%m%d-%H%M%S, or %n-qa (%n is the source tag). "
        "Times are the promotion's, in UTC.",
    )
    enabled = forms.BooleanField(label="Enabled", required=False, initial=True)
    pass_on_missing_data = forms.BooleanField(
        label="Pass rules whose data is missing", required=False, help_text=MISSING_DATA_HELP
    )
    on_move = forms.ChoiceField(
        label="When the target tag came from the same source tag",
        choices=OnMove.choices,
        initial=OnMove.OVERWRITE,
        required=False,  # not given: the default, overwrite
        widget=forms.RadioSelect,
        help_text=ON_MOVE_HELP,
    )

    def __init__(self, *args, user, source: Repository, **kwargs):
        super().__init__(*args, **kwargs)
        targets = (
            Repository.objects.restrict(user, Action.ADMIN)
            .exclude(pk=source.pk)
            .select_related("namespace")
            .order_by("namespace__name", "name")
        )
        self.fields["target"].queryset = targets
        self.fields["target_organization"].queryset = Organization.objects.filter(
            Exists(targets.filter(namespace=OuterRef("pk")))
        )

    def clean(self):
        cleaned = super().clean()
        organization, target = cleaned.get("target_organization"), cleaned.get("target")
        if organization and target and target.namespace_id != organization.pk:
            self.add_error("target", f"{target.full_name} is not in {organization.name}.")
        cleaned["on_move"] = cleaned.get("on_move") or OnMove.OVERWRITE
        if cleaned.get("tag_mode") == KEEP_TAG:
            cleaned["tag_template"] = ""
        elif cleaned.get("tag_mode") == TEMPLATE_TAG and not cleaned.get("tag_template"):
            self.add_error("tag_template", "Give a template, or choose to keep the source tag.")
        return cleaned


class PolicyChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.name


class PromoteForm(forms.Form):
    """Promote one tag now: which of the source repository's policies to run."""

    policy = PolicyChoiceField(
        label="Policy",
        queryset=None,
        empty_label=None,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Choose one of this repository's policies."},
    )

    def __init__(self, *args, policies, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["policy"].queryset = policies
