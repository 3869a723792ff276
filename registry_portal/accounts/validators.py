"""Name rules shared by namespaces, teams and repositories (the OCI name grammar)."""

import re

from django.core.validators import RegexValidator

# One path component of an OCI repository name.
PATH_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAMESPACE_RE = re.compile(rf"^{PATH_COMPONENT}$")

validate_namespace_name = RegexValidator(
    NAMESPACE_RE,
    "Use lowercase letters and digits, separated by single '.', '_', '__' or dashes; "
    "start and end with a letter or digit.",
    code="invalid_namespace",
)


def slugify_username(username: str) -> str:
    """The personal namespace name for a username: OCI-compatible, lowercase."""
    lowered = username.lower()
    cleaned = re.sub(r"[^a-z0-9]+", "-", lowered).strip("-")
    return cleaned or "user"
