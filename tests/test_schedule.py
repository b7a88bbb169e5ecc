"""Scheduled runs against this user's real crontab: install, list, run each entry's own
command line the way cron would (``/bin/sh -c`` with cron's bare environment), remove.
The crontab the user had is saved first and put back after, whatever happens."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import polars as pl
import pytest

from conftest import require
from slimlab import history, schedule
from slimlab.errors import SlimlabError

USER_LINES = ["# the user's own entries, which slimlab must keep", "17 4 * * * /bin/true  # nightly no-op",
              "MAILTO=''"]


@pytest.fixture
def user_crontab():
    """This user's crontab with USER_LINES in it; the original restored after the test."""
    crontab = require("crontab", schedule.CRON_INSTALL)
    saved = subprocess.run([crontab, "-l"], capture_output=True, text=True)
    original = saved.stdout if saved.returncode == 0 else None
    try:
        subprocess.run([crontab, "-"], input="\n".join([*(original or "").splitlines(), *USER_LINES]) + "\n",
                       text=True, check=True)
        yield crontab
    finally:
        if original is None:
            subprocess.run([crontab, "-r"], capture_output=True)
        else:
            subprocess.run([crontab, "-"], input=original, text=True, check=True)
    after = subprocess.run([crontab, "-l"], capture_output=True, text=True)
    restored = after.stdout if after.returncode == 0 else None
    assert restored == original, "the user's crontab was not restored"


