"""Catalogers, one synthetic image per package database format."""

from __future__ import annotations

import io
import sqlite3
import struct
import time
import zipfile
from pathlib import Path

import pytest

from scanning.catalogers import (
    CATALOGERS,
    Distro,
    catalog,
    detect_distro,
    dpkg,
    golang,
    java,
    npm,
    osv_ecosystem,
    parse_os_release,
    python,
    rpm,
    wanted,
)
from scanning.layers import LayerContents, squash
from tests.scanning.builders import Dir, File, Symlink, image

DEBIAN_OS_RELEASE = File(
    "usr/lib/os-release",
    b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\n'
    b'VERSION_ID="12"\nID=debian\n',
)
DEBIAN_OS_RELEASE_LINK = Symlink("etc/os-release", "../usr/lib/os-release")

DPKG_STATUS = b"""Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library
 Contains the standard libraries.

Package: perl-base
Status: install ok installed
Architecture: amd64
Source: perl (5.36.0-7)
Version: 5.36.0-7+deb12u1
Description: minimal Perl system

Package: removed-pkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: half-installed
Status: install reinstreq half-installed
Version: 2.0-1

Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib
Version: 1:1.2.13.dfsg-1
"""

PERL_COPYRIGHT = b"""Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: perl

Files: *
Copyright: Larry Wall
License: Artistic or GPL-1+

Files: cpan/Some-Module/*
License: GPL-2+ or Artistic, and BSD-3-clause

Files: debian/*
License: Artistic or GPL-1+

License: Artistic
 The "Artistic License"
"""

LIBC_COPYRIGHT = b"""This is the Debian prepackaged version of the GNU C Library.

On Debian systems, the complete text of the GNU Library General Public
License can be found in `/usr/share/common-licenses/LGPL-2.1'.
Some files are under the GPL, see /usr/share/common-licenses/GPL-2.
"""


def by_name(components):
    return {component.name: component for component in components}


# --- distro ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("os_release", "ecosystem"),
    [
        ('ID=debian\nVERSION_ID="12"\n', "Debian:12"),
        (
            'ID=ubuntu\nVERSION_ID="22.04"\nVERSION="22.04.3 LTS (Jammy Jellyfish)"\n',
            "Ubuntu:22.04",
        ),
        ("ID=alpine\nVERSION_ID=3.19.1\n", "Alpine:v3.19"),
        ("ID=alpine\nVERSION_ID=3.20_alpha20240329\n", "Alpine:v3.20"),
        ('ID="rocky"\nVERSION_ID="9.3"\n', "Rocky Linux:9"),
        ('ID="almalinux"\nVERSION_ID="8.9"\n', "AlmaLinux:8"),
        ('ID="rhel"\nVERSION_ID="9.3"\n', "Red Hat"),
        ("ID=wolfi\nVERSION_ID=20230201\n", "Wolfi"),
        (
            'ID="opensuse-leap"\nVERSION_ID="15.5"\nPRETTY_NAME="openSUSE Leap 15.5"\n',
            "openSUSE:Leap 15.5",
        ),
        (
            'ID="sles"\nVERSION_ID="15.5"\nPRETTY_NAME="SUSE Linux Enterprise Server 15 SP5"\n',
            "SUSE:Linux Enterprise Server 15 SP5",
        ),
        ("ID=debian\n", "Debian"),
        ("ID=gentoo\nVERSION_ID=2.14\n", None),
    ],
)
def test_detect_distro_maps_to_osv_ecosystems(os_release, ecosystem):
    tree = image([File("etc/os-release", os_release.encode())])

    distro = detect_distro(tree)

    assert distro is not None
    assert distro.ecosystem == ecosystem


def test_detect_distro_follows_the_etc_symlink_and_falls_back_to_usr_lib():
    tree = image([DEBIAN_OS_RELEASE, DEBIAN_OS_RELEASE_LINK])

    assert detect_distro(tree) == Distro(
        id="debian",
        version_id="12",
        ecosystem="Debian:12",
        pretty_name="Debian GNU/Linux 12 (bookworm)",
    )
    assert detect_distro(image([File("etc/hostname", b"x")])) is None


