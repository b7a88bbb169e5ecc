"""The statistics core and the answers built on it, on frames and samples whose truth is known."""

from __future__ import annotations

import html
import itertools
import json
import re
import shlex
import time

import numpy as np
import polars as pl
import pytest

from slimlab import analysis
from slimlab.analysis import FASTER, LOWER, NO_CHANGE, SLOWER, SMALLER
from slimlab.cli import build_parser
from slimlab.errors import SlimlabError
from slimlab.report.answers import answers_html


def noisy(center: float, n: int = 30, spread: float = 0.01, seed: int = 0) -> np.ndarray:
    """``n`` timings around ``center`` with a relative spread (lognormal, as start-ups are)."""
    return center * np.random.default_rng(seed).lognormal(0, spread, n)


# -- guard_timing: verdicts noise could explain are inconclusive ---------------------------------
@pytest.mark.unit
def test_a_busy_host_keeps_a_wall_time_verdict_only_when_cpu_time_agrees():
    wall = analysis.compare_samples(noisy(10.0, seed=1), noisy(12.0, seed=2))
    assert wall.verdict == SLOWER
    more_cpu = analysis.compare_samples(noisy(5.0, seed=3), noisy(6.0, seed=4), lower_is=LOWER, higher_is="higher")
    same_cpu = analysis.compare_samples(noisy(5.0, seed=3), noisy(5.0, seed=4), lower_is=LOWER, higher_is="higher")
    assert analysis.guard_timing(wall).verdict == SLOWER  # a quiet host: the test decides
    assert analysis.guard_timing(wall, busy=True, cpu=more_cpu).verdict == SLOWER
    assert analysis.guard_timing(wall, busy=True, cpu=same_cpu).verdict == analysis.HOST_BUSY
    assert analysis.guard_timing(wall, busy=True).verdict == analysis.HOST_BUSY  # no CPU time to agree
    assert analysis.is_inconclusive(analysis.HOST_BUSY) and not analysis.is_inconclusive(SLOWER)


@pytest.mark.unit
def test_the_same_binary_is_never_faster_than_itself_and_imprecise_or_vfs_timings_decide_nothing():
    wall = analysis.compare_samples(noisy(10.0, seed=1), noisy(12.0, seed=2))
    assert analysis.guard_timing(wall, same_binary=True).verdict == analysis.SAME_BINARY
    assert analysis.guard_timing(wall, precision_reached=False).verdict == analysis.PRECISION_NOT_REACHED
    assert analysis.guard_timing(wall, vfs=True).verdict == analysis.VFS_STORAGE
    same = analysis.compare_samples(noisy(10.0, seed=1), noisy(10.0, seed=2))
    assert analysis.guard_timing(same, busy=True, precision_reached=False).verdict == NO_CHANGE
    # CPU time vouches for a doubtful wall-time verdict when it rose beyond its own A/A floor
    upx_cpu = analysis.compare_samples(noisy(4.6, seed=3), noisy(36.0, seed=4), lower_is=LOWER, higher_is="higher")
    flat_cpu = analysis.compare_samples(noisy(4.6, seed=3), noisy(4.9, seed=4), lower_is=LOWER, higher_is="higher")
    for doubt in ({"precision_reached": False}, {"noise_floor": 0.5}, {"busy": True}):
        assert analysis.guard_timing(wall, cpu=upx_cpu, cpu_floor=0.2, **doubt).verdict == SLOWER
        assert analysis.is_inconclusive(analysis.guard_timing(wall, cpu=flat_cpu, cpu_floor=0.2, **doubt).verdict)
    assert analysis.guard_timing(wall, cpu=upx_cpu, precision_reached=False).verdict == analysis.PRECISION_NOT_REACHED
    assert analysis.guard_timing(wall, cpu=upx_cpu, vfs=True, cpu_floor=0.2).verdict == analysis.VFS_STORAGE
    assert analysis.guard_timing(same, same_binary=True).verdict == analysis.SAME_BINARY


# -- compare_samples: the verdict rule -----------------------------------------------------------
@pytest.mark.unit
def test_a_20_percent_shift_is_called_slower_and_its_interval_holds_the_truth():
    found = analysis.compare_samples(noisy(10.0, seed=1), noisy(12.0, seed=2))
    assert found.verdict == SLOWER
    assert found.p_value < 0.001
    assert found.lo < 1.2 < found.hi
    assert found.lo > 1.05  # the whole interval is beyond the factor


