"""Target platforms: GOOS/GOARCH(/GOARM), and how a binary for one runs on this host."""

from __future__ import annotations

import platform
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    name: str  # "linux/amd64", the Docker platform spelling
    goos: str
    goarch: str
    goarm: str | None
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


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("linux/amd64", "linux", "amd64", None, "qemu-x86_64-static", "x86_64"),
        Target("linux/arm64", "linux", "arm64", None, "qemu-aarch64-static", "aarch64"),
        Target("linux/arm/v7", "linux", "arm", "7", "qemu-arm-static", "armv7l"),
    )
}
