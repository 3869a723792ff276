"""Admin for promotion policies (with their rules inline) and the read-only promotion records.

The same validation and permission rules as the services: a policy is saved through
``services.policy_create``/``policy_update``, so errors show next to their fields.
"""

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html

from registry_portal.accounts.choices import Action
from registry_portal.admin_base import RestrictedAdminMixin, RestrictedReadOnlyAdmin, TabularInline
from registry_portal.errors import PermissionDenied, ValidationFailed

from . import services
from .choices import COMPONENT_NAME_HELP, OnMove
from .engine import validate_rule
from .models import PolicyRule, PromotionPolicy, PromotionRecord


class PolicyRuleForm(forms.ModelForm):
    values = forms.CharField(
        label="values",
        help_text="One value, or several separated by commas (for 'one of' / 'not one of'). "
        + COMPONENT_NAME_HELP,
    )

    class Meta:
        model = PolicyRule
        fields = ("field", "operator", "values")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["values"] = ", ".join(self.instance.values)

    def clean_values(self):
        return [value.strip() for value in self.cleaned_data["values"].split(",") if value.strip()]

    def clean(self):
        data = super().clean()
        if data.get("field") and data.get("operator") and "values" in data:
            errors = validate_rule(data["field"], data["operator"], data["values"])
            if errors:
                raise forms.ValidationError(errors)
        return data


class PolicyRuleInline(TabularInline):
    model = PolicyRule
    form = PolicyRuleForm
    extra = 1
    fields = ("field", "operator", "values")


