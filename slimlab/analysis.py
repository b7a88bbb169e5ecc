"""Statistics over results: medians with bootstrap confidence intervals, significance, the
Pareto frontier.

The rules follow asv's ``compare`` and benchstat: a difference between two sets of timed
samples is called faster or slower only when a Mann–Whitney U test on the raw samples
rejects "same distribution" (p < ``ALPHA``) *and* the ratio of medians is beyond
``FACTOR`` either way; anything else is "no significant change". Sizes are exact (one
deterministic figure per binary), so their ratio needs no test: its interval is the value.

Pure functions of frames and sample lists: the report, ``slimlab compare``, the claims
and the explorer all call these, so they agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

CONFIDENCE = 0.95
ALPHA = 0.01  # Mann–Whitney U p-value below which two sample sets differ
FACTOR = 1.05  # ...and the ratio of medians must also be beyond this (either way)
N_RESAMPLES = 2000  # bootstrap resamples: enough for a 95% interval's ends to settle
# What the report's answers and `slimlab compare` use for the intervals they print: half the
# time (a bootstrap costs ~5-10 ms here, most of it medians of resamples), and the ends move by
# about 0.002 (sd over seeds; a ratio near 1.1, 20 samples a side), below the two or three
# decimals shown. Verdicts come from the Mann-Whitney test, which resampling does not touch.
SHOWN_RESAMPLES = 1000
SEED = 20261129  # reproducible intervals: the same samples give the same report

# Verdicts (fixed words: reports, compare's table and the claims all use them)
SMALLER, LARGER, FASTER, SLOWER, LOWER, HIGHER = "smaller", "larger", "faster", "slower", "lower", "higher"
NO_CHANGE = "no significant change"
TOO_FEW = "too few samples"
MIN_SAMPLES = 3  # per side, for an interval or a test to mean anything
# A timing verdict that noise could explain is not a verdict: "inconclusive (why)". Every place
# that states one (answers, compare, claims, explorer) uses these words.
INCONCLUSIVE = "inconclusive"
SAME_BINARY = "same binary"  # identical shipped bytes: any timing difference between them is noise


def inconclusive(why: str) -> str:
    """The verdict "inconclusive (why)"."""
    return f"{INCONCLUSIVE} ({why})"


HOST_BUSY = inconclusive("host busy")
PRECISION_NOT_REACHED = inconclusive("precision not reached")
VFS_STORAGE = inconclusive("vfs")


def is_inconclusive(verdict: str | None) -> bool:
    return bool(verdict) and verdict.startswith(INCONCLUSIVE)


@dataclass(frozen=True)
class Estimate:
    """A median and its bootstrap confidence interval (``lo == hi == median`` for one value)."""

    median: float
    lo: float
    hi: float
    n: int


@dataclass(frozen=True)
class Comparison:
    """candidate against baseline: ratio of medians (candidate / baseline) with its interval."""

    ratio: float
    lo: float
    hi: float
    p_value: float | None  # None: exact figures (sizes) or too few samples
    verdict: str
    n_baseline: int
    n_candidate: int

    @property
    def change(self) -> float:
        """ratio - 1: -0.34 is 34% less."""
        return self.ratio - 1.0


def _clean(samples: Sequence[float] | np.ndarray) -> np.ndarray:
    values = np.asarray([v for v in samples if v is not None], dtype=float)
    return values[np.isfinite(values)]


def median_ci(samples: Sequence[float], confidence: float = CONFIDENCE,
              n_resamples: int = N_RESAMPLES) -> Estimate | None:
    """The median of ``samples`` and its percentile-bootstrap interval; None without samples."""
    from scipy.stats import bootstrap

    values = _clean(samples)
    if values.size == 0:
        return None
    median = float(np.median(values))
    if values.size < MIN_SAMPLES or np.ptp(values) == 0:
        return Estimate(median, median, median, int(values.size))
    # percentile, not BCa: BCa's jackknife breaks on the ties that timer resolution makes.
    result = bootstrap((values,), np.median, confidence_level=confidence, n_resamples=n_resamples,
                       method="percentile", vectorized=True, rng=np.random.default_rng(SEED))
    return Estimate(median, float(result.confidence_interval.low), float(result.confidence_interval.high),
                    int(values.size))


def median_difference(baseline: Sequence[float], candidate: Sequence[float],
                      confidence: float = CONFIDENCE) -> tuple[float, float, float] | None:
    """candidate's median minus baseline's, with its percentile-bootstrap interval, or None
    without samples on a side. For figures in absolute units ("UPX costs +8.7 ms"), which a
    ratio of medians cannot check (slimlab.claims)."""
    from scipy.stats import bootstrap

    a, b = _clean(baseline), _clean(candidate)
    if a.size == 0 or b.size == 0:
        return None
    diff = float(np.median(b) - np.median(a))
    if min(a.size, b.size) < MIN_SAMPLES or (np.ptp(a) == 0 and np.ptp(b) == 0):
        return diff, diff, diff
    result = bootstrap((a, b), lambda x, y, axis=-1: np.median(y, axis=axis) - np.median(x, axis=axis),
                       confidence_level=confidence, n_resamples=N_RESAMPLES, method="percentile",
                       vectorized=True, rng=np.random.default_rng(SEED))
    return diff, float(result.confidence_interval.low), float(result.confidence_interval.high)


def _ratio_of_medians(baseline, candidate, axis=-1):
    return np.median(candidate, axis=axis) / np.median(baseline, axis=axis)


def compare_samples(baseline: Sequence[float], candidate: Sequence[float], *, lower_is: str = FASTER,
                    higher_is: str = SLOWER, factor: float = FACTOR, alpha: float = ALPHA,
                    confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES) -> Comparison | None:
    """Timed samples of a candidate against a baseline's; None when either side has none.

    ``lower_is``/``higher_is`` name the verdicts (faster/slower for time, lower/higher for memory).
    ``n_resamples`` sets the interval's precision only: the verdict comes from the test.
    """
    from scipy.stats import bootstrap, mannwhitneyu

    a, b = _clean(baseline), _clean(candidate)
    if a.size == 0 or b.size == 0 or np.median(a) == 0:
        return None
    ratio = float(np.median(b) / np.median(a))
    if a.size < MIN_SAMPLES or b.size < MIN_SAMPLES:
        return Comparison(ratio, ratio, ratio, None, TOO_FEW, int(a.size), int(b.size))
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        lo = hi = ratio
        p_value = 1.0 if np.median(a) == np.median(b) else 0.0
    else:
        result = bootstrap((a, b), _ratio_of_medians, confidence_level=confidence, n_resamples=n_resamples,
                           method="percentile", vectorized=True, rng=np.random.default_rng(SEED))
        lo, hi = float(result.confidence_interval.low), float(result.confidence_interval.high)
        p_value = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    if p_value < alpha and (ratio > factor or ratio < 1 / factor):
        verdict = lower_is if ratio < 1 else higher_is
    else:
        verdict = NO_CHANGE
    return Comparison(ratio, lo, hi, p_value, verdict, int(a.size), int(b.size))


# a wall-time verdict and the CPU-time verdict that agrees with it
_AGREEING_CPU = {FASTER: LOWER, SLOWER: HIGHER}


def guard_timing(wall: Comparison, *, cpu: Comparison | None = None, busy: bool = False,
                 precision_reached: bool = True, same_binary: bool = False, vfs: bool = False) -> Comparison:
    """``wall`` (a start-up comparison) with its verdict made honest about what noise could explain:

    - the same shipped bytes on both sides: SAME_BINARY, whatever the samples say (an A/A pair);
    - a side whose timings did not reach the stated precision: PRECISION_NOT_REACHED;
    - container starts on a vfs engine compared across bases: VFS_STORAGE (vfs copies the base);
    - on a busy host, a faster/slower verdict stands only when CPU time moved the same way
      (``cpu``'s verdict lower/higher), else HOST_BUSY.

    A "no significant change" or "too few samples" verdict is kept (except for the same binary):
    those already claim nothing."""
    from dataclasses import replace

    if same_binary:
        return replace(wall, verdict=SAME_BINARY)
    if wall.verdict not in (FASTER, SLOWER, LOWER, HIGHER):
        return wall
    if not precision_reached:
        return replace(wall, verdict=PRECISION_NOT_REACHED)
    if vfs:
        return replace(wall, verdict=VFS_STORAGE)
    if busy and (cpu is None or cpu.verdict != _AGREEING_CPU.get(wall.verdict, wall.verdict)):
        return replace(wall, verdict=HOST_BUSY)
    return wall


def compare_exact(baseline: float | None, candidate: float | None, *, lower_is: str = SMALLER,
                  higher_is: str = LARGER, factor: float = 1.0) -> Comparison | None:
    """Two exact figures (file or image sizes): the ratio is the answer, no test needed.

    ``factor`` 1.0: any difference counts (a byte is a byte)."""
    if baseline is None or candidate is None or baseline == 0:
        return None
    ratio = candidate / baseline
    if ratio > factor and ratio != 1.0:
        verdict = higher_is
    elif ratio < 1 / factor and ratio != 1.0:
        verdict = lower_is
    else:
        verdict = NO_CHANGE
    return Comparison(ratio, ratio, ratio, None, verdict, 1, 1)


def pareto_mask(df: pl.DataFrame, objectives: Sequence[str]) -> pl.Series:
    """True for the rows no other row beats: another row dominates one when it is no worse on
    every objective (all minimised) and better on at least one. Rows with a null objective
    are never on the frontier. Compare within one group (call it per workload and target)."""
    values = df.select([pl.col(c).cast(pl.Float64) for c in objectives]).to_numpy()
    complete = ~np.isnan(values).any(axis=1)
    on_front = np.zeros(df.height, dtype=bool)
    candidates = values[complete]
    for index in np.flatnonzero(complete):
        row = values[index]
        dominated = np.any(np.all(candidates <= row, axis=1) & np.any(candidates < row, axis=1))
        on_front[index] = not dominated
    return pl.Series("on_frontier", on_front)


# -- conclusions over a results frame ------------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    """A figure two builds are compared on: an exact one (a size) or timed samples' median."""

    name: str  # what --metric and the effects frame call it
    label: str  # how a sentence says it: "start-up"
    unit: str
    column: str  # the results column: the exact figure, or the samples' median
    sample: str | None  # the samples column; None: an exact figure
    lower_is: str
    higher_is: str


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("size", "size", "bytes", "size_bytes", None, SMALLER, LARGER),
    Metric("image_size", "image size", "bytes", "image_size_bytes", None, SMALLER, LARGER),
    Metric("startup", "start-up", "ms", "startup_ms_median", "startup_ms", FASTER, SLOWER),
    Metric("peak_rss", "peak RSS", "KiB", "peak_rss_kib_median", "peak_rss_kib", LOWER, HIGHER),
    # user + system CPU time of the program: not inflated by waiting for a CPU on a busy host
    Metric("cpu", "CPU time", "ms", "cpu_ms_median", "cpu_ms", LOWER, HIGHER),
)}
REGRESSIONS = frozenset({LARGER, SLOWER, HIGHER})  # verdicts that mean "worse"
EMULATOR_SCOPE = "emulator+program"  # QEMU user mode's RSS is QEMU's: never a program's memory


