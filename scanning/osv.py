"""OSV vulnerability records: parsing, matching against components, and severity.

- `parse_record` turns one OSV JSON object (ossf/osv-schema) into frozen
  dataclasses, and raises `OsvRecordError` when it is malformed.
- `is_affected` follows the schema's evaluation pseudocode: a version is
  affected if it is listed in `versions`, or lies in a SEMVER or ECOSYSTEM
  range (events sorted by the ecosystem's order, `introduced: "0"` before
  everything, `last_affected` inclusive, `fixed` exclusive) below at least
  one `limit` when there are limits (`"*"` is infinity). GIT ranges are
  ignored: they need the repository.
- `matching_affected` and `matches_component` apply a record to a catalogued
  component: OS packages by their source package name (what Debian, Ubuntu
  and Alpine advisories name), an OSV ecosystem without a release
  (`Debian`) applying to every release, one with a release (`Debian:12`,
  `Ubuntu:22.04:LTS`) only to that release.
- `read_zip` streams the records of an OSV `all.zip`, skipping withdrawn
  ones; a malformed entry is reported (or collected) without ending the
  import, a corrupt archive raises `OsvArchiveError`.
- `severity_of` gives (severity, score, source): the CVSS v3.x base score
  computed here from the vector, else the record's own severity word, else
  the same for the records named in `aliases`/`upstream` when a lookup is
  given, else "unknown". CVSS v4 vectors are not scored: the v4 formula
  depends on a table of MacroVector scores we do not carry, so a v4-only
  record falls back to words. A base score of 0.0 is severity "none".
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, NamedTuple

from scanning import versions
from scanning.catalogers.common import APK, DEB, OS_PACKAGE_TYPES, PYPI, Component

EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")
EVALUATED_RANGE_TYPES = ("SEMVER", "ECOSYSTEM")
MAX_RECORD_BYTES = 16 * 1024 * 1024

CRITICAL = "critical"
HIGH = "high"
MEDIUM = "medium"
LOW = "low"
NONE = "none"
UNKNOWN = "unknown"

_WORDS = {
    "critical": CRITICAL,
    "high": HIGH,
    "important": HIGH,
    "moderate": MEDIUM,
    "medium": MEDIUM,
    "low": LOW,
    "negligible": LOW,
}


class OsvRecordError(ValueError):
    """One record does not follow the schema."""


class OsvArchiveError(Exception):
    """The archive itself cannot be read."""


@dataclass(frozen=True)
class OsvEntryError:
    """A malformed entry of an archive, and why."""

    entry: str
    message: str

    def __str__(self) -> str:
        return f"{self.entry}: {self.message}"


@dataclass(frozen=True)
class Package:
    ecosystem: str
    name: str
    purl: str | None = None


@dataclass(frozen=True)
class Event:
    kind: str
    version: str


@dataclass(frozen=True)
class Range:
    type: str
    events: tuple[Event, ...]
    repo: str | None = None


@dataclass(frozen=True)
class Severity:
    type: str
    score: str


@dataclass(frozen=True)
class Affected:
    package: Package
    ranges: tuple[Range, ...] = ()
    versions: tuple[str, ...] = ()
    severity: tuple[Severity, ...] = ()
    ecosystem_specific: Mapping[str, Any] = field(default_factory=dict)
    database_specific: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OsvRecord:
    id: str
    modified: str
    aliases: tuple[str, ...] = ()
    upstream: tuple[str, ...] = ()
    withdrawn: str | None = None
    published: str | None = None
    summary: str = ""
    affected: tuple[Affected, ...] = ()
    severity: tuple[Severity, ...] = ()
    database_specific: Mapping[str, Any] = field(default_factory=dict)


# --- parsing -----------------------------------------------------------------------


def _string(value: object, where: str, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise OsvRecordError(f"{where} must be a non-empty string")
    return value


def _list(value: object, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise OsvRecordError(f"{where} must be a list")
    return value


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OsvRecordError(f"{where} must be an object")
    return value


def _strings(value: object, where: str) -> tuple[str, ...]:
    items = _list(value, where)
    if not all(isinstance(item, str) for item in items):
        raise OsvRecordError(f"{where} must be a list of strings")
    return tuple(items)


def _severities(value: object, where: str) -> tuple[Severity, ...]:
    result = []
    for index, item in enumerate(_list(value, where)):
        item = _mapping(item, f"{where}[{index}]")
        result.append(
            Severity(
                type=_string(item.get("type"), f"{where}[{index}].type") or "",
                score=_string(item.get("score"), f"{where}[{index}].score") or "",
            )
        )
    return tuple(result)


def _range(value: object, where: str) -> Range:
    item = _mapping(value, where)
    events = []
    for index, raw_event in enumerate(_list(item.get("events"), f"{where}.events")):
        event = _mapping(raw_event, f"{where}.events[{index}]")
        kinds = [kind for kind in EVENT_KINDS if kind in event]
        if len(kinds) != 1:
            raise OsvRecordError(f"{where}.events[{index}] must have exactly one event kind")
        version = _string(event[kinds[0]], f"{where}.events[{index}].{kinds[0]}") or ""
        events.append(Event(kinds[0], version))
    return Range(
        type=_string(item.get("type"), f"{where}.type") or "",
        events=tuple(events),
        repo=_string(item.get("repo"), f"{where}.repo", required=False),
    )


def _affected(value: object, where: str) -> Affected:
    item = _mapping(value, where)
    package = _mapping(item.get("package"), f"{where}.package")
    return Affected(
        package=Package(
            ecosystem=_string(package.get("ecosystem", ""), f"{where}.package.ecosystem", False)
            or "",
            name=_string(package.get("name", ""), f"{where}.package.name", False) or "",
            purl=_string(package.get("purl"), f"{where}.package.purl", required=False),
        ),
        ranges=tuple(
            _range(entry, f"{where}.ranges[{index}]")
            for index, entry in enumerate(_list(item.get("ranges"), f"{where}.ranges"))
        ),
        versions=_strings(item.get("versions"), f"{where}.versions"),
        severity=_severities(item.get("severity"), f"{where}.severity"),
        ecosystem_specific=_mapping(item.get("ecosystem_specific"), f"{where}.ecosystem_specific"),
        database_specific=_mapping(item.get("database_specific"), f"{where}.database_specific"),
    )


def parse_record(data: object) -> OsvRecord:
    """One OSV record from its decoded JSON."""
    record = _mapping(data, "record")
    if not record:
        raise OsvRecordError("record must be a non-empty object")
    record_id = _string(record.get("id"), "id") or ""
    return OsvRecord(
        id=record_id,
        modified=_string(record.get("modified"), f"{record_id}: modified") or "",
        aliases=_strings(record.get("aliases"), f"{record_id}: aliases"),
        upstream=_strings(record.get("upstream"), f"{record_id}: upstream"),
        withdrawn=_string(record.get("withdrawn"), f"{record_id}: withdrawn", required=False),
        published=_string(record.get("published"), f"{record_id}: published", required=False),
        summary=_string(record.get("summary", ""), f"{record_id}: summary", False) or "",
        affected=tuple(
            _affected(entry, f"{record_id}: affected[{index}]")
            for index, entry in enumerate(_list(record.get("affected"), f"{record_id}: affected"))
        ),
        severity=_severities(record.get("severity"), f"{record_id}: severity"),
        database_specific=_mapping(
            record.get("database_specific"), f"{record_id}: database_specific"
        ),
    )


# --- evaluation --------------------------------------------------------------------


def _event_key(compare: versions.Comparator) -> Callable[[Event], Any]:
    version_key = functools.cmp_to_key(compare)

    def key(event: Event) -> tuple[int, Any]:
        if event.kind == "introduced" and event.version == "0":
            return (0, version_key(""))
        if event.kind == "limit" and event.version == "*":
            return (2, version_key(""))
        return (1, version_key(event.version))

    return key


def _before_limits(version: str, events: tuple[Event, ...], compare: versions.Comparator) -> bool:
    limits = [event.version for event in events if event.kind == "limit"]
    if not limits:
        return True
    return any(limit == "*" or compare(version, limit) < 0 for limit in limits)


def included_in_range(version: str, affected_range: Range, compare: versions.Comparator) -> bool:
    """The schema's IncludedInRanges body, for one range."""
    if not _before_limits(version, affected_range.events, compare):
        return False
    vulnerable = False
    for event in sorted(affected_range.events, key=_event_key(compare)):
        if event.kind == "introduced" and (
            event.version == "0" or compare(version, event.version) >= 0
        ):
            vulnerable = True
        elif event.kind in ("fixed", "last_affected"):
            # `fixed` is the first safe version, `last_affected` the last vulnerable one.
            order = compare(version, event.version)
            if order > 0 or (order == 0 and event.kind == "fixed"):
                vulnerable = False
    return vulnerable


