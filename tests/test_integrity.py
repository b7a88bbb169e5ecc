"""A run's data stays whole (issue 18, cases 4, 5, 7 and 8): one sweep writes a run at a time, a
full disk is the machine's fault and is retried, every damaged file is named with a way out, and
a huge spec asks first. Real sweeps, real mounts, real kills."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

import slimlab
from slimlab import history
from slimlab.faults import EXIT_CODE as MACHINE_EXIT
from slimlab.model import BUILTIN_PROFILES, CHAINS, TARGETS, SweepSpec, plan
from slimlab.results import JOURNAL, MANIFEST, RESULTS, SAMPLES, check_resumable
from slimlab.runlock import LOCK, RunLock

REPO = Path(__file__).resolve().parent.parent
REPEATS = 1000  # hello's starts take some 6 s: long enough to try a second sweep meanwhile
SPEC = 'workloads = ["hello"]\nprofiles = ["default", "stripped"]\nrepeats = 4\nwarmup = 1\n'


def slimlab_cli(*argv, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slimlab.cli", *map(str, argv)], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> tuple[Path, Path]:
    """(spec file, data dir) of a small finished run ``r``, to copy and damage."""
    root = tmp_path_factory.mktemp("finished")
    spec = root / "spec.toml"
    spec.write_text(SPEC)
    done = slimlab_cli("sweep", spec, "--data", root / "data", "--run-id", "r", "-q")
    assert done.returncode == 0, done.stderr
    return spec, root / "data"


@pytest.fixture
def run_copy(finished, tmp_path) -> tuple[Path, Path]:
    """(spec file, run directory) of a private copy of the finished run."""
    spec, data = finished
    shutil.copytree(data, tmp_path / "data")
    return spec, tmp_path / "data" / "runs" / "r"


@contextlib.contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False):
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}{',ro' if read_only else ''}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def journal_records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / JOURNAL).read_text().splitlines() if line.strip()]


# -- case 4: a run is locked ------------------------------------------------------------------
def test_a_second_sweep_of_a_run_being_written_is_refused_naming_the_holder_and_a_kill_frees_it(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(f'workloads = ["hello"]\nrepeats = {REPEATS}\nwarmup = 1\n')  # measures for seconds
    data, run_dir = tmp_path / "data", tmp_path / "data" / "runs" / "same"
    argv = [sys.executable, "-m", "slimlab.cli", "sweep", spec, "--data", data, "--run-id", "same", "-q"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen(list(map(str, argv)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 240
        while not ((run_dir / JOURNAL).is_file() and '"kind": "sample"' in (run_dir / JOURNAL).read_text()):
            assert first.poll() is None, first.stderr.read().decode()
            assert time.monotonic() < deadline, "the first sweep never started measuring"
            time.sleep(0.1)
        records = len(journal_records(run_dir))

        started = time.monotonic()
        second = slimlab_cli("sweep", spec, "--data", data, "--run-id", "same", "-q")
        assert second.returncode == 2, second.stderr
        assert f"pid {first.pid}" in second.stderr and "being written by another sweep" in second.stderr
        assert "Traceback" not in second.stderr
        assert time.monotonic() - started < 30  # refused before tools, builds or measurement
        assert first.poll() is None  # the holder goes on, undisturbed
        manifest = json.loads((run_dir / MANIFEST).read_text())
        assert len(manifest["sessions"]) == 1  # the refused sweep added no session
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert len(journal_records(run_dir)) >= records

    # The kernel released the killed holder's lock: the next sweep of the run id resumes it.
    resumed = slimlab_cli("sweep", spec, "--data", data, "--run-id", "same", "-q")
    assert resumed.returncode == 0, resumed.stderr
    samples = slimlab.load_samples(run_dir)
    assert samples.height == samples["sample_index"].n_unique() == REPEATS
    assert slimlab.load(run_dir)["startup_n"].to_list() == [REPEATS]


RACER = """
import sys, time
from pathlib import Path
from slimlab.runlock import RunLock, RunLocked
run_dir, errors, held = Path(sys.argv[1]), [], 0
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    try:
        lock = RunLock.acquire(run_dir)
    except RunLocked:
        continue
    except Exception as exc:
        errors.append(f"acquire: {type(exc).__name__}: {exc}")
        continue
    held += 1
    try:
        lock.release(drop_empty=True)
    except Exception as exc:
        errors.append(f"release: {type(exc).__name__}: {exc}")
