"""Alpine packages (and Wolfi, Chainguard): the apk database `lib/apk/db/installed`.

Each stanza is `X:value` lines: `P` name, `V` version, `o` origin (the source
package, which OSV uses for Alpine), `L` license, `A` architecture.
"""

from __future__ import annotations

from packageurl import PackageURL

from scanning.catalogers.common import APK, Cataloger, Component, Distro, LicenseInfo
from scanning.layers import FileTree

INSTALLED_PATH = "lib/apk/db/installed"


def wants(path: str) -> bool:
    return path == INSTALLED_PATH


def parse_installed(text: str) -> list[dict[str, str]]:
    """One dict per stanza, first value wins for each single-letter key."""
    stanzas: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                stanzas.append(fields)
            fields = {}
            continue
        key, separator, value = line.partition(":")
        if separator and len(key) == 1:
            fields.setdefault(key, value.strip())
    if fields:
        stanzas.append(fields)
    return stanzas


def catalog(tree: FileTree, distro: Distro | None) -> list[Component]:
    entry = tree.entry(INSTALLED_PATH)
    if entry is None or entry.data is None:
        return []
    components = []
    for fields in parse_installed(entry.data.decode("utf-8", "replace")):
        name, version = fields.get("P"), fields.get("V")
        if not name or not version:
            continue
        qualifiers = {}
        if fields.get("A"):
            qualifiers["arch"] = fields["A"]
        if distro is not None:
            qualifiers["distro"] = distro.purl_qualifier
        purl = PackageURL(
            type="apk",
            namespace=distro.id if distro is not None else "alpine",
            name=name,
            version=version,
            qualifiers=qualifiers,
        )
        licenses = (
            [LicenseInfo.from_raw(fields["L"], f"{INSTALLED_PATH}#L")] if fields.get("L") else []
        )
        components.append(
            Component(
                name=name,
                version=version,
                type=APK,
                ecosystem=distro.ecosystem if distro is not None else None,
                purl=purl.to_string(),
                source_name=fields.get("o") or name,
                source_version=version,
                licenses=licenses,
                layer_digest=entry.layer,
                path=entry.path,
            )
        )
    return components


CATALOGER = Cataloger(name="apk", wants=wants, catalog=catalog)
