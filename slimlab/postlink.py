"""Post-link chains applied to a built binary (strip, objcopy, UPX, ...).

This release knows only the empty chain, ``none``; the seam is here so that the sweep,
the spec and the results already carry a ``postlink`` axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import SpecError


@dataclass(frozen=True)
class Chain:
    name: str
    steps: tuple[str, ...] = ()
    upx_level: str | None = None


CHAINS: dict[str, Chain] = {"none": Chain("none")}


def get_chain(name: str) -> Chain:
    from .spec import did_you_mean

    if name not in CHAINS:
        raise SpecError(f"unknown postlink chain {name!r}{did_you_mean(name, CHAINS)}; valid: {', '.join(CHAINS)}")
    return CHAINS[name]


@dataclass(frozen=True)
class PostlinkOutcome:
    ok: bool
    binary: Path
    reason: str | None = None


def apply(chain: Chain, binary: Path, workdir: Path) -> PostlinkOutcome:
    """Run ``chain`` on ``binary``; the result is a new file, the input is left alone."""
    if chain.steps:
        raise NotImplementedError(f"postlink chain {chain.name!r}")
    return PostlinkOutcome(ok=True, binary=binary)