def emulator_memory(row: dict) -> bool:
    """The row's peak RSS is QEMU user mode's own: its memory_scope says so, or (rows written
    before that column) its runner is a user-mode emulator (qemu-aarch64-static, not qemu-system-*)."""
    scope, runner = row.get("memory_scope"), row.get("runner") or ""
    if scope is not None:
        return scope == EMULATOR_SCOPE
    return runner.startswith("qemu-") and not runner.startswith("qemu-system")


# Builds and images are answered apart: an image's start is a container start and its size the
# image's, so a bare binary would dominate every image on the same axes. Emulated timings are
# not native ones: the emulated flag is part of the group too. Nor are one machine's timings
# another's: rows measured on different hosts (Dask workers measuring what they built) are
# answered apart too, by host fingerprint (null: not recorded, one host).
GROUP = ("run_id", "workload", "target", "emulated", "scope", "host_fingerprint")
OBJECTIVES = ("objective_size", "startup_ms_median", "objective_memory")
WITHIN_FASTEST = 1.10
RECOMMENDATION_RULE = (f"the Pareto-frontier build with the smallest size among those whose median start-up is "
                       f"within {WITHIN_FASTEST - 1:.0%} of the fastest")
DEFAULT_BASELINE = {"profile": "default", "postlink": "none"}