def notebook(path: Path, code: str) -> Path:
    """A notebook with a parameters cell (run_id, data_dir) and one cell of ``code``."""
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    params = nbformat.v4.new_code_cell('run_id = None\ndata_dir = "data"\ngreeting = "hello"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(code)]
    nbformat.write(nb, path)
    return path


SWEEPS = """
import slimlab
print(greeting, "from", run_id)
slimlab.sweep({"workloads": ["hello"], "profiles": ["default"], "repeats": 3, "warmup": 0},
              data_dir=data_dir, run_id=run_id, progress=False)
"""
FAILS = 'print(greeting)\nraise RuntimeError("the scheduled notebook broke")'


def as_cron_runs(line: str, home: Path) -> subprocess.CompletedProcess:
    """The entry's command, as cron runs it: /bin/sh -c, cron's environment (PATH=/usr/bin:/bin).
    PYTHONPATH (a worktree's slimlab) and the session's artifact cache are passed on."""
    env = {"HOME": str(home), "LOGNAME": "root", "SHELL": "/bin/sh", "PATH": "/usr/bin:/bin",
           **{k: os.environ[k] for k in ("PYTHONPATH", "SLIMLAB_CACHE") if k in os.environ}}
    return subprocess.run(["/bin/sh", "-c", schedule.cron_command(line)], env=env, cwd=home, capture_output=True,
                          text=True, timeout=300)


def slimlab_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    # cron, even on a host where systemd is PID 1: this test is about the crontab
    return subprocess.run([sys.executable, "-m", "slimlab.cli", "schedule", *args], cwd=cwd, capture_output=True,
                          text=True, env={**os.environ, schedule.BACKEND_ENV: "cron"})


def crontab_lines(crontab: str) -> list[str]:
    return subprocess.run([crontab, "-l"], capture_output=True, text=True, check=True).stdout.splitlines()


def test_schedule_install_list_run_and_remove_with_the_real_crontab(user_crontab, tmp_path, monkeypatch):
    monkeypatch.setenv(schedule.BACKEND_ENV, "cron")
    before = crontab_lines(user_crontab)
    good = notebook(tmp_path / "nightly.ipynb", SWEEPS)
    bad = notebook(tmp_path / "broken.ipynb", FAILS)
    data, reports = tmp_path / "data", tmp_path / "reports"

    done = slimlab_cli(str(good), "--every", "daily", "-p", "greeting", "bonjour", "--data", str(data),
                       "--reports", str(reports), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "installed slimlab schedule" in done.stdout and "0 3 * * *" in done.stdout
    done = slimlab_cli("broken.ipynb", "--every", "*/30 2-5 * * mon-fri", "--data", "data", "--reports",
                       "reports", cwd=tmp_path)
    assert done.returncode == 0, done.stderr

    lines = crontab_lines(user_crontab)
    # (entries of this test only: another slimlab schedule of this user may exist)
    ours = [line for line in lines if schedule.MARK in line and str(tmp_path) in line]
    assert len(ours) == 2 and lines[: len(before)] == before  # added after the user's, none of theirs changed
    by_notebook = {entry.notebook: entry for entry in schedule.entries() if str(tmp_path) in entry.notebook}
    assert set(by_notebook) == {str(good), str(bad)}
    nightly, broken = by_notebook[str(good)], by_notebook[str(bad)]
    assert broken.cron == "*/30 2-5 * * mon-fri"
    listed = slimlab_cli("--list", cwd=tmp_path)
    assert nightly.id in listed.stdout and broken.id in listed.stdout and str(good) in listed.stdout
    # Absolute paths, Go on the PATH: the entry needs nothing of the shell that installed it.
    command = schedule.cron_command(nightly.line)
    assert str(data) in command and str(reports) in command and schedule.GO_BIN in command
    # Installing the same again replaces the entry instead of doubling it.
    assert slimlab_cli("broken.ipynb", "--every", "*/30 2-5 * * mon-fri", "--data", "data", "--reports",
                       "reports", cwd=tmp_path).returncode == 0
    assert len([line for line in crontab_lines(user_crontab) if schedule.MARK in line and str(tmp_path) in line]) == 2

    home = tmp_path / "home"
    home.mkdir()
    ran = as_cron_runs(nightly.line, home)
    assert ran.returncode == 0 and ran.stdout == ran.stderr == ""  # all of it went to the log
    failed = as_cron_runs(broken.line, home)
    assert failed.returncode == 1 and failed.stdout == failed.stderr == ""
    again = as_cron_runs(nightly.line, home)  # the next run still happens, under a new id
    assert again.returncode == 0

    index = history.load_index(data)
    assert index["source"].to_list() == ["schedule"] * 3
    ok = index.filter(pl.col("status") == "complete")
    assert ok.height == 2 and ok["run_id"].n_unique() == 2
    for row in ok.iter_rows(named=True):
        # The notebook's sweep ran under the scheduled run's id: one row with both.
        assert row["run_id"].startswith("nightly-") and row["n_ok"] == 1 and row["spec_hash"]
        executed = Path(row["executed_notebook"])
        assert executed.parent == reports and executed.is_file() and Path(row["report"]).is_file()
        assert f"bonjour from {row['run_id']}" in executed.read_text()
        assert f"bonjour from {row['run_id']}" in Path(row["report"]).read_text()
        assert (data / "runs" / row["run_id"] / "results.parquet").is_file()
    bad_row = index.filter(pl.col("status") == "failed").row(0, named=True)
    assert bad_row["run_id"].startswith("broken-") and bad_row["notebook"] == str(bad)
    assert "RuntimeError" in bad_row["error"] and "the scheduled notebook broke" in bad_row["error"]
    kept = json.loads(Path(bad_row["executed_notebook"]).read_text())
    outputs = [o for cell in kept["cells"] for o in cell.get("outputs", [])]
    assert any(o.get("ename") == "RuntimeError" and "broke" in o.get("evalue", "") for o in outputs)
    log = (data / history.SCHEDULED / f"{broken.id}.log").read_text()
    assert "failed" in log and "the scheduled notebook broke" in log
    # Everything above is in the run directories and the scheduled runs' records.
    rebuilt = history.rebuild_index(data)
    assert rebuilt.equals(index)

    assert slimlab_cli("--remove", nightly.id, cwd=tmp_path).returncode == 0
    assert [e.id for e in schedule.entries() if str(tmp_path) in e.notebook] == [broken.id]
    wrong = slimlab_cli("--remove", nightly.id, cwd=tmp_path)
    assert wrong.returncode == 2 and broken.id in wrong.stderr  # says what is scheduled
    assert slimlab_cli("--remove", "broken.ipynb", cwd=tmp_path).returncode == 0  # by notebook
    assert crontab_lines(user_crontab) == before


@pytest.mark.unit
def test_a_missing_crontab_names_the_install_command(hide_tools, tmp_path):
    hide_tools("crontab")
    nb = notebook(tmp_path / "n.ipynb", "pass")
    with pytest.raises(SlimlabError, match="apt-get install cron"):
        schedule.install(nb, "daily", data_dir=tmp_path / "data")
    with pytest.raises(SlimlabError, match="apt-get install cron"):
        schedule.entries()


@pytest.mark.unit
@pytest.mark.parametrize(("every", "expected"), [
    ("daily", "0 3 * * *"), ("weekly", "0 3 * * 1"), (" 30  2 * *  1-5 ", "30 2 * * 1-5"),
    ("*/15 * 1,15 jan-jun sun", "*/15 * 1,15 jan-jun sun"), ("0 0 * * 7", "0 0 * * 7")])
def test_valid_schedules(every, expected):
    assert schedule.validate_cron(every) == expected


@pytest.mark.unit
@pytest.mark.parametrize(("every", "says"), [
    ("dayly", "did you mean 'daily'"), ("weakly", "did you mean 'weekly'"), ("0 3 * *", "4 field(s)"),
    ("60 * * * *", "minute '60' is not 0-59"), ("0 24 * * *", "hour '24'"), ("0 0 0 * *", "day of month '0'"),
    ("0 0 * 13 *", "month '13'"), ("0 0 * * fri-mon", "runs backwards"), ("*/0 * * * *", "step '0'")])
def test_invalid_schedules_say_why_before_anything_is_installed(every, says):
    with pytest.raises(SlimlabError, match="use hourly, daily") as caught:
        schedule.validate_cron(every)
    assert says in str(caught.value)


@pytest.mark.parametrize(("cron", "normalized"), [
    ("0 3 * * *", "*-*-* 03:00:00"), ("*/15 2-5 * * mon-fri", "Mon..Fri *-*-* 02..05:00/15:00"),
    ("30 4 1,15 jan *", "*-01-01,15 04:30:00"), ("0 0 * * 0", "Sun *-*-* 00:00:00")])
def test_cron_schedules_become_systemd_calendars_it_accepts(cron, normalized):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (systemd; scripts/setup.sh does not install it)")
    done = subprocess.run([analyze, "calendar", schedule.on_calendar(cron)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"Normalized form: {normalized}" in done.stdout


def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (systemd; scripts/setup.sh does not install it)")
    nb = notebook(tmp_path / "it's 100% mine.ipynb", "pass")  # a quote, a space and a % in the path
    entry_id, line = schedule.command(nb, tmp_path / "data", tmp_path / "reports", [("greeting", "$HOME")])
    units = schedule.timer_units(entry_id, "*/15 2-5 * * mon-fri", nb, line)
    for name, text in units.items():
        (tmp_path / name).write_text(text)
    done = subprocess.run([analyze, "verify", "--man=no", *(str(tmp_path / name) for name in units)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    service = units[f"slimlab-{entry_id}.service"]
    assert "100% " not in service and "'$HOME'" not in service  # systemd would expand them


READS_THE_DATA_DIR = """
import slimlab.results
print("data dir:", slimlab.results.data_dir().resolve(), "run_path:", run_path)
assert slimlab.results.data_dir().resolve() == pathlib.Path(run_path).resolve()
"""


def test_a_scheduled_notebook_reads_the_scheduled_data_directory(tmp_path, monkeypatch):
    """A notebook given no directory (run_path None, the shipped notebooks' default) reads the
    data directory of the schedule, wherever its kernel runs."""
    monkeypatch.delenv("SLIMLAB_DATA", raising=False)
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    params = nbformat.v4.new_code_cell("run_path = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("import pathlib\n" + READS_THE_DATA_DIR)]
    path = tmp_path / "reads.ipynb"
    nbformat.write(nb, path)
    data = tmp_path / "elsewhere" / "data"
    row = schedule.scheduled_run(path, data, tmp_path / "reports")
    assert row["status"] == "complete", row["error"]
    assert f"data dir: {data.resolve()}" in Path(row["executed_notebook"]).read_text()
    assert "SLIMLAB_DATA" not in os.environ  # set for the run only


# -- values that reach a crontab line or a unit ----------------------------------------------
PWNED = "x\n* * * * * touch /tmp/PWNED #"  # the value: a second crontab line, run every minute


def test_a_newline_in_any_value_is_refused_before_anything_is_written(user_crontab, tmp_path):
    before = crontab_lines(user_crontab)
    nb = notebook(tmp_path / "n.ipynb", "pass")
    split_name = notebook(tmp_path / "n\nb.ipynb", "pass")  # a real file whose name holds a newline
    data = tmp_path / "data"
    control = "holds a control character"
    for args, says in [
        (["-p", "title", PWNED], f"-p title VALUE 'x\\n* * * * * touch /tmp/PWNED #' {control} ('\\n')"),
        (["-p", "ti\ntle", "x"], f"-p NAME 'ti\\ntle' {control}"),
        # papermill writes NAME = VALUE into the notebook: a name is an identifier
        (["-p", "title = 1; import os #", "x"], "is not a notebook parameter name"),
        (["--data", f"{data}\n0 * * * * true #"], f"--data '{data}\\n0 * * * * true #' {control}"),
        (["--reports", "reports\r"], f"--reports 'reports\\r' {control} ('\\r')"),
        (["--every", "daily\n* * * * * true"], f"--every 'daily\\n* * * * * true' {control}"),
    ]:
        done = slimlab_cli(str(nb), "--every", "hourly", "--data", str(data), *args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert says in done.stderr and "Traceback" not in done.stderr, (args, done.stderr)
    done = slimlab_cli(str(split_name), "--every", "hourly", "--data", str(data), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"the notebook's path {str(split_name)!r} {control}" in done.stderr
    assert crontab_lines(user_crontab) == before
    assert not data.exists()  # nothing written, not even the log's directory
    assert not Path("/tmp/PWNED").exists()


def test_shell_characters_in_a_value_reach_the_notebook_as_written(user_crontab, tmp_path, monkeypatch):
    monkeypatch.setenv(schedule.BACKEND_ENV, "cron")
    monkeypatch.chdir(tmp_path)  # where the entry cds to: a command that the quoting let out would run here
    canary = tmp_path / "ran"
    value = "$(touch ran) `touch ran`; touch ran 'quoted' \"double\" 100% \\back"
    nb = notebook(tmp_path / "n.ipynb", "print('greeting is', repr(greeting))")
    entry = schedule.install(nb, "daily", [("greeting", value)], data_dir=tmp_path / "data",
                             reports=tmp_path / "reports")
    assert entry.line in crontab_lines(user_crontab)
    home = tmp_path / "home"
    home.mkdir()
    assert as_cron_runs(entry.line, home).returncode == 0
    executed = nbformat.read(next((tmp_path / "reports").glob("*.ipynb")), as_version=4)
    printed = [o.get("text", "") for cell in executed.cells for o in cell.get("outputs", [])]
    assert f"greeting is {value!r}\n" in printed
    assert not canary.exists()
    schedule.remove(entry.id)


def as_main_wrote_it(nb: Path, data: Path, value: str) -> tuple[str, list[str]]:
    """The crontab lines slimlab wrote before values were checked, for ``-p title VALUE``: the
    shell-quoted value, newline and all, in one cron line (which the newline splits)."""
    entry_id, line = schedule.command(nb, data, data / "reports", [("title", "PLACEHOLDER")])
    line = line.replace("PLACEHOLDER", shlex.quote(value))
    return entry_id, schedule.cron_line("0 * * * *", line, entry_id).split("\n")


def test_list_and_remove_survive_malformed_entries(user_crontab, tmp_path):
    before = crontab_lines(user_crontab)
    data = tmp_path / "data"
    nb = notebook(tmp_path / "n.ipynb", "pass")
    injected_id, injected = as_main_wrote_it(nb, data, PWNED)
    assert len(injected) == 2 and injected[1].startswith("* * * * * touch /tmp/PWNED #'")
    broken = "0 3 * * * echo 'a hand edit with no closing quote # slimlab-schedule:0badc0de"
    subprocess.run([user_crontab, "-"], input="\n".join([*before, *injected, broken]) + "\n", text=True,
                   check=True)
    good = slimlab_cli(str(nb), "--every", "daily", "--data", str(data), cwd=tmp_path)
    assert good.returncode == 0, good.stderr  # installing reads the table too
    good_id = good.stdout.split()[3]

    listed = slimlab_cli("--list", cwd=tmp_path)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    assert good_id in listed.stdout and injected_id not in listed.stdout and "0badc0de" not in listed.stdout
    first = len(before) + 1
    assert f"crontab lines {first}-{first + 1} is malformed" in listed.stderr, listed.stderr
    assert f"crontab line {first + 2} is malformed" in listed.stderr
    assert f"--remove {injected_id}" in listed.stderr and "--remove 0badc0de" in listed.stderr

    removed = slimlab_cli("--remove", injected_id, cwd=tmp_path)
    assert removed.returncode == 0, removed.stderr
    lines = crontab_lines(user_crontab)
    assert not any("PWNED" in line for line in lines)  # both lines of the split entry are gone
    assert broken in lines and any(good_id in line for line in lines)
    assert slimlab_cli("--remove", "0badc0de", cwd=tmp_path).returncode == 0
    assert slimlab_cli("--remove", good_id, cwd=tmp_path).returncode == 0
    assert crontab_lines(user_crontab) == before


def test_systemd_reads_an_exec_start_word_back_as_written(tmp_path):
    """systemd's own parser (systemd-analyze verify names an executable it cannot run) reads
    the quoted word back: quotes, backslashes and % survive; a newline is refused."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (systemd; scripts/setup.sh does not install it)")
    word = "/nonexistent/it's \"100%\" \\q \\n end"
    unit = tmp_path / "word.service"
    unit.write_text(f"[Service]\nType=oneshot\nExecStart={schedule.systemd_quote(word)} arg\n")
    done = subprocess.run([analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True)
    assert f"Executable name contains special characters: {word}\n" in done.stderr, done.stderr
    assert "escape" not in done.stderr
    with pytest.raises(SlimlabError, match="control character"):
        schedule.systemd_quote("a\nExecStartPost=/bin/touch /tmp/PWNED")


def test_list_survives_a_marked_line_that_ends_at_schedule(user_crontab, tmp_path):
    """A marked line whose last word is ``schedule`` (a hand edit) is malformed, not a crash."""
    before = crontab_lines(user_crontab)
    cut = "0 3 * * * cd /tmp/0badc0de.log && slimlab schedule # slimlab-schedule:0badc0de"
    subprocess.run([user_crontab, "-"], input="\n".join([*before, cut]) + "\n", text=True, check=True)
    listed = slimlab_cli("--list", cwd=tmp_path)
    assert listed.returncode == 0 and "Traceback" not in listed.stderr, listed.stderr
    assert f"crontab line {len(before) + 1} is malformed" in listed.stderr, listed.stderr
    assert slimlab_cli("--remove", "0badc0de", cwd=tmp_path).returncode == 0
    assert crontab_lines(user_crontab) == before


def test_remove_keeps_a_users_line_with_an_odd_quote(user_crontab, tmp_path):
    """The second half of a split entry (its first line gone, by hand) after a user's line with an
    odd quote: the two would read as one slimlab command, but the user's line does not start as
    slimlab's do (``cd DIR && mkdir -p``), so removing the entry leaves it."""
    before = crontab_lines(user_crontab)
    nb = notebook(tmp_path / "n.ipynb", "pass")
    injected_id, injected = as_main_wrote_it(nb, tmp_path / "data", PWNED)
    users = "0 2 * * * cd /srv && slimlab schedule mine.ipynb --note it's"
    subprocess.run([user_crontab, "-"], input="\n".join([*before, users, injected[1]]) + "\n", text=True,
                   check=True)
    removed = slimlab_cli("--remove", injected_id, cwd=tmp_path)
    assert removed.returncode == 0, removed.stderr
    assert crontab_lines(user_crontab) == [*before, users]


def test_a_notebook_path_ending_in_a_backslash_ends_no_unit_line(tmp_path):
    """systemd continues a line that ends in a backslash onto the next one: the path never ends one."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (systemd; scripts/setup.sh does not install it)")
    nb = notebook(tmp_path / "mine (v2)\\", "pass")
    entry_id, line = schedule.command(nb, tmp_path / "data", tmp_path / "reports", [])
    units = schedule.timer_units(entry_id, "0 3 * * *", nb, line)
    for name, text in units.items():
        assert not any(unit_line.endswith("\\") for unit_line in text.splitlines()), text
        (tmp_path / name).write_text(text)
    done = subprocess.run([analyze, "verify", "--man=no", *(str(tmp_path / name) for name in units)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    said = schedule.TIMER_DESCRIPTION.search(units[f"slimlab-{entry_id}.timer"])
    assert said.groups() == (str(nb), "0 3 * * *")  # what --list reads back
