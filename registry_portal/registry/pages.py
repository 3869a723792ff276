"""The repository pages of the browser UI: Overview, Tags and Settings tabs, and a tag's
Vulnerabilities and Components pages.

(``views.py`` is the /v2/ Distribution API; these are the HTML pages.) Every page asks the
permission function: a repository the user may not see is a 404, an action the user may not
take is a 403, and the templates hide what the user cannot do. Anyone, signed in or not, may
read the pages of a public repository that say ``allow_anonymous``; every other page needs
an account. The Promotions and Activity tabs (which show promotion records) live in
``promotions.views`` and share ``RepositoryPageMixin``: the registry does not import
promotions. The pages read scan data through ``scanning.selectors`` (the registry's models
and services never do).
"""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.generic import TemplateView, View

from registry_portal.accounts import services as account_services
from registry_portal.accounts.choices import Action
from registry_portal.accounts.models import RepositoryAccess
from registry_portal.accounts.permissions import repository_actions
from registry_portal.errors import PortalError, ValidationFailed
from scanning import selectors as scan_selectors
from scanning import services as scan_services
from scanning.choices import SBOM_SOURCE_PREFIX, SOURCE_SCAN, ScanStatus
from scanning.filtersets import ComponentFilterSet, FindingFilterSet

from . import services
from .filtersets import TagFilterSet
from .forms import RepositorySettingsForm, TeamAccessForm
from .manifests import INDEX_TYPES
from .models import Manifest, Repository, RepositoryBlob, Tag
from .selectors import repository_get_by_full_name

TAGS_PER_PAGE = 50
SCAN_ROWS_PER_PAGE = 50


def repository_url(repository_full_name: str, tab: str = "") -> str:
    """The page of a repository (``tab`` empty for Overview) from its full name."""
    namespace, _, name = repository_full_name.partition("/")
    kwargs = {"namespace": namespace, "name": name}
    return reverse(f"repos:{tab or 'overview'}", kwargs=kwargs)


def registry_host() -> str:
    """The host clients pull from, taken from PORTAL_URL."""
    return urlsplit(settings.PORTAL_URL).netloc


class RepositoryPageMixin(LoginRequiredMixin):
    """Loads the repository of the URL and the user's actions on it.

    A repository the user may not see is a 404 (its existence is not revealed); a page
    that needs more than pulling (``required_action``) is a 403 for those who may see it.
    Visitors who are not signed in go to the sign-in page, unless the page is a reading
    page (``allow_anonymous``): they may then read a public repository, and a private one
    is a 404 to them as to anyone who may not see it.
    """

    required_action = Action.PULL
    allow_anonymous = False
    tab = ""

    def dispatch(self, request, *args, **kwargs):
        anonymous_may_read = self.allow_anonymous and self.required_action == Action.PULL
        if not request.user.is_authenticated and not anonymous_may_read:
            return self.handle_no_permission()
        full_name = f"{kwargs['namespace']}/{kwargs['name']}"
        repository = repository_get_by_full_name(full_name=full_name)
        actions = repository_actions(request.user, repository) if repository else frozenset()
        if Action.PULL not in actions:
            raise Http404("No such repository.")
        if self.required_action not in actions:
            raise PermissionDenied("You may not do this in this repository.")
        self.repository, self.actions = repository, actions
        # The sign-in check is done above (it depends on the page and the repository).
        return super(LoginRequiredMixin, self).dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            repository=self.repository,
            actions=self.actions,
            is_admin=Action.ADMIN in self.actions,
            tab=self.tab,
            tag_count=Tag.objects.filter(repository=self.repository).count(),
            admin_url=self.admin_url(),
        )
        return context

    def admin_url(self) -> str:
        """The repository in the Django admin, for staff (who may be sent there)."""
        if not self.request.user.is_staff:
            return ""
        return reverse("admin:registry_repository_change", args=[self.repository.pk])

    def tab_url(self, tab: str = "") -> str:
        return repository_url(self.repository.full_name, tab)


def _with_sizes(queryset):
    """Annotate ``image_size``: the manifest, its blobs, and those of an index's children."""
    through = Manifest.blobs.through
    own = (
        through.objects.filter(manifest_id=OuterRef("manifest_id"))
        .values("manifest_id")
        .annotate(total=Sum("blob__size"))
        .values("total")
    )
    children = (
        through.objects.filter(manifest__parents=OuterRef("manifest_id"))
        .annotate(group=Value(1))
        .values("group")
        .annotate(total=Sum("blob__size"))
        .values("total")
    )
    zero = Value(0, output_field=IntegerField())
    return queryset.annotate(
        image_size=Coalesce(Subquery(own, output_field=IntegerField()), zero)
        + Coalesce(Subquery(children, output_field=IntegerField()), zero)
    )


