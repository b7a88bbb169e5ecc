"""Trends over a data directory's history: change points found where they happened and
attributed to what changed between the runs (slimlab.trends), shown in the report and
trends.ipynb. The history is written by the results store itself, one run directory per run."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import browser
import numpy as np
import polars as pl
import pytest

from slimlab.cli import main
from slimlab.errors import SlimlabError
from slimlab.report import figures
from slimlab.report.trends import MAX_LINES, trends_figures
from slimlab.results import RunStore
from slimlab.results_schema import RESULT_SCHEMA
from slimlab.trends import PENALTY_BETA, detect, trends

REPO = Path(__file__).resolve().parent.parent
# A label that would run script if a report let it through as markup.
HOSTILE = "<img src=x onerror=\"document.body.appendChild(document.createElement('i')).id='pwned'\">"

RUNS = 12
UPGRADE_AT = 7  # the 8th run (index 7) is the first built with the new Go
SIZE_BEFORE = 2_310_144
SIZE_STEP = 1.08  # the upgrade's +8% on size
SPEC = {"workloads": ["hello", "httpd"], "toolchains": ["go"], "profiles": ["default"]}
T0 = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)


def _context(go: str, kernel: str) -> dict:
    return {
        "tools": {"python": "3.11.7", "slimlab": "0.1.0", "polars": "2.1.0",
                  "toolchain:go": f"go version {go} linux/amd64", "postlink:upx": "upx 4.2.2"},
        "host": {"hostname": "vm", "cpu_model": "Intel(R) Xeon(R) Processor", "machine": "x86_64",
                 "cores": 2, "kernel": kernel, "os": "Linux", "mem_total_kib": 24684096},
    }


BASE_UPDATE_AT = 4  # images only: the base's libc6 updated, the base 400 kB larger


def write_history(data_dir, seed: int = 10, workloads=("hello", "httpd"), images: bool = False) -> list[str]:
    """RUNS runs a day apart; Go 1.25.5 -> 1.26.1 at UPGRADE_AT (the first workload's size +8%,
    the second's unchanged), a kernel update at run 3 that changes nothing, start-up and RSS
    noisy throughout. Run ids sort opposite to time, so order must come from start times."""
    rng = np.random.default_rng(seed)
    ids = []
    for i in range(RUNS):
        go = "go1.25.5" if i < UPGRADE_AT else "go1.26.1"
        run_id = f"run-{RUNS - i:02d}"
        store = RunStore.open(data_dir, run_id, SPEC, _context(go, "6.1.0" if i < 3 else "6.1.7"))
        store.manifest["started_at"] = (T0 + timedelta(days=i)).isoformat()
        store.write_manifest()
        for workload, size in ((workloads[0], SIZE_BEFORE * (SIZE_STEP if i >= UPGRADE_AT else 1)),
                               (workloads[1], 7_654_321)):
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
        if images:  # the first workload's binary on a base whose packages are updated once
            size = int(SIZE_BEFORE * (SIZE_STEP if i >= UPGRADE_AT else 1))
            libc = "libc6=2.36-9+deb12u4" if i < BASE_UPDATE_AT else "libc6=2.36-9+deb12u13"
            store.add_row({
                "schema_version": 3, "run_id": run_id, "workload": workloads[0], "base": "static",
                "variant_key": f"{workloads[0]}|go|default|linux/amd64|none|static", "status": "ok", "go_version": go,
                "toolchain_version": f"go version {go} linux/amd64", "size_bytes": size,
                "base_packages": ["base-files=12.4+deb12u12", libc],
                "image_size_bytes": size + (1_000_000 if i < BASE_UPDATE_AT else 1_400_000),
                "measured_at": (T0 + timedelta(days=i, minutes=6)).isoformat(),
            })
        store.close(ended=True)
        ids.append(run_id)
    return ids


@pytest.mark.unit
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


@pytest.mark.unit
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


@pytest.mark.unit
def test_unknown_metric_names_the_valid_ones(tmp_path):
    write_history(tmp_path)
    with pytest.raises(SlimlabError, match=r"unknown trend metric 'size_byte'.*did you mean.*size_bytes"):
        trends(tmp_path, "size_byte")


@pytest.mark.slow  # Chromium / a kernel
def test_report_trends_section_renders_with_hostile_labels(tmp_path, capsys):
    """`slimlab report DATA --trends`: the change point in a table and on its figure, plotly.js
    once for the whole page, and a workload named like markup stays text in Chromium."""
    data = tmp_path / "data"
    ids = write_history(data, workloads=(HOSTILE, "httpd"))
    out = tmp_path / "report.html"
    assert main(["report", str(data), "--trends", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "<h2>Trends</h2>" in text and f"{ids[UPGRADE_AT - 1]} → {ids[UPGRADE_AT]}" in text
    assert "go_version: go1.25.5 → go1.26.1" in text and "+8.0% go" in text  # table and annotation
    assert text.count("* plotly.js v") == 1
    assert HOSTILE not in text
    dom = browser.dump_dom(out)
    assert 'id="pwned"' not in dom
    n_trend_figures = len(trends_figures(trends(data)))
    assert n_trend_figures == 2 * 3  # two workloads; size, start-up, RSS (no images)
    n_report = len(figures.report_figures(pl.DataFrame(schema=RESULT_SCHEMA)))
    assert browser.count_rendered_plots(dom) >= n_report + n_trend_figures
    # --figures exports the history's figures with the report's (for papers)
    exported = tmp_path / "figures"
    assert main(["report", str(data), "--trends", "--out", str(out), "--figures", str(exported),
                 "--format", "svg"]) == 0
    svgs = sorted(exported.glob("*.svg"))
    assert len(svgs) == n_report + n_trend_figures
    assert any("+8.0%" in svg.read_text(encoding="utf-8") for svg in svgs)  # the change point's annotation


@pytest.mark.slow  # Chromium / a kernel
def test_trends_notebook_runs_under_papermill(tmp_path):
    data = tmp_path / "data"
    write_history(data)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-m", "slimlab.cli", "run", str(REPO / "notebooks" / "trends.ipynb"),
         "-p", "data_dir", str(data), "-p", "metric", "size_bytes", "--out", str(tmp_path / "trends.html")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "trends.html").read_text(encoding="utf-8")
    assert "go_version: go1.25.5 → go1.26.1" in text
    assert "startup_ms_median" not in text.split("<h2>Trends</h2>", 1)[1]  # one metric asked for
    assert (tmp_path / "trends.ipynb").is_file()  # the executed notebook is kept


@pytest.mark.unit
def test_a_figure_draws_the_variants_that_changed_and_says_how_many_it_left_out(tmp_path):
    write_history(tmp_path)
    history = trends(tmp_path)
    # 30 more flat variants of hello beside the one that changed
    extra = pl.concat([history.series.filter(pl.col("workload") == "hello", pl.col("metric") == "size_bytes")
                       .with_columns(pl.lit(f"hello|go|p{i:02d}|linux/amd64|none|none").alias("variant_key"),
                                     pl.lit(1000.0 + i).alias("value")) for i in range(30)])
    history = history._replace(series=pl.concat([history.series, extra]))
    size = next(f for f in trends_figures(history) if f.layout.title.text.startswith("hello: binary size"))
    names = [t.name for t in size.data]
    assert names[0] == "go|default|linux/amd64|none|none" and "change point" in names
    assert len(names) == MAX_LINES + 1  # the lines, and the change points' markers
    assert f"({31 - MAX_LINES} more variants, without change points, not drawn)" in size.layout.title.text


@pytest.mark.unit
def test_an_image_series_with_two_changes_names_each_cause(tmp_path):
    """The base's packages at one run, Go at another: two change points in one series, each
    with its own cause."""
    ids = write_history(tmp_path, images=True)
    cps = trends(tmp_path, "image_size_bytes").change_points.sort("started_at_after")
    assert cps["run_after"].to_list() == [ids[BASE_UPDATE_AT], ids[UPGRADE_AT]]
    base, go = cps.to_dicts()
    assert base["attributed_to"] == ["base"]
    assert base["causes"] == ["base_packages: −libc6=2.36-9+deb12u4, +libc6=2.36-9+deb12u13"]
    assert base["relative_change"] == pytest.approx(400_000 / (SIZE_BEFORE + 1_000_000))
    assert go["attributed_to"] == ["go"]