print(held, len(errors), errors[:2])
"""


def test_sweeps_that_take_and_drop_an_empty_run_at_once_never_fail_on_its_vanishing_directory(tmp_path):
    """A refused sweep drops its empty run directory as another takes its lock: neither may see
    a FileNotFoundError (or a lock on a file nobody else sees)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(tmp_path / "runs" / "r"), "2"], env=env,
                               stdout=subprocess.PIPE, text=True) for _ in range(2)]
    said = [racer.communicate(timeout=60)[0].split(maxsplit=2) for racer in racers]
    assert all(int(held) > 100 for held, _, _ in said), said  # they did race
    assert [int(errors) for _, errors, _ in said] == [0, 0], said


def test_samples_that_repeat_an_index_are_an_error_and_repair_sets_their_variant_aside(run_copy):
    spec, run_dir = run_copy
    records = journal_records(run_dir)
    sample = next(r for r in records if r["kind"] == "sample")
    with open(run_dir / JOURNAL, "a") as fh:  # what two unlocked sweeps of one run id wrote on main
        fh.write(json.dumps(sample) + "\n")

    refused = slimlab_cli("sweep", spec, "--data", run_dir.parent.parent, "--run-id", "r", "-q")
    assert refused.returncode == 2, refused.stderr
    key = sample["data"]["variant_key"]
    assert "repeat a (variant_key, sample_index) pair" in refused.stderr and key in refused.stderr
    assert "slimlab repair" in refused.stderr and "Traceback" not in refused.stderr

    repaired = slimlab_cli("repair", run_dir)
    assert repaired.returncode == 0, repaired.stderr
    assert key in repaired.stdout
    resumed = slimlab_cli("sweep", spec, "--data", run_dir.parent.parent, "--run-id", "r", "-q")
    assert resumed.returncode == 0, resumed.stderr
    samples = slimlab.load_samples(run_dir)
    assert samples.height == samples.select("variant_key", "sample_index").n_unique() == 2 * 4
    assert slimlab.load(run_dir)["status"].to_list() == ["ok", "ok"]


# -- case 5: a full disk is the machine's fault ------------------------------------------------
def test_a_full_cache_disk_gives_machine_error_rows_a_failing_exit_and_a_resume_completes_them(tmp_path):
    from slimlab.measure import launcher_path

    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    data = tmp_path / "data"
    with tmpfs(tmp_path / "cache", "16m") as cache:
        launcher_path(cache)  # slimlab's own launcher fits; the builds will not
        free = os.statvfs(cache).f_bavail * os.statvfs(cache).f_frsize
        filler = cache / "filler"
        filler.write_bytes(b"\0" * (free - 1_000_000))  # 1 MB left: less than a hello binary
        full = slimlab_cli("sweep", spec, "--data", data, "--run-id", "r", "-q",
                           env={"SLIMLAB_CACHE": str(cache)})
        assert full.returncode == MACHINE_EXIT, full.stderr
        assert "the machine failed it" in full.stderr and "No space left on device" in full.stderr
        assert "--run-id r" in full.stderr and "Traceback" not in full.stderr
        rows = slimlab.load(data / "runs" / "r")
        assert rows.height >= 1 and set(rows["status"]) == {"machine_error"}, rows.select("status", "reason")
        assert all("ENOSPC" in reason for reason in rows["reason"])

        filler.unlink()
        resumed = slimlab_cli("sweep", spec, "--data", data, "--run-id", "r", "-q",
                              env={"SLIMLAB_CACHE": str(cache)})
        assert resumed.returncode == 0, resumed.stderr
    rows = slimlab.load(data / "runs" / "r")
    assert rows["status"].to_list() == ["ok", "ok"], rows.select("status", "reason")
    assert rows["startup_n"].to_list() == [4, 4]


