"""The brief's claims checked against measurements (slimlab.claims): synthetic frames where the
truth is known, the claims file's validation, and one small real sweep."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from conftest import REPO

from slimlab import analysis
from slimlab.claims import (
    HOLDS,
    LARGER,
    NOT_MEASURED,
    OPPOSITE,
    PAIRS_DISAGREE,
    SMALLER,
    STRADDLES,
    check_claims,
    claims_html,
    claims_text,
    load_claims,
)
from slimlab.errors import SpecError
from slimlab.model import plan
from slimlab.model.spec import BUILTIN_SPECS_DIR
from slimlab.results_schema import RESULT_SCHEMA, SAMPLE_SCHEMA

STRIP = {"id": "strip", "claim": "strip saves about 30%", "metric": "size_bytes",
         "where": {"profile": "default"}, "baseline": {"postlink": "none"}, "candidate": {"postlink": "strip"},
         "expect": {"ratio": 0.70, "tolerance": 0.05}}
UPX_MS = {"id": "upx-ms", "claim": "UPX costs about +8.7 ms", "metric": "startup_ms_median",
          "baseline": {"postlink": "none"}, "candidate": {"postlink": "upx-9"},
          "expect": {"difference": 8.7, "tolerance": 4.35}}
GCCGO = {"id": "gccgo", "claim": "gccgo's dynamic build is tiny", "metric": "size_bytes",
         "baseline": {"toolchain": "go"}, "candidate": {"toolchain": "gccgo"}, "expect": {"ratio_max": 0.25}}


def _row(workload="hello", toolchain="go", profile="default", postlink="none", base="none", status="ok", **values):
    key = f"{workload}|{toolchain}|{profile}|linux/amd64|{postlink}|{base}"
    return {"run_id": "r", "variant_key": key, "workload": workload, "toolchain": toolchain, "profile": profile,
            "target": "linux/amd64", "postlink": postlink, "base": base, "status": status, "emulated": False,
            **values}


def _frame(*rows) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=RESULT_SCHEMA)


def _samples(variant_key: str, values) -> list[dict]:
    return [{"run_id": "r", "variant_key": variant_key, "sample_index": i, "startup_ms": float(v)}
            for i, v in enumerate(values)]


def _only(table: pl.DataFrame, claim_id: str) -> dict:
    rows = table.filter(pl.col("id") == claim_id)
    assert rows.height == 1, rows
    return rows.row(0, named=True)


@pytest.mark.unit
def test_a_size_claim_is_judged_per_workload_never_pooled():
    df = _frame(_row(size_bytes=1000), _row(postlink="strip", size_bytes=690),
                _row("httpd", size_bytes=4000), _row("httpd", postlink="strip", size_bytes=3600))
    table = check_claims(df, None, [STRIP])
    assert table.height == 2  # one line per (claim, workload, target)
    hello, httpd = (r for r in table.sort("workload").iter_rows(named=True))
    assert (hello["workload"], hello["target"], hello["verdict"], hello["measured"]) == \
        ("hello", "linux/amd64", HOLDS, pytest.approx(0.69))
    # httpd's strip saves 10%: the claimed way, short of 30% +- 5
    assert (httpd["workload"], httpd["verdict"], httpd["measured"]) == ("httpd", SMALLER, pytest.approx(0.90))
    assert hello["lo"] == hello["hi"] == hello["measured"]  # exact sizes: no interval
    assert (hello["pairs"], hello["pairs_holding"], httpd["pairs_holding"]) == (1, 1, 0)


@pytest.mark.unit
def test_pairs_share_every_other_axis_so_profiles_are_not_mixed():
    # A stripped build's strip saves nothing; pairing it with the default build's none would
    # claim a 31% saving that no build has.
    df = _frame(_row(size_bytes=1000), _row(profile="stripped", postlink="strip", size_bytes=690))
    row = _only(check_claims(df, None, [{**STRIP, "where": {}}]), "strip")
    assert row["verdict"] == f"{NOT_MEASURED} (no pair)"
    assert "baseline row of the same run and other axes" in row["why"]


@pytest.mark.unit
def test_timed_pairs_are_of_one_host_and_sizes_of_any():
    """Dask workers measuring what they built: a build and its baseline may have been timed on two
    machines; their start-up difference would be the machines'. Sizes pair across hosts."""
    rng = np.random.default_rng(2)
    df = _frame(_row(size_bytes=1000, startup_ms_median=1.0, host_fingerprint="aaaaaaaaaaaa"),
                _row(postlink="upx-9", size_bytes=400, startup_ms_median=10.0, host_fingerprint="bbbbbbbbbbbb"))
    samples = pl.DataFrame(_samples(df["variant_key"][0], rng.normal(1.0, 0.05, 30))
                           + _samples(df["variant_key"][1], rng.normal(10.0, 0.5, 30)), schema=SAMPLE_SCHEMA)
    timed = _only(check_claims(df, samples, [UPX_MS]), "upx-ms")
    assert (timed["verdict"], timed["pairs"]) == (f"{NOT_MEASURED} (another host)", 0)
    assert "measured on the same host (host_fingerprint)" in timed["why"]
    size = {**STRIP, "id": "upx-size", "where": {}, "candidate": {"postlink": "upx-9"}}
    assert _only(check_claims(df, samples, [size]), "upx-size")["measured"] == pytest.approx(0.4)
    same = df.with_columns(pl.lit("aaaaaaaaaaaa").alias("host_fingerprint"))
    assert _only(check_claims(same, samples, [UPX_MS]), "upx-ms")["pairs"] == 1


