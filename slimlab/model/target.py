"""Target platforms: GOOS/GOARCH(/GOARM), the GNU triplet of their cross tools, and their emulator.

The one table of CPUs: compilers (``<triplet>-gccgo``, ``<triplet>-gcc``), binutils
(``<triplet>-strip``), library directories (``/usr/lib/<triplet>``) and QEMU all derive
their names from it.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    name: str  # "linux/amd64", the Docker platform spelling
    goos: str
    goarch: str
    goarm: str | None
    triplet: str  # GNU triplet: Debian's cross tools and multiarch directories are named after it
    elf_machine: str  # e_machine of its binaries, as pyelftools spells it
    qemu: str  # the QEMU user-mode emulator that runs it on another CPU
    machine: str  # what uname -m says on such a CPU

    @property
    def is_native(self) -> bool:
        return platform.machine() == self.machine

    def go_env(self) -> dict[str, str]:
        env = {"GOOS": self.goos, "GOARCH": self.goarch}
        if self.goarm:
            env["GOARM"] = self.goarm
        return env

    def cross_tool(self, tool: str) -> str:
        """``tool`` for this CPU: the host's own name natively, else Debian's ``<triplet>-tool``."""
        return tool if self.is_native else f"{self.triplet}-{tool}"


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("linux/amd64", "linux", "amd64", None, "x86_64-linux-gnu", "EM_X86_64", "qemu-x86_64-static", "x86_64"),
        Target("linux/arm64", "linux", "arm64", None, "aarch64-linux-gnu", "EM_AARCH64", "qemu-aarch64-static",
               "aarch64"),
        Target("linux/arm/v7", "linux", "arm", "7", "arm-linux-gnueabihf", "EM_ARM", "qemu-arm-static", "armv7l"),
    )
}


def target_for_elf_machine(elf_machine: str) -> Target | None:
    """The target whose binaries carry this ``e_machine``; None for a CPU slimlab does not know."""
    return next((t for t in TARGETS.values() if t.elf_machine == elf_machine), None)