def test_a_compile_error_quoting_a_full_disk_is_the_codes_build_failed_kept_not_machine_error(tmp_path):
    src = tmp_path / "quotes"
    src.mkdir()
    (src / "go.mod").write_text("module slimlab.example/quotes\n\ngo 1.21\n")
    # The compiler's error quotes the constant: the words of a full disk, on a disk with room.
    (src / "main.go").write_text('package main\n\nvar _ int = "write /x: no space left on device"\n\n'
                                 'func main() {}\n')
    (src / "workload.toml").write_text('kind = "cli"\n')
    spec = tmp_path / "spec.toml"
    spec.write_text(f'workloads = ["{src}"]\nprofiles = ["default"]\nrepeats = 2\nwarmup = 0\n')
    data = tmp_path / "data"
    for _attempt in range(2):  # the resume keeps the row: the variant's own fault, not retried
        done = slimlab_cli("sweep", spec, "--data", data, "--run-id", "q", "-q")
        assert done.returncode == 0, done.stderr
        rows = slimlab.load(data / "runs" / "q")
        assert rows["status"].to_list() == ["build_failed"], rows.select("status", "reason")
        assert "no space left on device" in rows["reason"][0]
    assert [r["kind"] for r in journal_records(data / "runs" / "q")].count("row") == 1


@pytest.mark.parametrize("read_only", [False, True])
def test_a_tools_words_of_a_full_or_read_only_disk_count_when_a_disk_the_sweep_writes_is_so(tmp_path,
                                                                                            read_only):
    from slimlab.faults import machine_cause

    words = "write /x: read-only file system" if read_only else "write /x: no space left on device"
    with tmpfs(tmp_path / "small", "16m", read_only=read_only) as small:
        assert machine_cause(words, [tmp_path, small]) == (
            f"Read-only file system (EROFS): {small} cannot be written" if read_only else
            f"No space left on device (ENOSPC): 16 MiB free on {small}")


def test_a_store_that_cannot_close_on_a_full_disk_still_lets_its_journal_and_lock_go(tmp_path):
    from slimlab.results import RunStore

    with tmpfs(tmp_path / "data", "1m") as data:
        store = RunStore.open(data, None, {"workloads": ["hello"]}, {"host": {}})  # the store takes the lock
        filler = data / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as fh:
            while True:
                fh.write(b"\0" * 65536)
        with pytest.raises(OSError, match="No space left on device"):
            store.close(ended=True)
        assert store._journal.closed
        RunLock.acquire(store.run_dir).release()  # a second open file: refused while the first holds it


def test_a_full_disk_before_a_run_exists_says_to_run_again_not_to_resume_an_id(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    with tmpfs(tmp_path / "cache", "1m") as cache:
        with contextlib.suppress(OSError), (cache / "filler").open("wb") as fh:
            while True:  # full before slimlab writes its first file there
                fh.write(b"\0" * 4096)
        # An automatic id (-q would have the CLI choose it): no run exists until the store makes it.
        full = slimlab_cli("sweep", spec, "--data", tmp_path / "data", env={"SLIMLAB_CACHE": str(cache)})
    assert full.returncode == MACHINE_EXIT, full.stderr
    assert "No space left on device" in full.stderr and "Traceback" not in full.stderr
    assert "nothing was measured yet" in full.stderr and "run the sweep again: slimlab sweep SPEC" in full.stderr
    assert "--run-id" not in full.stderr and "rows with status machine_error" not in full.stderr


# -- case 7: clear errors ----------------------------------------------------------------------
def test_a_300_character_run_id_is_refused_before_any_work(tmp_path):
    done = slimlab_cli("sweep", "baseline", "--data", tmp_path / "data", "--run-id", "x" * 300)
    assert done.returncode == 2, done.stderr
    assert "is 300 bytes long" in done.stderr and "at most 200 bytes" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "data").exists()
    with pytest.raises(slimlab.SlimlabError, match="300 bytes long"):
        check_resumable(tmp_path / "data", "é" * 150, {})


