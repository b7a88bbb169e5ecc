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
from slimlab.environment import host_fingerprint
from slimlab.errors import SlimlabError
from slimlab.report.answers import answers_html
from slimlab.results import MANIFEST, RESULTS, SAMPLES, results_frame
from slimlab.results_schema import SAMPLE_SCHEMA, SCHEMA_VERSION

KEY = "hello|go|default|linux/amd64|none|none"
OTHER = "hello|go|stripped|linux/amd64|none|none"


def write_run(path: Path, variants: dict[str, dict], host: str = "here", fingerprints: dict | None = None,
              worker_hosts: list | None = None) -> Path:
    """A run directory as the store writes it: ``variants`` maps a key to size_bytes, a start-up
    centre (ms), an RSS (KiB) and optionally a status, each with 30 lognormal samples.
    ``fingerprints``: host fingerprints of rows measured elsewhere (the rest: the loader fills
    in the manifest's ``host``), whose records a session lists as ``worker_hosts``."""
    path.mkdir(parents=True)
    rows, samples = [], []
    for index, (key, v) in enumerate(variants.items()):
        workload, toolchain, profile, target, postlink, base = key.split("|")
        ms = v["ms"] * np.random.default_rng(v.get("seed", index)).lognormal(0, v.get("spread", 0.01), 30)
        rows.append({"schema_version": SCHEMA_VERSION, "run_id": path.name, "variant_key": key, "workload": workload,
                     "toolchain": toolchain, "profile": profile, "target": target, "postlink": postlink, "base": base,
                     "status": v.get("status", "ok"), "reason": v.get("reason"), "emulated": False,
                     "memory_scope": "program", "size_bytes": v["size"], "startup_ms_median": float(np.median(ms)),
                     "peak_rss_kib_median": float(v["kib"]), "flags": [], "build_env": [],
                     "host_fingerprint": (fingerprints or {}).get(key)})
        samples += [{"run_id": path.name, "variant_key": key, "sample_index": i, "startup_ms": float(m),
                     "peak_rss_kib": v["kib"]} for i, m in enumerate(ms)]
    results_frame(rows).write_parquet(path / RESULTS)
    pl.DataFrame(samples, schema=SAMPLE_SCHEMA).write_parquet(path / SAMPLES)
    (path / MANIFEST).write_text(json.dumps({"schema_version": SCHEMA_VERSION, "run_id": path.name,
                                             "host": {"hostname": host}, "tools": {},
                                             "sessions": [{"host": {"hostname": host},
                                                           "hosts": worker_hosts or []}]}))
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
    assert lines.height == 2 * 4 and set(lines["verdict"]) == {analysis.NO_CHANGE}  # size, start-up, RSS, CPU
    assert (lines["ratio"] == 1.0).all()


def test_a_real_run_whose_binaries_grew_fails_the_gate(real_runs):
    sizes = {name: slimlab.load(run).sort("variant_key")["size_bytes"].to_list() for name, run in real_runs.items()}
    assert all(b > a * 1.05 for a, b in zip(sizes["small"], sizes["big"])), sizes  # the premise
    done = cli(real_runs["small"], real_runs["big"], "--metric", "size")
    assert done.returncode == 1, done.stdout + done.stderr
    flagged = [line for line in done.stdout.splitlines() if line.startswith("!")]
    assert len(flagged) == 2 and all("larger" in line for line in flagged)
    assert cli(real_runs["big"], real_runs["small"], "--metric", "size").returncode == 0  # shrinking is fine


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
