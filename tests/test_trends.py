"""Trends over a data directory's history: change points found where they happened and
attributed to what changed between the runs (slimlab.trends), shown in the report and
trends.ipynb. The history is written by the results store itself, one run directory per run."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from slimlab.results import RunStore
from slimlab.trends import PENALTY_BETA, detect, trends

RUNS = 12
UPGRADE_AT = 7  # the 8th run (index 7) is the first built with the new Go
SIZE_BEFORE = 2_310_144
SIZE_STEP = 1.08  # the upgrade's +8% on size
SPEC = {"workloads": ["hello", "httpd"], "toolchains": ["go"], "profiles": ["default"]}
T0 = datetime(2026, 1, 1, 3, 0, tzinfo=timezone.utc)


def _context(go: str, kernel: str) -> dict:
    return {
        "tools": {"python": "3.11.7", "slimlab": "0.1.0", "polars": "2.1.0",
                  "toolchain:go": f"go version {go} linux/amd64", "postlink:upx": "upx 4.2.2"},
        "host": {"hostname": "vm", "cpu_model": "Intel(R) Xeon(R) Processor", "machine": "x86_64",
                 "cores": 2, "kernel": kernel, "os": "Linux", "mem_total_kib": 24684096},
    }


def write_history(data_dir, seed: int = 10) -> list[str]:
    """RUNS runs a day apart; Go 1.25.5 -> 1.26.1 at UPGRADE_AT (hello's size +8%, httpd's
    unchanged), a kernel update at run 3 that changes nothing, start-up and RSS noisy
    throughout. Run ids sort opposite to time, so order must come from start times."""
    rng = np.random.default_rng(seed)
    ids = []
    for i in range(RUNS):
        go = "go1.25.5" if i < UPGRADE_AT else "go1.26.1"
        run_id = f"run-{RUNS - i:02d}"
        store = RunStore.open(data_dir, run_id, SPEC, _context(go, "6.1.0" if i < 3 else "6.1.7"))
        store.manifest["started_at"] = (T0 + timedelta(days=i)).isoformat()
        store.write_manifest()
        for workload, size in (("hello", SIZE_BEFORE * (SIZE_STEP if i >= UPGRADE_AT else 1)),
                               ("httpd", 7_654_321)):
            key = f"{workload}|go|default|linux/amd64|none|none"
            store.add_row({
                "schema_version": 3, "run_id": run_id, "variant_key": key, "workload": workload,
                "toolchain": "go", "profile": "default", "target": "linux/amd64", "postlink": "none",
                "base": "none", "status": "ok", "toolchain_version": f"go version {go} linux/amd64",
                "go_version": go, "size_bytes": int(size),
                "startup_ms_median": float(1.6 * (1 + 0.04 * rng.standard_normal())),
                "peak_rss_kib_median": float(1800 * (1 + 0.02 * rng.standard_normal())),
                "measured_at": (T0 + timedelta(days=i, minutes=5)).isoformat(),
            })
        store.close(ended=True)
        ids.append(run_id)
    return ids


def test_go_upgrade_is_found_at_its_run_and_attributed_to_go(tmp_path):
    ids = write_history(tmp_path)
    result = trends(tmp_path)
    # every run, in time order
    hello_size = result.series.filter(pl.col("workload") == "hello", pl.col("metric") == "size_bytes")
    assert hello_size["run_id"].to_list() == ids
    cps = result.change_points
    size_cps = cps.filter(pl.col("metric") == "size_bytes")
    assert size_cps.height == 1, size_cps
    cp = size_cps.row(0, named=True)
    assert cp["workload"] == "hello"
    assert (cp["run_before"], cp["run_after"]) == (ids[UPGRADE_AT - 1], ids[UPGRADE_AT])
    assert cp["relative_change"] == pytest.approx(SIZE_STEP - 1, abs=1e-4)
    assert cp["attributed_to"] == ["go"]
    assert "go_version: go1.25.5 → go1.26.1" in cp["causes"]
    # the noisy start-up and RSS series are flat: no change point, the kernel update included
    assert cps.filter(pl.col("metric") != "size_bytes").is_empty(), cps


def test_detection_rates_on_simulated_series():
    """The penalty's trade, measured: few false change points in flat noise, and a step of
    five noise widths found at its run."""
    rng = np.random.default_rng(1)
    trials = 300
    false = sum(bool(detect(1.6 * (1 + 0.04 * rng.standard_normal(RUNS)), "startup_ms_median"))
                for _ in range(trials))
    assert false / trials <= 0.06
    exact = 0
    for _ in range(trials):
        y = 1.6 * (1 + 0.04 * rng.standard_normal(RUNS))
        y[UPGRADE_AT:] *= 1.2
        exact += detect(y, "startup_ms_median", PENALTY_BETA) == [UPGRADE_AT]
    assert exact / trials >= 0.75
    # sizes are exact: one byte in a thousand at the last run is a change, less is not
    assert detect([1000] * 11 + [1008], "size_bytes") == [11]
    assert detect([100_000] * 11 + [100_001], "size_bytes") == []
