"""License names as packages write them, normalised to SPDX expressions.

Debian copyright files, Fedora-era RPM headers and Python trove classifiers use
names that are not SPDX ids (`GPL-2+`, `Expat`, `ASL 2.0`, `License :: OSI
Approved :: MIT License`). `normalise` maps each operand of an expression
through our own alias table, then lets `license-expression` validate and
canonicalise the result. A name we cannot place stays unknown: `normalise`
returns None, and callers keep the raw text.
"""

from __future__ import annotations

import re
from functools import lru_cache

from license_expression import (
    ExpressionError,
    LicenseExpression,
    LicenseSymbol,
    Licensing,
    get_spdx_licensing,
)

# Keys are lower case. Values are SPDX ids or small SPDX expressions.
_ALIASES: dict[str, str] = {
    # Debian short names (DEP-5) and /usr/share/common-licenses file names.
    "gpl-1": "GPL-1.0-only",
    "gpl-1+": "GPL-1.0-or-later",
    "gpl-2": "GPL-2.0-only",
    "gpl-2+": "GPL-2.0-or-later",
    "gpl-3": "GPL-3.0-only",
    "gpl-3+": "GPL-3.0-or-later",
    "lgpl-2": "LGPL-2.0-only",
    "lgpl-2+": "LGPL-2.0-or-later",
    "lgpl-2.1": "LGPL-2.1-only",
    "lgpl-2.1+": "LGPL-2.1-or-later",
    "lgpl-3": "LGPL-3.0-only",
    "lgpl-3+": "LGPL-3.0-or-later",
    "agpl-3": "AGPL-3.0-only",
    "agpl-3+": "AGPL-3.0-or-later",
    "gfdl-1.2": "GFDL-1.2-only",
    "gfdl-1.2+": "GFDL-1.2-or-later",
    "gfdl-1.3": "GFDL-1.3-only",
    "gfdl-1.3+": "GFDL-1.3-or-later",
    "artistic": "Artistic-1.0-Perl",
    "artistic-1": "Artistic-1.0-Perl",
    "artistic-2": "Artistic-2.0",
    "apache-2": "Apache-2.0",
    "expat": "MIT",
    "bsd-2-clause": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause",
    "bsd-4-clause": "BSD-4-Clause",
    "mpl-1.1": "MPL-1.1",
    "mpl-2": "MPL-2.0",
    "cc0": "CC0-1.0",
    "psf-2": "PSF-2.0",
    "zlib": "Zlib",
    "x11": "X11",
    "isc": "ISC",
    # Fedora's pre-SPDX short names, still common in RPM headers.
    "gplv2": "GPL-2.0-only",
    "gplv2+": "GPL-2.0-or-later",
    "gplv3": "GPL-3.0-only",
    "gplv3+": "GPL-3.0-or-later",
    "gpl+": "GPL-1.0-or-later",
    "lgplv2+": "LGPL-2.0-or-later",
    "lgplv3": "LGPL-3.0-only",
    "lgplv3+": "LGPL-3.0-or-later",
    "agplv3": "AGPL-3.0-only",
    "agplv3+": "AGPL-3.0-or-later",
    "asl 2.0": "Apache-2.0",
    "asl-2.0": "Apache-2.0",
    "mplv1.1": "MPL-1.1",
    "mplv2.0": "MPL-2.0",
    "boost": "BSL-1.0",
    "openssl": "OpenSSL",
    "python": "Python-2.0",
    # Common spellings in package.json, pom files and PKG-INFO.
    "apache 2.0": "Apache-2.0",
    "apache license 2.0": "Apache-2.0",
    "apache license, version 2.0": "Apache-2.0",
    "apache software license": "Apache-2.0",
    "the apache software license, version 2.0": "Apache-2.0",
    "mit license": "MIT",
    "the mit license": "MIT",
    "new bsd license": "BSD-3-Clause",
    # Debian names with exceptions, frequent enough to be worth spelling out.
    "gpl-2+ with autoconf exception": "GPL-2.0-or-later WITH Autoconf-exception-2.0",
    "gpl-3+ with autoconf exception": "GPL-3.0-or-later WITH Autoconf-exception-3.0",
    "gpl-3+ with bison exception": "GPL-3.0-or-later WITH Bison-exception-2.2",
    "gpl-2 with linux-syscall-note exception": "GPL-2.0-only WITH Linux-syscall-note",
    "gpl-3+ with gcc-runtime-library exception": "GPL-3.0-or-later WITH GCC-exception-3.1",
    "simplified bsd license": "BSD-2-Clause",
}