def _axis_columns() -> tuple[str, ...]:
    from .model.axes import COLUMNS

    return COLUMNS


def answer_rows(df: pl.DataFrame) -> pl.DataFrame:
    """The ok rows of ``df`` with what the answers rank them by, sorted by group then size:

    ``scope`` ("binary" for base none, else "image"), ``objective_size`` (the binary's or the
    image's bytes), ``objective_memory`` (peak RSS; null for QEMU user mode's emulator+program
    figure), ``on_frontier`` (Pareto over the three, per GROUP) and ``recommended``."""
    needed = {"run_id": pl.String, "emulated": pl.Boolean, "host_fingerprint": pl.String, "host": pl.String, "memory_scope": pl.String, "runner": pl.String,
              "base": pl.String, "image_size_bytes": pl.Int64, "peak_rss_kib_median": pl.Float64, "startup_ms_median": pl.Float64}
    df = df.with_columns([pl.lit(None, dtype=t).alias(c) for c, t in needed.items() if c not in df.columns])
    ok = df.filter(pl.col("status") == "ok").with_columns(
        pl.col("run_id").fill_null(""),
        pl.col("emulated").fill_null(False),
        pl.when(pl.col("base").fill_null("none") == "none").then(pl.lit("binary")).otherwise(pl.lit("image"))
        .alias("scope"),
    ).with_columns(
        pl.when(pl.col("scope") == "image").then(pl.col("image_size_bytes")).otherwise(pl.col("size_bytes"))
        .cast(pl.Float64).alias("objective_size"),
        # emulator_memory's rule, as an expression
        pl.when(pl.coalesce(pl.col("memory_scope") == EMULATOR_SCOPE,
                            pl.col("runner").str.starts_with("qemu-") & ~pl.col("runner").str.starts_with("qemu-system"),
                            pl.lit(False)))
        .then(None).otherwise(pl.col("peak_rss_kib_median")).alias("objective_memory"),
    ).sort([*GROUP, "objective_size", "variant_key"], nulls_last=True)
    parts = []
    for group in ok.partition_by(list(GROUP), maintain_order=True):
        # An objective nobody in the group has (memory under QEMU user mode) is left out,
        # rather than leaving the group without a frontier.
        objectives = [c for c in OBJECTIVES if group[c].is_not_null().any()]
        front = pareto_mask(group, objectives) if objectives else pl.Series([False] * group.height)
        group = group.with_columns(front.alias("on_frontier"))
        parts.append(group.with_columns(pl.Series("recommended", _recommended(group))))
    if not parts:
        return ok.with_columns(pl.lit(False).alias("on_frontier"), pl.lit(False).alias("recommended"))
    return pl.concat(parts, how="vertical_relaxed")