def test_parse_os_release_handles_quotes_and_comments():
    values = parse_os_release('# comment\nNAME=\'Foo "Linux"\'\nID=foo\nBAD LINE\nX="a\\"b"\n')
    assert values == {"NAME": 'Foo "Linux"', "ID": "foo", "X": 'a"b'}


def test_osv_ecosystem_without_version():
    assert osv_ecosystem("alpine", None) == "Alpine"
    assert osv_ecosystem("rocky", "") == "Rocky Linux"


def test_wanted_is_the_union_of_the_catalogers():
    for path in [
        "etc/os-release",
        "var/lib/dpkg/status",
        "var/lib/dpkg/status.d/libssl3",
        "usr/share/doc/libc6/copyright",
        "lib/apk/db/installed",
        "usr/lib/sysimage/rpm/rpmdb.sqlite",
        "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA",
        "usr/lib/python3.11/site-packages/foo.egg-info/PKG-INFO",
        "app/node_modules/@babel/core/package.json",
        "opt/app/lib/app.war",
        "usr/local/bin/kubectl",
        "ko-app/server",
    ]:
        assert wanted(path), path
    for path in [
        "etc/passwd",
        "var/lib/dpkg/status.d/libssl3.md5sums",
        "usr/share/doc/libc6/changelog.gz",
        "app/node_modules/foo/lib/package.json",
        "app/package.json",
        "app/node_modules/.bin/package.json",
        "usr/lib/python3/dist-packages/six.py",
        "usr/share/zoneinfo/Europe/Paris",
    ]:
        assert not wanted(path), path
    assert {cataloger.name for cataloger in CATALOGERS} == {
        "dpkg",
        "apk",
        "rpm",
        "python",
        "npm",
        "java",
        "golang",
    }


# --- dpkg --------------------------------------------------------------------------


def debian_image():
    return image(
        [
            DEBIAN_OS_RELEASE,
            DEBIAN_OS_RELEASE_LINK,
            File("var/lib/dpkg/status", DPKG_STATUS),
            File("usr/share/doc/perl-base/copyright", PERL_COPYRIGHT),
            File("usr/share/doc/libc6/copyright", LIBC_COPYRIGHT),
        ]
    )


def test_dpkg_lists_installed_packages_with_sources():
    components = by_name(catalog(debian_image()))

    assert set(components) == {"libc6", "perl-base", "zlib1g"}
    libc = components["libc6"]
    assert (libc.version, libc.source_name, libc.source_version) == (
        "2.36-9+deb12u4",
        "glibc",
        "2.36-9+deb12u4",
    )
    assert libc.ecosystem == "Debian:12"
    assert libc.type == "deb"
    assert libc.purl == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
    assert libc.layer_digest == "sha256:00"
    assert libc.path == "var/lib/dpkg/status"
    perl = components["perl-base"]
    assert (perl.source_name, perl.source_version) == ("perl", "5.36.0-7")
    zlib = components["zlib1g"]
    assert (zlib.version, zlib.source_name, zlib.source_version) == (
        "1:1.2.13.dfsg-1",
        "zlib",
        "1:1.2.13.dfsg-1",
    )


def test_dpkg_licenses_from_dep5_and_common_licenses_references():
    components = by_name(catalog(debian_image()))

    perl = [(info.raw, info.spdx) for info in components["perl-base"].licenses]
    assert perl == [
        ("Artistic or GPL-1+", "Artistic-1.0-Perl OR GPL-1.0-or-later"),
        (
            "GPL-2+ or Artistic, and BSD-3-clause",
            "(GPL-2.0-or-later OR Artistic-1.0-Perl) AND BSD-3-Clause",
        ),
        ("Artistic", "Artistic-1.0-Perl"),
    ]
    assert {info.found_in for info in components["perl-base"].licenses} == {
        "usr/share/doc/perl-base/copyright"
    }
    libc = [(info.raw, info.spdx) for info in components["libc6"].licenses]
    assert libc == [("LGPL-2.1", "LGPL-2.1-only"), ("GPL-2", "GPL-2.0-only")]
    assert components["zlib1g"].licenses == []


