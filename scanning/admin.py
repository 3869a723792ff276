"""Admin for scan reports, components, findings and OSV snapshots: read-only and filterable.

Non-superusers see the reports of manifests present in repositories visible to them
(`ScanReport.objects.restrict`, through `RepositoryManifest`), and may retry a failed
scan of an image they may push. Snapshots (the OSV store) are for superusers, who also
upload an OSV zip here (the offline path) and may switch the active snapshot.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from registry_portal.accounts.choices import Action
from registry_portal.admin_base import RestrictedReadOnlyAdmin
from registry_portal.errors import ValidationFailed

from . import services
from .choices import ScanStatus
from .models import Component, Finding, OsvSnapshot, ScanReport


class ScanScopedAdmin(RestrictedReadOnlyAdmin):
    """Read-only rows of manifests held by repositories the user may see
    (``ScanReport.objects.restrict``)."""


def _changelist_link(model: str, label: str, **query) -> str:
    url = reverse(f"admin:scanning_{model}_changelist")
    params = "&".join(f"{key}={value}" for key, value in query.items())
    return format_html('<a href="{}?{}">{}</a>', url, params, label)


@admin.register(ScanReport)
class ScanReportAdmin(ScanScopedAdmin):
    list_display = (
        "manifest",
        "status",
        "platform",
        "component_count",
        "critical",
        "high",
        "medium",
        "low",
        "unknown",
        "finished_at",
    )
    list_filter = ("status", "is_index", "ecosystem")
    list_select_related = ("manifest",)
    search_fields = ("manifest__digest", "error", "distro")
    readonly_fields = ("components_link", "findings_link")
    actions = ("retry_scans",)

    @admin.display(description="components")
    def components_link(self, obj):
        return _changelist_link(
            "component", f"{obj.component_count} components", report__id__exact=obj.pk
        )

    @admin.display(description="findings")
    def findings_link(self, obj):
        return _changelist_link("finding", "findings", report__id__exact=obj.pk)

    def _may_retry(self, request, report: ScanReport) -> bool:
        return self.allows(request, report, Action.PUSH)

    @admin.action(description="Retry the selected failed scans")
    def retry_scans(self, request, queryset):
        retried = 0
        for report in queryset.filter(status=ScanStatus.FAILED):
            if not self._may_retry(request, report):
                self.message_user(
                    request, f"You may not retry the scan of {report.manifest}.", messages.ERROR
                )
                continue
            try:
                services.scan_retry(report=report)
            except ValidationFailed as error:
                self.message_user(request, error.message, messages.ERROR)
                continue
            retried += 1
        self.message_user(request, f"{retried} scan(s) queued again.", messages.SUCCESS)


@admin.register(Component)
class ComponentAdmin(ScanScopedAdmin):
    list_display = ("name", "version", "type", "ecosystem", "license_list", "origin", "report")
    list_filter = ("type", "ecosystem", "origin")
    list_select_related = ("report",)
    search_fields = ("name", "purl", "source_name", "license_ids__spdx_id")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("license_ids")

    @admin.display(description="licenses")
    def license_list(self, obj):
        return ", ".join(license.spdx_id for license in obj.license_ids.all()) or "unknown"


@admin.register(Finding)
class FindingAdmin(ScanScopedAdmin):
    list_display = ("vulnerability", "severity", "score", "component", "fixed_version", "report")
    list_filter = ("severity",)
    list_select_related = ("vulnerability", "component", "report")
    search_fields = ("vulnerability__osv_id", "vulnerability__aliases", "component__name")


class OsvUploadForm(forms.Form):
    archive = forms.FileField(label="OSV zip", help_text="An all.zip of OSV JSON records.")


@admin.register(OsvSnapshot)
class OsvSnapshotAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "source",
        "status",
        "is_active",
        "record_count",
        "malformed_count",
        "created_at",
    )
    list_filter = ("status", "is_active")
    search_fields = ("source", "error")
    actions = ("activate",)
    change_list_template = "admin/scanning/osvsnapshot/change_list.html"

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return self.has_module_permission(request) and obj is not None and not obj.is_active

    def get_urls(self):
        upload = self.admin_site.admin_view(self.upload_view)
        return [
            path("upload/", upload, name="scanning_osvsnapshot_upload"),
            *super().get_urls(),
        ]

    def upload_view(self, request):
        """Import an uploaded OSV zip as a new snapshot (the offline path)."""
        if not self.has_module_permission(request):
            raise PermissionDenied
        form = OsvUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            uploaded = form.cleaned_data["archive"]
            snapshot = services.osv_import_zip(
                path_or_file=uploaded, source=f"upload: {uploaded.name}"
            )
            if snapshot.status == "ready":
                self.message_user(
                    request,
                    f"Snapshot {snapshot.pk}: {snapshot.record_count} records imported, "
                    f"{snapshot.malformed_count} malformed entries skipped. Stored images "
                    "are being re-matched.",
                    messages.SUCCESS,
                )
                return redirect("admin:scanning_osvsnapshot_changelist")
            form.add_error("archive", snapshot.error)
        context = {
            **self.admin_site.each_context(request),
            "title": "Upload OSV data",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/scanning/osvsnapshot/upload.html", context)

    @admin.action(description="Make the selected snapshot the active one")
    def activate(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one snapshot.", messages.ERROR)
            return
        try:
            snapshot = services.snapshot_activate(snapshot=queryset.get())
        except ValidationFailed as error:
            self.message_user(request, error.message, messages.ERROR)
            return
        self.message_user(request, f"Snapshot {snapshot.pk} is active; re-matching.")
