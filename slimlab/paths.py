"""Where slimlab keeps what it can rebuild: artifacts, Go releases, the launcher."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """$SLIMLAB_CACHE, else $XDG_CACHE_HOME/slimlab, else ~/.cache/slimlab."""
    base = os.environ.get("SLIMLAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "slimlab"
    )
    return Path(base)
