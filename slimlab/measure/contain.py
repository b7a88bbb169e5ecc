"""Containment of bare runs: each batch of starts in its own cgroup, with the spec's limits.

A measured program (natively or under QEMU user mode) runs in a cgroup made for its batch
of starts (a functional check, a burst of timed starts) with a memory limit
(``memory_limit_mb``) and a pids limit (``pids_limit``):

- cgroup v2 where it is the mounted hierarchy and offers the memory and pids controllers,
  under this process's own cgroup when that one may have children with controllers (the
  kernel lets a cgroup other than the root hand controllers to children only while it holds
  no process: in a delegated cgroup that holds this sweep alone, the sweep and its
  descendants move to a leaf of their own first, ``slimlab-<pid>-self``);
- cgroup v1 otherwise (one directory per controller, under this process's cgroup of each);
- neither (not root, nothing delegated): no limits, and the launcher's own tracking only;
  the sweep says so on stderr (``unlimited_warning``).

The launcher (launcher.c, ``--contain-cgroup``) joins the cgroup once, before its first
start, so every program it forks is born inside it: moving each child between vfork and exec
would put a cgroup migration, slow and erratic, inside the timed start (README, "Contained
bare runs"). The launcher is a static C program of about 1 MiB: its share of the cgroup's
memory is fixed and small. After each start it kills what the program left in the cgroup
(or, without one, its descendants, process group and session: it is a child subreaper, so a
``setsid`` child still comes back to it) and counts them; ``close`` sweeps the cgroup again
(a launcher that was itself killed), removes it and keeps the count in ``left``, which the
batch's caller adds to the row's escaped processes.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..model.spec import SETTINGS

CGROUP_FS = Path("/sys/fs/cgroup")
PREFIX = "slimlab-"  # slimlab-<pid of the sweep>-<n>: a dead pid's directories are stale
V1_CONTROLLERS = ("memory", "pids")
_numbers = itertools.count()


@dataclass(frozen=True)
class Limits:
    """What a bare-run program may use: the spec's ``memory_limit_mb`` and ``pids_limit``."""

    memory_mb: int = SETTINGS["memory_limit_mb"].default
    pids: int = SETTINGS["pids_limit"].default

    @classmethod
    def of(cls, spec) -> Limits:
        return cls(spec.memory_limit_mb, spec.pids_limit)


@dataclass
class Containment:
    """One batch's cgroup (or the fallback without one): what the launcher is told, what it counted."""

    kind: str  # "cgroup-v2", "cgroup-v1" or "subreaper" (no cgroup: see ``reason``)
    limits: Limits
    dirs: dict[str, Path] = field(default_factory=dict)  # v1: by controller; v2: {"unified": dir}
    reason: str | None = None  # why there is no cgroup
    left: int = 0  # processes still in the cgroup when it was closed (then killed): see ``contained``

    def launcher_options(self) -> tuple[str, ...]:
        options = ["--contain"]
        for path in dict.fromkeys(self.dirs.values()):
            options += ["--contain-cgroup", str(path / "cgroup.procs")]
        return tuple(options)

    def _read(self, controller: str, name: str) -> dict[str, int]:
        """A flat-keyed cgroup file (memory.events, memory.oom_control, pids.events) as numbers."""
        directory = self.dirs.get(controller) or self.dirs.get("unified")
        try:
            text = (directory / name).read_text() if directory else ""
        except OSError:
            return {}
        out = {}
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            with contextlib.suppress(ValueError):
                out[key] = int(value)
        return out

    def memory_kills(self) -> int:
        """Programs the kernel killed at the memory limit in this cgroup so far."""
        if self.kind == "cgroup-v2":
            return self._read("memory", "memory.events").get("oom_kill", 0)
        if self.kind == "cgroup-v1":
            control = self._read("memory", "memory.oom_control")
            if "oom_kill" in control:
                return control["oom_kill"]
            # Kernels before 4.13 do not count kills: a hit on the limit is the nearest sign.
            try:
                return 1 if int((self.dirs["memory"] / "memory.failcnt").read_text()) > 0 else 0
            except (OSError, ValueError):
                return 0
        return 0

    def memory_source(self) -> str:
        return "memory.events oom_kill" if self.kind == "cgroup-v2" else "memory.oom_control oom_kill"

    def pids_refusals(self) -> int:
        """Forks and new threads the pids limit refused in this cgroup so far."""
        return self._read("pids", "pids.events").get("max", 0) if self.dirs else 0

    def limit_reasons(self) -> list[str]:
        """What a limit did in this batch, in words for a row's reason (empty: neither was hit)."""
        said = []
        if (kills := self.memory_kills()) > 0:
            said.append(f"killed by the memory limit (memory_limit_mb = {self.limits.memory_mb}; "
                        f"the cgroup's {self.memory_source()} = {kills})")
        if (refused := self.pids_refusals()) > 0:
            said.append(f"the pids limit (pids_limit = {self.limits.pids}) refused {refused} new "
                        f"process{'es' if refused != 1 else ''} or thread{'s' if refused != 1 else ''}")
        return said

    def describe(self) -> dict:
        """For the manifest: which containment bare runs had, and their limits."""
        limited = self.kind != "subreaper"
        return {"kind": self.kind, "controllers": sorted(self.dirs) if self.kind == "cgroup-v1" else
                (["memory", "pids"] if limited else []),
                "memory_limit_mb": self.limits.memory_mb if limited else None,
                "pids_limit": self.limits.pids if limited else None,
                "tracking": "cgroup" if limited else "child subreaper, process group and session",
                "reason": self.reason}

    def close(self) -> int:
        """Kill whatever is still in the cgroup and remove it; how many were still there."""
        left = 0
        for directory in dict.fromkeys(self.dirs.values()):
            left = max(left, _empty(directory))
        for directory in dict.fromkeys(self.dirs.values()):
            with contextlib.suppress(OSError):
                directory.rmdir()
        return left


