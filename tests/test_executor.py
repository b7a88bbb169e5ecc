"""The executor (slimlab.executor): preparation by a local process pool reads as one by one,
measurement never overlaps it, and a sweep killed while its workers build resumes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import polars as pl
import psutil
import pytest

import slimlab
from slimlab import executor as executor_
from slimlab.errors import SpecError
from slimlab.sweep import TRACE_ENV, sweep

from artifacts import go_program

SMALL = {"workloads": ["hello"], "profiles": ["default", "stripped"], "postlink": ["none", "strip"],
         "targets": ["linux/amd64"], "bases": ["none"], "repeats": 3, "warmup": 1}
# What differs from one sweep to the next whatever prepared it: times, and the run's name.
# what measuring decides, not preparing (the precision the starts reached, how many they took)
TIMED = ("startup_ms", "peak_rss", "emulator_peak", "ready_rss", "cgroup_peak", "nivcsw", "cpu_ms", "crosscheck_",
         "startup_precision", "precision_reached", "startup_n", "container_floor")


def comparable(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column a preparation decides (sizes, statuses, build info, sections, hardening), by variant."""
    dropped = [c for c in frame.columns if c.endswith("_seconds") or c.startswith(TIMED)
               or c in ("run_id", "measured_at")]
    return frame.drop(dropped).sort("variant_key")


