"""Toolchain identities: the compiler that actually ran for a target is the one recorded."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from slimlab import toolchains, workloads
from slimlab.build import build
from slimlab.model import BUILTIN_PROFILES
from slimlab.model import TARGETS
from slimlab.toolchains.gollvm import Gollvm

AMD64, ARM64 = TARGETS["linux/amd64"], TARGETS["linux/arm64"]


def first_line(*argv: str) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True).stdout.splitlines()[0].strip()


def gcc_comment(binary: Path) -> set[str]:
    """The "GCC: (...) x.y.z" strings compilers leave in .comment: who compiled the code."""
    out = subprocess.run(["readelf", "-p", ".comment", str(binary)], capture_output=True, text=True, check=False).stdout
    return set(re.findall(r"GCC: \(([^)]*)\) (\S+)", out))


@pytest.fixture(scope="module")
def gccgo():
    adapter = toolchains.get("gccgo")
    info = adapter.detect()
    assert info is not None, "gccgo is installed by scripts/setup.sh"
    return adapter, info


def test_a_gccgo_cross_build_records_the_cross_compiler(gccgo, tmp_path):
    adapter, info = gccgo
    cross = first_line("aarch64-linux-gnu-gccgo", "--version")
    go = first_line("go", "version")
    arm = adapter.info_for(info, ARM64)
    assert arm.version == f"{cross} (via {go})" and arm.path == shutil.which("aarch64-linux-gnu-gccgo")
    assert arm.identity != info.identity and adapter.info_for(info, AMD64) == info

    hello = workloads.resolve("hello")
    outcomes = {t.name: build(hello, adapter, info, BUILTIN_PROFILES["default"], t, tmp_path, 600)
                for t in (AMD64, ARM64)}
    assert all(o.ok for o in outcomes.values()), {k: o.reason for k, o in outcomes.items()}
    assert outcomes["linux/arm64"].toolchain_version == arm.version
    assert outcomes["linux/amd64"].toolchain_version == info.version
    # The binaries themselves say which GCC compiled them (Debian's cross and native
    # gccgo 12 are different package versions): the recorded version names that GCC.
    for name, outcome in outcomes.items():
        (package, version), = {c for c in gcc_comment(outcome.binary) if "Debian" in c[0]} or {("?", "?")}
        assert f"({package}) {version}" in outcome.toolchain_version, (name, gcc_comment(outcome.binary))


def test_a_cross_build_without_its_compiler_is_a_failed_outcome_not_a_crash(gccgo, tmp_path, monkeypatch):
    adapter, info = gccgo
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("go", "gccgo"):
        (bare / tool).symlink_to(shutil.which(tool))
    monkeypatch.setenv("PATH", str(bare))  # aarch64-linux-gnu-gccgo hidden
    assert adapter.info_for(info, ARM64) is None
    outcome = build(workloads.resolve("hello"), adapter, info, BUILTIN_PROFILES["default"], ARM64, tmp_path, 600)
    assert not outcome.ok and "apt-get install gccgo-aarch64-linux-gnu" in outcome.reason


def test_gollvm_identity_includes_the_go_command(gccgo):
    """llvm-goc is not installed here; gccgo is the other gccgo-compatible driver, so it
    stands in as the compiler to show what Gollvm's identity is made of."""
    stand_in = shutil.which("gccgo")
    info = Gollvm(llvm_goc=stand_in).detect()
    go = first_line("go", "version")
    assert go in info.identity and go in info.version
    assert first_line(stand_in, "--version") in info.identity and info.identity.startswith("gollvm ")
    assert Gollvm(llvm_goc=stand_in).info_for(info, ARM64) is None
