"""npm packages: the `package.json` at the top of each package under `node_modules`.

Only `node_modules/<name>/package.json` and `node_modules/@scope/<name>/package.json`
count, at any nesting depth; other package.json files inside a package (test
fixtures, sub-builds) are not packages. `license` is an SPDX string, or in old
packages an object `{"type": ...}`; the older `licenses` is a list of either.
"""

from __future__ import annotations

import json
import logging

from packageurl import PackageURL

from scanning.catalogers.common import NPM, Cataloger, Component, Distro, LicenseInfo
from scanning.layers import FileTree

logger = logging.getLogger(__name__)


def wants(path: str) -> bool:
    parts = path.split("/")
    if parts[-1] != "package.json" or "node_modules" not in parts:
        return False
    last = len(parts) - 1 - parts[::-1].index("node_modules")
    rest = parts[last + 1 : -1]
    if len(rest) == 1:
        return not rest[0].startswith((".", "@"))
    return len(rest) == 2 and rest[0].startswith("@") and len(rest[0]) > 1


def _license_names(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return [value["type"]]
    if isinstance(value, list):
        return [name for item in value for name in _license_names(item)]
    return []


def licenses_from_manifest(manifest: dict, found_in: str) -> list[LicenseInfo]:
    names = _license_names(manifest.get("license")) or _license_names(manifest.get("licenses"))
    return [LicenseInfo.from_raw(name, f"{found_in}#license") for name in names if name.strip()]


def catalog(tree: FileTree, distro: Distro | None) -> list[Component]:
    components = []
    for entry in tree.iter(predicate=wants):
        try:
            manifest = json.loads(entry.data or b"")
        except (ValueError, RecursionError) as error:
            logger.warning("skipping unreadable %s: %s", entry.path, error)
            continue
        if not isinstance(manifest, dict):
            continue
        name, version = manifest.get("name"), manifest.get("version")
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            continue
        scope, _, bare_name = name.rpartition("/")
        components.append(
            Component(
                name=name,
                version=version,
                type=NPM,
                ecosystem="npm",
                purl=PackageURL(
                    type="npm", namespace=scope or None, name=bare_name, version=version
                ).to_string(),
                licenses=licenses_from_manifest(manifest, entry.path),
                layer_digest=entry.layer,
                path=entry.path,
            )
        )
    return components


CATALOGER = Cataloger(name="npm", wants=wants, catalog=catalog)
