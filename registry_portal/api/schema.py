"""OpenAPI schema (drf-spectacular): the error responses of every operation, and how the
personal access tokens authenticate.

Errors are added here once rather than on each view, so no endpoint can forget them:

- 401 everywhere (a bad token is refused on any endpoint);
- 400 when the operation takes a body, query filters or a page;
- 403 and 409 on writes (permission; conflict such as an immutable tag);
- 404 when the path names an object, and on paginated lists (an invalid page or cursor).
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers

ERROR_DESCRIPTIONS = {
    "400": "Invalid input; `fields` holds the errors per field. Nothing was changed.",
    "401": "Not authenticated, or the token is unknown, revoked or expired.",
    "403": "Authenticated, but not allowed to do this.",
    "404": "Not found, or not visible to the caller.",
    "409": "Conflicts with the current state (for example an immutable tag).",
}


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Machine-readable: invalid, not_found, ...")
    message = serializers.CharField(help_text="For people.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Field errors, by field (dotted for nested ones: `rules.0`).",
    )


class ErrorSerializer(serializers.Serializer):
    """The one shape of every error of the API."""

    error = ErrorDetailSerializer()


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's schema, with the error responses of each operation."""

    def _error_codes(self) -> list[str]:
        codes = ["401"]
        writes = self.method not in ("GET", "HEAD", "OPTIONS")
        has_path_object = "{" in self.path
        is_list = self.method == "GET" and self._is_list_view()
        if writes or is_list or self.get_filter_backends():
            codes.append("400")
        if writes:
            codes += ["403", "409"]
        if has_path_object or is_list:
            codes.append("404")
        return sorted(codes)

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorSerializer, code)
                responses[code]["description"] = ERROR_DESCRIPTIONS[code]
        return responses


class AccessTokenScheme(OpenApiAuthenticationExtension):
    target_class = "registry_portal.api.authentication.AccessTokenAuthentication"
    name = "accessToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal access token (`rpat_...`), as `Authorization: Bearer "
            "<token>`; `Authorization: Token <token>` works too.",
        }
