"""Where slimlab keeps what it can rebuild (artifacts, Go releases, the launcher) and finds its tools."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def default_cache_dir() -> Path:
    """$SLIMLAB_CACHE, else $XDG_CACHE_HOME/slimlab, else ~/.cache/slimlab."""
    base = os.environ.get("SLIMLAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "slimlab"
    )
    return Path(base)


def find_tool(name: str) -> str | None:
    """``name`` on PATH, else in slimlab's own tools location: the bin directory of the Python
    running slimlab (its venv), where pip puts PyPI tools and setup puts `go install`ed ones
    (govulncheck), whether or not the venv is activated."""
    found = shutil.which(name)
    if found:
        return found
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None