@pytest.mark.unit
def test_identical_distributions_are_no_significant_change():
    found = analysis.compare_samples(noisy(10.0, seed=1), noisy(10.0, seed=2))
    assert found.verdict == NO_CHANGE
    assert found.p_value > 0.01
    assert found.lo < 1.0 < found.hi


@pytest.mark.unit
def test_a_3_percent_shift_is_significant_yet_no_change_under_the_factor():
    baseline, candidate = noisy(10.0, n=40, spread=0.005, seed=1), noisy(10.3, n=40, spread=0.005, seed=2)
    found = analysis.compare_samples(baseline, candidate, factor=1.05)
    assert found.p_value < 0.01  # the test alone would call it
    assert found.verdict == NO_CHANGE  # the factor does not
    assert analysis.compare_samples(baseline, candidate, factor=1.02).verdict == SLOWER


@pytest.mark.unit
def test_fewer_resamples_move_the_interval_ends_less_than_two_decimals():
    a, b = noisy(10.0, n=20, spread=0.05, seed=3), noisy(11.0, n=20, spread=0.05, seed=4)
    full = analysis.compare_samples(a, b)
    cut = analysis.compare_samples(a, b, n_resamples=analysis.SHOWN_RESAMPLES)
    assert (cut.verdict, cut.p_value) == (full.verdict, full.p_value)
    assert abs(cut.lo - full.lo) < 0.01 and abs(cut.hi - full.hi) < 0.01


# -- the frontier and the recommendation ---------------------------------------------------------
def frame(rows: list[tuple], **common) -> pl.DataFrame:
    """Result rows from (profile, postlink, size, start-up ms, peak RSS KiB) and shared columns."""
    defaults = {"run_id": "r", "workload": "hello", "toolchain": "go", "target": "linux/amd64", "base": "none",
                "status": "ok", "emulated": False, "memory_scope": "program", "flags": [], "build_env": [],
                "postlink_steps": [], "image_size_bytes": None}
    out = []
    for profile, postlink, size, ms, rss, *extra in rows:
        row = {**defaults, **common, "profile": profile, "postlink": postlink, "size_bytes": size,
               "startup_ms_median": ms, "peak_rss_kib_median": rss, **(extra[0] if extra else {})}
        row["variant_key"] = "|".join(str(row[c]) for c in ("workload", "toolchain", "profile", "target",
                                                             "postlink", "base"))
        out.append(row)
    return pl.DataFrame(out, schema_overrides={"image_size_bytes": pl.Int64, "size_bytes": pl.Int64,
                                               "startup_ms_median": pl.Float64, "peak_rss_kib_median": pl.Float64})


@pytest.mark.unit
def test_pareto_mask_keeps_exactly_the_undominated_rows():
    df = pl.DataFrame({"size": [1, 2, 3, 2, 1, None], "ms": [5, 3, 1, 4, 5, 0], "kib": [1, 1, 1, 1, 2, 0]})
    # row 3 is beaten by row 1 (same size and memory, faster); row 4 by row 0; row 5 has a null.
    assert analysis.pareto_mask(df, ["size", "ms", "kib"]).to_list() == [True, True, True, False, False, False]


def timed(df: pl.DataFrame, spread: dict[str, float] | None = None, n: int = 20, cpu: dict[str, float] | None = None,
          seed: int = 0) -> pl.DataFrame:
    """Samples per row around its median start-up (lognormal, ``spread[variant_key]`` or 2%), with CPU
    time around ``cpu[variant_key]`` (default: a third of the start-up median)."""
    rows = []
    for index, row in enumerate(df.iter_rows(named=True)):
        key = row["variant_key"]
        ms = noisy(row["startup_ms_median"], n=n, spread=(spread or {}).get(key, 0.02), seed=seed + index)
        cpus = noisy((cpu or {}).get(key, row["startup_ms_median"] / 3), n=n, spread=0.02, seed=seed + 50 + index)
        rows += [{"run_id": row["run_id"], "variant_key": key, "sample_index": i, "startup_ms": float(m),
                  "cpu_ms": float(c), "peak_rss_kib": row["peak_rss_kib_median"]}
                 for i, (m, c) in enumerate(zip(ms, cpus))]
    return pl.DataFrame(rows)


KEY = "hello|go|{}|linux/amd64|{}|none".format


