"""A sweep killed with SIGKILL part-way loses nothing and resumes where it stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

import slimlab
from artifacts import go_program

REPEATS = 40


def journal(run_dir: Path) -> list[dict]:
    path = run_dir / "journal.jsonl"
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a line being written as we read
    return records


def test_sigkill_then_resume_measures_every_variant_exactly_once(tmp_path):
    src = go_program(tmp_path, "broken", "package main\n\nfunc main() { nope() }\n")
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'workloads = ["hello", "httpd", "{src}"]\nprofiles = ["default", "stripped"]\n'
        f"repeats = {REPEATS}\nwarmup = 1\n"
    )
    data, run_dir = tmp_path / "data", tmp_path / "data" / "runs" / "r"
    argv = [sys.executable, "-m", "slimlab.cli", "sweep", str(spec), "--data", str(data), "--run-id", "r", "-q"]

    sweep = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while sum(r["kind"] == "sample" for r in journal(run_dir)) < 30:
        assert sweep.poll() is None, "the sweep ended before it could be killed: " + sweep.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    sweep.send_signal(signal.SIGKILL)
    sweep.wait()
    before = journal(run_dir)
    rows_before = {r["data"]["variant_key"]: r["data"] for r in before if r["kind"] == "row"}
    samples_before = [r["data"] for r in before if r["kind"] == "sample"]
    assert rows_before, "the build failure should have been recorded before the kill"
    assert len(samples_before) < 4 * REPEATS, "killed too late to test resuming"

    # The launcher and the program it measured died with the sweep (the measured
    # binaries live in this session's cache, so only our own processes match).
    for _ in range(50):
        left = subprocess.run(["pgrep", "-f", os.environ["SLIMLAB_CACHE"]], capture_output=True, text=True).stdout
        if not left.split():
            break
        time.sleep(0.1)
    assert not left.split(), "processes outlived the killed sweep: " + left

    subprocess.run(argv, check=True, capture_output=True)

    df = slimlab.load(run_dir)
    assert df.height == 6 and df["variant_key"].n_unique() == 6  # 2 x 2 built + 2 build failures
    assert sorted(df["status"].to_list()) == ["build_failed"] * 2 + ["ok"] * 4
    samples = slimlab.load_samples(run_dir)
    per_variant = samples.group_by("variant_key").agg(pl.len(), pl.col("sample_index").n_unique().alias("unique"))
    assert per_variant["len"].to_list() == [REPEATS] * 4
    assert per_variant["unique"].to_list() == [REPEATS] * 4
    # Nothing measured before the kill was thrown away or redone.
    kept = {(s["variant_key"], s["sample_index"]): s["startup_ms"] for s in samples.iter_rows(named=True)}
    for s in samples_before:
        assert kept[(s["variant_key"], s["sample_index"])] == s["startup_ms"]
    for key, row in rows_before.items():
        assert df.filter(pl.col("variant_key") == key)["reason"].to_list() == [row["reason"]]
    manifest = slimlab.load_manifests(run_dir)[0]
    assert len(manifest["sessions"]) == 2 and manifest["ended_at"]


# Two kills that land in a narrow window, made exactly by editing the journal as a kill
# there would leave it: the real kill test above cannot aim that finely.
SMALL = {"workloads": ["hello"], "repeats": 3, "warmup": 0}


def test_killed_between_the_last_samples_and_the_row_the_variant_is_finished_on_resume(tmp_path):
    run_dir = slimlab.sweep(SMALL, data_dir=tmp_path, run_id="r", progress=False)
    path = run_dir / "journal.jsonl"
    kept = [line for line in path.read_text().splitlines() if json.loads(line)["kind"] != "row"]
    path.write_text("\n".join(kept) + "\n")  # every sample journaled, the row not yet
    slimlab.sweep(SMALL, data_dir=tmp_path, run_id="r", progress=False)
    (row,) = slimlab.load(run_dir).iter_rows(named=True)
    assert row["status"] == "ok" and row["startup_n"] == 3
    assert slimlab.load_samples(run_dir).height == 3  # finished from its samples, none retaken


def test_a_line_torn_by_a_kill_is_dropped_and_later_resumes_still_read_the_journal(tmp_path):
    run_dir = slimlab.sweep({**SMALL, "repeats": 2}, data_dir=tmp_path, run_id="r", progress=False)
    path = run_dir / "journal.jsonl"
    rows = [line for line in path.read_text().splitlines() if json.loads(line)["kind"] == "row"]
    kept = [line for line in path.read_text().splitlines() if json.loads(line)["kind"] != "row"]
    torn = rows[0][: len(rows[0]) // 2]
    path.write_text("\n".join(kept) + "\n" + torn)  # killed while writing the row
    for _ in range(3):  # each resume must read what the one before left
        slimlab.sweep({**SMALL, "repeats": 2}, data_dir=tmp_path, run_id="r", progress=False)
    assert torn not in path.read_text().splitlines()
    assert [r["status"] for r in slimlab.load(run_dir).iter_rows(named=True)] == ["ok"]
