"""Pages of accounts: sign-in and out, home (my organizations and repositories),
organization pages (repositories, teams) and team pages where org admins manage members
and grants.

Everything shown is what the permission function allows: repositories come from
``Repository.objects.restrict(user, action)``; an organization is shown to its members and to
those who may see one of its repositories, and is a 404 for anyone else; teams are shown to
members; only org admins get (and may post) the management forms.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Exists, IntegerField, Max, OuterRef, Prefetch, Q, Subquery
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.generic import TemplateView

from registry_portal.errors import PortalError
from registry_portal.registry.filtersets import RepositoryFilterSet
from registry_portal.registry.models import Repository, Tag

from . import services
from .choices import Action
from .forms import LoginForm, TeamCreateForm, TeamGrantForm, TeamMemberForm
from .models import Organization, OrganizationMembership, RepositoryAccess, Team
from .permissions import organization_is_admin

REPOSITORIES_PER_PAGE = 25


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    next_page = "accounts:login"


def repositories_with_stats(queryset):
    """Repositories with their tag count and last push, as subqueries: computed only for
    the rows of the page, however many repositories there are."""
    tags = Tag.objects.filter(repository=OuterRef("pk")).order_by()
    return queryset.select_related("namespace").annotate(
        tag_total=Subquery(
            tags.values("repository").annotate(n=Count("pk")).values("n"),
            output_field=IntegerField(),
        ),
        last_push=Subquery(tags.values("repository").annotate(at=Max("pushed_at")).values("at")),
    )


def repository_page(request, queryset):
    """Search (``q``, the shared ``RepositoryFilterSet``) and a page (``page``)."""
    filterset = RepositoryFilterSet({"q": request.GET.get("q", "")[:255]}, queryset=queryset)
    paginator = Paginator(
        repositories_with_stats(filterset.qs.order_by("namespace__name", "name")),
        REPOSITORIES_PER_PAGE,
    )
    return filterset.form, filterset.data["q"].strip(), paginator.get_page(request.GET.get("page"))


class HomeView(LoginRequiredMixin, TemplateView):
    """My organizations, and the repositories I can see."""

    template_name = "accounts/home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        administered = Organization.objects.restrict(user, Action.ADMIN)
        organizations = (
            Organization.objects.filter(Q(memberships__user=user) | Q(owner=user))
            .distinct()
            .annotate(is_admin=Exists(administered.filter(pk=OuterRef("pk"))))
            .order_by("name")
        )
        search, query, page = repository_page(
            self.request, Repository.objects.restrict(user, Action.PULL)
        )
        context.update(organizations=organizations, search=search, query=query, page=page)
        return context


class OrganizationMixin(LoginRequiredMixin):
    """Loads the organization of the URL; a 404 for those with nothing to see in it."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.organization = get_object_or_404(Organization, name=kwargs["org"])
        user = request.user
        self.is_admin = organization_is_admin(user, self.organization)
        self.is_member = (
            self.is_admin
            or OrganizationMembership.objects.filter(
                organization=self.organization, user=user
            ).exists()
        )
        if not self.is_member and not (
            Repository.objects.restrict(user, Action.PULL)
            .filter(namespace=self.organization)
            .exists()
        ):
            raise Http404("No such organization.")
        return super().dispatch(request, *args, **kwargs)

    def require_admin(self) -> None:
        if not self.is_admin:
            raise PermissionDenied("Only the organization's admins may manage its teams.")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            organization=self.organization, is_admin=self.is_admin, is_member=self.is_member
        )
        return context


def team_url(team: Team) -> str:
    return reverse("accounts:team", kwargs={"org": team.organization.name, "team": team.name})


class OrganizationView(OrganizationMixin, TemplateView):
    """An organization: its repositories (search, pages) and, for members, its teams."""

    template_name = "accounts/organization.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        visible = Repository.objects.restrict(self.request.user, Action.PULL).filter(
            namespace=self.organization
        )
        search, query, page = repository_page(self.request, visible)
        context.update(search=search, query=query, page=page)
        if self.is_member:
            context["teams"] = Team.objects.filter(organization=self.organization).prefetch_related(
                "members", Prefetch("grants", queryset=_grants(self.request.user))
            )
        context.setdefault("team_form", TeamCreateForm())
        return context

    def post(self, request, *args, **kwargs):
        self.require_admin()
        form = TeamCreateForm(request.POST)
        if form.is_valid():
            try:
                team = services.team_create(
                    organization=self.organization,
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                messages.success(request, f"Team {team.name} created.")
                return HttpResponseRedirect(team_url(team))
        return self.render_to_response(self.get_context_data(team_form=form), status=400)


def _grants(user):
    """The grants a user may see (not those on repositories they may not pull)."""
    return (
        RepositoryAccess.objects.restrict(user, Action.PULL)
        .select_related("repository__namespace")
        .order_by("repository__name")
    )


class TeamView(OrganizationMixin, TemplateView):
    """A team: its members and grants. Org admins add and remove both, or delete the team.

    The page holds several forms; the submit button's ``form`` value says which is posted.
    """

    template_name = "accounts/team.html"

    def get_team(self) -> Team:
        if not self.is_member:
            raise Http404("No such team.")
        return get_object_or_404(
            Team.objects.prefetch_related(
                "members", Prefetch("grants", queryset=_grants(self.request.user))
            ),
            organization=self.organization,
            name=self.kwargs["team"],
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["team"] = kwargs.get("team_object") or self.get_team()
        context.setdefault("member_form", TeamMemberForm())
        context.setdefault("grant_form", TeamGrantForm(organization=self.organization))
        return context

    def post(self, request, *args, **kwargs):
        team = self.get_team()
        self.require_admin()
        action = request.POST.get("form")
        if action == "member":
            form = TeamMemberForm(request.POST)
            if form.is_valid():
                services.team_add_member(team=team, user=form.cleaned_data["user"])
                messages.success(request, f"{form.cleaned_data['username']} joined {team.name}.")
                return HttpResponseRedirect(team_url(team))
            return self.invalid(team, member_form=form)
        if action == "grant":
            form = TeamGrantForm(request.POST, organization=self.organization)
            if form.is_valid():
                try:
                    services.access_grant(
                        actor=request.user,
                        team=team,
                        level=form.cleaned_data["level"],
                        repository=form.cleaned_data["repository"],
                    )
                except PortalError as error:
                    form.add_error(
                        error.field if error.field in form.fields else None, error.message
                    )
                else:
                    messages.success(request, f"Access of {team.name} saved.")
                    return HttpResponseRedirect(team_url(team))
            return self.invalid(team, grant_form=form)
        if action == "remove-member":
            member = get_object_or_404(team.members, pk=request.POST.get("user"))
            services.team_remove_member(team=team, user=member)
            messages.success(request, f"{member.get_username()} left {team.name}.")
            return HttpResponseRedirect(team_url(team))
        if action == "revoke":
            grant = get_object_or_404(team.grants, pk=request.POST.get("grant"))
            services.access_revoke(actor=request.user, grant=grant)
            messages.success(request, f"The grant of {team.name} was removed.")
            return HttpResponseRedirect(team_url(team))
        if action == "delete":
            services.team_delete(team=team)
            messages.success(request, f"Team {team.name} deleted.")
            return HttpResponseRedirect(
                reverse("accounts:organization", kwargs={"org": self.organization.name})
            )
        raise Http404("Unknown form.")

    def invalid(self, team, **forms):
        return self.render_to_response(self.get_context_data(team_object=team, **forms), status=400)
