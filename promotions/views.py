"""The Promotions and Activity tabs of a repository, the promotion policy form, and
"Promote now" for one tag.

Every write goes through ``promotions.services``, which checks the permissions again (admin
on the source and the target) and validates the rules; its ``ValidationFailed.detail`` is
mapped onto the form, the rule rows included (``rules.<n>``), so each message appears next
to what it is about.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied as Forbidden
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import BooleanField, Case, Prefetch, Q, Value, When
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.generic import TemplateView, View

from registry_portal.accounts.choices import Action
from registry_portal.errors import PermissionDenied, ValidationFailed
from registry_portal.registry.models import Repository, Tag, TagEvent
from registry_portal.registry.pages import RepositoryPageMixin, repository_url
from scanning import selectors as scan_selectors

from . import services
from .choices import OnMove, PromotionOutcome, RuleField, RuleOperator, operator_label
from .forms import (
    KEEP_TAG,
    TEMPLATE_TAG,
    PolicyForm,
    PromoteForm,
    RuleFormSet,
)
from .models import PromotionPolicy, PromotionRecord
from .tag_templates import PLACEHOLDERS, TagTemplate, repeat_warning

RECENT_RECORDS = 5
RECORDS_PER_PAGE = 25
PREVIEW_TAG = "1.0-stable"


def rule_phrase(rule) -> dict:
    """A rule in words, e.g. {field: "tag name", operator: "ends with", values: "stable"}."""
    return {
        "field": str(RuleField(rule.field).label).split(" (")[0],
        "operator": operator_label(rule.field, rule.operator),
        "values": ", ".join(rule.values),
    }


def policies_url(repository) -> str:
    """The Promotions tab of a repository."""
    namespace, _, name = repository.full_name.partition("/")
    return reverse("promotions:policies", kwargs={"namespace": namespace, "name": name})


def _policies_with_history(queryset):
    recent = PromotionRecord.objects.order_by("-created_at", "-id")
    return queryset.select_related(
        "source__namespace", "target__namespace", "updated_by"
    ).prefetch_related(
        "rules",
        Prefetch("records", queryset=recent[:RECENT_RECORDS], to_attr="recent_records"),
    )


def _holds(condition: Q) -> Case:
    return Case(
        When(condition, then=Value(True)), default=Value(False), output_field=BooleanField()
    )


def _describe(policies: list[PromotionPolicy], user) -> list[PromotionPolicy]:
    """Add each policy's rules in words and whether the user may change it (one query)."""
    rights = PromotionPolicy.objects.all()
    allowed = {
        pk: (can_change, can_delete)
        for pk, can_change, can_delete in rights.filter(pk__in=[p.pk for p in policies])
        .annotate(
            can_change=_holds(rights.restrict_q(user, Action.ADMIN)),
            can_delete=_holds(rights.restrict_q(user, Action.DELETE)),
        )
        .values_list("pk", "can_change", "can_delete")
    }
    for policy in policies:
        policy.phrases = [rule_phrase(rule) for rule in policy.rules.all()]
        policy.can_change, policy.can_delete = allowed.get(policy.pk, (False, False))
    return policies


class PolicyListView(RepositoryPageMixin, TemplateView):
    """The Promotions tab: policies from this repository, and those into it."""

    template_name = "promotions/policy_list.html"
    tab = "promotions"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        outgoing = list(
            _policies_with_history(PromotionPolicy.objects.filter(source=self.repository))
        )
        incoming = list(
            _policies_with_history(
                PromotionPolicy.objects.restrict(user, Action.PULL).filter(target=self.repository)
            )
        )
        warnings = services.policy_target_warnings(policies=[*outgoing, *incoming])
        for policy in [*outgoing, *incoming]:
            policy.target_warnings = warnings.get(policy.pk, [])
        context.update(
            outgoing=_describe(outgoing, user),
            incoming=_describe(incoming, user),
        )
        return context


class PolicyActionMixin(RepositoryPageMixin):
    """A POST on one policy of this repository (as source or target)."""

    def get_policy(self) -> PromotionPolicy:
        return get_object_or_404(
            PromotionPolicy.objects.select_related("source__namespace", "target__namespace"),
            Q(source=self.repository) | Q(target=self.repository),
            pk=self.kwargs["policy_id"],
        )

    def done(self):
        return HttpResponseRedirect(policies_url(self.repository))