def is_affected(affected: Affected, version: str, ecosystem: str | None = None) -> bool:
    """Is `version` affected by this `affected[]` entry?

    `ecosystem` picks the version order for ECOSYSTEM ranges; by default the
    entry's own. An ECOSYSTEM range in an ecosystem we cannot order is skipped,
    and only the `versions` list then counts.
    """
    ecosystem = ecosystem or affected.package.ecosystem
    ordered = versions.is_supported(ecosystem)
    for listed in affected.versions:
        if listed == version or (ordered and versions.compare(ecosystem, listed, version) == 0):
            return True
    for affected_range in affected.ranges:
        if affected_range.type == "SEMVER":
            compare = versions.compare_semver
        elif affected_range.type == "ECOSYSTEM" and ordered:
            compare = versions.comparator(ecosystem)
        else:
            continue
        if included_in_range(version, affected_range, compare):
            return True
    return False


def ecosystem_applies(record_ecosystem: str, component_ecosystem: str) -> bool:
    """Does an advisory for `record_ecosystem` concern a component in `component_ecosystem`?"""
    record_base, _, record_release = record_ecosystem.partition(":")
    component_base, _, component_release = component_ecosystem.partition(":")
    if record_base != component_base:
        return False
    if not record_release or record_base in ("Maven", "Packagist", "VSCode"):
        # No release, or a repository URL rather than a release.
        return True
    if record_base == "Ubuntu":
        if record_release.startswith("Pro:"):
            return False  # ESM fixes, only for Ubuntu Pro subscribers
        record_release = record_release.removesuffix(":LTS")
    return record_release == component_release


