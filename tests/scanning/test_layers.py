"""The layer reader: decompression, squashing, link resolution and hostile input."""

from __future__ import annotations

import gzip
import io
import tarfile
import tracemalloc

import pytest
import zstandard

from scanning.layers import (
    GIB,
    MIB,
    CorruptLayerError,
    LayerCache,
    LayerError,
    LayerLimitError,
    LayerSource,
    ReadLimits,
    UnsafePathError,
    detect_compression,
    normalise_path,
    read_image,
    read_layer,
    squash,
)
from tests.scanning.builders import (
    DOCKER_GZIP,
    OCI_TAR,
    Dir,
    File,
    Hardlink,
    Symlink,
    compress,
    image,
    layer,
    raw_layer,
    tar_bytes,
)


def want_all(path: str) -> bool:
    return True


def want_etc(path: str) -> bool:
    return path.startswith("etc/")


BASIC = [Dir("etc"), File("etc/hostname", b"box\n"), File("usr/bin/tool", b"\x7fELF...", 0o755)]


@pytest.mark.parametrize(
    ("compression", "media_type"),
    [
        ("none", None),
        ("gzip", None),
        ("zstd", None),
        ("gzip", DOCKER_GZIP),
        # Unknown media types fall back to the magic bytes.
        ("gzip", "application/octet-stream"),
        ("zstd", "application/octet-stream"),
        ("none", "application/octet-stream"),
    ],
)
def test_reads_every_compression(compression, media_type):
    contents = read_layer(layer("sha256:a", BASIC, compression, media_type), want_all)

    assert contents.files["etc/hostname"] == b"box\n"
    assert contents.files["usr/bin/tool"] == b"\x7fELF..."
    assert contents.modes["usr/bin/tool"] == 0o755
    assert contents.directories == {"etc"}
    assert contents.entry_count == 3
    # The file contents, and the directory name kept for squashing.
    assert contents.kept_bytes == len(b"box\n") + len(b"\x7fELF...") + len("etc")


def test_detect_compression_prefers_media_type_then_magic():
    assert detect_compression("application/vnd.oci.image.layer.v1.tar+gzip", b"") == "gzip"
    assert detect_compression(DOCKER_GZIP, b"") == "gzip"
    assert detect_compression("application/vnd.oci.image.layer.v1.tar+zstd", b"") == "zstd"
    assert detect_compression(OCI_TAR, b"\x1f\x8b") == "none"
    assert detect_compression("", b"\x1f\x8b\x08\x00") == "gzip"
    assert detect_compression("", b"\x28\xb5\x2f\xfd") == "zstd"
    assert detect_compression("", b"usr/") == "none"


def test_keeps_only_wanted_files_but_all_links_and_directories():
    members = [
        Dir("etc"),
        File("etc/keep", b"1"),
        File("var/drop", b"2"),
        Symlink("var/link", "../etc/keep"),
        Hardlink("var/hard", "var/drop"),
    ]
    contents = read_layer(layer("sha256:a", members), want_etc)

    assert set(contents.files) == {"etc/keep"}
    assert contents.symlinks == {"var/link": "../etc/keep"}
    assert contents.hardlinks == {"var/hard": "var/drop"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("./etc/passwd", "etc/passwd"),
        ("/etc/passwd", "etc/passwd"),
        ("etc//./passwd/", "etc/passwd"),
        ("usr/../etc/passwd", "etc/passwd"),
        ("./", ""),
    ],
)
def test_normalise_path(name, expected):
    assert normalise_path(name) == expected


@pytest.mark.parametrize("name", ["../etc/passwd", "etc/../../passwd", "/.."])
def test_normalise_path_rejects_escapes(name):
    with pytest.raises(UnsafePathError):
        normalise_path(name)


def test_member_escaping_the_root_raises():
    with pytest.raises(UnsafePathError, match="sha256:evil"):
        read_layer(layer("sha256:evil", [File("../../etc/cron.d/x", b"boom")]), want_all)


def test_whiteout_deletes_lower_file_and_subtree():
    tree = image(
        [File("etc/os-release", b"ID=debian\n"), File("usr/lib/os-release", b"ID=alpine\n")],
        [File("etc/.wh.os-release"), File("usr/.wh.lib")],
    )

    assert tree.read("etc/os-release") is None
    assert tree.read("usr/lib/os-release") is None


