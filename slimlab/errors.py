"""The exceptions slimlab raises. Everything user-facing derives from SlimlabError."""

from __future__ import annotations


class SlimlabError(Exception):
    """Base class: a problem the user can act on, with a message that says how."""


class SpecError(SlimlabError):
    """The sweep spec is invalid (unknown name, typo in an axis, empty axis, bad value)."""


class ToolError(SlimlabError):
    """An external tool is missing, failed or hung.

    Carries what was run and what it said, so a failure can be recorded as data.
    """

    def __init__(
        self,
        message: str,
        argv: list[str] | None = None,
        returncode: int | None = None,
        stderr_tail: str = "",
        timed_out: bool = False,
    ) -> None:
        super().__init__(message)
        self.argv = list(argv or [])
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        self.timed_out = timed_out
