"""ELF facts agree with binutils' readelf on the same files."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from artifacts import built

from slimlab.elf import section_group, sections
from slimlab.rows import inspect_binary
from slimlab.results_schema import SECTION_GROUPS

# "  [ 3] .text  PROGBITS  0000000000401000 001000 09d1d1 ..."; the null section has no name.
SECTION_LINE = re.compile(r"^\s*\[\s*\d+\]\s+(\S*?)\s+(\S+)\s+[0-9a-f]{8,16}\s+[0-9a-f]+\s+([0-9a-f]+)\s")


def readelf_sections(path) -> list[tuple[str, int]]:
    out = subprocess.run(["readelf", "-S", "--wide", str(path)], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        m = SECTION_LINE.match(line)
        if m and m.group(2) != "NULL":
            found.append((m.group(1), m.group(2), int(m.group(3), 16)))
    return found


CASES = [("hello", "default"), ("hello", "stripped"), ("httpd", "default"), ("httpd", "static")]


@pytest.mark.parametrize("workload, profile", CASES)
def test_sections_and_sizes_match_readelf(workload, profile):
    path = built(workload, profile)
    row = inspect_binary(path)
    assert row["size_bytes"] == os.stat(path).st_size
    theirs = readelf_sections(path)
    assert [(s.name, s.size) for s in sections(path)] == [(name, size) for name, _, size in theirs]
    # The stored per-section table is readelf's, section for section.
    assert [(s["name"], s["size_bytes"]) for s in row["sections"]] == [(name, size) for name, _, size in theirs]
    # Every group total equals readelf's sizes summed the same way.
    for group in SECTION_GROUPS:
        expected = sum(size for name, kind, size in theirs
                       if section_group(name, "SHT_NOBITS" if kind == "NOBITS" else "SHT_" + kind) == group)
        assert row[f"section_{group}_bytes"] == expected, group


def test_stripped_has_no_symtab_and_no_dwarf():
    default, stripped = inspect_binary(built("hello", "default")), inspect_binary(built("hello", "stripped"))
    assert default["has_symtab"] and default["has_dwarf"]
    assert default["section_dwarf_bytes"] > 0 and default["section_symtab_bytes"] > 0
    assert not stripped["has_symtab"] and not stripped["has_dwarf"]
    assert stripped["section_dwarf_bytes"] == 0 and stripped["section_symtab_bytes"] == 0
    assert stripped["size_bytes"] < default["size_bytes"]
    out = subprocess.run(["readelf", "-S", "--wide", str(built("hello", "stripped"))],
                         capture_output=True, text=True, check=True).stdout
    assert ".debug" not in out and ".symtab" not in out  # what users check by hand


def test_static_and_dynamic_agree_with_readelf():
    for workload, profile in CASES:
        path = built(workload, profile)
        row = inspect_binary(path)
        program_headers = subprocess.run(["readelf", "-lW", str(path)], capture_output=True, text=True).stdout
        dynamic = subprocess.run(["readelf", "-dW", str(path)], capture_output=True, text=True).stdout
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
        assert row["is_static"] == ("INTERP" not in program_headers), (workload, profile)
        assert row["needed_libs"] == needed
    # CGO_ENABLED=0 gives a static binary whatever it imports.
    assert inspect_binary(built("httpd", "static"))["is_static"]
