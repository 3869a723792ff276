"""Images stored through the registry's own services, and OSV zips, for the scanning DB tests.

Layers are real tar archives (gzip by default) uploaded as blobs; manifests are put with
`manifest_put`, so the tag's post_save fires as on a real push.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

from registry_portal.registry import services as registry_services
from registry_portal.registry.models import Manifest, Repository
from tests.scanning.builders import File, Member, compress, tar_bytes

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_MEDIA = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "none": "application/vnd.oci.image.layer.v1.tar",
}

DEBIAN_OS_RELEASE = File(
    "etc/os-release",
    b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n',
)
DPKG_STATUS = File(
    "var/lib/dpkg/status",
    b"Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\n"
    b"Source: openssl\nVersion: 3.0.11-1~deb12u1\nDescription: SSL\n\n"
    b"Package: zlib1g\nStatus: install ok installed\nArchitecture: amd64\n"
    b"Source: zlib\nVersion: 1:1.2.13.dfsg-1\nDescription: zlib\n",
)
OPENSSL_COPYRIGHT = File(
    "usr/share/doc/libssl3/copyright",
    b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\n"
    b"Files: *\nCopyright: OpenSSL\nLicense: Apache-2.0\n",
)
REQUESTS_METADATA = File(
    "usr/lib/python3/dist-packages/requests-2.25.0.dist-info/METADATA",
    b"Metadata-Version: 2.1\nName: requests\nVersion: 2.25.0\nLicense: Apache 2.0\n",
)
BASE_LAYER = [DEBIAN_OS_RELEASE, DPKG_STATUS, OPENSSL_COPYRIGHT]
PYTHON_LAYER = [REQUESTS_METADATA]


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def store_blob(repository: Repository, data: bytes) -> str:
    digest = digest_of(data)
    registry_services.blob_upload_monolithic(
        repository=repository, digest=digest, stream=io.BytesIO(data), length=len(data)
    )
    return digest


def layer_descriptor(repository: Repository, blob: bytes, media_type: str) -> dict:
    return {"mediaType": media_type, "digest": store_blob(repository, blob), "size": len(blob)}


def image_body(
    repository: Repository,
    layers: list[list[Member]],
    *,
    compression: str = "gzip",
    raw_layers: list[tuple[bytes, str]] = (),
    salt: str = "",
) -> dict:
    descriptors = [
        layer_descriptor(
            repository, compress(tar_bytes(members), compression), LAYER_MEDIA[compression]
        )
        for members in layers
    ]
    descriptors += [layer_descriptor(repository, blob, media) for blob, media in raw_layers]
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}, "salt": salt}
    ).encode()
    return {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {
            "mediaType": MEDIA_CONFIG,
            "digest": store_blob(repository, config),
            "size": len(config),
        },
        "layers": descriptors,
    }


def put(repository: Repository, body: dict, reference: str | None, media_type: str) -> Manifest:
    content = json.dumps(body).encode()
    return registry_services.manifest_put(
        repository=repository,
        reference=reference or digest_of(content),
        content=content,
        content_type=media_type,
    )


def push_image(
    repository: Repository,
    layers: list[list[Member]],
    *,
    tag: str | None = "latest",
    compression: str = "gzip",
    raw_layers: list[tuple[bytes, str]] = (),
    salt: str = "",
) -> Manifest:
    """Upload the layers and put the manifest (under `tag`, or by digest when None)."""
    body = image_body(repository, layers, compression=compression, raw_layers=raw_layers, salt=salt)
    return put(repository, body, tag, MEDIA_MANIFEST)


def push_index(
    repository: Repository, children: list[tuple[Manifest, str]], *, tag: str = "latest"
) -> Manifest:
    """An index of already-pushed manifests with their 'os/arch' platforms."""
    body = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [
            {
                "mediaType": MEDIA_MANIFEST,
                "digest": child.digest,
                "size": child.size,
                "platform": dict(zip(("os", "architecture"), platform.split("/"), strict=True)),
            }
            for child, platform in children
        ],
    }
    return put(repository, body, tag, MEDIA_INDEX)


def push_referrer(
    repository: Repository, subject: Manifest, document: bytes, artifact_type: str
) -> Manifest:
    """An artifact manifest whose subject is `subject`, with `document` as its one layer."""
    empty = store_blob(repository, b"{}")
    body = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [layer_descriptor(repository, document, artifact_type)],
        "subject": {"mediaType": MEDIA_MANIFEST, "digest": subject.digest, "size": subject.size},
    }
    return put(repository, body, None, MEDIA_MANIFEST)


def osv_record(osv_id: str, ecosystem: str, name: str, events: list[dict], **extra) -> dict:
    return {
        "id": osv_id,
        "modified": "2024-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": ecosystem, "name": name},
                "ranges": [{"type": "ECOSYSTEM", "events": events}],
            }
        ],
        **extra,
    }


CRITICAL_VECTOR = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
MEDIUM_VECTOR = "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:N"  # 4.2

STANDARD_RECORDS = [
    osv_record(
        "DEBIAN-CVE-2024-0001",
        "Debian:12",
        "openssl",
        [{"introduced": "0"}, {"fixed": "3.0.11-1~deb12u2"}],
        severity=[{"type": "CVSS_V3", "score": CRITICAL_VECTOR}],
    ),
    osv_record(
        "GHSA-aaaa-bbbb-cccc",
        "PyPI",
        "Requests",
        [{"introduced": "2.0"}, {"fixed": "2.31.0"}],
        database_specific={"severity": "MODERATE"},
    ),
    osv_record("DEBIAN-CVE-2024-0002", "Debian:12", "zlib", [{"introduced": "0"}]),
    osv_record(
        "DEBIAN-CVE-2020-0003", "Debian:12", "openssl", [{"introduced": "0"}, {"fixed": "1.1"}]
    ),
]


def osv_zip(records: list[dict], extra: dict[str, bytes] | None = None) -> io.BytesIO:
    """An OSV all.zip with one JSON file per record, plus any raw extra entries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for record in records:
            archive.writestr(f"{record['id']}.json", json.dumps(record))
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    buffer.seek(0)
    return buffer