@pytest.mark.unit
def test_the_recommendation_is_the_smallest_build_not_significantly_slower_than_the_fastest():
    df = frame([
        ("default", "none", 2000, 10.0, 5000),
        ("stripped", "none", 1400, 10.3, 5000),  # 3% slower: under the factor, smaller: the pick
        ("stripped", "upx-9", 600, 40.0, 5000),  # smallest of all, but 4x slower (significant)
        ("static", "none", 1900, 10.0, 4000),  # as fast, lowest memory
        ("trimmed", "none", 2100, 12.0, 6000),  # dominated by default
    ])
    ranked = analysis.answer_rows(df, timed(df))
    answer = analysis.conclusions(ranked).row(0, named=True)
    assert answer["recommended_key"] == KEY("stripped", "none")
    verdict = dict(zip(ranked["variant_key"], ranked["vs_fastest"]))
    assert verdict[KEY("stripped", "upx-9")] == SLOWER and verdict[KEY("stripped", "none")] == NO_CHANGE
    assert answer["smallest_key"] == KEY("stripped", "upx-9")
    assert answer["lowest_memory_key"] == KEY("static", "none")
    assert "not significantly slower" in answer["rule"]
    # A build 12% slower by its median, but with too few and too noisy starts for the test to tell:
    # not slower, so the smaller one is still picked (the old "within 10%" rule dropped it by chance).
    noisy_df = df.with_columns(pl.when(pl.col("variant_key") == KEY("stripped", "none")).then(11.2)
                               .otherwise(pl.col("startup_ms_median")).alias("startup_ms_median"))
    samples = timed(noisy_df, {KEY("stripped", "none"): 0.25}, n=5)
    assert analysis.conclusions(analysis.answer_rows(noisy_df, samples))["recommended_key"][0] == KEY("stripped", "none")
    # Significantly 20% slower: out; the next smallest as-fast build, static (1900 B), wins.
    slower = df.with_columns(pl.when(pl.col("profile") == "stripped").then(pl.col("startup_ms_median") * 1.2)
                             .otherwise(pl.col("startup_ms_median")).alias("startup_ms_median"))
    assert analysis.conclusions(analysis.answer_rows(slower, timed(slower)))["recommended_key"][0] == KEY("static", "none")


@pytest.mark.unit
def test_ties_in_size_go_to_the_lower_memory_and_the_same_binary_is_never_slower_than_itself():
    same = {"binary_sha256": "ab" * 32, "runner": "native"}
    df = frame([("default", "none", 2000, 10.0, 5000), ("trimmed", "strip", 1400, 9.6, 5200, same),
                ("static", "strip", 1400, 10.9, 5100, same)])  # byte-identical to trimmed·strip
    # The identical pair's medians differ by 13% (noise): one binary, one pooled timing, one verdict,
    # and between the two the lower memory decides.
    ranked = analysis.answer_rows(df, timed(df))
    verdict = dict(zip(ranked["variant_key"], ranked["vs_fastest"]))
    assert verdict[KEY("static", "strip")] == verdict[KEY("trimmed", "strip")]
    assert verdict[KEY("default", "none")] in ("fastest", NO_CHANGE)
    assert analysis.conclusions(ranked)["recommended_key"][0] == KEY("static", "strip")  # 5100 < 5200 KiB
    assert analysis.same_binary(*ranked.filter(pl.col("size_bytes") == 1400).to_dicts())


@pytest.mark.unit
def test_on_a_busy_host_a_wall_time_difference_without_cpu_time_behind_it_is_inconclusive():
    df = frame([("default", "none", 2000, 10.0, 5000), ("static", "none", 1400, 12.0, 5000)])
    key = KEY("static", "none")
    same_cpu = {KEY("default", "none"): 3.0, key: 3.0}
    quiet = analysis.answer_rows(df, timed(df, cpu=same_cpu))
    assert analysis.conclusions(quiet)["recommended_key"][0] == KEY("default", "none")  # 20% slower: out
    busy = analysis.answer_rows(df, timed(df, cpu=same_cpu), busy_runs={"r"})
    answer = analysis.conclusions(busy).row(0, named=True)
    assert answer["recommended_key"] == key and answer["recommended_vs_fastest"] == analysis.HOST_BUSY
    more_cpu = analysis.answer_rows(df, timed(df, cpu={KEY("default", "none"): 3.0, key: 3.6}), busy_runs={"r"})
    assert analysis.conclusions(more_cpu)["recommended_key"][0] == KEY("default", "none")  # CPU time agrees
    # CPU time as the ranking metric: the static build costs no more CPU, so it is not slower.
    by_cpu = analysis.answer_rows(df, timed(df, cpu=same_cpu), constraints=analysis.parse_constraints(rank_by="cpu"))
    assert analysis.conclusions(by_cpu)["recommended_key"][0] == key


