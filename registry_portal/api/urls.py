"""Routes of the REST API: /api/v1/ (each app's endpoints), /api/schema/ (OpenAPI 3) and
/api/docs/ (Swagger UI, served with its assets from this server)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

v1 = [
    path("", include("registry_portal.accounts.api.urls")),
    path("", include("registry_portal.registry.api.urls")),
    path("", include("promotions.api.urls")),
]

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
