"""The Docker engine's lifecycle: use one that answers, or start Debian's dockerd and own it.

An engine that already answers (``DOCKER_HOST``, slimlab's own socket, or the default
``/var/run/docker.sock``) is used as it is and never stopped. Otherwise, as root,
``start`` runs Debian's ``dockerd`` (package docker.io) with the flags this kind of
machine needs (vfs storage, no iptables, no bridge), its data under ``ENGINE_HOME`` and
its socket under ``RUN_DIR``, waits until it answers and writes down its pid: ``stop``
stops only an engine whose pid slimlab wrote down, so it can never take down a user's.

Everything else talks to the engine through the docker SDK (``client()``), never by
parsing the CLI's output.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import ToolError

# Machine-wide, not per cache: one engine serves every sweep and test session of the host.
ENGINE_HOME = Path(os.environ.get("SLIMLAB_ENGINE_HOME", "/var/lib/slimlab/engine"))
RUN_DIR = Path(os.environ.get("SLIMLAB_ENGINE_RUN", "/run/slimlab"))
SOCKET = RUN_DIR / "docker.sock"
OWNER = RUN_DIR / "owner.json"  # {"pid": ..., "socket": ...}: written only by start()
DEFAULT_SOCKET = Path("/var/run/docker.sock")
DOCKERD_FLAGS = ("--storage-driver=vfs", "--iptables=false", "--ip-masq=false", "--bridge=none")
START_COMMAND = "slimlab engine start   (as root; runs: dockerd " + " ".join(DOCKERD_FLAGS) + ")"
INSTALL_HINT = "apt-get install docker.io   (make setup installs it)"
MIN_API = (1, 41)  # what Debian 12's docker.io 20.10 speaks


@dataclass(frozen=True)
class EngineStatus:
    reachable: bool
    url: str | None  # where it answers, e.g. unix:///run/slimlab/docker.sock
    owned: bool  # slimlab started it (and stop() will stop it)
    pid: int | None  # dockerd's pid, when slimlab started it
    version: str | None  # the engine's version, e.g. "20.10.24+dfsg1"
    api_version: str | None  # e.g. "1.41"
    reason: str | None = None  # why it is not reachable, and how to start one

    def describe(self) -> str:
        if not self.reachable:
            return f"no Docker engine: {self.reason}"
        whose = f"started by slimlab (pid {self.pid})" if self.owned else "not started by slimlab: left alone"
        return f"Docker engine {self.version} (API {self.api_version}) at {self.url}, {whose}"


def _candidates() -> list[str]:
    """Where an engine may answer, in the order the docker CLI and SDK would look, plus ours."""
    urls = []
    if os.environ.get("DOCKER_HOST"):
        urls.append(os.environ["DOCKER_HOST"])
    urls += [f"unix://{SOCKET}", f"unix://{DEFAULT_SOCKET}"]
    return list(dict.fromkeys(urls))


def _ask(url: str, timeout: float = 5) -> tuple[str, str] | None:
    """(version, API version) of the engine at ``url``, or None when nothing answers there."""
    import docker  # the SDK is heavy: only engine work imports it

    if url.startswith("unix://") and not Path(url.removeprefix("unix://")).exists():
        return None
    try:
        api = docker.DockerClient(base_url=url, version="auto", timeout=timeout)
        try:
            info = api.version()
        finally:
            api.close()
    except Exception:  # noqa: BLE001 - refused, not a Docker socket, wrong API, ...: not an engine here
        return None
    return info.get("Version"), info.get("ApiVersion")


def _owner() -> dict | None:
    """What start() wrote down, while that dockerd is still alive."""
    try:
        owner = json.loads(OWNER.read_text())
        os.kill(owner["pid"], 0)
    except (OSError, ValueError, KeyError):
        return None
    # The pid must still be the very dockerd start() ran, argument for argument: a reused pid
    # (even another dockerd, or a `tail` of its log) is never signalled.
    try:
        argv = Path(f"/proc/{owner['pid']}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return None
    return owner if [a.decode(errors="replace") for a in argv] == owner.get("argv") else None


def status() -> EngineStatus:
    owner = _owner()
    for url in _candidates():
        answer = _ask(url)
        if answer:
            owned = owner is not None and url == f"unix://{owner['socket']}"
            return EngineStatus(True, url, owned, owner["pid"] if owned else None, *answer)
    if shutil.which("dockerd") is None:
        reason = f"dockerd is not installed; install it with: {INSTALL_HINT}, then: {START_COMMAND}"
    else:
        reason = f"none answers at {', '.join(_candidates())}; start one with: {START_COMMAND}"
    return EngineStatus(False, None, False, None, None, None, reason)


def start(timeout_s: float = 60) -> EngineStatus:
    """The engine that answers, or a dockerd started (and owned) by slimlab. ToolError when
    none can be had: not root, no dockerd, or it did not come up (with its log's tail)."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    # One start at a time on this host: a second caller waits, then finds the engine answering.
    with open(RUN_DIR / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _start_locked(timeout_s)


def _start_locked(timeout_s: float) -> EngineStatus:
    found = status()
    if found.reachable:
        return found
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise ToolError(f"no Docker engine and no dockerd to start one; install it with: {INSTALL_HINT}")
    if os.geteuid() != 0:
        raise ToolError(f"no Docker engine answers, and starting dockerd needs root: run as root {START_COMMAND}")
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    ENGINE_HOME.mkdir(parents=True, exist_ok=True)
    log_path = ENGINE_HOME / "dockerd.log"
    argv = [dockerd, *DOCKERD_FLAGS, f"--data-root={ENGINE_HOME / 'data'}", f"--exec-root={RUN_DIR / 'exec'}",
            f"--pidfile={RUN_DIR / 'docker.pid'}", "-H", f"unix://{SOCKET}"]
    with open(log_path, "ab") as log:
        # Its own session: the engine outlives the command that started it (`slimlab engine
        # start` returns), and an interrupted sweep does not take it down.
        daemon = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    OWNER.write_text(json.dumps({"pid": daemon.pid, "socket": str(SOCKET), "argv": argv,
                                 "started_at": time.time()}))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            break
        answer = _ask(f"unix://{SOCKET}", timeout=2)
        if answer:
            return EngineStatus(True, f"unix://{SOCKET}", True, daemon.pid, *answer)
        time.sleep(0.25)
    _terminate(daemon.pid, 10)
    OWNER.unlink(missing_ok=True)
    tail = log_path.read_text(errors="replace")[-1500:] if log_path.exists() else ""
    raise ToolError(f"dockerd did not answer within {timeout_s:g}s; its log ({log_path}) ends: {tail}")


def _terminate(pid: int, timeout_s: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        _reap(pid)
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)  # its session: what dockerd started there goes too
    except ProcessLookupError:
        pass
    _reap(pid)


def _reap(pid: int) -> None:
    """Collect our own child's exit status, so it does not linger as a zombie that still 'exists'."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(timeout_s: float = 30) -> bool:
    """Stop the engine slimlab started (by its pid); True when one was stopped. An engine
    slimlab did not start is never touched."""
    owner = _owner()
    if owner is None:
        OWNER.unlink(missing_ok=True)
        return False
    _terminate(owner["pid"], timeout_s)
    OWNER.unlink(missing_ok=True)
    return True


def client(timeout_s: float = 120):
    """A docker SDK client for the engine that answers; ToolError naming how to start one."""
    import docker

    found = status()
    if not found.reachable:
        raise ToolError(found.reason)
    return docker.DockerClient(base_url=found.url, version="auto", timeout=timeout_s)