def read_trace(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_local_pool_gives_the_sequential_rows_and_measures_only_after_preparing(tmp_path, monkeypatch):
    runs = {}
    for executor in ("sequential", "local"):
        monkeypatch.setenv(TRACE_ENV, str(tmp_path / f"{executor}.trace"))
        # Each from an empty artifact cache: whether a build was reused must read the same too.
        runs[executor] = sweep(SMALL, data_dir=tmp_path / "data", run_id=executor, cache_dir=tmp_path / executor,
                               progress=False, executor=executor, workers=2)
    sequential, local = (slimlab.load(runs[e]) for e in ("sequential", "local"))
    assert sequential.height == 4 and sequential["status"].to_list() == ["ok"] * 4
    assert sorted(sequential["build_cached"].to_list()) == [False, False, True, True]  # one build per profile
    assert comparable(local).equals(comparable(sequential), null_equal=True)
    manifest = slimlab.load_manifests(runs["local"])[0]["sessions"][-1]
    assert manifest["preparation"]["executor"] == "local" and manifest["preparation"]["workers"] == 2

    events = read_trace(tmp_path / "local.trace")
    prepared = [e for e in events if e["event"] == "prepare"]
    timed = [e for e in events if e["event"] != "prepare"]
    assert sorted(e["variant"] for e in prepared) == sorted(local["variant_key"].to_list())
    assert len({e["worker"] for e in prepared}) == 2, "both workers should have prepared variants"
    assert {e["event"] for e in timed} >= {"measure", "crosscheck"}
    # Every start, warm-up, timed or hyperfine's, began after the last preparation ended.
    assert min(e["start"] for e in timed) >= max(e["end"] for e in prepared)
    assert manifest["measurement"]["started_at"] >= manifest["preparation"]["ended_at"]


def test_a_sweep_killed_while_its_workers_build_resumes_with_one_row_per_variant(tmp_path):
    broken = go_program(tmp_path, "broken", "package main\n\nfunc main() { nope() }\n")
    spec = tmp_path / "spec.toml"
    spec.write_text(f'workloads = ["{broken}", "hello", "httpd"]\n'
                    'profiles = ["default", "stripped", "trimmed", "static"]\npostlink = ["none", "strip"]\n'
                    "repeats = 3\nwarmup = 0\n")
    data, run_dir = tmp_path / "data", tmp_path / "data" / "runs" / "r"
    argv = [sys.executable, "-m", "slimlab.cli", "sweep", str(spec), "--data", str(data), "--run-id", "r", "-q"]
    env = {**os.environ, "SLIMLAB_CACHE": str(tmp_path / "cache")}  # empty: every build runs

    killed = subprocess.Popen([*argv, "--executor", "local", "--workers", "2"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    journal = run_dir / "journal.jsonl"
    deadline = time.monotonic() + 300
    while not (journal.is_file() and '"kind": "row"' in journal.read_text()):  # the broken builds' rows
        assert killed.poll() is None, "the sweep ended before it could be killed: " + killed.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    workers = psutil.Process(killed.pid).children()
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    session = json.loads((run_dir / "manifest.json").read_text())["sessions"][-1]
    assert "preparation" not in session, "killed after preparation: too late to test this"
    assert len(workers) == 2
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"workers outlived the killed sweep: {alive}"
    before = {json.loads(line)["data"]["variant_key"]: json.loads(line)["data"]
              for line in journal.read_text().splitlines() if json.loads(line)["kind"] == "row"}

    # Resumed by another executor: how a run is prepared is not part of what it is.
    subprocess.run([*argv, "--executor", "sequential"], env=env, check=True, capture_output=True)
    df = slimlab.load(run_dir)
    assert df.height == 24 and df["variant_key"].n_unique() == 24
    assert sorted(df["status"].value_counts().rows()) == [("build_failed", 8), ("ok", 16)]
    for key, row in before.items():  # what was journaled before the kill stands
        assert df.filter(pl.col("variant_key") == key)["reason"].to_list() == [row["reason"]]
    assert slimlab.load_samples(run_dir).group_by("variant_key").len()["len"].to_list() == [3] * 16
    manifest = slimlab.load_manifests(run_dir)[0]
    assert [s.get("preparation", {}).get("executor") for s in manifest["sessions"]] == [None, "sequential"]


@pytest.mark.unit
def test_an_unknown_executor_is_refused_before_any_work(tmp_path):
    with pytest.raises(SpecError, match="did you mean 'local'"):
        sweep({**SMALL, "executor": "locl"}, data_dir=tmp_path)
    with pytest.raises(SpecError, match="dask-local"):
        sweep(SMALL, data_dir=tmp_path, executor="dask")  # a cluster needs its address
    with pytest.raises(SpecError, match="workers must be between 1"):
        sweep(SMALL, data_dir=tmp_path, workers=0)
    assert not (tmp_path / "runs").exists()


@pytest.mark.unit
def test_how_a_sweep_runs_is_not_part_of_its_spec():
    spec = slimlab.SweepSpec.load({**SMALL, "executor": "sequential", "workers": 3})
    assert spec.executor == "sequential" and spec.workers == 3
    assert "executor" not in spec.to_dict() and "workers" not in spec.to_dict()
    assert spec == slimlab.SweepSpec.load(SMALL)  # the same sweep: a run resumes under either


@contextlib.contextmanager
def killing_workers(names: set[str], deadline_s: float, limit: int | None = None, marker: str | None = None):
    """Meanwhile, a thread SIGKILLs this process's pool workers while one runs a process named in
    ``names`` (whose command line holds ``marker``, when given), up to ``limit`` times; yields
    the list of pids it killed, complete once the block ends."""
    killed: list[int] = []
    stop = threading.Event()

    def worker_running(process: psutil.Process) -> psutil.Process | None:
        """The pool worker (a Python process below this one) that ``process`` runs for."""
        for parent in process.parents():
            if parent.pid == os.getpid():
                return None
            if parent.name().startswith("python"):
                return parent
        return None

    def kill() -> None:
        deadline = time.monotonic() + deadline_s
        while not stop.is_set() and time.monotonic() < deadline and (limit is None or len(killed) < limit):
            for process in psutil.Process().children(recursive=True):
                try:
                    if process.name() not in names or (marker and not any(marker in a for a in process.cmdline())):
                        continue
                    worker = worker_running(process)
                except psutil.NoSuchProcess:
                    continue
                if worker is not None and worker.pid not in killed:
                    worker.kill()
                    killed.append(worker.pid)
                    break
            time.sleep(0.005)

    killer = threading.Thread(target=kill)
    killer.start()
    try:
        yield killed
    finally:
        stop.set()
        killer.join()


def test_a_local_worker_killed_while_building_loses_no_variant(tmp_path):
    spec = {**SMALL, "workloads": ["hello", "httpd"], "profiles": ["default", "stripped", "trimmed", "static"]}
    with killing_workers({"go", "compile", "link"}, 120, limit=1) as killed:
        run = sweep(spec, data_dir=tmp_path, run_id="r", cache_dir=tmp_path / "cache", progress=False,
                    executor="local", workers=2)
    assert len(killed) == 1, "no worker was caught building"
    df = slimlab.load(run)
    assert df.height == 16 and df["variant_key"].n_unique() == 16  # each variant once: none lost, none twice
    assert df["status"].to_list() == ["ok"] * 16, df.filter(df["status"] != "ok")["reason"].to_list()
    preparation = slimlab.load_manifests(run)[0]["sessions"][-1]["preparation"]
    assert preparation["restarts"] >= 1


def test_a_variant_whose_local_worker_dies_each_time_becomes_a_row_saying_so(tmp_path):
    # The go command of one workload only is killed with its worker, every time it is tried.
    doomed = go_program(tmp_path, "doomed", 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hi") }\n')
    spec = {**SMALL, "workloads": ["hello", str(doomed)], "profiles": ["default"], "postlink": ["none"]}
    with killing_workers({"go", "compile", "link"}, 240, marker="doomed") as killed:
        run = sweep(spec, data_dir=tmp_path, run_id="r", cache_dir=tmp_path / "cache", progress=False,
                    executor="local", workers=2)
    df = slimlab.load(run).sort("workload")
    assert df.height == 2
    assert len(killed) == executor_.ALLOWED_FAILURES
    doomed_row = df.filter(pl.col("workload") == str(doomed)).row(0, named=True)
    assert doomed_row["status"] == "broken"
    assert "worker process died while preparing it, 3 times" in doomed_row["reason"]
    assert df.filter(pl.col("workload") == "hello")["status"].to_list() == ["ok"]