class PolicyForm(forms.ModelForm):
    class Meta:
        model = PromotionPolicy
        fields = (
            "name",
            "description",
            "source",
            "target",
            "enabled",
            "tag_template",
            "on_move",
            "pass_on_missing_data",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "on_move" in self.fields:
            self.fields["on_move"].required = False  # not given: the default, overwrite

    def clean(self):
        data = super().clean()
        data["on_move"] = data.get("on_move") or OnMove.OVERWRITE
        source = data.get("source") or getattr(self.instance, "source", None)
        errors = services.policy_errors(
            name=data.get("name", ""),
            source=source,
            target=data.get("target"),
            tag_template=data.get("tag_template", ""),
            rules=[],
        )
        for field, messages_ in errors.items():
            if field in self.fields:
                self.add_error(field, messages_)
        return data


@admin.register(PromotionPolicy)
class PromotionPolicyAdmin(RestrictedAdminMixin, admin.ModelAdmin):
    """Seen from the source or the target; changed with admin on both, deleted with admin on
    either (``PromotionPolicy.objects.restrict``); source and target offered where the user
    is an admin."""

    delete_action = Action.DELETE
    form = PolicyForm
    inlines = (PolicyRuleInline,)
    list_display = (
        "name",
        "source",
        "target",
        "enabled",
        "tag_template",
        "pass_on_missing_data",
        "updated_at",
    )
    list_filter = ("enabled", "source__namespace", "target__namespace")
    search_fields = ("name", "source__name", "target__name", "description")
    list_select_related = ("source__namespace", "target__namespace")
    readonly_fields = ("created_by", "created_at", "updated_by", "updated_at")
    actions = ("enable", "disable", "apply")

    def get_readonly_fields(self, request, obj=None):
        # A policy belongs to its source repository; create another to promote from elsewhere.
        return ("source", *self.readonly_fields) if obj else self.readonly_fields

    def has_add_permission(self, request):
        return self.has_module_permission(request)

    def _rules_from(self, formsets) -> list[dict]:
        rules = []
        for formset in formsets:
            for form in formset.forms:
                data = getattr(form, "cleaned_data", None)
                if data and not data.get("DELETE") and data.get("field"):
                    rules.append(
                        {
                            "field": data["field"],
                            "operator": data["operator"],
                            "values": data["values"],
                        }
                    )
        return rules

    def save_related(self, request, form, formsets, change):
        """Policies and rules are written together by the services, in save_model's place."""
        data = form.cleaned_data
        rules = self._rules_from(formsets)
        for formset in formsets:  # what the admin's change message reads after a save
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        try:
            if change:
                policy = services.policy_update(
                    actor=request.user,
                    policy=form.instance,
                    target=data["target"],
                    name=data["name"],
                    rules=rules,
                    tag_template=data["tag_template"],
                    description=data["description"],
                    enabled=data["enabled"],
                    pass_on_missing_data=data["pass_on_missing_data"],
                    on_move=data["on_move"],
                )
            else:
                policy = services.policy_create(
                    actor=request.user,
                    source=data["source"],
                    target=data["target"],
                    name=data["name"],
                    rules=rules,
                    tag_template=data["tag_template"],
                    description=data["description"],
                    enabled=data["enabled"],
                    pass_on_missing_data=data["pass_on_missing_data"],
                    on_move=data["on_move"],
                )
        except (ValidationFailed, PermissionDenied) as exc:
            # Form validation already ran the same checks; this is a race or a direct POST.
            self.message_user(request, _error_text(exc), messages.ERROR)
            return
        form.instance.pk = policy.pk  # the admin logs and redirects with this object
        loop = services.policy_cycle(
            source=policy.source, target=policy.target, exclude_policy_id=policy.pk
        )
        if loop:
            self.message_user(
                request,
                "This policy closes a loop: "
                + " → ".join(loop)
                + ". Promotions never re-enter a repository they came through, so it will not "
                "run forever, but check that this is what you want.",
                messages.WARNING,
            )
        for warning in services.policy_target_warnings(policies=[policy]).get(policy.pk, []):
            self.message_user(request, warning, messages.WARNING)

    def save_model(self, request, obj, form, change):
        """Nothing here: ``save_related`` writes through the services."""

    def delete_model(self, request, obj):
        try:
            services.policy_delete(actor=request.user, policy=obj)
        except PermissionDenied as exc:
            self.message_user(request, f"{obj}: {exc.message}", messages.ERROR)

    def delete_queryset(self, request, queryset):
        for policy in queryset.select_related("source", "target"):
            self.delete_model(request, policy)

    def get_changeform_initial_data(self, request):
        return {"enabled": True}

    @admin.action(description="Enable the selected policies")
    def enable(self, request, queryset):
        self._set_enabled(request, queryset, True)

    @admin.action(description="Disable the selected policies")
    def disable(self, request, queryset):
        self._set_enabled(request, queryset, False)

    def _set_enabled(self, request, queryset, enabled: bool):
        for policy in queryset:
            try:
                services.policy_update(actor=request.user, policy=policy, enabled=enabled)
            except (ValidationFailed, PermissionDenied) as exc:
                self.message_user(request, f"{policy}: {_error_text(exc)}", messages.ERROR)

    @admin.action(description="Apply the selected policies to existing tags")
    def apply(self, request, queryset):
        for policy in queryset:
            try:
                handle = services.policy_apply_queue(actor=request.user, policy=policy)
            except (ValidationFailed, PermissionDenied) as exc:
                self.message_user(request, f"{policy}: {_error_text(exc)}", messages.ERROR)
                continue
            self.message_user(
                request,
                f"{policy}: being applied to the existing tags (revision {handle.revision}); "
                "its records appear under Promotion records.",
            )


def _error_text(exc) -> str:
    if isinstance(exc, ValidationFailed) and exc.detail:
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.detail.items())
    return exc.message


@admin.register(PromotionRecord)
class PromotionRecordAdmin(RestrictedReadOnlyAdmin):
    list_display = (
        "created_at",
        "policy_name",
        "source",
        "target",
        "outcome_badge",
        "trigger",
        "reason",
    )
    list_filter = ("outcome", "trigger", "policy")
    search_fields = ("source_tag", "target_tag", "digest", "policy_name", "reason")
    date_hierarchy = "created_at"
    list_select_related = ("policy",)

    @admin.display(description="source")
    def source(self, obj):
        return f"{obj.source_repository_name}:{obj.source_tag}"

    @admin.display(description="target")
    def target(self, obj):
        return f"{obj.target_repository_name}:{obj.target_tag}" if obj.target_tag else "—"

    @admin.display(description="outcome", ordering="outcome")
    def outcome_badge(self, obj):
        return format_html("<strong>{}</strong>", obj.get_outcome_display())