def _recommended(group: pl.DataFrame) -> list[bool]:
    """RECOMMENDATION_RULE over one group (frontier computed, sorted by size): one True at most."""
    picked = [False] * group.height
    start = group["startup_ms_median"]
    if start.is_null().all():  # nothing timed: the smallest frontier build
        candidates = [i for i, f in enumerate(group["on_frontier"]) if f]
    else:
        limit = start.min() * WITHIN_FASTEST
        candidates = [i for i, (f, s) in enumerate(zip(group["on_frontier"], start))
                      if f and s is not None and s <= limit]
    if candidates:  # the group is sorted by size (nulls last), then key: the first is the smallest
        picked[candidates[0]] = True
    return picked


def _best(group: pl.DataFrame, column: str) -> tuple[str | None, float | None]:
    found = group.filter(pl.col(column).is_not_null()).sort([column, "variant_key"])
    return (found["variant_key"][0], found[column][0]) if found.height else (None, None)


def conclusions(df: pl.DataFrame) -> pl.DataFrame:
    """One row per GROUP of ``df``'s ok rows: the smallest (``objective_size``: the binary, or
    the image for scope "image"), the fastest to start, the lowest memory, the frontier's
    variant keys (smallest first), the recommended build and the rule that picked it.
    ``df`` may be answer_rows' frame already."""
    rows = []
    ranked = df if "on_frontier" in df.columns else answer_rows(df)
    for group in ranked.partition_by(list(GROUP), maintain_order=True):
        first = group.row(0, named=True)
        smallest, smallest_bytes = _best(group, "objective_size")
        fastest, fastest_ms = _best(group, "startup_ms_median")
        lowest, lowest_kib = _best(group, "objective_memory")
        recommended = group.filter(pl.col("recommended"))["variant_key"]
        rows.append({**{c: first[c] for c in GROUP}, "n_ok": group.height,
                     "smallest_key": smallest, "smallest_bytes": smallest_bytes,
                     "fastest_key": fastest, "fastest_ms": fastest_ms,
                     "lowest_memory_key": lowest, "lowest_memory_kib": lowest_kib,
                     "frontier_keys": group.filter(pl.col("on_frontier"))["variant_key"].to_list(),
                     "recommended_key": recommended[0] if recommended.len() else None,
                     "rule": RECOMMENDATION_RULE})
    schema = {"run_id": pl.String, "workload": pl.String, "target": pl.String, "emulated": pl.Boolean,
              "scope": pl.String, "host_fingerprint": pl.String, "n_ok": pl.Int64, "smallest_key": pl.String, "smallest_bytes": pl.Float64,
              "fastest_key": pl.String, "fastest_ms": pl.Float64, "lowest_memory_key": pl.String,
              "lowest_memory_kib": pl.Float64, "frontier_keys": pl.List(pl.String), "recommended_key": pl.String,
              "rule": pl.String}
    return pl.DataFrame(rows, schema=schema)


