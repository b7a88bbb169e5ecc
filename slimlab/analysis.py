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
SEED = 20261129  # reproducible intervals: the same samples give the same report

# Verdicts (fixed words: reports, compare's table and the claims all use them)
SMALLER, LARGER, FASTER, SLOWER, LOWER, HIGHER = "smaller", "larger", "faster", "slower", "lower", "higher"
NO_CHANGE = "no significant change"
TOO_FEW = "too few samples"
MIN_SAMPLES = 3  # per side, for an interval or a test to mean anything


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


def median_ci(samples: Sequence[float], confidence: float = CONFIDENCE) -> Estimate | None:
    """The median of ``samples`` and its percentile-bootstrap interval; None without samples."""
    from scipy.stats import bootstrap

    values = _clean(samples)
    if values.size == 0:
        return None
    median = float(np.median(values))
    if values.size < MIN_SAMPLES or np.ptp(values) == 0:
        return Estimate(median, median, median, int(values.size))
    # percentile, not BCa: BCa's jackknife breaks on the ties that timer resolution makes.
    result = bootstrap((values,), np.median, confidence_level=confidence, n_resamples=N_RESAMPLES,
                       method="percentile", vectorized=True, rng=np.random.default_rng(SEED))
    return Estimate(median, float(result.confidence_interval.low), float(result.confidence_interval.high),
                    int(values.size))


def _ratio_of_medians(baseline, candidate, axis=-1):
    return np.median(candidate, axis=axis) / np.median(baseline, axis=axis)


def compare_samples(baseline: Sequence[float], candidate: Sequence[float], *, lower_is: str = FASTER,
                    higher_is: str = SLOWER, factor: float = FACTOR, alpha: float = ALPHA,
                    confidence: float = CONFIDENCE) -> Comparison | None:
    """Timed samples of a candidate against a baseline's; None when either side has none.

    ``lower_is``/``higher_is`` name the verdicts (faster/slower for time, lower/higher for memory).
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
        result = bootstrap((a, b), _ratio_of_medians, confidence_level=confidence, n_resamples=N_RESAMPLES,
                           method="percentile", vectorized=True, rng=np.random.default_rng(SEED))
        lo, hi = float(result.confidence_interval.low), float(result.confidence_interval.high)
        p_value = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    if p_value < alpha and (ratio > factor or ratio < 1 / factor):
        verdict = lower_is if ratio < 1 else higher_is
    else:
        verdict = NO_CHANGE
    return Comparison(ratio, lo, hi, p_value, verdict, int(a.size), int(b.size))


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
