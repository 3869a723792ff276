"""Admin for repositories, tags and the content-addressed data behind them.

Content-addressed rows (blobs, manifests) and the tag history are read-only. Non-superusers
see the repositories the permission function lets them see, and change only where they are
admins.
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.utils.html import format_html

from registry_portal.accounts.choices import Action
from registry_portal.accounts.models import Organization
from registry_portal.accounts.permissions import (
    namespace_may_create_repository,
    repository_allows,
)
from registry_portal.admin_base import ReadOnlyAdmin

from .models import Blob, Manifest, Repository, Tag, TagEvent, Upload


class RepositoryScopedAdmin(admin.ModelAdmin):
    """Scoped to repositories the user may see; ``repo_path`` leads from the row to them."""

    repo_path = "repository"

    def _repository_of(self, obj) -> Repository:
        return getattr(obj, self.repo_path) if self.repo_path else obj

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        visible = Repository.objects.visible_to(request.user)
        if not self.repo_path:
            return queryset.filter(pk__in=visible.values("pk"))
        return queryset.filter(**{f"{self.repo_path}__in": visible.values("pk")})

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        if obj is None:
            return self.has_module_permission(request)
        return repository_allows(request.user, self._repository_of(obj), Action.PULL)


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
class RepositoryAdmin(RepositoryScopedAdmin):
    repo_path = ""
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

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return self.has_module_permission(request)
        return repository_allows(request.user, obj, Action.ADMIN)

    has_delete_permission = has_change_permission

    def has_add_permission(self, request):
        return (
            request.user.is_superuser or Organization.objects.administered_by(request.user).exists()
        )

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "namespace" and not request.user.is_superuser:
            kwargs["queryset"] = Organization.objects.administered_by(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if not change:
            if not namespace_may_create_repository(request.user, obj.namespace.name):
                raise PermissionDenied("You may not create repositories in this namespace.")
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="name", ordering="name")
    def full_name(self, obj):
        return obj.full_name

    @admin.display(description="tags")
    def tag_count(self, obj):
        return obj.tags.count()


@admin.register(Tag)
class TagAdmin(RepositoryScopedAdmin, ReadOnlyAdmin):
    list_display = ("__str__", "short_digest", "pushed_by", "pushed_at", "promoted_from")
    list_filter = ("repository__namespace", ("provenance", admin.EmptyFieldListFilter))
    search_fields = ("name", "repository__name", "manifest__digest")
    list_select_related = ("repository__namespace", "manifest", "pushed_by")
    readonly_fields = ("repository", "name", "manifest", "pushed_by", "pushed_at", "provenance")
    date_hierarchy = "pushed_at"

    def has_delete_permission(self, request, obj=None):
        return obj is not None and repository_allows(request.user, obj.repository, Action.DELETE)

    def delete_model(self, request, obj):
        from .services import tag_delete

        tag_delete(tag=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        from .services import tag_delete

        for tag in queryset.select_related("manifest", "repository"):
            if repository_allows(request.user, tag.repository, Action.DELETE):
                tag_delete(tag=tag, actor=request.user)

    @admin.display(description="digest")
    def short_digest(self, obj):
        return obj.manifest.digest[:19]

    @admin.display(description="promoted from")
    def promoted_from(self, obj):
        return _provenance_text(obj.provenance)


@admin.register(TagEvent)
class TagEventAdmin(RepositoryScopedAdmin, ReadOnlyAdmin):
    list_display = ("created_at", "repository", "tag_name", "old_digest", "new_digest", "actor")
    list_filter = ("repository__namespace",)
    search_fields = ("tag_name", "repository__name", "old_digest", "new_digest")
    list_select_related = ("repository__namespace", "actor")
    date_hierarchy = "created_at"


@admin.register(Manifest)
class ManifestAdmin(ReadOnlyAdmin):
    list_display = ("digest", "media_type", "size", "artifact_type", "created_at")
    list_filter = ("media_type",)
    search_fields = ("digest", "subject_digest", "config_digest")
    exclude = ("content", "blobs", "children")
    readonly_fields = ("pretty_content",)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        visible = Repository.objects.visible_to(request.user).values("pk")
        return queryset.filter(repository_links__repository__in=visible).distinct()

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request) and (
            obj is None or self.get_queryset(request).filter(pk=obj.pk).exists()
        )

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
