"""Scheduled runs: a notebook executed by cron (or a systemd timer) under a dated run id.

``slimlab schedule NOTEBOOK --every daily`` installs one entry that runs
``slimlab schedule NOTEBOOK --now ...`` (:func:`scheduled_run`): papermill executes the
notebook with ``run_id`` set to a dated id (when the notebook has that parameter) and
``data_dir`` to the data directory, the executed notebook and its HTML go to reports/, and
the run is recorded in the runs index (slimlab.history), failed or not. A failure ends that
run only: the entry stays, and cron starts the next one on time. Output goes to a log file
under DATA/scheduled/, so cron mails nothing and nothing is lost.

Entries are marked with a trailing shell comment ``# slimlab-schedule:ID`` (cron hands the
whole command line to ``/bin/sh``, for which it is a comment), so ``--list`` and ``--remove``
touch slimlab's lines only and keep the user's own. The id hashes what the entry runs:
scheduling the same thing twice replaces the entry instead of doubling it.

Where systemd runs as PID 1, a systemd timer (``slimlab-ID.timer``) is installed instead.

Every value that lands in an entry is refused when it holds a control character
(errors.plain_text: a newline would start a crontab line, or a unit setting, of its own), before
anything is written, and quoted for where it lands: shell quoting for cron's command, systemd's
own (double quotes, C escapes, ``%%`` and ``$$``) for a unit. A marked line that cannot be read
back (written before values were checked, or edited by hand) is skipped by ``--list`` with a
warning and still removed by its id, with the lines a split value spread it over.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from . import history
from .errors import SlimlabError, did_you_mean, plain_text
from .results import DATA_ENV, atomic_write_bytes, now_utc

MARK = "# slimlab-schedule:"
# Named schedules. Measurements are quietest at night: the named ones run at 03:00.
EVERY = {"hourly": "0 * * * *", "daily": "0 3 * * *", "weekly": "0 3 * * 1", "monthly": "0 3 1 * *"}
# cron fields: name, lowest, highest, names accepted
FIELDS = (("minute", 0, 59, ()), ("hour", 0, 23, ()), ("day of month", 1, 31, ()),
          ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")),
          ("day of week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")))
CRON_HELP = ("use hourly, daily, weekly, monthly or five cron fields 'MINUTE HOUR DAY MONTH WEEKDAY' "
             "such as '30 2 * * 1-5'")
CRON_INSTALL = "apt-get install cron"
SYSTEMD_INSTALL = "apt-get install systemd"
GO_BIN = "/usr/local/go/bin"  # Go is often installed outside apt, there (as the Makefile knows)


# -- when -------------------------------------------------------------------------------
def _value(text: str, low: int, high: int, names: tuple[str, ...], what: str) -> int:
    if text.lower() in names:
        return names.index(text.lower()) + low
    if not text.isdigit() or not low <= int(text) <= high:
        named = f" or {names[0]}-{names[-1]}" if names else ""
        raise ValueError(f"{what} {text!r} is not {low}-{high}{named}")
    return int(text)


def validate_cron(every: str) -> str:
    """The five cron fields of ``every`` (a name of EVERY or a cron expression); SlimlabError
    saying what is wrong, with a did-you-mean for a misspelt name, before anything is installed."""
    every = " ".join(str(every).split())
    if every in EVERY:
        return EVERY[every]
    fields = every.split(" ")
    if len(fields) != 5:
        hint = did_you_mean(every, EVERY) if len(fields) == 1 else ""
        raise SlimlabError(f"invalid schedule {every!r}{hint}: it has {len(fields)} field(s), cron needs 5; "
                           f"{CRON_HELP}")
    try:
        for text, (what, low, high, names) in zip(fields, FIELDS):
            for item in text.split(","):
                span, _, step = item.partition("/")
                if step and (not step.isdigit() or int(step) == 0):
                    raise ValueError(f"{what} step {step!r} is not a positive number")
                if span != "*":
                    first, _, last = span.partition("-")
                    if _value(first, low, high, names, what) > (_value(last, low, high, names, what) if last
                                                                 else high):
                        raise ValueError(f"{what} range {span!r} runs backwards")
    except ValueError as exc:
        raise SlimlabError(f"invalid schedule {every!r}: {exc}; {CRON_HELP}") from None
    return every


def on_calendar(cron: str) -> str:
    """systemd's OnCalendar= for five validated cron fields (``*/15`` -> ``0/15``, ``1-5`` -> ``1..5``).

    Unlike cron, systemd needs both day fields to match when both are set."""
    def part(text: str, index: int) -> str:
        _, low, _, names = FIELDS[index]
        out = []
        for item in text.split(","):
            span, _, step = item.partition("/")
            if span == "*":
                span = str(low) if step else "*"
            if index == 4:  # systemd names the weekdays
                days = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
                span = "..".join(days[_value(v, 0, 7, names, "")] for v in span.split("-"))
            else:
                span = "..".join(str(_value(v, low, 99, names, "")) for v in span.split("-")) if span != "*" else "*"
            out.append(span + (f"/{step}" if step else ""))
        return ",".join(out)

    minute, hour, day, month, weekday = cron.split()
    when = f"*-{part(month, 3)}-{part(day, 2)} {part(hour, 1)}:{part(minute, 0)}:00"
    return when if weekday == "*" else f"{part(weekday, 4)} {when}"


# -- what -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Entry:
    id: str
    cron: str
    notebook: str
    line: str  # the crontab line (lines, when a newline split it), or the timer's unit file
    malformed: str | None = None  # why its crontab line cannot be read back; None: well-formed


class ScheduleWarning(UserWarning):
    """A crontab line marked as slimlab's that cannot be read back (not written by this slimlab: a
    newline in a value split it, or a hand edit): skipped by --list, still removed by its id."""


def check_parameters(params) -> list[tuple[str, str]]:
    """The ``-p NAME VALUE`` pairs, checked: papermill writes ``NAME = VALUE`` into the notebook,
    so a name is a Python identifier; the value lands in a crontab line or a unit as text."""
    checked = []
    for name, value in params:
        name = plain_text("-p NAME", name, "a crontab or a systemd unit")
        if not name.isidentifier():
            raise SlimlabError(f"-p NAME {name!r} is not a notebook parameter name (a Python identifier, "
                               "such as run_id or greeting)")
        checked.append((name, plain_text(f"-p {name} VALUE", value, "a crontab or a systemd unit")))
    return checked


def _slimlab() -> list[str]:
    """This installation's own slimlab, by absolute path (cron's PATH does not have the venv)."""
    script = Path(sys.executable).with_name("slimlab")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "slimlab.cli"]


def _path() -> str:
    dirs = [str(Path(sys.executable).parent), *os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep), GO_BIN]
    return os.pathsep.join(dict.fromkeys(d for d in dirs if d))


def command(notebook: Path, data_dir: Path, reports: Path, params: list[tuple[str, str]]) -> tuple[str, str]:
    """The entry's id and its shell command: cd to where it was scheduled, PATH with Go, the
    scheduled run, its output appended to DATA/scheduled/ID.log. Every value is refused when it
    holds a control character (a newline would start a crontab line of its own) and shell-quoted."""
    into = "a crontab or a systemd unit"
    values = {"slimlab's own path": " ".join(_slimlab()), "the notebook's path": notebook, "--data": data_dir,
              "--reports": reports, "the working directory": os.getcwd(), "PATH": _path()}
    for field, value in values.items():
        plain_text(field, value, into)
    argv = [*_slimlab(), "schedule", str(notebook), "--now", "--data", str(data_dir), "--reports", str(reports)]
    for name, value in check_parameters(params):
        argv += ["-p", name, value]
    run = " ".join(shlex.quote(a) for a in argv)
    entry_id = hashlib.sha256(run.encode()).hexdigest()[:8]
    logs = data_dir / history.SCHEDULED
    line = (f"cd {shlex.quote(os.getcwd())} && mkdir -p {shlex.quote(str(logs))} && PATH={shlex.quote(_path())} "
            f"{run} >> {shlex.quote(str(logs / f'{entry_id}.log'))} 2>&1")
    return entry_id, line


# -- cron ---------------------------------------------------------------------------------
def _crontab() -> str:
    path = shutil.which("crontab")
    if path is None:
        raise SlimlabError(f"crontab is not installed, so nothing can be scheduled; install cron with: {CRON_INSTALL}")
    return path


def read_crontab() -> list[str]:
    done = subprocess.run([_crontab(), "-l"], capture_output=True, text=True)
    if done.returncode != 0:
        if "no crontab" in done.stderr:
            return []
        raise SlimlabError(f"crontab -l failed: {done.stderr.strip()}")
    return done.stdout.splitlines()


def write_crontab(lines: list[str]) -> None:
    done = subprocess.run([_crontab(), "-"], input="".join(f"{line}\n" for line in lines), capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise SlimlabError(f"crontab - refused the new table: {done.stderr.strip()}")


def cron_line(cron: str, line: str, entry_id: str) -> str:
    # In a crontab an unescaped % ends the command (the rest becomes its stdin).
    return f"{cron} {line.replace('%', chr(92) + '%')} {MARK}{entry_id}"


def cron_command(line: str) -> str:
    """What cron hands to ``/bin/sh -c`` for a crontab line: the text after the five time
    fields, ``\\%`` made ``%`` again."""
    return line.split(None, 5)[5].replace(chr(92) + "%", "%")


def _parse(line: str) -> Entry | None:
    """The entry of a crontab line marked as slimlab's (None: not marked); ValueError saying why
    a marked line cannot be read back."""
    if MARK not in line or line.lstrip().startswith("#"):
        return None
    entry_id = line.rsplit(MARK, 1)[1].strip()
    fields = line.split(None, 5)
    if len(fields) < 6:
        raise ValueError("it has no command after the five time fields")
    words = shlex.split(cron_command(line).rsplit(MARK, 1)[0])  # ValueError: No closing quotation
    # "schedule" followed by the notebook's path, and the entry's own log
    if "schedule" not in words[:-1] or not any(w.endswith(f"/{entry_id}.log") for w in words):
        raise ValueError("it is not a slimlab schedule command")
    return Entry(entry_id, " ".join(fields[:5]), words[words.index("schedule") + 1], line)


LOOK_BACK = 50  # lines before a malformed entry that a split value may have pushed its start to
# How every entry's command starts (schedule.command): five time fields, then `cd DIR && mkdir -p`.
# A split entry's first line has this shape; a user's line (an odd quote in it) never joins one.
_SHELL_WORD = r"(?:'[^']*'|\"[^\"]*\"|[^\s'\"])+"
ENTRY_START = re.compile(rf"^\s*(?:\S+\s+){{5}}cd {_SHELL_WORD} && mkdir -p ")


def _scan(lines: list[str]) -> list[tuple[range, Entry]]:
    """slimlab's entries of a crontab, each with the lines it spans. A marked line that cannot be
    read back is an entry with ``malformed`` set: when the unmarked lines just before it join with it
    into slimlab's command (a newline in a value split it), they are part of it, and so removed with it."""
    found = []
    for i, line in enumerate(lines):
        try:
            entry = _parse(line)
        except ValueError as exc:
            entry_id = line.rsplit(MARK, 1)[1].strip()
            span, entry = range(i, i + 1), Entry(entry_id, "?", "?", line, malformed=str(exc))
            for start in range(i - 1, max(-1, i - 1 - LOOK_BACK), -1):
                if MARK in lines[start]:
                    break
                if not ENTRY_START.match(lines[start]):
                    continue
                try:
                    joined = _parse("\n".join(lines[start:i + 1]))
                except ValueError:
                    continue
                if joined is not None:
                    span = range(start, i + 1)
                    entry = Entry(entry_id, joined.cron, joined.notebook, joined.line,
                                  malformed="a newline in a value split it over several lines")
                    break
        if entry is not None:
            found.append((span if entry.malformed else range(i, i + 1), entry))
    return found


