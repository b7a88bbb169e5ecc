"""The exported Dockerfile builds on a real engine, against a builder image made from this
machine's own Go, and the binary in the image is slimlab's own build of the variant: byte
for byte with -trimpath; without it, the build machine's paths are what differs."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess

import pytest

import slimlab
from slimlab import dockerfile, engine, image, postlink
from slimlab.build import build, default_cache_dir
from slimlab.errors import SlimlabError, SpecError
from slimlab.model import TARGETS, SweepSpec, get_chain
from slimlab.results import load_manifests
from slimlab.toolchains import get
from slimlab.workloads import resolve

log = logging.getLogger(__name__)

STATIC_UPX = "hello|go|static|linux/amd64|strip+objcopy+upx-9|scratch"  # CGO_ENABLED=0, -trimpath, a full chain
TRIMMED = "hello|go|trimmed|linux/amd64|none|scratch"  # -trimpath; its build info says CGO_ENABLED=1
DEFAULT = "hello|go|default|linux/amd64|none|scratch"  # no -trimpath


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    spec = {"workloads": ["hello"], "profiles": ["default", "trimmed", "static"],
            "postlink": ["none", "strip+objcopy+upx-9"], "bases": ["scratch"], "repeats": 1, "warmup": 0,
            "excludes": [{"profile": "default", "postlink": "strip+objcopy+upx-9"},
                         {"profile": "trimmed", "postlink": "strip+objcopy+upx-9"}]}
    return slimlab.sweep(spec, data_dir=tmp_path_factory.mktemp("df-data"), run_id="df", progress=False)


def slimlab_binary(run, key: str) -> bytes:
    """The variant's binary as the sweep made it: build and chain taken from the cache it filled."""
    row = slimlab.load(run).filter(slimlab.load(run)["variant_key"] == key).row(0, named=True)
    spec = SweepSpec.load(load_manifests(run)[0]["spec"])
    adapter = get(row["toolchain"])
    info = adapter.detect()
    built = build(resolve(row["workload"]), adapter, info, spec.all_profiles()[row["profile"]], TARGETS[row["target"]],
                  default_cache_dir(), 600)
    assert built.ok and built.cached, built  # the sweep's own build, not a new one
    linked = postlink.apply(get_chain(row["postlink"]), built.binary, run, cache_dir=default_cache_dir())
    assert linked.ok and (linked.cached or not linked.steps)
    data = linked.binary.read_bytes()
    assert len(data) == row["size_bytes"]
    return data


@pytest.fixture(scope="module")
def builder(docker_engine, run):
    """The local builder image; afterwards every image built on it (the builder stages of
    the builds below) and, when this module made it, the builder itself are removed."""
    api = engine.client()
    made = dockerfile.local_builder(slimlab.load(run)["go_version"].drop_nulls()[0], api)
    log.info("local builder %s: %s bytes, imported in %.1f s (created: %s)", made.tag, made.size_bytes, made.seconds,
             made.created)
    builder_id = api.images.get(made.tag).id
    tags: list[str] = []
    yield api, made, tags
    for tag in tags:
        api.images.remove(tag, force=True)  # and its untagged parents: the final stage's steps
    dockerfile.remove_built_on(api, builder_id)
    if made.created:
        api.images.remove(builder_id, force=True)
    api.close()


def _build(builder, export, name: str):
    api, made, tags = builder
    tag = f"slimlab/dockerfile-test:{name}-{os.getpid()}"
    tags.append(tag)
    built = dockerfile.build(api, export, tag, builder=made.tag)
    log.info("%s: context %d bytes, docker build %.1f s", export.variant_key, export.context_bytes, built.seconds)
    return built


