"""Hostile layers: hard-link chains, symlink floods, link and kept-bytes caps (issue 11).

Each layer is generated here. The reader must stay linear in time and bounded in memory,
and a cap it reaches must be recorded (`limits_hit`), never silently dropped.
"""

from __future__ import annotations

import time
import tracemalloc

import pytest

from scanning import layer_cache, services
from scanning.layers import MIB, LayerLimitError, ReadLimits, read_layer, squash
from scanning.models import ScanReport
from scanning.selectors import manifest_scan_facts
from tests.scanning import db_images
from tests.scanning.builders import File, Hardlink, Symlink, layer


def want_all(path: str) -> bool:
    return True


def chained_hardlinks(count: int, *, target_first: bool = True) -> list:
    """`count` hard links, each to the one before; the file at the far end."""
    links = [Hardlink(f"usr/lib/l{n}", f"usr/lib/l{n - 1}") for n in range(1, count + 1)]
    return [File("usr/lib/l0", b"payload"), *links] if target_first else links


def test_sixteen_thousand_chained_hardlinks_resolve_in_linear_time():
    # Before: 29 s for 16,000 links (each link walked the chain back to its file).
    # CPU time, so that other processes on a busy machine do not count.
    source = layer("sha256:chain", chained_hardlinks(16_000), "gzip")
    started = time.process_time()
    contents = read_layer(source, want_all)
    elapsed = time.process_time() - started

    assert contents.link_count == 16_000
    assert contents.files["usr/lib/l16000"] == b"payload"
    assert contents.hardlinks == {}
    assert contents.complete
    assert elapsed < 5, f"{elapsed:.1f} s for 16,000 chained hardlinks"


def test_chained_hardlinks_to_nothing_and_loops_stay_links_quickly():
    members = chained_hardlinks(16_000, target_first=False)
    members += [Hardlink("loop/a", "loop/b"), Hardlink("loop/b", "loop/a")]
    started = time.process_time()
    contents = read_layer(layer("sha256:dangling", members), want_all)
    elapsed = time.process_time() - started

    assert contents.files == {}
    assert len(contents.hardlinks) == 16_002
    tree = squash([contents])
    assert tree.read("usr/lib/l16000") is None
    assert tree.read("loop/a") is None
    assert elapsed < 5


