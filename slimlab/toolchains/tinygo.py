"""TinyGo: an LLVM-based Go compiler for small binaries (used when ``tinygo`` is on PATH).

TinyGo is not packaged for Debian 12 and cannot be installed on every machine; when it
is absent its variants are recorded as ``unsupported`` with how to install it.

How a profile's intent maps to TinyGo:

| intent                 | tinygo                                                |
|------------------------|-------------------------------------------------------|
| (always)               | ``-opt=z`` unless the profile's flags choose ``-opt`` |
| strip                  | ``-no-debug``                                         |
| trimpath, empty_buildid| nothing: TinyGo writes neither paths nor a build ID   |
| cgo = False            | nothing: TinyGo binaries link no libc dynamically     |
| pie, external_static   | unsupported                                           |
Size knobs (``-gc=leaking|conservative``, ``-scheduler=none|tasks``, ``-panic=trap``)
are passed through a custom profile's ``flags``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .. import proc
from ..model import Profile, Target
from .base import BuildCommand, Toolchain, ToolchainInfo, env_items, first_line


def tinygo_flags(profile: Profile) -> list[str]:
    flags = []
    if not any(f.startswith("-opt") for f in profile.flags):
        flags.append("-opt=z")
    if profile.strip:
        flags.append("-no-debug")
    return flags + list(profile.flags)


class TinyGo(Toolchain):
    name = "tinygo"
    family = "tinygo"
    missing_is_error = False

    def __init__(self, tinygo: str | None = None) -> None:
        self._tinygo = tinygo or shutil.which("tinygo")

    def detect(self) -> ToolchainInfo | None:
        if not self._tinygo:
            return None
        done = proc.run([self._tinygo, "version"], timeout=60)
        if not done.ok:
            return None
        return ToolchainInfo(path=self._tinygo, version=first_line(done.stdout), identity=first_line(done.stdout))

    def install_hint(self) -> str:
        return "TinyGo is not in Debian 12: install its release .deb with `dpkg -i tinygo_<version>_amd64.deb`"

    def build_command(self, source_dir: Path, profile: Profile, target: Target, out: Path) -> BuildCommand:
        flags = tinygo_flags(profile)
        return BuildCommand(
            argv=[self._tinygo or "tinygo", "build", "-o", str(out), *flags, "."],
            env={**target.go_env(), **dict(profile.env)},
            cwd=source_dir,
            flags=flags,
            profile_env=env_items(profile.env),
        )

    def unsupported_reason(self, profile: Profile, target: Target) -> str | None:
        if profile.pie or profile.external_static:
            return f"TinyGo has no equivalent of profile {profile.name!r} (PIE / external static linking)"
        return None
