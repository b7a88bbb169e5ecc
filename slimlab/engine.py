"""The Docker engine's lifecycle: use one that answers, or start Debian's dockerd and own it.

An engine that already answers (``DOCKER_HOST``, slimlab's own socket, or the default
``/var/run/docker.sock``) is used as it is and never stopped. Otherwise, as root,
``start`` runs Debian's ``dockerd`` (package docker.io) with the flags this kind of
machine needs (vfs storage, no iptables, no bridge), its data under ``ENGINE_HOME`` and
its socket under ``RUN_DIR``, waits until it answers and writes down its pid: ``stop``
stops only an engine whose pid slimlab wrote down, so it can never take down a user's.

Everything else talks to the engine through the docker SDK (``client()``), never by
parsing the CLI's output.

``start`` also makes containers of the other CPUs slimlab targets run (``register_qemu``):
it mounts binfmt_misc if needed and registers Debian's QEMU user-mode entries
(``/usr/lib/binfmt.d/qemu-<cpu>.conf`` of qemu-user-static) with the fix-binary flag F,
so the kernel opens the emulator once, at registration, and a container's exec of an
arm64 program finds it although the emulator is not in the container's file system.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import ToolError
from .model.target import TARGETS

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
BINFMT = Path("/proc/sys/fs/binfmt_misc")
BINFMT_CONF = Path("/usr/lib/binfmt.d")  # qemu-user-static's entries, one file per CPU
QEMU_HINT = "apt-get install qemu-user-static   (make setup installs it)"


@dataclass(frozen=True)
class EngineStatus:
    reachable: bool
    url: str | None  # where it answers, e.g. unix:///run/slimlab/docker.sock
    owned: bool  # slimlab started it (and stop() will stop it)
    pid: int | None  # dockerd's pid, when slimlab started it
    version: str | None  # the engine's version, e.g. "20.10.24+dfsg1"
    api_version: str | None  # e.g. "1.41"
    reason: str | None = None  # why it is not reachable, and how to start one
    # binfmt_misc entry -> its flags ("OPF"), for each foreign CPU's QEMU; "" when not registered
    binfmt: tuple[tuple[str, str], ...] = ()

    def foreign_ready(self, qemu_entry: str) -> bool:
        """Containers of that CPU run: its QEMU entry is registered with the fix-binary flag."""
        return "F" in dict(self.binfmt).get(qemu_entry, "")

    def describe(self) -> str:
        if not self.reachable:
            return f"no Docker engine: {self.reason}"
        whose = f"started by slimlab (pid {self.pid})" if self.owned else "not started by slimlab: left alone"
        emulators = ", ".join(f"{name} ({flags or 'not registered'})" for name, flags in self.binfmt)
        return (f"Docker engine {self.version} (API {self.api_version}) at {self.url}, {whose}"
                + (f"; foreign CPUs via binfmt_misc: {emulators}" if emulators else ""))


def qemu_entries() -> tuple[str, ...]:
    """The binfmt_misc entries (Debian's names: qemu-aarch64, qemu-arm) of every target CPU but this one."""
    return tuple(t.qemu.removesuffix("-static") for t in TARGETS.values() if not t.is_native)


def _flags(name: str) -> str | None:
    """The flags of the registered entry ``name`` ("" for none), or None when it is not registered
    or disabled (or binfmt_misc is not mounted)."""
    try:
        text = (BINFMT / name).read_text()
    except OSError:
        return None
    if not text.startswith("enabled"):
        return None
    return next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("flags:")), "")


def _interpreter(name: str) -> str | None:
    try:
        lines = (BINFMT / name).read_text().splitlines()
    except OSError:
        return None
    return next((line.split(" ", 1)[1] for line in lines if line.startswith("interpreter ")), None)


def binfmt_state() -> tuple[tuple[str, str], ...]:
    return tuple((name, _flags(name) or "") for name in qemu_entries())


def register_qemu() -> tuple[tuple[str, str], ...]:
    """Register each foreign CPU's QEMU in binfmt_misc with the fix-binary flag; the entries' flags after.

    Idempotent: an entry already registered with F is left as it is (whoever registered it).
    An entry of the same name without F (systemd-binfmt registers Debian's file as it ships, and
    older qemu-user-static files lack F) is replaced by Debian's with F only when it runs the
    same emulator file: containers fail to exec without F, so that entry is no use to them,
    and replacing it keeps what the host runs the same. One naming another emulator is someone
    else's and is left alone, as is a disabled one (its CPU's containers will fail, and the status
    says F is missing). Between removing the old entry and registering the new one (microseconds)
    an exec of that CPU's program would fail: the price of a safe replacement.
    ToolError when binfmt_misc cannot be mounted or written (not root), naming what to do."""
    entries = qemu_entries()
    if all("F" in (_flags(name) or "") for name in entries):
        return binfmt_state()
    if not (BINFMT / "register").exists():
        if os.geteuid() != 0:
            raise ToolError(f"binfmt_misc is not mounted and mounting it needs root: run as root {START_COMMAND}")
        done = subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], capture_output=True, check=False,
                              text=True, timeout=30)
        if done.returncode != 0:
            raise ToolError(f"could not mount binfmt_misc on {BINFMT}: {done.stderr.strip()}")
    for name in entries:
        conf = BINFMT_CONF / f"{name}.conf"
        if not conf.is_file():
            raise ToolError(f"{conf} is missing: containers of other CPUs need QEMU; install it with: {QEMU_HINT}")
        line = next(ln.strip() for ln in conf.read_text().splitlines() if ln.strip() and not ln.startswith("#"))
        fields = line.split(":")  # :name:type:offset:magic:mask:interpreter:flags
        fields[7] = "".join(sorted(set(fields[7] + "F")))
        flags = _flags(name)
        if flags is not None and "F" in flags:
            continue
        if (BINFMT / name).exists():
            if os.path.realpath(_interpreter(name) or "") != os.path.realpath(fields[6]) or flags is None:
                continue  # not Debian's, or disabled on purpose (echo 0): not ours to replace
            _write(BINFMT / name, "-1")  # remove it; ours replaces it at once
        _write(BINFMT / "register", ":".join(fields))
    return binfmt_state()


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError as exc:
        raise ToolError(f"could not write {path} ({exc.strerror}): registering QEMU needs root: run as root "
                        f"{START_COMMAND}") from exc


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
            return EngineStatus(True, url, owned, owner["pid"] if owned else None, *answer, binfmt=binfmt_state())
    if shutil.which("dockerd") is None:
        reason = f"dockerd is not installed; install it with: {INSTALL_HINT}, then: {START_COMMAND}"
    else:
        reason = f"none answers at {', '.join(_candidates())}; start one with: {START_COMMAND}"
    return EngineStatus(False, None, False, None, None, None, reason)


def start(timeout_s: float = 60) -> EngineStatus:
    """The engine that answers, or a dockerd started (and owned) by slimlab, with QEMU registered
    for containers of other CPUs (register_qemu). ToolError when none can be had: not root, no
    dockerd, or it did not come up (with its log's tail)."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    # One start at a time on this host: a second caller waits, then finds the engine answering.
    with open(RUN_DIR / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = _start_locked(timeout_s)
        try:
            register_qemu()
        except ToolError as exc:
            # The engine is up and native images work; the status shows the entries lack F.
            print(f"slimlab: containers of other CPUs will not run: {exc}", file=sys.stderr)
        return replace(found, binfmt=binfmt_state())


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
