"""Version ordering tables, one per ecosystem."""

from __future__ import annotations

import pytest

from scanning.versions import compare, is_supported, rpmvercmp, sort_key


def assert_ascending(ecosystem: str, versions: list[str]) -> None:
    for lower, higher in zip(versions, versions[1:], strict=False):
        assert compare(ecosystem, lower, higher) == -1, (lower, higher)
        assert compare(ecosystem, higher, lower) == 1, (higher, lower)
    assert sorted(reversed(versions), key=sort_key(ecosystem)) == versions


@pytest.mark.parametrize("ecosystem", ["Debian", "Debian:12", "Ubuntu:22.04"])
def test_debian_order(ecosystem):
    assert_ascending(
        ecosystem,
        [
            "0.9",
            "1.0~~",
            "1.0~~a",
            "1.0~rc1",
            "1.0",
            "1.0-1",
            "1.0-1+b1",
            "1.0-1.1",
            "1.0a",
            "1.0+dfsg-1",
            "1.0.1",
            "1.10",
            "2.0",
            "1:0.9",
            "1:1.2.13.dfsg-1",
            "2:0.1",
        ],
    )


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1.0~rc1", "1.0", -1),
        ("1:0.9", "2.0", 1),
        ("0:1.0", "1.0", 0),
        ("1.0-01", "1.0-1", 0),
        ("1.2.3-1ubuntu0.1", "1.2.3-1", 1),
        ("2.36-9+deb12u4", "2.36-9+deb12u10", -1),
        ("7.88.1-10+deb12u5", "7.88.1-10+deb12u5", 0),
        ("1.0-a-1", "1.0-a-2", -1),  # the revision is after the last hyphen
    ],
)
def test_debian_pairs(a, b, expected):
    assert compare("Debian", a, b) == expected


def test_alpine_order():
    assert_ascending(
        "Alpine:v3.19",
        [
            "1.2.2",
            "1.2.3_alpha",
            "1.2.3_alpha2",
            "1.2.3_beta1",
            "1.2.3_pre1",
            "1.2.3_rc1",
            "1.2.3",
            "1.2.3-r1",
            "1.2.3-r10",
            "1.2.3_cvs1",
            "1.2.3_svn1",
            "1.2.3_git20230101",
            "1.2.3_git20230101-r1",
            "1.2.3_git20240101",
            "1.2.3_hg1",
            "1.2.3_p1",
            "1.2.3_p2",
            "1.2.3a",
            "1.2.3b",
            "1.2.4",
            "1.10",
        ],
    )


def test_alpine_pairs():
    assert compare("Alpine", "1.2.4_git20230717-r4", "1.2.4-r4") == 1
    assert compare("Alpine", "3.1.4-r5", "3.1.4-r5") == 0
    assert compare("Wolfi", "3.1.4-r5", "3.1.4-r6") == -1
    # Not an apk version: sorts before every valid one.
    assert compare("Alpine", "not-a-version", "0.1") == -1


def test_rpm_order():
    assert_ascending(
        "Rocky Linux:9",
        [
            "1.0~rc1-1",
            "1.0-1",
            "1.0-1.el9",
            "1.0-2",
            "1.0^20230101-1",
            "1.0a-1",
            "1.0.1-1",
            "1.10-1",
            "1:0.5-1",
        ],
    )


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("1.0", "1.0", 0),
        ("1.0", "2.0", -1),
        ("2.0.1", "2.0.1a", -1),
        ("5.5p1", "5.5p2", -1),
        ("5.5p10", "5.5p1", 1),
        ("10xyz", "10.1xyz", -1),
        ("xyz10", "xyz10.1", -1),
        ("1.0", "1_0", 0),
        ("1.0aa", "1.0a", 1),
        ("1a", "1", 1),
        ("1.0~rc1", "1.0", -1),
        ("1.0~rc1", "1.0~rc2", -1),
        ("1.0~rc1~git123", "1.0~rc1", -1),
        ("1.0^", "1.0", 1),
        ("1.0^git1", "1.0.1", -1),
        ("1.0^git1", "1.0^git2", -1),
        ("1.0^git1~pre", "1.0^git1", -1),
        ("a", "1", -1),
        ("001", "1", 0),
    ],
)
def test_rpmvercmp_reference_cases(a, b, expected):
    assert rpmvercmp(a, b) == expected
    assert rpmvercmp(b, a) == -expected


def test_rpm_epoch_and_release():
    assert compare("Red Hat", "1:3.0.7-24.el9", "3.0.7-25.el9") == 1
    assert compare("AlmaLinux:9", "0:3.0.7-24.el9", "3.0.7-24.el9") == 0
    # Without a release on one side, only epoch and version count.
    assert compare("openSUSE:Leap 15.5", "3.0.7", "3.0.7-24.el9") == 0
    assert compare("SUSE:Linux Enterprise Server 15 SP5", "3.0.6", "3.0.7-24.el9") == -1


def test_pypi_order():
    assert_ascending(
        "PyPI",
        [
            "not a version",
            "1.0.dev1",
            "1.0a1",
            "1.0b2",
            "1.0rc1",
            "1.0",
            "1.0.post1",
            "1.0.1",
            "1!0.5",
        ],
    )
    assert compare("PyPI", "1.0", "1.0.0") == 0
    assert compare("PyPI", "2.31.0", "2.4") == 1


@pytest.mark.parametrize("ecosystem", ["npm", "Go", "crates.io"])
def test_semver_order(ecosystem):
    assert_ascending(
        ecosystem,
        [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.2.0",
            "1.10.0",
            "2.0.0",
        ],
    )
    assert compare(ecosystem, "1.0.0+build.1", "1.0.0+build.2") == 0


def test_go_prefix_and_pseudo_versions():
    assert compare("Go", "v1.2.3", "1.2.3") == 0
    assert_ascending(
        "Go",
        [
            "v0.0.0-20191109021931-daa7c04131f5",
            "v0.0.0-20200101000000-aaaaaaaaaaaa",
            "v0.1.0",
            "v1.2.3",
            "v1.2.4-0.20191109021931-daa7c04131f5",
            "v1.2.4",
            "v2.0.0+incompatible",
        ],
    )
    assert compare("Go", "1.21.5", "1.21.10") == -1
    assert compare("Go", "1.21.0-rc.2", "1.21.0") == -1


def test_maven_order():
    assert_ascending(
        "Maven",
        [
            "1.0-alpha-1",
            "1.0-beta-1",
            "1.0-milestone-1",
            "1.0-rc-1",
            "1.0-SNAPSHOT",
            "1.0",
            "1.0-sp-1",
            "1.0.1",
            "1.1",
            "2.0",
        ],
    )
    assert compare("Maven", "1.0", "1.0.0") == 0
    assert compare("Maven", "2.15.0", "2.9.10.8") == 1


def test_unknown_ecosystem_raises():
    with pytest.raises(ValueError, match="Hackage"):
        compare("Hackage", "1", "2")
    assert not is_supported("Hackage")
    assert is_supported("Debian:12")
