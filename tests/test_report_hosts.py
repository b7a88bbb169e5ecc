"""Rows of one run measured on different hosts (issue 11: Dask workers measuring what they
built): every row carries its host fingerprint, and the report never compares one host's
timings with another's without saying so. Synthetic rows and samples; the loader's backfill
for rows written without a fingerprint goes through the results store."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import subprocess
import sys

import polars as pl
import pytest
from test_report import frame, measured_row

from slimlab import analysis, environment
from slimlab.environment import host_fingerprint, host_label
from slimlab.report import figures, prep
from slimlab.report.html import render_report_html
from slimlab.results import RunStore, load
from slimlab.results_schema import SAMPLE_SCHEMA, SCHEMA_VERSION

ALPHA = {"hostname": "alpha", "cpu_model": "EPYC 7B13", "machine": "x86_64", "cores": 2, "kernel": "6.12.1",
         "mem_total_kib": 8_000_000, "loadavg": [0.1, 0.1, 0.1]}
EVIL = "<script>document.title='PWNED'</script>beta"
BETA = {**ALPHA, "hostname": EVIL, "cores": 8}
FP_A, FP_B = host_fingerprint(ALPHA), host_fingerprint(BETA)
MANIFEST = {"run_id": "r1", "tools": {}, "host": ALPHA, "sessions": [{"host": ALPHA, "hosts": [BETA]}]}
MIB = 2**20


def on(host: dict, **values) -> dict:
    return {"host": host["hostname"], "host_fingerprint": host_fingerprint(host), **values}


@pytest.fixture
def two_hosts() -> pl.DataFrame:
    """One run, one workload and target: the default build and a UPX-packed stripped one on
    alpha; the stripped build (twice as fast: beta is the faster machine) and the packed default
    on beta. Compared across hosts, stripping would look like it halves the start-up."""
    return frame([
        measured_row(2 * MIB, 10.0, 4000.0, profile="default", postlink="none", **on(ALPHA)),
        measured_row(int(0.9 * MIB), 30.0, 4500.0, profile="stripped", postlink="upx", upx_level="9", **on(ALPHA)),
        measured_row(int(1.4 * MIB), 5.0, 2000.0, profile="stripped", postlink="none", **on(BETA)),
        measured_row(int(0.8 * MIB), 14.0, 2500.0, profile="default", postlink="upx", upx_level="9", **on(BETA)),
    ])


def samples_of(df: pl.DataFrame) -> pl.DataFrame:
    """30 starts around each row's medians."""
    return pl.DataFrame([{"run_id": r["run_id"], "variant_key": r["variant_key"], "sample_index": i,
                          "startup_ms": r["startup_ms_median"] * (1 + 0.01 * (i % 5)),
                          "peak_rss_kib": int(r["peak_rss_kib_median"] * (1 + 0.002 * (i % 3)))}
                         for r in df.iter_rows(named=True) for i in range(30)], schema=SAMPLE_SCHEMA)


# -- the fingerprint ----------------------------------------------------------------------------
@pytest.mark.unit
def test_the_fingerprint_is_stable_and_changes_with_any_fact():
    assert host_fingerprint(dict(ALPHA)) == FP_A and len(FP_A) == 12 and int(FP_A, 16) >= 0
    # load and OS string are not facts of the machine; a kernel, core count or name is
    assert host_fingerprint({**ALPHA, "loadavg": [3.0, 2.0, 1.0], "os": "Linux-x"}) == FP_A
    for fact, value in (("kernel", "6.12.2"), ("cores", 4), ("hostname", "alpha2"), ("cpu_model", "EPYC 9B14"),
                        ("machine", "aarch64"), ("mem_total_kib", 16_000_000)):
        assert host_fingerprint({**ALPHA, fact: value}) != FP_A, fact


def test_this_hosts_fingerprint_is_the_same_in_another_process():
    """No hash seed and no load figures in it: a Dask worker process on this machine agrees."""
    code = "from slimlab.environment import host_fingerprint; print(host_fingerprint())"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == host_fingerprint() == host_fingerprint(environment.host())


