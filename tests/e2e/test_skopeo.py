"""skopeo against the live portal (and the reference registry, for comparison).

Every round trip pushes an OCI layout built in Python, pulls it back into another layout,
and compares manifests and blobs byte for byte.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.support import images

from .conftest import creds, unique_repo

PERMISSION_ERROR = re.compile(
    r"denied|unauthorized|authentication required|authentication|forbidden", re.IGNORECASE
)
SERVER_ERROR = re.compile(r"internal server error|\b50[0-4]\b|unexpected EOF", re.IGNORECASE)


def assert_permission_error(result) -> None:
    assert not result.ok, f"expected a permission error, got success:\n{result}"
    assert PERMISSION_ERROR.search(result.output), f"not a permission error:\n{result}"
    assert not SERVER_ERROR.search(result.output), f"looks like a server error:\n{result}"


@pytest.fixture
def small_image(tmp_path):
    layout = tmp_path / "src"
    image = images.write_image(
        layout,
        tag="v1",
        layers=[
            *images.small_layers(2, size=3000),
            # (skopeo compresses plain tar layers when it pushes, so all layers are gzip here)
            images.LayerSpec(files={"etc/motd": b"hello\n"}),
            images.LayerSpec(files={}, gzip=True),  # an empty tar
        ],
    )
    return layout, image


def test_push_pull_multilayer_round_trip(target, skopeo, small_image, tmp_path):
    layout, image = small_image
    name = unique_repo("multi")
    skopeo.push(layout, "v1", target.ref(name, "v1"), creds=target.pusher, check=True)

    skopeo.pull(target.ref(name, "v1"), tmp_path / "back", "v1", creds=target.pusher, check=True)
    images.assert_same_image(layout, tmp_path / "back", expected_tag="v1", actual_tag="v1")

    # And by digest, straight over HTTP: the exact bytes and the digest header.
    response = target.pusher_client().get(
        f"/v2/{name}/manifests/{image.digest}",
        headers={"Accept": images.MEDIA_MANIFEST},
    )
    assert response.status_code == 200
    assert response.headers["Docker-Content-Digest"] == image.digest
    assert response.content == images.read_layout(layout, "v1").manifests[image.digest]


def test_two_platform_index_round_trip(target, skopeo, tmp_path):
    layout = tmp_path / "src"
    index = images.write_index(layout, tag="multi")
    name = unique_repo("index")
    result = skopeo.copy(
        f"oci:{layout}:multi",
        f"docker://{target.ref(name, 'multi')}",
        dest_creds=target.pusher,
        all_images=True,
    )
    assert result.ok, str(result)

    back = tmp_path / "back"
    result = skopeo.copy(
        f"docker://{target.ref(name, 'multi')}",
        f"oci:{back}:multi",
        src_creds=target.pusher,
        all_images=True,
    )
    assert result.ok, str(result)
    images.assert_same_image(layout, back, expected_tag="multi", actual_tag="multi")

    # Without --all, skopeo picks one platform and gets exactly that child manifest.
    arm = tmp_path / "arm"
    result = skopeo.copy(
        f"docker://{target.ref(name, 'multi')}",
        f"oci:{arm}:arm",
        src_creds=target.pusher,
        extra=("--override-arch=arm64", "--override-variant=v8"),
    )
    assert result.ok, str(result)
    pulled = images.read_layout(arm, "arm")
    arm64 = index.images[1]
    assert pulled.top.digest == arm64.digest
    assert set(pulled.blobs) == set(arm64.blob_digests)
    for digest in pulled.blobs:
        assert pulled.blob_digest_on_disk(digest) == digest


def test_inspect(target, skopeo, small_image):
    layout, image = small_image
    name = unique_repo("inspect")
    skopeo.push(layout, "v1", target.ref(name, "v1"), creds=target.pusher, check=True)

    result = skopeo.inspect(target.ref(name, "v1"), creds=target.pusher)
    assert result.ok, str(result)
    info = json.loads(result.stdout)
    assert info["Digest"] == image.digest
    assert info["Layers"] == [layer.digest for layer in image.layers]
    assert info["Architecture"] == "amd64"
    assert "v1" in info["RepoTags"]

    raw = skopeo.inspect(target.ref(name, "v1"), creds=target.pusher, raw=True)
    assert raw.ok, str(raw)
    assert raw.stdout.encode() == images.read_layout(layout, "v1").manifests[image.digest]

    config = skopeo.inspect(target.ref(name, "v1"), creds=target.pusher, config=True)
    assert config.ok, str(config)
    assert json.loads(config.stdout)["rootfs"]["diff_ids"] == image.diff_ids


def test_delete_by_digest(target, skopeo, small_image, tmp_path):
    layout, image = small_image
    name = unique_repo("delete")
    skopeo.push(layout, "v1", target.ref(name, "v1"), creds=target.pusher, check=True)

    result = skopeo.delete(target.ref(name, image.digest), creds=target.pusher)
    assert result.ok, str(result)

    client = target.pusher_client()
    assert client.get(f"/v2/{name}/manifests/{image.digest}").status_code == 404
    assert client.get(f"/v2/{name}/manifests/v1").status_code == 404
    gone = skopeo.pull(target.ref(name, "v1"), tmp_path / "gone", "v1", creds=target.pusher)
    assert not gone.ok
    assert re.search(r"manifest unknown|not found", gone.output, re.IGNORECASE), str(gone)


# --- permissions: the portal only --------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "repository"),
    [
        ("mallory", "acme/private"),  # no membership at all
        ("carol", "acme/private"),  # read-only team
        ("bob", "acme/brand-new-{n}"),  # read-write, but may not create repositories
        ("mallory", "mallory-not-mine/app"),  # someone else's namespace
    ],
)
def test_push_without_access_is_denied(portal, skopeo, small_image, user, repository):
    layout, _ = small_image
    name = repository.format(n=unique_repo().rsplit("-", 1)[-1])
    tag = f"denied-{user}"
    result = skopeo.push(layout, "v1", portal.ref(name, tag), creds=creds(user))
    assert_permission_error(result)
    # Nothing was tagged, and no repository was created.
    tags = portal.client("alice").get(f"/v2/{name}/tags/list")
    if name == "acme/private":
        assert tags.status_code == 200
        assert tag not in (tags.json().get("tags") or [])
    elif name.startswith("acme/"):  # alice administers acme: she would see it
        assert tags.status_code == 404, tags.text
    else:  # a namespace alice has no rights in: not found, or not for her to know
        assert tags.status_code in (401, 403, 404), tags.text


def test_push_with_wrong_password_is_unauthorized(portal, skopeo, small_image):
    layout, _ = small_image
    result = skopeo.push(
        layout, "v1", portal.ref(unique_repo(), "v1"), creds=("alice", "not-her-password")
    )
    assert_permission_error(result)


def test_read_write_member_pushes_to_existing_repository(portal, skopeo, small_image, tmp_path):
    layout, _ = small_image
    skopeo.push(layout, "v1", portal.ref("acme/private", "bob"), creds=creds("bob"), check=True)
    result = skopeo.pull(
        portal.ref("acme/private", "bob"), tmp_path / "b", "v1", creds=creds("carol")
    )
    assert result.ok, str(result)
    images.assert_same_image(layout, tmp_path / "b", expected_tag="v1", actual_tag="v1")


def test_access_token_works_as_password(portal, skopeo, small_image, tmp_path):
    layout, _ = small_image
    name = unique_repo("pat")
    token = ("alice", portal.tokens["ci"])
    skopeo.push(layout, "v1", portal.ref(name, "v1"), creds=token, check=True)
    skopeo.pull(portal.ref(name, "v1"), tmp_path / "back", "v1", creds=token, check=True)
    images.assert_same_image(layout, tmp_path / "back", expected_tag="v1", actual_tag="v1")


def test_anonymous_pull_public_but_not_private(portal, skopeo, small_image, tmp_path):
    layout, _ = small_image
    skopeo.push(layout, "v1", portal.ref("acme/public", "anon"), creds=creds("alice"), check=True)
    skopeo.push(layout, "v1", portal.ref("acme/private", "anon"), creds=creds("alice"), check=True)

    public = skopeo.pull(portal.ref("acme/public", "anon"), tmp_path / "pub", "v1")
    assert public.ok, str(public)
    images.assert_same_image(layout, tmp_path / "pub", expected_tag="v1", actual_tag="v1")

    private = skopeo.pull(portal.ref("acme/private", "anon"), tmp_path / "priv", "v1")
    assert_permission_error(private)
    # Someone logged in without access is refused the same way.
    assert_permission_error(
        skopeo.pull(
            portal.ref("acme/private", "anon"), tmp_path / "m", "v1", creds=creds("mallory")
        )
    )
    # And anonymous users may not push, even to a public repository.
    assert_permission_error(skopeo.push(layout, "v1", portal.ref("acme/public", "anon2")))


def test_delete_needs_admin(portal, skopeo, small_image):
    layout, image = small_image
    name = unique_repo("nodelete")
    skopeo.push(layout, "v1", portal.ref(name, "v1"), creds=creds("alice"), check=True)
    for user in ("carol", "bob", "mallory"):
        assert_permission_error(skopeo.delete(portal.ref(name, image.digest), creds=creds(user)))
    assert portal.client("alice").head(f"/v2/{name}/manifests/{image.digest}").status_code == 200