def decorate_tags(*, tags: list[Tag], user) -> list[Tag]:
    """Give each tag ``platforms`` (for an index), ``provenance_url`` (when its source
    repository is visible to the user) and ``scan`` (its scan summary, None when the image
    was never scanned), in a few queries whatever the number of tags."""
    index_ids = {t.manifest_id for t in tags if t.manifest.media_type in INDEX_TYPES}
    platforms: dict[int, list[str]] = {}
    if index_ids:
        for manifest_id, content in Manifest.objects.filter(pk__in=index_ids).values_list(
            "pk", "content"
        ):
            platforms[manifest_id] = _index_platforms(bytes(content))
    sources = {t.provenance["source_repository"] for t in tags if t.provenance}
    visible_sources: set[str] = set()
    if sources:
        by_name = Q()
        for full_name in sources:
            namespace, _, name = full_name.partition("/")
            by_name |= Q(namespace__name=namespace, name=name)
        visible_sources = {
            f"{namespace}/{name}"
            for namespace, name in Repository.objects.restrict(user, Action.PULL)
            .filter(by_name)
            .values_list("namespace__name", "name")
        }
    scans = scan_selectors.scan_summaries_for_tags(
        pairs={(tag.repository_id, tag.manifest_id) for tag in tags}
    )
    for tag in tags:
        tag.scan = scans.get((tag.repository_id, tag.manifest_id))
        tag.platforms = platforms.get(tag.manifest_id, [])
        tag.promoted_at = _parse_time((tag.provenance or {}).get("promoted_at"))
        source = (tag.provenance or {}).get("source_repository")
        tag.provenance_url = (
            repository_url(source, "tags") + "?" + urlencode({"q": tag.provenance["source_tag"]})
            if source in visible_sources
            else ""
        )
    return tags


def _parse_time(text) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except (TypeError, ValueError):
        return None


def _index_platforms(content: bytes) -> list[str]:
    try:
        entries = json.loads(content).get("manifests", [])
    except (ValueError, AttributeError):
        return []
    platforms = []
    for entry in entries:
        platform = entry.get("platform") if isinstance(entry, dict) else None
        if isinstance(platform, dict) and platform.get("os") != "unknown":
            text = f"{platform.get('os', '?')}/{platform.get('architecture', '?')}"
            if platform.get("variant"):
                text += f"/{platform['variant']}"
            platforms.append(text)
    return platforms


class RepositoryOverviewView(RepositoryPageMixin, TemplateView):
    """Description, visibility, pull commands, size and last push."""

    template_name = "registry/repository_overview.html"
    tab = "overview"
    allow_anonymous = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        repository = self.repository
        recent = list(
            _with_sizes(
                Tag.objects.filter(repository=repository)
                .select_related("manifest", "pushed_by")
                .defer("manifest__content")
                .order_by("-pushed_at")
            )[:5]
        )
        host = registry_host()
        reference = f"{host}/{repository.full_name}:{recent[0].name if recent else 'latest'}"
        context.update(
            registry_host=host,
            recent_tags=decorate_tags(tags=recent, user=self.request.user),
            last_push=recent[0] if recent else None,
            total_size=RepositoryBlob.objects.filter(repository=repository).aggregate(
                total=Sum("blob__size")
            )["total"]
            or 0,
            pull_commands=[
                ("docker", f"docker pull {reference}"),
                ("podman", f"podman pull {reference}"),
                ("skopeo", f"skopeo copy docker://{reference} oci:{repository.name}"),
            ],
        )
        return context


class RepositoryTagsView(RepositoryPageMixin, TemplateView):
    """Every tag, by name, a page at a time with keyset cursors (fast with 100,000 tags):
    ``after`` a name for the next page, ``before`` a name for the previous one."""

    template_name = "registry/repository_tags.html"
    tab = "tags"
    allow_anonymous = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        query = self.request.GET.get("q", "").strip()[:128]
        after = self.request.GET.get("after", "")[:128]
        before = "" if after else self.request.GET.get("before", "")[:128]
        tags = TagFilterSet(
            {"q": query}, queryset=Tag.objects.filter(repository=self.repository)
        ).qs
        tags = _with_sizes(tags.select_related("manifest", "pushed_by").defer("manifest__content"))
        if before:
            page = list(tags.filter(name__lt=before).order_by("-name")[: TAGS_PER_PAGE + 1])
            has_previous, has_next = len(page) > TAGS_PER_PAGE, True
            page = page[:TAGS_PER_PAGE][::-1]
        else:
            if after:
                tags = tags.filter(name__gt=after)
            page = list(tags.order_by("name")[: TAGS_PER_PAGE + 1])
            has_previous, has_next = bool(after), len(page) > TAGS_PER_PAGE
            page = page[:TAGS_PER_PAGE]
        params = {"q": query} if query else {}
        context.update(
            tags=decorate_tags(tags=page, user=self.request.user),
            query=query,
            after=after,
            before=before,
            first_url="?" + urlencode(params) if (after or before) and has_previous else "",
            previous_url=(
                "?" + urlencode({**params, "before": page[0].name}) if page and has_previous else ""
            ),
            next_url=(
                "?" + urlencode({**params, "after": page[-1].name}) if page and has_next else ""
            ),
        )
        return context


