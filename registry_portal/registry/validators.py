"""The OCI grammar for repository names, tags and digests."""

import re

from registry_portal.accounts.validators import PATH_COMPONENT

REPOSITORY_NAME_RE = re.compile(rf"^{PATH_COMPONENT}(?:/{PATH_COMPONENT})*$")
REPOSITORY_NAME_MAX = 255
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
DIGEST_RE = re.compile(r"^(?P<algorithm>sha256|sha512):(?P<hex>[a-f0-9]+)$")
DIGEST_HEX_LENGTH = {"sha256": 64, "sha512": 128}


def is_valid_repository_name(name: str) -> bool:
    return len(name) <= REPOSITORY_NAME_MAX and bool(REPOSITORY_NAME_RE.match(name))


def is_valid_tag(tag: str) -> bool:
    return bool(TAG_RE.match(tag))


def is_valid_digest(digest: str) -> bool:
    match = DIGEST_RE.match(digest)
    return bool(match) and len(match["hex"]) == DIGEST_HEX_LENGTH[match["algorithm"]]