@pytest.mark.unit
def test_rows_written_without_a_fingerprint_get_their_sessions_host_on_load(tmp_path):
    """Old rows (and a sweep that leaves it to the loader) take the host of the session that
    measured them, by time: a run resumed on another machine has two hosts."""
    spec = {"workloads": ["hello"]}
    first = {"tools": {}, "host": ALPHA}
    store = RunStore.open(tmp_path, "resumed", spec, first)
    store.add_row({"schema_version": SCHEMA_VERSION, "run_id": "resumed", "variant_key": "a", "status": "ok",
                   "host": "alpha", "measured_at": dt.datetime.now(dt.UTC)})
    store.close(ended=False)
    store = RunStore.open(tmp_path, "resumed", spec, {"tools": {}, "host": BETA})
    store.add_row({"schema_version": SCHEMA_VERSION, "run_id": "resumed", "variant_key": "b", "status": "ok",
                   "host": EVIL, "measured_at": dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)})
    store.add_row({"schema_version": SCHEMA_VERSION, "run_id": "resumed", "variant_key": "c", "status": "ok",
                   "host": "w", "host_fingerprint": "0123456789ab"})  # the sweep's own: kept
    store.close(ended=True)
    df = load(tmp_path).sort("variant_key")
    assert df["host_fingerprint"].to_list() == [FP_A, FP_B, "0123456789ab"]
    # a manifest without a host record leaves the fingerprint unknown rather than inventing one
    manifest = json.loads((store.run_dir / "manifest.json").read_text())
    for record in (manifest, *manifest["sessions"]):
        record.pop("host")
    (store.run_dir / "manifest.json").write_text(json.dumps(manifest))
    assert load(tmp_path).sort("variant_key")["host_fingerprint"].to_list() == [None, None, "0123456789ab"]


# -- answers and effects ------------------------------------------------------------------------
@pytest.mark.unit
def test_timings_are_answered_and_compared_within_a_host_only(two_hosts):
    samples = samples_of(two_hosts)
    ranked = analysis.answer_rows(two_hosts)
    found = analysis.conclusions(ranked)
    assert sorted(found["host_fingerprint"].to_list()) == sorted([FP_A, FP_B])  # a block per host
    host_of = dict(zip(two_hosts["variant_key"], two_hosts["host_fingerprint"]))
    for c in found.iter_rows(named=True):
        named = [c["fastest_key"], c["lowest_memory_key"], c["recommended_key"], *c["frontier_keys"]]
        assert {host_of[k] for k in named} == {c["host_fingerprint"]}
    effects = analysis.effects(ranked, samples)
    assert not effects.is_empty()
    for e in effects.iter_rows(named=True):
        same = host_of[e["variant_key"]] == host_of[e["baseline_key"]]
        assert same or analysis.METRICS[e["metric"]].sample is None, e  # across hosts: sizes only
    stripped = effects.filter(pl.col("variant_key") == "hello-stripped-linux/amd64-none")
    assert stripped["metric"].to_list() == ["size"]  # its baseline is alpha's: no start-up "2× faster"
    packed = effects.filter(pl.col("variant_key") == "hello-stripped-linux/amd64-upx")
    assert set(packed["metric"]) == {"size", "startup", "peak_rss"}  # same host: all of them


@pytest.mark.unit
def test_the_report_warns_names_both_hosts_escaped_and_keeps_their_timings_apart(two_hosts):
    text = render_report_html(two_hosts, "two hosts", MANIFEST, samples=samples_of(two_hosts))
    assert EVIL not in text and "<script>document.title" not in text
    warning = text[text.index('<div class="warning hosts">'):]
    warning = warning[:warning.index("</div>")]
    assert "measured on 2 hosts" in warning
    for host, fp in ((ALPHA, FP_A), (BETA, FP_B)):
        assert html.escape(host_label(host, fp)) in warning  # the full record, from the manifest
        assert f"[{fp}]: 2 row(s)" in warning
    assert text.index('class="warning hosts"') < text.index("<h2>Answers</h2>") < text.index("<h2>Figures</h2>")
    answers = text[text.index("<h2>Answers</h2>"):text.index("<h2>Figures</h2>")]
    assert answers.count('<div class="answer">') == 2
    assert f"measured on {html.escape(host_label(ALPHA, FP_A))}: timings compared within this host only" in answers
    assert f"measured on {html.escape(host_label(BETA, FP_B))}: timings compared within this host only" in answers
    assert "rows measured on different hosts apart" in answers
    # the stripped build on beta against alpha's default: its size only, and why
    assert ("start-up and memory not compared: the baseline was measured on "
            f"{html.escape(host_label(ALPHA, FP_A))}") in answers
    assert not re.search(r"start-up [\d.×%]+ faster", answers)
    # sizes are the same anywhere: alpha's block names beta's smaller build, beta's block needs not
    assert answers.count("Smallest on any host: ") == 1
    assert (f"Smallest on any host: default · upx — 819.2 KiB (file; measured on "
            f"{html.escape(host_label(BETA, FP_B))}, a size is the same everywhere)") in answers
    blocks = answers.split('<div class="answer">')[1:]
    alpha_block = next(b for b in blocks if f"measured on {html.escape(host_label(ALPHA, FP_A))}: timings" in b)
    assert "Smallest on any host: " in alpha_block


