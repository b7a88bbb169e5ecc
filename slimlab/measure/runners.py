"""Runners: how a program for a target is started on this host, and how its time and memory are read.

A runner is anything with the ``Runner`` protocol; the sweep only calls ``check`` and
``samples`` on it, so a new way of running (a full-system guest, a container) plugs in
as one class and one line in ``runner_for``, without touching the sweep.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..libs import sysroot
from ..model import Target
from .contain import Limits

if TYPE_CHECKING:
    from ..workloads import Workload
    from .samples import Sample


@runtime_checkable
class Runner(Protocol):
    name: str  # recorded in each row's `runner` column
    emulated: bool  # timings are not the CPU's own (QEMU)
    memory_scope: str  # what its peak RSS counts: "program", or "emulator+program"

    def check(self, workload: Workload, binary: Path, timeout_s: float) -> Sample:
        """One start with output captured and checked; raises CheckFailure when it does not work."""

    def samples(self, workload: Workload, binary: Path, timeout_s: float, runs: int, warmup: int = 0,
                cpu: int | None = None) -> list[Sample]:
        """``warmup`` untimed then ``runs`` timed starts; raises CheckFailure at the first failing one."""


@dataclass(frozen=True)
class LauncherRunner:
    """Starts programs through slimlab's static launcher (launcher.c): wait4 rusage, no Python
    in the measured process's history. ``prefix`` goes before the program (an emulator)."""

    name: str  # "native" or the emulator's name
    prefix: tuple[str, ...]
    emulated: bool
    launcher: Path | None = None  # the compiled launcher; None: the one in the default cache
    memory_scope: str = "program"
    limits: Limits = Limits()  # each batch of starts runs in a cgroup with these (measure.contain)

    def check(self, workload: Workload, binary: Path, timeout_s: float) -> Sample:
        from .samples import check_and_sample

        return check_and_sample(workload, self, binary, timeout_s)

    def samples(self, workload: Workload, binary: Path, timeout_s: float, runs: int, warmup: int = 0,
                cpu: int | None = None) -> list[Sample]:
        from .samples import take_samples

        return take_samples(workload, self, binary, timeout_s, runs, cpu=cpu, warmup=warmup)


def runner_for(target: Target, launcher: Path | None = None, runner: str = "qemu-user",
               cache_dir: Path | None = None, limits: Limits = Limits()) -> Runner | str:
    """A runner for ``target``, or the reason none is available (with the install command).
    ``runner`` says how a foreign target runs (model.spec.RUNNERS); a native one runs natively.
    ``limits``: the spec's memory and pids limits of a bare run (native, QEMU user mode)."""
    if target.is_native:
        return LauncherRunner("native", (), False, launcher, limits=limits)
    if runner == "qemu-system":
        from .qemu_system import QemuSystemRunner, runner_unsupported

        return runner_unsupported(target) or QemuSystemRunner(target, cache_dir)
    emulator = shutil.which(target.qemu)
    if emulator is None:
        return f"{target.name} needs {target.qemu} to run on this host; install it with: apt-get install qemu-user-static"
    root = sysroot(target)
    # -L: where the emulator finds a dynamic binary's loader and libraries (gccgo's libgo).
    prefix = (emulator, "-L", str(root)) if root else (emulator,)
    # QEMU user mode runs the program inside its own process: wait4's peak RSS is QEMU's
    # (about 20 MiB more), and the guest cannot read its own (QEMU passes /proc through).
    # Its cgroup holds QEMU too: the memory limit is QEMU's plus the program's.
    return LauncherRunner(target.qemu, prefix, True, launcher, memory_scope="emulator+program", limits=limits)
