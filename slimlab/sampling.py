"""When a variant has enough timed starts, and what an A/A split of its samples says about noise.

Pure functions of sample lists (the sweep calls them between rounds; the unit tests feed them
synthetic streams). A variant's precision is the wider half of the 95% bootstrap interval of
its median start-up over the median (analysis.median_ci): 0.02 means the median is known to
±2%. A variant stops once that is within its rule's target (model.SamplingRule) and it has
``min_repeats`` starts, or at ``max_repeats``, or once past ``min_repeats`` its starts took
the rule's budget or its interval shows the target out of reach (OUT_OF_REACH).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .analysis import FASTER, SLOWER, compare_samples, median_ci
from .model import SamplingRule

# Past twice min_repeats, a variant whose interval projects (a half-width shrinks about as
# 1/sqrt(n)) to need more than this many times max_repeats stops: on a busy host the target is out of
# reach, and more starts there cost time without deciding anything (its row says "not reached").
OUT_OF_REACH = 2.0


def relative_precision(startup_ms: Sequence[float]) -> float | None:
    """The wider half of the 95% interval of the median over the median; None without samples
    (or a zero median). Fewer than analysis.MIN_SAMPLES give 0 from median_ci: callers ask
    only past min_repeats (at least 3)."""
    return _relative(median_ci(startup_ms))


def _relative(estimate) -> float | None:
    if estimate is None or estimate.median <= 0:
        return None
    return max(estimate.median - estimate.lo, estimate.hi - estimate.median) / estimate.median


def next_burst(rule: SamplingRule, startup_ms: Sequence[float], burst: int) -> int:
    """How many timed starts the variant takes next (0: it has enough), given its samples so far
    (stored ones of an earlier session included: a resumed variant decides from them)."""
    taken = len(startup_ms)
    more = min(burst, rule.max_repeats - taken)
    if more <= 0:
        return 0
    if taken < rule.min_repeats:
        return more
    if rule.budget_s is not None and sum(v for v in startup_ms if v is not None) / 1000 >= rule.budget_s:
        return 0
    reached = relative_precision(startup_ms)
    if reached is None or reached <= rule.precision:
        return 0
    # Only once it had starts in several rounds: a variant's first two bursts can both land in
    # one noisy stretch of the run, and a verdict on it would rest on that stretch alone.
    if taken >= 2 * rule.min_repeats and taken * (reached / rule.precision) ** 2 > OUT_OF_REACH * rule.max_repeats:
        return 0
    return more


def projected_starts(rule: SamplingRule, startup_ms: Sequence[float], burst: int) -> int:
    """For a runner that cannot decide between bursts (a full-system guest runs a plan fixed at
    boot): how many more starts the variant likely needs to reach the target, from the interval
    its samples give now (a half-width shrinks about as 1/sqrt(n)), in whole bursts, within
    max_repeats and the budget; 0 when it needs none."""
    if next_burst(rule, startup_ms, burst) == 0:
        return 0
    taken = len(startup_ms)
    if taken < rule.min_repeats:
        return rule.min_repeats - taken
    reached = relative_precision(startup_ms) or 0.0
    wanted = int(np.ceil(taken * (reached / rule.precision) ** 2)) - taken
    wanted = max(burst, -(-wanted // burst) * burst)
    if rule.budget_s is not None:
        spent = sum(v for v in startup_ms if v is not None)
        per_start = spent / taken if taken else 0.0
        if per_start > 0:
            wanted = min(wanted, max(1, int((rule.budget_s * 1000 - spent) / per_start)))
    return max(0, min(wanted, rule.max_repeats - taken))


def precision_columns(rule: SamplingRule, startup_ms: Sequence[float]) -> dict:
    """What a row records of the precision its start-up samples reached."""
    estimate = median_ci(startup_ms)
    reached = _relative(estimate)
    return {"startup_ms_ci_low": None if estimate is None else estimate.lo,
            "startup_ms_ci_high": None if estimate is None else estimate.hi,
            "startup_precision": reached, "precision_target": rule.precision,
            "precision_reached": None if reached is None else bool(reached <= rule.precision)}


def aa_halves(startup_ms: Sequence[float], burst: int) -> tuple[list[float], list[float]]:
    """One binary's samples split in two that both span the run: alternate bursts (sample i is in
    burst i // burst), so drift over the run falls on both halves alike."""
    halves: tuple[list[float], list[float]] = ([], [])
    for index, value in enumerate(startup_ms):
        if value is not None:
            halves[(index // burst) % 2].append(value)
    return halves


def aa_change(values: Sequence[float], burst: int):
    """One binary's A/A comparison: its two halves (aa_halves) compared as if they were two builds
    (analysis.compare_samples, verdict and ratio only); None when a half has too few samples."""
    first, second = aa_halves(values, burst)
    found = compare_samples(first, second, interval=False)
    return None if found is None or found.p_value is None else found


def noise_floor(samples_by_binary: dict[str, Sequence[float]], burst: int) -> dict:
    """The A/A check over every measured binary: its two halves (aa_halves) compared as if they
    were two builds (analysis.compare_samples). Any difference between them is noise, so the
    spread of |ratio - 1| is the floor below which a measured effect means nothing, and every
    faster/slower verdict among them is a false one."""
    changes, false_calls = [], []
    for key, values in samples_by_binary.items():
        found = aa_change(values, burst)
        if found is None:
            continue
        changes.append(abs(found.ratio - 1))
        if found.verdict in (FASTER, SLOWER):
            false_calls.append(key)
    return {
        "pairs": len(changes),
        "split": f"alternate bursts of {burst}",
        "abs_change_median": float(np.median(changes)) if changes else None,
        "abs_change_p95": float(np.percentile(changes, 95)) if changes else None,
        "false_verdicts": len(false_calls),
        "false_verdict_variants": false_calls,
    }


FLOOR_COLUMNS = ("startup_ms", "cpu_ms")  # the timed figures that get an A/A floor


def noise_floors(df, samples, burst: int = 5, quantile: float = 95) -> dict[str, dict[tuple[str, bool, str], float]]:
    """samples column (start-up, CPU time) -> (run id, emulated, scope) -> the ``quantile`` of
    |ratio - 1| between the A/A halves (aa_halves) of each binary timed there: native starts,
    emulated ones and container starts are noisy each in their own way, so each kind of a run
    gets its own floor. Variants that share one binary (same_binary_as) count once. Kinds with
    fewer than 3 binaries: none."""
    if samples is None or samples.is_empty():
        return {}
    return {column: _floors(df, samples, column, burst, quantile) for column in FLOOR_COLUMNS
            if column in samples.columns}


def _floors(df, samples, column: str, burst: int, quantile: float) -> dict[tuple[str, bool, str], float]:
    import polars as pl

    ok = df.filter(pl.col("status") == "ok")
    if "same_binary_as" in ok.columns:
        ok = ok.filter(pl.col("same_binary_as").is_null())
    emulated = ok["emulated"].fill_null(False) if "emulated" in ok.columns else pl.Series([False] * ok.height)
    base = ok["base"].fill_null("none") if "base" in ok.columns else pl.Series(["none"] * ok.height)
    runs = ok["run_id"].fill_null("") if "run_id" in ok.columns else pl.Series([""] * ok.height)
    kind = {(r, k): (r, bool(e), "binary" if b == "none" else "image")
            for r, k, e, b in zip(runs, ok["variant_key"], emulated, base)}
    by_kind: dict[tuple, list[float]] = {}
    ordered = samples.with_columns(pl.col("run_id").fill_null("")).sort("run_id", "variant_key", "sample_index")
    for (run, key), part in ordered.group_by(["run_id", "variant_key"], maintain_order=True):
        where = kind.get((run, key))
        if where is None:
            continue
        found = aa_change(part[column].to_list(), burst)
        if found is not None:
            by_kind.setdefault(where, []).append(abs(found.ratio - 1))
    return {where: float(np.percentile(changes, quantile)) for where, changes in by_kind.items() if len(changes) >= 3}
