"""How a binary for a target runs on this host: natively, or under QEMU user emulation."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from ..libs import sysroot
from ..model import Target


@dataclass(frozen=True)
class Runner:
    name: str  # "native" or the emulator's name
    prefix: tuple[str, ...]  # put before the program's argv
    emulated: bool


def runner_for(target: Target) -> Runner | str:
    """A runner for ``target``, or the reason none is available (with the install command)."""
    if target.is_native:
        return Runner("native", (), False)
    emulator = shutil.which(target.qemu)
    if emulator is None:
        return f"{target.name} needs {target.qemu} to run on this host; install it with: apt-get install qemu-user-static"
    root = sysroot(target)
    # -L: where the emulator finds a dynamic binary's loader and libraries (gccgo's libgo).
    return Runner(target.qemu, (emulator, "-L", str(root)) if root else (emulator,), True)
