"""Admin building blocks shared by every app: admins restricted by the permission rule,
read-only admins, and inlines that follow their parent admin's permission rules.

``RestrictedAdminMixin`` takes the changelist's queryset, the row checks, the foreign-key
choices of the add and change forms, and the choices of the relation list filters from the
one permission expression (``<Model>.objects.restrict(user, action)``), as NetBox does.

Django asks inlines for model permissions (``add_team`` …), which our non-superuser org admins
and team leads do not have: what they may do is answered by the permission function, through
the parent admin. An inline here may do what the parent lets the user do to the parent object.
"""

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path

from registry_portal.accounts.choices import Action
from registry_portal.accounts.permissions import RestrictedQuerySet


def restricted(model, user, action: str):
    """``model``'s rows on which ``user`` may take ``action``; None for a model the rule does not
    cover (users, OSV data)."""
    queryset = model._default_manager.all()
    if isinstance(queryset, RestrictedQuerySet):
        return queryset.restrict(user, action)
    return None


class RestrictedRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A relation filter that names only objects the user may see.

    Django's offers every row of the related table: a private policy of another organization,
    an organization one is not in.
    """

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        allowed = restricted(field.related_model, request.user, Action.PULL)
        return field.get_choices(
            include_blank=False,
            ordering=ordering,
            limit_choices_to={"pk__in": allowed.values("pk")},
        )


def _restricted_list_filter(model, entry):
    """A relation filter on a model the rule covers becomes a restricted one."""
    if not isinstance(entry, str):
        return entry
    try:
        field = get_fields_from_path(model, entry)[-1]
    except Exception:  # noqa: BLE001 - not a field path: Django reports it itself
        return entry
    related = field.related_model if field.is_relation else None
    if related is not None and restricted(related, None, Action.PULL) is not None:
        return (entry, RestrictedRelatedFieldListFilter)
    return entry


def restrict_formfield_choices(db_field, request, kwargs, action: str) -> None:
    """Limit a foreign-key or many-to-many field's choices to rows ``action`` is allowed on."""
    if "queryset" in kwargs:
        return
    allowed = restricted(db_field.related_model, request.user, action)
    if allowed is not None:
        kwargs["queryset"] = allowed


class RestrictedAdminMixin:
    """Everything the admin shows or offers comes from ``restrict(user, action)``.

    - ``view_action``: the changelist and every row check for viewing;
    - ``change_action`` / ``delete_action``: the row checks for changing and deleting;
    - ``choice_action``: what the add and change forms may point a foreign key at (you may
      only attach things to what you administer);
    - relation list filters offer only what the user may see.
    """

    view_action = Action.PULL
    change_action = Action.ADMIN
    delete_action = Action.ADMIN
    choice_action = Action.ADMIN

    def get_queryset(self, request):
        return super().get_queryset(request).restrict(request.user, self.view_action)

    def allows(self, request, obj, action: str) -> bool:
        """The row check: the same expression as the list, asked about one row."""
        return self.model._default_manager.restrict(request.user, action).filter(pk=obj.pk).exists()

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        if obj is None:
            return self.has_module_permission(request)
        return self.has_module_permission(request) and self.allows(request, obj, self.view_action)

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return self.has_module_permission(request)
        return self.has_module_permission(request) and self.allows(request, obj, self.change_action)

    def has_delete_permission(self, request, obj=None):
        if obj is None:
            return self.has_module_permission(request)
        return self.has_module_permission(request) and self.allows(request, obj, self.delete_action)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        restrict_formfield_choices(db_field, request, kwargs, self.choice_action)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        restrict_formfield_choices(db_field, request, kwargs, self.choice_action)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_list_filter(self, request):
        return [
            _restricted_list_filter(self.model, entry) for entry in super().get_list_filter(request)
        ]


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

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        restrict_formfield_choices(db_field, request, kwargs, Action.ADMIN)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


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


class RestrictedReadOnlyAdmin(RestrictedAdminMixin, ReadOnlyAdmin):
    """Read-only rows, seen as the permission rule allows."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