def _warn_malformed(scanned: list[tuple[range, Entry]]) -> None:
    for span, entry in scanned:
        if entry.malformed:
            where = f"line {span[0] + 1}" if len(span) == 1 else f"lines {span[0] + 1}-{span[-1] + 1}"
            warnings.warn(f"the slimlab entry on crontab {where} is malformed ({entry.malformed}), skipped: "
                          f"{entry.line!r}; remove it with: slimlab schedule --remove {entry.id}",
                          ScheduleWarning, stacklevel=3)


def cron_daemon_running() -> bool:
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() in ("cron", "crond"):
                return True
        except OSError:
            continue
    return False


# -- systemd ------------------------------------------------------------------------------
BACKEND_ENV = "SLIMLAB_SCHEDULER"  # "cron" or "systemd": the back end, whatever runs as PID 1


def systemd_running() -> bool:
    """Timers are used when systemd is PID 1 (its own test, sd_booted(3)), unless $SLIMLAB_SCHEDULER
    says "cron" (or "systemd")."""
    chosen = os.environ.get(BACKEND_ENV)
    if chosen not in (None, "", "cron", "systemd"):
        raise SlimlabError(f"{BACKEND_ENV}={chosen!r}: valid values are 'cron' and 'systemd'")
    if chosen:
        return chosen == "systemd"
    return Path("/run/systemd/system").is_dir()