@pytest.mark.unit
def test_an_absolute_ms_claim_uses_the_difference_of_medians_with_an_interval():
    rng = np.random.default_rng(1)
    base, upx = rng.normal(1.0, 0.05, 30), rng.normal(31.0, 1.0, 30)
    df = _frame(_row(), _row(postlink="upx-9"))
    samples = pl.DataFrame(_samples(df["variant_key"][0], base) + _samples(df["variant_key"][1], upx),
                           schema=SAMPLE_SCHEMA)
    row = _only(check_claims(df, samples, [UPX_MS]), "upx-ms")
    assert row["verdict"] == LARGER  # UPX costs more than claimed, not just "does not hold"
    assert row["measured"] == pytest.approx(np.median(upx) - np.median(base))
    assert row["lo"] < row["measured"] < row["hi"] < 40
    assert row["lo"] > 13.05  # wholly above the claimed band
    # The same claim with a band the measurement straddles: inconclusive, not "holds".
    wide = {**UPX_MS, "id": "wide", "expect": {"difference_min": row["measured"], "difference_max": 100}}
    assert _only(check_claims(df, samples, [wide]), "wide")["verdict"] == STRADDLES
    assert analysis.is_inconclusive(STRADDLES)
    # And timed claims without samples say so instead of guessing from the row medians.
    assert "no samples given" in _only(check_claims(df, None, [UPX_MS]), "upx-ms")["why"]


@pytest.mark.unit
def test_median_difference_matches_numpy_and_brackets_it():
    diff, lo, hi = analysis.median_difference([1, 2, 3, 4, 5], [11, 12, 13, 14, 15])
    assert diff == 10 and lo <= 10 <= hi
    assert analysis.median_difference([], [1.0]) is None


@pytest.mark.unit
def test_not_measured_says_what_to_add_or_what_failed():
    df = _frame(_row(size_bytes=1000), _row(postlink="strip", status="postlink_failed",
                                            reason="strip: file format not recognized"))
    table = check_claims(df, None, [STRIP, GCCGO])
    gccgo, strip = _only(table, "gccgo"), _only(table, "strip")
    assert gccgo["verdict"] == f"{NOT_MEASURED} (not in the spec)"
    assert strip["verdict"] == f"{NOT_MEASURED} (rows failed)"
    assert "add 'gccgo' to the spec's toolchains" in gccgo["why"]
    assert "every candidate row failed: postlink_failed: strip: file format not recognized" in strip["why"]


@pytest.mark.unit
def test_flags_and_bounds_on_the_rows_own_figure():
    df = _frame(_row("httpd", is_static=False), _row("httpd", profile="static", is_static=True),
                _row("hello", profile="static", is_static=False),
                _row("httpd", profile="static", base="scratch", image_size_bytes=7_000_000))
    claims = [{"id": "static", "claim": "static is static", "metric": "is_static",
               "where": {"profile": "static", "base": "none"}, "expect": {"equals": True}},
              {"id": "image", "claim": "under 12 MB", "metric": "image_size_bytes",
               "where": {"workload": "httpd", "base": "scratch"}, "expect": {"max": 12_000_000}}]
    table = check_claims(df, None, claims)
    static = table.filter(pl.col("id") == "static").sort("workload")
    # Only the image row has an image size: the bare build is not a pair that lacks one.
    image = {**claims[1], "id": "any-base", "where": {"workload": "httpd", "profile": "static"}}
    assert _only(check_claims(df, None, [image]), "any-base")["pairs"] == 1
    no_image = {**image, "id": "bare", "where": {**image["where"], "base": "none"}}
    assert "image_size_bytes is empty on every ok row" in _only(check_claims(df, None, [no_image]), "bare")["why"]
    # Per workload: httpd's static build is static, hello's is not (the flag the other way)
    assert static["workload"].to_list() == ["hello", "httpd"]
    assert static["verdict"].to_list() == [OPPOSITE, HOLDS]
    assert static["measured_text"].to_list() == ["is_static false", "is_static true"]
    assert _only(table, "image")["verdict"] == HOLDS