def test_dpkg_status_d_files_have_no_status_field():
    tree = image(
        [
            File("etc/os-release", b"ID=debian\nVERSION_ID=12\n"),
            File("var/lib/dpkg/status.d/base", b"Package: base-files\nVersion: 12.4\n"),
            File(
                "var/lib/dpkg/status.d/libssl3",
                b"Package: libssl3\nSource: openssl\nVersion: 3.0.11-1~deb12u2\n",
            ),
            File("var/lib/dpkg/status.d/libssl3.md5sums", b"abc  usr/lib/x\n"),
        ]
    )

    components = by_name(catalog(tree))

    assert set(components) == {"base-files", "libssl3"}
    assert components["libssl3"].source_name == "openssl"
    assert components["libssl3"].path == "var/lib/dpkg/status.d/libssl3"


def test_dpkg_parse_paragraphs_keeps_continuations():
    stanzas = list(dpkg.parse_paragraphs("A: 1\nB: x\n y\n\n\nA: 2\nnot a field\n"))
    assert stanzas == [{"A": "1", "B": "x\ny"}, {"A": "2"}]


def test_dpkg_status_of_this_machine():
    status = Path("/var/lib/dpkg/status")
    if not status.is_file():
        pytest.skip("no dpkg database on this machine")
    files = {"var/lib/dpkg/status": status.read_bytes()}
    for copyright_file in Path("/usr/share/doc").glob("*/copyright"):
        if copyright_file.is_file():
            files[str(copyright_file).lstrip("/")] = copyright_file.read_bytes()
    tree = squash([LayerContents(digest="sha256:host", files=files)])

    started = time.perf_counter()
    components = catalog(tree)
    elapsed = time.perf_counter() - started

    assert len(components) > 100
    assert all(component.version for component in components)
    assert all(component.type == "deb" for component in components)
    with_spdx = [c for c in components if any(info.spdx for info in c.licenses)]
    assert len(with_spdx) > len(components) / 2
    assert elapsed < 5


# --- apk ---------------------------------------------------------------------------

APK_INSTALLED = b"""C:Q1abc=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:383152
L:MIT
o:musl
t:1700000000

C:Q1def=
P:libcrypto3
V:3.1.4-r5
A:x86_64
L:Apache-2.0
o:openssl
F:lib
R:libcrypto.so.3

P:busybox-binsh
V:1.36.1-r15
A:x86_64
L:GPL-2.0-only
o:busybox
"""


def test_apk_installed_database():
    tree = image(
        [
            File("etc/os-release", b"ID=alpine\nVERSION_ID=3.19.1\n"),
            File("lib/apk/db/installed", APK_INSTALLED),
        ]
    )

    components = by_name(catalog(tree))

    assert set(components) == {"musl", "libcrypto3", "busybox-binsh"}
    crypto = components["libcrypto3"]
    assert (crypto.version, crypto.source_name, crypto.source_version) == (
        "3.1.4-r5",
        "openssl",
        "3.1.4-r5",
    )
    assert crypto.ecosystem == "Alpine:v3.19"
    assert crypto.purl == "pkg:apk/alpine/libcrypto3@3.1.4-r5?arch=x86_64&distro=alpine-3.19.1"
    assert [(info.raw, info.spdx) for info in crypto.licenses] == [("Apache-2.0", "Apache-2.0")]
    assert components["musl"].version == "1.2.4_git20230717-r4"


# --- rpm ---------------------------------------------------------------------------


def rpm_header_blob(tags: dict[int, int | str]) -> bytes:
    index = b""
    data = bytearray()
    for tag, value in tags.items():
        if isinstance(value, int):
            data += b"\0" * (-len(data) % 4)
            index += struct.pack(">IIII", tag, rpm.TYPE_INT32, len(data), 1)
            data += struct.pack(">I", value)
        else:
            index += struct.pack(">IIII", tag, rpm.TYPE_STRING, len(data), 1)
            data += value.encode() + b"\0"
    return struct.pack(">II", len(tags), len(data)) + index + bytes(data)


