"""Capability matrix: what each toolchain can do, found by compiling and running probes.

Each probe is a small Go program shipped in ``slimlab/probes/<source>/``, built with one
toolchain under one build intent (a ``Profile``: "cgo off", "fully static", ...), run,
and its output checked here. Every cell of the matrix is a real compile and a real
run; nothing is typed in by hand. A probe stops at the first stage that fails:

- ``build``: the toolchain could not build it (the compiler's error is kept);
- ``run``: it built but exited non-zero or hung (its stderr is kept);
- ``check``: it ran, but said the wrong thing, or is dynamic where it must be static
  (an ELF interpreter or needed libraries, read by :func:`slimlab.elf.linkage`).

A toolchain that is not installed gets a row per probe with ``passed`` null and the
command that installs it. Builds go through slimlab's content-addressed artifact cache,
so an unchanged probe is compiled once per compiler; every run is fresh.
"""

from __future__ import annotations

import os
import pwd
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import polars as pl

from . import proc, toolchains
from .build import build, default_cache_dir
from .elf import linkage
from .model import TARGETS, Profile
from .workloads import Workload

PROBES_DIR = Path(__file__).parent / "probes"
BUILD_TIMEOUT_S = 600.0
RUN_TIMEOUT_S = 60.0
STAGES = ("build", "run", "check")

SCHEMA = {
    "toolchain": pl.String,
    "toolchain_version": pl.String,  # the compiler's own version line; null when not installed
    "probe": pl.String,
    "passed": pl.Boolean,  # null: the toolchain is not installed
    "stage": pl.String,  # the stage the probe stopped at ("check" when it passed); null when not installed
    "error": pl.String,  # why it failed; null when it passed
    "seconds": pl.Float64,  # wall time of this probe now: build (or cache hit), run and checks
    "build_seconds": pl.Float64,  # the compiler's wall time (of the original build when cached)
    "build_cached": pl.Boolean,
    "description": pl.String,
}


def _expect(text: str) -> Callable[[str], str | None]:
    def check(stdout: str) -> str | None:
        return None if stdout == text else f"expected output {text!r}, got {stdout[-400:]!r}"

    return check


def _expect_current_user(stdout: str) -> str | None:
    """The probe's answer against the password database as this (C-library) process sees it."""
    entry = pwd.getpwuid(os.getuid())
    want = f"uid={entry.pw_uid} username={entry.pw_name} home={entry.pw_dir} lookup={entry.pw_name}\n"
    return None if stdout == want else f"expected {want!r}, got {stdout[-400:]!r}"


@dataclass(frozen=True)
class Probe:
    name: str
    source: str  # the directory under slimlab/probes/
    profile: Profile  # the build intent, mapped by each toolchain adapter to its own flags
    description: str
    check_output: Callable[[str], str | None] = field(compare=False)  # None when the output is right
    must_be_static: bool = False  # the binary may name no ELF interpreter and no needed library

    @property
    def source_dir(self) -> Path:
        return PROBES_DIR / self.source


_NO_CGO = Profile("probe-cgo-off", "cgo disabled (CGO_ENABLED=0 or the toolchain's static equivalent)", cgo=False)
_STATIC = Profile("probe-static", "cgo on, external linker, fully static", external_static=True)
_PLAIN = Profile("probe", "the toolchain's defaults")

PROBES: tuple[Probe, ...] = (
    Probe("cgo-off", "cgo-off", _NO_CGO, "net (TCP loopback, localhost lookup) builds and works without cgo",
          _expect("tcp: echo ping\nlocalhost is loopback: true\n")),
    Probe("os-user-cgo-off", "os-user", _NO_CGO, "os/user.Current() without cgo, in a static binary",
          _expect_current_user, must_be_static=True),
    Probe("os-user-static", "os-user", _STATIC, "os/user.Current() with cgo, linked fully static",
          _expect_current_user, must_be_static=True),
    Probe("tls-static", "tls-static", _NO_CGO, "net/http client over TLS (local server), static binary",
          _expect('status=200 body="hello over TLS"\n'), must_be_static=True),
    Probe("syscall-getpid", "syscall-getpid", _PLAIN, "syscall.Syscall(SYS_GETPID) equals os.Getpid()",
          _expect("getpid: syscall and os.Getpid agree\n")),
    Probe("goroutines", "goroutines", _PLAIN, "goroutine worker pool over channels, select, mutex, WaitGroup",
          _expect("jobs=20000 handled=20000 sum=400020000\n")),
    Probe("json-reflect", "json-reflect", _PLAIN, "reflect-heavy encoding/json round trip",
          _expect('{"children":[{"count":null,"created":"0001-01-01T00:00:00Z","levels":{},"name":"leaf",'
                  '"ratio":0,"tags":[]}],"count":3,"created":"2024-02-29T12:30:00Z","labels":{"a":"1","b":"2"},'
                  '"levels":{"high":"***","low":"*"},"name":"root","ratio":0.25,"tags":["x","y"]}\n')),
)