# The last segment of "License :: ..." trove classifiers. Unversioned names
# ("BSD License", "GNU General Public License (GPL)") are left out on purpose:
# they do not say which license it is.
_CLASSIFIERS: dict[str, str] = {
    "mit license": "MIT",
    "mit no attribution license (mit-0)": "MIT-0",
    "apache software license": "Apache-2.0",
    "isc license (iscl)": "ISC",
    "python software foundation license": "PSF-2.0",
    "mozilla public license 1.1 (mpl 1.1)": "MPL-1.1",
    "mozilla public license 2.0 (mpl 2.0)": "MPL-2.0",
    "gnu general public license v2 (gplv2)": "GPL-2.0-only",
    "gnu general public license v2 or later (gplv2+)": "GPL-2.0-or-later",
    "gnu general public license v3 (gplv3)": "GPL-3.0-only",
    "gnu general public license v3 or later (gplv3+)": "GPL-3.0-or-later",
    "gnu lesser general public license v2 (lgplv2)": "LGPL-2.0-only",
    "gnu lesser general public license v2 or later (lgplv2+)": "LGPL-2.0-or-later",
    "gnu lesser general public license v3 (lgplv3)": "LGPL-3.0-only",
    "gnu lesser general public license v3 or later (lgplv3+)": "LGPL-3.0-or-later",
    "gnu affero general public license v3": "AGPL-3.0-only",
    "gnu affero general public license v3 or later (agplv3+)": "AGPL-3.0-or-later",
    "eclipse public license 1.0 (epl-1.0)": "EPL-1.0",
    "eclipse public license 2.0 (epl-2.0)": "EPL-2.0",
    "european union public licence 1.2 (eupl 1.2)": "EUPL-1.2",
    "boost software license 1.0 (bsl-1.0)": "BSL-1.0",
    "zlib/libpng license": "Zlib",
    "the unlicense (unlicense)": "Unlicense",
    "historical permission notice and disclaimer (hpnd)": "HPND",
    "cc0 1.0 universal (cc0 1.0) public domain dedication": "CC0-1.0",
    "universal permissive license (upl)": "UPL-1.0",
    "academic free license (afl)": "AFL-3.0",
}

CLASSIFIER_PREFIX = "License ::"

# ", and" / ", or" bind more loosely than a bare "and" / "or" in DEP-5.
_COMMA_OPERATOR = re.compile(r"\s*,\s*(and|or)\s+", re.IGNORECASE)
_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_OPERATORS = {"and": "AND", "or": "OR", "with": "WITH"}
_LICENSE_REF = re.compile(r"^(DocumentRef-[\w.-]+:)?LicenseRef-[\w.-]+$")


@lru_cache(maxsize=1)
def _licensing() -> Licensing:
    return get_spdx_licensing()


@lru_cache(maxsize=1)
def _symbols_by_name() -> dict[str, LicenseSymbol]:
    """Every SPDX id and alias (deprecated ids such as 'GPL-2.0+'), lower case."""
    index: dict[str, LicenseSymbol] = {}
    for symbol in _licensing().known_symbols.values():
        for alias in symbol.aliases:
            index.setdefault(alias.lower(), symbol)
    index.update(_licensing().known_symbols_lowercase)
    return index


def classifier_to_spdx(classifier: str) -> str | None:
    """The SPDX id for a 'License :: ...' trove classifier, or None."""
    return _CLASSIFIERS.get(classifier.rpartition("::")[2].strip().lower())


def _known_symbol(name: str) -> str | None:
    """An SPDX expression for one license name, or None."""
    lowered = name.lower()
    if lowered in _ALIASES:
        return _ALIASES[lowered]
    if _LICENSE_REF.match(name):
        return name
    symbol = _symbols_by_name().get(lowered)
    if symbol is None or symbol.is_exception:
        return None
    return symbol.key


def _known_exception(name: str) -> str | None:
    """The canonical SPDX id of a license exception, or None."""
    symbol = _symbols_by_name().get(name.lower())
    if symbol is None or not symbol.is_exception:
        return None
    return symbol.key


def _operand(words: list[str]) -> str | None:
    name = " ".join(words)
    found = _known_symbol(name)
    if found is None:
        return None
    return f"({found})" if " " in found else found


def _translate(text: str) -> str | None:
    """Rewrite one comma-free expression with SPDX operands, or None if unknown."""
    output: list[str] = []
    words: list[str] = []
    after_with = False

    def flush() -> bool:
        nonlocal after_with
        if not words:
            return True
        # The operand after WITH is an exception id, not a license.
        operand = _known_exception(" ".join(words)) if after_with else _operand(words)
        words.clear()
        after_with = False
        if operand is None:
            return False
        output.append(operand)
        return True

    for piece in _TOKEN.findall(text):
        operator = _OPERATORS.get(piece.lower())
        if operator is not None or piece in ("(", ")"):
            if not flush():
                return None
            output.append(operator or piece)
            after_with = operator == "WITH"
        else:
            words.append(piece)
    if not flush():
        return None
    return " ".join(output)


@lru_cache(maxsize=4096)
def normalise(raw: str) -> str | None:
    """The SPDX expression for a raw license string, or None when unknown."""
    text = " ".join(raw.split())
    if not text or len(text) > 500:
        return None
    if text.startswith(CLASSIFIER_PREFIX):
        return classifier_to_spdx(text)
    whole = _ALIASES.get(text.lower())
    if whole is not None:
        return whole
    pieces = _COMMA_OPERATOR.split(text)
    parts = [_translate(piece) for piece in pieces[::2]]
    if any(part is None for part in parts):
        return None
    expression = f"({parts[0]})"
    for operator, part in zip(pieces[1::2], parts[1:], strict=True):
        expression = f"({expression} {_OPERATORS[operator.lower()]} ({part}))"
    parsed = _parse(expression)
    return parsed.render() if parsed is not None else None


def _parse(expression: str) -> LicenseExpression | None:
    try:
        return _licensing().parse(expression)
    # On some malformed inputs ("and MIT", "()") boolean.py fails with an
    # AssertionError or IndexError rather than its own ParseError.
    except (ExpressionError, AssertionError, IndexError, TypeError):
        return None


def spdx_ids(expression: str) -> set[str]:
    """The license ids (exceptions excluded) named by an SPDX expression."""
    parsed = _parse(expression)
    if parsed is None:
        raise ValueError(f"not an SPDX expression: {expression!r}")
    return {
        symbol.key
        for symbol in _licensing().license_symbols(parsed, decompose=True)
        if not getattr(symbol, "is_exception", False)
    }
