"""Real sweeps: adaptive sampling records the precision it reached, and identical shipped bytes
are timed once (same_binary_as)."""

from __future__ import annotations

import json

import polars as pl

import slimlab
from slimlab.results import manifest_noise_floors
from slimlab.sampling import relative_precision
from slimlab.sweep import TRACE_ENV

# trimmed's intents under another name: the same go build, so the same bytes (-trimpath, -buildid=).
TWIN = {"strip": True, "trimpath": True, "empty_buildid": True, "description": "trimmed, again"}


def test_identical_binaries_are_timed_once_and_share_their_samples(tmp_path, monkeypatch):
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv(TRACE_ENV, str(trace))
    spec = {"workloads": ["hello"], "profiles": ["default", "trimmed", "twin"],
            "custom_profiles": {"twin": TWIN},
            "min_repeats": 10, "max_repeats": 20, "precision": 0.5, "warmup": 0}
    run = slimlab.sweep(spec, data_dir=tmp_path / "data", progress=False)
    df = slimlab.load(run).sort("profile")
    assert df["status"].to_list() == ["ok"] * 3, df.select("variant_key", "reason")
    rows = {row["profile"]: row for row in df.iter_rows(named=True)}
    trimmed, twin, default = rows["trimmed"], rows["twin"], rows["default"]
    assert trimmed["binary_sha256"] == twin["binary_sha256"] != default["binary_sha256"]
    assert twin["same_binary_as"] == trimmed["variant_key"]
    assert trimmed["same_binary_as"] is None and default["same_binary_as"] is None
    measured = {json.loads(line)["variant"] for line in trace.read_text().splitlines()
                if json.loads(line)["event"] == "measure"}
    assert measured == {trimmed["variant_key"], default["variant_key"]}  # the twin was never started
    samples = slimlab.load_samples(run)
    assert samples.select("variant_key", "sample_index").is_duplicated().sum() == 0
    mine = {key: samples.filter(pl.col("variant_key") == key).sort("sample_index")["startup_ms"].to_list()
            for key in (trimmed["variant_key"], twin["variant_key"])}
    assert mine[twin["variant_key"]] == mine[trimmed["variant_key"]]
    for column in ("startup_n", "startup_ms_median", "startup_precision", "cpu_ms_median", "crosscheck_n"):
        assert twin[column] == trimmed[column], column
    # A variant went past min_repeats only when its first 10 starts had not reached ±50%.
    for row in rows.values():
        starts = samples.filter(pl.col("variant_key") == row["variant_key"]).sort("sample_index")
        starts = starts["startup_ms"]
        assert row["startup_n"] == len(starts) and 10 <= row["startup_n"] <= 20
        assert row["precision_target"] == 0.5
        assert row["precision_reached"] == (row["startup_precision"] <= 0.5)
        assert row["startup_n"] == 10 or relative_precision(starts[:10].to_list()) > 0.5
    (manifest,) = slimlab.load_manifests(run)
    floor = manifest["sessions"][-1]["measurement"]["noise_floor"]
    assert floor["pairs"] == 2 and floor["abs_change_median"] is not None  # 2 binaries, 2 bursts each
    assert manifest_noise_floors([manifest])[manifest["run_id"]] == floor


def test_a_variant_that_misses_the_target_says_so_and_stays_ok(tmp_path):
    spec = {"workloads": ["hello"], "profiles": ["default"], "min_repeats": 5, "max_repeats": 10,
            "precision": 0.001, "warmup": 0}  # ±0.1%: beyond any 10 starts on a shared host
    run = slimlab.sweep(spec, data_dir=tmp_path, progress=False)
    row = slimlab.load(run).row(0, named=True)
    assert row["status"] == "ok" and row["startup_n"] == 10 and row["precision_reached"] is False
    assert row["startup_precision"] > 0.001 and row["precision_target"] == 0.001
    assert row["startup_ms_ci_low"] <= row["startup_ms_median"] <= row["startup_ms_ci_high"]
