"""Admin for repositories, tags and the content-addressed data behind them.

Content-addressed rows (blobs, manifests) and the tag history are read-only. Non-superusers
see the repositories the permission function lets them see, and change only where they are
admins.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.utils.html import format_html

from registry_portal.accounts.choices import Action
from registry_portal.accounts.models import Organization
from registry_portal.admin_base import (
    ReadOnlyAdmin,
    RestrictedAdminMixin,
    RestrictedReadOnlyAdmin,
)
from registry_portal.errors import PortalError

from . import services
from .models import Blob, Manifest, Repository, Tag, TagEvent, Upload


class TagInline(admin.TabularInline):
    model = Tag
    extra = 0
    fields = ("name", "manifest", "pushed_by", "pushed_at", "promoted_from")
    readonly_fields = fields
    show_change_link = True
    max_num = 0
    can_delete = False
    ordering = ("-pushed_at",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("manifest", "pushed_by")

    @admin.display(description="promoted from")
    def promoted_from(self, obj):
        return _provenance_text(obj.provenance)


def _provenance_text(provenance) -> str:
    if not provenance:
        return "—"
    return f"{provenance.get('source_repository')}:{provenance.get('source_tag')}"


@admin.register(Repository)
class RepositoryAdmin(RestrictedAdminMixin, admin.ModelAdmin):
    list_display = ("full_name", "is_public", "immutable_tags", "tag_count", "updated_at")
    list_filter = ("is_public", "immutable_tags", "namespace")
    search_fields = ("name", "namespace__name", "description")
    list_select_related = ("namespace",)
    readonly_fields = ("created_by", "created_at", "updated_at")
    inlines = (TagInline,)

    def get_readonly_fields(self, request, obj=None):
        # A repository's name is its address: clients and promotions refer to it.
        if obj is not None:
            return ("namespace", "name", *self.readonly_fields)
        return self.readonly_fields

    def has_add_permission(self, request):
        return (
            self.has_module_permission(request)
            and Organization.objects.restrict(request.user, Action.ADMIN).exists()
        )

    def save_model(self, request, obj, form, change):
        """Through the services, which check the namespace (create) and admin (change)."""
        try:
            if change:
                if not self.allows(request, obj, Action.ADMIN):
                    raise PermissionDenied("You are not an admin of this repository.")
                # The form has already set the new values on obj: compare from the row.
                services.repository_update(
                    repository=Repository.objects.get(pk=obj.pk),
                    is_public=obj.is_public,
                    immutable_tags=obj.immutable_tags,
                    description=obj.description,
                )
            else:
                created = services.repository_create_in_namespace(
                    actor=request.user,
                    namespace_name=obj.namespace.name,
                    name=obj.name,
                    is_public=obj.is_public,
                    immutable_tags=obj.immutable_tags,
                    description=obj.description,
                )
                obj.pk, obj.created_by, obj.created_at = (
                    created.pk,
                    created.created_by,
                    created.created_at,
                )
        except PortalError as error:
            raise PermissionDenied(error.message) from error

    def delete_model(self, request, obj):
        services.repository_delete(repository=obj)

    @admin.display(description="name", ordering="name")
    def full_name(self, obj):
        return obj.full_name

    @admin.display(description="tags")
    def tag_count(self, obj):
        return obj.tags.count()


@admin.register(Tag)
class TagAdmin(RestrictedReadOnlyAdmin):
    list_display = ("__str__", "short_digest", "pushed_by", "pushed_at", "promoted_from")
    list_filter = ("repository__namespace", ("provenance", admin.EmptyFieldListFilter))
    search_fields = ("name", "repository__name", "manifest__digest")
    list_select_related = ("repository__namespace", "manifest", "pushed_by")
    readonly_fields = ("repository", "name", "manifest", "pushed_by", "pushed_at", "provenance")
    date_hierarchy = "pushed_at"

    def has_delete_permission(self, request, obj=None):
        # The bulk action is offered; each row is checked again, and the service has the
        # last word (immutable tags, REGISTRY_DELETE_ENABLED).
        if obj is None:
            return self.has_module_permission(request)
        return self.allows(request, obj, Action.DELETE)

    def delete_model(self, request, obj):
        try:
            services.tag_delete(tag=obj, actor=request.user)
        except PortalError as error:
            raise PermissionDenied(error.message) from error

    def delete_queryset(self, request, queryset):
        allowed = queryset.restrict(request.user, Action.DELETE)
        for tag in allowed.select_related("manifest", "repository__namespace"):
            try:
                services.tag_delete(tag=tag, actor=request.user)
            except PortalError as error:
                self.message_user(request, f"{tag}: {error.message}", messages.ERROR)

    @admin.display(description="digest")
    def short_digest(self, obj):
        return obj.manifest.digest[:19]

    @admin.display(description="promoted from")
    def promoted_from(self, obj):
        return _provenance_text(obj.provenance)


@admin.register(TagEvent)
class TagEventAdmin(RestrictedReadOnlyAdmin):
    list_display = ("created_at", "repository", "tag_name", "old_digest", "new_digest", "actor")
    list_filter = ("repository__namespace",)
    search_fields = ("tag_name", "repository__name", "old_digest", "new_digest")
    list_select_related = ("repository__namespace", "actor")
    date_hierarchy = "created_at"


@admin.register(Manifest)
class ManifestAdmin(RestrictedReadOnlyAdmin):
    list_display = ("digest", "media_type", "size", "artifact_type", "created_at")
    list_filter = ("media_type",)
    search_fields = ("digest", "subject_digest", "config_digest")
    exclude = ("content", "blobs", "children")
    readonly_fields = ("pretty_content",)

    @admin.display(description="content")
    def pretty_content(self, obj):
        return format_html("<pre>{}</pre>", bytes(obj.content).decode("utf-8", "replace"))


@admin.register(Blob)
class BlobAdmin(ReadOnlyAdmin):
    list_display = ("digest", "size", "created_at")
    search_fields = ("digest",)

    def has_module_permission(self, request):
        return request.user.is_superuser

    has_view_permission = has_module_permission


@admin.register(Upload)
class UploadAdmin(ReadOnlyAdmin):
    list_display = ("id", "repository", "offset", "created_by", "updated_at")
    list_select_related = ("repository__namespace", "created_by")

    def has_module_permission(self, request):
        return request.user.is_superuser

    has_view_permission = has_module_permission
