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
WITHIN_NOISE_FLOOR = inconclusive("within the A/A noise floor")
CPU_HIGHER = "higher CPU time"  # not slower to start by the clock, but costlier in CPU beyond its noise


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
                    confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES,
                    interval: bool = True) -> Comparison | None:
    """Timed samples of a candidate against a baseline's; None when either side has none.

    ``lower_is``/``higher_is`` name the verdicts (faster/slower for time, lower/higher for memory).
    ``n_resamples`` sets the interval's precision only: the verdict comes from the test.
    ``interval`` False: the verdict and ratio alone (lo = hi = ratio), without the bootstrap that
    costs ~5 ms where the test costs ~0.3: for decisions and tables that show no interval.
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
        if interval:
            result = bootstrap((a, b), _ratio_of_medians, confidence_level=confidence, n_resamples=n_resamples,
                               method="percentile", vectorized=True, rng=np.random.default_rng(SEED))
            lo, hi = float(result.confidence_interval.low), float(result.confidence_interval.high)
        else:
            lo = hi = ratio
        p_value = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    if p_value < alpha and (ratio > factor or ratio < 1 / factor):
        verdict = lower_is if ratio < 1 else higher_is
    else:
        verdict = NO_CHANGE
    return Comparison(ratio, lo, hi, p_value, verdict, int(a.size), int(b.size))


# a wall-time verdict and the CPU-time verdict that agrees with it
_AGREEING_CPU = {FASTER: LOWER, SLOWER: HIGHER}


def precision_of(*rows: dict) -> tuple[bool, float | None]:
    """Whether every row reached its stated precision (a row that does not say: reached), and the
    change the pair can resolve: the sum of the rows' reached relative half-widths
    (``startup_precision``; None when one is missing)."""
    reached = all(r.get("precision_reached") is not False for r in rows)
    widths = [r.get("startup_precision") for r in rows]
    return reached, (None if any(w is None for w in widths) else float(sum(widths)))


def guard_timing(wall: Comparison, *, cpu: Comparison | None = None, busy: bool = False,
                 precision_reached: bool = True, resolution: float | None = None, same_binary: bool = False,
                 vfs: bool = False, noise_floor: float | None = None, cpu_floor: float | None = None) -> Comparison:
    """``wall`` (a start-up comparison) with its verdict made honest about what noise could explain:

    - the same shipped bytes on both sides: SAME_BINARY, whatever the samples say (an A/A pair);
    - container starts on a vfs engine compared across bases: VFS_STORAGE (vfs copies the base);
    - a side whose timings did not reach the stated precision: PRECISION_NOT_REACHED, unless the
      change is beyond what the reached precision can resolve (``resolution``, precision_of: the
      sides' half-widths added; an 11x slower UPX start is a finding at ±20%, a 3% one is not);
    - a change no larger than ``noise_floor`` (|ratio - 1| that A/A halves of one binary's own
      samples reached in this run: sampling.noise_floors): WITHIN_NOISE_FLOOR;
    - on a busy host: HOST_BUSY.

    Except the first two, each stands aside when CPU time confirms the verdict: ``cpu`` moved the
    same way (lower/higher, significantly) by more than CPU time's own A/A floor (``cpu_floor``).
    Waiting for a CPU or a noisy stretch of the run does not inflate CPU time much; UPX's
    decompression does (a packed httpd: 36 against 4.6 ms of CPU, while its container start
    read only 25% slower at ±16%). Against imprecise or noisy timings CPU time vouches only
    where its own floor is known; on a busy host its agreement alone does, as before.

    A "no significant change" or "too few samples" verdict is kept (except for the same binary):
    those already claim nothing."""
    from dataclasses import replace

    if same_binary:
        return replace(wall, verdict=SAME_BINARY)
    if wall.verdict not in (FASTER, SLOWER, LOWER, HIGHER):
        return wall
    if vfs:
        return replace(wall, verdict=VFS_STORAGE)
    agrees = (cpu is not None and cpu.verdict == _AGREEING_CPU.get(wall.verdict, wall.verdict)
              and (cpu_floor is None or abs(cpu.ratio - 1) > cpu_floor))
    vouched = agrees and cpu_floor is not None
    if not vouched and not precision_reached and (resolution is None or abs(wall.ratio - 1) <= resolution):
        return replace(wall, verdict=PRECISION_NOT_REACHED)
    if not vouched and noise_floor is not None and abs(wall.ratio - 1) <= noise_floor:
        return replace(wall, verdict=WITHIN_NOISE_FLOOR)
    if busy and not agrees:
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
RANK_BY = {"startup": METRICS["startup"], "cpu": METRICS["cpu"]}
RECOMMENDATION_RULE = ("the smallest working build that is not significantly slower to start than the fastest "
                       "(the effects' rule: Mann–Whitney p < {alpha} and beyond ×{factor:g}; a verdict that noise "
                       "could explain counts as not slower), nor significantly higher in CPU time at start-up beyond "
                       "CPU time's own A/A noise floor; between builds of one size, significantly lower memory "
                       "decides, else the name")
DEFAULT_BASELINE = {"profile": "default", "postlink": "none"}


def recommendation_rule(factor: float = FACTOR, rank_by: str = "startup") -> str:
    text = RECOMMENDATION_RULE.format(alpha=ALPHA, factor=factor)
    if rank_by == "startup":
        return text
    head, _, tail = text.partition(", nor significantly")
    return head.replace("slower to start", "higher in CPU time at start-up") + tail[tail.index(";"):]


def _axis_columns() -> tuple[str, ...]:
    from .model.axes import COLUMNS

    return COLUMNS


# -- what a user may require of the recommended build ------------------------------------------
@dataclass(frozen=True)
class Requirement:
    name: str  # as --require spells it
    doc: str
    takes_value: bool = False


REQUIREMENTS: dict[str, Requirement] = {r.name: r for r in (
    Requirement("no-upx", "no UPX step in its post-link chain"),
    Requirement("static", "a static executable (no interpreter, no shared libraries)"),
    Requirement("works-on", "the same build (profile, toolchain, chain) also works on that target, e.g. "
                            "works-on=linux/arm64", takes_value=True),
)}


@dataclass(frozen=True)
class Constraints:
    """What the recommended build must satisfy, and what 'fast' means."""

    require: tuple[tuple[str, str | None], ...] = ()  # (name, value) pairs: ("works-on", "linux/arm64")
    max_startup_ms: float | None = None  # its median start-up (of rank_by's metric) at most this
    rank_by: str = "startup"  # "startup" (wall time) or "cpu" (CPU time, which waiting does not inflate)

    def describe(self) -> str:
        parts = [f"{n}={v}" if v is not None else n for n, v in self.require]
        if self.max_startup_ms is not None:
            parts.append(f"median {RANK_BY[self.rank_by].label} ≤ {self.max_startup_ms:g} ms")
        return ", ".join(parts)


def parse_constraints(require=(), max_startup_ms: float | None = None, rank_by: str = "startup") -> Constraints:
    """Constraints from the command line's words (``--require no-upx --require works-on=linux/arm64``);
    SpecError with a did-you-mean for anything unknown."""
    from .errors import SpecError, unknown
    from .model.target import TARGETS

    pairs = []
    for item in require or ():
        for word in (w.strip() for w in str(item).split(",")):
            if not word:
                continue
            name, sep, value = word.partition("=")
            if name not in REQUIREMENTS:
                raise unknown("requirement", name, REQUIREMENTS)
            if REQUIREMENTS[name].takes_value != bool(sep):
                raise SpecError(f"requirement {name!r} " + (f"takes a value: {name}=VALUE" if REQUIREMENTS[name].takes_value
                                                           else "takes no value"))
            if name == "works-on" and value not in TARGETS:
                raise unknown("target", value, TARGETS)
            pairs.append((name, value if sep else None))
    if rank_by not in RANK_BY:
        raise unknown("ranking metric", rank_by, RANK_BY)
    if max_startup_ms is not None and not max_startup_ms > 0:
        raise SpecError(f"--max-startup-ms is a positive number of milliseconds, not {max_startup_ms}")
    return Constraints(tuple(pairs), max_startup_ms, rank_by)


def _meets(df: pl.DataFrame, constraints: Constraints, everything: pl.DataFrame) -> pl.Series:
    """True for the rows of ``df`` that satisfy ``constraints``' requirements (not the timing bound)."""
    keep = pl.Series([True] * df.height)
    for name, value in constraints.require:
        if name == "no-upx":
            steps = df["postlink_steps"] if "postlink_steps" in df.columns else df["postlink"].str.split("+")
            keep &= pl.Series([not any("upx" in str(s) for s in (v or [])) for v in steps.to_list()])
        elif name == "static":
            column = df["is_static"] if "is_static" in df.columns else pl.Series([None] * df.height)
            keep &= column.fill_null(False)
        elif name == "works-on":
            same = ("run_id", "workload", "toolchain", "profile", "postlink")
            there = everything.filter((pl.col("target") == value) & (pl.col("status") == "ok"))
            found = {tuple(r[c] for c in same) for r in there.select(same).iter_rows(named=True)}
            keep &= pl.Series([tuple(r[c] for c in same) in found for r in df.select(same).iter_rows(named=True)])
    return keep


def answer_rows(df: pl.DataFrame, samples: pl.DataFrame | None = None, *, constraints: Constraints | None = None,
                factor: float = FACTOR, busy_runs=frozenset(), vfs_runs=frozenset(),
                noise_floors: dict | None = None) -> pl.DataFrame:
    """The ok rows of ``df`` with what the answers rank them by, sorted by group then size:

    ``scope`` ("binary" for base none, else "image"), ``objective_size`` (the binary's or the
    image's bytes), ``objective_memory`` (peak RSS; null for QEMU user mode's emulator+program
    figure), ``on_frontier`` (Pareto over the three, per GROUP), ``eligible`` (meets the
    constraints), ``vs_fastest`` (the verdict of its start-up against the group's fastest eligible
    build, after guard_timing: ``busy_runs`` are runs measured on a busy host, ``vfs_runs`` runs
    whose containers ran on vfs storage, ``noise_floors`` samples column -> (run id, emulated,
    scope) -> the A/A floor of that figure there, sampling.noise_floors) and ``recommended``.

    Without ``samples`` a build counts as not slower when its median is within ``factor`` of the
    fastest's (there is nothing to test)."""
    constraints = constraints or Constraints()
    needed = {"run_id": pl.String, "emulated": pl.Boolean, "host_fingerprint": pl.String, "host": pl.String,
              "memory_scope": pl.String, "runner": pl.String, "base": pl.String, "image_size_bytes": pl.Int64,
              "peak_rss_kib_median": pl.Float64, "startup_ms_median": pl.Float64, "cpu_ms_median": pl.Float64,
              "binary_sha256": pl.String, "precision_reached": pl.Boolean, "is_static": pl.Boolean}
    df = df.with_columns([pl.lit(None, dtype=t).alias(c) for c, t in needed.items() if c not in df.columns])
    everything = df.with_columns(pl.col("run_id").fill_null(""))
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
    index = sample_index(samples)
    parts = []
    for group in ok.partition_by(list(GROUP), maintain_order=True):
        # An objective nobody in the group has (memory under QEMU user mode) is left out,
        # rather than leaving the group without a frontier.
        objectives = [c for c in OBJECTIVES if group[c].is_not_null().any()]
        front = pareto_mask(group, objectives) if objectives else pl.Series([False] * group.height)
        group = group.with_columns(front.alias("on_frontier"), _meets(group, constraints, everything).alias("eligible"))
        first = group.row(0, named=True)
        where = (first["run_id"], first["emulated"], first["scope"])
        floors = {column: found.get(where) for column, found in (noise_floors or {}).items()}
        verdicts, picked = _recommend(group, index, constraints, factor, busy_runs, vfs_runs, floors)
        parts.append(group.with_columns(pl.Series("vs_fastest", verdicts, dtype=pl.String),
                                        pl.Series("recommended", picked, dtype=pl.Boolean)))
    if not parts:
        return ok.with_columns(pl.lit(False).alias("on_frontier"), pl.lit(False).alias("eligible"),
                               pl.lit(None, dtype=pl.String).alias("vs_fastest"), pl.lit(False).alias("recommended"))
    return pl.concat(parts, how="vertical_relaxed")


SAME_RUN_AXES = ("target", "base", "runner", "emulated")
IMAGE_IDENTITY = ("image_tag", "oci_manifest_digest")


def same_binary(a: dict, b: dict) -> bool:
    """Whether two result rows shipped the same bytes, run the same way: equal ``binary_sha256``
    (recorded), the same target, base, runner and emulation, and for images the same image where
    both rows recorded its identity (IMAGE_IDENTITY). Their timings can differ by noise only: an
    A/A pair."""
    sha = a.get("binary_sha256")
    if not sha or sha != b.get("binary_sha256"):
        return False
    if any(a.get(c) != b.get(c) for c in SAME_RUN_AXES):
        return False
    return all(a.get(c) is None or b.get(c) is None or a.get(c) == b.get(c) for c in IMAGE_IDENTITY)


def _binaries(rows: list[dict]) -> list[list[int]]:
    """Row indices grouped by shipped binary (same_binary), in row order: one timing each."""
    groups: list[list[int]] = []
    for i, row in enumerate(rows):
        for members in groups:
            if same_binary(rows[members[0]], row):
                members.append(i)
                break
        else:
            groups.append([i])
    return groups


def _pooled(index: dict, rows: list[dict], members: list[int], column: str) -> np.ndarray | None:
    """The samples of one binary's rows together; rows whose samples are copies of another's (the
    sweep timed their binary once: same_binary_as) are not counted again."""
    own = [i for i in members if not rows[i].get("same_binary_as")] or members
    found = [index.get((rows[i]["run_id"], rows[i]["variant_key"]), {}).get(column) for i in own]
    found = [f for f in found if f is not None and len(f)]
    return np.concatenate(found) if found else None


def _recommend(group: pl.DataFrame, index: dict, constraints: Constraints, factor: float, busy_runs,
               vfs_runs, floors: dict | None = None) -> tuple[list[str | None], list[bool]]:
    """Each row's verdict against the fastest eligible build, and the recommendation (one True at
    most): the smallest eligible build not significantly slower than the fastest; ties in size go
    to the lower memory, then the lower median, then the key. ``group`` is sorted by size.

    Rows that ship the same bytes (same_binary) are one binary: their samples are pooled and they
    share one verdict, so noise between two measurements of one file cannot split them."""
    metric = RANK_BY[constraints.rank_by]
    rows = group.to_dicts()
    verdicts: list[str | None] = [None] * len(rows)
    picked = [False] * len(rows)
    eligible = [i for i, r in enumerate(rows) if r["eligible"]]
    if constraints.max_startup_ms is not None:
        eligible = [i for i in eligible if rows[i][metric.column] is not None
                    and rows[i][metric.column] <= constraints.max_startup_ms]
    if not eligible:
        return verdicts, picked
    binaries = [[i for i in members if i in eligible] for members in _binaries(rows)]
    binaries = [members for members in binaries if members]
    timed = [m for m in binaries if any(rows[i][metric.column] is not None for i in m)]

    def median(members: list[int]) -> float:
        pooled = _pooled(index, rows, members, metric.sample)
        if pooled is not None:
            return float(np.median(pooled))
        return float(np.median([rows[i][metric.column] for i in members if rows[i][metric.column] is not None]))

    as_fast = eligible
    if timed:
        medians = {id(m): median(m) for m in timed}
        fastest = min(timed, key=lambda m: (medians[id(m)], rows[m[0]]["variant_key"]))
        # CPU time is judged against the leanest build's, not the fastest's: a noisy clock may
        # crown a packed build the fastest, against which another packed one costs nothing more.
        cpus = {id(m): _pooled(index, rows, m, "cpu_ms") for m in timed}
        leanest = min((m for m in timed if cpus[id(m)] is not None),
                      key=lambda m: (float(np.median(cpus[id(m)])), rows[m[0]]["variant_key"]), default=None)
        as_fast = []
        for members in timed:
            if members is fastest:
                verdict = "fastest"
                if metric.name == "startup" and _costlier(rows, index, leanest, members, factor, floors):
                    verdict = CPU_HIGHER  # first by the clock, but far costlier in CPU than the leanest
            else:
                verdict = _pooled_verdict(metric, rows, fastest, members, index, factor, busy_runs, vfs_runs,
                                          medians[id(fastest)], medians[id(members)], floors, leanest)
            for i in members:
                verdicts[i] = verdict
            if verdict not in (SLOWER, HIGHER, CPU_HIGHER):
                as_fast += members
        if not as_fast:  # the clock's fastest costs far more CPU, and the rest are slower: the leanest
            as_fast = list(leanest or fastest)

    busy = any(r["run_id"] in busy_runs for r in rows)
    picked[_smallest(as_fast, rows, index, factor, memory=not busy)] = True
    return verdicts, picked


def _smallest(candidates: list[int], rows: list[dict], index: dict, factor: float, memory: bool = True) -> int:
    """The smallest of ``candidates``; among builds of the same size, the first by key unless another
    has significantly lower memory (the effects' rule; ``memory`` False: not on a busy host, where
    Go's runtime starts more threads while it waits for a CPU, and one hello build's peak RSS went
    from 1,864 to 1,976 KiB here): builds of one size differ by noise in their figures more often
    than in fact (static and trimmed hello differ only in their build info)."""
    def size(i: int) -> float:
        return rows[i]["objective_size"] if rows[i]["objective_size"] is not None else float("inf")

    least = min(size(i) for i in candidates)
    tied = sorted((i for i in candidates if size(i) == least), key=lambda i: rows[i]["variant_key"])
    pick = tied[0]
    for other in tied[1:] if memory else ():
        mine, theirs = (_pooled(index, rows, [i], "peak_rss_kib") for i in (pick, other))
        if rows[other]["objective_memory"] is None or mine is None or theirs is None:
            continue
        found = compare_samples(mine, theirs, lower_is=LOWER, higher_is=HIGHER, factor=factor, interval=False)
        if found is not None and found.verdict == LOWER:
            pick = other
    return pick


def _pooled_verdict(metric: Metric, rows: list[dict], fastest: list[int], members: list[int], index: dict,
                    factor: float, busy_runs, vfs_runs, fastest_median: float, median: float,
                    floors: dict | None = None, leanest: list[int] | None = None) -> str:
    """One binary's timing against the fastest binary's, pooled over their rows, after guard_timing."""
    a, b = _pooled(index, rows, fastest, metric.sample), _pooled(index, rows, members, metric.sample)
    if a is None or b is None:  # no samples: medians within the factor
        return NO_CHANGE if not fastest_median or median / fastest_median <= factor else metric.higher_is
    found = compare_samples(a, b, lower_is=metric.lower_is, higher_is=metric.higher_is, factor=factor,
                            interval=False)
    if found is None:
        return NO_CHANGE
    both = [rows[i] for i in (*fastest, *members)]
    busy = metric.name == "startup" and any(r["run_id"] in busy_runs for r in both)
    cpu = None
    # CPU time referees a doubtful wall-time verdict (guard_timing), except under emulation: a guest's
    # CPU time runs on the host's clock as its wall time does, and is as noisy.
    if metric.name == "startup" and not rows[members[0]].get("emulated"):
        ca, cb = _pooled(index, rows, fastest, "cpu_ms"), _pooled(index, rows, members, "cpu_ms")
        if ca is not None and cb is not None:
            cpu = compare_samples(ca, cb, lower_is=LOWER, higher_is=HIGHER, factor=factor, interval=False)
    vfs = (rows[members[0]].get("scope") == "image" and rows[members[0]].get("base") != rows[fastest[0]].get("base")
           and any(r["run_id"] in vfs_runs for r in both))
    reached, resolution = precision_of(*both)
    floors = floors or {}
    verdict = guard_timing(found, cpu=cpu, busy=busy, precision_reached=reached, resolution=resolution, vfs=vfs,
                           noise_floor=floors.get(metric.sample), cpu_floor=floors.get("cpu_ms")).verdict
    if verdict != SLOWER and cpu is not None and _costlier(rows, index, leanest, members, factor, floors):
        # CPU time is a start's cost too: UPX's decompression adds 30 ms of CPU to a packed httpd
        # that a container start (about 100 ms, noisy) cannot resolve; beyond CPU time's A/A floor
        # that is a finding, not noise.
        return CPU_HIGHER
    return verdict


def _costlier(rows: list[dict], index: dict, leanest: list[int] | None, members: list[int], factor: float,
              floors: dict | None) -> bool:
    """Whether the binary of ``members`` costs significantly more CPU time at start-up than the
    leanest binary's, beyond CPU time's A/A floor (unknown floor, or emulated rows: never)."""
    floor = (floors or {}).get("cpu_ms")
    if leanest is None or leanest is members or floor is None or rows[members[0]].get("emulated"):
        return False
    theirs, mine = _pooled(index, rows, leanest, "cpu_ms"), _pooled(index, rows, members, "cpu_ms")
    if theirs is None or mine is None:
        return False
    found = compare_samples(theirs, mine, lower_is=LOWER, higher_is=HIGHER, factor=factor, interval=False)
    return found is not None and found.verdict == HIGHER and abs(found.ratio - 1) > floor


def _best(group: pl.DataFrame, column: str) -> tuple[str | None, float | None]:
    found = group.filter(pl.col(column).is_not_null()).sort([column, "variant_key"])
    return (found["variant_key"][0], found[column][0]) if found.height else (None, None)


def conclusions(df: pl.DataFrame, rule: str | None = None) -> pl.DataFrame:
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
        chosen = group.filter(pl.col("recommended"))
        recommended = chosen["variant_key"]
        # the answer rests on a comparison noise could explain: the pick's own verdict against the fastest
        shaky = chosen["vs_fastest"].to_list()[0] if chosen.height and "vs_fastest" in chosen.columns else None
        rows.append({**{c: first[c] for c in GROUP}, "n_ok": group.height,
                     "smallest_key": smallest, "smallest_bytes": smallest_bytes,
                     "fastest_key": fastest, "fastest_ms": fastest_ms,
                     "lowest_memory_key": lowest, "lowest_memory_kib": lowest_kib,
                     "frontier_keys": group.filter(pl.col("on_frontier"))["variant_key"].to_list(),
                     "recommended_key": recommended[0] if recommended.len() else None,
                     "recommended_vs_fastest": shaky,
                     "rule": rule or recommendation_rule()})
    schema = {"run_id": pl.String, "workload": pl.String, "target": pl.String, "emulated": pl.Boolean,
              "scope": pl.String, "host_fingerprint": pl.String, "n_ok": pl.Int64, "smallest_key": pl.String, "smallest_bytes": pl.Float64,
              "fastest_key": pl.String, "fastest_ms": pl.Float64, "lowest_memory_key": pl.String,
              "lowest_memory_kib": pl.Float64, "frontier_keys": pl.List(pl.String), "recommended_key": pl.String,
              "recommended_vs_fastest": pl.String, "rule": pl.String}
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
                   n_resamples: int = N_RESAMPLES, interval: bool = True) -> Comparison | None:
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
                           n_resamples=n_resamples, interval=interval)


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
            keys=None, factor: float = FACTOR, n_resamples: int = N_RESAMPLES, *, intervals: bool = True,
            busy_runs=frozenset(), vfs_runs=frozenset(), noise_floors: dict | None = None) -> pl.DataFrame:
    """Each ok build of ``df`` against its baseline: the same run, workload, toolchain, target and
    base, with the axes in ``baseline`` replaced (default DEFAULT_BASELINE: the ``default``
    profile, no post-link chain). One row per (build, metric) that both have (EFFECT_SCHEMA);
    builds without an ok baseline, and the baselines themselves, give none. A baseline measured
    on another host (same_host) is compared on sizes only: its timings are another machine's.

    ``keys``: only these variant keys (a comparison's bootstrap costs ~10 ms: compute what is shown);
    ``intervals`` False: verdicts and ratios without bootstrap intervals (tables of every build).
    Timing verdicts pass guard_timing: the same binary, a side short of its precision, container
    starts across bases on vfs (``vfs_runs``), and on a busy host (``busy_runs``) a start-up
    difference that CPU time does not confirm are not verdicts.
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
        found_by: dict[str, Comparison] = {}
        for metric in METRICS.values():
            if metric.name == "image_size" and row["scope"] != "image":
                continue
            if metric.sample is not None and not same_host(base, row):
                continue
            found = compare_metric(metric, base, row, theirs, mine, factor, n_resamples, interval=intervals)
            if found is not None:
                found_by[metric.name] = found
        twins = same_binary(base, row)
        reached, resolution = precision_of(base, row)
        where = (run_id, row["emulated"], row["scope"])
        floors = {column: found.get(where) for column, found in (noise_floors or {}).items()}
        for name, found in list(found_by.items()):
            if name == "startup":
                found_by[name] = guard_timing(
                    found, cpu=None if row["emulated"] else found_by.get("cpu"), busy=run_id in busy_runs,
                    precision_reached=reached,
                    resolution=resolution, noise_floor=floors.get("startup_ms"), cpu_floor=floors.get("cpu_ms"),
                    same_binary=twins, vfs=run_id in vfs_runs and base.get("base") != row.get("base"))
            elif name == "cpu":
                found_by[name] = guard_timing(found, same_binary=twins, noise_floor=floors.get("cpu_ms"))
            elif METRICS[name].sample is not None and twins:
                found_by[name] = guard_timing(found, same_binary=True)
        for name, found in found_by.items():
            metric = METRICS[name]
            rows.append({**{c: row[c] for c in GROUP}, "variant_key": row["variant_key"],
                         "baseline_key": base["variant_key"], "changed": changed, "metric": metric.name,
                         "baseline_value": base[metric.column], "candidate_value": row[metric.column],
                         "ratio": found.ratio, "lo": found.lo, "hi": found.hi, "p_value": found.p_value,
                         "verdict": found.verdict, "n_baseline": found.n_baseline, "n_candidate": found.n_candidate})
    return pl.DataFrame(rows, schema=EFFECT_SCHEMA)