@pytest.mark.parametrize("which", ["data", "cache"])
def test_a_read_only_data_or_cache_directory_is_named_before_any_work(tmp_path, which):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as ro:
        data, env = (ro, {}) if which == "data" else (tmp_path / "data", {"SLIMLAB_CACHE": str(ro)})
        done = slimlab_cli("sweep", spec, "--data", data, "--run-id", "r", "-q", env=env)
    assert done.returncode == 2, done.stderr
    named = ro / "runs" if which == "data" else ro
    assert f"the {which} directory {named} is on a read-only file system" in done.stderr
    assert ("--data" if which == "data" else "SLIMLAB_CACHE") in done.stderr
    assert "Traceback" not in done.stderr


def test_a_truncated_manifest_is_named_with_how_to_recover(run_copy):
    spec, run_dir = run_copy
    manifest = run_dir / MANIFEST
    manifest.write_bytes(manifest.read_bytes()[:100])
    done = slimlab_cli("sweep", spec, "--data", run_dir.parent.parent, "--run-id", "r", "-q")
    assert done.returncode == 2, done.stderr
    assert f"{manifest}: not valid JSON" in done.stderr
    assert "restore manifest.json" in done.stderr and "start a new run id" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_report_of_truncated_tables_fails_naming_them_and_repair_rebuilds_them(run_copy, tmp_path):
    _spec, run_dir = run_copy
    for name in (RESULTS, SAMPLES):
        table = run_dir / name
        table.write_bytes(table.read_bytes()[:200])
    out = tmp_path / "report.html"
    done = slimlab_cli("report", run_dir, "--out", out)
    assert done.returncode != 0, done.stderr
    assert f"no results to report in {run_dir}" in done.stderr and f"{run_dir / RESULTS}" in done.stderr
    assert "slimlab repair" in done.stderr and not out.exists()

    assert slimlab_cli("repair", run_dir).returncode == 0
    again = slimlab_cli("report", run_dir, "--out", out)
    assert again.returncode == 0, again.stderr
    assert slimlab.load(run_dir).height == 2 and slimlab.load_samples(run_dir).height == 8


def test_a_report_that_loads_no_rows_exits_non_zero(run_copy, tmp_path):
    _spec, run_dir = run_copy
    for table in run_dir.glob("*.parquet"):  # a run that finished no variant yet
        table.unlink()
    done = slimlab_cli("report", run_dir, "--out", tmp_path / "report.html")
    assert done.returncode != 0 and "no results to report" in done.stderr, done.stderr
    assert not (tmp_path / "report.html").exists()


def test_a_corrupt_journal_line_is_named_and_repair_keeps_the_rest_for_a_resume(run_copy):
    spec, run_dir = run_copy
    lines = (run_dir / JOURNAL).read_text().splitlines(keepends=True)
    row_at = next(n for n, line in enumerate(lines) if '"kind": "row"' in line)
    lines[row_at] = lines[row_at][:40] + "\n"  # the first variant's row, cut in the middle of the journal
    assert row_at < len(lines) - 1
    (run_dir / JOURNAL).write_text("".join(lines))

    refused = slimlab_cli("sweep", spec, "--data", run_dir.parent.parent, "--run-id", "r", "-q")
    assert refused.returncode == 2, refused.stderr
    assert f"{run_dir / JOURNAL}:{row_at + 1} is corrupt" in refused.stderr
    assert f"slimlab repair {run_dir}" in refused.stderr

    repaired = slimlab_cli("repair", run_dir)
    assert repaired.returncode == 0, repaired.stderr
    assert "moved 1 lines aside" in repaired.stdout
    aside = list(run_dir.glob("journal-set-aside-*.jsonl"))
    assert len(aside) == 1 and aside[0].read_text() == lines[row_at]
    assert slimlab.load(run_dir).height == 1  # the other variant's row survived

    resumed = slimlab_cli("sweep", spec, "--data", run_dir.parent.parent, "--run-id", "r", "-q")
    assert resumed.returncode == 0, resumed.stderr
    rows = slimlab.load(run_dir)
    assert rows["status"].to_list() == ["ok", "ok"]


