"""The project's error hierarchy. Services raise these; each surface maps them to its format
(OCI error codes on /v2/, field errors in forms and the REST API)."""


class PortalError(Exception):
    """Base of every error a service raises on purpose."""

    default_message = "The request could not be carried out."

    def __init__(self, message: str | None = None, *, field: str | None = None, detail=None):
        self.message = message or self.default_message
        self.field = field
        self.detail = detail
        super().__init__(self.message)


class ValidationFailed(PortalError):
    """Bad input: nothing was changed."""

    default_message = "The input is not valid."


class PermissionDenied(PortalError):
    """The caller may not do this."""

    default_message = "You do not have permission to do this."


class NotFound(PortalError):
    default_message = "Not found."


class Conflict(PortalError):
    """The request is valid but conflicts with the current state (e.g. an immutable tag)."""

    default_message = "This conflicts with the current state."


class TagImmutable(Conflict):
    default_message = "The tag is immutable in this repository and cannot be moved."