@pytest.mark.unit
def test_constraints_narrow_the_recommendation_and_bad_ones_are_refused_before_any_work():
    df = frame([("default", "none", 2000, 10.0, 5000, {"is_static": False}),
                ("static", "none", 1900, 10.0, 5000, {"is_static": True}),
                ("stripped", "none", 1400, 10.0, 5000, {"is_static": False}),
                ("static", "upx-9", 600, 10.2, 5000, {"is_static": True, "postlink_steps": ["upx-9"]})])
    arm = frame([("static", "none", 1900, 80.0, 5000, {"is_static": True})], target="linux/arm64", emulated=True)
    both = pl.concat([df, arm], how="diagonal_relaxed")
    samples = timed(both)

    def pick(**words):
        ranked = analysis.answer_rows(both, samples, constraints=analysis.parse_constraints(**words))
        return analysis.conclusions(ranked).filter(pl.col("target") == "linux/amd64")["recommended_key"][0]

    assert pick() == KEY("static", "upx-9")
    assert pick(require=["no-upx"]) == KEY("stripped", "none")
    assert pick(require=["no-upx,static"]) == KEY("static", "none")
    assert pick(require=["works-on=linux/arm64"]) == KEY("static", "none")  # the only build that also works there
    assert pick(max_startup_ms=10.1) == KEY("stripped", "none")
    for bad, message in ((dict(require=["no-upxx"]), "no-upx"), (dict(require=["works-on=linux/arm65"]), "linux/arm64"),
                         (dict(require=["static=1"]), "takes no value"), (dict(rank_by="wall"), "startup"),
                         (dict(max_startup_ms=-1), "positive")):
        with pytest.raises(SlimlabError, match=message):
            analysis.parse_constraints(**bad)


@pytest.mark.unit
def test_emulated_targets_images_and_failures_are_answered_apart():
    native = frame([("default", "none", 2000, 10.0, 5000), ("stripped", "none", 1400, 10.0, 5000)])
    arm = frame([("default", "none", 1900, 300.0, None), ("stripped", "none", 1300, 310.0, None)],
                target="linux/arm64", emulated=True, memory_scope="emulator+program")
    images = frame([("default", "none", 2000, 400.0, 5000, {"image_size_bytes": 2600}),
                    ("stripped", "none", 1400, 390.0, 5000, {"image_size_bytes": 2100})], base="scratch")
    broken = frame([("static", "none", 10, 0.1, 10, {"status": "broken"})])
    answers = analysis.conclusions(pl.concat([native, arm, images, broken], how="diagonal_relaxed"))
    assert answers.height == 3
    by = {(r["target"], r["scope"]): r for r in answers.iter_rows(named=True)}
    assert by[("linux/amd64", "binary")]["fastest_ms"] == 10.0  # not the broken row's 0.1
    assert by[("linux/amd64", "binary")]["smallest_bytes"] == 1400
    assert by[("linux/arm64", "binary")]["emulated"] is True
    assert by[("linux/arm64", "binary")]["lowest_memory_key"] is None  # QEMU's RSS is not the program's
    assert by[("linux/arm64", "binary")]["recommended_key"] is not None  # frontier over size and start-up
    assert by[("linux/amd64", "image")]["smallest_bytes"] == 2100  # the image's size, not the binary's
    # rows written before memory_scope existed: a user-mode emulator as runner says the same
    old = arm.drop("memory_scope").with_columns(pl.lit("qemu-aarch64-static").alias("runner"),
                                                pl.lit(30000.0).alias("peak_rss_kib_median"))
    assert analysis.conclusions(old)["lowest_memory_key"].to_list() == [None]
    system = old.with_columns(pl.lit("qemu-system-aarch64").alias("runner"))  # a guest measures the program
    assert analysis.conclusions(system)["lowest_memory_key"].to_list() == ["hello|go|default|linux/arm64|none|none"]


# -- effects against a baseline ------------------------------------------------------------------
def sampled(df: pl.DataFrame, shift: dict[str, float], n: int = 20) -> pl.DataFrame:
    """Samples per row: start-up around its median (times ``shift[profile]``), RSS around its own."""
    rows = []
    for index, row in enumerate(df.iter_rows(named=True)):
        ms = noisy(row["startup_ms_median"] * shift.get(row["profile"], 1.0), n=n, seed=index)
        kib = noisy(row["peak_rss_kib_median"] or 1, n=n, spread=0.002, seed=100 + index)
        rows += [{"run_id": row["run_id"], "variant_key": row["variant_key"], "sample_index": i,
                  "startup_ms": float(m), "peak_rss_kib": int(k)} for i, (m, k) in enumerate(zip(ms, kib))]
    return pl.DataFrame(rows)


