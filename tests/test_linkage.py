"""One reader of ELF dependencies (slimlab.elf.linkage) serves inspect, libs and probe,
and gives the linkage of a UPX-packed variant from its build before packing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from artifacts import built

from slimlab import libs, postlink, probe
from slimlab.elf import linkage
from slimlab.rows import inspect_binary
from slimlab.model import TARGETS

AMD64 = TARGETS["linux/amd64"]


def readelf_linkage(path: Path) -> dict:
    headers = subprocess.run(["readelf", "-lW", str(path)], capture_output=True, text=True, check=False).stdout
    dynamic = subprocess.run(["readelf", "-dW", str(path)], capture_output=True, text=True, check=False).stdout
    interp = re.search(r"\[Requesting program interpreter: ([^\]]+)\]", headers)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
    interpreter = interp.group(1) if interp else None
    return {"is_static": interpreter is None and not needed, "interpreter": interpreter, "needed_libs": needed}


def ldd_paths(path: Path) -> set[str]:
    out = subprocess.run(["ldd", str(path)], capture_output=True, text=True, check=True).stdout
    return {os.path.realpath(w) for line in out.splitlines() for w in line.split() if w.startswith("/")}


BINARIES = [("hello", "default", "go"), ("httpd", "default", "go"), ("httpd", "static", "go"),
            ("hello", "default", "gccgo"), ("hello", "static", "gccgo")]


@pytest.mark.parametrize("workload, profile, toolchain", BINARIES)
def test_linkage_agrees_with_readelf(workload, profile, toolchain):
    path = built(workload, profile, toolchain=toolchain)
    ours = linkage(path)
    assert ours == readelf_linkage(path)
    row = inspect_binary(path)
    assert {k: row[k] for k in ours} == ours  # inspect reads it the same way
    assert probe.dynamic_linking(path) is None if ours["is_static"] else ours["interpreter"] in probe.dynamic_linking(path)


def test_linkage_of_shared_libraries_drives_the_closure_ldd_lists():
    binary = built("hello", "default", toolchain="gccgo")
    needed = linkage(binary)["needed_libs"]
    assert any(n.startswith("libgo.so") for n in needed)
    found = libs.closure(needed, AMD64)
    for lib in found.values():  # every library's own DT_NEEDED, read the same way
        assert linkage(lib) == readelf_linkage(lib)
    assert libs.needed_bytes(needed, AMD64) == sum(os.stat(p).st_size for p in ldd_paths(binary))


def test_linkage_survives_a_file_without_section_headers(tmp_path):
    """What the loader reads is the program headers; sstrip-like tools drop the sections."""
    copy = tmp_path / "httpd"
    shutil.copy2(built("httpd", "default"), copy)
    with open(copy, "r+b") as fh:  # ELF64: e_shoff at 0x28, e_shnum at 0x3c, e_shstrndx at 0x3e
        fh.seek(0x28)
        fh.write(b"\0" * 8)
        fh.seek(0x3C)
        fh.write(b"\0" * 4)
    sections = subprocess.run(["readelf", "-S", str(copy)], capture_output=True, text=True, check=True).stdout
    assert "There are no sections" in sections
    assert linkage(copy) == readelf_linkage(copy) == readelf_linkage(built("httpd", "default"))
    assert linkage(copy)["needed_libs"]


def test_upx_hides_linkage_and_the_build_before_packing_tells_it(tmp_path):
    build = built("httpd", "default")
    before = linkage(build)
    assert not before["is_static"] and "libc.so.6" in before["needed_libs"]
    packed = postlink.apply(postlink.get_chain("upx-9"), build, tmp_path, cache_dir=tmp_path)
    assert packed.ok, packed.reason
    hidden = inspect_binary(packed.binary)
    assert hidden["upx_packed"] and hidden["is_static"] and hidden["needed_libs"] == []  # what UPX shows
    row = inspect_binary(packed.binary, linkage_of=build)
    assert {k: row[k] for k in before} == before == readelf_linkage(build)
    assert row["size_bytes"] == packed.binary.stat().st_size and row["upx_packed"]  # the rest is the packed file's
    assert libs.needed_bytes(row["needed_libs"], AMD64) == sum(os.stat(p).st_size for p in ldd_paths(build))
