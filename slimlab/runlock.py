"""The lock on a run directory: one sweep writes a run at a time.

An advisory ``fcntl.flock`` on ``<run-dir>/.lock``, taken before any work and held for the
life of the sweep's process. The kernel releases it when the process ends, however it ends
(SIGKILL included), so a killed sweep never leaves its run locked. The file holds the holder's
pid and host, for the error that refuses a second sweep. Forked pool workers share the open
lock (flock is per open file); they die with the sweep (PR_SET_PDEATHSIG, slimlab.executor).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path

from .errors import SlimlabError

LOCK = ".lock"
VANISHED_RETRIES = 10  # see acquire


class RunLocked(SlimlabError):
    """Another process holds the run's lock."""


class RunLock:
    """The held lock of one run directory; :meth:`release` (or the process's end) lets it go."""

    def __init__(self, run_dir: Path, fd: int, made: tuple[Path, ...] = ()) -> None:
        self.run_dir, self._fd = run_dir, fd
        self._made = made  # the run directory's parents acquire() made, deepest first

    @classmethod
    def acquire(cls, run_dir: Path, create: bool = True) -> RunLock:
        """The lock of ``run_dir``, or RunLocked naming the holder's pid. ``create``: make the
        directory when missing (else FileNotFoundError: a caller that only works on an existing run)."""
        path = run_dir / LOCK
        made = tuple(p for p in run_dir.parents if not p.exists())
        vanished = 0
        while True:
            try:
                if create:
                    run_dir.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except (FileNotFoundError, FileExistsError):
                # A holder's release() removed the empty run directory while we made or opened it
                # (mkdir's exist_ok looks again after EEXIST): again. Each time is another sweep's
                # release, so a few suffice; one that keeps vanishing is someone else's doing.
                vanished += 1
                if not create or vanished > VANISHED_RETRIES:
                    raise
                continue
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
        return cls(run_dir, fd, made)

    def release(self, drop_empty: bool = False) -> None:
        """Let the lock go; ``drop_empty``: remove the run directory too when the lock file is all
        it holds (a sweep refused or failed before its run had a manifest), and the parents
        acquire() made for it when they are empty: an error before any work leaves nothing behind.

        The file is unlinked while the lock is held, so a sweep that opened it meanwhile sees it
        gone and opens a new one; the directory is removed after the lock is let go, unless another
        sweep put something in it meanwhile."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        empty = False
        try:
            with contextlib.suppress(FileNotFoundError):  # the directory is gone already: nothing to drop
                empty = drop_empty and [p.name for p in self.run_dir.iterdir()] == [LOCK]
            if empty:
                (self.run_dir / LOCK).unlink(missing_ok=True)
        finally:
            os.close(fd)
        if empty:
            for directory in (self.run_dir, *self._made):
                with contextlib.suppress(OSError):  # another sweep's lock file is in it now, or it is gone
                    directory.rmdir()
