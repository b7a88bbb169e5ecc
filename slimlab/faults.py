"""Failures caused by the machine, not by a variant's code: a full or read-only disk, no file
descriptors left, a worker killed, the engine gone.

Such a failure says nothing about the variant, so it is never kept as its result: its row is
``machine_error`` with the cause, the run store does not count it as done (a resume retries
it), and the sweep stops (MachineError) rather than turn every later variant into the same row.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .errors import SlimlabError

# The errnos that are the machine's state. ENOMEM is left out: a program that allocates too
# much is the variant's doing (the memory limit names it).
MACHINE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EMFILE, errno.ENFILE)
# How Python, Go and C tools print them ("write /x: no space left on device"); the longest first, so
# "too many open files in system" (ENFILE) is not taken for "too many open files" (EMFILE).
_MESSAGES = dict(sorted(((os.strerror(code).lower(), code) for code in MACHINE_ERRNOS),
                        key=lambda item: -len(item[0])))
# A tool's words about the disk are believed only when a file system the sweep writes is so now
# (confirmed): compiler output may quote any text. Below this much free space a file system counts as
# full: more than a sweep's biggest write (a toolchain unpacked, a base image, a Go build cache's
# objects), and less than any disk a sweep could run on at ease.
LOW_SPACE_BYTES = 512 * 2**20
_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
# Exit code of a sweep stopped by the machine (sysexits' EX_TEMPFAIL: try again later).
EXIT_CODE = 75


class MachineError(SlimlabError):
    """The sweep stopped because the machine failed it; what it measured is kept."""

    exit_code = EXIT_CODE


def _named(code: int) -> str:
    return f"{os.strerror(code)} ({errno.errorcode[code]})"


def machine_cause(failure: BaseException | str | None, writes: Sequence[Path] | None,
                  program_output: bool = False) -> str | None:
    """What the machine did, when ``failure`` (an exception, or a tool's message) is the
    machine's fault; None when it may be the variant's.

    slimlab's own OSError is the machine's word. A message's text is a tool's: it counts for a full
    or read-only disk only when :func:`disk_state` finds one of ``writes`` (the directories the
    sweep writes: cache, data, temp) so now. ``writes=None``: the text is the machine's own words
    (an engine that cannot be looked at from here), believed as it is.

    ``program_output``: the message may hold what the measured program printed. A program that
    writes to its read-only root (every container's is) prints "read-only file system" by its own
    doing, so there only slimlab's own OSError ("[Errno 28] ...") counts."""
    if failure is None:
        return None
    if isinstance(failure, OSError) and failure.errno in MACHINE_ERRNOS:
        return _named(failure.errno)
    text = str(failure).lower()
    if program_output:
        code = next((code for code in MACHINE_ERRNOS if f"[errno {code}]" in text), None)
    else:
        code = next((code for message, code in _MESSAGES.items() if message in text), None)
    if code is None:
        return None
    if code in _DISK_ERRNOS and writes is not None:
        state = disk_state(writes, code)
        return None if state is None else f"{_named(code)}: {state}"
    return _named(code)


def disk_state(writes: Sequence[Path], code: int) -> str | None:
    """Which of ``writes`` is as ``code`` says (ENOSPC, EDQUOT: less than LOW_SPACE_BYTES free;
    EROFS: cannot be written), or None when none is. A directory not made yet is judged by its
    nearest existing parent."""
    for path in writes:
        path = next((p for p in (Path(path), *Path(path).parents) if p.exists()), Path("/"))
        if code == errno.EROFS:
            try:
                with tempfile.TemporaryFile(dir=path):
                    pass
            except OSError as exc:
                if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                    return f"{path} cannot be written"
            continue
        try:
            stat = os.statvfs(path)
        except OSError:
            continue
        free = stat.f_bavail * stat.f_frsize
        if free < LOW_SPACE_BYTES:
            return f"{free // 2**20} MiB free on {path}"
    return None


def stopped_message(cause: str, run_id: str | None, rows: bool = True, started: bool = True,
                    where: str | None = None) -> str:
    """The sweep's message when the machine stopped it: the cause, and how to go on. ``rows``: the
    variants it failed got rows (machine_error); ``started``: the run was made (else nothing was
    measured, and there is no run to resume)."""
    place = f" in {where}" if where else ""
    if not started:
        kept = "nothing was measured yet"
        again = "run the sweep again: slimlab sweep SPEC" + (f" --run-id {run_id}" if run_id else "")
    else:
        kept = "what was measured is kept" + (", and the variants it failed are rows with status "
                                              "machine_error" if rows else "")
        again = f"resume: slimlab sweep SPEC --run-id {run_id}"
    return (f"the sweep stopped: the machine failed it ({cause}{place}); {kept}. Fix the machine (free "
            f"space, remount read-write, raise the open-files limit, restart the engine), then {again}")


def check_writable(path: Path, what: str, fix: str) -> None:
    """SlimlabError, before any work, when ``path`` (a ``what``) cannot be written: a file created
    and removed in it, or in its nearest existing parent when it is not made yet (an error before
    any work leaves no directory behind)."""
    existing = Path(path)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        problem = "is on a read-only file system" if exc.errno == errno.EROFS else \
            f"cannot be written ({exc.strerror or exc})"
        raise SlimlabError(f"the {what} {path} {problem}: slimlab writes there; remount it read-write, "
                           f"or {fix}") from None
