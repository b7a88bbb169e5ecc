"""The lock on a run directory: one sweep writes a run at a time.

An advisory ``fcntl.flock`` on ``<run-dir>/.lock``, taken before any work and held for the
life of the sweep's process. The kernel releases it when the process ends, however it ends
(SIGKILL included), so a killed sweep never leaves its run locked. The file holds the holder's
pid and host, for the error that refuses a second sweep. Forked pool workers share the open
lock (flock is per open file); they die with the sweep (PR_SET_PDEATHSIG, slimlab.executor).
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from .errors import SlimlabError

LOCK = ".lock"


class RunLocked(SlimlabError):
    """Another process holds the run's lock."""


class RunLock:
    """The held lock of one run directory; :meth:`release` (or the process's end) lets it go."""

    def __init__(self, run_dir: Path, fd: int) -> None:
        self.run_dir, self._fd = run_dir, fd

    @classmethod
    def acquire(cls, run_dir: Path) -> RunLock:
        """The lock of ``run_dir`` (made when missing), or RunLocked naming the holder's pid."""
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / LOCK
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
                os.close(fd)
                raise RunLocked(f"run {run_dir.name} in {run_dir} is being written by another sweep "
                                f"(pid {holder}); wait for it to end, or give this sweep another "
                                f"--run-id") from None
            # A holder that released its lock may have removed the file (release() of a run that
            # never got a manifest) after we opened it: then we hold a lock on a file nobody sees.
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        return cls(run_dir, fd)

    def release(self, drop_empty: bool = False) -> None:
        """Let the lock go; ``drop_empty``: remove the run directory too when the lock file is all
        it holds (a sweep refused or failed before its run had a manifest)."""
        if self._fd is None:
            return
        if drop_empty and [p.name for p in self.run_dir.iterdir()] == [LOCK]:
            (self.run_dir / LOCK).unlink()
            self.run_dir.rmdir()
        os.close(self._fd)
        self._fd = None
