"""`slimlab compare`: runs side by side, the verdicts of slimlab.analysis, exit 1 on a regression."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from artifacts import go_program

import slimlab
from slimlab import analysis, compare
from slimlab.cli import main
from slimlab.environment import busy_host_warnings, host_fingerprint
from slimlab.errors import SlimlabError
from slimlab.report.answers import answers_html
from slimlab.results import MANIFEST, RESULTS, SAMPLES, results_frame
from slimlab.results_schema import SAMPLE_SCHEMA, SCHEMA_VERSION

KEY = "hello|go|default|linux/amd64|none|none"
OTHER = "hello|go|stripped|linux/amd64|none|none"


def write_run(path: Path, variants: dict[str, dict], host: str = "here", fingerprints: dict | None = None,
              worker_hosts: list | None = None, load: float | None = None) -> Path:
    """A run directory as the store writes it: ``variants`` maps a key to size_bytes, a start-up
    centre (ms), an RSS (KiB) and optionally a status, each with 30 lognormal samples; and
    optionally ``cpu`` (a CPU-time centre, ms: cpu_ms samples), ``sha`` (binary_sha256),
    ``image_tag`` and ``precision_reached`` (the adaptive sampler's column).
    ``fingerprints``: host fingerprints of rows measured elsewhere (the rest: the loader fills
    in the manifest's ``host``), whose records a session lists as ``worker_hosts``. ``load``:
    the session measured at that load average on 2 cores, with the sweep's busy-host warning
    when environment.busy_host_warnings gives one."""
    path.mkdir(parents=True)
    rows, samples, extra = [], [], []
    for index, (key, v) in enumerate(variants.items()):
        workload, toolchain, profile, target, postlink, base = key.split("|")
        rng = np.random.default_rng(v.get("seed", index))
        ms = v["ms"] * rng.lognormal(0, v.get("spread", 0.01), 30)
        cpu = v["cpu"] * rng.lognormal(0, 0.01, 30) if "cpu" in v else [None] * 30
        rows.append({"schema_version": SCHEMA_VERSION, "run_id": path.name, "variant_key": key, "workload": workload,
                     "toolchain": toolchain, "profile": profile, "target": target, "postlink": postlink, "base": base,
                     "status": v.get("status", "ok"), "reason": v.get("reason"), "emulated": False,
                     "memory_scope": "program", "size_bytes": v["size"], "startup_ms_median": float(np.median(ms)),
                     "peak_rss_kib_median": float(v["kib"]), "flags": [], "build_env": [],
                     "cpu_ms_median": float(np.median(cpu)) if "cpu" in v else None,
                     "binary_sha256": v.get("sha"), "image_tag": v.get("image_tag"),
                     "host_fingerprint": (fingerprints or {}).get(key)})
        extra.append(v.get("precision_reached"))
        samples += [{"run_id": path.name, "variant_key": key, "sample_index": i, "startup_ms": float(m),
                     "peak_rss_kib": v["kib"], "cpu_ms": c} for i, (m, c) in enumerate(zip(ms, cpu))]
    results = results_frame(rows)
    if any(x is not None for x in extra):
        results = results.with_columns(pl.Series("precision_reached", extra, dtype=pl.Boolean),
                                       pl.lit(0.03).alias("precision_target"))
    results.write_parquet(path / RESULTS)
    pl.DataFrame(samples, schema=SAMPLE_SCHEMA).write_parquet(path / SAMPLES)
    session = {"host": {"hostname": host}, "hosts": worker_hosts or []}
    if load is not None:
        noise = {"seconds": 10.0, "cores": 2, "loadavg_before": [load] * 3, "loadavg_after": [load] * 3,
                 "busy_pct": 90.0, "steal_pct": 0.0, "cpu_pressure_pct": 12.0}
        session["measurement"] = {"noise": noise, "warnings": busy_host_warnings(noise)}
    (path / MANIFEST).write_text(json.dumps({"schema_version": SCHEMA_VERSION, "run_id": path.name,
                                             "host": {"hostname": host}, "tools": {}, "sessions": [session]}))
    return path


BASE = {KEY: {"size": 2_000_000, "ms": 10.0, "kib": 2000}, OTHER: {"size": 1_300_000, "ms": 10.0, "kib": 2000}}


def changed(key: str = KEY, **values) -> dict:
    return {**BASE, key: {**BASE[key], "seed": 99, **values}}


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(["compare", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.unit
def test_a_run_against_an_identical_one_has_no_change_and_exits_0(tmp_path, capsys):
    a, b = write_run(tmp_path / "a", BASE), write_run(tmp_path / "b", BASE)
    code, out, _ = run_cli(capsys, a, b)
    assert code == 0
    lines = compare.frame(compare.compare_runs(a, b))
    assert lines.height == 2 * 3  # two variants x size, start-up, peak RSS (no image)
    assert set(lines["verdict"]) == {analysis.NO_CHANGE}
    assert "no regression beyond x1.05" in out and "!" not in out
    other_host = write_run(tmp_path / "c", BASE, host="elsewhere")
    code, out, _ = run_cli(capsys, a, other_host)
    here, elsewhere = (host_fingerprint({"hostname": h}) for h in ("here", "elsewhere"))
    assert code == 0 and f"note: measured on different hosts (A: here [{here}], B: elsewhere [{elsewhere}])" in out
    assert "note: measured on different hosts" not in run_cli(capsys, a, b)[1]  # same host: no note


@pytest.mark.unit
def test_rows_of_one_run_measured_on_different_hosts_are_noted(tmp_path, capsys):
    """Dask workers measuring what they built: the rows of one run carry different fingerprints
    (the host's full record, from a session's hosts list, names them), and comparing across
    them says so, between runs as within one."""
    worker = {"hostname": "worker-2", "cpu_model": "EPYC 7B13", "cores": 4, "kernel": "6.12.1"}
    a = write_run(tmp_path / "a", BASE)
    b = write_run(tmp_path / "b", BASE, fingerprints={OTHER: host_fingerprint(worker)}, worker_hosts=[worker])
    here, theirs = host_fingerprint({"hostname": "here"}), host_fingerprint(worker)
    code, out, _ = run_cli(capsys, a, b)
    assert code == 0
    assert (f"note: measured on different hosts (A: here [{here}], B: worker-2 (EPYC 7B13, 4 cores, kernel 6.12.1) "
            f"[{theirs}]) for 1 of 2 variants ({OTHER}): timings may differ") in out
    code, out, _ = run_cli(capsys, b, "--variants", KEY, OTHER)
    assert code == 0 and f"note: measured on different hosts (A: here [{here}], B: worker-2 (" in out
    assert "note: measured on different hosts" not in run_cli(capsys, a, "--variants", KEY, OTHER)[1]


@pytest.mark.unit
def test_a_20_percent_slower_start_is_a_regression(tmp_path, capsys):
    a, b = write_run(tmp_path / "a", BASE), write_run(tmp_path / "b", changed(ms=12.0))
    code, out, _ = run_cli(capsys, a, b)
    assert code == 1
    line = next(x for x in out.splitlines() if x.startswith("!"))
    assert "start-up" in line and line.rstrip().endswith("slower")
    assert "1 regression(s) beyond x1.05" in out
    # the other way round it is an improvement, not a regression
    assert run_cli(capsys, b, a)[0] == 0


@pytest.mark.unit
def test_a_3_percent_significant_shift_passes_under_the_factor_and_fails_under_a_tighter_one(tmp_path, capsys):
    a = write_run(tmp_path / "a", {KEY: {**BASE[KEY], "spread": 0.003}})
    b = write_run(tmp_path / "b", {KEY: {**BASE[KEY], "ms": 10.3, "spread": 0.003, "seed": 5}})
    found = compare.frame(compare.compare_runs(a, b, metrics=["startup"])).row(0, named=True)
    assert found["p_value"] < 0.01 and found["verdict"] == analysis.NO_CHANGE
    assert run_cli(capsys, a, b, "--metric", "startup")[0] == 0
    assert run_cli(capsys, a, b, "--metric", "startup", "--factor", "1.02")[0] == 1


@pytest.mark.unit
def test_sizes_are_exact_and_regress_only_beyond_the_factor(tmp_path, capsys):
    a = write_run(tmp_path / "a", BASE)
    slightly = write_run(tmp_path / "b", changed(size=2_020_000))  # +1%: larger, but within x1.05
    much = write_run(tmp_path / "c", changed(size=2_200_000))  # +10%
    code, out, _ = run_cli(capsys, a, slightly, "--metric", "size")
    assert code == 0 and "larger" in out
    code, out, _ = run_cli(capsys, a, much, "--metric", "size")
    assert code == 1 and "1.100" in out and "exact" in out


@pytest.mark.unit
def test_a_variant_that_broke_is_a_regression(tmp_path, capsys):
    a = write_run(tmp_path / "a", BASE)
    b = write_run(tmp_path / "b", changed(status="broken", reason="exit 2: boom"))
    code, out, _ = run_cli(capsys, a, b)
    assert code == 1
    assert "ok -> broken: exit 2: boom" in out


@pytest.mark.unit
def test_two_variants_of_one_run(tmp_path, capsys):
    run = write_run(tmp_path / "a", BASE)
    code, out, _ = run_cli(capsys, run, "--variants", KEY, OTHER)
    assert code == 0 and "profile=stripped" in out and "smaller" in out
    assert run_cli(capsys, run, "--variants", OTHER, KEY)[0] == 1  # default is 54% larger than stripped


@pytest.mark.unit
def test_bad_input_is_a_clear_error(tmp_path, capsys):
    a = write_run(tmp_path / "data" / "runs" / "a", BASE)
    elsewhere = write_run(tmp_path / "z", {"httpd|go|default|linux/amd64|none|none": BASE[KEY]})
    (tmp_path / "empty").mkdir()
    cases = [
        ((tmp_path / "empty", a), "is not a run directory (no manifest.json)"),
        ((tmp_path / "nope", a), "does not exist"),
        ((tmp_path / "data", a), "is a data directory, not a run: compare two of its runs, e.g. "),
        ((a, elsewhere), "no variant is in both runs: "),
        ((a, "--variants", KEY, KEY.replace("default", "defalt")),
         "unknown variant key 'hello|go|defalt|linux/amd64|none|none' (did you mean 'hello|go|default|"),
        ((a, a, "--metric", "startp"), "unknown metric 'startp' (did you mean 'startup'?)"),
        ((a, a, "--factor", "0.9"), "--factor must be at least 1"),
        ((a,), "give two run directories"),
    ]
    for argv, message in cases:
        code, _, err = run_cli(capsys, *argv)
        assert code == 2 and message in err, (argv, err)
    with pytest.raises(SlimlabError, match="httpd|go|default"):  # names what the other run has
        compare.compare_runs(a, elsewhere)


# -- verdicts that noise could explain are not regressions ---------------------------------------
UPX = "hello|go|default|linux/amd64|upx-9|none"
SHA = "5" * 64


def upx_run(path: Path, ms: float, cpu: float, seed: int, **values) -> Path:
    """Issue 17's case: one upx-9 build, start-up ``ms`` and CPU time ``cpu`` per start."""
    load = values.pop("load", None)
    variant = {"size": 800_000, "kib": 1900, "ms": ms, "cpu": cpu, "seed": seed, **values}
    return write_run(path, {UPX: variant}, load=load)


def verdicts(outcome) -> dict[str, str]:
    return dict(zip(compare.frame(outcome)["metric"], compare.frame(outcome)["verdict"]))


@pytest.mark.unit
def test_the_same_binary_on_busy_hosts_is_never_a_regression(tmp_path, capsys):
    """Issue 17 item 4: upx-9 1.97x slower with CPU time 12.3 -> 14.0 ms, the same sha256 in both
    runs, both measured on a busy host: "same binary", exit 0."""
    a = upx_run(tmp_path / "a", 30.0, 12.3, 1, sha=SHA, load=3.0)
    b = upx_run(tmp_path / "b", 59.1, 14.0, 2, sha=SHA, load=3.0)
    raw = analysis.compare_samples(*(compare.analysis.sample_index(slimlab.load_samples(r))[(r.name, UPX)]
                                     ["startup_ms"] for r in (a, b)))
    assert raw.verdict == analysis.SLOWER and raw.ratio > 1.9  # what compare used to flag
    code, out, _ = run_cli(capsys, a, b)
    assert code == 0, out
    found = verdicts(compare.compare_runs(a, b))
    assert found["startup"] == found["cpu"] == found["peak_rss"] == analysis.SAME_BINARY
    assert found["size"] == analysis.NO_CHANGE
    assert out.count("host busy: the host was busy while measuring (load average 3.00 on 2 cores)") == 2
    assert out.count("host while measuring: load 3.00→3.00 on 2 cores, CPU pressure 12%") == 2
    assert "no regression beyond x1.05; not regressions: 3 same binary" in out
    # a different binary with the same figures: CPU time agrees that it got slower, so it stands
    c = upx_run(tmp_path / "c", 59.1, 14.0, 2, sha="6" * 64, load=3.0)
    code, out, _ = run_cli(capsys, a, c)
    assert code == 1 and verdicts(compare.compare_runs(a, c))["startup"] == analysis.SLOWER


@pytest.mark.unit
def test_on_a_busy_host_start_up_needs_cpu_time_to_agree(tmp_path, capsys):
    quiet_a, quiet_b = upx_run(tmp_path / "qa", 30.0, 12.3, 1), upx_run(tmp_path / "qb", 40.0, 12.3, 2)
    assert verdicts(compare.compare_runs(quiet_a, quiet_b))["startup"] == analysis.SLOWER
    assert run_cli(capsys, quiet_a, quiet_b)[0] == 1  # a quiet host: wall time alone is a verdict
    busy_b = upx_run(tmp_path / "bb", 40.0, 12.3, 2, load=3.0)  # only B's host was busy
    found = verdicts(compare.compare_runs(quiet_a, busy_b))
    assert found["startup"] == analysis.HOST_BUSY and found["cpu"] == analysis.NO_CHANGE
    code, out, _ = run_cli(capsys, quiet_a, busy_b)
    assert code == 0 and "host busy: no warning" in out and "1 inconclusive (host busy)" in out
    # --metric startup alone still asks CPU time, without showing it
    outcome = compare.compare_runs(quiet_a, busy_b, metrics=["startup"])
    assert verdicts(outcome) == {"startup": analysis.HOST_BUSY}
    # no CPU time recorded (older runs): a busy host's wall-time verdict cannot be confirmed
    a = write_run(tmp_path / "a", {UPX: {"size": 1, "kib": 1, "ms": 30.0, "seed": 1}})
    b = write_run(tmp_path / "b", {UPX: {"size": 1, "kib": 1, "ms": 40.0, "seed": 2}}, load=3.0)
    assert verdicts(compare.compare_runs(a, b))["startup"] == analysis.HOST_BUSY


@pytest.mark.unit
def test_rows_short_of_their_precision_are_inconclusive(tmp_path, capsys):
    a = upx_run(tmp_path / "a", 30.0, 12.3, 1, precision_reached=True)
    reached = upx_run(tmp_path / "b", 40.0, 14.0, 2, precision_reached=True)
    short = upx_run(tmp_path / "c", 40.0, 14.0, 2, precision_reached=False)
    assert run_cli(capsys, a, reached)[0] == 1
    code, out, _ = run_cli(capsys, a, short)
    assert code == 0
    found = verdicts(compare.compare_runs(a, short))
    assert found["startup"] == found["cpu"] == analysis.PRECISION_NOT_REACHED
    assert "precision (±3%) reached by 1 of 1 timed rows" in out  # A
    assert "precision (±3%) reached by 0 of 1 timed rows, not by 1" in out  # B
    unrecorded = upx_run(tmp_path / "d", 30.0, 12.3, 3)
    assert "precision reached: unknown (not recorded)" in run_cli(capsys, a, unrecorded)[1]


@pytest.mark.unit
def test_what_counts_as_the_same_binary():
    row = {"binary_sha256": SHA, "target": "linux/amd64", "base": "none", "runner": "native",
           "emulated": False}
    assert compare.same_binary(row, dict(row))
    assert not compare.same_binary(row, {**row, "binary_sha256": "6" * 64})
    unrecorded = {**row, "binary_sha256": None}
    assert not compare.same_binary(unrecorded, dict(unrecorded))
    assert not compare.same_binary(row, {**row, "base": "scratch"})  # a bare start against a container's
    image = {**row, "base": "scratch", "image_tag": "slimlab/x:1"}
    assert compare.same_binary(image, dict(image))
    assert compare.same_binary(image, {**image, "image_tag": None})  # not recorded on one side
    assert not compare.same_binary(image, {**image, "image_tag": "slimlab/x:2"})  # another image


@pytest.mark.unit
def test_json_and_markdown_for_ci(tmp_path, capsys):
    hostile = "<img src=x onerror=alert(1)>"
    key = f"{hostile}|go|default|linux/amd64|none|none"
    a = write_run(tmp_path / "a", {key: {"size": 2_000_000, "ms": 10.0, "kib": 2000, "cpu": 4.0}}, load=3.0)
    b = write_run(tmp_path / "b", {key: {"size": 2_200_000, "ms": 10.0, "kib": 2000, "cpu": 4.0, "seed": 9}})
    code, out, _ = run_cli(capsys, a, b, "--format", "json")
    found = json.loads(out)
    assert code == 1 == found["exit_code"] and found["regressions"] == 1 and found["slimlab_compare"] == 1
    assert set(found) == {"slimlab_compare", "factor", "alpha", "a", "b", "lines", "notes", "regressions",
                          "inconclusive", "exit_code"}
    assert found["a"]["busy"] and not found["b"]["busy"] and found["a"]["hosts"][0]["load_before"] == 3.0
    assert found["a"]["precision"] == {"reached": 0, "not_reached": 0, "unknown": 1, "targets": []}
    size = next(line for line in found["lines"] if line["metric"] == "size")
    assert size["regressed"] and size["verdict"] == analysis.LARGER and size["ratio"] == pytest.approx(1.1)
    assert set(size) == {"key", "metric", "unit", "a", "b", "ratio", "lo", "hi", "p_value", "verdict",
                         "regressed", "inconclusive", "same_binary"} and size["a"]["median"] == 2_000_000
    code, out, _ = run_cli(capsys, a, b, "--format", "markdown")
    assert code == 1
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert table[0] == "| variant | metric | A | B | B/A [95% CI] | p | verdict |"
    assert len(table) == 1 + 4  # size, start-up, peak RSS, CPU time
    assert all(line.count(" | ") == 6 for line in table)  # the key's pipes are escaped, not columns
    assert "&lt;img src=x onerror=alert(1)&gt;\\|go\\|default" in out and "<img" not in out
    assert "**larger (regression)**" in out and "**1 regression(s) beyond x1.05, marked (regression)**" in out
    code, _, err = run_cli(capsys, tmp_path / "nope", b, "--format", "markdwn")  # refused before any work
    assert code == 2 and "unknown format 'markdwn' (did you mean 'markdown'?)" in err


# -- real measurements ---------------------------------------------------------------------------
SMALL = 'package main\n\nfunc main() { println("hi") }\n'
# net/http's init and its dependencies: several MB more binary, and more to map at start.
BIG = 'package main\n\nimport _ "net/http"\n\nfunc main() { println("hi") }\n'


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory) -> dict[str, Path]:
    """Two real runs of one user workload (default and stripped, 8 starts each): "small", then
    "big" after its source grew a dependency on net/http (same variant keys, bigger binaries)."""
    root = tmp_path_factory.mktemp("compare")
    src = go_program(root, "prog", SMALL)
    spec = {"workloads": [src], "profiles": ["default", "stripped"], "repeats": 8, "warmup": 1}
    small = slimlab.sweep(spec, data_dir=root / "data", run_id="small", progress=False)
    (Path(src) / "main.go").write_text(BIG)
    big = slimlab.sweep(spec, data_dir=root / "data", run_id="big", progress=False)
    return {"small": small, "big": big}


def cli(*argv) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slimlab.cli", "compare", *map(str, argv)],
                          capture_output=True, text=True, timeout=300, check=False)


