"""The one grammar of names: repository names and namespaces, tags, digests, references and
media types. Every surface asks here (/v2/, services, page URLs, forms, the API, model fields
and the promotion engine); none keeps a copy.

The patterns are the OCI distribution spec's and the image spec's. Every check is a
``fullmatch``: a pattern ending in ``$`` and used with ``re.match`` also accepts a trailing
newline (``$`` matches before a final ``\\n``), which once let ``stable\\n`` become a tag.

Pure: no Django, no I/O. The ``*_PATTERN`` strings are unanchored so that URL patterns can
embed them; the ``is_valid_*`` functions are the checks.
"""

import re

# One path component of a repository name; a namespace is one component.
PATH_COMPONENT_PATTERN = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
REPOSITORY_NAME_PATTERN = rf"{PATH_COMPONENT_PATTERN}(?:/{PATH_COMPONENT_PATTERN})*"
MAX_REPOSITORY_NAME_LENGTH = 255
REPOSITORY_NAME_RULES = (
    "lowercase letters and digits in components separated by '/'; within a component, "
    "single '.', '_', '__' or dashes between letters and digits; at most "
    f"{MAX_REPOSITORY_NAME_LENGTH} characters"
)
NAMESPACE_RULES = (
    "Use lowercase letters and digits, separated by single '.', '_', '__' or dashes; "
    "start and end with a letter or digit."
)

MAX_TAG_LENGTH = 128
TAG_CHARACTER_PATTERN = r"[A-Za-z0-9._-]"
TAG_PATTERN = rf"[A-Za-z0-9_]{TAG_CHARACTER_PATTERN}{{0,{MAX_TAG_LENGTH - 1}}}"
TAG_RULES = (
    f"up to {MAX_TAG_LENGTH} letters, digits, '_', '.' and '-', not starting with '.' or '-'"
)

DIGEST_HEX_LENGTHS = {"sha256": 64, "sha512": 128}
DIGEST_PATTERN = "|".join(
    f"{algorithm}:[a-f0-9]{{{length}}}" for algorithm, length in DIGEST_HEX_LENGTHS.items()
)
DIGEST_RULES = " or ".join(
    f"{algorithm}:<{length} lowercase hex>" for algorithm, length in DIGEST_HEX_LENGTHS.items()
)

# A manifest reference: a tag or a digest (tags have no ':', so the two never overlap).
REFERENCE_PATTERN = rf"{TAG_PATTERN}|{DIGEST_PATTERN}"

# RFC 6838 type/subtype, as the image spec's JSON schema writes it (no parameters).
_MEDIA_TYPE_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
MEDIA_TYPE_PATTERN = rf"{_MEDIA_TYPE_NAME}/{_MEDIA_TYPE_NAME}"
MEDIA_TYPE_RULES = "type/subtype (RFC 6838), e.g. application/vnd.oci.image.manifest.v1+json"

_PATH_COMPONENT = re.compile(PATH_COMPONENT_PATTERN)
_REPOSITORY_NAME = re.compile(REPOSITORY_NAME_PATTERN)
_TAG = re.compile(TAG_PATTERN)
_TAG_CHARACTERS = re.compile(f"{TAG_CHARACTER_PATTERN}+")
_DIGEST = re.compile(DIGEST_PATTERN)
_MEDIA_TYPE = re.compile(MEDIA_TYPE_PATTERN)


def _matches(pattern: re.Pattern, value: object) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def is_valid_namespace(name: str) -> bool:
    """An organization's or a user's namespace (also a team's name): one path component."""
    return _matches(_PATH_COMPONENT, name)


def is_valid_repository_name(name: str) -> bool:
    """A full repository name, ``<namespace>/<path>``; one component passes too (the /v2/
    views then ask for a namespace with a precise message)."""
    # The length first: the URL gives names of any length.
    return (
        isinstance(name, str)
        and len(name) <= MAX_REPOSITORY_NAME_LENGTH
        and _matches(_REPOSITORY_NAME, name)
    )


def is_valid_tag(tag: str) -> bool:
    return _matches(_TAG, tag)


def is_tag_fragment(text: str) -> bool:
    """Text that can be part of a tag: only tag characters, at most a tag's length."""
    return isinstance(text, str) and len(text) <= MAX_TAG_LENGTH and _matches(_TAG_CHARACTERS, text)


def is_tag_character(character: str) -> bool:
    return len(character) == 1 and _matches(_TAG_CHARACTERS, character)


def is_valid_digest(digest: str) -> bool:
    """``sha256:`` with 64 or ``sha512:`` with 128 lowercase hex digits."""
    return _matches(_DIGEST, digest)


def is_valid_reference(reference: str) -> bool:
    """A manifest reference: a tag or a digest."""
    return is_valid_tag(reference) or is_valid_digest(reference)


def is_digest_reference(reference: str) -> bool:
    """Whether a reference is meant as a digest (it has a ':', which no tag has); it may
    still be an invalid one."""
    return ":" in reference


def is_valid_media_type(media_type: str) -> bool:
    return _matches(_MEDIA_TYPE, media_type)
