"""Routes of a repository's Promotions and Activity tabs and of the policy form."""

from django.urls import re_path

from registry_portal.registry.urls_pages import REPOSITORY, TAG

from . import views

app_name = "promotions"
POLICY = rf"{REPOSITORY}/-/promotions/(?P<policy_id>[0-9]+)"

urlpatterns = [
    re_path(rf"{REPOSITORY}/-/promotions/$", views.PolicyListView.as_view(), name="policies"),
    re_path(rf"{REPOSITORY}/-/promotions/new/$", views.PolicyCreateView.as_view(), name="new"),
    re_path(
        rf"{REPOSITORY}/-/promotions/preview/$",
        views.TagTemplatePreviewView.as_view(),
        name="preview",
    ),
    re_path(
        rf"{REPOSITORY}/-/promotions/dry-run/$", views.PolicyDryRunView.as_view(), name="dry-run"
    ),
    re_path(rf"{POLICY}/edit/$", views.PolicyUpdateView.as_view(), name="edit"),
    re_path(rf"{POLICY}/enabled/$", views.PolicyEnableView.as_view(), name="enable"),
    re_path(rf"{POLICY}/delete/$", views.PolicyDeleteView.as_view(), name="delete"),
    re_path(rf"{TAG}/promote/$", views.TagPromoteView.as_view(), name="promote"),
    re_path(rf"{REPOSITORY}/-/activity/$", views.RepositoryActivityView.as_view(), name="activity"),
]