BASH_HEADER = {
    rpm.TAG_NAME: "bash",
    rpm.TAG_VERSION: "5.1.8",
    rpm.TAG_RELEASE: "6.el9",
    rpm.TAG_ARCH: "x86_64",
    rpm.TAG_LICENSE: "GPLv3+",
    rpm.TAG_SOURCERPM: "bash-5.1.8-6.el9.src.rpm",
}
OPENSSL_HEADER = {
    rpm.TAG_NAME: "openssl-libs",
    rpm.TAG_EPOCH: 1,
    rpm.TAG_VERSION: "3.0.7",
    rpm.TAG_RELEASE: "24.el9",
    rpm.TAG_ARCH: "x86_64",
    rpm.TAG_LICENSE: "ASL 2.0",
    rpm.TAG_SOURCERPM: "openssl-3.0.7-24.el9.src.rpm",
}


def rpmdb_sqlite(tmp_path: Path, blobs: list[bytes]) -> bytes:
    path = tmp_path / "rpmdb.sqlite"
    connection = sqlite3.connect(path)
    connection.execute(
        "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)"
    )
    connection.executemany("INSERT INTO Packages (blob) VALUES (?)", [(b,) for b in blobs])
    connection.commit()
    connection.close()
    return path.read_bytes()


def test_rpm_sqlite_database(tmp_path):
    database = rpmdb_sqlite(
        tmp_path,
        [
            rpm_header_blob(BASH_HEADER),
            rpm_header_blob(OPENSSL_HEADER),
            rpm_header_blob({rpm.TAG_NAME: "gpg-pubkey", rpm.TAG_VERSION: "fd431d51"}),
            b"\xff" * 40,  # malformed: skipped, not fatal
        ],
    )
    tree = image(
        [
            File("etc/os-release", b'ID="rocky"\nVERSION_ID="9.3"\n'),
            File("usr/lib/sysimage/rpm/rpmdb.sqlite", database),
            Symlink("var/lib/rpm", "../../usr/lib/sysimage/rpm"),
        ]
    )

    components = by_name(catalog(tree))

    assert set(components) == {"bash", "openssl-libs"}
    bash = components["bash"]
    assert (bash.version, bash.source_name, bash.source_version) == (
        "5.1.8-6.el9",
        "bash",
        "5.1.8-6.el9",
    )
    assert bash.ecosystem == "Rocky Linux:9"
    assert bash.purl == "pkg:rpm/rocky/bash@5.1.8-6.el9?arch=x86_64&distro=rocky-9.3"
    assert [(i.raw, i.spdx) for i in bash.licenses] == [("GPLv3+", "GPL-3.0-or-later")]
    openssl = components["openssl-libs"]
    assert openssl.version == "1:3.0.7-24.el9"
    assert (openssl.source_name, openssl.source_version) == ("openssl", "1:3.0.7-24.el9")
    assert "epoch=1" in openssl.purl
    assert [(i.raw, i.spdx) for i in openssl.licenses] == [("ASL 2.0", "Apache-2.0")]


def test_rpm_header_parser_accepts_the_magic_prefix():
    blob = rpm_header_blob(BASH_HEADER)
    package = rpm.package_from_header(rpm.HEADER_MAGIC + b"\0" * 4 + blob)
    assert package.full_version == "5.1.8-6.el9"


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\0\0\0\0\0\0\0\0",  # no index entries
        struct.pack(">II", 0xFFFFFFFF, 16),  # absurd index count
        struct.pack(">II", 1, 0xFFFFFFF0) + b"\0" * 16,  # absurd data length
        struct.pack(">II", 1, 4) + struct.pack(">IIII", 1000, 6, 0, 1) + b"abcd",  # no NUL
        struct.pack(">II", 1, 4) + struct.pack(">IIII", 1000, 6, 99, 1) + b"ab\0\0",  # offset
        struct.pack(">II", 1, 4) + struct.pack(">IIII", 1003, 4, 2, 1) + b"\0\0\0\0",  # int32
        struct.pack(">II", 1, 4) + struct.pack(">IIII", 1000, 7, 0, 1) + b"ab\0\0",  # type
        struct.pack(">II", 2, 4) + struct.pack(">IIII", 1000, 6, 0, 1),  # short index
        rpm_header_blob({rpm.TAG_VERSION: "1.0"}),  # no name
    ],
)
def test_rpm_header_parser_rejects_malformed_blobs(blob):
    with pytest.raises(rpm.RpmHeaderError):
        rpm.package_from_header(blob)


