"""Variants and the plan: a spec's axes expanded, as pure data.

Expansion runs no tool and reads no PATH: whether a toolchain is installed, or can
build a combination, is decided when the variant is prepared, and recorded in its row.
A plan pickles, so an executor can ship it elsewhere.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from .axes import AXES, COLUMNS
from .spec import SweepSpec

KEY_SEPARATOR = "|"


@dataclass(frozen=True)
class Variant:
    """One value of every axis, in AXES order; ``variant.profile`` etc. read them by column."""

    values: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.values) != len(COLUMNS):
            raise ValueError(f"a variant has one value per axis {COLUMNS}, got {self.values!r}")

    @classmethod
    def of(cls, **axes: str) -> Variant:
        """A variant from its axes by column; axes left out take their first default."""
        return cls(tuple(axes[a.column] if a.column in axes else (a.default or ("",))[0] for a in AXES))

    def __getattr__(self, name: str) -> str:
        if name in COLUMNS:
            return self.values[COLUMNS.index(name)]
        raise AttributeError(name)

    @property
    def key(self) -> str:
        """Stable across runs and machines: the axes, in a fixed order."""
        return KEY_SEPARATOR.join(self.values)

    def axes(self) -> dict[str, str]:
        return dict(zip(COLUMNS, self.values))

    @property
    def label(self) -> str:
        return " · ".join(self.values)


def _excluded(variant: Variant, rules: list[dict[str, str]]) -> bool:
    axes = variant.axes()
    return any(all(axes[k] == v for k, v in rule.items()) for rule in rules)


def expand(spec: SweepSpec) -> list[Variant]:
    """All variants of ``spec`` in axis order (the first axis slowest), minus the excluded ones."""
    rules = spec.exclude_rules()
    combos = itertools.product(*(spec.values(a.key) for a in AXES))
    return [v for v in (Variant(tuple(c)) for c in combos) if not _excluded(v, rules)]


@dataclass(frozen=True)
class Plan:
    """What a sweep will do: the validated spec and its variants. Pure data; pickles."""

    spec: SweepSpec
    variants: tuple[Variant, ...]


def plan(spec: SweepSpec | dict | str) -> Plan:
    """Validate ``spec`` and expand it, running nothing."""
    spec = SweepSpec.load(spec)
    return Plan(spec, tuple(expand(spec)))
