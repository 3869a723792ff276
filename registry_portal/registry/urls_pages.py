"""Routes of the repository pages (the /v2/ API has its own, in ``urls.py``).

Repository names contain '/', so a tab comes after a ``/-/`` separator, as on GitLab:
``/repos/dev/website/-/tags/`` can never be mistaken for a repository named
``website/tags``.
"""

from django.urls import re_path

from registry_portal import grammar

from . import pages

app_name = "repos"
# The name grammar's own patterns: a URL matches only names that can exist, and a name that
# cannot is refused before it is stored, so reversing a stored name always succeeds.
REPOSITORY = (
    rf"^repos/(?P<namespace>{grammar.PATH_COMPONENT_PATTERN})"
    rf"/(?P<name>{grammar.REPOSITORY_NAME_PATTERN})"
)
TAG = rf"{REPOSITORY}/-/tags/(?P<tag>{grammar.TAG_PATTERN})"

urlpatterns = [
    re_path(rf"{REPOSITORY}/$", pages.RepositoryOverviewView.as_view(), name="overview"),
    re_path(rf"{REPOSITORY}/-/tags/$", pages.RepositoryTagsView.as_view(), name="tags"),
    re_path(
        rf"{TAG}/vulnerabilities/$",
        pages.TagVulnerabilitiesView.as_view(),
        name="tag-vulnerabilities",
    ),
    re_path(rf"{TAG}/components/$", pages.TagComponentsView.as_view(), name="tag-components"),
    re_path(rf"{TAG}/scan/retry/$", pages.TagScanRetryView.as_view(), name="tag-scan-retry"),
    re_path(rf"{REPOSITORY}/-/settings/$", pages.RepositorySettingsView.as_view(), name="settings"),
    re_path(
        rf"{REPOSITORY}/-/settings/access/(?P<grant_id>[0-9]+)/revoke/$",
        pages.RepositoryAccessRevokeView.as_view(),
        name="access-revoke",
    ),
]
