"""Routes of the REST API: /api/v1/ (each app's endpoints), /api/schema/ (OpenAPI 3) and
/api/docs/ (Swagger UI, served with its assets from this server). Any other URL under /api/
is a 404 in the API's error shape, not a page."""

from django.http import JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from .exceptions import error_body


@csrf_exempt  # it changes nothing, whatever the method: answer 404, not a CSRF page
def not_found(request, *args, **kwargs):
    """An API URL that names nothing (e.g. a malformed id)."""
    body = error_body(code="not_found", message="No such API endpoint or object.")
    return JsonResponse(body, status=404)


v1 = [
    path("", include("registry_portal.accounts.api.urls")),
    path("", include("registry_portal.registry.api.urls")),
    path("", include("promotions.api.urls")),
    path("", include("scanning.api.urls")),
]

urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^.*$", not_found),
]
