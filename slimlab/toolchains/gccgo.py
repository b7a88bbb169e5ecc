"""gccgo (GCC's Go front end), driven through ``go build -compiler gccgo``.

How a profile's intent maps to gccgo (the whole mapping lives here):

| intent          | gccgo                                                             |
|-----------------|-------------------------------------------------------------------|
| strip           | ``-gccgoflags=-s`` (the linker drops symbols and debug info)       |
| trimpath        | ``-trimpath`` (the go command passes -fdebug-prefix-map)           |
| empty_buildid   | nothing: a gc linker flag, gccgo writes no Go build ID to strip    |
| cgo = False     | ``-gccgoflags=-static``: gccgo always links libc, so "no dynamic    |
|                 | libc" means a static link (libgo, libgcc and libc inside)          |
| external_static | ``-gccgoflags=-static``                                            |
| pie             | ``-buildmode=pie``                                                 |
| all_packages    | ``-a``                                                             |

Without ``-static`` the binary is tiny but needs ``libgo.so`` at run time, which an
image must then carry: the results record the needed libraries and their size.
Cross builds use Debian's ``<triplet>-gccgo`` (packages gccgo-aarch64-linux-gnu, ...).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..model import Profile, Target
from .base import BuildCommand, Toolchain, ToolchainInfo, env_items, version_line
from .gc import go_command_flags

def gccgo_flags(profile: Profile) -> tuple[list[str], dict[str, str]]:
    """(go build flags, environment) for ``profile`` under gccgo."""
    flags = go_command_flags(profile)
    gccgoflags: list[str] = []
    if profile.strip:
        gccgoflags.append("-s")
    if profile.cgo is False or profile.external_static:
        gccgoflags.append("-static")
    if gccgoflags:
        flags.append("-gccgoflags=" + " ".join(gccgoflags))
    return flags + list(profile.flags), dict(profile.env)


def gccgo_for(target: Target) -> str:
    """The gccgo driver that builds for ``target`` (a cross compiler for other CPUs)."""
    return target.cross_tool("gccgo")


def driven_info(family: str, compiler: str | None) -> ToolchainInfo | None:
    """A gccgo-compatible ``compiler`` driven by the go command on PATH: both versions
    decide the output (the go command chooses packages, flags and the link)."""
    go = shutil.which("go")
    if not go or not compiler:
        return None
    line, driver = version_line((compiler, "--version")), version_line((go, "version"))
    if line is None or driver is None:
        return None
    return ToolchainInfo(path=compiler, version=f"{line} (via {driver})", identity=f"{family} {line} {driver}")


class Gccgo(Toolchain):
    name = "gccgo"
    family = "gccgo"
    missing_is_error = False  # absent: its variants are "unsupported" rows

    def detect(self) -> ToolchainInfo | None:
        return driven_info(self.family, shutil.which("gccgo"))

    def info_for(self, info: ToolchainInfo, target: Target) -> ToolchainInfo | None:
        # A cross build runs <triplet>-gccgo, a compiler of its own (its own package
        # version, its own libgo): its version is the one that made the binary.
        return info if target.is_native else driven_info(self.family, shutil.which(gccgo_for(target)))

    def install_hint(self) -> str:
        return "apt-get install gccgo   (cross: gccgo-aarch64-linux-gnu gccgo-arm-linux-gnueabihf)"

    def build_command(self, source_dir: Path, profile: Profile, target: Target, out: Path) -> BuildCommand:
        flags, env = gccgo_flags(profile)
        return BuildCommand(
            argv=[shutil.which("go") or "go", "build", "-compiler", "gccgo", "-o", str(out), *flags, "."],
            env={**target.go_env(), "GCCGO": self.driver(target), **self.cross_cgo_env(target), **env},
            cwd=source_dir,
            flags=["-compiler", "gccgo", *flags],
            profile_env=env_items(env),
        )

    def links_libc(self, env: dict[str, str], target: Target) -> bool:
        return True  # gccgo's runtime (libgo) is built on libc: every gccgo binary links it

    def driver(self, target: Target) -> str:
        """The gccgo-compatible compiler the go command runs (its GCCGO)."""
        return gccgo_for(target)

    def cross_cgo_env(self, target: Target) -> dict[str, str]:
        """A cross build keeps cgo on, with the target's C compiler: the go command turns cgo off
        when cross-compiling, and golang.org/x/sys/unix under gccgo needs its C half (gccgo_c.c)."""
        if target.is_native:
            return {}
        return {"CGO_ENABLED": "1", "CC": target.cross_tool("gcc")}

    def unsupported_reason(self, profile: Profile, target: Target) -> str | None:
        driver = gccgo_for(target)
        if not target.is_native and shutil.which(driver) is None:
            return f"{driver} is missing; install it with: apt-get install gccgo-{target.triplet}"
        cross_cc = self.cross_cgo_env(target).get("CC")
        if cross_cc and shutil.which(cross_cc) is None:
            return f"{cross_cc} is missing (cgo of a gccgo cross build); install it with: apt-get install gcc-{target.triplet}"
        return None
