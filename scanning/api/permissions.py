"""Permission classes of the scanning API. Like ``registry_portal.api.permissions``, they
only ask ``accounts.permissions``; visibility is the querysets' job (a report of a manifest
in no repository the caller may see is a 404)."""

from rest_framework.permissions import BasePermission

from registry_portal.accounts.choices import Action
from registry_portal.accounts.permissions import platform_is_admin
from registry_portal.api.permissions import ReadOrAuthenticated


class PushToHoldingRepository(ReadOrAuthenticated):
    """Retrying a scan needs push on a repository that holds the report's manifest."""

    def has_object_permission(self, request, view, obj) -> bool:
        return type(obj).objects.restrict(request.user, Action.PUSH).filter(pk=obj.pk).exists()


class Superuser(BasePermission):
    """Superusers only: the OSV store is shared by every repository."""

    def has_permission(self, request, view) -> bool:
        return platform_is_admin(request.user)