def test_rpm_source_rpm_names():
    assert rpm.split_source_rpm("bash-5.1.8-6.el9.src.rpm") == ("bash", "5.1.8-6.el9")
    assert rpm.split_source_rpm("weird.src.rpm") == ("weird", None)


def test_rpm_unreadable_database_is_skipped():
    tree = image([File("var/lib/rpm/rpmdb.sqlite", b"not a database" * 100)])
    assert catalog(tree) == []


# --- python ------------------------------------------------------------------------

PEP639_METADATA = b"""Metadata-Version: 2.4
Name: Fancy_Lib
Version: 2.1.0
License-Expression: MIT OR Apache-2.0
License-File: LICENSE
Classifier: License :: OSI Approved :: BSD License

Long description.
"""

CLASSIFIER_METADATA = b"""Metadata-Version: 2.1
Name: requests
Version: 2.31.0
License: Apache 2.0
Classifier: Development Status :: 5 - Production/Stable
Classifier: License :: OSI Approved :: Apache Software License
Classifier: License :: OSI Approved :: MIT License
"""

LEGACY_PKG_INFO = b"""Metadata-Version: 1.0
Name: oldpkg
Version: 0.9
License: GPLv2+
Description: caf\xe9 in Latin-1
"""

LICENSE_TEXT_METADATA = b"""Metadata-Version: 2.1
Name: pasted
Version: 1.0
License: Copyright (c) 2020 Someone
        Permission is hereby granted, free of charge, to any person obtaining a copy
"""


def test_python_metadata_license_order():
    site = "usr/lib/python3.11/site-packages"
    tree = image(
        [
            File(f"{site}/fancy_lib-2.1.0.dist-info/METADATA", PEP639_METADATA),
            File(f"{site}/requests-2.31.0.dist-info/METADATA", CLASSIFIER_METADATA),
            File(f"{site}/oldpkg-0.9-py3.11.egg-info/PKG-INFO", LEGACY_PKG_INFO),
            File(f"{site}/pasted-1.0.dist-info/METADATA", LICENSE_TEXT_METADATA),
            File(f"{site}/broken-1.0.dist-info/METADATA", b"\x00\x01 not metadata"),
        ]
    )

    components = by_name(catalog(tree))

    assert set(components) == {"Fancy_Lib", "requests", "oldpkg", "pasted"}
    fancy = components["Fancy_Lib"]
    assert fancy.purl == "pkg:pypi/fancy-lib@2.1.0"
    assert fancy.ecosystem == "PyPI"
    assert [(i.raw, i.spdx) for i in fancy.licenses] == [("MIT OR Apache-2.0", "MIT OR Apache-2.0")]
    assert fancy.licenses[0].found_in.endswith("METADATA#License-Expression")
    requests = components["requests"]
    assert [i.spdx for i in requests.licenses] == ["Apache-2.0", "MIT"]
    assert all(i.found_in.endswith("#Classifier") for i in requests.licenses)
    assert [(i.raw, i.spdx) for i in components["oldpkg"].licenses] == [
        ("GPLv2+", "GPL-2.0-or-later")
    ]
    assert [(i.raw, i.spdx) for i in components["pasted"].licenses] == [
        ("Copyright (c) 2020 Someone", None)
    ]


def test_python_egg_info_file():
    tree = image([File("usr/lib/python3/dist-packages/thing-1.2.egg-info", LEGACY_PKG_INFO)])
    assert [c.name for c in python.catalog(tree, None)] == ["oldpkg"]


# --- npm ---------------------------------------------------------------------------


