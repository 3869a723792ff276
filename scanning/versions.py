"""Version ordering in each ecosystem's own rules, for matching OSV ranges.

`compare(ecosystem, a, b)` returns -1, 0 or 1; `sort_key(ecosystem)` gives a key
for `sorted`. The ecosystem is an OSV ecosystem string; a release suffix is
ignored (`Debian:12` orders like `Debian`). Unknown ecosystems raise ValueError.

- Debian and Ubuntu: dpkg's epoch:upstream-revision with its '~' rules.
- Alpine, Wolfi, Chainguard: apk-tools' rules (letters, `_alpha`.. `_p`
  suffixes, `-rN`); written here because univers' Alpine class rejects `_git`.
- RPM distributions: rpmvercmp on epoch, version, release (with '~' and '^').
- PyPI: PEP 440 through `packaging`; versions it cannot parse sort before all
  valid ones, among themselves by a natural (digits as numbers) order.
- npm, Go, crates.io: semver 2.0 precedence; Go's leading 'v' is dropped, so
  pseudo-versions order as the prereleases they are; build metadata is ignored.
- Maven: univers' implementation of Maven's ComparableVersion.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from packaging.version import InvalidVersion, Version
from univers.versions import MavenVersion

Comparator = Callable[[str, str], int]


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


# --- Debian ----------------------------------------------------------------------


_DIGITS = frozenset("0123456789")
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _dpkg_order(character: str) -> int:
    if character == "~":
        return -1
    if character in _LETTERS:
        return ord(character)
    return ord(character) + 256


def _dpkg_part(a: str, b: str) -> int:
    """dpkg's verrevcmp: alternate non-digit runs (with '~' lowest) and numbers."""
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and a[i] not in _DIGITS) or (j < len(b) and b[j] not in _DIGITS):
            left = _dpkg_order(a[i]) if i < len(a) and a[i] not in _DIGITS else 0
            right = _dpkg_order(b[j]) if j < len(b) and b[j] not in _DIGITS else 0
            if left != right:
                return _sign(left - right)
            i += 1
            j += 1
        start = i
        while i < len(a) and a[i] in _DIGITS:
            i += 1
        left_number = int(a[start:i] or 0)
        start = j
        while j < len(b) and b[j] in _DIGITS:
            j += 1
        right_number = int(b[start:j] or 0)
        if left_number != right_number:
            return _sign(left_number - right_number)
    return 0


def _dpkg_split(version: str) -> tuple[int, str, str]:
    version = version.strip()
    epoch = 0
    if ":" in version:
        head, _, rest = version.partition(":")
        if head and set(head) <= _DIGITS:
            epoch, version = int(head), rest
    upstream, _, revision = version.rpartition("-")
    if not upstream:
        upstream, revision = revision, ""
    return epoch, upstream, revision


def compare_debian(a: str, b: str) -> int:
    epoch_a, upstream_a, revision_a = _dpkg_split(a)
    epoch_b, upstream_b, revision_b = _dpkg_split(b)
    if epoch_a != epoch_b:
        return _sign(epoch_a - epoch_b)
    return _dpkg_part(upstream_a, upstream_b) or _dpkg_part(revision_a, revision_b)


# --- RPM -------------------------------------------------------------------------

_RPM_SEGMENT = re.compile(r"([0-9]+|[A-Za-z]+|~|\^)")


def rpmvercmp(a: str, b: str) -> int:
    """rpm's segment comparison: digits beat letters, '~' sorts before anything, '^' after."""
    if a == b:
        return 0
    left = _RPM_SEGMENT.findall(a)
    right = _RPM_SEGMENT.findall(b)
    for index in range(max(len(left), len(right))):
        x = left[index] if index < len(left) else None
        y = right[index] if index < len(right) else None
        if x == "~" or y == "~":
            if x != y:
                return -1 if x == "~" else 1
            continue
        if x == "^" or y == "^":
            if x == y:
                continue
            if x is None:
                return -1
            if y is None:
                return 1
            # "1.0^post" sorts after "1.0" but before "1.0.1".
            return -1 if x == "^" else 1
        if x is None or y is None:
            return 1 if y is None else -1
        x_number, y_number = x[0] in _DIGITS, y[0] in _DIGITS
        if x_number != y_number:
            return 1 if x_number else -1
        result = _sign(int(x) - int(y)) if x_number else (x > y) - (x < y)
        if result:
            return result
    return 0


def _rpm_split(version: str) -> tuple[int, str, str | None]:
    version = version.strip()
    epoch = 0
    head, separator, rest = version.partition(":")
    if separator and head and set(head) <= _DIGITS:
        epoch, version = int(head), rest
    upstream, separator, release = version.rpartition("-")
    if not separator:
        return epoch, version, None
    return epoch, upstream, release


def compare_rpm(a: str, b: str) -> int:
    """epoch:version-release. A missing release matches any release, as in dnf."""
    epoch_a, version_a, release_a = _rpm_split(a)
    epoch_b, version_b, release_b = _rpm_split(b)
    if epoch_a != epoch_b:
        return _sign(epoch_a - epoch_b)
    result = rpmvercmp(version_a, version_b)
    if result or release_a is None or release_b is None:
        return result
    return rpmvercmp(release_a, release_b)


# --- Alpine ----------------------------------------------------------------------

