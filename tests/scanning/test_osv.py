"""OSV records: parsing, the schema's evaluation rules, matching, archives, severity."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from scanning.catalogers.common import Component
from scanning.osv import (
    OsvArchiveError,
    OsvRecordError,
    cvss3_base_score,
    ecosystem_applies,
    is_affected,
    matches_component,
    matching_affected,
    parse_record,
    read_zip,
    severity_band,
    severity_of,
    severity_word,
)


def record(**fields) -> dict:
    return {"id": "TEST-1", "modified": "2024-01-01T00:00:00Z", **fields}


def affected_entry(ecosystem="PyPI", name="pkg", ranges=(), versions=()):
    data = record(
        affected=[
            {
                "package": {"ecosystem": ecosystem, "name": name},
                "ranges": list(ranges),
                "versions": list(versions),
            }
        ]
    )
    return parse_record(data).affected[0]


def semver(*events):
    return {"type": "SEMVER", "events": [dict([event]) for event in events]}


def ecosystem_range(*events):
    return {"type": "ECOSYSTEM", "events": [dict([event]) for event in events]}


# --- evaluation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "expected"),
    [("0.0.1", True), ("1.0.1", True), ("1.0.2", False), ("2.0.0", False)],
)
def test_introduced_zero_and_fixed(version, expected):
    affected = affected_entry("npm", ranges=[semver(("introduced", "0"), ("fixed", "1.0.2"))])
    assert is_affected(affected, version) is expected


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.9.0", False),
        ("1.0.0", True),
        ("1.0.1", True),
        ("1.0.2", False),
        ("2.9.9", False),
        ("3.0.0", True),
        ("3.2.4", True),
        ("3.2.5", False),
    ],
)
def test_several_intervals_in_one_range_even_unsorted(version, expected):
    affected = affected_entry(
        "npm",
        ranges=[
            semver(
                ("fixed", "3.2.5"),
                ("introduced", "1.0.0"),
                ("introduced", "3.0.0"),
                ("fixed", "1.0.2"),
            )
        ],
    )
    assert is_affected(affected, version) is expected


@pytest.mark.parametrize(
    ("version", "expected"), [("1.4.0", False), ("1.5.0", True), ("2.0.0", True), ("2.0.1", False)]
)
def test_last_affected_is_inclusive(version, expected):
    affected = affected_entry(
        "Go", ranges=[semver(("introduced", "1.5.0"), ("last_affected", "2.0.0"))]
    )
    assert is_affected(affected, version) is expected


@pytest.mark.parametrize(
    ("version", "expected"), [("1.0.0", True), ("1.9.9", True), ("2.0.0", False), ("5.0.0", False)]
)
def test_limit_bounds_the_range(version, expected):
    affected = affected_entry("npm", ranges=[semver(("introduced", "0"), ("limit", "2.0.0"))])
    assert is_affected(affected, version) is expected


def test_limit_star_is_infinity_and_any_limit_suffices():
    star = affected_entry("npm", ranges=[semver(("introduced", "1.0.0"), ("limit", "*"))])
    assert is_affected(star, "99.0.0")
    several = affected_entry(
        "npm", ranges=[semver(("introduced", "0"), ("limit", "1.0.0"), ("limit", "3.0.0"))]
    )
    assert is_affected(several, "2.0.0")
    assert not is_affected(several, "3.0.0")


def test_versions_list_and_several_ranges():
    affected = affected_entry(
        "PyPI",
        ranges=[
            ecosystem_range(("introduced", "1.0"), ("fixed", "1.2")),
            ecosystem_range(("introduced", "2.0a1"), ("fixed", "2.0.3")),
            {"type": "GIT", "repo": "https://x", "events": [{"introduced": "abc"}]},
        ],
        versions=["0.5", "3.0"],
    )
    assert is_affected(affected, "0.5")
    assert is_affected(affected, "1.1")
    assert not is_affected(affected, "1.2")
    assert is_affected(affected, "2.0rc1")
    assert is_affected(affected, "2.0.2")
    assert not is_affected(affected, "2.0.3")
    assert is_affected(affected, "3.0")
    assert is_affected(affected, "3.0.0")  # equal under PEP 440
    assert not is_affected(affected, "4.0")


def test_ecosystem_ranges_use_the_ecosystem_order():
    debian = affected_entry(
        "Debian:12",
        "glibc",
        ranges=[ecosystem_range(("introduced", "0"), ("fixed", "2.36-9+deb12u4"))],
    )
    assert is_affected(debian, "2.36-9+deb12u3")
    assert is_affected(debian, "2.36-9")
    assert not is_affected(debian, "2.36-9+deb12u4")
    assert not is_affected(debian, "2.36-9+deb12u10")  # 10 > 4 numerically, not as text
    alpine = affected_entry(
        "Alpine:v3.19", "musl", ranges=[ecosystem_range(("introduced", "0"), ("fixed", "1.2.4-r3"))]
    )
    assert is_affected(alpine, "1.2.4_git20230717-r2") is False
    assert is_affected(alpine, "1.2.4-r2")


def test_unordered_ecosystem_only_uses_the_versions_list():
    affected = affected_entry(
        "Hackage", ranges=[ecosystem_range(("introduced", "0"))], versions=["1.0"]
    )
    assert is_affected(affected, "1.0")
    assert not is_affected(affected, "2.0")


# --- matching components ------------------------------------------------------------


def component(**fields) -> Component:
    defaults = {"name": "libc6", "version": "2.36-9+deb12u3", "type": "deb", "purl": "pkg:x"}
    return Component(**{**defaults, **fields})


GLIBC_RECORD = parse_record(
    record(
        id="DSA-0000-1",
        affected=[
            {
                "package": {"ecosystem": "Debian:12", "name": "glibc"},
                "ranges": [ecosystem_range(("introduced", "0"), ("fixed", "2.36-9+deb12u4"))],
            }
        ],
    )
)


def test_debian_matches_by_source_name_and_source_version():
    libc = component(ecosystem="Debian:12", source_name="glibc", source_version="2.36-9+deb12u3")
    assert matches_component(GLIBC_RECORD, libc)
    fixed = component(ecosystem="Debian:12", source_name="glibc", source_version="2.36-9+deb12u4")
    assert not matches_component(GLIBC_RECORD, fixed)
    other_release = component(ecosystem="Debian:11", source_name="glibc", source_version="2.31-13")
    assert not matches_component(GLIBC_RECORD, other_release)
    binary_name_only = component(ecosystem="Debian:12", source_name=None, source_version=None)
    assert not matches_component(GLIBC_RECORD, binary_name_only)


@pytest.mark.parametrize(
    ("record_ecosystem", "component_ecosystem", "expected"),
    [
        ("Debian", "Debian:12", True),
        ("Debian:12", "Debian:12", True),
        ("Debian:11", "Debian:12", False),
        ("Debian:12", "Ubuntu:22.04", False),
        ("Ubuntu:22.04:LTS", "Ubuntu:22.04", True),
        ("Ubuntu:Pro:18.04:LTS", "Ubuntu:18.04", False),
        ("Ubuntu:23.10", "Ubuntu:23.10", True),
        ("Alpine:v3.19", "Alpine:v3.19", True),
        ("Alpine:v3.18", "Alpine:v3.19", False),
        ("Maven:https://maven.google.com", "Maven", True),
        ("PyPI", "PyPI", True),
        ("Debian:12", "Debian", False),
    ],
)
def test_ecosystem_applies(record_ecosystem, component_ecosystem, expected):
    assert ecosystem_applies(record_ecosystem, component_ecosystem) is expected


def test_pypi_names_are_normalised_and_go_versions_lose_their_v():
    pypi_record = parse_record(
        record(
            affected=[
                {
                    "package": {"ecosystem": "PyPI", "name": "zope.interface"},
                    "ranges": [ecosystem_range(("introduced", "0"), ("fixed", "5.0"))],
                }
            ]
        )
    )
    assert matches_component(
        pypi_record, component(name="Zope_Interface", version="4.7", type="pypi", ecosystem="PyPI")
    )
    go_record = parse_record(
        record(
            affected=[
                {
                    "package": {"ecosystem": "Go", "name": "golang.org/x/net"},
                    "ranges": [semver(("introduced", "0"), ("fixed", "0.17.0"))],
                },
                {
                    "package": {"ecosystem": "Go", "name": "golang.org/x/net"},
                    "versions": ["v0.20.0"],
                },
            ]
        )
    )
    old = component(name="golang.org/x/net", version="v0.10.0", type="golang", ecosystem="Go")
    new = component(name="golang.org/x/net", version="v0.17.0", type="golang", ecosystem="Go")
    assert len(matching_affected(go_record, old)) == 1
    assert not matches_component(go_record, new)


def test_rpm_matches_source_or_binary_name():
    rocky = parse_record(
        record(
            affected=[
                {
                    "package": {"ecosystem": "Rocky Linux:9", "name": "openssl"},
                    "ranges": [ecosystem_range(("introduced", "0"), ("fixed", "1:3.0.7-25.el9"))],
                }
            ]
        )
    )
    libs = component(
        name="openssl-libs",
        version="1:3.0.7-24.el9",
        type="rpm",
        ecosystem="Rocky Linux:9",
        source_name="openssl",
        source_version="1:3.0.7-24.el9",
    )
    assert matches_component(rocky, libs)


def test_withdrawn_records_and_components_without_ecosystem_never_match():
    withdrawn = parse_record(
        {
            **record(withdrawn="2024-02-01T00:00:00Z"),
            "affected": [
                {
                    "package": {"ecosystem": "Debian:12", "name": "glibc"},
                    "ranges": [ecosystem_range(("introduced", "0"))],
                }
            ],
        }
    )
    libc = component(ecosystem="Debian:12", source_name="glibc", source_version="2.36-9")
    assert not matches_component(withdrawn, libc)
    assert not matches_component(GLIBC_RECORD, component(ecosystem=None, source_name="glibc"))


# --- parsing and archives ------------------------------------------------------------


def test_parse_record_fields():
    parsed = parse_record(
        record(
            aliases=["CVE-2024-0001"],
            upstream=["CVE-2024-0002"],
            summary="bad",
            severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
            affected=[
                {
                    "package": {"ecosystem": "npm", "name": "x", "purl": "pkg:npm/x"},
                    "ranges": [semver(("introduced", "0"))],
                    "database_specific": {"source": "y"},
                }
            ],
        )
    )
    assert parsed.aliases == ("CVE-2024-0001",)
    assert parsed.upstream == ("CVE-2024-0002",)
    assert parsed.affected[0].package.purl == "pkg:npm/x"
    assert parsed.affected[0].ranges[0].events[0].kind == "introduced"
    assert parsed.severity[0].type == "CVSS_V3"


@pytest.mark.parametrize(
    "data",
    [
        [],
        {},
        {"id": "X"},  # no modified
        record(aliases="CVE-1"),
        record(affected=[{"package": {"ecosystem": 1, "name": "x"}}]),
        record(
            affected=[
                {"ranges": [{"type": "SEMVER", "events": [{"introduced": "0", "fixed": "1"}]}]}
            ]
        ),
        record(affected=[{"ranges": [{"type": "SEMVER", "events": [{"foo": "1"}]}]}]),
        record(affected=[{"ranges": [{"events": []}]}]),
        record(affected=[{"versions": [1, 2]}]),
        record(severity=[{"type": "CVSS_V3"}]),
    ],
)
def test_parse_record_rejects_malformed_records(data):
    with pytest.raises(OsvRecordError):
        parse_record(data)


def zip_of(entries: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    buffer.seek(0)
    return buffer


def test_read_zip_skips_withdrawn_and_collects_malformed_entries():
    archive = zip_of(
        {
            "A-1.json": json.dumps(record(id="A-1")).encode(),
            "A-2.json": json.dumps(record(id="A-2", withdrawn="2024-01-02T00:00:00Z")).encode(),
            "A-3.json": b"{not json",
            "A-4.json": json.dumps({"id": "A-4"}).encode(),
            "README.txt": b"not a record",
            "A-5.json": json.dumps(record(id="A-5")).encode(),
        }
    )
    errors = []

    ids = [r.id for r in read_zip(archive, errors=errors)]

    assert ids == ["A-1", "A-5"]
    assert [error.entry for error in errors] == ["A-3.json", "A-4.json"]
    assert "not JSON" in str(errors[0])


def test_read_zip_raises_on_malformed_entry_without_an_error_list():
    archive = zip_of({"B-1.json": b"[]"})
    with pytest.raises(OsvRecordError, match="B-1.json"):
        list(read_zip(archive))


def test_read_zip_from_a_path(tmp_path):
    path = tmp_path / "all.zip"
    path.write_bytes(zip_of({"C-1.json": json.dumps(record(id="C-1")).encode()}).getvalue())
    assert [r.id for r in read_zip(path)] == ["C-1"]
    assert [r.id for r in read_zip(str(path))] == ["C-1"]


def test_read_zip_raises_on_a_corrupt_archive():
    with pytest.raises(OsvArchiveError):
        list(read_zip(io.BytesIO(b"PK\x03\x04 definitely not a zip")))
    data = bytearray(zip_of({"D-1.json": json.dumps(record(id="D-1")).encode() * 50}).getvalue())
    data[60:80] = b"\0" * 20  # inside the compressed data: CRC or inflate error
    with pytest.raises(OsvArchiveError):
        list(read_zip(io.BytesIO(bytes(data))))


# --- severity ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vector", "score"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9),
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5),
        ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N", 6.4),
        ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
        # Temporal metrics do not change the base score.
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C", 9.8),
    ],
)
def test_cvss3_base_scores(vector, score):
    assert cvss3_base_score(vector) == score


@pytest.mark.parametrize(
    "vector",
    [
        "CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P",
        "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
        "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/junk",
    ],
)
def test_cvss3_rejects_invalid_vectors(vector):
    with pytest.raises(ValueError):
        cvss3_base_score(vector)


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (10.0, "critical"),
        (9.0, "critical"),
        (8.9, "high"),
        (7.0, "high"),
        (6.9, "medium"),
        (4.0, "medium"),
        (3.9, "low"),
        (0.1, "low"),
        (0.0, "none"),
    ],
)
def test_severity_bands(score, band):
    assert severity_band(score) == band


def test_severity_from_the_vector_wins_over_words():
    parsed = parse_record(
        record(
            severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"}],
            database_specific={"severity": "CRITICAL"},
        )
    )
    assert severity_of(parsed) == ("medium", 6.1, "CVSS_V3")


def test_severity_from_per_package_vectors_takes_the_highest():
    parsed = parse_record(
        record(
            affected=[
                {
                    "package": {"ecosystem": "npm", "name": "a"},
                    "severity": [
                        {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"}
                    ],
                },
                {
                    "package": {"ecosystem": "npm", "name": "b"},
                    "severity": [
                        {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}
                    ],
                },
            ]
        )
    )
    assert severity_of(parsed) == ("critical", 9.8, "CVSS_V3")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"database_specific": {"severity": "MODERATE"}}, ("medium", None, "database_specific")),
        ({"database_specific": {"severity": "HIGH"}}, ("high", None, "database_specific")),
        (
            {
                "affected": [
                    {
                        "package": {"ecosystem": "Go", "name": "x"},
                        "ecosystem_specific": {"severity": "LOW"},
                    }
                ]
            },
            ("low", None, "ecosystem_specific"),
        ),
        ({"severity": [{"type": "Ubuntu", "score": "negligible"}]}, ("low", None, "Ubuntu")),
        # A v4 vector alone is not scored; the word decides.
        (
            {
                "severity": [
                    {
                        "type": "CVSS_V4",
                        "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                    }
                ],
                "database_specific": {"severity": "CRITICAL"},
            },
            ("critical", None, "database_specific"),
        ),
        (
            {
                "severity": [
                    {
                        "type": "CVSS_V4",
                        "score": "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
                    }
                ]
            },
            ("unknown", None, "none"),
        ),
        ({"database_specific": {"severity": "whatever"}}, ("unknown", None, "none")),
        ({"severity": [{"type": "CVSS_V3", "score": "garbage"}]}, ("unknown", None, "none")),
    ],
)
def test_severity_words_and_unknown(fields, expected):
    assert severity_of(parse_record(record(**fields))) == expected


def test_severity_follows_aliases_and_upstream_through_a_lookup():
    cve = parse_record(
        record(
            id="CVE-2024-1",
            severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}],
        )
    )
    debian = parse_record(record(id="DSA-1", upstream=["CVE-2024-404", "CVE-2024-1"]))
    store = {cve.id: cve}

    assert severity_of(debian) == ("unknown", None, "none")
    assert severity_of(debian, store.get) == ("high", 7.8, "CVE-2024-1:CVSS_V3")


def test_severity_word_mapping():
    assert severity_word("MODERATE") == "medium"
    assert severity_word(" Important ") == "high"
    assert severity_word(None) is None
    assert severity_word("untriaged") is None