def test_npm_packages_and_license_shapes():
    modules = "app/node_modules"
    tree = image(
        [
            File("app/package.json", b'{"name": "my-app", "version": "1.0.0"}'),
            File(
                f"{modules}/lodash/package.json",
                b'{"name":"lodash","version":"4.17.21","license":"MIT"}',
            ),
            File(
                f"{modules}/@babel/core/package.json",
                b'{"name":"@babel/core","version":"7.23.0","license":{"type":"MIT","url":"x"}}',
            ),
            File(
                f"{modules}/lodash/node_modules/old/package.json",
                b'{"name":"old","version":"0.1.0","licenses":[{"type":"MIT"},{"type":"Apache-2.0"}]}',
            ),
            File(f"{modules}/lodash/test/package.json", b'{"name":"fixture","version":"9.9.9"}'),
            File(f"{modules}/broken/package.json", b"{not json"),
            File(f"{modules}/noversion/package.json", b'{"name":"noversion"}'),
            File(f"{modules}/array/package.json", b"[1, 2]"),
        ]
    )

    components = by_name(catalog(tree))

    assert set(components) == {"lodash", "@babel/core", "old"}
    babel = components["@babel/core"]
    assert babel.purl == "pkg:npm/%40babel/core@7.23.0"
    assert babel.ecosystem == "npm"
    assert [i.spdx for i in babel.licenses] == ["MIT"]
    assert [i.spdx for i in components["old"].licenses] == ["MIT", "Apache-2.0"]
    assert components["old"].path == f"{modules}/lodash/node_modules/old/package.json"


def test_npm_wants():
    assert npm.wants("node_modules/a/package.json")
    assert npm.wants("x/node_modules/@s/a/package.json")
    assert not npm.wants("node_modules/@s/package.json")
    assert not npm.wants("node_modules/a/b/c/package.json")


# --- java --------------------------------------------------------------------------


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


POM_XML = b"""<?xml version="1.0"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <licenses>
    <license><name>Apache License, Version 2.0</name><url>x</url></license>
  </licenses>
</project>
"""


def java_image():
    inner_jar = zip_bytes(
        {
            "META-INF/maven/org.inner/inner-lib/pom.properties": (
                b"#Generated\ngroupId=org.inner\nartifactId=inner-lib\nversion=1.2.3\n"
            ),
        }
    )
    deepest = zip_bytes({"META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\r\n"})
    manifest_jar = zip_bytes(
        {
            "META-INF/MANIFEST.MF": (
                b"Manifest-Version: 1.0\r\nImplementation-Title: legacy-thing\r\n"
                b"Implementation-Version: 0.9.1\r\nImplementation-Vendor-Id: com.legacy\r\n"
                b"Bundle-License: Apache-2.0\r\n\r\nName: section\r\nImplementation-Version: 9\r\n"
            ),
            "lib/deepest-4.5.jar": deepest,
        }
    )
    war = zip_bytes(
        {
            "META-INF/maven/com.example/webapp/pom.properties": (
                b"groupId=com.example\nartifactId=webapp\nversion=3.0.0\n"
            ),
            "META-INF/maven/com.example/webapp/pom.xml": POM_XML,
            "WEB-INF/lib/inner-lib-1.2.3.jar": inner_jar,
            "WEB-INF/lib/legacy.jar": manifest_jar,
            "WEB-INF/lib/corrupt.jar": b"PK\x03\x04 not really",
        }
    )
    return image([File("opt/app/webapp.war", war), File("opt/app/junk.jar", b"nope")])


def test_java_archives_with_nested_jars():
    components = by_name(catalog(java_image()))

    assert set(components) == {
        "com.example:webapp",
        "org.inner:inner-lib",
        "com.legacy:legacy-thing",
        "deepest",
    }
    webapp = components["com.example:webapp"]
    assert webapp.purl == "pkg:maven/com.example/webapp@3.0.0"
    assert webapp.ecosystem == "Maven"
    assert [(i.raw, i.spdx) for i in webapp.licenses] == [
        ("Apache License, Version 2.0", "Apache-2.0")
    ]
    inner = components["org.inner:inner-lib"]
    assert inner.version == "1.2.3"
    assert inner.path == "opt/app/webapp.war!/WEB-INF/lib/inner-lib-1.2.3.jar"
    legacy = components["com.legacy:legacy-thing"]
    assert legacy.version == "0.9.1"
    assert [i.spdx for i in legacy.licenses] == ["Apache-2.0"]
    deepest = components["deepest"]
    assert deepest.version == "4.5"
    assert deepest.path == "opt/app/webapp.war!/WEB-INF/lib/legacy.jar!/lib/deepest-4.5.jar"


