"""The standard Go toolchain (gc): the host's ``go``."""

from __future__ import annotations

import shutil
from pathlib import Path

from .. import proc
from ..profiles import Profile
from ..targets import Target
from .base import BuildCommand, Toolchain, ToolchainInfo


def gc_flags(profile: Profile) -> tuple[list[str], dict[str, str]]:
    """How gc spells a profile's intent: (build flags, environment)."""
    flags: list[str] = []
    env: dict[str, str] = {}
    if profile.all_packages:
        flags.append("-a")
    if profile.trimpath:
        flags.append("-trimpath")
    if profile.pie:
        flags.append("-buildmode=pie")
    ldflags = []
    if profile.strip:
        ldflags += ["-s", "-w"]
    if profile.empty_buildid:
        ldflags.append("-buildid=")
    if profile.external_static:
        ldflags += ["-linkmode=external", "-extldflags=-static"]
        env["CGO_ENABLED"] = "1"  # external linking goes through cgo's linker
    if ldflags:
        flags.append("-ldflags=" + " ".join(ldflags))
    if profile.cgo is not None:
        env["CGO_ENABLED"] = "1" if profile.cgo else "0"
    flags += list(profile.flags)
    env.update(dict(profile.env))
    return flags, env


class GcToolchain(Toolchain):
    family = "gc"

    def __init__(self, name: str, go: str | None) -> None:
        self.name = name
        self._go = go

    def detect(self) -> ToolchainInfo | None:
        if not self._go:
            return None
        out = proc.run([self._go, "env", "GOVERSION", "GOROOT"], timeout=60)
        version = proc.run([self._go, "version"], timeout=60)
        if not out.ok or not version.ok:
            return None
        goversion, goroot = (out.stdout.splitlines() + ["", ""])[:2]
        return ToolchainInfo(
            path=self._go,
            version=version.stdout.strip(),
            identity=f"gc {goversion} {goroot}",
        )

    def build_command(self, source_dir: Path, profile: Profile, target: Target, out: Path) -> BuildCommand:
        flags, env = gc_flags(profile)
        full_env = {**target.go_env(), **env}
        return BuildCommand(
            argv=[self._go or "go", "build", "-o", str(out), *flags, "."],
            env=full_env,
            cwd=source_dir,
            flags=" ".join(flags),
            profile_env=" ".join(f"{k}={v}" for k, v in sorted(env.items())),
        )


class HostGo(GcToolchain):
    """``go`` on PATH."""

    def __init__(self) -> None:
        super().__init__("go", shutil.which("go"))

    def install_hint(self) -> str:
        return "apt-get install golang-go   (or put an existing Go's bin/ on PATH)"
