"""Go build information read from a binary's ``.go.buildinfo`` blob (what ``go version -m`` shows).

The ELF side (finding the section, or the writable segment that holds the blob when
section headers are gone) goes through pyelftools. The blob itself is not ELF: it is
Go's own format, read here the way Go's ``debug/buildinfo`` does:

    offset  0  "\\xff Go buildinf:"   14-byte magic
    offset 14  pointer size           1 byte
    offset 15  flags                  bit 0: big-endian; bit 1: strings inline (Go >= 1.18)
    offset 32  uvarint length + Go version string, then uvarint length + module info

The module info is the text of ``runtime/debug.BuildInfo.String()``, wrapped in 16-byte
sentinels. Binaries from Go < 1.18 store pointers instead of inline strings; they are
reported as unsupported (:class:`UnsupportedBuildInfo`), not guessed at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile

MAGIC = b"\xff Go buildinf:"
HEADER_SIZE = 32
FLAG_INLINE_STRINGS = 0x2
ALIGN = 16  # the linker aligns the blob to 16 bytes


class UnsupportedBuildInfo(Exception):
    """The binary has build info in a format this reader does not decode (Go < 1.18)."""


@dataclass(frozen=True)
class Module:
    path: str
    version: str
    sum: str = ""
    replace: Module | None = None

    def __str__(self) -> str:
        text = f"{self.path}@{self.version}" if self.version else self.path
        if self.replace is not None:
            text += f" => {self.replace}"
        return text


@dataclass(frozen=True)
class BuildInfo:
    go_version: str  # e.g. "go1.26.8"
    path: str | None  # the main package's import path
    main: Module | None  # the main module; version "(devel)" for a local build
    deps: tuple[Module, ...]
    settings: tuple[tuple[str, str], ...]  # ("-ldflags", "-s -w"), ("CGO_ENABLED", "0"), ...

    def setting(self, key: str) -> str | None:
        return next((v for k, v in self.settings if k == key), None)


def _uvarint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _string(data: bytes, pos: int) -> tuple[str, int]:
    length, pos = _uvarint(data, pos)
    if pos + length > len(data):
        raise ValueError("truncated string")
    return data[pos:pos + length].decode("utf-8", errors="replace"), pos + length


def _blob(path: Path) -> tuple[bytes, int] | None:
    """(bytes, offset of the magic) from .go.buildinfo, else from a writable PT_LOAD."""
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        section = elf.get_section_by_name(".go.buildinfo")
        if section is not None and section["sh_type"] != "SHT_NOBITS":
            data = section.data()
            if data.startswith(MAGIC):
                return data, 0
        # Section headers removed (or renamed): search where the Go linker puts it, the
        # first writable loadable segment, at 16-byte alignment, as debug/buildinfo does.
        for segment in elf.iter_segments():
            if segment["p_type"] != "PT_LOAD" or not segment["p_flags"] & 0x2:  # PF_W
                continue
            data = segment.data()
            at = data.find(MAGIC)
            while at != -1:
                if at % ALIGN == 0:
                    return data, at
                at = data.find(MAGIC, at + 1)
    return None


def read(path: str | Path) -> BuildInfo | None:
    """The Go build info of ``path``; None when it has none (not gc-built, or UPX-packed)."""
    found = _blob(Path(path))
    if found is None:
        return None
    data, at = found
    header = data[at:at + HEADER_SIZE]
    if len(header) < HEADER_SIZE:
        return None
    flags = header[15]
    if not flags & FLAG_INLINE_STRINGS:
        raise UnsupportedBuildInfo(f"{path}: Go build info in the pre-1.18 pointer format is not supported")
    version, pos = _string(data, at + HEADER_SIZE)
    modinfo, _ = _string(data, pos)
    # Sentinels around the module info: 16 bytes each side, the last line ends in \n.
    if len(modinfo) >= 33 and modinfo[-17] == "\n":
        modinfo = modinfo[16:-16]
    return parse(version, modinfo)


def parse(go_version: str, modinfo: str) -> BuildInfo:
    """The module text of runtime/debug.BuildInfo.String() (as ParseBuildInfo reads it)."""
    path = None
    main = None
    deps: list[Module] = []
    settings: list[tuple[str, str]] = []
    last: str | None = None  # "main" or "dep": what a "=>" line replaces

    for line in modinfo.splitlines():
        kind, _, rest = line.partition("\t")
        if kind == "path":
            path = rest
        elif kind in ("mod", "dep"):
            module = _module(rest)
            if kind == "mod":
                main, last = module, "main"
            else:
                deps.append(module)
                last = "dep"
        elif kind == "=>":
            replacement = _module(rest)
            if last == "main" and main is not None:
                main = Module(main.path, main.version, main.sum, replacement)
            elif last == "dep" and deps:
                d = deps[-1]
                deps[-1] = Module(d.path, d.version, d.sum, replacement)
        elif kind == "build":
            settings.append(_setting(rest))
    return BuildInfo(go_version, path, main, tuple(deps), tuple(settings))


def _module(fields: str) -> Module:
    parts = fields.split("\t")
    parts += [""] * (3 - len(parts))
    return Module(parts[0], parts[1], parts[2])


def _setting(kv: str) -> tuple[str, str]:
    if kv[:1] in ('"', "`"):
        raw_key = _quoted_prefix(kv)
        key, raw_value = go_unquote(raw_key), kv[len(raw_key) + 1:]
    else:
        key, _, raw_value = kv.partition("=")
    value = go_unquote(raw_value) if raw_value[:1] in ('"', "`") else raw_value
    return key, value


def _quoted_prefix(text: str) -> str:
    quote = text[0]
    i = 1
    while i < len(text):
        if text[i] == "\\" and quote == '"':
            i += 2
            continue
        if text[i] == quote:
            return text[: i + 1]
        i += 1
    return text


_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)", re.S)
_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
           "\\": "\\", '"': '"', "'": "'"}


def go_unquote(text: str) -> str:
    """Undo Go's strconv.Quote (double quotes) or a raw `backtick` string."""
    if len(text) >= 2 and text[0] == text[-1] == "`":
        return text[1:-1]
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return text

    def repl(m: re.Match) -> str:
        esc = m.group(1)
        if esc[0] in "xuU":
            return chr(int(esc[1:], 16))
        if esc[0] in "01234567":
            return chr(int(esc, 8))
        return _SIMPLE.get(esc, esc)

    return _ESCAPE.sub(repl, text[1:-1])