# -- effects: each build against a baseline -------------------------------------------------------
def sample_index(samples: pl.DataFrame | None) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """(run_id, variant_key) -> {samples column: values}: every variant's raw samples, grouped once."""
    columns = [m.sample for m in METRICS.values() if m.sample]
    if samples is None or samples.is_empty():
        return {}
    present = [c for c in columns if c in samples.columns]
    grouped = samples.with_columns(pl.col("run_id").fill_null("")).group_by("run_id", "variant_key").agg(present)
    return {(r["run_id"], r["variant_key"]): {c: np.asarray(r[c], dtype=float) for c in present}
            for r in grouped.iter_rows(named=True)}


def compare_metric(metric: Metric, baseline: dict, candidate: dict, baseline_samples: dict | None = None,
                   candidate_samples: dict | None = None, factor: float = FACTOR,
                   n_resamples: int = N_RESAMPLES) -> Comparison | None:
    """``candidate``'s row against ``baseline``'s (result rows as dicts) on one metric; None
    when either lacks it. Exact figures: compare_exact (any byte counts); timed ones:
    compare_samples on the raw samples under ``factor``. Peak RSS of QEMU user mode
    (emulator+program) is QEMU's, so it is never compared."""
    if metric.sample is None:
        return compare_exact(baseline.get(metric.column), candidate.get(metric.column),
                             lower_is=metric.lower_is, higher_is=metric.higher_is)
    if metric.name == "peak_rss" and (emulator_memory(baseline) or emulator_memory(candidate)):
        return None
    a = (baseline_samples or {}).get(metric.sample)
    b = (candidate_samples or {}).get(metric.sample)
    if a is None or b is None:
        return None
    return compare_samples(a, b, lower_is=metric.lower_is, higher_is=metric.higher_is, factor=factor,
                           n_resamples=n_resamples)


def same_host(a: dict, b: dict) -> bool:
    """Whether two result rows were measured on the same host (equal host fingerprints; two
    rows that recorded none count as one host), so that their timings may be compared."""
    return a.get("host_fingerprint") == b.get("host_fingerprint")


def changed_axes(baseline: dict, candidate: dict) -> list[str]:
    """The axes in which ``candidate`` differs from ``baseline``: ["profile=stripped", "postlink=upx-9"]."""
    return [f"{c}={candidate.get(c)}" for c in _axis_columns() if candidate.get(c) != baseline.get(c)]


