"""Shared fixtures: one artifact cache and one data dir per test session.

Tests build real Go programs with the real toolchain; sharing the cache keeps the
suite fast (an unchanged variant is never rebuilt) without mocking anything.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
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


@pytest.fixture(autouse=True)
def unit_tests_launch_nothing(request, monkeypatch):
    """A test marked ``unit`` (the `make test-fast` tier) promises to run no program: hold it to that.

    Every launch in slimlab and in these tests goes through subprocess.Popen, so refusing
    its child creation catches compilers, tools, pip (the network) and the CLI alike. Module
    and session fixtures (``tiny_run``) are set up before this one, so a unit test takes none.
    """
    if request.node.get_closest_marker("unit") is None:
        return

    def refuse(self, args, *rest, **kwargs):
        raise AssertionError(f"a unit test launched {args!r}: drop its `unit` mark or the launch")

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)


# TinyGo and Gollvm have no Debian 12 package, so scripts/setup.sh cannot install them: a
# test that needs one skips without it. Every other tool is setup's job, so its absence is a
# broken set-up and the test fails: a skip would let a missing tool pass as a green suite.
NOT_INSTALLED_BY_SETUP = frozenset({"tinygo", "llvm-goc"})


def require(tool: str, install: str) -> str:
    """The path of ``tool``; fails the test when it is missing (skips for TinyGo and Gollvm)."""
    path = shutil.which(tool)
    if path is None:
        if tool in NOT_INSTALLED_BY_SETUP:
            pytest.skip(f"{tool} is not installed ({install}); scripts/setup.sh does not install it")
        pytest.fail(f"{tool} is not installed ({install}); `make setup` installs it", pytrace=False)
    return path


def path_without(tools: set[str] | frozenset[str], into: Path) -> str:
    """A PATH of one directory linking every program of $PATH except ``tools``.

    Lets a test see how slimlab behaves when a tool is absent on a machine where it is
    installed, instead of skipping there.
    """
    into.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            target = into / entry.name
            if entry.name not in tools and not target.exists() and os.access(entry.path, os.X_OK):
                target.symlink_to(entry.path)
    return str(into)


@pytest.fixture
def hide_tools(monkeypatch, tmp_path):
    """``hide_tools("upx", ...)``: set PATH so that ``shutil.which`` finds none of them."""

    def hide(*tools: str) -> None:
        monkeypatch.setenv("PATH", path_without(set(tools), tmp_path / "path-without"))
        for tool in tools:
            assert shutil.which(tool) is None, f"{tool} is still found outside PATH"

    return hide


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A small real sweep over both built-in workloads, shared by read-only tests."""
    from slimlab.sweep import sweep

    data = tmp_path_factory.mktemp("tiny-data")
    spec = {"workloads": ["hello", "httpd"], "profiles": ["default", "stripped"], "repeats": 5, "warmup": 1}
    return sweep(spec, data_dir=data, run_id="tiny", progress=False)


@contextlib.contextmanager
def redis_server():
    """A real redis-server on a free loopback port, up and answering; yields the port."""
    server_path = require("redis-server", "apt-get install redis-server")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([server_path, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, server, lambda: f"redis-server did not come up on 127.0.0.1:{port}")
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


def wait_for_port(port: int, process: subprocess.Popen, why, timeout_s: float = 10) -> None:
    """Until something listens on 127.0.0.1:``port``; the test fails with ``why()`` when ``process``
    ends or ``timeout_s`` passes first."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(why(), pytrace=False)
            time.sleep(0.05)


@pytest.fixture(scope="session")
def docker_engine():
    """The Docker engine (.ci/run starts one; without it, the session starts one and stops it after)."""
    from slimlab import engine

    before = engine.status()
    found = engine.start()
    yield found
    if not before.reachable and found.owned:
        engine.stop()