def test_a_real_run_against_itself_is_no_change(real_runs):
    done = cli(real_runs["small"], real_runs["small"])
    assert done.returncode == 0, done.stdout + done.stderr
    lines = compare.frame(compare.compare_runs(real_runs["small"], real_runs["small"]))
    assert lines.height == 2 * 4  # size, start-up, RSS, CPU
    timed = pl.col("metric").is_in(["startup", "peak_rss", "cpu"])
    assert set(lines.filter(~timed)["verdict"]) == {analysis.NO_CHANGE}
    assert set(lines.filter(timed)["verdict"]) == {analysis.SAME_BINARY}  # its own bytes, of course
    assert (lines["ratio"] == 1.0).all()


def test_a_real_run_whose_binaries_grew_fails_the_gate(real_runs):
    sizes = {name: slimlab.load(run).sort("variant_key")["size_bytes"].to_list() for name, run in real_runs.items()}
    assert all(b > a * 1.05 for a, b in zip(sizes["small"], sizes["big"])), sizes  # the premise
    done = cli(real_runs["small"], real_runs["big"], "--metric", "size")
    assert done.returncode == 1, done.stdout + done.stderr
    flagged = [line for line in done.stdout.splitlines() if line.startswith("!")]
    assert len(flagged) == 2 and all("larger" in line for line in flagged)
    assert cli(real_runs["big"], real_runs["small"], "--metric", "size").returncode == 0  # shrinking is fine


