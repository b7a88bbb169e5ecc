"""Toolchain adapters: one module per compiler family.

Each adapter knows how to find its compiler, report its exact version, turn a
``Profile`` (an intent) into its own flag dialect, and which targets it can build.
``get(name)`` maps an axis entry of a spec ("go", ...) to its adapter.
"""

from __future__ import annotations

from ..errors import SpecError
from .base import BuildCommand, Toolchain, ToolchainInfo
from .gc import HostGo

__all__ = ["BuildCommand", "Toolchain", "ToolchainInfo", "get", "known_names"]


def known_names() -> list[str]:
    return ["go"]


def get(name: str) -> Toolchain:
    """The adapter for a spec's toolchain entry; SpecError naming the valid ones otherwise."""
    if name == "go":
        return HostGo()
    from ..spec import did_you_mean

    raise SpecError(f"unknown toolchain {name!r}{did_you_mean(name, known_names())}; valid: {', '.join(known_names())}")