@pytest.mark.unit
def test_the_html_table_is_escaped():
    df = _frame(_row("<img src=x onerror=alert(1)>", size_bytes=1000),
                _row("<img src=x onerror=alert(1)>", postlink="strip", size_bytes=700))
    claim = {**STRIP, "where": {}}
    page = claims_html(check_claims(df, None, [claim]))
    assert "<img" not in page and "&lt;img src=x" in page


@pytest.mark.unit
@pytest.mark.parametrize("change, message", [
    ({"metric": "size_byte"}, "unknown metric 'size_byte' (did you mean 'size_bytes'?)"),
    ({"candidate": {"postlink": "stirp"}}, "unknown postlink chain 'stirp' (did you mean 'strip'?)"),
    ({"where": {"profil": "default"}}, "unknown axis 'profil' (did you mean 'profile'?)"),
    ({"where": {"profile": "stirpped"}}, "unknown profile 'stirpped' (did you mean 'stripped'?)"),
    ({"where": {"base": "alpine"}}, "unknown base 'alpine'"),
    ({"candidate": {}}, "needs both baseline and candidate"),
    ({"expect": {"ratio": 0.7, "tolerence": 0.05}}, "unknown expect key 'tolerence' (did you mean 'tolerance'?)"),
    ({"expect": {"value": 9.2e6}}, "is about the rows' own figure"),
    ({"expect": {"direction": "smaller"}}, "unknown direction 'smaller'"),
    ({"expect": {"ratio": 0.7, "ratio_max": 0.8}}, "with a tolerance, or bounds, not both"),
    ({"metric": "is_static"}, "is true or false: expect = { equals = true }"),
    ({"verdict": "holds"}, "unknown key 'verdict'"),
    ({"conditions": {"cgoo": True}}, "unknown condition 'cgoo' (did you mean 'cgo'?)"),
    ({"conditions": {"cross_build": "no"}}, "cross_build = 'no': a condition is true or false"),
    ({"conditions": []}, "conditions must be a table"),
    ({"baseline": {"postlink": ["none", "strip"]}, "candidate": {"postlink": "upx-9"}},
     "a pair has one baseline row"),
    ({"candidate": {"postlink": ["strip", "upx-99"]}}, "unknown postlink chain 'upx-99'"),
    ({"metric": "startup_ms_median", "conditions": {"emulated": True}},
     "timings under QEMU are the emulator's"),
])
def test_bad_claims_are_refused_with_the_valid_choices(change, message):
    with pytest.raises(SpecError, match="claim 1 \\('strip'\\)") as caught:
        load_claims([{**STRIP, **change}])
    assert message in str(caught.value)


@pytest.mark.unit
def test_a_claims_file_from_the_user(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[[claim]]\nid = "mine"\nclaim = "strip halves it"\nmetric = "size_bytes"\n'
                    'baseline = { postlink = "none" }\ncandidate = { postlink = "strip" }\n'
                    'expect = { ratio = 0.5, tolerance = 0.05 }\n')
    df = _frame(_row(size_bytes=1000), _row(postlink="strip", size_bytes=500))
    assert _only(check_claims(df, None, path), "mine")["verdict"] == HOLDS
    path.write_text('[[claims]]\nid = "x"\n')
    with pytest.raises(SpecError, match="unknown key 'claims' \\(did you mean 'claim'\\?\\)"):
        load_claims(path)
    with pytest.raises(SpecError, match="not found"):
        load_claims(tmp_path / "missing.toml")


@pytest.mark.unit
def test_the_claims_spec_sweeps_what_every_builtin_claim_compares():
    """Every built-in claim but TinyGo's (not installable here) has rows in slimlab/specs/claims.toml."""
    variants = [dict(zip(("workload", "toolchain", "profile", "target", "postlink", "base"), v.values))
                for v in plan(BUILTIN_SPECS_DIR / "claims.toml").variants]
    claims = load_claims()
    assert len({c.id for c in claims}) == len(claims) >= 15
    for claim in claims:
        if "tinygo" in dict(claim.candidate).get("toolchain", ()):
            continue
        for side in (claim.baseline, claim.candidate) if claim.compares else ((),):
            wanted = {**dict(claim.where), **dict(side)}
            found = any(all(v[k] in values for k, values in wanted.items()) for v in variants)
            assert found, (claim.id, wanted)