def test_whiteout_never_hides_files_of_its_own_layer():
    tree = image(
        [File("etc/os-release", b"old")],
        [File("etc/os-release", b"new"), File("etc/.wh.os-release")],
    )

    assert tree.read("etc/os-release") == b"new"


def test_opaque_directory_hides_lower_contents_but_not_its_own_layer():
    tree = image(
        [
            File("usr/lib/os-release", b"lower"),
            File("usr/lib/apk/db/installed", b"P:x\n"),
            File("etc/os-release", b"untouched"),
        ],
        [File("usr/lib/.wh..wh..opq"), File("usr/lib/os-release", b"upper")],
    )

    assert tree.read("usr/lib/os-release") == b"upper"
    assert tree.read("usr/lib/apk/db/installed") is None
    assert tree.read("etc/os-release") == b"untouched"


def test_upper_file_replaces_lower_and_records_its_layer():
    tree = image([File("etc/os-release", b"one")], [], [File("etc/os-release", b"three")])

    assert tree.read("etc/os-release") == b"three"
    assert tree.layer_of("etc/os-release") == "sha256:02"


def test_later_member_of_the_same_layer_wins():
    contents = read_layer(
        layer("sha256:a", [File("etc/a", b"first"), Symlink("etc/a", "b")]), want_all
    )

    assert "etc/a" not in contents.files
    assert contents.symlinks["etc/a"] == "b"
    assert contents.kept_bytes == len("etc/a") + len("b")


def test_symlinks_relative_absolute_and_through_directories():
    tree = image(
        [
            File("usr/lib/os-release", b"ID=debian\n"),
            Symlink("etc/os-release", "../usr/lib/os-release"),
            Symlink("etc/abs-release", "/usr/lib/os-release"),
            Symlink("lib", "usr/lib"),
            Symlink("etc/chain", "abs-release"),
        ]
    )

    assert tree.read("etc/os-release") == b"ID=debian\n"
    assert tree.read("/etc/abs-release") == b"ID=debian\n"
    assert tree.read("lib/os-release") == b"ID=debian\n"
    assert tree.read("etc/chain") == b"ID=debian\n"
    assert tree.layer_of("lib/os-release") == "sha256:00"


def test_symlink_loops_and_dangling_links_read_as_none():
    tree = image(
        [
            Symlink("etc/os-release", "os-release2"),
            Symlink("etc/os-release2", "os-release"),
            Symlink("usr/lib/os-release", "/nowhere"),
        ]
    )

    assert tree.read("etc/os-release") is None
    assert tree.resolve("etc/os-release") is None
    assert tree.read("usr/lib/os-release") is None


def test_symlink_escaping_the_root_stays_at_the_root():
    tree = image(
        [File("etc/os-release", b"x"), Symlink("usr/lib/os-release", "../../../../etc/os-release")]
    )

    assert tree.read("usr/lib/os-release") == b"x"


def test_hardlinks_resolve_within_the_layer_and_survive_a_whiteout_of_the_target():
    tree = image(
        [File("etc/os-release", b"ID=alpine\n"), Hardlink("usr/lib/os-release", "etc/os-release")],
        [File("etc/.wh.os-release")],
    )

    assert tree.read("etc/os-release") is None
    assert tree.read("usr/lib/os-release") == b"ID=alpine\n"


def test_hardlink_to_an_unkept_file_resolves_in_the_tree_when_possible():
    contents = read_layer(
        layer("sha256:a", [File("etc/keep", b"k"), Hardlink("var/alias", "etc/keep")]),
        lambda path: path == "etc/keep",
    )
    assert contents.files["var/alias"] == b"k"

    tree = squash(
        [
            read_layer(layer("sha256:a", [File("etc/keep", b"k")]), want_etc),
            read_layer(layer("sha256:b", [Hardlink("etc/alias", "etc/keep")]), want_etc),
        ]
    )
    assert tree.read("etc/alias") == b"k"


def test_directory_replaces_lower_symlink_and_symlink_replaces_lower_directory():
    tree = image(
        [Symlink("usr/lib", "/opt/lib"), File("opt/lib/os-release", b"via link"), Dir("etc")],
        [Dir("usr/lib"), File("usr/lib/os-release", b"real dir")],
        [Symlink("etc", "usr/lib")],
    )

    assert tree.read("usr/lib/os-release") == b"real dir"
    assert tree.read("etc/os-release") == b"real dir"


