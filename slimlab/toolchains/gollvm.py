"""Gollvm: Go on LLVM through the gccgo-compatible driver ``llvm-goc``.

Rarely installed (built from the LLVM source tree; no Debian package), so it is
detected, never assumed: when ``llvm-goc`` is not on PATH its variants are
``unsupported`` rows. It is driven like gccgo, ``go build -compiler gccgo`` with
GCCGO=llvm-goc, and the same intent mapping (see gccgo.py); ``-flto=thin`` can be added
through a custom profile's flags (``-gccgoflags=-O2 -flto=thin``). It builds for the
host CPU only.
"""

from __future__ import annotations

import shutil

from ..model import Profile, Target
from .base import ToolchainInfo
from .gccgo import Gccgo, driven_info


class Gollvm(Gccgo):
    """Built like gccgo (same go command, same intent mapping), with llvm-goc as GCCGO."""

    name = "gollvm"
    family = "gollvm"
    missing_is_error = False

    def __init__(self, llvm_goc: str | None = None) -> None:
        self._llvm_goc = llvm_goc or shutil.which("llvm-goc")

    def detect(self) -> ToolchainInfo | None:
        return driven_info(self.family, self._llvm_goc)

    def info_for(self, info: ToolchainInfo, target: Target) -> ToolchainInfo | None:
        return info if target.is_native else None  # no cross llvm-goc (see unsupported_reason)

    def install_hint(self) -> str:
        return "Gollvm has no Debian package: build llvm-goc from the gollvm sources inside an LLVM tree and put it on PATH"

    def driver(self, target: Target) -> str:
        return self._llvm_goc or "llvm-goc"

    def unsupported_reason(self, profile: Profile, target: Target) -> str | None:
        if not target.is_native:
            return f"slimlab drives Gollvm for the host CPU only, not {target.name}"
        return None