@pytest.mark.unit
def test_effects_state_each_build_against_the_default_baseline():
    df = frame([("default", "none", 2000, 10.0, 5000, {"flags": ["-trimpath"]}),
                ("stripped", "none", 1320, 10.0, 5000, {"flags": ["-trimpath", "-ldflags=-s -w"]}),
                ("static", "upx-9", 800, 12.0, 4000)])
    found = analysis.effects(df, sampled(df, {}))
    assert set(found["variant_key"]) == {"hello|go|stripped|linux/amd64|none|none",
                                         "hello|go|static|linux/amd64|upx-9|none"}  # not the baseline itself
    stripped = {r["metric"]: r for r in found.filter(pl.col("changed") == "profile=stripped").iter_rows(named=True)}
    assert stripped["size"]["ratio"] == pytest.approx(0.66) and stripped["size"]["verdict"] == SMALLER
    assert stripped["size"]["p_value"] is None  # exact
    assert stripped["startup"]["verdict"] == NO_CHANGE
    packed = {r["metric"]: r for r in found.filter(pl.col("changed") == "profile=static, postlink=upx-9")
              .iter_rows(named=True)}
    assert packed["startup"]["verdict"] == SLOWER and packed["startup"]["lo"] > 1.1
    assert packed["peak_rss"]["verdict"] == LOWER
    text = answers_html(df, sampled(df, {}), [])
    assert "start-up 20% slower (ratio 1.20 [" in text and "−60% size (exact)" in text
    far = answers_html(df, sampled(df, {"static": 10}), [])
    assert re.search(r"start-up 1[12]\.\d× slower \(ratio 1[12]\.\d\d \[", far), far  # ×, not "+1100%"
    assert set(found.columns) >= {"workload", "target", "variant_key", "changed", "metric", "ratio", "lo", "hi",
                                  "p_value", "verdict"}


@pytest.mark.unit
def test_the_baseline_can_be_chosen_and_is_checked():
    df = frame([("default", "none", 2000, 10.0, 5000), ("stripped", "none", 1400, 10.0, 5000),
                ("stripped", "upx-9", 600, 20.0, 5000)])
    samples = sampled(df, {})
    found = analysis.effects(df, samples, baseline={"postlink": "none"}, keys=["hello|go|stripped|linux/amd64|upx-9|none"])
    assert set(found["baseline_key"]) == {"hello|go|stripped|linux/amd64|none|none"}
    assert set(found["changed"]) == {"postlink=upx-9"}
    assert found.filter(pl.col("metric") == "startup")["verdict"][0] == SLOWER
    with pytest.raises(SlimlabError, match=r"unknown baseline axis 'profil' \(did you mean 'profile'\?\)"):
        analysis.effects(df, samples, baseline={"profil": "default"})


@pytest.mark.unit
def test_a_baseline_from_the_command_line():
    assert analysis.parse_baseline("profile=stripped, postlink=upx-9") == {"profile": "stripped", "postlink": "upx-9"}
    for bad, message in (("profile", "AXIS=VALUE pairs"), ("", "AXIS=VALUE pairs"),
                         ("chain=none", "unknown baseline axis 'chain'")):
        with pytest.raises(SlimlabError, match=message):
            analysis.parse_baseline(bad)


@pytest.mark.unit
def test_a_changed_start_up_is_found_through_the_raw_samples():
    df = frame([("default", "none", 2000, 10.0, 5000), ("stripped", "none", 1400, 10.0, 5000)])
    found = analysis.effects(df, sampled(df, {"stripped": 0.8}))
    assert found.filter(pl.col("metric") == "startup")["verdict"].to_list() == [FASTER]


