"""Admin for organizations, teams, grants and access tokens.

Non-superusers see and manage only what the permission function lets them: an org admin
manages their organizations, its teams and grants; everyone manages their own tokens.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from django.utils.html import format_html

from registry_portal.admin_base import RestrictedAdminMixin, TabularInline
from registry_portal.errors import PortalError

from . import services
from .choices import Action
from .models import AccessToken, Organization, OrganizationMembership, RepositoryAccess, Team


class OrgScopedAdmin(RestrictedAdminMixin, admin.ModelAdmin):
    """Scoped to the organizations the user administers: listed, changed and offered as
    choices through ``restrict(user, ADMIN)``."""

    view_action = Action.ADMIN

    def has_module_permission(self, request):
        return (
            request.user.is_active
            and request.user.is_staff
            and Organization.objects.restrict(request.user, Action.ADMIN).exists()
        )

    def has_add_permission(self, request):
        return self.has_module_permission(request)


class MembershipInline(TabularInline):
    model = OrganizationMembership
    extra = 0
    autocomplete_fields = ("user",)


class TeamInline(TabularInline):
    model = Team
    extra = 0
    fields = ("name", "description")
    show_change_link = True


class GrantInline(TabularInline):
    model = RepositoryAccess
    extra = 0
    autocomplete_fields = ("repository",)


@admin.register(Organization)
class OrganizationAdmin(OrgScopedAdmin):
    list_display = ("name", "display_name", "kind", "repository_count", "created_at")
    list_filter = (("owner", admin.EmptyFieldListFilter),)
    search_fields = ("name", "display_name", "owner__username")
    inlines = (MembershipInline, TeamInline)
    readonly_fields = ("created_at",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("owner")

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        # The name is part of every repository's name: fixed once created.
        return ("name", "owner", "created_at") if obj else ("created_at",)

    @admin.display(description="kind")
    def kind(self, obj):
        return f"personal ({obj.owner})" if obj.is_personal else "organization"

    @admin.display(description="repositories")
    def repository_count(self, obj):
        return obj.repositories.count()


@admin.register(Team)
class TeamAdmin(OrgScopedAdmin):
    list_display = ("name", "organization", "member_count", "grant_summary")
    list_filter = ("organization",)
    search_fields = ("name", "organization__name", "members__username")
    filter_horizontal = ("members",)
    inlines = (GrantInline,)
    list_select_related = ("organization",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("members", "grants__repository")

    @admin.display(description="members")
    def member_count(self, obj):
        return len(obj.members.all())

    @admin.display(description="access")
    def grant_summary(self, obj):
        return ", ".join(
            f"{g.get_level_display()} on {g.repository.name if g.repository else '*'}"
            for g in obj.grants.all()
        )


@admin.register(OrganizationMembership)
class MembershipAdmin(OrgScopedAdmin):
    list_display = ("user", "organization", "is_admin", "created_at")
    list_filter = ("is_admin", "organization")
    search_fields = ("user__username", "organization__name")
    autocomplete_fields = ("user",)
    list_select_related = ("user", "organization")


@admin.register(RepositoryAccess)
class RepositoryAccessAdmin(OrgScopedAdmin):
    list_display = ("team", "level", "target")
    list_filter = ("level", "team__organization")
    search_fields = ("team__name", "repository__name")
    autocomplete_fields = ("repository",)
    list_select_related = ("team__organization", "repository__namespace")

    @admin.display(description="repository")
    def target(self, obj):
        return obj.repository or f"every repository of {obj.team.organization}"

    def get_readonly_fields(self, request, obj=None):
        # A grant is a team's level on a target: to move it, revoke it and grant anew.
        return ("team", "repository") if obj else ()

    def save_model(self, request, obj, form, change):
        """Through the service, which checks again that the user administers the team's
        organization and that the repository is in it."""
        try:
            grant = services.access_grant(
                actor=request.user, team=obj.team, level=obj.level, repository=obj.repository
            )
        except PortalError as error:
            raise PermissionDenied(error.message) from error
        obj.pk = grant.pk

    def delete_model(self, request, obj):
        services.access_revoke(actor=request.user, grant=obj)

    def delete_queryset(self, request, queryset):
        for grant in queryset.restrict(request.user, Action.ADMIN).select_related("team"):
            services.access_revoke(actor=request.user, grant=grant)


@admin.register(AccessToken)
class AccessTokenAdmin(admin.ModelAdmin):
    """Personal access tokens: each user sees their own; the secret is shown once."""

    list_display = ("name", "user", "prefix", "created_at", "expires_at", "last_used_at", "state")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "user__username", "prefix")
    fields = ("name", "expires_at", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    actions = ("revoke",)

    def get_form(self, request, obj=None, **kwargs):
        form_class = super().get_form(request, obj, **kwargs)

        class TokenForm(form_class):
            def clean_name(self):
                name = self.cleaned_data["name"].strip()
                if AccessToken.objects.filter(user=request.user, name=name).exists():
                    raise forms.ValidationError("You already have a token with this name.")
                return name

            def clean_expires_at(self):
                expires_at = self.cleaned_data.get("expires_at")
                if expires_at is not None and expires_at <= timezone.now():
                    raise forms.ValidationError("The expiry must be in the future.")
                return expires_at

        return TokenForm

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("user")
        return queryset if request.user.is_superuser else queryset.filter(user=request.user)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request) and (
            obj is None or request.user.is_superuser or obj.user_id == request.user.pk
        )

    has_add_permission = has_module_permission

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return self.has_view_permission(request, obj)

    @admin.display(description="state")
    def state(self, obj):
        return "revoked" if obj.revoked_at else "active"

    def save_model(self, request, obj, form, change):
        token, secret = services.access_token_create(
            user=request.user, name=obj.name, expires_at=obj.expires_at
        )
        obj.pk, obj.user, obj.prefix = token.pk, token.user, token.prefix
        self.message_user(
            request,
            format_html(
                "Your new token is <code>{}</code>. Copy it now: it is not shown again.", secret
            ),
            messages.SUCCESS,
        )

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        for token in queryset:
            services.access_token_revoke(token=token)
