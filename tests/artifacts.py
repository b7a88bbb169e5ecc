"""Build real binaries for tests through slimlab's own (cached) build stage."""

from __future__ import annotations

from pathlib import Path

from slimlab import toolchains, workloads
from slimlab.build import build, default_cache_dir
from slimlab.model import BUILTIN_PROFILES, TARGETS


def built(workload: str, profile: str, target: str = "linux/amd64", toolchain: str = "go") -> Path:
    adapter = toolchains.get(toolchain)
    info = adapter.detect()
    assert info is not None, f"{toolchain} is needed for this test"
    outcome = build(workloads.resolve(workload), adapter, info, BUILTIN_PROFILES[profile], TARGETS[target],
                    default_cache_dir(), timeout=600)
    assert outcome.ok, outcome.reason
    return outcome.binary