# -- the answers section -------------------------------------------------------------------------
@pytest.mark.unit
def test_answers_html_names_the_builds_and_escapes_user_labels():
    evil = "<img src=x onerror=alert(1)>"
    df = frame([("default", "none", 2000, 10.0, 5000, {"flags": ["-trimpath"]}),
                ("stripped", "none", 1320, 10.1, 5000, {"flags": ["-trimpath", "-ldflags=-s -w"]}),
                ("stripped", "none", 1320, 400.0, 5000, {"flags": ["-trimpath", "-ldflags=-s -w"], "base": "scratch",
                                                         "image_size_bytes": 1900})], workload=evil)
    manifests = [{"run_id": "r", "tools": {}}]
    text = answers_html(df, sampled(df, {}), manifests)
    assert evil not in text and html.escape(evil) in text
    assert "<li><code>-ldflags=-s -w</code> (profile=stripped): " in text
    assert "−34% size (exact)" in text
    assert "start-up no significant change (ratio " in text
    assert "Recommended:</b> stripped · no post-link" in text
    assert f"flags as argv: <code>{html.escape(json.dumps(['-trimpath', '-ldflags=-s -w']))}</code>" in text
    # the build line names what the build read from its environment, and runs in a clean one
    line = html.unescape(re.search(r"build in the workload's source directory: <code>([^<]+)</code>", text).group(1))
    assert line.startswith('env -i PATH="$PATH" HOME="$HOME" ') and "GOOS=linux GOARCH=amd64" in line
    assert "CGO_ENABLED=1" in line  # unset natively: the go command's default, written out
    assert line.endswith("go build -o img-src-x-onerror-alert-1 -trimpath '-ldflags=-s -w' .")
    # the image's block: the command that writes its Dockerfile, quoted for a shell
    assert "slimlab dockerfile data/runs/r " in text and "--out dockerfile-img-src-x-onerror-alert-1" in text
    assert html.escape("'<img") in text
    # ...that a shell hands to `slimlab dockerfile` intact, the hostile workload name included
    command = html.unescape(re.search(r"<code>(slimlab dockerfile [^<]+)</code>", text).group(1))
    args = build_parser().parse_args(shlex.split(command)[1:])
    assert (args.command, args.run_dir, args.variant_key) == ("dockerfile", "data/runs/r",
                                                              f"{evil}|go|stripped|linux/amd64|none|scratch")
    assert "not significantly slower to start than the fastest" in text
    # every build in a table against its baseline
    table = re.search(r'<table class="answer-techniques">.*?</table>', text).group(0)
    assert "<td>stripped · no post-link ★</td><td>profile=stripped</td>" in table and "<td>baseline</td>" in table
    # another baseline: the default build is now the one stated against the stripped one
    other = answers_html(df.head(2), sampled(df.head(2), {}), manifests, baseline={"profile": "stripped"})
    assert "against the same build with profile=stripped, with 95% intervals" in other
    assert "<li>default · no post-link (profile=default): <span class=\"effect-worse\">+52% size (exact)</span>" in other
    alone = answers_html(df.head(1), sampled(df.head(1), {}), manifests)
    assert "The builds named here are the baseline (profile=default, postlink=none) themselves." in alone


@pytest.mark.unit
def test_answers_without_a_working_build_say_so():
    df = frame([("default", "none", None, None, None, {"status": "build_failed"})])
    assert "No build worked" in answers_html(df, None, [])


def synthetic_run(workloads: int = 5, repeats: int = 20) -> tuple[pl.DataFrame, pl.DataFrame]:
    """1,000 variants (5 workloads x 5 toolchains x 10 profiles x 4 chains) with ``repeats`` samples each."""
    rng = np.random.default_rng(7)
    rows = []
    for w, toolchain, p, chain in itertools.product(range(workloads), ["go", "go1.22.10", "go1.24.1", "gccgo", "tinygo"],
                                                     ["default", *(f"p{i}" for i in range(9))],
                                                     ["none", "strip", "upx-9", "strip+upx-9"]):
        packed = "upx" in chain
        rows.append((p, chain, int(rng.uniform(1e6, 3e6) * (0.4 if packed else 1)),
                     float(rng.uniform(1, 3) * (4 if packed else 1)), float(rng.uniform(1500, 2500)),
                     {"workload": f"w{w}", "toolchain": toolchain, "flags": ["-trimpath", f"-ldflags=-X main.p={p}"]}))
    df = frame(rows)
    return df, sampled(df, {}, n=repeats)


@pytest.mark.unit
def test_answers_for_1000_variants_render_in_well_under_the_report_budget():
    df, samples = synthetic_run()
    assert df.height == 1000
    answers_html(df.head(40), samples, [])  # imports and first-call costs are not the section's
    started = time.process_time()  # CPU time: a busy machine's waiting is not the section's cost
    text = answers_html(df, samples, [])
    seconds = time.process_time() - started
    assert text.count('<div class="answer">') == 5
    # 200 builds a block: the table lists the named ones and says where the rest are
    assert text.count("more are in the table of all rows") == 5
    # all threads' CPU (polars uses both cores): computing every effect would take ~16 s
    assert seconds < 5.0, f"{seconds:.2f} s of CPU: the whole report has 5 s for 1,000 variants"