def probe_names() -> list[str]:
    return [p.name for p in PROBES]


def default_toolchains() -> list[str]:
    """Every compiler family slimlab knows (Go releases such as go1.22.10 only when asked for)."""
    return list(toolchains.FAMILIES)


def run_probes(
    toolchains: list[str] | None = None,
    cache_dir: str | Path | None = None,
    probes: list[str] | None = None,
) -> pl.DataFrame:
    """Build, run and check every probe with every toolchain: one row per (toolchain, probe)."""
    from .errors import did_you_mean

    chosen = list(PROBES)
    if probes is not None:
        unknown = [n for n in probes if n not in probe_names()]
        if unknown:
            from .errors import SpecError

            raise SpecError(f"unknown probe {unknown[0]!r}{did_you_mean(unknown[0], probe_names())}; "
                            f"probes: {', '.join(probe_names())}")
        chosen = [p for p in PROBES if p.name in probes]
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    rows: list[dict] = []
    for name in toolchains if toolchains is not None else default_toolchains():
        rows += _probe_toolchain(name, chosen, cache)
    return pl.DataFrame(rows, schema=SCHEMA)


def _probe_toolchain(name: str, probes: list[Probe], cache: Path) -> list[dict]:
    adapter = _get_adapter(name, cache)
    problem = None
    try:
        ensure = getattr(adapter, "ensure", None)
        if ensure is not None:
            ensure(False)  # a Go release from PyPI is installed here, once
        info = adapter.detect()
    except Exception as exc:  # noqa: BLE001 - an install or detect failure is recorded, not raised
        info, problem = None, f"{type(exc).__name__}: {exc}"
    if info is None:
        error = f"not installed: {adapter.install_hint()}" + (f" ({problem})" if problem else "")
        return [_row(name, None, p, None, None, error, 0.0, None, None) for p in probes]
    return [run_probe(adapter, info, p, cache) for p in probes]


def _get_adapter(name: str, cache: Path) -> toolchains.Toolchain:
    from . import toolchains as registry  # the module; the parameter of run_probes shadows it there

    return registry.get(name, cache_dir=cache)  # a Go release is installed in (and found in) this cache


def run_probe(adapter: toolchains.Toolchain, info: toolchains.ToolchainInfo, probe: Probe, cache: Path,
              target: str = "linux/amd64") -> dict:
    """One probe with one detected toolchain: build (cached), run, check. Returns its row."""
    start = time.perf_counter()
    platform = TARGETS[target]

    def finish(passed: bool, stage: str, error: str | None, built=None) -> dict:
        return _row(adapter.name, info.version, probe, passed, stage, error, time.perf_counter() - start,
                    built.seconds if built else None, built.cached if built else None)

    unsupported = adapter.unsupported_reason(probe.profile, platform)
    if unsupported:
        return finish(False, "build", f"unsupported: {unsupported}")
    workload = Workload(name=probe.name, source_dir=probe.source_dir)
    built = build(workload, adapter, info, probe.profile, platform, cache, BUILD_TIMEOUT_S)
    if not built.ok:
        return finish(False, "build", built.reason or "the build failed", built)
    with tempfile.TemporaryDirectory(prefix="slimlab-probe-") as cwd:
        done = proc.run([str(built.binary)], cwd=cwd, timeout=RUN_TIMEOUT_S)
    if not done.ok:
        return finish(False, "run", done.error(f"{probe.name}").args[0], built)
    wrong = probe.check_output(done.stdout)
    if wrong:
        return finish(False, "check", wrong, built)
    if probe.must_be_static:
        dynamic = dynamic_linking(built.binary)
        if dynamic:
            return finish(False, "check", f"not static: {dynamic}", built)
    return finish(True, "check", None, built)


def dynamic_linking(binary: Path) -> str | None:
    """What makes ``binary`` dynamically linked (its ELF interpreter and needed libraries), or None."""
    link = linkage(binary)
    if link["is_static"]:
        return None
    parts = [f"interpreter {link['interpreter']}"] if link["interpreter"] else []
    if link["needed_libs"]:
        parts.append(f"needs {', '.join(link['needed_libs'])}")
    return ", ".join(parts)


def _row(toolchain, version, probe: Probe, passed, stage, error, seconds, build_seconds, cached) -> dict:
    return {
        "toolchain": toolchain,
        "toolchain_version": version,
        "probe": probe.name,
        "passed": passed,
        "stage": stage,
        "error": error,
        "seconds": seconds,
        "build_seconds": build_seconds,
        "build_cached": cached,
        "description": probe.description,
    }


# -- figure -------------------------------------------------------------------------------
