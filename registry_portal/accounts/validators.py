"""Name rules of namespaces and teams: one component of the OCI name grammar
(``registry_portal.grammar``)."""

import re

from django.core.exceptions import ValidationError

from registry_portal import grammar


def validate_namespace_name(value: str) -> None:
    if not grammar.is_valid_namespace(value):
        raise ValidationError(grammar.NAMESPACE_RULES, code="invalid_namespace")


def slugify_username(username: str) -> str:
    """The personal namespace name for a username: OCI-compatible, lowercase."""
    lowered = username.lower()
    cleaned = re.sub(r"[^a-z0-9]+", "-", lowered).strip("-")
    return cleaned or "user"
