"""ELF facts about a binary, read with pyelftools.

Section sizes are the section headers' ``sh_size`` (what ``readelf -S`` prints), grouped
into the buckets a reader of a size report cares about. Besides sizes:

- hardening: PIE, RELRO, NX stack, stack canary (the checks checksec makes), static or
  dynamic, interpreter and needed libraries;
- residue: DWARF sections, ``.symtab``, absolute build paths left in the file (what
  ``-trimpath`` removes), the Go build ID;
- Go build info (``go version -m``), read by :mod:`slimlab.buildinfo`.

A UPX-packed file shows none of its original sections: its residue and build info are
inside the compressed payload, so those columns are null for it rather than "clean".
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.dynamic import DynamicSection, DynamicSegment
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import NoteSection
from elftools.elf.segments import NoteSegment

from . import buildinfo, proc

_TEXT = {".text", ".init", ".fini", ".plt", ".plt.got", ".plt.sec", ".iplt"}
_RODATA_PREFIXES = (".rodata", ".typelink", ".itablink", ".gosymtab", ".go.buildinfo", ".go.fipsinfo", ".noptrrodata")
_DATA = {".data", ".noptrdata", ".data.rel.ro", ".got", ".got.plt", ".init_array", ".fini_array", ".dynamic", ".tdata"}


def section_group(name: str, sh_type: str) -> str | None:
    """The bucket a section belongs to; None for the null section."""
    if sh_type == "SHT_NULL":
        return None
    if name.startswith((".debug_", ".zdebug_")):
        return "dwarf"
    if name in (".symtab", ".strtab"):
        return "symtab"
    if name == ".gopclntab" or name.endswith(".gopclntab"):
        return "pclntab"
    if sh_type == "SHT_NOBITS":
        return "bss"
    if name in _TEXT:
        return "text"
    if name.startswith(_RODATA_PREFIXES):
        return "rodata"
    if name in _DATA or name.startswith(".data."):
        return "data"
    return "other"


@dataclass(frozen=True)
class Section:
    name: str
    type: str
    size: int
    group: str


def sections(path: Path) -> list[Section]:
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        out = []
        for sec in elf.iter_sections():
            group = section_group(sec.name, sec["sh_type"])
            if group is not None:
                out.append(Section(sec.name, sec["sh_type"], sec["sh_size"], group))
        return out


# -- linkage ---------------------------------------------------------------------------
def elf_linkage(elf: ELFFile) -> dict:
    """``is_static``, ``interpreter`` and ``needed_libs`` (DT_NEEDED, in order) of an ELF file.

    Read from the program headers, as the kernel and ld.so read them (PT_INTERP,
    PT_DYNAMIC): they survive a file whose section headers are gone. A file without
    program headers (an object file) falls back to its ``.dynamic`` section.

    A UPX-packed file shows no interpreter and no DT_NEEDED although its unpacked
    program needs both: read its linkage from the file before packing (:func:`linkage`).
    """
    interpreter, needed, has_dynamic = None, [], False
    for seg in elf.iter_segments():
        if seg["p_type"] == "PT_INTERP":
            interpreter = seg.get_interp_name()
        elif isinstance(seg, DynamicSegment):
            has_dynamic = True
            needed += [tag.needed for tag in seg.iter_tags() if tag.entry.d_tag == "DT_NEEDED"]
    if not has_dynamic:
        for sec in elf.iter_sections():
            if isinstance(sec, DynamicSection):
                needed += [tag.needed for tag in sec.iter_tags() if tag.entry.d_tag == "DT_NEEDED"]
    return {
        # No program interpreter means the kernel runs it directly: nothing is loaded from
        # the file system at start, which is what "static" means to an image.
        "is_static": interpreter is None and not needed,
        "interpreter": interpreter,
        "needed_libs": needed,
    }


def linkage(path: str | Path) -> dict:
    """:func:`elf_linkage` of the file at ``path``: the one reader of ELF dependencies."""
    with open(path, "rb") as fh:
        return elf_linkage(ELFFile(fh))


# -- hardening -------------------------------------------------------------------------
PF_X = 0x1
PF_W = 0x2
DF_BIND_NOW = 0x8  # DT_FLAGS
DF_1_NOW = 0x1  # DT_FLAGS_1
DF_1_PIE = 0x08000000  # DT_FLAGS_1
CANARY_SYMBOLS = (b"__stack_chk_fail", b"__stack_chk_fail_local", b"__stack_chk_guard")


def _dynamic_tags(elf: ELFFile) -> dict[str, int]:
    """DT_* tag -> value (the last one wins; DT_NEEDED is read separately)."""
    tags: dict[str, int] = {}
    for seg in elf.iter_segments():
        if isinstance(seg, DynamicSegment):  # from the program header: survives stripped sections
            for tag in seg.iter_tags():
                tags[tag.entry.d_tag] = tag.entry.d_val
    return tags


def _references_canary(elf: ELFFile) -> bool | None:
    """True when a symbol table references __stack_chk_fail; None when there is none to read."""
    tables = [s for s in elf.iter_sections() if s["sh_type"] in ("SHT_SYMTAB", "SHT_DYNSYM")]
    if not tables:
        return None
    for table in tables:
        strtab = elf.get_section(table["sh_link"])
        names = strtab.data() if strtab is not None else b""
        # Cheap pre-check on the string table, then the symbols themselves.
        if not any(b"\0" + name + b"\0" in names or b"\0" + name + b"@" in names for name in CANARY_SYMBOLS):
            continue
        wanted = {n.decode() for n in CANARY_SYMBOLS}
        if any(sym.name.split("@")[0] in wanted for sym in table.iter_symbols()):
            return True
    return False


def hardening(elf: ELFFile) -> dict:
    """PIE, RELRO, NX stack and stack canary, by the rules checksec and readelf use."""
    segments = {seg["p_type"]: seg for seg in elf.iter_segments()}
    tags = _dynamic_tags(elf)
    bind_now = ("DT_BIND_NOW" in tags or tags.get("DT_FLAGS", 0) & DF_BIND_NOW
                or tags.get("DT_FLAGS_1", 0) & DF_1_NOW)
    stack = segments.get("PT_GNU_STACK")
    return {
        # ET_DYN alone would also match a shared library: a PIE has an interpreter or DF_1_PIE.
        "is_pie": elf["e_type"] == "ET_DYN"
        and ("PT_INTERP" in segments or bool(tags.get("DT_FLAGS_1", 0) & DF_1_PIE)),
        "relro": "none" if "PT_GNU_RELRO" not in segments else ("full" if bind_now else "partial"),
        # No PT_GNU_STACK at all leaves the choice to the kernel (executable on old x86 ABIs):
        # only an explicit non-executable stack counts.
        "nx_stack": stack is not None and not stack["p_flags"] & PF_X,
        "stack_canary": _references_canary(elf),
    }


# -- residue ---------------------------------------------------------------------------
_PRINTABLE = rb"[\x20-\x7e\t]"  # what binutils' `strings` (default -e s) counts as text
_PRINTABLE_BYTE = re.compile(_PRINTABLE)


def leaked_path_strings(path: Path, prefixes: Iterable[str | Path]) -> set[str]:
    """Distinct strings in the file (as `strings -a` splits them) that start with a prefix.

    A prefix matches a whole directory: ``/usr/local/go`` matches ``/usr/local/go/src/x.go``
    but not ``/usr/local/gopher``.
    """
    wanted = sorted({str(p).rstrip("/") for p in prefixes if str(p).startswith("/") and str(p) != "/"},
                    key=len, reverse=True)
    if not wanted:
        return set()
    pattern = re.compile(
        rb"(?:" + b"|".join(re.escape(p.encode()) for p in wanted) + rb")"
        rb"(?:/" + _PRINTABLE + rb"*)?(?!" + _PRINTABLE + rb")"
    )
    data = Path(path).read_bytes()
    # A string starts after a non-printable byte. Checked on each match rather than as a
    # look-behind at every byte (20x slower on a Go binary): a match that fails it spans
    # printable bytes only, so no string can start inside it and none is skipped.
    return {m.group().decode("ascii") for m in pattern.finditer(data)
            if m.start() == 0 or not _PRINTABLE_BYTE.match(data, m.start() - 1)}


@functools.lru_cache(maxsize=16)
def _go_env_paths(go: str) -> tuple[str, ...]:
    done = proc.run([go, "env", "GOPATH", "GOMODCACHE", "GOROOT"], timeout=60)
    if not done.ok:
        return ()
    out = []
    for line in done.stdout.splitlines():
        out += [p for p in line.split(os.pathsep) if p]
    return tuple(out)


def build_path_prefixes(source_dir: str | Path | None, go: str | None = None) -> list[str]:
    """The build machine's directories that ``-trimpath`` keeps out of a binary.

    The workload's source directory, and the Go installation's GOPATH, GOMODCACHE and
    GOROOT (from ``go env`` of ``go``, else of the go on PATH).
    """
    prefixes = [str(Path(source_dir).resolve())] if source_dir else []
    go = go if go and Path(go).name.startswith("go") else shutil.which("go")
    if go:
        prefixes += list(_go_env_paths(go))
    return list(dict.fromkeys(prefixes))


def go_build_id(elf: ELFFile) -> str | None:
    """The Go build ID (``go tool buildid``): the "Go" ELF note of type 4; None without one."""
    notes = [n for s in elf.iter_sections() if isinstance(s, NoteSection) for n in s.iter_notes()]
    if not notes and elf.num_sections() == 0:
        notes = [n for seg in elf.iter_segments() if isinstance(seg, NoteSegment) for n in seg.iter_notes()]
    for note in notes:
        # pyelftools names note type 4 after GNU's meaning (NT_GNU_GOLD_VERSION); for the
        # owner "Go" it is ELF_NOTE_GOBUILDID_TAG.
        if note["n_name"] == "Go" and note["n_type"] in (4, "NT_GNU_GOLD_VERSION"):
            desc = note["n_desc"]
            text = desc.decode("utf-8", errors="replace") if isinstance(desc, bytes) else str(desc)
            return text.rstrip("\0") or None
    return None


def is_upx_packed(path: Path) -> bool:
    """UPX leaves its "UPX!" l_info marker within the first few KiB of a packed ELF."""
    with open(path, "rb") as fh:
        return b"UPX!" in fh.read(4096)


# -- all together ----------------------------------------------------------------------
@dataclass(frozen=True)
class Inspection:
    """What inspect found in one file: the stage's outcome (``rows.inspect_columns`` maps it)."""

    size_bytes: int
    elf_type: str
    elf_machine: str
    sections: tuple[Section, ...]
    is_static: bool  # of ``linkage_of`` when given (the build before UPX)
    interpreter: str | None
    needed_libs: tuple[str, ...]
    is_pie: bool
    relro: str
    nx_stack: bool
    stack_canary: bool | None
    upx_packed: bool
    go_buildid: str | None  # None: no build ID, or packed (see has_go_buildid)
    leaked_paths: int | None  # None: not looked for, or packed
    build_info: buildinfo.BuildInfo | None

    def group_bytes(self, group: str) -> int:
        return sum(s.size for s in self.sections if s.group == group)

    @property
    def dwarf_sections(self) -> list[str]:
        return [s.name for s in self.sections if s.group == "dwarf"]

    @property
    def has_symtab(self) -> bool:
        return any(s.name == ".symtab" for s in self.sections)

    @property
    def has_go_buildid(self) -> bool | None:
        return None if self.upx_packed else self.go_buildid is not None


