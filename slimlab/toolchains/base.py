"""What every toolchain adapter provides."""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from .. import proc
from ..model import Profile, Target


@dataclass(frozen=True)
class ToolchainInfo:
    """A detected compiler: where it is and exactly which one."""

    path: str
    version: str  # the compiler's own version line, e.g. "go version go1.26.8 linux/amd64"
    identity: str  # everything that changes its output: part of the artifact cache key


@dataclass(frozen=True)
class BuildCommand:
    argv: list[str]
    env: dict[str, str]  # added to the caller's environment
    cwd: Path
    flags: list[str]  # the profile-dependent part of argv, one item per argv word, for the results table
    profile_env: list[str]  # the profile-dependent part of env, "NAME=value" items, e.g. ["CGO_ENABLED=0"]


class Toolchain(ABC):
    name: str  # the spec's axis entry
    family: str  # "gc", "gccgo", "tinygo", "gollvm"
    missing_is_error: bool = True  # False: variants become "unsupported" rows instead

    @abstractmethod
    def detect(self) -> ToolchainInfo | None:
        """The installed compiler, or None when it is missing."""

    @abstractmethod
    def install_hint(self) -> str:
        """The command that installs this compiler on Debian."""

    @abstractmethod
    def build_command(self, source_dir: Path, profile: Profile, target: Target, out: Path) -> BuildCommand:
        """The command that builds ``source_dir`` into ``out`` for ``profile`` and ``target``."""

    def info_for(self, info: ToolchainInfo, target: Target) -> ToolchainInfo | None:
        """The compiler that builds for ``target``, given the host's (``detect()``): the same
        one unless a cross compiler is another program (gccgo). None when it is missing.

        Its ``identity`` goes into the artifact cache key and its ``version`` into the row.
        """
        return info

    def unsupported_reason(self, profile: Profile, target: Target) -> str | None:
        """Why this toolchain cannot build the combination, or None when it can."""
        return None

    def ensure(self, progress: bool = True) -> None:
        """Install the compiler if slimlab can (a Go release from PyPI); a no-op otherwise."""

    def links_libc(self, env: dict[str, str], target: Target) -> bool:
        """Whether a build in ``env`` (the full build environment) links libc through a C
        compiler, whose version then decides bytes of the output too."""
        return False

    def verify(self, binary: Path, info: ToolchainInfo) -> str | None:
        """Why ``binary`` is not what this toolchain should have built, or None when it is."""
        return None


def env_items(env) -> list[str]:
    """``{"A": "1"}`` or ``(("A", "1"),)`` as sorted ``["A=1"]``: how rows store an environment."""
    pairs = env.items() if isinstance(env, dict) else env
    return [f"{k}={v}" for k, v in sorted(pairs)]


def first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0].strip()


@functools.cache
def version_line(argv: tuple[str, ...]) -> str | None:
    """First line of a tool's version output (``argv``, e.g. ``(path, "--version")``), asked
    once per process; None when it fails."""
    done = proc.run(list(argv), timeout=60)
    return first_line(done.stdout) if done.ok else None
