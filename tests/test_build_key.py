"""The artifact cache key covers the caller's environment and the C compiler that links libc."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from slimlab import toolchains, workloads
from slimlab.build import build, build_env, cache_key
from slimlab.model import BUILTIN_PROFILES
from slimlab.model import TARGETS

AMD64, ARM64 = TARGETS["linux/amd64"], TARGETS["linux/arm64"]


def go_build(cache: Path, workload: str = "hello", profile: str = "default", target=AMD64, toolchain: str = "go"):
    adapter = toolchains.get(toolchain)
    info = adapter.detect()
    assert info is not None, f"{toolchain} is needed"
    outcome = build(workloads.resolve(workload), adapter, info, BUILTIN_PROFILES[profile], target, cache, 600)
    assert outcome.ok, outcome.reason
    return outcome


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_settings(binary: Path) -> dict[str, str]:
    out = subprocess.run(["go", "version", "-m", str(binary)], capture_output=True, text=True, check=True).stdout
    return dict(line.split("\t")[2].split("=", 1) for line in out.splitlines()
                if line.startswith("\tbuild\t") and "=" in line)


def test_a_changed_goamd64_is_rebuilt_and_an_unchanged_environment_is_not(tmp_path, monkeypatch):
    monkeypatch.setenv("GOAMD64", "v1")
    v1 = go_build(tmp_path)
    monkeypatch.setenv("GOAMD64", "v3")
    v3 = go_build(tmp_path)
    assert not v3.cached and v3.key != v1.key
    assert sha(v3.binary) != sha(v1.binary)
    assert build_settings(v1.binary)["GOAMD64"] == "v1" and build_settings(v3.binary)["GOAMD64"] == "v3"
    again = go_build(tmp_path)
    assert again.cached and again.key == v3.key and again.binary == v3.binary


def test_another_cpus_level_does_not_rebuild(tmp_path, monkeypatch):
    """GOAMD64 says nothing about an arm64 build: hashing it would only rebuild for nothing."""
    monkeypatch.setenv("GOAMD64", "v1")
    first = go_build(tmp_path, target=ARM64)
    monkeypatch.setenv("GOAMD64", "v3")
    assert go_build(tmp_path, target=ARM64).cached
    monkeypatch.setenv("GOARM64", "v8.2")
    second = go_build(tmp_path, target=ARM64)
    assert not second.cached and second.key != first.key


def test_goflags_from_the_caller_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.delenv("GOFLAGS", raising=False)
    plain = go_build(tmp_path)
    monkeypatch.setenv("GOFLAGS", "-ldflags=-s")
    flagged = go_build(tmp_path)
    assert not flagged.cached and flagged.binary.stat().st_size < plain.binary.stat().st_size


@pytest.mark.parametrize("name, value", [
    ("GOEXPERIMENT", "nocoverageredesign"), ("CC", "x86_64-linux-gnu-gcc-12"), ("CXX", "g++"),
    ("CGO_CFLAGS", "-O0"), ("CGO_LDFLAGS", "-Wl,--build-id=none"), ("GOTOOLCHAIN", "local"),
    ("GOMODCACHE", "/elsewhere"),
])
def test_every_caller_variable_a_build_reads_is_in_the_key(name, value, monkeypatch):
    adapter = toolchains.get("go")
    info = adapter.detect()
    hello = workloads.resolve("hello")
    command = adapter.build_command(hello.source_dir, BUILTIN_PROFILES["default"], AMD64, Path("/OUT/hello"))
    monkeypatch.delenv(name, raising=False)
    before = cache_key(hello, info, command.argv[1:], build_env(command.env, AMD64), AMD64)
    monkeypatch.setenv(name, value)
    env = build_env(command.env, AMD64)
    assert env[name] == value
    assert cache_key(hello, info, command.argv[1:], env, AMD64) != before


def test_unrelated_variables_do_not_change_the_key(tmp_path, monkeypatch):
    first = go_build(tmp_path)
    monkeypatch.setenv("SLIMLAB_UNRELATED", "1")
    monkeypatch.setenv("TERM", "dumb")
    assert go_build(tmp_path).key == first.key


def c_compiler_of(outcome) -> str | None:
    return json.loads((outcome.binary.parent / "meta.json").read_text())["c_compiler"]


def test_the_c_compiler_is_hashed_when_cgo_links_libc(tmp_path, monkeypatch):
    monkeypatch.delenv("CGO_ENABLED", raising=False)
    monkeypatch.delenv("CC", raising=False)
    gcc = subprocess.run(["gcc", "--version"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    dynamic = go_build(tmp_path, "httpd", "default")  # net with cgo: links libc dynamically
    assert gcc in c_compiler_of(dynamic)
    assert c_compiler_of(go_build(tmp_path, "httpd", "static")) is None  # CGO_ENABLED=0: no C compiler
    assert c_compiler_of(go_build(tmp_path, "hello", "default", target=ARM64)) is None  # cross: cgo off
    monkeypatch.setenv("CGO_ENABLED", "0")
    off = go_build(tmp_path, "httpd", "default")
    assert c_compiler_of(off) is None and off.key != dynamic.key and not off.cached


def test_gccgo_always_hashes_its_c_compiler(tmp_path):
    if toolchains.get("gccgo").detect() is None:
        pytest.fail("gccgo is installed by scripts/setup.sh")
    for profile in ("default", "static"):
        assert c_compiler_of(go_build(tmp_path, "hello", profile, toolchain="gccgo"))
