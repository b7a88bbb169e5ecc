"""The standard Go toolchain (gc): the host's ``go``, or a release installed from PyPI."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from .. import proc
from ..model import Profile, Target
from .base import BuildCommand, Toolchain, ToolchainInfo, env_items, first_line

def go_command_flags(profile: Profile) -> list[str]:
    """The flags the go command itself takes, whichever compiler it drives."""
    flags = []
    if profile.all_packages:
        flags.append("-a")
    if profile.trimpath:
        flags.append("-trimpath")
    if profile.pie:
        flags.append("-buildmode=pie")
    return flags


def gc_flags(profile: Profile) -> tuple[list[str], dict[str, str]]:
    """How gc spells a profile's intent: (build flags, environment)."""
    flags = go_command_flags(profile)
    env: dict[str, str] = {}
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


def _needs_cgo(env: dict[str, str]) -> bool:
    return env.get("CGO_ENABLED") == "1"


class GcToolchain(Toolchain):
    family = "gc"

    def __init__(self, name: str, go: str | None) -> None:
        self.name = name
        self._go = go

    def detect(self) -> ToolchainInfo | None:
        if not self._go or not Path(self._go).exists():
            return None
        out = proc.run([self._go, "env", "GOVERSION", "GOROOT"], timeout=60)
        version = proc.run([self._go, "version"], timeout=60)
        if not out.ok or not version.ok:
            return None
        goversion, goroot = (out.stdout.splitlines() + ["", ""])[:2]
        return ToolchainInfo(path=self._go, version=first_line(version.stdout), identity=f"gc {goversion} {goroot}")

    def build_command(self, source_dir: Path, profile: Profile, target: Target, out: Path) -> BuildCommand:
        flags, env = gc_flags(profile)
        full_env = {**target.go_env(), **env}
        if _needs_cgo(env) and not target.is_native:
            full_env["CC"] = target.cross_tool("gcc")  # cgo for another CPU: its C cross compiler
        return BuildCommand(
            argv=[self._go or "go", "build", "-o", str(out), *flags, "."],
            env=full_env,
            cwd=source_dir,
            flags=flags,
            profile_env=env_items(env),
        )

    def unsupported_reason(self, profile: Profile, target: Target) -> str | None:
        _, env = gc_flags(profile)
        cross_cc = target.cross_tool("gcc")
        if _needs_cgo(env) and not target.is_native and not shutil.which(cross_cc):
            return (f"cgo for {target.name} needs the C cross compiler {cross_cc}; install it with: "
                    f"apt-get install gcc-{target.triplet}")
        return None

    def links_libc(self, env: dict[str, str], target: Target) -> bool:
        if "CGO_ENABLED" in env:
            return env["CGO_ENABLED"] == "1"
        # Unset, cgo is on for native builds when the C compiler is found, off for cross
        # builds (`go help environment`, CGO_ENABLED).
        return target.is_native and shutil.which((shlex.split(env.get("CC") or "gcc") or ["gcc"])[0]) is not None

    def verify(self, binary: Path, info: ToolchainInfo) -> str | None:
        # With GOTOOLCHAIN=auto (Go's default), an older go whose module asks for a newer
        # release quietly downloads and runs that one. Such a binary is not this
        # toolchain's: say so instead of mislabelling the measurement.
        wanted = info.identity.split()[1]
        done = proc.run([info.path, "version", str(binary)], timeout=60)
        built_by = done.stdout.strip().rsplit(" ", 1)[-1] if done.ok else "?"
        if built_by != wanted:
            return f"{self.name} handed the build to {built_by} (go.mod asks for a newer Go; GOTOOLCHAIN switched)"
        return None


class HostGo(GcToolchain):
    """``go`` on PATH."""

    def __init__(self) -> None:
        super().__init__("go", shutil.which("go"))

    def install_hint(self) -> str:
        return "apt-get install golang-go   (or put an existing Go's bin/ on PATH)"