def test_iter_and_glob_see_stored_paths_once():
    tree = image(
        [
            File("usr/lib/python3/dist-packages/a-1.dist-info/METADATA", b"Name: a\n"),
            File("usr/lib/python3/dist-packages/b-2.dist-info/METADATA", b"Name: b\n"),
            File("etc/os-release", b"x"),
            Symlink("lib", "usr/lib"),
        ]
    )

    assert [e.path for e in tree.iter("usr/lib")] == [
        "usr/lib/python3/dist-packages/a-1.dist-info/METADATA",
        "usr/lib/python3/dist-packages/b-2.dist-info/METADATA",
    ]
    assert [e.path for e in tree.glob("*/b-*.dist-info/METADATA")] == [
        "usr/lib/python3/dist-packages/b-2.dist-info/METADATA"
    ]
    assert [e.path for e in tree.iter(predicate=lambda p: p.startswith("etc"))] == [
        "etc/os-release"
    ]
    assert "lib/python3/dist-packages/a-1.dist-info/METADATA" in tree


def test_files_over_the_size_cap_are_recorded_as_skipped_and_shadow_lower_copies():
    limits = ReadLimits(max_file_size=10)
    lower = read_layer(layer("sha256:a", [File("etc/big", b"small")]), want_all, limits)
    upper = read_layer(layer("sha256:b", [File("etc/big", b"x" * 11)]), want_all, limits)

    assert upper.files == {}
    assert upper.skipped["etc/big"].size == 11
    tree = squash([lower, upper])
    assert tree.read("etc/big") is None
    assert [entry.path for entry in tree.skipped()] == ["etc/big"]


def test_accept_drops_wanted_files_whose_content_is_of_no_use():
    contents = read_layer(
        layer("sha256:a", [File("etc/keep", b"GO!"), File("etc/drop", b"sh")]),
        want_all,
        accept=lambda path, data: data.startswith(b"GO"),
    )

    assert contents.files == {"etc/keep": b"GO!"}
    assert contents.kept_bytes == 3


def test_kept_bytes_cap_skips_further_files():
    limits = ReadLimits(max_kept_bytes=8)
    contents = read_layer(
        layer("sha256:a", [File("etc/a", b"12345"), File("etc/b", b"67890")]), want_all, limits
    )

    assert set(contents.files) == {"etc/a"}
    assert contents.skipped["etc/b"].reason == "layer kept-bytes cap reached"
    assert contents.kept_bytes == 5


# --- hostile input -------------------------------------------------------------


def test_corrupt_gzip_raises():
    blob = b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"this is not deflate data" * 10
    with pytest.raises(CorruptLayerError, match="corrupt compressed stream"):
        read_layer(
            raw_layer("sha256:bad", blob, "application/vnd.oci.image.layer.v1.tar+gzip"), want_all
        )