def _pypi_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def component_coordinates(component: Component) -> list[tuple[str, str]]:
    """The (name, version) pairs under which advisories may name a component.

    Debian, Ubuntu and Alpine advisories name the source package; RPM
    ecosystems name either the source or the binary package.
    """
    if component.type in (DEB, APK):
        return [
            (component.source_name or component.name, component.source_version or component.version)
        ]
    if component.type in OS_PACKAGE_TYPES:
        names = dict.fromkeys([component.source_name or component.name, component.name])
        return [(name, component.version) for name in names]
    if component.type == PYPI:
        return [(_pypi_name(component.name), component.version)]
    return [(component.name, component.version)]


def matching_affected(record: OsvRecord, component: Component) -> list[Affected]:
    """The record's `affected` entries that make this component vulnerable."""
    if record.withdrawn or not component.ecosystem:
        return []
    found = []
    for affected in record.affected:
        package = affected.package
        if not package.name or not ecosystem_applies(package.ecosystem, component.ecosystem):
            continue
        record_name = _pypi_name(package.name) if component.type == PYPI else package.name
        for name, version in component_coordinates(component):
            if name == record_name and is_affected(affected, version, component.ecosystem):
                found.append(affected)
                break
    return found


def matches_component(record: OsvRecord, component: Component) -> bool:
    return bool(matching_affected(record, component))


# --- bulk archives -----------------------------------------------------------------


def read_zip(
    source: str | os.PathLike[str] | BinaryIO, errors: list[OsvEntryError] | None = None
) -> Iterator[OsvRecord]:
    """The non-withdrawn records of an OSV `all.zip`.

    A malformed entry raises `OsvRecordError` naming the entry, unless an
    `errors` list is given: then it is appended there and the import goes on.
    A damaged archive always raises `OsvArchiveError`.
    """
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise OsvArchiveError(f"not a readable zip archive: {error}") from error
    with archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            try:
                record = _read_entry(archive, info)
            except OsvRecordError as error:
                if errors is None:
                    raise OsvRecordError(f"{info.filename}: {error}") from error
                errors.append(OsvEntryError(info.filename, str(error)))
                continue
            if record.withdrawn:
                continue
            yield record


def _read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> OsvRecord:
    if info.file_size > MAX_RECORD_BYTES:
        raise OsvRecordError(f"larger than {MAX_RECORD_BYTES} bytes")
    try:
        with archive.open(info) as handle:
            raw = handle.read(MAX_RECORD_BYTES + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        raise OsvArchiveError(f"{info.filename}: damaged archive entry: {error}") from error
    if len(raw) > MAX_RECORD_BYTES:
        raise OsvRecordError(f"larger than {MAX_RECORD_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise OsvRecordError(f"not JSON: {error}") from error
    return parse_record(data)


# --- severity ----------------------------------------------------------------------

_CVSS3_WEIGHTS: dict[str, dict[str, float]] = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2},
    "AC": {"L": 0.77, "H": 0.44},
    "PR": {"N": 0.85, "L": 0.62, "H": 0.27},
    "UI": {"N": 0.85, "R": 0.62},
    "S": {"U": 0.0, "C": 0.0},
    "C": {"H": 0.56, "L": 0.22, "N": 0.0},
    "I": {"H": 0.56, "L": 0.22, "N": 0.0},
    "A": {"H": 0.56, "L": 0.22, "N": 0.0},
}
# Privileges Required weighs more when the scope changes.
_CVSS3_PR_CHANGED = {"N": 0.85, "L": 0.68, "H": 0.5}