def _units() -> tuple[Path, list[str]]:
    if os.geteuid() == 0:
        return Path("/etc/systemd/system"), []
    return Path.home() / ".config/systemd/user", ["--user"]


def _systemctl(*args: str) -> None:
    path = shutil.which("systemctl")
    if path is None:
        raise SlimlabError(f"systemctl is not installed; install it with: {SYSTEMD_INSTALL}")
    done = subprocess.run([path, *_units()[1], *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SlimlabError(f"systemctl {' '.join(args)} failed: {done.stderr.strip()}")


def systemd_quote(word: str) -> str:
    """``word`` as one argument of a unit's ExecStart=, in systemd's own quoting: double quotes,
    backslash and double quote escaped (systemd unescapes C escapes inside quotes), % and $
    doubled (a specifier, a variable). A control character is refused: a newline ends the setting."""
    word = plain_text("a command", word, "a systemd unit")
    quoted = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{quoted}"'


TIMER_DESCRIPTION = re.compile(r"^Description=slimlab scheduled run of (.*) \(([^()]*)\)$", re.MULTILINE)


def timer_units(entry_id: str, cron: str, notebook: Path, line: str) -> dict[str, str]:
    """The service and timer unit files of one entry."""
    exec_start = f"/bin/sh -c {systemd_quote(line)}"
    name = plain_text("the notebook's path", notebook, "a systemd unit").replace("%", "%%")
    # The path never ends a line: a trailing backslash would continue the setting onto the next line.
    description = f"Description=slimlab scheduled run of {name} ({cron})"
    service = f"[Unit]\n{description}\n\n[Service]\nType=oneshot\nExecStart={exec_start}\n"
    timer = (f"[Unit]\n{description}\n\n[Timer]\n"
             f"OnCalendar={on_calendar(cron)}\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n")
    return {f"slimlab-{entry_id}.service": service, f"slimlab-{entry_id}.timer": timer}


# -- the commands ---------------------------------------------------------------------------
def install(notebook: str | Path, every: str, params: list[tuple[str, str]] = (), data_dir: str | Path = "data",
            reports: str | Path = "reports") -> Entry:
    """Install (or replace) the entry that runs ``notebook`` on schedule ``every``."""
    cron = validate_cron(plain_text("--every", every, "a crontab or a systemd unit"))
    params = check_parameters(params)
    for field, value in (("the notebook's path", notebook), ("--data", data_dir), ("--reports", reports)):
        plain_text(field, value, "a crontab or a systemd unit")  # before a path of it is looked at
    notebook = Path(notebook).resolve()
    if not notebook.is_file():
        raise SlimlabError(f"notebook not found: {notebook}")
    data_dir, reports = Path(data_dir).resolve(), Path(reports).resolve()
    entry_id, line = command(notebook, data_dir, reports, list(params))
    (data_dir / history.SCHEDULED).mkdir(parents=True, exist_ok=True)  # the log's directory
    if systemd_running():
        folder, _ = _units()
        folder.mkdir(parents=True, exist_ok=True)
        units = timer_units(entry_id, cron, notebook, line)
        for name, text in units.items():
            (folder / name).write_text(text)
        _systemctl("daemon-reload")
        _systemctl("enable", "--now", f"slimlab-{entry_id}.timer")
        return Entry(entry_id, cron, str(notebook), units[f"slimlab-{entry_id}.timer"])
    new = cron_line(cron, line, entry_id)
    lines = read_crontab()
    replaced = {i for span, entry in _scan(lines) if entry.id == entry_id for i in span}
    write_crontab([*(old for i, old in enumerate(lines) if i not in replaced), new])
    return Entry(entry_id, cron, str(notebook), new)


def entries() -> list[Entry]:
    if systemd_running():
        folder, _ = _units()
        found = []
        for timer in sorted(folder.glob("slimlab-*.timer")):
            text = timer.read_text()
            said = TIMER_DESCRIPTION.search(text)
            found.append(Entry(timer.stem.removeprefix("slimlab-"), said.group(2) if said else "?",
                               said.group(1).replace("%%", "%") if said else "?", text))
        return found
    scanned = _scan(read_crontab())
    _warn_malformed(scanned)
    return [entry for _, entry in scanned if not entry.malformed]


def remove(what: str) -> list[Entry]:
    """Remove the entries of id ``what`` or of the notebook ``what``, malformed ones too (all the
    lines each spans); the user's own lines stay."""
    systemd = systemd_running()
    lines = [] if systemd else read_crontab()
    scanned = [] if systemd else _scan(lines)
    found = entries() if systemd else [entry for _, entry in scanned]
    target = str(Path(what).resolve()) if not re.fullmatch(r"[0-9a-f]{8}", what) else None
    gone = [e for e in found if e.id == what or (target and e.notebook == target)]
    if not gone:
        names = [e.id for e in found] + [e.notebook for e in found]
        raise SlimlabError(f"no slimlab schedule {what!r}{did_you_mean(what, names)}; "
                           f"scheduled: {', '.join(f'{e.id} ({e.notebook})' for e in found) or 'nothing'}")
    ids = {e.id for e in gone}
    if systemd:
        folder, _ = _units()
        for entry_id in ids:
            _systemctl("disable", "--now", f"slimlab-{entry_id}.timer")
            for suffix in ("timer", "service"):
                (folder / f"slimlab-{entry_id}.{suffix}").unlink(missing_ok=True)
        _systemctl("daemon-reload")
    else:
        doomed = {i for span, entry in scanned if entry.id in ids for i in span}
        write_crontab([line for i, line in enumerate(lines) if i not in doomed])
    return gone


# -- one scheduled run --------------------------------------------------------------------
def _run_id(stem: str, data_dir: Path) -> str:
    """``NOTEBOOK-YYYYmmddTHHMMSSZ``, with a suffix when that second is taken already."""
    base = f"{stem}-{now_utc().strftime('%Y%m%dT%H%M%SZ')}"
    run_id, n = base, 1
    while (data_dir / "runs" / run_id).exists() or (data_dir / history.SCHEDULED / f"{run_id}.json").exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


@contextlib.contextmanager
def _data_env(data_dir: Path):
    """$SLIMLAB_DATA (slimlab.results.data_dir) set to ``data_dir`` for the kernel papermill starts."""
    before = os.environ.get(DATA_ENV)
    os.environ[DATA_ENV] = str(data_dir)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(DATA_ENV, None)
        else:
            os.environ[DATA_ENV] = before


def scheduled_run(notebook: str | Path, data_dir: str | Path, reports: str | Path,
                  params: dict | None = None) -> dict:
    """Execute ``notebook`` under a dated run id, keep the executed notebook and its HTML in
    ``reports``, record the run (failed or not) in the index; returns the index row."""
    import papermill

    from .notebook import export_html, run_notebook

    notebook, data_dir, reports = Path(notebook), Path(data_dir).resolve(), Path(reports)
    started = now_utc()
    run_id = _run_id(notebook.stem, data_dir)
    html, executed = reports / f"{run_id}.html", reports / f"{run_id}.ipynb"
    print(f"slimlab: scheduled run {run_id} of {notebook} started {started.isoformat()}", flush=True)
    status, error = "complete", None
    try:
        declared = papermill.inspect_notebook(str(notebook))
        given = dict(params or {})
        # The notebook's sweep (if any) runs under this id, so its row and this one are one run;
        # a notebook that reads results (run_path) reads this data directory.
        given.update({k: v for k, v in (("run_id", run_id), ("data_dir", str(data_dir)), ("run_path", str(data_dir)))
                      if k in declared and k not in given})
        with _data_env(data_dir):  # and so does any library call that is given no directory
            run_notebook(notebook, given, html, executed_ipynb=executed)
    except Exception as exc:  # noqa: BLE001 - whatever broke, this run is recorded as failed, with why
        status, error = "failed", str(exc) if isinstance(exc, SlimlabError) else f"{type(exc).__name__}: {exc}"
        if executed.is_file():  # the executed notebook has the traceback: its HTML shows it too
            try:
                export_html(executed, html)
            except Exception:  # noqa: BLE001 - the .ipynb is the record; the HTML is a convenience
                pass
    row = {"run_id": run_id, "source": "schedule", "status": status, "error": error,
           "started_at": started.isoformat(), "ended_at": now_utc().isoformat(),
           "notebook": str(notebook.resolve()), "executed_notebook": str(executed.resolve()) if executed.is_file()
           else None, "report": str(html.resolve()) if html.is_file() else None}
    folder = data_dir / history.SCHEDULED
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / f"{run_id}.json", json.dumps(row, indent=2).encode())  # what rebuild_index reads back
    run_dir = data_dir / "runs" / run_id
    swept = history.run_row(run_dir) if (run_dir / "manifest.json").is_file() else {}  # the notebook's sweep
    history.record(data_dir, {**swept, **{k: v for k, v in row.items() if v is not None}, "started_at": started,
                              "ended_at": datetime.fromisoformat(row["ended_at"])})
    print(f"slimlab: scheduled run {run_id}: {status}{f' ({error})' if error else ''}; "
          f"notebook {row['executed_notebook']}, report {row['report']}", flush=True)
    return row