def test_java_nesting_depth_is_capped():
    archive = zip_bytes(
        {"META-INF/maven/g/level0/pom.properties": b"groupId=g\nartifactId=level0\nversion=0\n"}
    )
    for level in range(1, java.MAX_DEPTH + 3):
        archive = zip_bytes(
            {
                f"META-INF/maven/g/level{level}/pom.properties": (
                    f"groupId=g\nartifactId=level{level}\nversion={level}\n".encode()
                ),
                "nested.jar": archive,
            }
        )

    components = java.catalog_archive(archive, "top.jar", None)

    assert len(components) == java.MAX_DEPTH + 1


def test_java_properties_and_manifest_parsers():
    assert java.parse_properties("# c\n! c\na=1\nb: 2\nc 3\n") == {"a": "1", "b": "2", "c": "3"}
    manifest = java.parse_manifest("A: 1234567\n 89\nB: x\n\nA: other\n")
    assert manifest == {"A": "123456789", "B": "x"}
    assert java.pom_license_names(b"<project><licenses") == []


# --- go ----------------------------------------------------------------------------

GO_MODINFO = (
    "path\texample.com/cmd/server\n"
    "mod\texample.com\t(devel)\t\n"
    "dep\tgithub.com/google/uuid\tv1.3.0\th1:abc=\n"
    "dep\tgolang.org/x/net\tv0.10.0\th1:def=\n"
    "=>\tgolang.org/x/net\tv0.17.0\th1:ghi=\n"
    "dep\texample.com/local\tv0.0.0\n"
    "=>\t../local\t\t\n"
    "build\t-compiler=gc\n"
)
SENTINEL_START = bytes.fromhex("3077af0c9274080241e1c107e6d618e6")
SENTINEL_END = bytes.fromhex("f932433186182072008242104116d8f2")


def uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def go_binary_inline(go_version: str = "go1.21.5", modinfo: str = GO_MODINFO) -> bytes:
    elf = bytearray(b"\x7fELF\x02\x01\x01" + b"\0" * 57)
    # A decoy copy of the magic at an unaligned offset, as in the go tool itself.
    elf += b"\0" * 3 + golang.MAGIC + b"\0" * 7
    elf += b"\0" * (-len(elf) % 16)
    framed = SENTINEL_START + modinfo.encode() + SENTINEL_END
    elf += golang.MAGIC + bytes([8, golang.FLAG_INLINE_STRINGS]) + b"\0" * 16
    elf += uvarint(len(go_version)) + go_version.encode()
    elf += uvarint(len(framed)) + framed
    return bytes(elf)


def go_binary_pointers(go_version: str = "go1.16.15", modinfo: str = GO_MODINFO) -> bytes:
    """Pre-1.18 layout: the header points at Go string headers in a loaded segment."""
    base = 0x400000
    header_offset = 128
    strings_offset = header_offset + 32
    version_offset = strings_offset + 32
    framed = SENTINEL_START + modinfo.encode() + SENTINEL_END
    modinfo_offset = version_offset + len(go_version)
    size = modinfo_offset + len(framed)
    elf = bytearray(size)
    elf[0:7] = b"\x7fELF\x02\x01\x01"
    struct.pack_into("<Q", elf, 0x20, 64)  # e_phoff
    struct.pack_into("<HH", elf, 0x36, 56, 1)  # e_phentsize, e_phnum
    struct.pack_into("<IIQQQQQQ", elf, 64, 1, 5, 0, base, base, size, size, 0x1000)
    elf[header_offset : header_offset + 16] = golang.MAGIC + bytes([8, 0])
    struct.pack_into(
        "<QQ", elf, header_offset + 16, base + strings_offset, base + strings_offset + 16
    )
    struct.pack_into(
        "<QQQQ",
        elf,
        strings_offset,
        base + version_offset,
        len(go_version),
        base + modinfo_offset,
        len(framed),
    )
    elf[version_offset:modinfo_offset] = go_version.encode()
    elf[modinfo_offset:] = framed
    return bytes(elf)


