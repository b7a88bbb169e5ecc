"""The one subprocess wrapper: timeouts, environment, process-group kill, captured output.

Every external tool slimlab drives (go, compilers, strip, upx, ...) runs through
``run``. Measured programs do not: they go through ``slimlab.measure.launcher``, which
must not add Python's own footprint to what it measures.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import ToolError

TAIL_CHARS = 4000


def tail(text: str, limit: int = TAIL_CHARS) -> str:
    """The last ``limit`` characters of ``text``: compiler errors end with what matters."""
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]


@dataclass(frozen=True)
class Completed:
    argv: list[str]
    returncode: int | None  # None when it was killed at the timeout
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def error(self, what: str) -> ToolError:
        """A ToolError describing this failed run, for raising or recording."""
        if self.timed_out:
            message = f"{what} timed out after {self.seconds:.0f}s: {' '.join(self.argv)}"
        else:
            message = f"{what} failed (exit {self.returncode}): {tail(self.stderr or self.stdout, 800)}"
        return ToolError(message, self.argv, self.returncode, tail(self.stderr), self.timed_out)


def run(
    argv: list[str],
    *,
    cwd: str | Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    input: str | None = None,
) -> Completed:
    """Run ``argv`` to completion, capturing output; kill its whole group on timeout.

    ``env`` entries are added to (not substituted for) the current environment.
    """
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=full_env,
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,  # own process group: a hang is killed with its children
        )
    except FileNotFoundError as exc:
        raise ToolError(f"{argv[0]} not found: {exc}", argv) from exc
    try:
        out, err = proc.communicate(input=input, timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        out, err = proc.communicate()
        timed_out = True
    except BaseException:
        # Ctrl-C does not reach a tool in its own session: take it down with us.
        _kill_group(proc.pid)
        proc.wait()
        raise
    return Completed(
        argv=list(argv),
        returncode=None if timed_out else proc.returncode,
        stdout=out,
        stderr=err,
        seconds=time.perf_counter() - start,
        timed_out=timed_out,
    )


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
