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
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    NOT_MEASURED,
    check_claims,
    claims_html,
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
def test_a_size_claim_holds_and_another_does_not_with_the_exact_ratio():
    df = _frame(_row(size_bytes=1000), _row(postlink="strip", size_bytes=690),
                _row("httpd", size_bytes=4000), _row("httpd", postlink="strip", size_bytes=3600))
    by_workload = check_claims(df, None, [STRIP], by="workload")
    hello, httpd = (r for r in by_workload.iter_rows(named=True))
    assert (hello["group"], hello["verdict"], hello["measured"]) == ("hello", HOLDS, pytest.approx(0.69))
    assert (httpd["group"], httpd["verdict"], httpd["measured"]) == ("httpd", FAILS, pytest.approx(0.90))
    assert hello["lo"] == hello["hi"] == hello["measured"]  # exact sizes: no interval
    # Pooled: the geometric mean of the two ratios, which lies outside 0.70 +- 0.05.
    overall = _only(check_claims(df, None, [STRIP]), "strip")
    assert overall["measured"] == pytest.approx(math.sqrt(0.69 * 0.90))
    assert (overall["verdict"], overall["pairs"], overall["pairs_holding"]) == (FAILS, 2, 1)


@pytest.mark.unit
def test_pairs_share_every_other_axis_so_profiles_are_not_mixed():
    # A stripped build's strip saves nothing; pairing it with the default build's none would
    # claim a 31% saving that no build has.
    df = _frame(_row(size_bytes=1000), _row(profile="stripped", postlink="strip", size_bytes=690))
    row = _only(check_claims(df, None, [{**STRIP, "where": {}}]), "strip")
    assert row["verdict"] == NOT_MEASURED
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
    assert (timed["verdict"], timed["pairs"]) == (NOT_MEASURED, 0)
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
    assert row["verdict"] == FAILS
    assert row["measured"] == pytest.approx(np.median(upx) - np.median(base))
    assert row["lo"] < row["measured"] < row["hi"] < 40
    assert row["lo"] > 13.05  # wholly above the claimed band: it does not hold
    # The same claim with a band the measurement straddles: inconclusive, not "holds".
    wide = {**UPX_MS, "id": "wide", "expect": {"difference_min": row["measured"], "difference_max": 100}}
    assert _only(check_claims(df, samples, [wide]), "wide")["verdict"] == INCONCLUSIVE
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
    assert gccgo["verdict"] == strip["verdict"] == NOT_MEASURED
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
    static = _only(table, "static")
    # Only the image row has an image size: the bare build is not a pair that lacks one.
    image = {**claims[1], "id": "any-base", "where": {"workload": "httpd", "profile": "static"}}
    assert _only(check_claims(df, None, [image]), "any-base")["pairs"] == 1
    no_image = {**image, "id": "bare", "where": {**image["where"], "base": "none"}}
    assert "image_size_bytes is empty on every ok row" in _only(check_claims(df, None, [no_image]), "bare")["why"]
    assert (static["verdict"], static["pairs_holding"]) == (FAILS, 1)
    assert static["measured_text"] == "is_static on 1 of 2 rows"
    assert _only(table, "image")["verdict"] == HOLDS


@pytest.mark.unit
def test_the_html_table_is_escaped():
    df = _frame(_row("<img src=x onerror=alert(1)>", size_bytes=1000),
                _row("<img src=x onerror=alert(1)>", postlink="strip", size_bytes=700))
    claim = {**STRIP, "where": {}}
    page = claims_html(check_claims(df, None, [claim], by="workload"))
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
        if dict(claim.candidate).get("toolchain") == "tinygo":
            continue
        for side in (claim.baseline, claim.candidate) if claim.compares else ((),):
            wanted = {**dict(claim.where), **dict(side)}
            assert any(all(v[k] == value for k, value in wanted.items()) for v in variants), (claim.id, wanted)


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
    assert strip["verdict"] in (HOLDS, FAILS) and strip["pairs"] == 1
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
    assert "│ mine " in printed and "│ strip-size " in printed


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

    assert verdict(1.0) == FAILS  # the same memory: not higher
    assert verdict(1.02) == FAILS  # 2% more: within noise, not called higher (analysis.FACTOR is 1.05)
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
    found = _only(check_claims(_frame(*native, *arm), samples, [rss]), "rss")
    assert found["pairs"] == 1  # the amd64 pair alone
    assert found["verdict"] == FAILS and found["measured"] == pytest.approx(0.995, abs=0.005)
