"""ELF facts about a binary, read with pyelftools.

Section sizes are the section headers' ``sh_size`` (what ``readelf -S`` prints), grouped
into the buckets a reader of a size report cares about.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from .results_schema import SECTION_GROUPS

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


def inspect_binary(path: Path) -> dict:
    """Columns of the results frame that describe the file itself."""
    secs = sections(path)
    row: dict = {"size_bytes": os.stat(path).st_size}
    for group in SECTION_GROUPS:
        row[f"section_{group}_bytes"] = sum(s.size for s in secs if s.group == group)
    names = {s.name for s in secs}
    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        interpreter = None
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_INTERP":
                interpreter = seg.get_interp_name()
        needed = []
        for sec in elf.iter_sections():
            if isinstance(sec, DynamicSection):
                needed += [tag.needed for tag in sec.iter_tags() if tag.entry.d_tag == "DT_NEEDED"]
        row.update(
            elf_type=elf["e_type"],
            elf_machine=elf["e_machine"],
            has_dwarf=any(n.startswith((".debug_", ".zdebug_")) for n in names),
            has_symtab=".symtab" in names,
            # No program interpreter means the kernel runs it directly: nothing is loaded
            # from the file system at start, which is what "static" means to an image.
            is_static=interpreter is None and not needed,
            interpreter=interpreter,
            needed_libs=needed,
        )
    return row
