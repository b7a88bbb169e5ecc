"""Drive ``slimlab-launch`` (launcher.c): start a program, get its timing and rusage.

The launcher is compiled on first use into the cache, keyed by its source's hash.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .. import proc
from ..paths import default_cache_dir
from ..errors import ToolError

SOURCE = Path(__file__).with_name("launcher.c")


def launcher_path(cache_dir: Path | None = None) -> Path:
    """The compiled launcher, building it with ``cc`` when it is not cached yet."""
    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()[:16]
    out = (cache_dir or default_cache_dir()) / "launcher" / digest / "slimlab-launch"
    if out.is_file():
        return out
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise ToolError("no C compiler (cc) to build the measurement launcher; install it with: apt-get install gcc libc6-dev")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    # Static, so the launcher's own RSS (the floor of every measurement) stays small.
    done = proc.run([cc, "-O2", "-static", "-o", str(tmp), str(SOURCE)], timeout=120)
    if not done.ok:
        done = proc.run([cc, "-O2", "-o", str(tmp), str(SOURCE)], timeout=120)
    if not done.ok:
        raise done.error("compiling the measurement launcher")
    tmp.replace(out)
    return out


@dataclass(frozen=True)
class Exit:
    """How a launched program ended, as the kernel reported it."""

    start_ns: int
    end_ns: int
    exit_code: int | None  # None when killed by a signal
    signal: int  # 0 when it exited
    maxrss_kib: int
    timed_out: bool

    @property
    def wall_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

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


class Launch:
    """One running program under the launcher. Use as a context manager."""

    def __init__(self, argv: list[str], *, timeout_s: float, stdout: Path | None, stderr: Path | None,
                 env: dict[str, str] | None = None, launcher: Path | None = None) -> None:
        launcher = launcher or launcher_path()
        self._proc = subprocess.Popen(
            [str(launcher), str(int(timeout_s * 1000)), str(stdout or "-"), str(stderr or "-"), "--", *argv],
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
        fields = _fields(first)
        self.pid = int(fields["pid"])
        self.start_ns = int(fields["start_ns"])

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
            line = self._proc.stdout.readline()
            self._proc.wait(timeout=self._timeout_s + 30)
        finally:
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()
        if not line.startswith("exited "):
            raise ToolError(f"the measurement launcher ended without a report (exit {self._proc.returncode})")
        f = _fields(line)
        return Exit(
            start_ns=self.start_ns,
            end_ns=int(f["end_ns"]),
            exit_code=int(f["exit"]) if int(f["signal"]) == 0 else None,
            signal=int(f["signal"]),
            maxrss_kib=int(f["maxrss_kib"]),
            timed_out=f["timed_out"] == "1",
        )

    def __enter__(self) -> "Launch":
        return self

    def __exit__(self, *exc) -> None:
        if self._proc.poll() is None:
            # The program dies with its launcher (PR_SET_PDEATHSIG in launcher.c).
            self._proc.kill()
            self._proc.wait()
        self._proc.stdout.close()