@pytest.mark.parametrize(("damage", "said"), [
    (b'{"kind": "row", "data": {"variant_key": "caf\xe9"}}\n', "not UTF-8 text"),  # Latin-1 bytes
    (b'{"data": {"variant_key": "x"}}\n', "a record of kind None"),
])
def test_a_journal_line_that_is_no_record_is_named_with_the_repair_for_it(run_copy, damage, said):
    spec, run_dir = run_copy
    lines = (run_dir / JOURNAL).read_bytes().splitlines(keepends=True)
    lines.insert(1, damage)  # in the middle: not a torn last line
    (run_dir / JOURNAL).write_bytes(b"".join(lines))

    refused = slimlab_cli("sweep", spec, "--data", run_dir.parent.parent, "--run-id", "r", "-q")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    assert f"{run_dir / JOURNAL}:2 is corrupt ({said}" in refused.stderr, refused.stderr
    assert f"slimlab repair {run_dir}" in refused.stderr

    repaired = slimlab_cli("repair", run_dir)
    assert repaired.returncode == 0 and "moved 1 lines aside" in repaired.stdout, repaired.stderr
    resumed = slimlab_cli("sweep", spec, "--data", run_dir.parent.parent, "--run-id", "r", "-q")
    assert resumed.returncode == 0, resumed.stderr


@pytest.mark.parametrize("where", ["missing", "empty", "data"])
def test_repair_of_a_path_that_is_no_run_is_refused_and_makes_nothing(finished, tmp_path, where):
    path = {"missing": tmp_path / "no" / "such-run", "empty": tmp_path / "empty",
            "data": finished[1]}[where]  # a data directory, not one of its runs
    if where == "empty":
        path.mkdir()
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    data_before = sorted(p.name for p in finished[1].iterdir())
    refused = slimlab_cli("repair", path)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "is not a run directory" in refused.stderr and "Traceback" not in refused.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert sorted(p.name for p in finished[1].iterdir()) == data_before


def test_a_run_made_before_the_container_limits_is_refused_naming_the_settings_it_lacks(run_copy):
    spec, run_dir = run_copy
    manifest = json.loads((run_dir / MANIFEST).read_text())
    for added in ("memory_limit_mb", "pids_limit"):  # what a manifest written before issue 18 lacks
        del manifest["spec"][added]
    (run_dir / MANIFEST).write_text(json.dumps(manifest))
    refused = slimlab_cli("sweep", spec, "--data", run_dir.parent.parent, "--run-id", "r", "-q")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
    said = refused.stderr
    assert "memory_limit_mb, pids_limit are settings this slimlab added" in said, said
    assert "measured without them" in said and "start a new run id" in said
    assert "differs in" not in said  # nothing else changed


def test_a_resume_with_a_changed_setting_names_it_with_both_values(run_copy, tmp_path):
    shared, run_dir = run_copy
    spec = tmp_path / "changed.toml"  # the module's spec file stays as it is
    spec.write_text(shared.read_text().replace("repeats = 4", "repeats = 5"))
    refused = slimlab_cli("sweep", spec, "--data", run_dir.parent.parent, "--run-id", "r", "-q")
    assert refused.returncode == 2, refused.stderr
    assert "differs in repeats (4 then, 5 now)" in refused.stderr, refused.stderr
    assert "settings this slimlab added" not in refused.stderr


