"""Shared fixtures: one artifact cache and one data dir per test session.

Tests build real Go programs with the real toolchain; sharing the cache keeps the
suite fast (an unchanged variant is never rebuilt) without mocking anything.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/browser.py and friends


@pytest.fixture(scope="session", autouse=True)
def slimlab_cache(tmp_path_factory) -> Path:
    """A private cache for the session, so tests never depend on what a user built."""
    cache = tmp_path_factory.mktemp("slimlab-cache")
    os.environ["SLIMLAB_CACHE"] = str(cache)
    return cache


def require(tool: str, install: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed ({install}); `make test` installs it")
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A small real sweep over both built-in workloads, shared by read-only tests."""
    from slimlab.sweep import sweep

    data = tmp_path_factory.mktemp("tiny-data")
    spec = {"workloads": ["hello", "httpd"], "profiles": ["default", "stripped"], "repeats": 5, "warmup": 1}
    return sweep(spec, data_dir=data, run_id="tiny", progress=False)
