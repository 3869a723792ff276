"""DRF permission classes. They only ask ``accounts.permissions``: no rule is decided here.

Visibility is the queryset's job (``<Model>.objects.restrict(user, action)``): an object a
caller may not see is never found, so it is a 404 and not a 403. These classes decide what a
caller who can see an object may do to it.
"""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from registry_portal.accounts.choices import Action
from registry_portal.accounts.permissions import (
    organization_is_admin,
    platform_is_admin,
    repository_allows,
)


class ReadOrAuthenticated(BasePermission):
    """Anyone may read what they can see; writes need an authenticated caller."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return request.method in SAFE_METHODS or bool(user and user.is_authenticated)


class Authenticated(BasePermission):
    """Only an authenticated caller (the current user and their tokens)."""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated)


class RepositoryAdminForWrites(ReadOrAuthenticated):
    """Changing or deleting a repository needs admin on it."""

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in SAFE_METHODS:
            return repository_allows(request.user, obj, Action.PULL)
        return repository_allows(request.user, obj, Action.ADMIN)


class TagDeleteRight(ReadOrAuthenticated):
    """Deleting a tag needs the delete right on its repository."""

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in SAFE_METHODS:
            return repository_allows(request.user, obj.repository, Action.PULL)
        return repository_allows(request.user, obj.repository, Action.DELETE)


class OrganizationAdminForWrites(ReadOrAuthenticated):
    """Changing an organization, or its teams, members and grants, needs org admin.

    The view names the organization an object belongs to (``permission_organization``).
    """

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return organization_is_admin(request.user, view.permission_organization(obj))


class SuperuserCreates(OrganizationAdminForWrites):
    """Only superusers create organizations (personal namespaces come with their users)."""

    def has_permission(self, request, view) -> bool:
        if request.method == "POST":
            return platform_is_admin(request.user)
        return super().has_permission(request, view)


class OrganizationAdmin(Authenticated):
    """Org admins only, even to read (an organization's member list)."""

    def has_object_permission(self, request, view, obj) -> bool:
        return organization_is_admin(request.user, view.permission_organization(obj))
