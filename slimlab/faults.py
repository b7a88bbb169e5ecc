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
from pathlib import Path

from .errors import SlimlabError

# The errnos that are the machine's state. ENOMEM is left out: a program that allocates too
# much is the variant's doing (the memory limit names it).
MACHINE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EMFILE, errno.ENFILE)
# How Python, Go and C tools print them ("write /x: no space left on device").
_MESSAGES = {os.strerror(code).lower(): code for code in MACHINE_ERRNOS}
# Exit code of a sweep stopped by the machine (sysexits' EX_TEMPFAIL: try again later).
EXIT_CODE = 75


class MachineError(SlimlabError):
    """The sweep stopped because the machine failed it; what it measured is kept."""

    exit_code = EXIT_CODE


def machine_cause(failure: BaseException | str | None, program_output: bool = False) -> str | None:
    """What the machine did, when ``failure`` (an exception, or a tool's message) is the
    machine's fault; None when it may be the variant's.

    ``program_output``: the message may hold what the measured program printed. A program that
    writes to its read-only root (every container's is) prints "read-only file system" by its own
    doing, so there only slimlab's own OSError ("[Errno 28] ...") counts."""
    if failure is None:
        return None
    if isinstance(failure, OSError) and failure.errno in MACHINE_ERRNOS:
        return f"{os.strerror(failure.errno)} ({errno.errorcode[failure.errno]})"
    text = str(failure).lower()
    if program_output:
        for code in MACHINE_ERRNOS:
            if f"[errno {code}]" in text:
                return f"{os.strerror(code)} ({errno.errorcode[code]})"
        return None
    for message, code in _MESSAGES.items():
        if message in text:
            return f"{os.strerror(code)} ({errno.errorcode[code]})"
    return None


def stopped_message(cause: str, run_id: str, where: str | None = None) -> str:
    """The sweep's message when the machine stopped it: the cause, and how to go on."""
    place = f" in {where}" if where else ""
    return (f"the sweep stopped: the machine failed it ({cause}{place}); what was measured is kept, and the "
            f"variants it failed are rows with status machine_error. Fix the machine (free space, remount "
            f"read-write, raise the open-files limit, restart the engine), then resume: "
            f"slimlab sweep SPEC --run-id {run_id}")


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
