"""Routes of the repository pages (the /v2/ API has its own, in ``urls.py``).

Repository names contain '/', so a tab comes after a ``/-/`` separator, as on GitLab:
``/repos/dev/website/-/tags/`` can never be mistaken for a repository named
``website/tags``.
"""

from django.urls import re_path

from . import pages

app_name = "repos"
# A path component of a repository name never starts with '-' (OCI distribution spec).
REPOSITORY = r"^repos/(?P<namespace>[a-z0-9][^/]*)/(?P<name>[^-/][^/]*(?:/[^-/][^/]*)*)"

urlpatterns = [
    re_path(rf"{REPOSITORY}/$", pages.RepositoryOverviewView.as_view(), name="overview"),
    re_path(rf"{REPOSITORY}/-/tags/$", pages.RepositoryTagsView.as_view(), name="tags"),
    re_path(rf"{REPOSITORY}/-/settings/$", pages.RepositorySettingsView.as_view(), name="settings"),
    re_path(
        rf"{REPOSITORY}/-/settings/access/(?P<grant_id>[0-9]+)/revoke/$",
        pages.RepositoryAccessRevokeView.as_view(),
        name="access-revoke",
    ),
]
