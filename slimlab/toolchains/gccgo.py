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

from .. import proc
from ..profiles import Profile
from ..targets import Target
from .base import BuildCommand, Toolchain, ToolchainInfo, first_line
from .gc import go_command_flags

TRIPLETS = {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu", "arm": "arm-linux-gnueabihf"}


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
    return "gccgo" if target.is_native else f"{TRIPLETS[target.goarch]}-gccgo"


class Gccgo(Toolchain):
    name = "gccgo"
    family = "gccgo"
    missing_is_error = False  # absent: its variants are "unsupported" rows

    def detect(self) -> ToolchainInfo | None:
        go, gccgo = shutil.which("go"), shutil.which("gccgo")
        if not go or not gccgo:
            return None
        version = proc.run([gccgo, "--version"], timeout=60)
        driver = proc.run([go, "version"], timeout=60)
        if not version.ok or not driver.ok:
            return None
        line = first_line(version.stdout)
        return ToolchainInfo(path=gccgo, version=f"{line} (via {first_line(driver.stdout)})",
                             identity=f"gccgo {line} {first_line(driver.stdout)}")

    def install_hint(self) -> str:
        return "apt-get install gccgo   (cross: gccgo-aarch64-linux-gnu gccgo-arm-linux-gnueabihf)"

    def build_command(self, source_dir: Path, profile: Profile, target: Target, out: Path) -> BuildCommand:
        flags, env = gccgo_flags(profile)
        return BuildCommand(
            argv=[shutil.which("go") or "go", "build", "-compiler", "gccgo", "-o", str(out), *flags, "."],
            env={**target.go_env(), "GCCGO": self.driver(target), **self.cross_cgo_env(target), **env},
            cwd=source_dir,
            flags=" ".join(["-compiler", "gccgo", *flags]),
            profile_env=" ".join(f"{k}={v}" for k, v in sorted(env.items())),
        )

    def driver(self, target: Target) -> str:
        """The gccgo-compatible compiler the go command runs (its GCCGO)."""
        return gccgo_for(target)

    def cross_cgo_env(self, target: Target) -> dict[str, str]:
        """A cross build keeps cgo on, with the target's C compiler: the go command turns cgo off
        when cross-compiling, and golang.org/x/sys/unix under gccgo needs its C half (gccgo_c.c)."""
        if target.is_native:
            return {}
        return {"CGO_ENABLED": "1", "CC": f"{TRIPLETS[target.goarch]}-gcc"}

    def unsupported_reason(self, profile: Profile, target: Target) -> str | None:
        driver = gccgo_for(target)
        if not target.is_native and shutil.which(driver) is None:
            return f"{driver} is missing; install it with: apt-get install gccgo-{TRIPLETS[target.goarch]}"
        return None
