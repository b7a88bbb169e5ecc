"""Shared libraries a dynamic binary needs, found on this machine, and their size on disk.

A dynamically linked variant (a gccgo default build needs libgo.so) is small only if
the image it ships in carries these libraries too: their bytes are part of its cost.
"""

from __future__ import annotations

from pathlib import Path

from .elf import linkage
from .model import Target


def search_dirs(target: Target) -> list[Path]:
    """Where Debian installs ``target``'s libraries (multiarch, then cross sysroots)."""
    triplet = target.triplet
    dirs = [Path(f"/lib/{triplet}"), Path(f"/usr/lib/{triplet}"), Path(f"/usr/{triplet}/lib")]
    if target.is_native:
        dirs += [Path("/lib64"), Path("/usr/lib64"), Path("/lib"), Path("/usr/lib")]
    return dirs


def resolve(name: str, target: Target) -> Path | None:
    for directory in search_dirs(target):
        candidate = directory / name
        if candidate.exists():
            return candidate.resolve()  # the real file, not the soname link
    return None


def closure(needed: list[str], target: Target) -> dict[str, Path | None]:
    """``needed`` and, in turn, what those libraries need (the set ldd lists)."""
    found: dict[str, Path | None] = {}
    todo = list(needed)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found[name] = path = resolve(name, target)
        if path is not None:
            todo += linkage(path)["needed_libs"]
    return found


def needed_bytes(needed: list[str], target: Target) -> int | None:
    """Bytes of every library the binary loads; None when one is not on this machine."""
    paths = closure(needed, target).values()
    if any(p is None for p in paths):
        return None
    return sum(p.stat().st_size for p in set(paths))


def sysroot(target: Target) -> Path | None:
    """The cross sysroot QEMU needs (-L) to run a dynamic binary of a foreign CPU."""
    root = Path(f"/usr/{target.triplet}")
    return root if root.is_dir() else None