def test_a_tmp_file_left_by_a_kill_during_a_table_write_is_removed_on_the_next_open(run_copy):
    spec, run_dir = run_copy
    results = (run_dir / RESULTS).read_bytes()
    left = run_dir / f".{RESULTS}.tmp4242"  # as slimlab.results.atomic_write_parquet names them
    left.write_bytes(results[: len(results) // 2])
    resumed = slimlab_cli("sweep", spec, "--data", run_dir.parent.parent, "--run-id", "r", "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert not left.exists()
    assert not list(run_dir.glob(".*.tmp*"))
    assert sorted(p.name for p in run_dir.iterdir() if p.name.startswith(".")) == [LOCK]


# -- case 8: a huge spec asks first ------------------------------------------------------------
BIG = {"workloads": ["hello", "httpd"], "profiles": list(BUILTIN_PROFILES), "postlink": list(CHAINS),
       "targets": list(TARGETS)}


def big_spec(path: Path, **extra) -> tuple[Path, int]:
    table = {**BIG, **extra}
    path.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in table.items()))
    return path, len(plan(table).variants)


def test_a_spec_of_more_than_max_variants_is_refused_with_its_count_and_time(tmp_path, finished):
    spec, count = big_spec(tmp_path / "big.toml")
    assert count > 2000
    data = tmp_path / "data"
    done = slimlab_cli("sweep", spec, "--data", data, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"expands to {count:,} variants, more than max_variants (2,000)" in done.stderr
    assert "about 1 h" in done.stderr and "s a variant" in done.stderr and "--yes" in done.stderr
    assert not data.exists()  # before any work

    # With finished runs in the data directory, their measured rate is what the estimate uses.
    _spec, measured = finished
    rated = slimlab_cli("sweep", spec, "--data", measured, timeout=120)
    assert rated.returncode == 2 and f"as the finished runs of {measured} took" in rated.stderr, rated.stderr


def test_yes_or_the_specs_max_variants_let_a_big_spec_through(tmp_path):
    data = tmp_path / "data"
    held = RunLock.acquire(data / "runs" / "held")  # the sweeps let through stop here, before any work
    try:
        spec, count = big_spec(tmp_path / "big.toml")
        allowed, _ = big_spec(tmp_path / "allowed.toml", max_variants=count)
        for argv in ((spec, "--yes"), (allowed,)):
            done = slimlab_cli("sweep", *argv, "--data", data, "--run-id", "held", timeout=120)
            assert done.returncode == 2 and "being written by another sweep" in done.stderr, done.stderr
            assert "max_variants" not in done.stderr
    finally:
        held.release()


def _indexed_run(data: Path, run_id: str, sessions: list[tuple[str, str]], variants: int) -> None:
    """A finished run directory as a sweep leaves it (its manifest's sessions, its results' statuses)."""
    run_dir = data / "runs" / run_id
    run_dir.mkdir(parents=True)
    manifest = {"run_id": run_id, "spec": {"workloads": ["hello"]}, "started_at": sessions[0][0],
                "ended_at": sessions[-1][1], "host": {}, "tools": {},
                "sessions": [{"started_at": start, "ended_at": end} for start, end in sessions]}
    (run_dir / MANIFEST).write_text(json.dumps(manifest))
    results = pl.DataFrame({"status": ["ok"] * variants, "build_cached": [True] * variants})
    results.write_parquet(run_dir / RESULTS)


@pytest.mark.unit
def test_the_time_a_variant_takes_counts_a_resumed_runs_sessions_not_the_days_between(tmp_path):
    data = tmp_path / "data"
    _indexed_run(data, "once", [("2025-01-01T10:00:00+00:00", "2025-01-01T10:00:20+00:00")], 4)
    _indexed_run(data, "resumed", [("2025-01-01T10:00:00+00:00", "2025-01-01T10:00:10+00:00"),
                                   ("2025-01-04T10:00:00+00:00", "2025-01-04T10:00:30+00:00")], 4)
    _indexed_run(data, "again", [("2025-01-05T10:00:00+00:00", "2025-01-05T10:00:24+00:00")], 4)
    history.rebuild_index(data)
    # 5, 10 and 6 s a variant: the median, not three days over twelve variants.
    assert history.seconds_per_variant(data) == pytest.approx(6.0)


@pytest.mark.unit
def test_max_variants_is_not_part_of_the_specs_identity(tmp_path):
    base = {"workloads": ["hello"]}
    a, b = SweepSpec.from_dict(base), SweepSpec.from_dict({**base, "max_variants": 50_000})
    assert b.max_variants == 50_000 and a.max_variants == 2000
    assert a == b and a.to_dict() == b.to_dict() and "max_variants" not in b.to_dict()
    with pytest.raises(slimlab.SlimlabError, match="max_variants must be a whole number"):
        SweepSpec.from_dict({**base, "max_variants": "many"})


@pytest.mark.unit
def test_a_runs_index_written_before_machine_error_still_loads(tmp_path):
    old = {name: dtype for name, dtype in history.INDEX_SCHEMA.items() if name != "n_machine_error"}
    pl.DataFrame([{"run_id": "old", "status": "complete", "variants": 3, "n_ok": 3}], schema=old) \
        .write_parquet(tmp_path / history.INDEX)
    index = history.load_index(tmp_path)
    assert index.columns == list(history.INDEX_SCHEMA)
    assert index.row(0, named=True)["n_ok"] == 3 and index["n_machine_error"].to_list() == [None]


@pytest.mark.unit
def test_a_programs_own_words_are_not_a_machine_fault():
    from slimlab.faults import machine_cause
    # A program writing to its read-only root says so itself: the variant's doing, not the machine's.
    assert machine_cause("exit 1: open /data/out: read-only file system", None, program_output=True) is None
    assert machine_cause("measure: OSError: [Errno 28] No space left on device", None, program_output=True) \
        .startswith("No space left on device")
    assert machine_cause("go build: write /cache/a.out: no space left on device", None).startswith("No space")


@pytest.mark.unit
def test_a_tools_words_of_a_full_or_read_only_disk_count_only_when_the_disk_is_so(tmp_path):
    from slimlab.faults import LOW_SPACE_BYTES, machine_cause

    room = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    assert room > LOW_SPACE_BYTES, "the test needs a temp dir with room"
    # A compile error may quote the words: with room and a writable disk, they are the code's.
    assert machine_cause("./main.go:3:7: undefined: x // no space left on device", [tmp_path]) is None
    assert machine_cause('main.go:1: "read-only file system" is not a type', [tmp_path]) is None
    # slimlab's own OSError is the machine's word, whatever the disk says now.
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert machine_cause(full, [tmp_path]).startswith("No space left on device (ENOSPC)")
    # A directory not made yet is judged by its nearest parent.
    assert machine_cause("no space left on device", [tmp_path / "not" / "yet"]) is None


@pytest.mark.unit
def test_too_many_open_files_in_system_is_enfile_not_emfile():
    from slimlab.faults import machine_cause

    enfile = machine_cause("open /x: too many open files in system", [])
    assert enfile == "Too many open files in system (ENFILE)"
    assert machine_cause("open /x: too many open files", []) == "Too many open files (EMFILE)"


@pytest.mark.unit
def test_the_stop_message_says_rows_only_where_they_were_written_and_a_resume_only_of_a_run():
    from slimlab.faults import stopped_message

    failed_variants = stopped_message("ENOSPC", "r")
    assert "are rows with status machine_error" in failed_variants and "--run-id r" in failed_variants
    while_closing = stopped_message("ENOSPC", "r", rows=False)
    assert "machine_error" not in while_closing and "resume: slimlab sweep SPEC --run-id r" in while_closing
    before_any_run = stopped_message("ENOSPC", None, rows=False, started=False)
    assert "nothing was measured yet" in before_any_run and "--run-id" not in before_any_run