def test_two_runs_of_one_spec_with_a_core_kept_busy_pass_the_gate(tmp_path):
    """Issue 17's goal: `slimlab compare A A'` of two runs of the same spec exits 0 on a busy
    machine. One core is kept busy (a spin loop) through both sweeps."""
    spec = {"workloads": ["hello"], "profiles": ["default", "stripped"], "postlink": ["none", "upx-9"],
            "repeats": 8, "warmup": 1}
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        runs = [slimlab.sweep(spec, data_dir=tmp_path / "data", run_id=name, progress=False)
                for name in ("a", "b")]
        done = cli(*runs)
        as_json = cli(*runs, "--format", "json")
    finally:
        spin.kill()
        spin.wait(timeout=30)
    frames = [slimlab.load(run).sort("variant_key") for run in runs]
    assert frames[0]["status"].to_list() == ["ok"] * 4, frames[0].select("variant_key", "status", "reason")
    assert frames[0]["binary_sha256"].to_list() == frames[1]["binary_sha256"].to_list()  # the premise: A/A
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    found = json.loads(as_json.stdout)
    assert as_json.returncode == 0 == found["exit_code"] and found["regressions"] == 0
    timed = [line for line in found["lines"] if line["metric"] in ("startup", "cpu")]
    assert len(timed) == 8 and all(line["verdict"] == analysis.SAME_BINARY for line in timed)
    assert all(side["hosts"] for side in (found["a"], found["b"]))  # each run's noise is stated


