"""Whole sweeps over real programs: failures become rows, the sweep goes on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import slimlab
from artifacts import go_program
from slimlab.results_schema import RESULT_SCHEMA, SAMPLE_SCHEMA, SCHEMA_VERSION


def test_tiny_run_has_one_ok_row_per_variant(tiny_run):
    df = slimlab.load(tiny_run)
    assert df.height == 4
    assert df["variant_key"].n_unique() == 4
    assert df["status"].to_list() == ["ok"] * 4, df.select("variant_key", "reason")
    assert dict(df.schema) == RESULT_SCHEMA
    assert (df["startup_n"] == 5).all()
    assert df.filter(pl.col("workload") == "httpd")["ready_rss_kib_median"].is_not_null().all()
    assert df.filter(pl.col("workload") == "hello")["ready_rss_kib_median"].is_null().all()
    samples = slimlab.load_samples(tiny_run)
    assert dict(samples.schema) == SAMPLE_SCHEMA
    assert samples.height == 4 * 5
    # The summary is computed from the stored samples, not separately.
    for row in df.iter_rows(named=True):
        mine = samples.filter(pl.col("variant_key") == row["variant_key"])
        assert mine["startup_ms"].median() == pytest.approx(row["startup_ms_median"])
        assert mine["peak_rss_kib"].max() == row["peak_rss_kib_max"]


def test_manifest_records_environment(tiny_run):
    (manifest,) = slimlab.load_manifests(tiny_run)
    assert manifest["schema_version"] == SCHEMA_VERSION == 3
    assert manifest["spec"]["repeats"] == 5
    assert manifest["tools"]["toolchain:go"].startswith("go version go")
    assert manifest["host"]["cores"] == os.cpu_count()
    assert manifest["host"]["kernel"] == os.uname().release
    assert manifest["ended_at"] and manifest["started_at"] <= manifest["ended_at"]


def test_failures_are_rows_and_the_sweep_goes_on(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    broken = go_program(src, "nocompile", "package main\n\nfunc main() { undefinedThing() }\n")
    hang = go_program(src, "hang", """
        package main

        import "time"

        func main() { time.Sleep(time.Hour) }
        """)
    crash = go_program(src, "crash", 'package main\n\nfunc main() { panic("boom") }\n')
    wrong = go_program(src, "wrong", 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("bye") }\n',
                       manifest='kind = "cli"\nexpect_stdout = "hi\\n"\n')
    spec = {"workloads": [broken, hang, crash, wrong, "hello"], "repeats": 2, "warmup": 0, "run_timeout_s": 1.0}
    run = slimlab.sweep(spec, data_dir=tmp_path / "data", run_id="f", progress=False)
    rows = {r["workload"]: r for r in slimlab.load(run).iter_rows(named=True)}
    assert rows[broken]["status"] == "build_failed"
    assert "undefinedThing" in rows[broken]["reason"]
    assert rows[hang]["status"] == "timeout"
    assert rows[crash]["status"] == "broken"
    assert "exit 2" in rows[crash]["reason"] and "boom" in rows[crash]["reason"]
    assert rows[wrong]["status"] == "broken" and "'bye\\n'" in rows[wrong]["reason"]
    assert rows["hello"]["status"] == "ok"
    # The hung program was killed with its process group, not left behind.
    leftover = subprocess.run(["pgrep", "-f", str(Path(hang).name) + "$"], capture_output=True, text=True)
    assert not [p for p in leftover.stdout.split() if Path(f"/proc/{p}/exe").exists()
                and Path(f"/proc/{p}/exe").resolve().name == "hang"]


def test_missing_go_is_one_clear_error(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # a PATH with no go on it
    done = subprocess.run(
        [sys.executable, "-m", "slimlab.cli", "sweep", "default", "--data", str(tmp_path / "d")],
        capture_output=True, text=True, env=env,
    )
    assert done.returncode == 2
    assert "toolchain 'go' not found; install it with: apt-get install golang-go" in done.stderr
    assert not (tmp_path / "d").exists()  # nothing ran


def test_cli_typo_fails_before_work(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('workloads = ["hello"]\nprofiles = ["stripd"]\n')
    done = subprocess.run([sys.executable, "-m", "slimlab.cli", "sweep", str(spec), "--data", str(tmp_path / "d")],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "unknown profile 'stripd' (did you mean 'stripped'?)" in done.stderr
    assert not (tmp_path / "d").exists()


def test_cli_sweep_prints_the_run_dir_last(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('workloads = ["hello"]\nprofiles = ["stripped"]\nrepeats = 2\nwarmup = 0\n')
    done = subprocess.run(
        [sys.executable, "-m", "slimlab.cli", "sweep", str(spec), "--data", str(tmp_path / "d"), "--run-id", "x", "-q"],
        capture_output=True, text=True, check=True,
    )
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    assert run_dir == tmp_path / "d" / "runs" / "x"
    assert (run_dir / "results.parquet").is_file() and (run_dir / "manifest.json").is_file()


def test_unchanged_variants_are_not_rebuilt(tmp_path):
    spec = {"workloads": ["hello"], "profiles": ["trimmed"], "repeats": 1, "warmup": 0}
    first = slimlab.load(slimlab.sweep(spec, data_dir=tmp_path, run_id="a", progress=False))
    second = slimlab.load(slimlab.sweep(spec, data_dir=tmp_path, run_id="b", progress=False))
    assert second["build_cached"].to_list() == [True]
    assert second["size_bytes"].to_list() == first["size_bytes"].to_list()
    assert second["build_seconds"].to_list() == first["build_seconds"].to_list()


def test_a_changed_source_is_rebuilt(tmp_path):
    src = go_program(tmp_path, "prog", 'package main\n\nfunc main() { println("one") }\n')
    spec = {"workloads": [src], "repeats": 1, "warmup": 0}
    slimlab.sweep(spec, data_dir=tmp_path / "d", run_id="a", progress=False)
    (Path(src) / "main.go").write_text('package main\n\nfunc main() { println("two") }\n')
    again = slimlab.load(slimlab.sweep(spec, data_dir=tmp_path / "d", run_id="b", progress=False))
    assert again["build_cached"].to_list() == [False]


def test_resuming_with_another_spec_is_refused(tmp_path):
    spec = {"workloads": ["hello"], "profiles": ["stripped"], "repeats": 1, "warmup": 0}
    slimlab.sweep(spec, data_dir=tmp_path, run_id="r", progress=False)
    with pytest.raises(slimlab.SlimlabError, match="different spec"):
        slimlab.sweep({**spec, "repeats": 2}, data_dir=tmp_path, run_id="r", progress=False)