def machine_debian_files() -> dict[str, bytes]:
    """This machine's os-release, dpkg status and copyright files: a Debian-sized layer."""
    from pathlib import Path

    files = {}
    for name in ("etc/os-release", "var/lib/dpkg/status"):
        path = Path("/") / name
        if path.is_file():
            files[name] = path.resolve().read_bytes()
    for copyright_file in sorted(Path("/usr/share/doc").glob("*/copyright")):
        try:
            files[str(copyright_file.relative_to("/"))] = copyright_file.read_bytes()
        except OSError:
            continue  # unreadable or a dangling link: not part of the image
    return files


def python_dist_info_files(site_packages, prefix: str) -> dict[str, bytes]:
    """The *.dist-info directories of a Python environment, placed under `prefix`."""
    from pathlib import Path

    files = {}
    for dist_info in sorted(Path(site_packages).glob("*.dist-info")):
        for path in dist_info.rglob("*"):
            if path.is_file():
                files[f"{prefix}/{path.relative_to(site_packages)}"] = path.read_bytes()
    return files


def push_layout(repository: Repository, layout_root, digest: str, tag: str) -> Manifest:
    """Store an OCI layout's image (written by tests.support.images) in the registry."""
    from pathlib import Path

    blobs = Path(layout_root) / "blobs" / "sha256"
    content = (blobs / digest.partition(":")[2]).read_bytes()
    body = json.loads(content)
    for descriptor in [body["config"], *body["layers"]]:
        store_blob(repository, (blobs / descriptor["digest"].partition(":")[2]).read_bytes())
    return registry_services.manifest_put(
        repository=repository, reference=tag, content=content, content_type=MEDIA_MANIFEST
    )