class RepositorySettingsView(RepositoryPageMixin, TemplateView):
    """Admins: visibility, immutable tags, description, and team access.

    The page holds two forms; the submit button's ``form`` value says which one is posted,
    so that an invalid one is shown again with its errors next to the other.
    """

    template_name = "registry/repository_settings.html"
    required_action = Action.ADMIN
    tab = "settings"

    def post(self, request, *args, **kwargs):
        if request.POST.get("form") == "access":
            return self.grant_access(TeamAccessForm(request.POST, organization=self.organization))
        form = RepositorySettingsForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(settings_form=form), status=400)
        services.repository_update(
            repository=self.repository,
            is_public=form.cleaned_data["visibility"] == "public",
            immutable_tags=form.cleaned_data["immutable_tags"],
            description=form.cleaned_data["description"],
        )
        messages.success(request, "Settings saved.")
        return HttpResponseRedirect(self.tab_url("settings"))

    def grant_access(self, form):
        if form.is_valid():
            try:
                account_services.access_grant(
                    actor=self.request.user,
                    team=form.cleaned_data["team"],
                    level=form.cleaned_data["level"],
                    repository=self.repository,
                )
            except PortalError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                messages.success(
                    self.request, f"Team {form.cleaned_data['team'].name} now has access."
                )
                return HttpResponseRedirect(self.tab_url("settings"))
        return self.render_to_response(self.get_context_data(access_form=form), status=400)

    @property
    def organization(self):
        return self.repository.namespace

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault(
            "settings_form",
            RepositorySettingsForm(
                initial={
                    "visibility": "public" if self.repository.is_public else "private",
                    "immutable_tags": self.repository.immutable_tags,
                    "description": self.repository.description,
                }
            ),
        )
        context.setdefault("access_form", TeamAccessForm(organization=self.organization))
        context["grants"] = (
            RepositoryAccess.objects.filter(
                Q(repository=self.repository) | Q(repository__isnull=True),
                team__organization_id=self.repository.namespace_id,
            )
            .select_related("team")
            .order_by("repository_id", "team__name")
        )
        return context


class RepositoryAccessRevokeView(RepositoryPageMixin, View):
    """Admins: remove a team's grant on this repository (org-wide grants are on the org)."""

    required_action = Action.ADMIN

    def post(self, request, *args, **kwargs):
        grant = get_object_or_404(
            RepositoryAccess.objects.select_related("team"),
            pk=kwargs["grant_id"],
            repository=self.repository,
        )
        account_services.access_revoke(actor=request.user, grant=grant)
        messages.success(request, f"{grant.team.name} no longer has its grant here.")
        return HttpResponseRedirect(self.tab_url("settings"))


def _inventory_sources(sources: list[str]) -> list[dict]:
    """Where a report's inventory came from, in words: our scan, or SBOMs by digest."""
    described = []
    for source in sources:
        if source == SOURCE_SCAN:
            described.append({"kind": "scan", "label": "our scan of the image's layers"})
        elif source.startswith(SBOM_SOURCE_PREFIX):
            digest = source.removeprefix(SBOM_SOURCE_PREFIX)
            described.append({"kind": "sbom", "label": "an SBOM attached to it", "digest": digest})
        else:
            described.append({"kind": "other", "label": source})
    return described


