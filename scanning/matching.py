"""OSV matching against the database store: one indexed query per batch of components.

`match(snapshot_id=..., components=[(key, component), ...])` looks up the `OsvAffected`
rows of the snapshot under the (ecosystem base, package name) pairs the components may be
named by (`osv.component_coordinates`: the source package for Debian/Ubuntu/Alpine, the
PEP 503 name for PyPI), then applies the schema's own evaluation (`osv.is_affected`) in
Python. The affected entries are stored in OSV's JSON shape and turned back into
`osv.Affected` values here without re-parsing whole records.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from . import osv, versions
from .catalogers import PYPI
from .catalogers import Component as CatalogComponent
from .models import OsvAffected

BATCH = 500


def pypi_name(name: str) -> str:
    """PEP 503 normalisation, the form PyPI advisories are stored and matched in."""
    return re.sub(r"[-_.]+", "-", name).lower()


def stored_name(ecosystem: str, name: str) -> str:
    """The package name as `OsvAffected.name` stores it."""
    return pypi_name(name) if versions.base_ecosystem(ecosystem) == "PyPI" else name


# --- OSV JSON shape <-> osv dataclasses -------------------------------------------------------


def severities_json(entries: Iterable[osv.Severity]) -> list[dict[str, str]]:
    return [{"type": entry.type, "score": entry.score} for entry in entries]


def affected_json(affected: osv.Affected) -> dict[str, Any]:
    """One `affected[]` entry back in OSV's JSON shape."""
    package: dict[str, str] = {
        "ecosystem": affected.package.ecosystem,
        "name": affected.package.name,
    }
    if affected.package.purl:
        package["purl"] = affected.package.purl
    value: dict[str, Any] = {
        "package": package,
        "ranges": [
            {
                "type": item.type,
                "events": [{event.kind: event.version} for event in item.events],
                **({"repo": item.repo} if item.repo else {}),
            }
            for item in affected.ranges
        ],
        "versions": list(affected.versions),
    }
    if affected.severity:
        value["severity"] = severities_json(affected.severity)
    if affected.ecosystem_specific:
        value["ecosystem_specific"] = dict(affected.ecosystem_specific)
    if affected.database_specific:
        value["database_specific"] = dict(affected.database_specific)
    return value


def record_json(record: osv.OsvRecord) -> dict[str, Any]:
    """A parsed record back in OSV's JSON shape (what the store keeps as `raw`)."""
    value: dict[str, Any] = {
        "id": record.id,
        "modified": record.modified,
        "aliases": list(record.aliases),
        "summary": record.summary,
        "affected": [affected_json(affected) for affected in record.affected],
    }
    if record.upstream:
        value["upstream"] = list(record.upstream)
    if record.published:
        value["published"] = record.published
    if record.severity:
        value["severity"] = severities_json(record.severity)
    if record.database_specific:
        value["database_specific"] = dict(record.database_specific)
    return value


def affected_from_json(entry: dict[str, Any]) -> osv.Affected:
    """The inverse of `affected_json` for what matching reads (package, ranges, versions).

    The entry was validated by `osv.parse_record` at import, so no checks here.
    """
    package = entry["package"]
    return osv.Affected(
        package=osv.Package(package["ecosystem"], package["name"], package.get("purl")),
        ranges=tuple(
            osv.Range(
                type=item["type"],
                events=tuple(
                    osv.Event(kind, version)
                    for event in item["events"]
                    for kind, version in event.items()
                ),
                repo=item.get("repo"),
            )
            for item in entry.get("ranges", ())
        ),
        versions=tuple(entry.get("versions", ())),
    )


# --- matching ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """One vulnerability affecting one component (named by the caller's key)."""

    key: Any
    vulnerability_id: int
    osv_id: str
    severity: str
    score: float | None
    fixed_version: str


def _range_comparator(affected_range: osv.Range, ecosystem: str) -> versions.Comparator | None:
    if affected_range.type == "SEMVER":
        return versions.compare_semver
    if affected_range.type == "ECOSYSTEM" and versions.is_supported(ecosystem):
        return versions.comparator(ecosystem)
    return None


def fixed_version(affected: osv.Affected, version: str, ecosystem: str) -> str:
    """The lowest `fixed` version above `version` in the ranges that include it, or ''."""
    best = ""
    best_compare: versions.Comparator | None = None
    for affected_range in affected.ranges:
        compare = _range_comparator(affected_range, ecosystem)
        if compare is None or not osv.included_in_range(version, affected_range, compare):
            continue
        for event in affected_range.events:
            if event.kind != "fixed" or compare(version, event.version) >= 0:
                continue
            if not best or (best_compare is compare and compare(event.version, best) < 0):
                best, best_compare = event.version, compare
    return best


def match(*, snapshot_id: int, components: Sequence[tuple[Any, CatalogComponent]]) -> list[Match]:
    """Every (component, vulnerability) pair of the snapshot that affects a component.

    `components` pairs a caller's key (a row id, an index) with a catalogued component;
    each vulnerability is reported once per key.
    """
    wanted: dict[tuple[str, str], list[tuple[Any, CatalogComponent, str]]] = defaultdict(list)
    for key, component in components:
        if not component.ecosystem:
            continue
        base = versions.base_ecosystem(component.ecosystem)
        for name, version in osv.component_coordinates(component):
            if component.type == PYPI:
                name = pypi_name(name)
            wanted[(base, name)].append((key, component, version))
    if not wanted:
        return []
    found: dict[tuple[Any, int], Match] = {}
    pairs = list(wanted)
    for start in range(0, len(pairs), BATCH):
        batch = pairs[start : start + BATCH]
        rows = OsvAffected.objects.filter(
            snapshot_id=snapshot_id,
            ecosystem_base__in={base for base, _ in batch},
            name__in={name for _, name in batch},
        ).values_list(
            "ecosystem",
            "ecosystem_base",
            "name",
            "entry",
            "vulnerability_id",
            "vulnerability__osv_id",
            "vulnerability__severity",
            "vulnerability__score",
        )
        for ecosystem, base, name, entry, vuln_id, osv_id, severity, score in rows:
            candidates = wanted.get((base, name))
            if not candidates:
                continue
            affected = affected_from_json(entry)
            for key, component, version in candidates:
                if (key, vuln_id) in found:
                    continue
                if not osv.ecosystem_applies(ecosystem, component.ecosystem):
                    continue
                if osv.is_affected(affected, version, component.ecosystem):
                    found[(key, vuln_id)] = Match(
                        key=key,
                        vulnerability_id=vuln_id,
                        osv_id=osv_id,
                        severity=severity,
                        score=score,
                        fixed_version=fixed_version(affected, version, component.ecosystem),
                    )
    return list(found.values())