def inspect(path: Path, build_paths: Iterable[str | Path] | None = None,
            linkage_of: Path | None = None) -> Inspection:
    """Inspect the file at ``path``.

    ``build_paths``: directories whose appearance in the file counts as a leaked build
    path (see :func:`build_path_prefixes`); without them ``leaked_paths`` is None.
    ``linkage_of``: the file whose ``is_static``/``interpreter``/``needed_libs`` count,
    when ``path`` hides them: the build before post-link, for a UPX-packed ``path``.
    """
    path = Path(path)
    secs = tuple(sections(path))
    packed = is_upx_packed(path)
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        linked = linkage(linkage_of) if linkage_of is not None else elf_linkage(elf)
        hard = hardening(elf)
        elf_type, elf_machine = elf["e_type"], elf["e_machine"]
        build_id = None if packed else go_build_id(elf)
    try:
        info = None if packed else buildinfo.read(path)
    except (buildinfo.UnsupportedBuildInfo, ValueError):  # ValueError: a truncated or damaged blob
        info = None
    return Inspection(
        size_bytes=os.stat(path).st_size,
        elf_type=elf_type,
        elf_machine=elf_machine,
        sections=secs,
        is_static=linked["is_static"],
        interpreter=linked["interpreter"],
        needed_libs=tuple(linked["needed_libs"]),
        is_pie=hard["is_pie"],
        relro=hard["relro"],
        nx_stack=hard["nx_stack"],
        stack_canary=hard["stack_canary"],
        upx_packed=packed,
        go_buildid=build_id,
        leaked_paths=None if build_paths is None or packed else len(leaked_path_strings(path, build_paths)),
        build_info=info,
    )
