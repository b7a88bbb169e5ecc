"""Drive ``slimlab-launch`` (launcher.c): start a program, get its timing and rusage.

The launcher is compiled on first use into the cache, keyed by its source's hash; so
is ``noop.c``, the trivial static program that calibrates the launcher's own overhead.
"""

from __future__ import annotations

import hashlib
import os
import select
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import cache, proc
from ..errors import SpecError, ToolError
from ..paths import default_cache_dir
from .contain import Containment, Limits, contained

SOURCE = Path(__file__).with_name("launcher.c")
NOOP_SOURCE = Path(__file__).with_name("noop.c")
NOOP_SERVER_SOURCE = Path(__file__).with_name("noop_server.c")  # the container floor for servers


def _compiled(source: Path, name: str, cache_dir: Path | None) -> Path:
    """``source`` compiled with ``cc`` into the cache (static when the C library allows it)."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    entry = cache.entry(cache_dir or default_cache_dir(), "launcher", digest)
    if cache.lookup(entry, name) is not None:
        return entry / name
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise ToolError(f"no C compiler (cc) to build {name}; install it with: apt-get install gcc libc6-dev")
    with cache.store(entry) as staging:
        out = staging.path / name
        # Static, so its own RSS and start-up (the floor of every measurement) stay small.
        done = proc.run([cc, "-O2", "-static", "-o", str(out), str(source)], timeout=120)
        static = done.ok
        if not done.ok:
            done = proc.run([cc, "-O2", "-o", str(out), str(source)], timeout=120)
        if not done.ok:
            raise done.error(f"compiling {name}")
        staging.publish({"source": source.name, "cc": cc, "static": static}, name)
    return entry / name


def launcher_path(cache_dir: Path | None = None) -> Path:
    """The compiled launcher, building it with ``cc`` when it is not cached yet."""
    return _compiled(SOURCE, "slimlab-launch", cache_dir)


def noop_path(cache_dir: Path | None = None) -> Path:
    """A static ``int main(void) { return 0; }``: what a start costs with no program in it."""
    return _compiled(NOOP_SOURCE, "slimlab-noop", cache_dir)


def noop_server_path(cache_dir: Path | None = None) -> Path:
    """A static server that answers every request 200 "ok" and exits on SIGTERM (noop_server.c)."""
    return _compiled(NOOP_SERVER_SOURCE, "slimlab-noop-server", cache_dir)


def available_cpus() -> list[int]:
    """CPUs a measurement can be pinned to: those online on this host. (A sweep checks its
    pin_cpu against its own affinity too, before any work: see tools.discover.)"""
    try:
        spans = Path("/sys/devices/system/cpu/online").read_text().strip()
    except OSError:
        return list(range(os.cpu_count() or 1))
    cpus: list[int] = []
    for span in spans.split(","):
        first, _, last = span.partition("-")
        cpus += range(int(first), int(last or first) + 1)
    return cpus


def check_cpu(cpu: int | None) -> None:
    """Reject a CPU number this host does not have, naming the ones it has."""
    if cpu is None:
        return
    cpus = available_cpus()
    if isinstance(cpu, bool) or not isinstance(cpu, int) or cpu not in cpus:
        raise SpecError(f"cannot pin measurements to CPU {cpu!r}: this host's CPUs are "
                        f"{', '.join(map(str, cpus))}")


@dataclass(frozen=True)
class Exit:
    """How a launched program ended, as the kernel reported it (wait4 rusage)."""

    pid: int
    start_ns: int
    end_ns: int
    exit_code: int | None  # None when killed by a signal
    signal: int  # 0 when it exited
    maxrss_kib: int
    timed_out: bool
    user_us: int = 0
    sys_us: int = 0
    nvcsw: int | None = None  # voluntary context switches (waits: I/O, futex, sleep)
    nivcsw: int | None = None  # involuntary ones: preempted for another task
    minflt: int | None = None
    cgroup_peak_bytes: int | None = None  # with --cgroup-peak: the launcher's cgroup's peak (a container's)
    escaped: int | None = None  # contained (measure.contain): processes it left running, killed since
    escaped_comm: str | None = None  # the first of them's name

    @property
    def wall_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

    @property
    def cpu_ms(self) -> float:
        """User plus system CPU time of the program and its threads."""
        return (self.user_us + self.sys_us) / 1e3

    def describe(self) -> str:
        if self.timed_out:
            return "timed out (killed)"
        if self.signal:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = f"signal {self.signal}"
            return f"killed by {name}"
        return f"exit {self.exit_code}"


def _fields(line: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in line.split()[1:])


def _optional(fields: dict[str, str], name: str) -> int | None:
    return int(fields[name]) if name in fields else None


def _exit(started: dict[str, str], f: dict[str, str]) -> Exit:
    return Exit(
        pid=int(started["pid"]),
        start_ns=int(started["start_ns"]),
        end_ns=int(f["end_ns"]),
        exit_code=int(f["exit"]) if int(f["signal"]) == 0 else None,
        signal=int(f["signal"]),
        maxrss_kib=int(f["maxrss_kib"]),
        timed_out=f["timed_out"] == "1",
        user_us=int(f["utime_us"]),
        sys_us=int(f["stime_us"]),
        nvcsw=_optional(f, "nvcsw"),
        nivcsw=_optional(f, "nivcsw"),
        minflt=_optional(f, "minflt"),
        cgroup_peak_bytes=_optional(f, "cgroup_peak_bytes") if _optional(f, "cgroup_peak_bytes") != -1 else None,
        escaped=_optional(f, "escaped") if _optional(f, "escaped") != -1 else None,
        escaped_comm=f.get("escaped_comm") if f.get("escaped_comm") != "-" else None,
    )


def _command(launcher: Path | None, argv: list[str], timeout_s: float, stdout: Path | None, stderr: Path | None,
             cpu: int | None, options: tuple[str, ...] = ()) -> list[str]:
    check_cpu(cpu)
    if cpu is not None:
        options = ("--cpu", str(cpu), *options)
    return [str(launcher or launcher_path()), *options, str(int(timeout_s * 1000)), str(stdout or "-"),
            str(stderr or "-"), "--", *argv]


def _contain_options(containment: Containment | None) -> tuple[str, ...]:
    return containment.launcher_options() if containment is not None else ()


def _sleep_until_exit(child: subprocess.Popen, timeout_s: float) -> int | None:
    """Block until ``child`` exits (its exit code), or None after ``timeout_s``.

    Not ``Popen.wait(timeout=...)``: that polls, waking every 0.5, 1, 2, ... 50 ms, and
    each wake-up competes with the program being timed. A pidfd sleeps in one poll().
    """
    try:
        pidfd = os.pidfd_open(child.pid)
    except (AttributeError, OSError):  # no pidfd (Linux < 5.3): fall back to polling
        try:
            return child.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(int(timeout_s * 1000)):
            return None
    finally:
        os.close(pidfd)
    return child.wait()


def run_starts(argv: list[str], *, runs: int, timeout_s: float, stdout: Path | None, stderr: Path | None,
               env: dict[str, str] | None = None, launcher: Path | None = None, cpu: int | None = None,
               containment: Containment | None = None) -> list[Exit]:
    """Start ``argv`` ``runs`` times back to back in one launcher; one Exit per start.

    Stops after a start that timed out or was killed by a signal (its Exit is the last).
    The caller sleeps while the program runs, as hyperfine does in wait(): the launcher
    starts the program only once told to (``--go``, written just before the caller
    sleeps), its report goes to a file read afterwards (a line on a pipe would wake the
    caller), and the caller waits on a pidfd rather than polling. Between starts nothing
    but the launcher runs, as between hyperfine's runs. See samples.py, "Why start-up is
    taken this way". ``containment``: the batch's cgroup (measure.contain), which the
    launcher joins before its first start.
    """
    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    with tempfile.TemporaryFile("w+") as report:
        child = subprocess.Popen(
            _command(launcher, argv, timeout_s, stdout, stderr, cpu,
                     ("--runs", str(runs), "--go", *_contain_options(containment))),
            stdout=report,
            stderr=subprocess.STDOUT,  # the launcher's own complaints; the program's go to ``stderr``
            stdin=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        try:
            try:
                child.stdin.write(b"g")
                child.stdin.close()
            except BrokenPipeError:  # it failed before reading: its report says why
                pass
            # The launcher enforces the timeout per start; this bound only guards against a stuck launcher.
            code = _sleep_until_exit(child, runs * (timeout_s + 1) + 30)
            if code is None:
                raise ToolError(f"the measurement launcher got stuck running {argv[0]}", argv)
        finally:
            if child.poll() is None:
                child.kill()  # the program dies with it (PR_SET_PDEATHSIG in launcher.c)
                child.wait()
        report.seek(0)
        lines = report.read().splitlines()
    exits, started = [], None
    for line in lines:
        if line.startswith("started "):
            started = _fields(line)
        elif line.startswith("exited ") and started is not None:
            exits.append(_exit(started, _fields(line)))
    if not exits:
        said = "; ".join(line for line in lines if not line.startswith(("started ", "exited ")))
        raise ToolError(f"the measurement launcher failed to start {argv[0]} (exit {code}): {said or 'no report'}",
                        argv)
    return exits


class Launch:
    """One running program under the launcher, followed while it runs (a server).

    Use as a context manager. The caller reads the ``started`` line at once, so it knows
    the pid and start time while the program runs; a CLI that needs neither uses
    ``run_starts``, which keeps the caller asleep instead.
    """

    def __init__(self, argv: list[str], *, timeout_s: float, stdout: Path | None, stderr: Path | None,
                 env: dict[str, str] | None = None, launcher: Path | None = None, cpu: int | None = None,
                 containment: Containment | None = None) -> None:
        self._proc = subprocess.Popen(
            _command(launcher, argv, timeout_s, stdout, stderr, cpu, _contain_options(containment)),
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            text=True,
        )
        self._timeout_s = timeout_s
        first = self._proc.stdout.readline()
        if not first.startswith("started "):
            self._proc.wait()
            raise ToolError(f"the measurement launcher failed to start {argv[0]}: {first!r}", argv)
        self._started = _fields(first)
        self.pid = int(self._started["pid"])
        self.start_ns = int(self._started["start_ns"])

    def running(self) -> bool:
        """True while the program has not been reaped (the launcher is still waiting)."""
        return self._proc.poll() is None

    def terminate(self) -> None:
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass

    def wait(self) -> Exit:
        # The launcher enforces the timeout itself; this bound only guards against a stuck launcher.
        try:
            # A launcher that exits (reported or not) makes the pipe readable at once.
            readable, _, _ = select.select([self._proc.stdout], [], [], self._timeout_s + 30)
            line = self._proc.stdout.readline() if readable else ""
            self._proc.wait(timeout=5 if readable else 0.1)
        finally:
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
        if not line.startswith("exited "):
            raise ToolError(f"the measurement launcher ended without a report (exit {self._proc.returncode})")
        return _exit(self._started, _fields(line))

    def __enter__(self) -> Launch:
        return self

    def __exit__(self, *exc) -> None:
        if self._proc.poll() is None:
            # The program dies with its launcher (PR_SET_PDEATHSIG in launcher.c).
            self._proc.kill()
            self._proc.wait()
        self._proc.stdout.close()


def calibrate_overhead(cache_dir: Path | None = None, cpu: int | None = None, runs: int = 30,
                       launcher: Path | None = None, limits: Limits | None = Limits()) -> dict:
    """The launcher's own cost per start: a static no-op timed as programs are timed.

    Like hyperfine's shell calibration, but recorded rather than subtracted: a start-up
    figure includes fork, exec, exit and wait4 whatever the program, and a reader can
    compare it with this floor. Taken as one warm-up start and then ``runs`` starts back
    to back (``run_starts``), the way ``take_samples`` times a CLI, contained as programs are
    (``limits``; None: not contained, to compare).
    """
    from .stats import summarize

    if runs < 1:
        raise ValueError(f"runs must be at least 1, got {runs}")
    noop = noop_path(cache_dir)
    launcher = launcher or launcher_path(cache_dir)
    kwargs = {"timeout_s": 10, "stdout": None, "stderr": None, "launcher": launcher, "cpu": cpu}
    with contained(limits) as box:
        run_starts([str(noop)], runs=1, containment=box, **kwargs)  # warm-up: page cache, both mapped
        exits = run_starts([str(noop)], runs=runs, containment=box, **kwargs)
    bad = [e for e in exits if e.exit_code != 0]
    if bad or len(exits) != runs:
        raise ToolError(f"the no-op calibration program failed: {bad[0].describe() if bad else 'too few starts'}")
    wall = summarize([e.wall_ms for e in exits])
    return {
        "program": "static C: int main(void) { return 0; }",
        "median_ms": wall["median"],
        "min_ms": wall["min"],
        "iqr_ms": wall["iqr"],
        "n": wall["n"],
        "cpu": cpu,
        "maxrss_kib": max(e.maxrss_kib for e in exits),
        "containment": box.kind if box is not None else None,
    }
