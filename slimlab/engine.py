"""The Docker engine's lifecycle: use one that answers, or start Debian's dockerd and own it.

An engine that already answers (``DOCKER_HOST``, slimlab's own socket, or the default
``/var/run/docker.sock``) is used as it is and never stopped. ``DOCKER_HOST``, when set,
is the only place looked at, as for the docker CLI: it chooses where images are built and
run, so one that does not answer is an error naming it, never a quiet fall back to this
machine's engine. It may name another machine: ``ssh://user@host[:port]`` goes through
the docker SDK's paramiko transport (see ``client``), ``tcp://`` directly. Otherwise, as root,
``start`` runs Debian's ``dockerd`` (package docker.io) with the flags this kind of
machine needs (overlay2 storage where the kernel and the data directory's file system take
it, as production engines use, else vfs; no iptables, no default bridge: a user-defined bridge
network still works, its published ports served by the userland proxy, and servers use one,
image.SERVER_NETWORK), its data under ``ENGINE_HOME`` and
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
import urllib.parse
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
DOCKERD_FLAGS = ("--iptables=false", "--ip-masq=false", "--bridge=none")
START_COMMAND = "slimlab engine start   (as root; runs: dockerd --storage-driver=overlay2 " + " ".join(DOCKERD_FLAGS) + ")"
# vfs copies an image's whole root file system for every container, so container start-up
# grows with the base's file count (hello on a distroless-like base: 4.1 s on vfs, 0.41 s on
# overlay2 here): a figure of the test engine, not of the image. overlay2 wherever it works.
PRODUCTION_DRIVER = "overlay2"
FALLBACK_DRIVER = "vfs"
# overlayfs cannot have its upper directory on these (nor on another overlay, as in a container)
_NO_OVERLAY_UPPER = frozenset({"overlay", "aufs", "nfs", "nfs4", "cifs", "smb3", "fuse", "ecryptfs"})
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
    # Of this machine's binfmt_misc; () for an engine on another machine, whose own is not readable from here.
    binfmt: tuple[tuple[str, str], ...] = ()
    engine_id: str | None = None  # the engine's own ID (docker info): the same whichever URL reaches it
    name: str | None = None  # the host name the engine reports (docker info's Name)
    local: bool | None = None  # it runs on this machine (see _local); None when it does not answer

    @property
    def scheme(self) -> str | None:
        """How it is reached: unix, tcp, ssh, ..."""
        return urllib.parse.urlsplit(self.url).scheme if self.url else None

    def record(self) -> dict:
        """What a run's manifest says of the engine: where it was asked for and reached, and whose it is."""
        return {"url": shown(self.url), "docker_host": shown(os.environ.get("DOCKER_HOST")), "scheme": self.scheme,
                "id": self.engine_id, "name": self.name, "this_machine": self.local}

    def foreign_ready(self, qemu_entry: str) -> bool:
        """Containers of that CPU run: its QEMU entry is registered with the fix-binary flag."""
        return "F" in dict(self.binfmt).get(qemu_entry, "")

    def describe(self) -> str:
        if not self.reachable:
            return f"no Docker engine: {self.reason}"
        whose = f"started by slimlab (pid {self.pid})" if self.owned else "not started by slimlab: left alone"
        where = "on this machine" if self.local else f"on another machine ({self.name})"
        emulators = ", ".join(f"{name} ({flags or 'not registered'})" for name, flags in self.binfmt)
        if not self.local:
            emulators = "unknown (binfmt_misc of the engine's machine is not readable from here)"
        return (f"Docker engine {self.version} (API {self.api_version}) at {shown(self.url)}, {where}, {whose}"
                + (f"; foreign CPUs via binfmt_misc: {emulators}" if emulators else ""))


def shown(url: str | None) -> str | None:
    """``url`` fit to print and record: a password in it (ssh://user:secret@host) left out."""
    parts = urllib.parse.urlsplit(url or "")
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    return parts._replace(netloc=f"{userinfo.split(':', 1)[0]}@{hostport}").geturl()


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
    """Where an engine may answer: $DOCKER_HOST alone when it is set (as the docker CLI and SDK
    would), else slimlab's own socket and the default one."""
    if os.environ.get("DOCKER_HOST"):
        return [os.environ["DOCKER_HOST"]]
    return [f"unix://{SOCKET}", f"unix://{DEFAULT_SOCKET}"]


