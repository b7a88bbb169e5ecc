"""Expand a spec's axes into variants: a pure function, no tools run.

Excluded combinations are dropped; combinations a toolchain cannot build are kept,
marked unsupported with the reason, so the results say what was not measured and why.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from . import toolchains
from .spec import SweepSpec
from .targets import TARGETS


@dataclass(frozen=True)
class Variant:
    workload: str
    toolchain: str
    profile: str
    target: str
    postlink: str = "none"
    unsupported: str | None = None  # the reason, when it cannot be built at all

    @property
    def key(self) -> str:
        """Stable across runs and machines: the axes, in a fixed order."""
        return "|".join((self.workload, self.toolchain, self.profile, self.target, self.postlink))

    def axes(self) -> dict[str, str]:
        return {
            "workload": self.workload,
            "toolchain": self.toolchain,
            "profile": self.profile,
            "target": self.target,
            "postlink": self.postlink,
        }

    @property
    def label(self) -> str:
        return " · ".join(self.axes().values())


def _excluded(variant: Variant, excludes) -> bool:
    axes = variant.axes()
    return any(all(axes.get(k) == v for k, v in rule.items()) for rule in excludes)


def expand(spec: SweepSpec) -> list[Variant]:
    """All variants of ``spec`` in axis order (workload slowest, postlink fastest)."""
    profiles = spec.all_profiles()
    out = []
    for workload, tc_name, profile, target, chain in itertools.product(
        spec.workloads, spec.toolchains, spec.profiles, spec.targets, spec.postlink
    ):
        variant = Variant(workload, tc_name, profile, target, chain)
        if _excluded(variant, spec.excludes):
            continue
        reason = toolchains.get(tc_name).unsupported_reason(profiles[profile], TARGETS[target])
        if reason:
            variant = Variant(workload, tc_name, profile, target, chain, unsupported=reason)
        out.append(variant)
    return out
