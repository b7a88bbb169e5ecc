"""grpc-redis-legacy: grpc-redis on dependencies that Go 1.18 accepts, so gc and gccgo 12 both build it.

A real sweep builds it with gc (Go on PATH) and gccgo, dynamic and static, runs every binary
and asks /healthz and the gRPC health service. The module pins are checked against what the
go command resolves, so a pin that drifts past Go 1.18 fails here rather than in gccgo.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
from artifacts import built
from conftest import redis_server

import slimlab
from slimlab import toolchains, workloads
from slimlab.measure import CheckFailure, check_and_sample, runner_for
from slimlab.model import BUILTIN_PROFILES, TARGETS

log = logging.getLogger(__name__)
NAME = "grpc-redis-legacy"
SOURCE = workloads.BUILTIN_DIR / NAME
NATIVE = runner_for(TARGETS["linux/amd64"])
GRPC_ARGS = '["-addr", "{addr}", "-grpc-addr", "{grpc_addr}"]'


def module_files_digest() -> str:
    return hashlib.sha256((SOURCE / "go.mod").read_bytes() + b"\0" + (SOURCE / "go.sum").read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def legacy_run(tmp_path_factory) -> tuple[pl.DataFrame, str]:
    """The sweep, and go.mod + go.sum as they were before it (a build must not need to change them)."""
    before = module_files_digest()
    spec = {"workloads": [NAME], "toolchains": ["go", "gccgo"], "profiles": ["default", "static"],
            "repeats": 2, "warmup": 0}
    run = slimlab.sweep(spec, data_dir=tmp_path_factory.mktemp("legacy"), progress=False)
    return slimlab.load(run), before


def rows(df: pl.DataFrame, toolchain: str) -> dict[str, dict]:
    return {r["profile"]: r for r in df.filter(pl.col("toolchain") == toolchain).iter_rows(named=True)}


def test_gc_and_gccgo_both_build_and_serve(legacy_run):
    df, _ = legacy_run
    assert df.height == 4
    for row in df.iter_rows(named=True):
        log.info("%s %s: %s bytes (+%s bytes of libraries), start-up median %.1f ms, ready RSS %s KiB",
                 row["toolchain"], row["profile"], row["size_bytes"], row["needed_libs_bytes"],
                 row["startup_ms_median"], row["ready_rss_kib_median"])
        # ok means /healthz answered 200 "ok\n" and grpc.health.v1.Health/Check said SERVING.
        assert row["status"] == "ok", (row["toolchain"], row["profile"], row["reason"])
        assert row["startup_n"] == 2 and row["startup_ms_median"] > 0 and row["ready_rss_kib_median"] > 0
    assert "gccgo" in rows(df, "gccgo")["default"]["toolchain_version"]


def test_gccgo_dynamic_needs_libgo_and_static_needs_nothing(legacy_run):
    df, _ = legacy_run
    gccgo = rows(df, "gccgo")
    dynamic, static = gccgo["default"], gccgo["static"]
    assert dynamic["is_static"] is False
    assert any(lib.startswith("libgo.so.") for lib in dynamic["needed_libs"]), dynamic["needed_libs"]
    assert dynamic["needed_libs_bytes"] > 0
    assert static["is_static"] is True and static["needed_libs"] == [] and static["needed_libs_bytes"] == 0


def test_go_mod_declares_go_1_18_and_the_build_left_it_alone(legacy_run):
    _, before = legacy_run
    mod = (SOURCE / "go.mod").read_text()
    assert re.search(r"^go 1\.18$", mod, re.MULTILINE), "the module must declare go 1.18"
    assert "toolchain" not in mod
    assert not list(SOURCE.glob("vendor")), "dependencies come from the module proxy, never vendored"
    assert module_files_digest() == before, "building changed go.mod or go.sum: go.sum must be complete"


def test_every_linked_module_declares_go_1_18_or_lower(legacy_run):
    # -mod=readonly: fails on a missing go.sum line instead of adding it.
    done = subprocess.run(["go", "list", "-mod=readonly", "-deps", "-f",
                           "{{with .Module}}{{.Path}} {{.Version}} {{.GoVersion}}{{end}}", "."],
                          cwd=SOURCE, capture_output=True, text=True, timeout=300, check=True)
    modules = {tuple(line.split()) for line in done.stdout.splitlines() if line.strip()}
    paths = {m[0] for m in modules}
    assert {"google.golang.org/grpc", "github.com/redis/go-redis/v9", "golang.org/x/net"} <= paths
    newer = [m for m in modules
             if len(m) == 3 and tuple(int(x) for x in re.findall(r"\d+", m[2])[:2]) > (1, 18)]
    assert not newer, f"modules that declare a Go newer than 1.18: {newer}"


def test_the_gc_binary_links_exactly_the_pinned_versions(legacy_run):
    pinned = dict(re.findall(r"^\s+(\S+) (v\S+)", (SOURCE / "go.mod").read_text(), re.MULTILINE))
    info = subprocess.run(["go", "version", "-m", str(built(NAME, "default"))], capture_output=True, text=True,
                          check=True).stdout
    linked = dict(re.findall(r"^\s+dep\s+(\S+)\s+(\S+)", info, re.MULTILINE))
    assert linked["google.golang.org/grpc"] == pinned["google.golang.org/grpc"]
    assert linked["github.com/redis/go-redis/v9"] == pinned["github.com/redis/go-redis/v9"]
    assert all(pinned[path] == version for path, version in linked.items()), (linked, pinned)


def test_manifest_means_what_grpc_redis_means():
    legacy, modern = workloads.resolve(NAME), workloads.resolve("grpc-redis")
    for field in ("kind", "args", "env", "health_path", "expect_body", "grpc_health", "grpc_service"):
        assert getattr(legacy, field) == getattr(modern, field), field


def legacy_copy(parent: Path, manifest: str) -> Path:
    target = parent / NAME
    shutil.copytree(SOURCE, target, ignore=shutil.ignore_patterns("workload.toml"))
    (target / "workload.toml").write_text(manifest)
    return target


def test_gccgo_binary_with_a_real_redis(tmp_path, legacy_run):
    """The gccgo-built client talks to Redis: PONG when it answers, 503 and NOT_SERVING when it is gone."""
    binary = built(NAME, "static", toolchain="gccgo")
    with redis_server() as port:
        up = (f'kind = "server"\nargs = {GRPC_ARGS}\nenv = {{ REDIS_ADDR = "127.0.0.1:{port}" }}\n'
              f'expect_body = "ok redis=PONG\\n"\ngrpc_health = true\n')
        pong = check_and_sample(workloads.resolve(str(legacy_copy(tmp_path / "up", up))), NATIVE, binary, 10)
        assert pong.exit_code == 0
    # Redis is gone now: /healthz says why with a 503, and the gRPC health check says NOT_SERVING
    # (asked through "/", which answers 200 whatever Redis does).
    with pytest.raises(CheckFailure) as http_down:
        check_and_sample(workloads.resolve(str(legacy_copy(tmp_path / "down", up))), NATIVE, binary, 10)
    assert "/healthz answered 503" in http_down.value.reason, http_down.value.reason
    assert "redis:" in http_down.value.reason and "connection refused" in http_down.value.reason
    grpc_only = up.replace('expect_body = "ok redis=PONG\\n"', 'health_path = "/"')
    with pytest.raises(CheckFailure) as grpc_down:
        check_and_sample(workloads.resolve(str(legacy_copy(tmp_path / "grpc", grpc_only))), NATIVE, binary, 10)
    assert "gRPC health check" in grpc_down.value.reason and "NOT_SERVING" in grpc_down.value.reason


def test_gccgo_cross_builds_it_for_arm64(tmp_path):
    """aarch64-linux-gnu-gccgo builds it and QEMU runs it: x/sys/unix needs cgo on in a cross build."""
    command = toolchains.get("gccgo").build_command(SOURCE, BUILTIN_PROFILES["static"], TARGETS["linux/arm64"],
                                                    tmp_path / "o")
    assert (command.env["CGO_ENABLED"], command.env["CC"]) == ("1", "aarch64-linux-gnu-gcc")
    spec = {"workloads": [NAME], "toolchains": ["gccgo"], "profiles": ["static"], "targets": ["linux/arm64"],
            "repeats": 1, "warmup": 0}
    (row,) = slimlab.load(slimlab.sweep(spec, data_dir=tmp_path, progress=False)).iter_rows(named=True)
    log.info("gccgo static linux/arm64: %s bytes, start-up under QEMU %.1f ms", row["size_bytes"],
             row["startup_ms_median"])
    assert row["status"] == "ok", row["reason"]
    assert row["is_static"] is True and row["needed_libs"] == []
