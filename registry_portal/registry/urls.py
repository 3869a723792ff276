"""Routes of the /v2/ Distribution API.

Repository names contain '/', so routes are regexes anchored on their suffix; a catch-all
answers every other /v2/ path, which keeps CommonMiddleware's APPEND_SLASH away from /v2/.

Names, references and digests are captured whole, a newline included, on purpose: the
views check them against the one grammar (``registry_portal.grammar``) and answer
NAME_INVALID, TAG_INVALID or DIGEST_INVALID, as the distribution spec asks, where a
narrower route would answer a bare 404.
"""

from django.urls import re_path

from . import views

NAME = r"(?P<name>[\s\S]+)"

urlpatterns = [
    re_path(r"^v2/?$", views.BaseView.as_view(), name="registry-base"),
    re_path(r"^v2/_catalog$", views.CatalogView.as_view(), name="registry-catalog"),
    re_path(rf"^v2/{NAME}/tags/list$", views.TagsListView.as_view(), name="registry-tags"),
    re_path(
        rf"^v2/{NAME}/manifests/(?P<reference>[^/]+)$",
        views.ManifestView.as_view(),
        name="registry-manifest",
    ),
    re_path(
        rf"^v2/{NAME}/blobs/uploads/(?P<upload_id>[^/]+)$",
        views.UploadView.as_view(),
        name="registry-upload",
    ),
    re_path(
        rf"^v2/{NAME}/blobs/uploads/?$",
        views.UploadStartView.as_view(),
        name="registry-upload-start",
    ),
    re_path(
        rf"^v2/{NAME}/blobs/(?P<digest>[^/]+)$", views.BlobView.as_view(), name="registry-blob"
    ),
    re_path(
        rf"^v2/{NAME}/referrers/(?P<digest>[^/]+)$",
        views.ReferrersView.as_view(),
        name="registry-referrers",
    ),
    re_path(r"^v2(?:/[\s\S]*)?$", views.unknown_endpoint, name="registry-unknown"),
]
