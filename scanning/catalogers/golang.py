"""Go modules compiled into ELF executables, read from the Go build info.

The linker writes a 32-byte header starting with `\\xff Go buildinf:` at a
16-byte aligned offset, then either (Go 1.18+, flag bit 2) the Go version and
the module info as varint-length strings right after it, or (older) two
pointers to Go string headers that we map back to file offsets through the ELF
program headers. The module info lists `path`, `mod` (the main module), `dep`
and `=>` (a replacement of the line above) lines. The standard library is the
module `stdlib`, at the Go version.

Which files are read: Go binaries cannot be told apart by name, and keeping
every executable would keep most of an image. We keep files directly in a
`bin`, `sbin` or `libexec` directory at any depth (`usr/local/bin`, `opt/x/bin`),
extension-less files at the root of the image or directly under `app/`,
`ko-app/` or `opt/<name>/` (where distroless and ko images put them), all
subject to the layer reader's per-file cap (64 MiB by default). Once read, a
file stays in memory only if it is an ELF file holding the build-info magic
(`accepts`), so the other executables of an image cost one read, not memory.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

from packageurl import PackageURL

from scanning.catalogers.common import GOLANG, Cataloger, Component, Distro
from scanning.layers import FileTree

MAGIC = b"\xff Go buildinf:"
HEADER_SIZE = 32
ALIGNMENT = 16
ELF_MAGIC = b"\x7fELF"
FLAG_BIG_ENDIAN = 0x1
FLAG_INLINE_STRINGS = 0x2
PT_LOAD = 1
_MAX_STRING = 1024 * 1024
_MAX_CANDIDATES = 64

# The module info is framed by two fixed 16-byte sentinels.
_SENTINEL_LENGTH = 16

_BIN_DIRECTORIES = frozenset({"bin", "sbin", "libexec"})
_APP_DIRECTORIES = frozenset({"app", "ko-app"})
_GO_VERSION = re.compile(r"^go(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:(rc|beta)(\d+))?")


def accepts(path: str, data: bytes) -> bool:
    return data.startswith(ELF_MAGIC) and MAGIC in data


def wants(path: str) -> bool:
    parts = path.split("/")
    name = parts[-1]
    if len(parts) >= 2 and parts[-2] in _BIN_DIRECTORIES:
        return True
    if "." in name:
        return False
    if len(parts) == 1:
        return True
    if len(parts) == 2 and parts[0] in _APP_DIRECTORIES:
        return True
    return len(parts) == 3 and parts[0] == "opt"


@dataclass
class Module:
    path: str
    version: str


@dataclass
class BuildInfo:
    go_version: str
    path: str | None = None
    main: Module | None = None
    deps: list[Module] = field(default_factory=list)


class _Elf:
    """Just enough ELF to map a virtual address to a file offset."""

    def __init__(self, data: bytes) -> None:
        if not data.startswith(ELF_MAGIC) or len(data) < 64:
            raise ValueError("not an ELF file")
        elf_class, encoding = data[4], data[5]
        self.endian = "<" if encoding == 1 else ">"
        self.data = data
        self.segments: list[tuple[int, int, int]] = []
        if elf_class == 2:
            (phoff,) = struct.unpack_from(self.endian + "Q", data, 0x20)
            phentsize, phnum = struct.unpack_from(self.endian + "HH", data, 0x36)
            layout, fields = self.endian + "IIQQQQ", (2, 3, 5)
        elif elf_class == 1:
            (phoff,) = struct.unpack_from(self.endian + "I", data, 0x1C)
            phentsize, phnum = struct.unpack_from(self.endian + "HH", data, 0x2A)
            layout, fields = self.endian + "IIIII", (1, 2, 4)
        else:
            raise ValueError(f"unknown ELF class {elf_class}")
        for index in range(min(phnum, 256)):
            start = phoff + index * phentsize
            if start + struct.calcsize(layout) > len(data):
                break
            values = struct.unpack_from(layout, data, start)
            if values[0] == PT_LOAD:
                offset, vaddr, filesz = (values[i] for i in fields)
                self.segments.append((vaddr, offset, filesz))

    def read(self, address: int, size: int) -> bytes:
        for vaddr, offset, filesz in self.segments:
            if vaddr <= address and address + size <= vaddr + filesz:
                start = offset + address - vaddr
                if start + size <= len(self.data):
                    return self.data[start : start + size]
        raise ValueError(f"address {address:#x} is not in the file")


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while position < len(data) and shift < 64:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7
    raise ValueError("bad varint")


def _varint_string(data: bytes, position: int) -> tuple[str, int]:
    length, position = _varint(data, position)
    if length > _MAX_STRING or position + length > len(data):
        raise ValueError("string runs past the end of the file")
    return data[position : position + length].decode("utf-8", "replace"), position + length


def _pointer_string(elf: _Elf, address: int, pointer_size: int, big_endian: bool) -> str:
    word = (">" if big_endian else "<") + ("Q" if pointer_size == 8 else "I")
    header = elf.read(address, 2 * pointer_size)
    data_address, length = struct.unpack(word[0] + word[1] * 2, header)
    if length > _MAX_STRING:
        raise ValueError("implausible string length")
    return elf.read(data_address, length).decode("utf-8", "replace") if length else ""


def _strings_at(data: bytes, start: int) -> tuple[str, str]:
    header = data[start : start + HEADER_SIZE]
    pointer_size, flags = header[14], header[15]
    if flags & FLAG_INLINE_STRINGS:
        version, position = _varint_string(data, start + HEADER_SIZE)
        modinfo, _ = _varint_string(data, position)
        return version, modinfo
    if pointer_size not in (4, 8):
        raise ValueError(f"pointer size {pointer_size}")
    big_endian = bool(flags & FLAG_BIG_ENDIAN)
    word = (">" if big_endian else "<") + ("Q" if pointer_size == 8 else "I")
    (version_address,) = struct.unpack_from(word, header, 16)
    (modinfo_address,) = struct.unpack_from(word, header, 16 + pointer_size)
    elf = _Elf(data)
    version = _pointer_string(elf, version_address, pointer_size, big_endian)
    modinfo = _pointer_string(elf, modinfo_address, pointer_size, big_endian)
    return version, modinfo


def read_build_info(data: bytes) -> BuildInfo | None:
    """The build info of a Go executable, or None if there is none to read."""
    if not data.startswith(ELF_MAGIC):
        return None
    position = data.find(MAGIC)
    for _ in range(_MAX_CANDIDATES):
        if position < 0 or position + HEADER_SIZE > len(data):
            return None
        # The magic also appears as a string constant in programs that read
        # build info; the real header is aligned and parses.
        if position % ALIGNMENT == 0:
            try:
                version, modinfo = _strings_at(data, position)
            except (ValueError, struct.error):
                version = ""
            if version.startswith("go"):
                return parse_modinfo(version, modinfo)
        position = data.find(MAGIC, position + 1)
    return None


def parse_modinfo(go_version: str, modinfo: str) -> BuildInfo:
    if len(modinfo) >= 2 * _SENTINEL_LENGTH + 1 and modinfo[-_SENTINEL_LENGTH - 1] == "\n":
        modinfo = modinfo[_SENTINEL_LENGTH:-_SENTINEL_LENGTH]
    info = BuildInfo(go_version=go_version)
    last: Module | None = None
    for line in modinfo.splitlines():
        kind, _, rest = line.partition("\t")
        fields = rest.split("\t")
        if kind == "path":
            info.path = rest
        elif kind == "mod" and fields[0]:
            info.main = last = Module(fields[0], fields[1] if len(fields) > 1 else "")
        elif kind == "dep" and fields[0]:
            last = Module(fields[0], fields[1] if len(fields) > 1 else "")
            info.deps.append(last)
        # A local-directory replacement has no version: the original stays.
        elif kind == "=>" and last is not None and len(fields) > 1 and fields[0] and fields[1]:
            last.path, last.version = fields[0], fields[1]
    return info


def go_semver(go_version: str) -> str | None:
    """'go1.21.5' -> '1.21.5', 'go1.21rc2' -> '1.21.0-rc.2', the form OSV uses for stdlib."""
    match = _GO_VERSION.match(go_version.strip())
    if match is None:
        return None
    major, minor, patch, pre, pre_number = match.groups()
    version = f"{major}.{minor or 0}.{patch or 0}"
    return f"{version}-{pre}.{pre_number}" if pre else version


def _module_component(module: Module, path: str, layer: str | None) -> Component:
    namespace, _, name = module.path.rpartition("/")
    return Component(
        name=module.path,
        version=module.version,
        type=GOLANG,
        ecosystem="Go",
        purl=PackageURL(
            type="golang", namespace=namespace or None, name=name, version=module.version or None
        ).to_string(),
        layer_digest=layer,
        path=path,
    )


def catalog(tree: FileTree, distro: Distro | None) -> list[Component]:
    components = []
    for entry in tree.iter(predicate=wants):
        info = read_build_info(entry.data or b"")
        if info is None:
            continue
        modules = [info.main] if info.main is not None else []
        modules += info.deps
        components += [_module_component(m, entry.path, entry.layer) for m in modules]
        stdlib_version = go_semver(info.go_version)
        if stdlib_version is not None:
            components.append(
                Component(
                    name="stdlib",
                    version=stdlib_version,
                    type=GOLANG,
                    ecosystem="Go",
                    purl=PackageURL(
                        type="golang", name="stdlib", version=stdlib_version
                    ).to_string(),
                    layer_digest=entry.layer,
                    path=entry.path,
                )
            )
    return components


CATALOGER = Cataloger(name="golang", wants=wants, catalog=catalog, accepts=accepts)