@pytest.mark.unit
def test_the_answers_give_the_fastest_and_lowest_medians_with_their_intervals():
    df, samples = synthetic_run(workloads=1)
    text = html.unescape(answers_html(df, samples, []))
    fastest = re.search(r"Fastest to start: .*? — ([\d.,]+) ms median \[([\d.,]+), ([\d.,]+)\], n = (\d+)", text)
    memory = re.search(r"Lowest memory: .*? — ([\d.,]+) KiB peak RSS median \[([\d.,]+), ([\d.,]+)\], n = (\d+)", text)
    for found in (fastest, memory):
        assert found, text[:2000]
        median, lo, hi = (float(g.replace(",", "")) for g in found.groups()[:3])
        assert lo <= median <= hi and int(found.group(4)) == 20


@pytest.mark.unit
def test_a_dynamic_smallest_build_says_which_libraries_it_loads():
    df, samples = synthetic_run(workloads=1)
    smallest = analysis.conclusions(analysis.answer_rows(df)).filter(pl.col("scope") != "image")["smallest_key"][0]
    df = df.with_columns(
        pl.when(pl.col("variant_key") == smallest).then(pl.lit(["libgo.so.21"])).otherwise(pl.lit(None))
        .cast(pl.List(pl.String)).alias("needed_libs"),
        pl.when(pl.col("variant_key") == smallest).then(pl.lit(60 * 1024 * 1024)).otherwise(pl.lit(None))
        .cast(pl.Int64).alias("needed_libs_bytes"))
    text = html.unescape(answers_html(df, samples, []))
    assert "(file); it loads 1 shared library (libgo.so.21: 60.00 MiB with theirs)" in text


@pytest.mark.unit
def test_report_constraints_from_the_command_line_are_checked_before_any_work(tmp_path, capsys):
    from slimlab.cli import main

    out = tmp_path / "never.html"
    assert main(["report", str(tmp_path / "no-such-run"), "--out", str(out), "--require", "no-upx,works-on=linux/arm46"]) == 2
    assert "did you mean 'linux/arm64'" in capsys.readouterr().err and not out.exists()
    args = build_parser().parse_args(["report", "r", "--out", "o", "--require", "static", "--require", "no-upx",
                                      "--max-startup-ms", "5", "--rank-by", "cpu"])
    assert analysis.parse_constraints(args.require, args.max_startup_ms, args.rank_by) == analysis.Constraints(
        (("static", None), ("no-upx", None)), 5.0, "cpu")


