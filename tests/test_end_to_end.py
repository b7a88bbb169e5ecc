"""The user's path: papermill notebooks and the CLI, ending in reports a real browser renders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import browser
import polars as pl
import pytest

import slimlab
from slimlab.report import figures
from slimlab.results_schema import RESULT_SCHEMA

REPO = Path(__file__).resolve().parent.parent
N_FIGURES = len(figures.report_figures(pl.DataFrame(schema=RESULT_SCHEMA)))


def slimlab_cli(*args: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "slimlab.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def rendered_plots(html: Path) -> int:
    # `make test` installs Chromium: dump_dom fails the test without it, never skips.
    return browser.count_rendered_plots(browser.dump_dom(html))


@pytest.mark.slow
def test_papermill_sweep_then_report_notebooks_and_cli_report(tmp_path):
    data = tmp_path / "data"
    sweep_html = slimlab_cli(
        "run", str(REPO / "notebooks" / "sweep.ipynb"),
        "-p", "workloads", '["hello", "httpd"]', "-p", "profiles", '["stripped"]',
        "-p", "repeats", "3", "-p", "warmup", "0", "-p", "data_dir", str(data), "-p", "run_id", "nb",
        "-p", "probe", "true",
        "--out", str(tmp_path / "sweep.html"), cwd=tmp_path,
    )
    run_dir = data / "runs" / "nb"
    df = slimlab.load(run_dir)
    assert df["status"].to_list() == ["ok", "ok"] and (df["startup_n"] == 3).all()
    assert (tmp_path / "sweep.ipynb").is_file()  # the executed notebook is kept

    report_html = slimlab_cli(
        "run", str(REPO / "notebooks" / "report.ipynb"), "-p", "run_path", str(run_dir),
        "-p", "title", "nb report", "--out", str(tmp_path / "report.html"), cwd=tmp_path,
    )
    cli_html = slimlab_cli("report", str(data), "--out", str(tmp_path / "cli.html"), cwd=tmp_path)

    for html in (sweep_html, report_html, cli_html):
        text = Path(html).read_text(encoding="utf-8")
        assert text.count("* plotly.js v") == 1, html  # inlined once, never from a CDN
        assert rendered_plots(Path(html)) == N_FIGURES, html
    assert "nb report" in Path(report_html).read_text(encoding="utf-8")
    # The run probed its toolchain: the capability heatmap is drawn from real probe rows.
    assert slimlab.load_capabilities(run_dir)["passed"].all()
    assert '"type":"heatmap"' in Path(cli_html).read_text(encoding="utf-8")