def _roundup(value: float) -> float:
    """CVSS v3.1's Roundup: the smallest one-decimal number >= value, float-safe."""
    integer = round(value * 100_000)
    if integer % 10_000 == 0:
        return integer / 100_000
    return (math.floor(integer / 10_000) + 1) / 10


def cvss3_base_score(vector: str) -> float:
    """The CVSS v3.0/v3.1 base score of a vector; ValueError if it is not a valid v3 vector."""
    prefix, _, rest = vector.strip().partition("/")
    if prefix not in ("CVSS:3.0", "CVSS:3.1"):
        raise ValueError(f"not a CVSS v3 vector: {vector!r}")
    metrics: dict[str, str] = {}
    for part in rest.split("/"):
        name, separator, value = part.partition(":")
        if not separator or name in metrics:
            raise ValueError(f"malformed or repeated metric {part!r} in {vector!r}")
        metrics[name] = value
    weights = {}
    for name, table in _CVSS3_WEIGHTS.items():
        if metrics.get(name) not in table:
            raise ValueError(f"missing or invalid base metric {name} in {vector!r}")
        weights[name] = table[metrics[name]]
    changed = metrics["S"] == "C"
    privileges = _CVSS3_PR_CHANGED[metrics["PR"]] if changed else weights["PR"]
    impact_subscore = 1 - (1 - weights["C"]) * (1 - weights["I"]) * (1 - weights["A"])
    if changed:
        impact = 7.52 * (impact_subscore - 0.029) - 3.25 * (impact_subscore - 0.02) ** 15
    else:
        impact = 6.42 * impact_subscore
    exploitability = 8.22 * weights["AV"] * weights["AC"] * privileges * weights["UI"]
    if impact <= 0:
        return 0.0
    if changed:
        return _roundup(min(1.08 * (impact + exploitability), 10))
    return _roundup(min(impact + exploitability, 10))


def severity_band(score: float) -> str:
    """CVSS qualitative rating: 0.0 is none, then low, medium, high, critical."""
    if score >= 9.0:
        return CRITICAL
    if score >= 7.0:
        return HIGH
    if score >= 4.0:
        return MEDIUM
    if score >= 0.1:
        return LOW
    return NONE


def severity_word(word: object) -> str | None:
    """Our severity for a record's own word ('MODERATE' -> 'medium'), or None."""
    if not isinstance(word, str):
        return None
    return _WORDS.get(word.strip().lower())


class SeverityResult(NamedTuple):
    severity: str
    score: float | None
    source: str


def _cvss3_scores(record: OsvRecord) -> list[float]:
    entries = list(record.severity)
    for affected in record.affected:
        entries += affected.severity
    scores = []
    for entry in entries:
        if entry.type != "CVSS_V3":
            continue
        try:
            scores.append(cvss3_base_score(entry.score))
        except ValueError:
            continue
    return scores


def _words(record: OsvRecord) -> Iterator[tuple[str, object]]:
    yield "database_specific", record.database_specific.get("severity")
    for affected in record.affected:
        yield "ecosystem_specific", affected.ecosystem_specific.get("severity")
        yield "database_specific", affected.database_specific.get("severity")
    for entry in record.severity:
        if entry.type == "Ubuntu":
            yield "Ubuntu", entry.score
    for affected in record.affected:
        for entry in affected.severity:
            if entry.type == "Ubuntu":
                yield "Ubuntu", entry.score


def _own_severity(record: OsvRecord) -> SeverityResult | None:
    scores = _cvss3_scores(record)
    if scores:
        score = max(scores)
        return SeverityResult(severity_band(score), score, "CVSS_V3")
    for source, word in _words(record):
        severity = severity_word(word)
        if severity is not None:
            return SeverityResult(severity, None, source)
    return None


def severity_of(
    record: OsvRecord, lookup: Callable[[str], OsvRecord | None] | None = None
) -> SeverityResult:
    """(severity, score or None, where it came from) for one record.

    `lookup` fetches a record by id (for instance from the OSV store); when
    given, the records named in `aliases` and `upstream` are consulted, one
    level deep, if the record has no severity of its own.
    """
    own = _own_severity(record)
    if own is not None:
        return own
    if lookup is not None:
        for other_id in (*record.aliases, *record.upstream):
            other = lookup(other_id)
            if other is None:
                continue
            found = _own_severity(other)
            if found is not None:
                return SeverityResult(found.severity, found.score, f"{other_id}:{found.source}")
    return SeverityResult(UNKNOWN, None, "none")
