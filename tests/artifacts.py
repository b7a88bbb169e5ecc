"""Build real binaries for tests through slimlab's own (cached) build stage."""

from __future__ import annotations

import textwrap
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


def go_program(root: Path, name: str, body: str, manifest: str | None = None) -> str:
    """A user workload: ``root/name`` with a go.mod, ``body`` as main.go and the manifest."""
    d = root / name
    d.mkdir()
    (d / "go.mod").write_text(f"module example.com/{name}\n\ngo 1.21\n")
    (d / "main.go").write_text(textwrap.dedent(body))
    if manifest:
        (d / "workload.toml").write_text(manifest)
    return str(d)
