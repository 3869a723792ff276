"""URL routes of the portal."""

from django.contrib import admin
from django.urls import include, path

from registry_portal.registry import token_views

urlpatterns = [
    path("", include("registry_portal.observability.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("registry_portal.api.urls")),
    path("", include("registry_portal.registry.urls")),
    path("auth/token", token_views.token, name="registry-token"),
    path("", include("registry_portal.accounts.urls")),
    path("", include("registry_portal.registry.urls_pages")),
    path("", include("promotions.urls")),
]

# Under /api/ these answer in the API's error shape; elsewhere Django's own pages.
handler400 = "registry_portal.api.exceptions.bad_request"
handler500 = "registry_portal.api.exceptions.server_error"