@pytest.mark.slow
def test_a_real_sweep_measures_the_strip_claim(tmp_path, capsys):
    from slimlab.results import load, load_samples
    from slimlab.sweep import sweep

    spec = {"workloads": ["hello"], "profiles": ["default", "stripped"], "postlink": ["none", "strip"],
            "repeats": 5, "warmup": 1}
    run = sweep(spec, data_dir=tmp_path, run_id="claims", progress=False)
    df, samples = load(run), load_samples(run)
    assert (df["status"] == "ok").all(), df.select("variant_key", "reason")
    table = check_claims(df, samples)
    strip = _only(table, "strip-size")
    default = df.filter(pl.col("profile") == "default")
    size = dict(zip(default["postlink"], default["size_bytes"]))
    assert strip["measured"] == size["strip"] / size["none"]
    assert strip["verdict"] in (HOLDS, LARGER, SMALLER) and strip["pairs"] == 1  # sizes: never inconclusive
    # A timed claim from the same run: an interval around the difference of medians.
    startup = _only(table, "strip-startup")
    assert startup["verdict"] != NOT_MEASURED and startup["lo"] <= startup["measured"] <= startup["hi"]
    assert "add 'gccgo' to the spec's toolchains" in _only(table, "gccgo-dynamic-tiny")["why"]
    # The notebook renders the table under papermill, with a user's claims file, escaped.
    from slimlab.notebook import run_notebook

    mine = tmp_path / "mine.toml"
    mine.write_text('[[claim]]\nid = "mine"\nclaim = "<b>strip</b> halves it"\nmetric = "size_bytes"\n'
                    'where = { profile = "default" }\nbaseline = { postlink = "none" }\n'
                    'candidate = { postlink = "strip" }\nexpect = { ratio = 0.5, tolerance = 0.05 }\n')
    page = run_notebook(REPO / "notebooks" / "claims.ipynb", {"run_path": run, "claims_file": mine},
                        tmp_path / "claims.html").read_text()
    assert "&lt;b&gt;strip&lt;/b&gt; halves it" in page and "<b>strip</b>" not in page
    verdict = _only(check_claims(df, samples, mine), "mine")["verdict"]
    assert f">{verdict}</td>" in page
    assert "strip saves about 30%" in page  # the brief's claims come first, the user's after them
    # The CLI prints the same table.
    from slimlab.cli import main

    assert main(["claims", str(run), "--claims-file", str(mine)]) == 0
    printed = capsys.readouterr().out
    # each claim's words, then a line per workload and target with its verdict
    assert "strip-size: strip saves about 30%\n" in printed and "mine: <b>strip</b> halves it\n" in printed
    assert f"  hello / linux/amd64  {strip['measured_text']}  {strip['verdict']}" in printed


@pytest.mark.unit
def test_a_timed_direction_needs_a_change_beyond_the_reports_factor():
    rng = np.random.default_rng(2)
    base = rng.normal(1000, 2, 30)
    df = _frame(_row(), _row(postlink="upx-9"))
    claim = {"id": "more", "claim": "UPX costs memory", "metric": "peak_rss_kib_median",
             "baseline": {"postlink": "none"}, "candidate": {"postlink": "upx-9"}, "expect": {"direction": "higher"}}

    def verdict(shift: float) -> str:
        rows = _samples(df["variant_key"][0], base) + _samples(df["variant_key"][1], base * shift)
        samples = pl.DataFrame([{**s, "peak_rss_kib": round(s["startup_ms"])} for s in rows], schema=SAMPLE_SCHEMA)
        return _only(check_claims(df, samples, [claim]), "more")["verdict"]

    assert verdict(1.0) == SMALLER  # the same memory: not higher
    assert verdict(1.02) == SMALLER  # 2% more: within noise, not called higher (analysis.FACTOR is 1.05)
    assert verdict(0.8) == OPPOSITE  # less memory: the other way
    assert verdict(1.2) == HOLDS


@pytest.mark.unit
def test_a_users_claim_may_not_reuse_a_brief_id(tmp_path):
    from slimlab.claims import brief_and

    path = tmp_path / "mine.toml"
    path.write_text('[[claim]]\nid = "strip-size"\nclaim = "mine"\nmetric = "size_bytes"\nexpect = { max = 1 }\n')
    with pytest.raises(SpecError, match="claim ids strip-size are the research brief's already"):
        brief_and(path)
    assert len(brief_and(None)) == len(load_claims())