_APK_SUFFIXES = {
    "alpha": 0,
    "beta": 1,
    "pre": 2,
    "rc": 3,
    # a version without a suffix ranks 4
    "cvs": 5,
    "svn": 6,
    "git": 7,
    "hg": 8,
    "p": 9,
}
_APK_NO_SUFFIX = (4, 0)
_APK_VERSION = re.compile(
    r"^(?P<numbers>[0-9]+(?:\.[0-9]+)*)(?P<letter>[a-z]?)"
    r"(?P<suffixes>(?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)[0-9]*)*)"
    r"(?:~(?P<hash>[0-9a-f]+))?"
    r"(?:-r(?P<release>[0-9]+))?$"
)
_APK_SUFFIX = re.compile(r"_(alpha|beta|pre|rc|cvs|svn|git|hg|p)([0-9]*)")


def _apk_key(version: str) -> tuple[Any, ...]:
    match = _APK_VERSION.match(version.strip())
    if match is None:
        # Not an apk version: order it before every valid one, naturally among its kind.
        return (0, _natural_key(version))
    numbers = tuple(int(part) for part in match.group("numbers").split("."))
    letter = match.group("letter") or ""
    suffixes = tuple(
        (_APK_SUFFIXES[name], int(number or 0))
        for name, number in _APK_SUFFIX.findall(match.group("suffixes"))
    )
    return (
        1,
        numbers,
        letter,
        suffixes,
        match.group("hash") or "",
        int(match.group("release") or 0),
    )


def compare_alpine(a: str, b: str) -> int:
    key_a, key_b = _apk_key(a), _apk_key(b)
    if key_a[0] != key_b[0] or key_a[0] == 0:
        return (key_a > key_b) - (key_a < key_b)
    # Suffix lists of different length: the shorter one continues with "no suffix".
    _, numbers_a, letter_a, suffixes_a, hash_a, release_a = key_a
    _, numbers_b, letter_b, suffixes_b, hash_b, release_b = key_b
    length = max(len(suffixes_a), len(suffixes_b))
    padded_a = suffixes_a + (_APK_NO_SUFFIX,) * (length - len(suffixes_a))
    padded_b = suffixes_b + (_APK_NO_SUFFIX,) * (length - len(suffixes_b))
    left = (numbers_a, letter_a, padded_a, hash_a, release_a)
    right = (numbers_b, letter_b, padded_b, hash_b, release_b)
    return (left > right) - (left < right)


# --- semver, PyPI, Maven ---------------------------------------------------------

_SEMVER = re.compile(
    r"^v?(?P<major>[0-9]+)(?:\.(?P<minor>[0-9]+))?(?:\.(?P<patch>[0-9]+))?"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)


def _natural_key(version: str) -> tuple[tuple[int, int | str], ...]:
    return tuple(
        (0, int(part)) if part[0] in _DIGITS else (1, part)
        for part in re.findall(r"[0-9]+|[A-Za-z]+", version)
    )


def _semver_key(version: str) -> tuple[Any, ...]:
    match = _SEMVER.match(version.strip())
    if match is None:
        return (0, _natural_key(version))
    core = tuple(int(match.group(name) or 0) for name in ("major", "minor", "patch"))
    pre = match.group("pre")
    if pre is None:
        # A release ranks above all of its prereleases.
        return (1, core, 1, ())
    identifiers = tuple(
        (0, int(part), "") if set(part) <= _DIGITS else (1, 0, part) for part in pre.split(".")
    )
    return (1, core, 0, identifiers)


def compare_semver(a: str, b: str) -> int:
    key_a, key_b = _semver_key(a), _semver_key(b)
    return (key_a > key_b) - (key_a < key_b)


def _pypi_key(version: str) -> tuple[Any, ...]:
    try:
        return (1, Version(version.strip()))
    except InvalidVersion:
        return (0, _natural_key(version))


def compare_pypi(a: str, b: str) -> int:
    key_a, key_b = _pypi_key(a), _pypi_key(b)
    return (key_a > key_b) - (key_a < key_b)


def compare_maven(a: str, b: str) -> int:
    left, right = MavenVersion(a.strip()), MavenVersion(b.strip())
    return (left > right) - (left < right)


# --- dispatch --------------------------------------------------------------------

_COMPARATORS: dict[str, Comparator] = {
    "Debian": compare_debian,
    "Ubuntu": compare_debian,
    "Alpine": compare_alpine,
    "Wolfi": compare_alpine,
    "Chainguard": compare_alpine,
    "Red Hat": compare_rpm,
    "Rocky Linux": compare_rpm,
    "AlmaLinux": compare_rpm,
    "openSUSE": compare_rpm,
    "SUSE": compare_rpm,
    "Mageia": compare_rpm,
    "Photon OS": compare_rpm,
    "openEuler": compare_rpm,
    "PyPI": compare_pypi,
    "npm": compare_semver,
    "Go": compare_semver,
    "crates.io": compare_semver,
    "Maven": compare_maven,
}


def base_ecosystem(ecosystem: str) -> str:
    """'Debian:12' -> 'Debian', 'Maven:https://repo' -> 'Maven'."""
    return ecosystem.partition(":")[0].strip()


def comparator(ecosystem: str) -> Comparator:
    try:
        return _COMPARATORS[base_ecosystem(ecosystem)]
    except KeyError:
        raise ValueError(f"no version ordering for ecosystem {ecosystem!r}") from None


def is_supported(ecosystem: str) -> bool:
    return base_ecosystem(ecosystem) in _COMPARATORS


def compare(ecosystem: str, a: str, b: str) -> int:
    """-1, 0 or 1 as version `a` sorts before, with, or after `b` in `ecosystem`."""
    return comparator(ecosystem)(a, b)


def sort_key(ecosystem: str) -> Callable[[str], Any]:
    """A key function for `sorted(versions, key=sort_key("Debian:12"))`."""
    return functools.cmp_to_key(comparator(ecosystem))