class TagScanPageMixin(RepositoryPageMixin):
    """A tag of the repository and its scan report; for an index, ``?platform=os/arch``
    narrows the page to one platform's report (an unknown platform is a 400)."""

    tab = "tags"
    allow_anonymous = True
    subtab = ""
    filter_labels: dict[str, tuple[str, str]] = {}

    def get(self, request, *args, **kwargs):
        self.tag = get_object_or_404(
            Tag.objects.select_related("manifest", "pushed_by").defer("manifest__content"),
            repository=self.repository,
            name=kwargs["tag"],
        )
        self.report = scan_selectors.report_for_manifest(
            manifest=self.tag.manifest, repository=self.repository
        )
        self.platforms = (
            list(scan_selectors.report_platform_reports(report=self.report)) if self.report else []
        )
        self.platform = request.GET.get("platform", "")[:100]
        shown = self.report
        errors = []
        if self.platform:
            shown = next((r for r in self.platforms if r.platform == self.platform), None)
            if shown is None:
                errors.append(f"This image has no platform “{self.platform}”.")
        context = self.get_context_data(platform_errors=errors, **self.rows(shown, errors))
        status = 400 if errors or context["filters"].errors else 200
        return self.render_to_response(context, status=status)

    def rows(self, report, errors) -> dict:
        """The filter form and a page of rows of ``report`` (none unless it is done)."""
        done = report is not None and report.status == ScanStatus.DONE and not errors
        queryset = self.queryset(report) if done else self.filterset_class.Meta.model.objects.none()
        data = {name: self.request.GET.get(name, "")[:200] for name in self.filter_fields}
        filters = self.filterset_class(data, queryset=queryset)
        filters.form.fields = {name: filters.form.fields[name] for name in self.filter_fields}
        for name, (label, placeholder) in self.filter_labels.items():
            form_field = filters.form.fields[name]
            form_field.label = label
            if placeholder.startswith("Any"):
                # django-filter's choice fields add their empty choice when choices are set.
                form_field.empty_label = placeholder
                form_field.choices = list(form_field.choices)[1:]
            else:
                form_field.widget.attrs["placeholder"] = placeholder
        page = None
        if done and filters.is_valid():
            page = Paginator(filters.qs, SCAN_ROWS_PER_PAGE).get_page(self.request.GET.get("page"))
        return {"filters": filters, "page": page, "filtered": any(data.values())}

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        report = self.report
        context.update(
            tag=self.tag,
            report=report,
            platforms=self.platforms,
            platform=self.platform,
            subtab=self.subtab,
            sources=_inventory_sources(report.sources) if report else [],
            may_retry=report is not None
            and report.status == ScanStatus.FAILED
            and Action.PUSH in self.actions,
            report_admin_url=(
                reverse("admin:scanning_scanreport_change", args=[report.pk])
                if report is not None and self.request.user.is_staff
                else ""
            ),
        )
        return context


class TagVulnerabilitiesView(TagScanPageMixin, TemplateView):
    """The findings of a tag's image, worst first: filter by severity, vulnerability id,
    package and ecosystem."""

    template_name = "registry/tag_vulnerabilities.html"
    subtab = "vulnerabilities"
    filterset_class = FindingFilterSet
    filter_fields = ("severity", "vulnerability", "component", "ecosystem")
    filter_labels = {
        "severity": ("Severity", "Any severity"),
        "vulnerability": ("Vulnerability id", "CVE-2024-1234"),
        "component": ("Package", "openssl"),
        "ecosystem": ("Ecosystem", "Debian:12"),
    }

    def queryset(self, report):
        return scan_selectors.report_findings(report=report, repository=self.repository).defer(
            "vulnerability__raw"
        )


class TagComponentsView(TagScanPageMixin, TemplateView):
    """The components of a tag's image: filter by name, type, ecosystem and license."""

    template_name = "registry/tag_components.html"
    subtab = "components"
    filterset_class = ComponentFilterSet
    filter_fields = ("q", "type", "ecosystem", "license")
    filter_labels = {
        "q": ("Name", "part of a name"),
        "type": ("Type", "deb, pypi, npm…"),
        "ecosystem": ("Ecosystem", "Debian:12"),
        "license": ("License (SPDX id)", "MIT"),
    }

    def queryset(self, report):
        return scan_selectors.report_components(report=report, repository=self.repository)


class TagScanRetryView(RepositoryPageMixin, View):
    """Those who may push: queue a failed scan of the tag's image again."""

    required_action = Action.PUSH

    def post(self, request, *args, **kwargs):
        tag = get_object_or_404(
            Tag.objects.select_related("manifest").defer("manifest__content"),
            repository=self.repository,
            name=kwargs["tag"],
        )
        report = scan_selectors.report_for_manifest(manifest=tag.manifest)
        if report is None:
            raise Http404("This image has no scan to retry.")
        try:
            scan_services.scan_retry(report=report)
        except ValidationFailed as error:
            messages.error(request, error.message)
        else:
            messages.success(request, f"The scan of {tag.name} is queued again.")
        return HttpResponseRedirect(tag_page_url(self.repository, tag.name, "vulnerabilities"))


def tag_page_url(repository: Repository, tag_name: str, page: str) -> str:
    """A tag's Vulnerabilities or Components page."""
    kwargs = {"namespace": repository.namespace.name, "name": repository.name, "tag": tag_name}
    return reverse(f"repos:tag-{page}", kwargs=kwargs)
