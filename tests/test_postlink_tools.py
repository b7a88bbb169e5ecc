"""Post-link uses the tools for the binary's own CPU everywhere: to run, to key its cache,
to say what is missing, and in the manifest; and a cached output keeps its own name."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from artifacts import built
from conftest import path_without

from slimlab import postlink
from slimlab.errors import ToolError
from slimlab.model import TARGETS

AMD64, ARM64, ARM = TARGETS["linux/amd64"], TARGETS["linux/arm64"], TARGETS["linux/arm/v7"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def version(program: str) -> str:
    return subprocess.run([program, "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]


def test_a_missing_cross_strip_is_unsupported_with_the_install_hint(tmp_path, monkeypatch):
    arm64_hello = built("hello", "default", "linux/arm64")
    monkeypatch.setenv("PATH", path_without({"aarch64-linux-gnu-strip"}, tmp_path / "bin"))
    assert shutil.which("strip") and shutil.which("aarch64-linux-gnu-objcopy")
    strip = postlink.get_chain("strip")
    reason = postlink.unsupported_reason(strip, ARM64)
    assert "needs aarch64-linux-gnu-strip" in reason and "apt-get install binutils-aarch64-linux-gnu" in reason
    assert postlink.unsupported_reason(strip, AMD64) is None and postlink.unsupported_reason(strip) is None
    assert postlink.unsupported_reason(postlink.get_chain("objcopy"), ARM64) is None
    # apply() never falls back to the host's strip, which cannot read an arm64 file.
    with pytest.raises(ToolError, match="apt-get install binutils-aarch64-linux-gnu"):
        postlink.apply(strip, arm64_hello, tmp_path, cache_dir=tmp_path)
    assert postlink.tool_versions([ARM64])["postlink:aarch64-linux-gnu-strip"] == "missing"


@pytest.mark.parametrize("target, program", [(ARM64, "aarch64-linux-gnu-strip"), (ARM, "arm-linux-gnueabihf-strip"),
                                             (AMD64, "strip")])
def test_the_cache_key_names_the_tool_run_for_the_binarys_cpu(target, program, tmp_path):
    binary = built("hello", "default", target.name)
    assert postlink.target_of(binary) == target
    out = postlink.apply(postlink.get_chain("strip"), binary, tmp_path, cache_dir=tmp_path)
    assert out.ok and Path(out.steps[0].argv[0]).name == program
    meta = json.loads((out.binary.parent / "meta.json").read_text())
    assert meta["tools"] == {program: version(program)}
    assert postlink.key_material(postlink.get_chain("strip"), binary)["tools"] == meta["tools"]


def test_the_manifest_lists_host_and_cross_tools():
    tools = postlink.tool_versions()
    for program in ("strip", "objcopy", "aarch64-linux-gnu-strip", "aarch64-linux-gnu-objcopy",
                    "arm-linux-gnueabihf-strip", "arm-linux-gnueabihf-objcopy", "upx"):
        assert tools[f"postlink:{program}"] == version(program), program
    assert set(postlink.tool_versions([ARM64])) == {"postlink:strip", "postlink:objcopy", "postlink:upx",
                                                     "postlink:aarch64-linux-gnu-strip",
                                                     "postlink:aarch64-linux-gnu-objcopy"}


@pytest.mark.parametrize("chain", ["strip", "strip+upx-1"])
def test_identical_bytes_under_two_names_get_two_entries(chain, tmp_path):
    """Two workloads can build the same program: each output keeps its own name."""
    hello = built("hello", "default")
    inputs = []
    for name in ("alpha", "beta"):
        (tmp_path / name).mkdir()
        inputs.append(tmp_path / name / name)
        shutil.copy2(hello, inputs[-1])
    outs = [postlink.apply(postlink.get_chain(chain), p, tmp_path, cache_dir=tmp_path / "cache") for p in inputs]
    assert all(o.ok and not o.cached for o in outs)
    assert [o.binary.name for o in outs] == ["alpha", "beta"]
    assert outs[0].binary.parent != outs[1].binary.parent
    assert sha256(outs[0].binary) == sha256(outs[1].binary)  # the same bytes, each under its own name
    again = postlink.apply(postlink.get_chain(chain), inputs[1], tmp_path, cache_dir=tmp_path / "cache")
    assert again.cached and again.binary == outs[1].binary