def _ask(url: str, timeout: float = 5) -> dict:
    """The engine at ``url``: version, API version, ID and Name; ToolError saying why nothing answers there.

    An ssh:// URL needs the paramiko package (the docker SDK's ssh transport): it connects as
    ``~/.ssh/config`` and the keys or agent there allow, and refuses a host that is not in
    ``~/.ssh/known_hosts`` (never prompts, never adds it)."""
    import docker  # the SDK is heavy: only engine work imports it

    if url.startswith("unix://") and not Path(url.removeprefix("unix://")).exists():
        raise ToolError(f"{url.removeprefix('unix://')} does not exist")
    try:
        api = docker.DockerClient(base_url=url, version="auto", timeout=timeout)
        try:
            version, info = api.version(), api.info()
        finally:
            api.close()
    except Exception as exc:  # refused, not a Docker socket, wrong API, ssh refused us...
        why = f"{type(exc).__name__}: {exc}".replace(url, shown(url))
        if "not found in known_hosts" in why:  # paramiko refuses an unknown host; it never asks
            why += " (check and accept its host key once with: ssh -p PORT USER@HOST)"
        raise ToolError(why) from exc
    return {"version": version.get("Version"), "api": version.get("ApiVersion"), "id": info.get("ID"),
            "name": info.get("Name")}


def silent(url: str, timeout: float = 10) -> str | None:
    """Why the engine at ``url`` does not answer now, or None when it does: asked when a stage that
    used it failed, so the engine's death is not taken for the variant's fault."""
    try:
        _ask(url, timeout)
    except ToolError as exc:
        return str(exc)
    return None


def _local(url: str, engine_id: str | None) -> bool:
    """Is the engine at ``url`` on this machine? Containers timed by slimlab need it to be: the
    launcher is bind-mounted from this machine's disk, servers are polled on its loopback and
    their memory read from its /proc. A unix socket is a file here. Any other URL (tcp://,
    ssh://, even to 127.0.0.1, which a tunnel may forward anywhere) is, only when the same
    engine (its ID) also answers at one of this machine's sockets; the engine's host Name is no
    proof (containers and cloned machines share names)."""
    if urllib.parse.urlsplit(url).scheme in ("unix", "http+unix"):
        return True
    return engine_id is not None and any(_id_at(f"unix://{path}") == engine_id for path in (SOCKET, DEFAULT_SOCKET))


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
    tried = []
    for url in _candidates():
        try:
            found = _ask(url)
        except ToolError as exc:
            tried.append((shown(url), str(exc)))
            continue
        local = _local(url, found["id"])
        ours = f"unix://{owner['socket']}" if owner else None
        # Ours however it is reached (ssh:// to this machine too): the same engine as at our socket.
        owned = ours is not None and (url == ours or (local and _id_at(ours) == found["id"]))
        return EngineStatus(True, url, owned, owner["pid"] if owned else None, found["version"], found["api"],
                            binfmt=binfmt_state() if local else (), engine_id=found["id"], name=found["name"],
                            local=local)
    host = os.environ.get("DOCKER_HOST")
    if host and not host.startswith("unix://"):  # another machine's engine: this one's dockerd is no remedy
        reason = f"DOCKER_HOST={shown(host)} does not answer: {tried[0][1]}; unset DOCKER_HOST to use this machine's engine"
    elif shutil.which("dockerd") is None:
        reason = f"dockerd is not installed; install it with: {INSTALL_HINT}, then: {START_COMMAND}"
    else:
        reason = f"none answers at {'; '.join(f'{url} ({why})' for url, why in tried)}; start one with: {START_COMMAND}"
    return EngineStatus(False, None, False, None, None, None, reason)


def _id_at(url: str) -> str | None:
    try:
        return _ask(url)["id"]
    except ToolError:
        return None