def _pids(directory: Path) -> list[int]:
    try:
        return [int(pid) for pid in (directory / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def _empty(directory: Path, timeout_s: float = 2.0) -> int:
    """SIGKILL everything in the cgroup until it is empty (or ``timeout_s``); how many were in it."""
    first = None
    deadline = time.monotonic() + timeout_s
    while True:
        pids = [pid for pid in _pids(directory) if pid != os.getpid()]
        first = len(pids) if first is None else first
        if not pids or time.monotonic() > deadline:
            return first
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.005)


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup path by controller ("" for the v2 hierarchy), from /proc/self/cgroup."""
    out = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                out[name] = path
    return out


def _mounts() -> dict[Path, tuple[str, set[str]]]:
    """cgroup mounts: their file system type and options."""
    out = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[2] in ("cgroup", "cgroup2"):
                out[Path(parts[1])] = (parts[2], set(parts[3].split(",")))
    return out


def _remove_stale(base: Path) -> None:
    """Cgroups a killed sweep left under ``base`` (their pid is gone): emptied and removed."""
    with contextlib.suppress(OSError):
        for stale in base.glob(f"{PREFIX}*-*"):
            pid = stale.name[len(PREFIX):].split("-", 1)[0]
            if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                _empty(stale)
                with contextlib.suppress(OSError):
                    stale.rmdir()


def _make(base: Path) -> Path:
    _remove_stale(base)
    made = base / f"{PREFIX}{os.getpid()}-{next(_numbers)}"
    made.mkdir()
    return made


def _v2(limits: Limits, mounts, own) -> Containment | str:
    root = next((path for path, (kind, _) in mounts.items() if kind == "cgroup2"), None)
    controllers = set()
    with contextlib.suppress(OSError):
        controllers = set((root / "cgroup.controllers").read_text().split()) if root else set()
    if root is None or not {"memory", "pids"} <= controllers:
        return "no cgroup v2 hierarchy with the memory and pids controllers"
    base = root / own.get("", "/").lstrip("/")
    if _is_own_leaf(base):  # moved there by an earlier batch (_leave_for_leaf): its parent is the base
        base = base.parent
    enabled = set((base / "cgroup.subtree_control").read_text().split())
    if not {"memory", "pids"} <= enabled:
        try:  # allowed in the root, or in a cgroup with no processes of its own
            (base / "cgroup.subtree_control").write_text("+memory +pids")
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise
            _leave_for_leaf(base)
            (base / "cgroup.subtree_control").write_text("+memory +pids")
    made = _make(base)
    try:
        (made / "memory.max").write_text(str(limits.memory_mb * 1024 * 1024))
        with contextlib.suppress(FileNotFoundError):  # no swap accounting: nothing to limit
            (made / "memory.swap.max").write_text("0")
        (made / "pids.max").write_text(str(limits.pids))
    except OSError:
        made.rmdir()
        raise
    return Containment("cgroup-v2", limits, {"unified": made})


def _is_own_leaf(directory: Path) -> bool:
    return directory.name.startswith(PREFIX) and directory.name.endswith("-self")


def _delegated(directory: Path) -> bool:
    """Is ``directory`` a cgroup handed to its user to manage (systemd's Delegate=yes marks it so)?"""
    for name in ("trusted.delegate", "user.delegate"):
        with contextlib.suppress(OSError):
            if os.getxattr(directory, name) == b"1":
                return True
    return False


def _own_tree() -> set[int]:
    """This process and its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "(comm)": state, ppid, ...
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = set(), [os.getpid()]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo += [child for child in children.get(pid, []) if child not in tree]
    return tree


def _leave_for_leaf(base: Path) -> None:
    """Move this sweep's processes out of ``base`` into a leaf cgroup of their own, so ``base`` may
    hand its controllers to children; OSError saying why not when ``base`` is not delegated or
    holds anyone else's processes (they are never moved)."""
    if not _delegated(base):
        raise OSError(errno.EBUSY, f"{base} holds processes and is not a delegated cgroup, so it cannot give "
                                   "its children the memory and pids controllers")
    strangers = sorted(set(_pids(base)) - _own_tree())
    if strangers:
        raise OSError(errno.EBUSY, f"{base} holds processes other than this sweep's (pid {strangers[0]} and "
                                   f"{len(strangers) - 1} more), which slimlab does not move")
    leaf = base / f"{PREFIX}{os.getpid()}-self"
    leaf.mkdir(exist_ok=True)
    for pid in _pids(base):
        with contextlib.suppress(ProcessLookupError):
            (leaf / "cgroup.procs").write_text(str(pid))


def _v1(limits: Limits, mounts, own) -> Containment | str:
    roots = {}
    for controller in V1_CONTROLLERS:
        root = next((path for path, (kind, options) in mounts.items()
                     if kind == "cgroup" and controller in options), None)
        if root is None:
            return f"no cgroup v1 {controller} controller mounted"
        roots[controller] = root / own.get(controller, "/").lstrip("/")
    made: dict[str, Path] = {}
    try:
        for controller, base in roots.items():
            made[controller] = _make(base)
        memory = made["memory"]
        (memory / "memory.limit_in_bytes").write_text(str(limits.memory_mb * 1024 * 1024))
        memsw = memory / "memory.memsw.limit_in_bytes"
        if memsw.exists():  # the same limit on memory plus swap: no way around it through swap
            memsw.write_text(str(limits.memory_mb * 1024 * 1024))
        (made["pids"] / "pids.max").write_text(str(limits.pids))
    except OSError:
        for directory in made.values():
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    return Containment("cgroup-v1", limits, made)


def open_containment(limits: Limits) -> Containment:
    """A fresh cgroup with ``limits`` for one batch of starts, or the fallback saying why none."""
    mounts, own = _mounts(), _own_cgroups()
    why = []
    for make in (_v2, _v1):
        try:
            made = make(limits, mounts, own)
        except OSError as exc:
            why.append(f"{make.__name__.lstrip('_')}: {type(exc).__name__}: {exc}")
            continue
        if isinstance(made, Containment):
            return made
        why.append(made)
    return Containment("subreaper", limits, reason="; ".join(why))


@contextlib.contextmanager
def contained(limits: Limits | None):
    """``open_containment`` for the life of the block, closed after it (what it still held, killed
    then, in ``box.left``); None: no containment."""
    if limits is None:
        yield None
        return
    box = open_containment(limits)
    try:
        yield box
    finally:
        box.left = box.close()


def probe(limits: Limits) -> dict:
    """Which containment this machine gives bare runs (made once and removed), for the manifest."""
    with contained(limits) as box:
        return box.describe()


def unlimited_warning(described: dict) -> str | None:
    """What the sweep says on stderr when bare runs get no cgroup (``describe()``'s kind
    "subreaper"): no limits, why, and what would give them; None when they are limited."""
    if described.get("kind") != "subreaper":
        return None
    return ("Warning: bare runs have no memory or pids limit here (memory_limit_mb and pids_limit are not "
            f"applied: {described.get('reason') or 'no cgroup'}); what a program leaves running is still "
            "found and killed (child subreaper, process group and session). For the limits run as root on "
            "a cgroup v1 host, or in a delegated cgroup v2: systemd-run --scope -p Delegate=yes slimlab "
            "sweep ... (as a user: systemd-run --user --scope -p Delegate=yes ...)")


def escape_reason(count: int, name: str | None) -> str:
    """A row's reason for a program that left processes running."""
    example = f", e.g. {name}" if name and name != "-" else ""
    return f"left {count} process{'es' if count != 1 else ''} running after exit{example}"
