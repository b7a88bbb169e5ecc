"""The runs index (slimlab.history): written by real sweeps as they close, complete,
interrupted or failed; made again from the run directories; safe with two writers at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

import slimlab
from slimlab import environment, history

TINY = {"workloads": ["hello"], "profiles": ["default"], "repeats": 3, "warmup": 0}


def samples_taken(run_dir: Path) -> int:
    path = run_dir / "journal.jsonl"
    return path.read_text().count('"kind": "sample"') if path.exists() else 0


def stopped_sweep(tmp_path: Path, data: Path, run_id: str, stop: int) -> subprocess.CompletedProcess:
    """A real sweep in its own process (the CLI's), sent signal ``stop`` once it measures: SIGINT
    interrupts it, SIGUSR1 makes it raise an error."""
    spec = tmp_path / f"{run_id}.toml"
    spec.write_text('workloads = ["hello"]\nprofiles = ["default"]\nrepeats = 2000\nwarmup = 0\n')
    script = ("import signal, sys\n"
              "def stop(*_): raise RuntimeError('the disk is on fire')\n"
              "signal.signal(signal.SIGUSR1, stop)\n"
              "from slimlab.cli import main\n"
              f"sys.exit(main(['sweep', {str(spec)!r}, '--data', {str(data)!r}, '--run-id', {run_id!r}, '-q']))\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while samples_taken(data / "runs" / run_id) < 10:
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "the sweep never started measuring"
        time.sleep(0.05)
    proc.send_signal(stop)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_every_sweep_lands_in_the_index_and_a_rebuild_gives_the_same(tmp_path):
    data = tmp_path / "data"
    first = slimlab.load(slimlab.sweep(TINY, data_dir=data, run_id="a", progress=False))
    slimlab.sweep(TINY, data_dir=data, run_id="b", progress=False)
    slimlab.sweep({**TINY, "repeats": 4}, data_dir=data, run_id="c", progress=False)
    index = history.load_index(data)

    assert index["run_id"].to_list() == ["a", "b", "c"]
    assert index["status"].to_list() == ["complete"] * 3
    assert index["source"].to_list() == ["sweep"] * 3
    assert index["variants"].to_list() == [1, 1, 1] and index["n_ok"].to_list() == [1, 1, 1]
    assert index["n_build_failed"].to_list() == [0, 0, 0]
    # Same spec, same hash; another spec (repeats) another one.
    hashes = index["spec_hash"].to_list()
    assert hashes[0] == hashes[1] != hashes[2]
    assert hashes[0] == history.spec_hash(json.loads((data / "runs/a/manifest.json").read_text())["spec"])
    assert index["host_fingerprint"].unique().to_list() == [history.host_fingerprint(environment.host())]
    # b re-used a's binary; the tools are the manifest's, the compiler's the one that built.
    assert index["builds_cached"].to_list()[1] == 1
    tools = {t["name"]: t["version"] for t in index["tools"][0]}
    assert tools["toolchain:go"] == first["toolchain_version"][0]
    assert (index["ended_at"] > index["started_at"]).all()

    (data / history.INDEX).unlink()  # missing: made again from the run directories, the same
    assert history.load_index(data).equals(index)
    (data / history.INDEX).write_bytes(b"PAR1 torn")  # unreadable: the same
    assert history.load_index(data).equals(index)


def test_a_stale_index_is_rebuilt(tmp_path):
    data = tmp_path / "data"
    slimlab.sweep(TINY, data_dir=data, run_id="a", progress=False)
    slimlab.sweep(TINY, data_dir=data, run_id="b", progress=False)
    history.load_index(data).filter(pl.col("run_id") == "a").write_parquet(data / history.INDEX)  # lost b
    os.utime(data / history.INDEX, (time.time() - 60,) * 2)  # and older than b's manifest
    assert history.load_index(data)["run_id"].to_list() == ["a", "b"]
    # A run missing from a newer index (its sweep was killed, so never recorded itself): rebuilt too.
    history.load_index(data).filter(pl.col("run_id") == "a").write_parquet(data / history.INDEX)
    assert history.load_index(data)["run_id"].to_list() == ["a", "b"]


def test_an_interrupted_sweep_is_recorded_and_its_resume_completes_it(tmp_path):
    data = tmp_path / "data"
    done = stopped_sweep(tmp_path, data, "r", signal.SIGINT)
    assert done.returncode == 130, done.stderr
    row = history.load_index(data).row(0, named=True)
    assert (row["run_id"], row["status"], row["variants"], row["error"]) == ("r", "interrupted", 0, None)
    assert row["ended_at"] is not None  # the session's end: when it was interrupted
    # The index was written by the sweep itself (not rebuilt by the load above).
    assert pl.read_parquet(data / history.INDEX)["status"].to_list() == ["interrupted"]

    slimlab.sweep(tmp_path / "r.toml", data_dir=data, run_id="r", progress=False)  # resumes it
    row = history.load_index(data).row(0, named=True)
    assert (row["status"], row["n_ok"], history.load_index(data).height) == ("complete", 1, 1)


def test_a_sweep_that_raises_is_recorded_failed_with_why(tmp_path):
    data = tmp_path / "data"
    done = stopped_sweep(tmp_path, data, "f", signal.SIGUSR1)
    assert done.returncode != 0 and "the disk is on fire" in done.stderr
    row = pl.read_parquet(data / history.INDEX).row(0, named=True)
    assert row["status"] == "failed"
    assert row["error"] == "RuntimeError: the disk is on fire"
    assert history.rebuild_index(data).row(0, named=True)["error"] == row["error"]  # the manifest keeps it


WRITER = """
import os, sys, time
from datetime import datetime, timezone
from slimlab import history
who, n, data = sys.argv[1], int(sys.argv[2]), sys.argv[3]
while not os.path.exists(data + "/go"):  # both start writing at once
    time.sleep(0.005)  # (polling, not spinning: the machine has 2 cores)
for i in range(n):
    history.record(data, {"run_id": f"{who}-{i}", "status": "complete", "started_at": datetime.now(timezone.utc)})
"""
READER = """
import os, sys, time
from slimlab import history
data = sys.argv[1]
reads, seen, last = 0, 0, False
while not last:  # reads from before the writers start until after they are done, once more at the end
    last = os.path.exists(data + "/done")
    if os.path.exists(data + "/runs.parquet"):
        height = history.load_index(data).height
        assert height >= seen, (height, seen)  # never an older or a torn (rebuilt: empty) index
        reads, seen = reads + 1, height
print(reads)
"""


@pytest.mark.parametrize("writes", [40])
def test_two_writers_at_once_lose_nothing_and_readers_never_see_half_a_file(tmp_path, writes):
    data = tmp_path / "data"
    data.mkdir()
    reader = subprocess.Popen([sys.executable, "-c", READER, str(data)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, who, str(writes), str(data)], stderr=subprocess.PIPE,
                                text=True) for who in ("x", "y")]
    time.sleep(3)  # both imported slimlab and wait
    (data / "go").touch()
    for writer in writers:
        assert writer.wait(timeout=120) == 0, writer.stderr.read()
        assert "not updated" not in writer.stderr.read()
    (data / "done").touch()
    out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    assert "unreadable" not in err  # a torn read would have been rebuilt (and said so)
    assert int(out) > 0
    index = pl.read_parquet(data / history.INDEX)
    assert sorted(index["run_id"].to_list()) == sorted(f"{w}-{i}" for w in "xy" for i in range(writes))
    assert not list(data.glob(".runs.parquet.tmp*"))


def test_a_rerun_of_an_unchanged_spec_says_its_builds_came_from_the_cache(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text('workloads = ["hello"]\nprofiles = ["default", "stripped"]\nrepeats = 2\nwarmup = 0\n')
    env = {**os.environ, "SLIMLAB_CACHE": str(tmp_path / "cache")}  # nothing built yet

    def run(run_id: str) -> str:
        done = subprocess.run([sys.executable, "-m", "slimlab.cli", "sweep", str(spec), "--data", str(tmp_path / "d"),
                               "--run-id", run_id], env=env, capture_output=True, text=True, check=True)
        return done.stderr.splitlines()[-1]

    assert run("first") == "slimlab: 2 variants (2 ok); builds: 0 reused from the cache, 2 compiled"
    assert run("again") == "slimlab: 2 variants (2 ok); builds: 2 reused from the cache, 0 compiled"
    assert history.load_index(tmp_path / "d")["builds_cached"].to_list() == [0, 2]
