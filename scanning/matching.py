"""OSV matching against the database store: one indexed query per batch of components.

`match(snapshot_id=..., components=[(key, component), ...])` looks up the `OsvAffected`
rows of the snapshot under the (ecosystem base, package name) pairs the components may be
named by (`osv.component_coordinates`: the source package for Debian/Ubuntu/Alpine, the
PEP 503 name for PyPI), then applies the schema's own evaluation (`osv.included_in_range`
and the `versions` list, as `osv.is_affected` does, finding the fixed version in the same
pass) in Python. The affected entries are stored in OSV's JSON shape and turned back into
`osv.Affected` values here without re-parsing whole records.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection

from . import osv, versions
from .catalogers import PYPI
from .catalogers import Component as CatalogComponent
from .models import OsvAffected, OsvVulnerability

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


def evaluate(affected: osv.Affected, version: str, ecosystem: str) -> tuple[bool, str]:
    """`osv.is_affected` and the fix in one pass: (affected?, the lowest `fixed` version
    above `version` in the ranges that include it, or '').

    The same rules as `osv.is_affected`: the `versions` list, then SEMVER ranges and
    ECOSYSTEM ranges in an ecosystem we can order (others are skipped).
    """
    ordered = versions.is_supported(ecosystem)
    hit = any(
        listed == version or (ordered and versions.compare(ecosystem, listed, version) == 0)
        for listed in affected.versions
    )
    best = ""
    for affected_range in affected.ranges:
        compare = _range_comparator(affected_range, ecosystem)
        if compare is None or not osv.included_in_range(version, affected_range, compare):
            continue
        hit = True
        for event in affected_range.events:
            if event.kind != "fixed" or compare(version, event.version) >= 0:
                continue
            if not best or compare(event.version, best) < 0:
                best = event.version
    return hit, best


def _affected_rows(snapshot_id: int, bases: list[str], names: list[str]) -> list[tuple]:
    """The candidate rows of one batch, with their vulnerability's id and severity.

    Raw SQL on the `osvaffected_lookup_idx` columns: the ORM spends more time compiling a
    500-name IN list than the database spends answering it.
    """
    affected = OsvAffected._meta.db_table
    vulnerability = OsvVulnerability._meta.db_table
    # Table names come from the models; values are placeholders.
    sql = (
        f"SELECT a.ecosystem, a.ecosystem_base, a.name, a.entry, a.vulnerability_id, "  # noqa: S608
        f"v.osv_id, v.severity, v.score FROM {affected} a "
        f"JOIN {vulnerability} v ON v.id = a.vulnerability_id "
        f"WHERE a.snapshot_id = %s AND a.ecosystem_base IN ({', '.join(['%s'] * len(bases))}) "
        f"AND a.name IN ({', '.join(['%s'] * len(names))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [snapshot_id, *bases, *names])
        return cursor.fetchall()


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
    applies_cache: dict[tuple[str, str], bool] = {}
    pairs = list(wanted)
    for start in range(0, len(pairs), BATCH):
        batch = pairs[start : start + BATCH]
        rows = _affected_rows(
            snapshot_id, sorted({base for base, _ in batch}), sorted({name for _, name in batch})
        )
        for ecosystem, base, name, entry, vuln_id, osv_id, severity, score in rows:
            candidates = wanted.get((base, name))
            if not candidates:
                continue
            affected = affected_from_json(json.loads(entry) if isinstance(entry, str) else entry)
            # Binary packages of one source share its version: evaluate each pair once.
            evaluated: dict[tuple[str, str], tuple[bool, str]] = {}
            for key, component, version in candidates:
                if (key, vuln_id) in found:
                    continue
                pair = (version, component.ecosystem)
                if pair not in evaluated:
                    applies = applies_cache.get((ecosystem, component.ecosystem))
                    if applies is None:
                        applies = osv.ecosystem_applies(ecosystem, component.ecosystem)
                        applies_cache[(ecosystem, component.ecosystem)] = applies
                    evaluated[pair] = (
                        evaluate(affected, version, component.ecosystem) if applies else (False, "")
                    )
                hit, fixed = evaluated[pair]
                if hit:
                    found[(key, vuln_id)] = Match(
                        key=key,
                        vulnerability_id=vuln_id,
                        osv_id=osv_id,
                        severity=severity,
                        score=score,
                        fixed_version=fixed,
                    )
    return list(found.values())