def test_go_binary_build_info_inline_format():
    tree = image(
        [
            File("usr/local/bin/server", go_binary_inline(), 0o755),
            File("usr/local/bin/script", b"#!/bin/sh\necho hi\n", 0o755),
        ]
    )

    # Executables without Go build info are dropped once read.
    assert tree.read("usr/local/bin/script") is None
    assert tree.read("usr/local/bin/server") is not None
    components = {(c.name, c.version) for c in catalog(tree)}

    assert components == {
        ("example.com", "(devel)"),
        ("github.com/google/uuid", "v1.3.0"),
        ("golang.org/x/net", "v0.17.0"),
        ("example.com/local", "v0.0.0"),
        ("stdlib", "1.21.5"),
    }
    uuid = by_name(catalog(tree))["github.com/google/uuid"]
    assert uuid.purl == "pkg:golang/github.com/google/uuid@v1.3.0"
    assert uuid.ecosystem == "Go"
    assert uuid.path == "usr/local/bin/server"


def test_go_binary_build_info_pointer_format():
    info = golang.read_build_info(go_binary_pointers())

    assert info is not None
    assert info.go_version == "go1.16.15"
    assert info.path == "example.com/cmd/server"
    assert [(m.path, m.version) for m in info.deps][:2] == [
        ("github.com/google/uuid", "v1.3.0"),
        ("golang.org/x/net", "v0.17.0"),
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"#!/bin/sh\n",
        b"\x7fELF" + b"\0" * 60,
        # A header whose strings run past the end of the file.
        b"\x7fELF" + b"\0" * 12 + golang.MAGIC + bytes([8, 2]) + b"\0" * 16 + b"\xff\xff\x03",
        # Pointer format pointing outside every segment.
        b"\x7fELF\x02\x01\x01" + b"\0" * 9 + golang.MAGIC + bytes([8, 0]) + b"\xff" * 16,
    ],
)
def test_go_build_info_absent_or_malformed(data):
    assert golang.read_build_info(data) is None


@pytest.mark.parametrize(
    ("go_version", "semver"),
    [
        ("go1.21.5", "1.21.5"),
        ("go1.21", "1.21.0"),
        ("go1.21rc2", "1.21.0-rc.2"),
        ("go1.9beta1", "1.9.0-beta.1"),
        ("go1.22.1 X:boringcrypto", "1.22.1"),
        ("devel", None),
    ],
)
def test_go_versions_as_semver(go_version, semver):
    assert golang.go_semver(go_version) == semver


def test_go_wants_binaries_by_location():
    assert golang.wants("usr/bin/kubectl")
    assert golang.wants("opt/tool/bin/tool")
    assert golang.wants("manager")
    assert golang.wants("ko-app/server")
    assert golang.wants("opt/grafana/grafana")
    assert not golang.wants("etc/hostname")
    assert not golang.wants("usr/share/doc/readme")
    assert not golang.wants("app/main.py")


def test_empty_tree_has_no_components():
    assert catalog(image([Dir("etc")])) == []


def _damaged(archive: bytes, offset_in_central_entry: int, value: bytes) -> bytes:
    data = bytearray(archive)
    central = data.index(b"PK\x01\x02")
    data[central + offset_in_central_entry : central + offset_in_central_entry + len(value)] = value
    return bytes(data)


@pytest.mark.parametrize(
    ("offset", "value"),
    [
        (6, b"\xff\x00"),  # "version needed to extract": NotImplementedError in zipfile
        (42, b"\x00\xff\xff\x7f"),  # local header offset past the end: a bad seek
        (8, b"\x01\x08"),  # encrypted and UTF-8 flags: RuntimeError on read
    ],
)
def test_java_damaged_archives_are_skipped_not_fatal(offset, value):
    good = zip_bytes({"META-INF/maven/g/a/pom.properties": b"groupId=g\nartifactId=a\nversion=1\n"})
    assert [c.name for c in java.catalog_archive(good, "ok.jar", None)] == ["g:a"]

    assert java.catalog_archive(_damaged(good, offset, value), "bad.jar", None) == []