def alternating(center: float, n: int, step: float, seed: int) -> np.ndarray:
    """Start-ups whose bursts of 5 alternate between ``center`` and ``center * (1 + step)``: a
    host whose state flips between bursts, which the A/A halves (alternate bursts) catch."""
    rng = np.random.default_rng(seed)
    level = np.where((np.arange(n) // 5) % 2 == 0, 1.0, 1.0 + step)
    return center * level * rng.lognormal(0, 0.005, n)


@pytest.mark.unit
def test_a_difference_within_the_a_a_noise_floor_decides_nothing():
    from slimlab.sampling import noise_floors

    df = frame([("default", "none", 2000, 10.0, 5000), ("stripped", "none", 1400, 10.6, 5000),
                ("static", "none", 1900, 10.0, 5000), ("trimmed", "none", 2100, 10.0, 5000)])
    rows = []
    for index, row in enumerate(df.iter_rows(named=True)):
        values = alternating(row["startup_ms_median"], 40, 0.10, seed=index)
        rows += [{"run_id": "r", "variant_key": row["variant_key"], "sample_index": i, "startup_ms": float(v),
                  "cpu_ms": 3.0, "peak_rss_kib": 5000} for i, v in enumerate(values)]
    samples = pl.DataFrame(rows)
    floors = noise_floors(df, samples)
    wall = floors["startup_ms"]
    assert set(wall) == {("r", False, "binary")} and wall[("r", False, "binary")] == pytest.approx(0.10, abs=0.01)
    key = KEY("stripped", "none")
    plain = analysis.answer_rows(df, samples)
    assert dict(zip(plain["variant_key"], plain["vs_fastest"]))[key] == SLOWER  # 6%, p < 0.01: "slower"...
    assert analysis.conclusions(plain)["recommended_key"][0] == KEY("static", "none")
    guarded = analysis.answer_rows(df, samples, noise_floors=floors)
    # ...but the same binary's own halves differ by 10%: a 6% difference is within the noise
    assert dict(zip(guarded["variant_key"], guarded["vs_fastest"]))[key] == analysis.WITHIN_NOISE_FLOOR
    answer = analysis.conclusions(guarded).row(0, named=True)
    assert answer["recommended_key"] == key and answer["recommended_vs_fastest"] == analysis.WITHIN_NOISE_FLOOR
    text = answers_html(df, samples, [])
    assert "Noise floor observed here" in text and "rests on an inconclusive comparison" in text


@pytest.mark.unit
def test_copied_samples_of_one_binary_are_pooled_once():
    same = {"binary_sha256": "cd" * 32, "runner": "native"}
    df = frame([("trimmed", "strip", 1400, 10.0, 5000, same),
                ("static", "strip", 1400, 10.0, 5000, {**same, "same_binary_as": KEY("trimmed", "strip")})])
    samples = timed(df.head(1))
    samples = pl.concat([samples, samples.with_columns(pl.lit(KEY("static", "strip")).alias("variant_key"))])
    rows = df.to_dicts()
    pooled = analysis._pooled(analysis.sample_index(samples), rows, [0, 1], "startup_ms")
    assert len(pooled) == 20  # the copy's 20 are the same starts: counting them twice would halve p


@pytest.mark.unit
def test_builds_of_one_size_are_told_apart_by_significantly_lower_memory_only():
    df = frame([("static", "strip", 1400, 10.0, 1864), ("trimmed", "strip", 1400, 9.9, 1860)])
    samples = timed(df)  # RSS 1864 vs 1860 KiB in every sample: 0.2%, under the factor
    assert analysis.conclusions(analysis.answer_rows(df, samples))["recommended_key"][0] == KEY("static", "strip")
    leaner = df.with_columns(pl.when(pl.col("profile") == "trimmed").then(1500).otherwise(1864)
                             .alias("peak_rss_kib_median"))
    assert analysis.conclusions(analysis.answer_rows(leaner, timed(leaner)))["recommended_key"][0] == \
        KEY("trimmed", "strip")
    # on a busy host the runtime's extra threads move peak RSS: memory no longer splits a size tie
    busy = analysis.answer_rows(leaner, timed(leaner), busy_runs={"r"})
    assert analysis.conclusions(busy)["recommended_key"][0] == KEY("static", "strip")


@pytest.mark.unit
def test_a_build_costing_far_more_cpu_is_not_as_fast_though_the_clock_cannot_tell():
    # A packed binary in a container: the start (100 ms, noisy) hides UPX's 30 ms of CPU time.
    df = frame([("static", "none", 5_800_000, 100.0, 9000), ("static", "upx-9", 2_400_000, 104.0, 10000)],
               base="scratch", image_size_bytes=None)
    df = df.with_columns(pl.col("size_bytes").alias("image_size_bytes"))
    keys = df["variant_key"].to_list()
    samples = timed(df, spread={k: 0.2 for k in keys}, n=10, cpu={keys[0]: 4.6, keys[1]: 36.0})
    floors = {"cpu_ms": {("r", False, "image"): 0.2}}
    ranked = analysis.answer_rows(df, samples, noise_floors=floors)
    verdict = dict(zip(ranked["variant_key"], ranked["vs_fastest"]))
    assert verdict[keys[1]] == analysis.CPU_HIGHER
    assert analysis.conclusions(ranked)["recommended_key"][0] == keys[0]
    # without a known CPU floor CPU time cannot vouch: the smaller packed image is not slower by the clock
    assert analysis.conclusions(analysis.answer_rows(df, samples))["recommended_key"][0] == keys[1]


@pytest.mark.unit
def test_cpu_time_is_judged_against_the_leanest_build_not_a_packed_one_the_clock_crowned():
    df = frame([("default", "upx-9", 3_000_000, 171.0, 9000), ("static", "none", 1_585_000, 193.0, 9000),
                ("static", "upx-9", 695_000, 172.0, 9000)], base="scratch")
    df = df.with_columns(pl.col("size_bytes").alias("image_size_bytes"))
    samples = timed(df, spread={k: 0.1 for k in df["variant_key"]}, n=15,
                    cpu=dict(zip(df["variant_key"], (9.7, 1.7, 9.9))))
    ranked = analysis.answer_rows(df, samples, noise_floors={"cpu_ms": {("r", False, "image"): 0.2}})
    verdict = dict(zip(ranked["variant_key"], ranked["vs_fastest"]))
    packed = df.filter(pl.col("size_bytes") == 695_000)["variant_key"][0]
    assert verdict[packed] == analysis.CPU_HIGHER  # against the unpacked build's CPU, not the packed fastest's
    assert analysis.conclusions(ranked)["recommended_key"][0] == df.filter(pl.col("size_bytes") == 1_585_000)["variant_key"][0]