@pytest.mark.parametrize("key, base", [(STATIC_UPX, None), (TRIMMED, "static")])
def test_a_trimpath_export_builds_slimlabs_own_binary(run, builder, tmp_path, key, base):
    export = dockerfile.export(run, key, base, tmp_path / "export")
    assert export.differences == ()
    assert export.builder == "golang:1.26.8" and "ARG BUILDER=golang:1.26.8" in export.dockerfile.read_text()
    built = _build(builder, export, key.split("|")[2])
    ours = slimlab_binary(run, key)
    assert hashlib.sha256(built.binary).hexdigest() == hashlib.sha256(ours).hexdigest()
    api = builder[0]
    ran = image.run_container(api, built.tag, [], {}, 60)  # confined, as every container slimlab starts
    assert (ran.exit_code, ran.stdout) == (0, "hello from slimlab\n"), ran
    if base == "static":  # ADD base.tar / kept the base's files
        assert b"nonroot:x:65532:65532" in dockerfile.file_in_image(api, built.tag, "/etc/passwd")


def test_without_trimpath_the_build_machines_paths_differ(run, builder, tmp_path):
    export = dockerfile.export(run, DEFAULT, None, tmp_path / "export")
    assert any("-trimpath" in d for d in export.differences)
    built = _build(builder, export, "default")
    ours = slimlab_binary(run, DEFAULT)
    assert built.binary != ours
    host_source = str(resolve("hello").source_dir)
    # The main package's file: slimlab's source directory there, the context's /src here.
    assert f"{host_source}/main.go".encode() in ours and host_source.encode() not in built.binary
    assert b"/src/main.go" in built.binary
    # GOROOT: the golang image's /usr/local/go, where this machine's Go also is.
    goroot = subprocess.run([get("go").detect().path, "env", "GOROOT"], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert f"{goroot}/src/runtime/proc.go".encode() in ours
    assert b"/usr/local/go/src/runtime/proc.go" in built.binary
    differing = sum(a != b for a, b in zip(ours, built.binary))
    log.info("without -trimpath: %d vs %d bytes, %d differ", len(ours), len(built.binary), differing)


COBRA = "cobra-cli|go|static|linux/amd64|none|none"


@pytest.fixture(scope="module")
def cobra_run(tmp_path_factory):
    """A workload with module dependencies (cobra, pflag, mousetrap)."""
    return slimlab.sweep({"workloads": ["cobra-cli"], "profiles": ["static"], "repeats": 1, "warmup": 0},
                         data_dir=tmp_path_factory.mktemp("df-cobra"), run_id="c", progress=False)


def test_vendoring_drops_the_dep_checksums_and_the_proxy_mode_keeps_the_binary(cobra_run, tmp_path):
    """Built on this machine with each export's own command and environment."""
    run, key = cobra_run, COBRA
    ours = slimlab_binary(run, key)
    go = get("go").detect().path
    binaries, deps = {}, {}
    for modules in dockerfile.MODULES:
        export = dockerfile.export(run, key, "scratch", tmp_path / modules, modules=modules)
        assert export.modules == modules
        argv = [go if a == "go" else a for a in export.build_argv]
        out = tmp_path / f"{modules}.bin"
        argv[argv.index("-o") + 1] = str(out)
        env = dict(item.split("=", 1) for item in export.build_env)
        if modules == "proxy":  # the context's goproxy/, where the image has it at /goproxy
            env["GOPROXY"] = f"file://{export.out / 'goproxy'}"
        env["GOMODCACHE"] = str(tmp_path / f"modcache-{modules}")  # nothing from this machine's module cache
        done = subprocess.run(argv, cwd=export.out / "src", env={**os.environ, "GOFLAGS": "", **env},
                              capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr
        binaries[modules] = out.read_bytes()
        deps[modules] = [line for line in subprocess.run([go, "version", "-m", str(out)], capture_output=True,
                                                          text=True, check=True).stdout.splitlines() if "\tdep\t" in line]
        subprocess.run(["chmod", "-R", "u+w", env["GOMODCACHE"]], check=False)
    assert binaries["proxy"] == ours
    assert binaries["vendor"] != ours and len(deps["vendor"]) == len(deps["proxy"]) > 0
    assert all("h1:" in line for line in deps["proxy"]) and not any("h1:" in line for line in deps["vendor"])


def test_a_proxy_mode_export_with_dependencies_builds_offline_to_slimlabs_binary(cobra_run, builder, tmp_path):
    """GOPROXY names only the context's module zips and the builder's module cache starts
    empty: nothing is fetched from anywhere else."""
    export = dockerfile.export(cobra_run, COBRA, "scratch", tmp_path / "export", modules="proxy")
    assert export.modules == "proxy" and export.differences == ()
    built = _build(builder, export, "cobra")
    assert hashlib.sha256(built.binary).hexdigest() == hashlib.sha256(slimlab_binary(cobra_run, COBRA)).hexdigest()
    workload = resolve("cobra-cli")
    ran = image.run_container(builder[0], built.tag, workload.run_args(), {}, 60)
    assert (ran.exit_code, ran.stdout) == (0, workload.expect_stdout), ran


def test_bad_input_is_refused_before_anything_is_written(run, tmp_path):
    out = tmp_path / "export"
    with pytest.raises(SpecError, match=r"unknown variant key .*did you mean 'hello\|go\|static"):
        dockerfile.export(run, "hello|go|statc|linux/amd64|none|scratch", None, out)
    with pytest.raises(SpecError, match=r"unknown base 'statik' \(did you mean 'static'\?\); valid: scratch"):
        dockerfile.export(run, TRIMMED, "statik", out)
    with pytest.raises(SpecError, match=r"unknown modules mode 'vendored' \(did you mean 'vendor'\?\)"):
        dockerfile.export(run, TRIMMED, None, out, modules="vendored")
    assert not out.exists()
    out.mkdir()
    (out / "keep").write_text("x")
    with pytest.raises(SlimlabError, match="not an empty directory"):
        dockerfile.export(run, TRIMMED, None, out)
    assert [p.name for p in out.iterdir()] == ["keep"]


# -- another CPU: cross-compiled on this machine, run under QEMU (binfmt_misc) -----------------
ARM64_BARE = "hello|go|static|linux/arm64|none|scratch"  # CGO_ENABLED=0, -trimpath
ARM64_STRIPPED = "hello|go|static|linux/arm64|strip+objcopy|scratch"  # aarch64-linux-gnu-strip and -objcopy
ARM_V7 = "hello|go|static|linux/arm/v7|none|none"  # GOARM=7


@pytest.fixture(scope="module")
def arm64_run(tmp_path_factory):
    spec = {"workloads": ["hello"], "profiles": ["static"], "targets": ["linux/arm64"],
            "postlink": ["none", "strip+objcopy"], "bases": ["scratch"], "repeats": 1, "warmup": 0}
    return slimlab.sweep(spec, data_dir=tmp_path_factory.mktemp("df-arm64"), run_id="arm64", progress=False)


def _row_of(run, key: str) -> dict:
    frame = slimlab.load(run)
    return frame.filter(frame["variant_key"] == key).row(0, named=True)


@pytest.mark.parametrize("key, base", [(ARM64_BARE, None), (ARM64_STRIPPED, "static")])
def test_an_arm64_export_cross_compiles_the_rows_binary_and_runs_under_qemu(arm64_run, builder, tmp_path, key,
                                                                             base):
    row = _row_of(arm64_run, key)
    assert row["status"] == "ok" and row["binary_sha256"], row
    export = dockerfile.export(arm64_run, key, base, tmp_path / "export")
    assert export.platform == "linux/arm64" and export.differences == ()
    text = export.dockerfile.read_text()
    # The builder on the machine that builds, the final stage on the row's CPU.
    assert "FROM --platform=$BUILDPLATFORM ${BUILDER} AS build" in text
    assert "FROM --platform=linux/arm64 scratch" in text
    env = dict(item.split("=", 1) for item in export.build_env)
    assert (env["GOOS"], env["GOARCH"], env["CGO_ENABLED"]) == ("linux", "arm64", "0")
    assert ("aarch64-linux-gnu-strip --strip-all" in text) == ("strip" in row["postlink"])
    built = _build(builder, export, key.split("|")[4].replace("+", "-"))
    assert hashlib.sha256(built.binary).hexdigest() == row["binary_sha256"]
    binary = tmp_path / "hello"
    binary.write_bytes(built.binary)
    assert postlink.target_of(binary) == TARGETS["linux/arm64"]
    api = builder[0]
    # The legacy builder (the SDK's) labels a scratch-based image with the engine's CPU; BuildKit would not.
    architecture = api.images.get(built.tag).attrs["Architecture"]
    log.info("%s: image config says %s; docker build %.1f s", key, architecture, built.seconds)
    ran = image.run_container(api, built.tag, [], {}, 60)  # under qemu-aarch64 on another CPU
    assert (ran.exit_code, ran.stdout) == (0, "hello from slimlab\n"), ran
    if base == "static":  # the arm64 base: its passwd, its certificates
        assert b"nonroot:x:65532:65532" in dockerfile.file_in_image(api, built.tag, "/etc/passwd")


def test_an_arm_v7_exports_build_line_makes_the_rows_binary(tmp_path_factory, tmp_path):
    """GOARM=7 from the row, built on this machine with the export's own command and environment."""
    run = slimlab.sweep({"workloads": ["hello"], "profiles": ["static"], "targets": ["linux/arm/v7"],
                         "bases": ["none"], "repeats": 1, "warmup": 0},
                        data_dir=tmp_path_factory.mktemp("df-armv7"), run_id="armv7", progress=False)
    row = _row_of(run, ARM_V7)
    assert row["status"] == "ok", row
    export = dockerfile.export(run, ARM_V7, "scratch", tmp_path / "export")
    assert export.platform == "linux/arm/v7"
    assert "FROM --platform=linux/arm/v7 scratch" in export.dockerfile.read_text()
    env = dict(item.split("=", 1) for item in export.build_env)
    assert (env["GOARCH"], env["GOARM"]) == ("arm", "7")
    go = get("go").detect().path
    argv = [go if a == "go" else a for a in export.build_argv]
    out = tmp_path / "hello"
    argv[argv.index("-o") + 1] = str(out)
    done = subprocess.run(argv, cwd=export.out / "src", env={**os.environ, "GOFLAGS": "", **env},
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert hashlib.sha256(out.read_bytes()).hexdigest() == row["binary_sha256"]


def _altered_run(run, tmp_path, key: str, **columns):
    """A copy of ``run`` whose row ``key`` has ``columns`` changed: a results file from elsewhere."""
    import polars as pl

    copy = tmp_path / "runs" / "altered"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("oci", "sbom"))
    frame = pl.read_parquet(copy / "results.parquet")
    mine = pl.col("variant_key") == key
    changed = frame.with_columns(
        *(pl.when(mine).then(pl.lit(v, dtype=frame.schema[c])).otherwise(pl.col(c)).alias(c)
          for c, v in columns.items()))
    changed.write_parquet(copy / "results.parquet")
    return copy


@pytest.mark.parametrize("columns, message", [
    ({"flags": ["-trimpath", "-ldflags=-s -w\nRUN echo injected"]},
     r"column flags: .* holds a control character"),
    ({"build_env": ["CGO_ENABLED=0\r"]}, r"column build_env: .* holds a control character"),
    ({"go_version": "go1.26.8\n"}, r"column go_version: .* holds a control character"),
    ({"build_env": ["CGO_ENABLED=1"],
      "build_settings": ["-trimpath=true", "CGO_ENABLED=1", "GOARCH=arm64", "GOOS=linux"]},
     r"a cgo build \(CGO_ENABLED=1\) for linux/arm64 needs.* aarch64-linux-gnu-gcc"),
    ({"build_settings": ["-trimpath=true", "CGO_ENABLED=0", "GOARCH=amd64", "GOOS=linux"]},
     r"build info says .*'GOARCH': 'amd64'.* which is not linux/arm64"),
])
def test_what_cannot_be_written_right_is_refused_before_anything_is_written(arm64_run, tmp_path, columns,
                                                                           message):
    run = _altered_run(arm64_run, tmp_path, ARM64_BARE, **columns)
    out = tmp_path / "export"
    with pytest.raises(SlimlabError, match=message):
        dockerfile.export(run, ARM64_BARE, None, out)
    assert not out.exists()