def test_answers_on_a_real_run_state_what_stripping_saves(real_runs):
    run = real_runs["small"]
    df, samples = slimlab.load(run), slimlab.load_samples(run)
    sizes = dict(zip(df["profile"], df["size_bytes"]))
    found = analysis.effects(df, samples)
    assert set(found["changed"]) == {"profile=stripped"}
    startup = found.filter(pl.col("metric") == "startup").row(0, named=True)
    assert startup["n_baseline"] == startup["n_candidate"] == 8
    assert startup["lo"] <= startup["ratio"] <= startup["hi"]
    text = answers_html(df, samples, slimlab.load_manifests(run))
    saved = round((sizes["stripped"] / sizes["default"] - 1) * 100)
    assert f"<li><code>-ldflags=-s -w</code> (profile=stripped): <span class=\"effect-better\">−{-saved}% size " \
           "(exact)</span>" in text


@pytest.mark.unit
def test_the_report_states_effects_against_the_baseline_and_factor_given_on_the_command_line(tmp_path, capsys):
    # stripped starts 3% slower: beyond a 1.02 factor, within the default 1.05
    run = write_run(tmp_path / "run", {**BASE, OTHER: {**BASE[OTHER], "ms": 10.3, "seed": 7}})
    out = tmp_path / "report.html"

    def answers(*argv) -> str:
        assert main(["report", str(run), "--out", str(out), *argv]) == 0
        text = out.read_text(encoding="utf-8")
        return text[text.index('<section class="answers">'):text.index("</section>", text.index('class="answers"'))]

    default = answers()
    assert "against the same build with profile=default, postlink=none" in default
    assert "start-up no significant change" in default
    assert "start-up 3% slower" in answers("--factor", "1.02")
    # against the stripped build, the default one is the candidate: larger
    flipped = answers("--baseline", "profile=stripped")
    assert "against the same build with profile=stripped" in flipped and "+54% size" in flipped
    capsys.readouterr()
    assert main(["report", str(run), "--out", str(out), "--baseline", "profil=stripped"]) == 2
    assert "did you mean 'profile'" in capsys.readouterr().err
    assert main(["report", str(run), "--out", str(out), "--factor", "0.9"]) == 2