@pytest.mark.unit
def test_memory_claims_leave_out_emulated_rows_whose_memory_is_qemus():
    """QEMU user mode's RSS is the emulator's: a memory claim is checked on native rows only."""
    rss = {"id": "rss", "claim": "-s -w lowers RSS by 15% or more", "metric": "peak_rss_kib_median",
           "baseline": {"profile": "default"}, "candidate": {"profile": "stripped"}, "expect": {"ratio_max": 0.85}}
    native = [_row(peak_rss_kib_median=2000.0), _row(profile="stripped", peak_rss_kib_median=1990.0)]
    arm = [{**_row(peak_rss_kib_median=9000.0, emulated=True), "target": "linux/arm64",
            "variant_key": "hello|go|default|linux/arm64|none|none"},
           {**_row(profile="stripped", peak_rss_kib_median=5000.0, emulated=True), "target": "linux/arm64",
            "variant_key": "hello|go|stripped|linux/arm64|none|none"}]
    samples = pl.DataFrame([{"run_id": "r", "variant_key": r["variant_key"], "sample_index": i,
                             "peak_rss_kib": int(r["peak_rss_kib_median"]) + i % 3} for r in native + arm
                            for i in range(10)], schema=SAMPLE_SCHEMA)
    table = check_claims(_frame(*native, *arm), samples, [rss])
    amd64, arm64 = (table.filter(pl.col("target") == t).row(0, named=True)
                    for t in ("linux/amd64", "linux/arm64"))
    assert amd64["pairs"] == 1
    assert amd64["verdict"] == SMALLER and amd64["measured"] == pytest.approx(0.995, abs=0.005)
    assert (arm64["pairs"], arm64["verdict"]) == (0, f"{NOT_MEASURED} (emulated only)")