def test_symlink_targets_count_against_the_kept_bytes_cap_in_bounded_memory():
    # A small compressed layer that names 8 MiB of symlink targets.
    target = "a/" * 2000
    members = [Symlink(f"s/{n}", target) for n in range(2000)]
    source = layer("sha256:targets", members, "gzip")
    limits = ReadLimits(max_kept_bytes=MIB)
    tracemalloc.start()
    try:
        contents = read_layer(source, want_all, limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert contents.kept_bytes <= MIB
    assert sum(len(t) for t in contents.symlinks.values()) <= MIB
    assert "kept-bytes cap" in contents.limits_hit["max_kept_bytes"]
    assert not contents.complete
    assert peak < 4 * MIB


def test_hardlink_names_and_copies_count_against_the_kept_bytes_cap():
    members = [File("bin/tool", b"x" * 1000)]
    members += [Hardlink(f"bin/alias{n}", "bin/tool") for n in range(100)]
    contents = read_layer(
        layer("sha256:aliases", members), want_all, ReadLimits(max_kept_bytes=10_000)
    )

    # Each alias that becomes a file of its own costs its bytes; the rest stay links.
    assert contents.kept_bytes <= 10_000
    assert 0 < len(contents.files) < 101
    assert contents.hardlinks
    assert "max_kept_bytes" in contents.limits_hit
    tree = squash([contents])
    assert tree.read("bin/alias99") == b"x" * 1000


def test_the_link_cap_stops_the_reading_and_says_so():
    members = [Symlink(f"s/{n}", "t") for n in range(60)]
    members += [Hardlink(f"h/{n}", "s/0") for n in range(60)]
    members.append(File("etc/after", b"late"))
    contents = read_layer(layer("sha256:links", members), want_all, ReadLimits(max_links=100))

    assert contents.link_count == 100
    assert len(contents.symlinks) + len(contents.hardlinks) == 100
    assert "etc/after" not in contents.files
    assert "more than 100 symlinks and hardlinks" in contents.limits_hit["max_links"]


def test_a_symlink_target_longer_than_a_path_raises():
    members = [Symlink("s", "x" * 5000)]
    with pytest.raises(LayerLimitError, match="link target longer"):
        read_layer(layer("sha256:longtarget", members), want_all)


def test_the_layer_cache_keeps_the_limits_hit():
    members = [Symlink(f"s/{n}", "t") for n in range(5)]
    contents = read_layer(layer("sha256:few", members), want_all, ReadLimits(max_links=2))

    restored = layer_cache.loads(layer_cache.dumps(contents))

    assert restored.limits_hit == contents.limits_hit
    assert restored.link_count == 2
    assert not restored.complete


# --- the report and the facts gates read ---------------------------------------------------


@pytest.fixture
def repository(make_org, make_repo):
    return make_repo(make_org())


@pytest.mark.django_db
def test_a_complete_scan_has_no_incomplete_reasons(repository):
    manifest = db_images.push_image(repository, [db_images.BASE_LAYER])
    report = services.scan_manifest(manifest_id=manifest.pk)

    assert report.status == "done", report.error
    assert report.incomplete_reasons == []
    facts = manifest_scan_facts(manifest=manifest)
    assert facts.incomplete_reasons == frozenset()
    assert facts.complete
    assert "layers" not in facts.missing


@pytest.mark.django_db
def test_an_index_is_incomplete_when_one_platform_hit_a_cap(repository, settings):
    settings.SCAN_MAX_LINKS = 10
    amd = db_images.push_image(repository, [db_images.BASE_LAYER], tag=None, salt="amd")
    links = [Symlink(f"usr/lib/l{n}", "x") for n in range(20)]
    arm = db_images.push_image(repository, [db_images.BASE_LAYER, links], tag=None, salt="arm")
    index = db_images.push_index(repository, [(amd, "linux/amd64"), (arm, "linux/arm64")])

    report = services.scan_manifest(manifest_id=index.pk)

    assert report.status == "done", report.error
    assert report.incomplete_reasons == ["max_links"]
    arm_report = ScanReport.objects.get(manifest=arm)
    assert any("more than 10 symlinks and hardlinks" in note for note in arm_report.notes)
    assert ScanReport.objects.get(manifest=amd).incomplete_reasons == []
    facts = manifest_scan_facts(manifest=index)
    assert facts.status == "done"
    assert facts.incomplete_reasons == {"max_links"}
    assert not facts.complete
    assert "layers" in facts.missing  # what the promotion gates read: they fail closed


@pytest.mark.django_db
def test_a_layer_that_is_not_a_tar_makes_the_scan_incomplete(repository):
    manifest = db_images.push_image(
        repository, [db_images.BASE_LAYER], raw_layers=[(b"not a tar", "application/x-thing")]
    )
    report = services.scan_manifest(manifest_id=manifest.pk)

    assert report.status == "done", report.error
    assert report.incomplete_reasons == ["layer_skipped"]


def test_long_symlink_targets_cannot_make_every_read_slow():
    # 40 chained symlinks (the hop limit), each target 1,300 components that climb back.
    climb = "/".join(["x", ".."] * 650)
    members = [File("real/etc/os-release", b"ID=debian\n")]
    members += [Symlink(f"l{n}", f"{climb}/l{n + 1}") for n in range(39)]
    members.append(Symlink("l39", f"{climb}/real"))
    tree = squash([read_layer(layer("sha256:climb", members), want_all)])

    started = time.process_time()
    for _ in range(200):
        assert tree.read("l0/etc/os-release") is None  # too long a walk: not followed
    elapsed = time.process_time() - started

    assert tree.read("real/etc/os-release") == b"ID=debian\n"
    assert elapsed < 2, f"{elapsed:.2f} s for 200 reads"


@pytest.mark.django_db
def test_a_cap_whose_note_has_no_telltale_word_is_still_missing_data(repository, settings):
    # Hard links that stay links when the kept bytes run out: the note says "stay links".
    settings.SCAN_MAX_KEPT_BYTES = 20_000
    metadata = "usr/lib/python3/dist-packages/big-1.0.dist-info/METADATA"
    members = [File(metadata, b"Metadata-Version: 2.1\nName: big\nVersion: 1.0\n" + b"#" * 5000)]
    members += [Hardlink(f"usr/share/alias{n}", metadata) for n in range(10)]
    manifest = db_images.push_image(repository, [db_images.BASE_LAYER, members])

    report = services.scan_manifest(manifest_id=manifest.pk)

    assert report.status == "done", report.error
    assert "max_kept_bytes" in report.incomplete_reasons
    assert "layers" in manifest_scan_facts(manifest=manifest).missing
