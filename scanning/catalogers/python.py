"""Python distributions: `*.dist-info/METADATA`, `*.egg-info/PKG-INFO` and `*.egg-info` files.

Parsed leniently with `packaging.metadata.parse_email`, which accepts legacy
metadata. Licenses, first found wins: `License-Expression` (PEP 639), then the
`License ::` trove classifiers, then the free-text `License` field.
"""

from __future__ import annotations

from packageurl import PackageURL
from packaging.metadata import parse_email

from scanning.catalogers.common import PYPI, Cataloger, Component, Distro, LicenseInfo
from scanning.layers import FileTree
from scanning.licenses import CLASSIFIER_PREFIX

_PLACEHOLDERS = frozenset({"", "unknown", "none", "n/a"})
_MAX_LICENSE_TEXT = 200


def wants(path: str) -> bool:
    directory, _, name = path.rpartition("/")
    if name == "METADATA":
        return directory.endswith(".dist-info")
    if name == "PKG-INFO":
        return directory.endswith(".egg-info")
    # Old distutils installs write the metadata as a single '<name>.egg-info' file.
    return name.endswith(".egg-info")


def licenses_from_metadata(raw: dict, found_in: str) -> list[LicenseInfo]:
    expression = raw.get("license_expression")
    if isinstance(expression, str) and expression.strip():
        return [LicenseInfo.from_raw(expression, f"{found_in}#License-Expression")]
    classifiers = [
        classifier
        for classifier in raw.get("classifiers") or []
        if classifier.startswith(CLASSIFIER_PREFIX) and classifier.count("::") >= 2
    ]
    if classifiers:
        return [LicenseInfo.from_raw(c, f"{found_in}#Classifier") for c in classifiers]
    text = raw.get("license")
    if isinstance(text, str) and text.strip().lower() not in _PLACEHOLDERS:
        # Some projects paste the whole license text here: keep its first line.
        first_line = text.strip().splitlines()[0][:_MAX_LICENSE_TEXT]
        return [LicenseInfo.from_raw(first_line, f"{found_in}#License")]
    return []


def catalog(tree: FileTree, distro: Distro | None) -> list[Component]:
    components = []
    for entry in tree.iter(predicate=wants):
        raw = parse_metadata(entry.data or b"")
        name, version = raw.get("name"), raw.get("version")
        if not name or not version:
            continue
        components.append(
            Component(
                name=name,
                version=version,
                type=PYPI,
                ecosystem="PyPI",
                purl=PackageURL(type="pypi", name=name, version=version).to_string(),
                licenses=licenses_from_metadata(raw, entry.path),
                layer_digest=entry.layer,
                path=entry.path,
            )
        )
    return components


def parse_metadata(data: bytes) -> dict:
    """Core metadata fields; bytes that are not UTF-8 are replaced, not fatal.

    `parse_email` puts a field it cannot decode in its "unparsed" dict, which
    would lose the name of a package whose metadata is Latin-1.
    """
    return parse_email(data.decode("utf-8", "replace"))[0]


CATALOGER = Cataloger(name="python", wants=wants, catalog=catalog)