def test_truncated_gzip_raises():
    blob = gzip.compress(tar_bytes(BASIC))
    with pytest.raises(CorruptLayerError):
        read_layer(raw_layer("sha256:cut", blob[: len(blob) // 2], DOCKER_GZIP), want_all)


def test_corrupt_zstd_raises():
    blob = zstandard.ZstdCompressor().compress(tar_bytes(BASIC))
    damaged = blob[:8] + bytes(b ^ 0x5A for b in blob[8:])
    with pytest.raises(LayerError):
        read_layer(
            raw_layer("sha256:z", damaged, "application/vnd.oci.image.layer.v1.tar+zstd"), want_all
        )


def test_not_a_tar_raises():
    with pytest.raises(CorruptLayerError):
        read_layer(raw_layer("sha256:junk", b"hello, I am not a tar archive" * 40), want_all)


@pytest.mark.parametrize("wanted", [want_all, want_etc])
def test_truncated_tar_in_member_data_raises(wanted):
    blob = tar_bytes([File("var/x", b"a" * 4000), File("etc/y", b"b" * 4000)])
    cut = blob[: 512 + 4096 + 512 + 1000]  # inside the second member's data
    with pytest.raises(CorruptLayerError):
        read_layer(raw_layer("sha256:cut", cut), wanted)


def test_truncated_tar_in_a_header_raises():
    blob = tar_bytes([File("etc/x", b"a" * 100), File("etc/y", b"b")])
    header_start = 512 + 512
    with pytest.raises(CorruptLayerError, match="truncated"):
        read_layer(raw_layer("sha256:cut", blob[: header_start + 200]), want_all)


def _lying_member(size: int, name: str = "etc/huge") -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(format=tarfile.PAX_FORMAT) + b"z" * 1024


@pytest.mark.parametrize("wanted", [want_all, want_etc, lambda path: False])
def test_member_claiming_a_huge_size_raises_without_allocating_it(wanted):
    tracemalloc.start()
    try:
        with pytest.raises(CorruptLayerError):
            read_layer(raw_layer("sha256:liar", _lying_member(512 * GIB)), wanted)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * MIB


def test_member_claiming_more_than_it_has_under_the_cap_raises():
    with pytest.raises(CorruptLayerError):
        read_layer(raw_layer("sha256:liar", _lying_member(4096)), want_all)


def test_deep_paths_raise():
    deep = "/".join(["d"] * 200) + "/file"
    with pytest.raises(LayerLimitError, match="deeper"):
        read_layer(layer("sha256:deep", [File(deep, b"x")]), want_all)


def test_long_paths_raise():
    with pytest.raises(LayerLimitError, match="longer"):
        read_layer(layer("sha256:long", [File("a" * 5000, b"x")]), want_all)


def test_too_many_entries_stop_the_reading_and_say_so():
    members = [File(f"var/f{index}", b"") for index in range(101)]
    contents = read_layer(layer("sha256:many", members), want_all, ReadLimits(max_entries=100))

    assert contents.entry_count == 100
    assert "var/f99" in contents.files
    assert "var/f100" not in contents.files
    assert not contents.complete
    assert "more than 100 entries" in contents.limits_hit["max_entries"]


def test_decompression_bomb_raises_with_bounded_memory():
    bomb = gzip.compress(tar_bytes([File("var/zeros", b"\0" * (64 * MIB))]), compresslevel=9)
    assert len(bomb) < MIB
    tracemalloc.start()
    try:
        with pytest.raises(LayerLimitError, match="decompression bomb"):
            read_layer(
                raw_layer("sha256:bomb", bomb, DOCKER_GZIP),
                want_all,
                ReadLimits(max_decompressed_bytes=16 * MIB, max_file_size=MIB),
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MIB


def test_large_unwanted_files_and_many_entries_stream_in_bounded_memory():
    members: list = [File("var/zeros", b"\0" * (48 * MIB))]
    members += [File(f"var/many/f{index}", b"x") for index in range(20_000)]
    blob = zstandard.ZstdCompressor().compress(tar_bytes(members))
    source = raw_layer("sha256:big", blob, "application/vnd.oci.image.layer.v1.tar+zstd")
    tracemalloc.start()
    try:
        contents = read_layer(source, want_etc)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert contents.entry_count == 20_001
    assert contents.decompressed_bytes > 48 * MIB
    assert peak < 12 * MIB


# --- caching -------------------------------------------------------------------


class CountingOpen:
    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        self.calls = 0

    def __call__(self) -> io.BytesIO:
        self.calls += 1
        return io.BytesIO(self.blob)


def test_layer_cache_reads_a_digest_once_and_evicts_by_bytes():
    opener_a = CountingOpen(tar_bytes([File("etc/a", b"a" * 60)]))
    opener_b = CountingOpen(tar_bytes([File("etc/b", b"b" * 60)]))
    source_a = LayerSource("sha256:a", OCI_TAR, opener_a)
    source_b = LayerSource("sha256:b", OCI_TAR, opener_b)
    cache = LayerCache(want_all, max_bytes=100)

    first = cache.read(source_a)
    assert cache.read(source_a) is first
    assert opener_a.calls == 1
    cache.read(source_b)
    assert "sha256:a" not in cache
    assert "sha256:b" in cache
    assert len(cache) == 1


def test_read_image_uses_the_cache_and_checks_its_predicate():
    opener = CountingOpen(tar_bytes([File("etc/a", b"a")]))
    sources = [LayerSource("sha256:a", OCI_TAR, opener), LayerSource("sha256:a", OCI_TAR, opener)]
    cache = LayerCache(want_all)

    tree = read_image(sources, want_all, cache=cache)

    assert tree.read("etc/a") == b"a"
    assert opener.calls == 1
    with pytest.raises(ValueError, match="predicate"):
        read_image(sources, want_etc, cache=cache)
    with pytest.raises(ValueError, match="predicate"):
        read_image(sources, want_all, cache=cache, accept=lambda path, data: True)


def test_compressed_helpers_round_trip():
    assert gzip.decompress(compress(b"abc", "gzip")) == b"abc"
