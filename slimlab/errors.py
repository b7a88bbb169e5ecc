"""The exceptions slimlab raises. Everything user-facing derives from SlimlabError."""

from __future__ import annotations

import re


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


def did_you_mean(word: object, choices) -> str:
    """' (did you mean "x"?)' for the closest choice, or '' when nothing is close.

    Lives here, with the exceptions, so every module can name the valid choices without
    importing anything else of slimlab.
    """
    import difflib

    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown(what: str, name: object, choices, valid: str | None = None) -> SpecError:
    """The one wording for a name that is not among ``choices``: did-you-mean, then the valid ones."""
    listed = valid if valid is not None else ", ".join(str(c) for c in choices)
    return SpecError(f"unknown {what} {name!r}{did_you_mean(name, choices)}; valid: {listed}")


# Control characters: C0 (newline, carriage return, escape, ...), DEL, C1, and the Unicode line and
# paragraph separators, which some readers (Python's splitlines among them) also end a line at.
# One pattern for Python's re and for polars' (Rust) regex: both read \xHH and \uHHHH.
CONTROL_PATTERN = r"[\x00-\x1f\x7f-\x9f\u2028\u2029]"
_CONTROL = re.compile(CONTROL_PATTERN)


def control_characters(text: str) -> list[str]:
    """The distinct control characters in ``text``, in the order they first occur."""
    return list(dict.fromkeys(_CONTROL.findall(text)))


def plain_text(field: str, value: object, into: str) -> str:
    """``value`` as text for a line of ``into`` (a crontab, a systemd unit, a Dockerfile, a shell);
    SlimlabError naming ``field`` when it holds a control character, which would end that line and
    start another (a newline above all). The one rule for every such boundary."""
    text = str(value)
    found = control_characters(text)
    if found:
        shown = ", ".join(repr(c) for c in found)
        raise SlimlabError(f"{field} {text!r} holds a control character ({shown}): refused, since {into} "
                           "would read it as the end of a line and the start of another")
    return text


def shown(text: object, keep_newlines: bool = False) -> str:
    """``text`` for a terminal or a single line: each control character written as its escape
    (ESC as ``\\x1b``, so a value cannot move the cursor or recolour what follows; a newline as
    ``\\n``, so it cannot make a line of its own), newlines kept in a multi-line block when
    ``keep_newlines``. For free text (a row's reason) read from a results file of elsewhere."""
    return _CONTROL.sub(lambda m: m.group() if keep_newlines and m.group() == "\n" else repr(m.group())[1:-1],
                        str(text))