def start(timeout_s: float = 60) -> EngineStatus:
    """The engine that answers, or a dockerd started (and owned) by slimlab, with QEMU registered
    for containers of other CPUs (register_qemu). ToolError when none can be had: not root, no
    dockerd, or it did not come up (with its log's tail)."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    # One start at a time on this host: a second caller waits, then finds the engine answering.
    with open(RUN_DIR / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = _start_locked(timeout_s)
        if not found.local:  # another machine's engine: registering QEMU here would do nothing for it
            return found
        try:
            register_qemu()
        except ToolError as exc:
            # The engine is up and native images work; the status shows the entries lack F.
            print(f"slimlab: containers of other CPUs will not run: {exc}", file=sys.stderr)
        return replace(found, binfmt=binfmt_state())


@dataclass(frozen=True)
class DriverChoice:
    """The storage driver ``start`` gives dockerd, and why (what the probe found)."""

    driver: str
    reason: str


def _mount_fstype(path: Path) -> str | None:
    """The file system type of the mount that holds ``path`` (/proc/self/mounts, longest prefix)."""
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    target, best = str(path.resolve()), (None, -1)
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount = fields[1].replace("\\040", " ")
        if (target == mount or target.startswith(mount.rstrip("/") + "/")) and len(mount) > best[1]:
            best = (fields[2], len(mount))
    return best[0]


def storage_driver(home: Path | None = None) -> DriverChoice:
    """overlay2 when the kernel knows overlayfs (/proc/filesystems, after ``modprobe overlay``
    where it is a module) and the engine's data directory sits on a file system overlayfs takes
    as its upper layer; vfs otherwise, with the reason."""
    home = home or ENGINE_HOME
    known = _kernel_filesystems()
    if "overlay" not in known and shutil.which("modprobe"):
        subprocess.run(["modprobe", "overlay"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        known = _kernel_filesystems()
    if "overlay" not in known:
        return DriverChoice(FALLBACK_DRIVER, "the kernel has no overlay file system (not in /proc/filesystems, "
                                             "and modprobe overlay did not add it)")
    probe = home if home.exists() else next((p for p in home.parents if p.exists()), Path("/"))
    fstype = _mount_fstype(probe)
    if fstype in _NO_OVERLAY_UPPER:
        return DriverChoice(FALLBACK_DRIVER, f"{home} is on {fstype}, which overlayfs cannot use as its upper layer")
    return DriverChoice(PRODUCTION_DRIVER, f"the kernel has overlay and {home} is on {fstype or 'an unknown file system'}")


def _kernel_filesystems() -> set[str]:
    try:
        return {line.split()[-1] for line in Path("/proc/filesystems").read_text().splitlines() if line.strip()}
    except OSError:
        return set()


def _start_locked(timeout_s: float) -> EngineStatus:
    found = status()
    if found.reachable:
        return found
    host = os.environ.get("DOCKER_HOST")
    if host and not host.startswith("unix://"):
        raise ToolError(found.reason)
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise ToolError(f"no Docker engine and no dockerd to start one; install it with: {INSTALL_HINT}")
    if host and host != f"unix://{SOCKET}":  # it would start where DOCKER_HOST does not look
        raise ToolError(f"DOCKER_HOST={shown(host)} does not answer, and slimlab starts an engine only at unix://{SOCKET}: "
                        f"unset DOCKER_HOST (or set it to that), then run {START_COMMAND}")
    if os.geteuid() != 0:
        raise ToolError(f"no Docker engine answers, and starting dockerd needs root: run as root {START_COMMAND}")
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    ENGINE_HOME.mkdir(parents=True, exist_ok=True)
    log_path = ENGINE_HOME / "dockerd.log"
    driver = storage_driver(ENGINE_HOME)
    if driver.driver != PRODUCTION_DRIVER:
        print(f"slimlab: the engine uses {driver.driver} storage ({driver.reason}): container start-up figures will "
              "not be representative of a production engine", file=sys.stderr)
    argv = [dockerd, f"--storage-driver={driver.driver}", *DOCKERD_FLAGS, f"--data-root={ENGINE_HOME / 'data'}", f"--exec-root={RUN_DIR / 'exec'}",
            f"--pidfile={RUN_DIR / 'docker.pid'}", "-H", f"unix://{SOCKET}"]
    with open(log_path, "ab") as log:
        # Its own session: the engine outlives the command that started it (`slimlab engine
        # start` returns), and an interrupted sweep does not take it down.
        daemon = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    OWNER.write_text(json.dumps({"pid": daemon.pid, "socket": str(SOCKET), "argv": argv,
                                 "storage_driver": driver.driver, "storage_driver_reason": driver.reason,
                                 "started_at": time.time()}))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            break
        try:
            answer = _ask(f"unix://{SOCKET}", timeout=2)
        except ToolError:
            answer = None
        if answer:
            return EngineStatus(True, f"unix://{SOCKET}", True, daemon.pid, answer["version"], answer["api"],
                                engine_id=answer["id"], name=answer["name"], local=True)
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


def client(timeout_s: float = 120, found: EngineStatus | None = None):
    """A docker SDK client for the engine that answers (``found``, or the one status() finds);
    ToolError naming how to start one.

    ssh:// goes through paramiko, the SDK's default, not ``use_ssh_client`` (the ssh binary): the
    SDK reads the binary's pipes blocking, so its timeouts never fire (a wait(timeout=2) on a
    container that never exits was still blocked after 30 s, where paramiko's raised after 2 s);
    it starts one ssh, one handshake, per connection and never reaps them (40 zombies after 8
    containers here); and ssh's errors go to the terminal instead of into the exception a row's
    reason quotes. paramiko holds one connection, a channel per request, and says what was refused."""
    import docker

    found = found or status()
    if not found.reachable:
        raise ToolError(found.reason)
    return docker.DockerClient(base_url=found.url, version="auto", timeout=timeout_s)