class PolicyEnableView(PolicyActionMixin, View):
    """Turn a policy on or off (admins of source and target)."""

    def post(self, request, *args, **kwargs):
        policy = self.get_policy()
        enabled = request.POST.get("enabled") == "on"
        try:
            services.policy_update(actor=request.user, policy=policy, enabled=enabled)
        except PermissionDenied as error:
            raise Forbidden(error.message) from error
        state = "enabled" if enabled else "disabled"
        messages.success(request, f"The policy “{policy.name}” is {state}.")
        return self.done()


class PolicyDeleteView(PolicyActionMixin, View):
    """Delete a policy (admins of its source or its target); its records stay."""

    def post(self, request, *args, **kwargs):
        policy = self.get_policy()
        try:
            services.policy_delete(actor=request.user, policy=policy)
        except PermissionDenied as error:
            raise Forbidden(error.message) from error
        messages.success(request, f"The policy “{policy.name}” was deleted.")
        return self.done()


class PolicyFormMixin(RepositoryPageMixin):
    """The New/Edit policy form: a policy form, rule rows, and the service's errors on them."""

    template_name = "promotions/policy_form.html"
    required_action = Action.ADMIN
    tab = "promotions"
    policy: PromotionPolicy | None = None

    def forms(self, data=None, initial=None, rules_initial=None):
        form = PolicyForm(data, initial=initial, user=self.request.user, source=self.repository)
        rules = RuleFormSet(data, initial=rules_initial, prefix="rules")
        return form, rules

    def get(self, request, *args, **kwargs):
        form, rules = self.forms(**self.initial())
        return self.render(form, rules)

    def render(self, form, rules, status=200):
        context = self.get_context_data(
            form=form,
            rules=rules,
            policy=self.policy,
            operator_labels={op.value: op.label for op in RuleOperator},
            preview_tag=PREVIEW_TAG,
            placeholders=PLACEHOLDERS.items(),
        )
        return self.render_to_response(context, status=status)

    def post(self, request, *args, **kwargs):
        form, rules = self.forms(request.POST)
        if not (form.is_valid() and rules.is_valid()):
            return self.render(form, rules, status=400)
        kept = [f for f in rules.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
        data = form.cleaned_data
        try:
            with transaction.atomic():
                policy = self.save(data, [f.rule() for f in kept])
                if "apply" in request.POST:
                    services.policy_apply_queue(actor=request.user, policy=policy)
        except ValidationFailed as error:
            self.show_errors(error, form, kept)
            return self.render(form, rules, status=400)
        except PermissionDenied as error:
            form.add_error(None, error.message)
            return self.render(form, rules, status=403)
        messages.success(request, f"The policy “{policy.name}” is saved.")
        if "apply" in request.POST:
            messages.info(
                request, "It is being applied to the existing tags; see the Activity tab."
            )
        cycle = services.policy_cycle(
            source=policy.source, target=policy.target, exclude_policy_id=policy.pk
        )
        if cycle and policy.enabled:
            messages.warning(
                request,
                "This policy closes a loop: "
                + " → ".join(cycle)
                + ". Promotions never re-enter a repository an image already came through, "
                "so the loop stops, but check that this is what you want.",
            )
        return HttpResponseRedirect(policies_url(self.repository))

    @staticmethod
    def show_errors(error: ValidationFailed, form, kept_rule_forms) -> None:
        detail = error.detail or {error.field or "__all__": [error.message]}
        for key, errors in detail.items():
            if key.startswith("rules."):
                kept_rule_forms[int(key.split(".", 1)[1])].add_error(None, errors)
            elif key in form.fields:
                form.add_error(key, errors)
            else:
                form.add_error(None, errors)


class PolicyCreateView(PolicyFormMixin, TemplateView):
    """New promotion policy, with this repository as its source."""

    def initial(self) -> dict:
        return {
            "initial": {"enabled": True, "tag_mode": KEEP_TAG, "on_move": OnMove.OVERWRITE},
            "rules_initial": [],
        }

    def save(self, data, rules) -> PromotionPolicy:
        return services.policy_create(
            actor=self.request.user,
            source=self.repository,
            target=data["target"],
            name=data["name"],
            description=data["description"],
            rules=rules,
            tag_template=data["tag_template"],
            enabled=data["enabled"],
            pass_on_missing_data=data["pass_on_missing_data"],
            on_move=data["on_move"],
        )


class PolicyUpdateView(PolicyFormMixin, TemplateView):
    """Edit a promotion policy of this repository."""

    def get_policy(self) -> PromotionPolicy:
        if self.policy is None:
            self.policy = get_object_or_404(
                PromotionPolicy.objects.select_related("target__namespace").prefetch_related(
                    "rules"
                ),
                source=self.repository,
                pk=self.kwargs["policy_id"],
            )
        return self.policy

    def get(self, request, *args, **kwargs):
        self.get_policy()
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        self.get_policy()
        return super().post(request, *args, **kwargs)

    def initial(self) -> dict:
        policy = self.policy
        return {
            "initial": {
                "name": policy.name,
                "description": policy.description,
                "target_organization": policy.target.namespace_id if policy.target else None,
                "target": policy.target_id,
                "tag_mode": TEMPLATE_TAG if policy.tag_template else KEEP_TAG,
                "tag_template": policy.tag_template,
                "enabled": policy.enabled,
                "pass_on_missing_data": policy.pass_on_missing_data,
                "on_move": policy.on_move,
            },
            "rules_initial": [
                {"field": r.field, "operator": r.operator, "values": ", ".join(r.values)}
                for r in policy.rules.all()
            ],
        }

    def save(self, data, rules) -> PromotionPolicy:
        return services.policy_update(
            actor=self.request.user,
            policy=self.policy,
            target=data["target"],
            name=data["name"],
            description=data["description"],
            rules=rules,
            tag_template=data["tag_template"],
            enabled=data["enabled"],
            pass_on_missing_data=data["pass_on_missing_data"],
            on_move=data["on_move"],
        )


class TagTemplatePreviewView(RepositoryPageMixin, View):
    """JSON for the form's live preview: what a template renders now, and what is wrong."""

    required_action = Action.ADMIN

    def get(self, request, *args, **kwargs):
        template = TagTemplate(request.GET.get("template", "")[:200])
        tag = request.GET.get("tag", "")[:128] or PREVIEW_TAG
        now = datetime.now(UTC)
        return JsonResponse(
            {
                "tag": tag,
                "preview": template.preview(now=now, tag=tag),
                "errors": template.validate(),
                "warnings": [*template.warnings(), *filter(None, [repeat_warning(template)])],
                "now": now.strftime("%Y-%m-%d %H:%M:%S UTC"),
            }
        )


class PolicyDryRunView(RepositoryPageMixin, View):
    """The form's dry-run panel: which existing tags the rules would promote, and as what.

    Its permission is the service's (pull on the source), as in the API.
    """

    required_action = Action.PULL

    def post(self, request, *args, **kwargs):
        rules = RuleFormSet(request.POST, prefix="rules")
        mode = request.POST.get("tag_mode", KEEP_TAG)
        template = request.POST.get("tag_template", "") if mode == TEMPLATE_TAG else ""
        context = {"rows": [], "errors": []}
        if not rules.is_valid():
            context["errors"] = ["Complete every rule row (field and operator) first."]
        else:
            kept = [f for f in rules.forms if f.cleaned_data and not f.cleaned_data.get("DELETE")]
            target_id = request.POST.get("target", "")
            target = (
                Repository.objects.restrict(request.user, Action.ADMIN)
                .filter(pk=int(target_id))
                .first()
                if target_id.isdigit() and len(target_id) < 18
                else None
            )
            on_move = request.POST.get("on_move", OnMove.OVERWRITE)
            try:
                context["rows"] = services.policy_dry_run(
                    actor=request.user,
                    source=self.repository,
                    rules=[f.rule() for f in kept],
                    tag_template=template,
                    target=target,
                    pass_on_missing_data=request.POST.get("pass_on_missing_data") == "on",
                    on_move=on_move if on_move in OnMove.values else OnMove.OVERWRITE,
                )
            except ValidationFailed as error:
                for key, messages_ in (error.detail or {}).items():
                    where = (
                        f"Rule {int(key.split('.', 1)[1]) + 1}"
                        if key.startswith("rules.")
                        else "Tag template"
                    )
                    context["errors"].extend(f"{where}: {message}" for message in messages_)
        context["matches"] = sum(
            1 for row in context["rows"] if row.record_outcome == PromotionOutcome.PROMOTED
        )
        context["repeats"] = sum(1 for row in context["rows"] if row.warning)
        context["template_warning"] = repeat_warning(TagTemplate(template))
        return TemplateResponse(request, "promotions/_dry_run.html", context)


class RepositoryActivityView(RepositoryPageMixin, TemplateView):
    """The Activity tab: tag history (pushes, moves, deletions, promotions in), every
    promotion attempt from or into this repository, with skipped and failed reasons, and
    the scans of its images (queued, running, done, failed with the error)."""

    template_name = "promotions/repository_activity.html"
    tab = "activity"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        events = TagEvent.objects.filter(repository=self.repository).select_related("actor")
        records = PromotionRecord.objects.filter(
            Q(source_repository=self.repository) | Q(target_repository=self.repository)
        ).select_related("triggered_by")
        scans = Paginator(
            scan_selectors.repository_scan_reports(repository=self.repository), RECORDS_PER_PAGE
        ).get_page(self.request.GET.get("spage"))
        tag_names: dict[int, list[str]] = {}
        for manifest_id, name in Tag.objects.filter(
            repository=self.repository, manifest_id__in=[report.manifest_id for report in scans]
        ).values_list("manifest_id", "name"):
            tag_names.setdefault(manifest_id, []).append(name)
        for report in scans:
            report.tag_names = sorted(tag_names.get(report.manifest_id, []))
        scan_selectors.reports_as_seen_in(reports=scans, repository=self.repository)
        context.update(
            events=Paginator(events, RECORDS_PER_PAGE).get_page(self.request.GET.get("page")),
            records=Paginator(records, RECORDS_PER_PAGE).get_page(self.request.GET.get("rpage")),
            scans=scans,
        )
        return context


class TagPromoteView(RepositoryPageMixin, TemplateView):
    """Promote one tag now through one of this repository's policies, whatever its rules.

    Offered to the repository's admins; running a policy needs the same rights as changing
    it (admin on its target too), which ``services.promotion_manual`` checks: a refusal is a
    403. After the promotion the page shows the record's outcome (``?record=<id>``).
    """

    template_name = "promotions/tag_promote.html"
    required_action = Action.ADMIN
    tab = "tags"

    def load(self) -> None:
        self.tag = get_object_or_404(
            Tag.objects.select_related("manifest").defer("manifest__content"),
            repository=self.repository,
            name=self.kwargs["tag"],
        )
        self.policies = PromotionPolicy.objects.filter(source=self.repository).order_by("name")

    def get(self, request, *args, **kwargs):
        self.load()
        return self.render(PromoteForm(policies=self.policies))

    def post(self, request, *args, **kwargs):
        self.load()
        form = PromoteForm(request.POST, policies=self.policies)
        if not form.is_valid():
            return self.render(form, status=400)
        policy = PromotionPolicy.objects.select_related(
            "source__namespace", "target__namespace"
        ).get(pk=form.cleaned_data["policy"].pk)
        try:
            record = services.promotion_manual(actor=request.user, policy=policy, tag=self.tag)
        except PermissionDenied as error:
            raise Forbidden(error.message) from error
        except ValidationFailed as error:
            form.add_error(None, error.message)
            return self.render(form, status=400)
        outcome = record.get_outcome_display()
        messages.info(request, f"{self.tag.name} through “{policy.name}”: {outcome}.")
        return HttpResponseRedirect(f"{request.path}?record={record.pk}")

    def render(self, form, status=200):
        policies = _describe(list(_policies_with_history(self.policies)), self.request.user)
        record_id = self.request.GET.get("record", "")
        record = (
            PromotionRecord.objects.filter(
                pk=int(record_id), source_repository=self.repository, source_tag=self.tag.name
            ).first()
            if record_id.isdigit() and len(record_id) < 18
            else None
        )
        if record is not None:
            promoted = record.outcome == PromotionOutcome.PROMOTED and record.target_tag
            record.target_url = (
                repository_url(record.target_repository_name, "tags")
                + "?"
                + urlencode({"q": record.target_tag})
                if promoted
                else ""
            )
        context = self.get_context_data(form=form, tag=self.tag, policies=policies, record=record)
        return self.render_to_response(context, status=status)