def check_baseline(baseline: dict[str, str] | None) -> dict[str, str]:
    """The baseline's overriding axis values (DEFAULT_BASELINE for None); SpecError for a non-axis."""
    from .errors import unknown

    baseline = DEFAULT_BASELINE if baseline is None else dict(baseline)
    for name in baseline:
        if name not in _axis_columns():
            raise unknown("baseline axis", name, _axis_columns())
    return baseline


def parse_baseline(text: str) -> dict[str, str]:
    """A baseline as a command line gives it, "profile=stripped,postlink=none", checked
    (for a future ``--baseline`` option of the report)."""
    from .errors import SlimlabError

    pairs = [item.strip() for item in text.split(",") if item.strip()]
    if not pairs or any("=" not in item for item in pairs):
        raise SlimlabError(f"a baseline is AXIS=VALUE pairs joined with ',', e.g. 'profile=default,postlink=none', "
                           f"not {text!r}")
    return check_baseline(dict(item.split("=", 1) for item in pairs))


EFFECT_SCHEMA = {
    "run_id": pl.String, "workload": pl.String, "target": pl.String, "emulated": pl.Boolean, "scope": pl.String,
    "host_fingerprint": pl.String,
    "variant_key": pl.String, "baseline_key": pl.String, "changed": pl.String, "metric": pl.String,
    "baseline_value": pl.Float64, "candidate_value": pl.Float64, "ratio": pl.Float64, "lo": pl.Float64,
    "hi": pl.Float64, "p_value": pl.Float64, "verdict": pl.String, "n_baseline": pl.Int64, "n_candidate": pl.Int64,
}


def effects(df: pl.DataFrame, samples: pl.DataFrame | None, baseline: dict[str, str] | None = None,
            keys=None, factor: float = FACTOR, n_resamples: int = N_RESAMPLES) -> pl.DataFrame:
    """Each ok build of ``df`` against its baseline: the same run, workload, toolchain, target and
    base, with the axes in ``baseline`` replaced (default DEFAULT_BASELINE: the ``default``
    profile, no post-link chain). One row per (build, metric) that both have (EFFECT_SCHEMA);
    builds without an ok baseline, and the baselines themselves, give none. A baseline measured
    on another host (same_host) is compared on sizes only: its timings are another machine's.

    ``keys``: only these variant keys (a comparison's bootstrap costs ~10 ms: compute what is shown).
    ``df`` may be answer_rows' frame already (it is not ranked twice).
    """
    baseline = check_baseline(baseline)
    ranked = df if "on_frontier" in df.columns else answer_rows(df)
    index = sample_index(samples)
    axes = _axis_columns()
    by_axes = {(r["run_id"], *(r[c] for c in axes)): r for r in ranked.iter_rows(named=True)}
    wanted = None if keys is None else set(keys)
    rows = []
    for (run_id, *values), row in by_axes.items():
        if wanted is not None and row["variant_key"] not in wanted:
            continue
        base_values = tuple(baseline.get(c, v) for c, v in zip(axes, values))
        base = by_axes.get((run_id, *base_values))
        if base is None or base is row:
            continue
        changed = ", ".join(changed_axes(base, row))
        mine, theirs = index.get((run_id, row["variant_key"])), index.get((run_id, base["variant_key"]))
        for metric in METRICS.values():
            if metric.name == "image_size" and row["scope"] != "image":
                continue
            if metric.sample is not None and not same_host(base, row):
                continue
            found = compare_metric(metric, base, row, theirs, mine, factor, n_resamples)
            if found is None:
                continue
            rows.append({**{c: row[c] for c in GROUP}, "variant_key": row["variant_key"],
                         "baseline_key": base["variant_key"], "changed": changed, "metric": metric.name,
                         "baseline_value": base[metric.column], "candidate_value": row[metric.column],
                         "ratio": found.ratio, "lo": found.lo, "hi": found.hi, "p_value": found.p_value,
                         "verdict": found.verdict, "n_baseline": found.n_baseline, "n_candidate": found.n_candidate})
    return pl.DataFrame(rows, schema=EFFECT_SCHEMA)
