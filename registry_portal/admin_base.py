"""Admin building blocks shared by every app: read-only admins, and inlines that follow
their parent admin's permission rules.

Django asks inlines for model permissions (``add_team`` …), which our non-superuser org admins
and team leads do not have: what they may do is answered by the permission function, through
the parent admin. An inline here may do what the parent lets the user do to the parent object.
"""

from django.contrib import admin


class ParentPermissionInlineMixin:
    def _parent_allows(self, request, obj) -> bool:
        parent = self.admin_site._registry.get(self.parent_model)
        if parent is None:
            return False
        if obj is None:
            return parent.has_add_permission(request)
        return parent.has_change_permission(request, obj)

    def has_view_permission(self, request, obj=None):
        parent = self.admin_site._registry.get(self.parent_model)
        return parent is not None and parent.has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return self._parent_allows(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._parent_allows(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._parent_allows(request, obj)


class TabularInline(ParentPermissionInlineMixin, admin.TabularInline):
    """A tabular inline with its parent's permissions."""


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows only the system writes (content-addressed data, histories, records, reports)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