@pytest.mark.unit
def test_one_host_changes_nothing(two_hosts):
    alone = two_hosts.filter(pl.col("host_fingerprint") == FP_A)
    text = render_report_html(alone, "one host", MANIFEST, samples=samples_of(alone))
    assert "warning hosts" not in text and "answer-host" not in text.replace(".answer-host", "")
    assert all("measured on" not in t for t in panels(figures.startup_scatter(alone)))


# -- figures ------------------------------------------------------------------------------------
def panels(fig) -> dict[str, list]:
    """A faceted figure's panel title -> the traces drawn on that panel's axes."""
    titles = [a.text for a in fig.layout.annotations if a.yref == "paper" and a.xref == "paper" and a.y <= 1]
    found: dict[str, list] = {t: [] for t in titles}
    for trace in fig.data:
        found[titles[int(trace.yaxis[1:] or 1) - 1]].append(trace)
    return found


@pytest.mark.unit
@pytest.mark.parametrize("make", [figures.startup_scatter, figures.rss_bars])
def test_timing_figures_have_a_panel_per_host(make, two_hosts):
    fig = make(two_hosts)
    found = panels(fig)
    beta = html.escape(f"{EVIL} [{FP_B}]")
    assert set(found) == {f"hello · linux/amd64 · measured on alpha [{FP_A}]",
                          f"hello · linux/amd64 · measured on {beta}"}
    # each panel holds its own host's medians only (beta's are its own: 5 and 14 ms, 2000 and 2500 KiB)
    values = {t: {round(float(v), 3) for tr in traces for v in (tr.y if make is figures.startup_scatter else tr.x)}
              for t, traces in found.items()}  # the scatter's frontier line repeats its points
    key = {figures.startup_scatter: "startup_ms_median", figures.rss_bars: "peak_rss_kib_median"}[make]
    for title, host in ((f"hello · linux/amd64 · measured on alpha [{FP_A}]", FP_A),
                        (f"hello · linux/amd64 · measured on {beta}", FP_B)):
        mine = two_hosts.filter(pl.col("host_fingerprint") == host)[key].to_list()
        assert values[title] == {round(v / 1024 if make is figures.rss_bars else v, 3) for v in mine}
    assert "<script" not in json.dumps(fig.to_plotly_json(), default=str)
    # sizes do not depend on the host: one panel for all four
    assert list(panels(figures.size_bars(two_hosts))) == ["hello · linux/amd64"]


@pytest.mark.unit
def test_post_link_ratios_are_taken_within_a_host(two_hosts):
    costs = prep.postlink_costs(two_hosts)
    by_key = {r["variant_key"]: r for r in costs.iter_rows(named=True)}
    # alpha's packed stripped build against beta's unpacked one, and the other way round for the
    # default profile: the size ratios stand, the timed ones are not taken
    stripped = by_key["hello-stripped-linux/amd64-upx"]
    assert stripped["plot_size_ratio"] == pytest.approx(0.9 / 1.4, rel=1e-3)
    assert stripped["plot_startup_ratio"] is None and stripped["plot_startup_delta_ms"] is None
    across = by_key["hello-default-linux/amd64-upx"]
    assert across["plot_size_ratio"] == pytest.approx(0.4, rel=1e-3)
    assert across["plot_startup_ratio"] is None and across["plot_rss_ratio"] is None
    fig = figures.postlink_panel(two_hosts)
    titles = [a.text for a in fig.layout.annotations]
    assert any(f"measured on alpha [{FP_A}]" in t for t in titles)
    assert any(html.escape(EVIL) in t for t in titles) and not any(EVIL in t for t in titles)


@pytest.mark.unit
def test_a_dask_workers_busy_host_warning_names_that_host():
    from slimlab.report.html import _busy_host_html

    worker = {"hostname": "<b>w1</b>", "cpu_model": "EPYC", "cores": 4, "kernel": "6.1", "fingerprint": "f00d",
              "warnings": ["Warning: the host was busy while measuring (load average 9.0 on 4 cores)."]}
    shown = _busy_host_html([{"run_id": "r", "sessions": [{"hosts": [worker]}]}])
    assert html.escape(host_label(worker, "f00d")) in shown and "<b>w1</b>" not in shown
    assert "load average 9.0 on 4 cores" in shown