def _timed(*rows_and_samples, cpu_shift: float | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A frame of ``(row, start-up samples)`` and its samples; CPU time per start is the wall time
    (a quiet host) unless ``cpu_shift`` says by how much the candidate's moves instead."""
    rows, samples = [], []
    for row, values in rows_and_samples:
        rows.append(row)
        for s in _samples(row["variant_key"], values):
            samples.append({**s, "cpu_ms": s["startup_ms"]})
    if cpu_shift is not None:  # the last row's CPU time: its baseline's plus cpu_shift
        first = [s for s in samples if s["variant_key"] == rows[0]["variant_key"]]
        last = [s for s in samples if s["variant_key"] == rows[-1]["variant_key"]]
        for mine, theirs in zip(last, first):
            mine["cpu_ms"] = theirs["cpu_ms"] + cpu_shift
    return _frame(*rows), pl.DataFrame(samples, schema=SAMPLE_SCHEMA)


BUSY = [{"run_id": "r",
         "sessions": [{"measurement": {"warnings": ["Warning: the host was busy while measuring"]}}]}]


@pytest.mark.unit
def test_two_workloads_give_two_verdicts_each_with_its_own_interval():
    """The issue's case: hello +21.7 ms and httpd +98.8 ms under UPX are two answers, not one
    pooled +60 ms whose interval contains neither."""
    rng = np.random.default_rng(3)
    df, samples = _timed((_row(), rng.normal(1.0, 0.05, 30)),
                         (_row(postlink="upx-9"), rng.normal(22.7, 0.5, 30)),
                         (_row("httpd"), rng.normal(4.0, 0.1, 30)),
                         (_row("httpd", postlink="upx-9"), rng.normal(102.8, 1.0, 30)))
    table = check_claims(df, samples, [UPX_MS]).sort("workload")
    assert table["workload"].to_list() == ["hello", "httpd"]
    for row, cost in zip(table.iter_rows(named=True), (21.7, 98.8)):
        assert row["lo"] < cost < row["hi"] and row["pairs"] == 1
        assert row["verdict"] == LARGER


@pytest.mark.unit
def test_the_cgo_claim_leaves_out_a_cross_build_made_without_cgo():
    """The builtin claim: importing net with cgo on links libc. The arm64 cross build had
    CGO_ENABLED=0 (Go's default for cross builds) and is static: not a counterexample."""
    native = _row("httpd", is_static=False, build_settings=["-compiler=gc", "CGO_ENABLED=1", "GOARCH=amd64"],
                  host_fingerprint="aaaaaaaaaaaa")
    cross = {**_row("httpd", is_static=True, build_settings=["-compiler=gc", "CGO_ENABLED=0", "GOARCH=arm64"],
                    host_fingerprint="aaaaaaaaaaaa", emulated=True),
             "target": "linux/arm64", "variant_key": "httpd|go|default|linux/arm64|none|none"}
    claim = next(c for c in load_claims() if c.id == "cgo-dynamic")
    assert dict(claim.conditions) == {"cgo": True, "cross_build": False}
    table = check_claims(_frame(native, cross), None, [claim]).sort("target")
    amd64, arm64 = table.iter_rows(named=True)
    assert (amd64["target"], amd64["verdict"]) == ("linux/amd64", HOLDS)
    assert arm64["verdict"] == f"{NOT_MEASURED} (outside its conditions)"
    assert "cgo=true left out 1" in arm64["why"] and "CGO_ENABLED=0" in arm64["why"]
    # Without the condition the same rows would contradict the claim: the condition is what scopes it.
    loose = {"id": "loose", "claim": claim.claim, "metric": "is_static", "where": {"workload": "httpd"},
             "expect": {"equals": False}}
    assert check_claims(_frame(native, cross), None, [loose]).sort("target")["verdict"].to_list() == \
        [HOLDS, OPPOSITE]


@pytest.mark.unit
def test_cross_build_reads_the_cpu_of_the_host_that_built_the_row_from_its_manifest():
    # An arm64 host built this arm64 row: native, whatever this machine is.
    row = {**_row("httpd", is_static=False, build_env=["CGO_ENABLED=1"], emulated=False),
           "target": "linux/arm64", "variant_key": "httpd|go|default|linux/arm64|none|none"}
    from slimlab.environment import host_fingerprint

    arm_host = {"hostname": "pi", "cpu_model": "Cortex-A72", "machine": "aarch64", "cores": 4,
                "kernel": "6.1", "mem_total_kib": 4_000_000}
    row["host_fingerprint"] = host_fingerprint(arm_host)
    claim = {"id": "c", "claim": "cgo links libc", "metric": "is_static", "conditions": {"cgo": True,
                                                                                        "cross_build": False},
             "expect": {"equals": False}}
    on_arm = [{"run_id": "r", "host": arm_host}]
    found = _only(check_claims(_frame(row), None, [claim], manifests=on_arm), "c")
    assert found["verdict"] == HOLDS
    x86 = {**arm_host, "machine": "x86_64"}
    row["host_fingerprint"] = host_fingerprint(x86)
    found = _only(check_claims(_frame(row), None, [claim], manifests=[{"run_id": "r", "host": x86}]), "c")
    assert found["verdict"] == f"{NOT_MEASURED} (outside its conditions)" and "a cross build" in found["why"]


@pytest.mark.unit
@pytest.mark.parametrize("stripped, verdict", [
    (750, HOLDS),  # -25%: within "10-30% of the file"
    (680, LARGER),  # -32%: a larger saving than claimed, not merely "does not hold"
    (950, SMALLER),  # -5%: the claimed way, short of it
    (1000, SMALLER),  # no change at all: short of it
    (1050, OPPOSITE),  # +5%: the other way
])
def test_a_range_claim_says_which_way_a_miss_goes(stripped, verdict):
    claim = next(c for c in load_claims() if c.id == "debug-info-share")  # ratio 0.70 to 0.90
    df = _frame(_row(size_bytes=1000), _row(profile="stripped", size_bytes=stripped))
    assert _only(check_claims(df, None, [claim]), claim.id)["verdict"] == verdict


@pytest.mark.unit
def test_a_timed_range_claim_whose_interval_straddles_an_end_is_inconclusive():
    rng = np.random.default_rng(4)
    ratio = {"id": "r", "claim": "10-30% faster", "metric": "startup_ms_median",
             "baseline": {"postlink": "none"}, "candidate": {"postlink": "strip"},
             "expect": {"ratio_min": 0.70, "ratio_max": 0.90}}
    base = rng.normal(10.0, 1.0, 20)
    straddling = _timed((_row(), base), (_row(postlink="strip"), base * 0.68 + rng.normal(0, 1.0, 20)))
    beyond = _timed((_row(), base), (_row(postlink="strip"), base * 0.5))
    row = _only(check_claims(*straddling, [ratio]), "r")
    assert row["lo"] < 0.70 < row["hi"] and row["verdict"] == STRADDLES
    assert _only(check_claims(*beyond, [ratio]), "r")["verdict"] == LARGER


@pytest.mark.unit
def test_a_claim_about_a_figure_says_larger_or_smaller_than_claimed():
    df = _frame(_row(profile="static", base="scratch", image_size_bytes=14_000_000),
                _row("httpd", profile="static", base="scratch", image_size_bytes=5_000_000))
    claim = {"id": "img", "claim": "about 9.2 MB", "metric": "image_size_bytes", "where": {"base": "scratch"},
             "expect": {"value": 9_200_000, "tolerance": 2_300_000}}
    table = check_claims(df, None, [claim]).sort("workload")
    assert table["verdict"].to_list() == [LARGER, SMALLER]


@pytest.mark.unit
def test_on_a_busy_host_a_start_up_verdict_needs_cpu_time_to_agree():
    rng = np.random.default_rng(5)
    base, upx = rng.normal(1.0, 0.05, 30), rng.normal(10.0, 0.3, 30)
    quiet = _timed((_row(), base), (_row(postlink="upx-9"), upx))
    assert _only(check_claims(*quiet, [UPX_MS], manifests=BUSY), "upx-ms")["verdict"] == HOLDS  # CPU agrees
    assert _only(check_claims(*quiet, [UPX_MS]), "upx-ms")["verdict"] == HOLDS
    # Wall time says +9 ms, CPU time says nothing changed: the waiting was the host's.
    waited = _timed((_row(), base), (_row(postlink="upx-9"), upx), cpu_shift=0.0)
    busy = _only(check_claims(*waited, [UPX_MS], manifests=BUSY), "upx-ms")
    assert busy["verdict"] == analysis.HOST_BUSY and analysis.is_inconclusive(busy["verdict"])
    assert "on a busy host, CPU time: " in busy["why"] and f"({SMALLER})" in busy["why"]  # what CPU gave
    assert _only(check_claims(*waited, [UPX_MS], manifests=[{"run_id": "r", "sessions": [{}]}]),
                 "upx-ms")["verdict"] == HOLDS  # a quiet host: the wall-time verdict stands
    # CPU time itself is judged without the rule: it is what a busy host does not inflate.
    cpu = {**UPX_MS, "id": "cpu", "metric": "cpu_ms_median", "expect": {"difference_max": 1.0}}
    assert _only(check_claims(*waited, [cpu], manifests=BUSY), "cpu")["verdict"] == HOLDS


@pytest.mark.unit
def test_timings_that_did_not_reach_their_precision_are_inconclusive():
    rng = np.random.default_rng(6)
    df, samples = _timed((_row(), rng.normal(1.0, 0.05, 30)),
                         (_row(postlink="upx-9"), rng.normal(10.0, 0.3, 30)))
    # the column (adaptive sampling's) missing, or null: reached
    assert "precision_reached" not in df.columns or df["precision_reached"].is_null().all()
    assert _only(check_claims(df, samples, [UPX_MS]), "upx-ms")["verdict"] == HOLDS
    short = df.with_columns(pl.Series("precision_reached", [True, False]))
    row = _only(check_claims(short, samples, [UPX_MS]), "upx-ms")
    assert row["verdict"] == analysis.PRECISION_NOT_REACHED and row["measured"] == pytest.approx(9.0, abs=0.3)
    # Sizes have no precision to reach.
    size = {**STRIP, "where": {}, "candidate": {"postlink": "upx-9"}, "expect": {"ratio_max": 1.0}}
    sized = short.with_columns(pl.Series("size_bytes", [1000, 400]))
    assert _only(check_claims(sized, samples, [size]), "strip")["verdict"] == HOLDS


@pytest.mark.unit
def test_identical_bytes_take_the_same_time_whatever_their_samples_say():
    rng = np.random.default_rng(7)
    same = dict(binary_sha256="ab" * 32, runner="native")
    df, samples = _timed((_row(**same), rng.normal(1.0, 0.05, 30)),
                         (_row(postlink="strip", **same), rng.normal(1.3, 0.05, 30)))  # a 30% "difference"
    claim = {**UPX_MS, "id": "same", "candidate": {"postlink": "strip"}, "expect": {"difference": 0.3,
                                                                                   "tolerance": 0.15}}
    row = _only(check_claims(df, samples, [claim]), "same")
    assert (row["measured"], row["lo"], row["hi"], row["verdict"]) == (0.0, 0.0, 0.0, SMALLER)
    assert f"{analysis.SAME_BINARY} as hello|go|default|linux/amd64|none|none" in row["why"]


@pytest.mark.unit
def test_a_claim_over_several_chains_and_runs_lists_each_and_agrees_or_says_so():
    """upx-size-strip applies to strip+upx-9 and to upx-9 alone (the default spec's chain)."""
    claim = next(c for c in load_claims() if c.id == "upx-size-strip")
    assert dict(claim.candidate)["postlink"] == ("strip+upx-9", "upx-9")
    demo = _frame(_row(size_bytes=1000), _row(postlink="upx-9", size_bytes=600))
    only = _only(check_claims(demo, None, [claim]), claim.id)
    assert (only["verdict"], only["pairs"], only["measured"]) == (SMALLER, 1, pytest.approx(0.6))
    both = _frame(_row(size_bytes=1000), _row(postlink="upx-9", size_bytes=600),
                  _row(postlink="strip+upx-9", size_bytes=250))
    row = _only(check_claims(both, None, [claim]), claim.id)
    assert (row["verdict"], row["pairs"], row["pairs_holding"]) == (PAIRS_DISAGREE, 2, 1)
    assert "postlink=upx-9: 0.6×" in row["measured_text"]
    assert "postlink=strip+upx-9: 0.25×" in row["measured_text"]
    assert (row["lo"], row["hi"]) == (pytest.approx(0.25), pytest.approx(0.6))
    # A failed chain is named on the line, not dropped in silence.
    failed = _frame(_row(size_bytes=1000), _row(postlink="strip+upx-9", size_bytes=250),
                    _row(postlink="upx-9", status="broken", reason="killed by SIGSEGV"))
    row = _only(check_claims(failed, None, [claim]), claim.id)
    assert row["verdict"] == HOLDS
    assert "hello|go|default|linux/amd64|upx-9|none: broken: killed by SIGSEGV" in row["why"]


@pytest.mark.unit
def test_the_terminal_table_prints_each_claims_words_then_its_lines():
    df = _frame(_row(size_bytes=1000), _row(postlink="strip", size_bytes=690),
                _row("httpd", size_bytes=4000), _row("httpd", postlink="strip", size_bytes=3600))
    text = claims_text(check_claims(df, None, [STRIP, GCCGO]))
    lines = text.splitlines()
    assert lines[0] == "strip: strip saves about 30%"
    assert "claimed: 0.7× (-30%) ± 5%" in lines[1]
    assert lines[2].startswith("  hello / linux/amd64  0.69× (-31%)") and HOLDS in lines[2]
    assert lines[3].startswith("  httpd / linux/amd64  0.9× (-10%) ") and SMALLER in lines[3]
    assert "gccgo: gccgo's dynamic build is tiny" in lines
    assert any(line.startswith("  (this run)") and "add 'gccgo' to the spec's toolchains" in line
               for line in lines)


@pytest.mark.slow
def test_a_demo_like_run_measures_the_upx_claims(tmp_path):
    """The default spec sweeps upx-9 alone (not strip+upx-9): its UPX claims are measured."""
    from slimlab.results import load, load_manifests, load_samples
    from slimlab.sweep import sweep

    spec = {"workloads": ["hello"], "profiles": ["default"], "postlink": ["none", "upx-9"],
            "targets": ["linux/amd64"], "repeats": 8, "warmup": 1}
    run = sweep(spec, data_dir=tmp_path, run_id="demo-like", progress=False)
    df, samples = load(run), load_samples(run)
    assert (df["status"] == "ok").all(), df.select("variant_key", "reason")
    table = check_claims(df, samples, manifests=load_manifests(run))
    sizes = dict(zip(df["postlink"], df["size_bytes"]))
    for claim_id in ("upx-size-strip", "upx-startup", "upx-memory"):
        row = _only(table, claim_id)
        assert not row["verdict"].startswith(NOT_MEASURED), row
        assert (row["workload"], row["target"], row["pairs"]) == ("hello", "linux/amd64", 1)
    assert _only(table, "upx-size-strip")["measured"] == sizes["upx-9"] / sizes["none"]
    startup = _only(table, "upx-startup")
    assert startup["lo"] <= startup["measured"] <= startup["hi"]
    assert startup["measured"] > 0  # unpacking costs time


@pytest.mark.unit
def test_image_start_ups_across_bases_on_a_vfs_engine_are_inconclusive():
    rng = np.random.default_rng(8)
    df, samples = _timed((_row(profile="static", base="scratch"), rng.normal(300, 5, 20)),
                         (_row(profile="static", base="static"), rng.normal(4000, 50, 20)))
    claim = {"id": "base-start", "claim": "a base costs at most 20% of start-up",
             "metric": "startup_ms_median", "baseline": {"base": "scratch"}, "candidate": {"base": "static"}, "expect": {"ratio_max": 1.2}}
    vfs = [{"run_id": "r", "sessions": [{"engine": {"storage_driver": "vfs"}}]}]
    overlay = [{"run_id": "r", "sessions": [{"engine": {"storage_driver": "overlay2"}}]}]
    on_vfs = _only(check_claims(df, samples, [claim], manifests=vfs), "base-start")
    assert on_vfs["verdict"] == analysis.VFS_STORAGE
    assert _only(check_claims(df, samples, [claim], manifests=overlay), "base-start")["verdict"] == LARGER
