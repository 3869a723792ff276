"""Django validators of registry names (model fields, forms and serializers), all asking the
one grammar in ``registry_portal.grammar``."""

from django.core.exceptions import ValidationError

from registry_portal import grammar


def validate_repository_path(value: str) -> None:
    """A repository's name within its namespace: path components separated by '/'."""
    if not grammar.is_valid_repository_name(value):
        raise ValidationError(
            f"Not a valid repository name: {grammar.REPOSITORY_NAME_RULES}.",
            code="invalid_repository_name",
        )


def validate_tag(value: str) -> None:
    if not grammar.is_valid_tag(value):
        raise ValidationError(f"Not a valid tag: {grammar.TAG_RULES}.", code="invalid_tag")


def validate_digest(value: str) -> None:
    if not grammar.is_valid_digest(value):
        raise ValidationError(f"Not a valid digest: {grammar.DIGEST_RULES}.", code="invalid_digest")


def validate_media_type(value: str) -> None:
    if not grammar.is_valid_media_type(value):
        raise ValidationError(
            f"Not a valid media type: {grammar.MEDIA_TYPE_RULES}.", code="invalid_media_type"
        )
