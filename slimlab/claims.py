"""The research brief's claims checked against measurements.

The claims are data (``slimlab/claims.toml``, or a user's file of the same shape): each names a
metric, the rows it is about (``where``), for a comparison the axis values that differ
(``baseline`` vs ``candidate``), and what it expects: a ratio, a difference or a value, with a
tolerance or a bound. :func:`check_claims` measures each one on a results frame:

- Pairs. A comparison pairs every candidate row with the baseline row of the same run that has
  the same value on every other axis (``{postlink = "none"}`` vs ``{postlink = "strip"}``: each
  build with its own stripped copy). Only rows with status ok count; start-up times of emulated
  rows (QEMU) are left out, they are not native, and a timed pair is of rows measured on one host
  (the same ``host_fingerprint``).
- Each pair. Sizes are exact: ``analysis.compare_exact``'s ratio, or the plain difference, with
  no interval. Timed metrics go back to the raw samples: ``analysis.compare_samples`` for a ratio
  (its bootstrap interval), :func:`slimlab.analysis.median_difference` for a difference in ms, ``median_ci`` for a
  value.
- Pooled over the pairs. Ratios by their geometric mean, differences and values by their mean,
  flags (``is_static``) as the share of rows where it is true. The pooled interval averages the
  pairs' interval ends the same way: conservative, as if the pairs' errors all moved together.
  ``by="workload"`` gives a row per workload instead of one per claim.
- Verdict. "holds" when the interval lies inside the claimed band, "does not hold" when it lies
  wholly outside, "inconclusive" when it straddles an end (more repeats would tell), "not measured
  here" with the reason (no gccgo rows: add it to the spec; TinyGo not installed; the rows failed).
  An exact figure's interval is the figure itself, so sizes are never inconclusive. A timed
  "higher"/"lower" claim needs the change beyond ``analysis.FACTOR``, as the report's comparisons do.
"""

from __future__ import annotations

import html
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from . import analysis
from .errors import SpecError, did_you_mean, unknown
from .model import BY_COLUMN, COLUMNS, SweepSpec

HOLDS, FAILS, INCONCLUSIVE, NOT_MEASURED = "holds", "does not hold", "inconclusive", "not measured here"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE, NOT_MEASURED)
BUILTIN = "claims.toml"  # package data: the research brief's claims


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # "exact" (one figure per build), "timed" (raw samples per start) or "flag" (a boolean)
    unit: str
    sample: str | None = None  # the SAMPLE_SCHEMA column of a timed metric
    columns: tuple[str, ...] = ()  # result columns it needs (default: its own name); the first must be set

    def needs(self) -> tuple[str, ...]:
        return self.columns or (self.name,)

    def present(self) -> pl.Expr:
        """Rows that have this metric (an image's size only where an image was built); a timed
        metric's figures are its raw samples, looked up per pair."""
        return pl.lit(True) if self.kind == "timed" else pl.col(self.needs()[0]).is_not_null()


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("size_bytes", "exact", "bytes"),
    Metric("image_size_bytes", "exact", "bytes"),
    Metric("section_dwarf_bytes", "exact", "bytes"),
    # What a deployment carries: the binary and the shared libraries it needs (gccgo's libgo).
    Metric("shipped_bytes", "exact", "bytes", columns=("size_bytes", "needed_libs_bytes")),
    Metric("is_static", "flag", ""),
    Metric("startup_ms_median", "timed", "ms", "startup_ms"),
    Metric("peak_rss_kib_median", "timed", "KiB", "peak_rss_kib"),
    Metric("ready_rss_kib_median", "timed", "KiB", "ready_rss_kib"),
    # CPU time per start: what start-up costs without the waiting a busy host adds to wall time.
    Metric("cpu_ms_median", "timed", "ms", "cpu_ms"),
)}
EXPECT_KEYS = ("ratio", "ratio_min", "ratio_max", "difference", "difference_min", "difference_max", "direction",
               "value", "min", "max", "equals", "tolerance")
CLAIM_KEYS = ("id", "claim", "source", "metric", "where", "baseline", "candidate", "expect", "note")
DIRECTIONS = ("lower", "higher")


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str
    source: str
    metric: Metric
    where: tuple[tuple[str, str], ...]
    baseline: tuple[tuple[str, str], ...]
    candidate: tuple[tuple[str, str], ...]
    scale: str  # "ratio" (candidate/baseline), "difference" (candidate - baseline) or "value"
    lo: float  # the claimed band
    hi: float
    strict: bool  # a direction: the band's finite end itself is not in it (a ratio of 1 is not lower)
    claimed: str  # the band as a reader sees it
    note: str = ""

    @property
    def compares(self) -> bool:
        return self.scale != "value"

    def compared(self) -> str:
        where = ", ".join(f"{k}={v}" for k, v in self.where)
        if not self.compares:
            return where
        sides = " -> ".join(", ".join(f"{v}" for _, v in side) for side in (self.baseline, self.candidate))
        axes = "/".join(dict.fromkeys(k for k, _ in (*self.baseline, *self.candidate)))
        return f"{axes} {sides}" + (f" ({where})" if where else "")


# -- loading -------------------------------------------------------------------------------

def load_claims(source: str | Path | Sequence[Mapping] | None = None) -> list[Claim]:
    """The claims in ``source``: a TOML file (``[[claim]]`` tables), a list of such tables, or
    None for the research brief's (package data). SpecError naming the claim, the key and the
    valid choices for every mistake, before any measurement is looked at."""
    base_dir = None
    if source is None:
        label, data = BUILTIN, tomllib.loads(resources.files("slimlab").joinpath(BUILTIN).read_text())
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise SpecError(f"claims file {str(path)!r} not found")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(f"{path}: not valid TOML: {exc}") from exc
        label, base_dir = str(path), path.parent.resolve()
    else:
        label, data = "claims", {"claim": list(source)}
    extra = [k for k in data if k != "claim"]
    if extra:
        raise SpecError(f"{label}: unknown key {extra[0]!r}{did_you_mean(extra[0], ['claim'])}; "
                        "a claims file holds [[claim]] tables only")
    tables = data.get("claim")
    if not isinstance(tables, list) or not tables:
        raise SpecError(f"{label}: no claims: write each as a [[claim]] table with keys {', '.join(CLAIM_KEYS)}")
    # Axis values are checked as a spec's are (model.axes): built-in profiles, known chains, bases.
    spec = SweepSpec.from_dict({"workloads": ["hello"]}, base_dir=base_dir)
    claims = [_claim(table, f"{label}: claim {i + 1}", spec) for i, table in enumerate(tables)]
    ids = [c.id for c in claims]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise SpecError(f"{label}: claim ids must be unique: {', '.join(dupes)} repeated")
    return claims


def _claim(table: Any, at: str, spec: SweepSpec) -> Claim:
    if not isinstance(table, dict):
        raise SpecError(f"{at}: each claim must be a table, not {type(table).__name__}")
    at = f"{at} ({table['id']!r})" if isinstance(table.get("id"), str) else at
    for key in table:
        if key not in CLAIM_KEYS:
            raise SpecError(f"{at}: unknown key {key!r}{did_you_mean(key, CLAIM_KEYS)}; valid: {', '.join(CLAIM_KEYS)}")
    for key in ("id", "claim", "metric", "expect"):
        if key not in table:
            raise SpecError(f"{at}: missing {key!r}")
    for key in ("id", "claim", "source", "metric", "note"):
        if key in table and not isinstance(table[key], str):
            raise SpecError(f"{at}: {key} must be a string")
    if table["metric"] not in METRICS:
        raise SpecError(f"{at}: {unknown('metric', table['metric'], METRICS)}")
    metric = METRICS[table["metric"]]
    where, baseline, candidate = (_axes(table.get(k, {}), f"{at}: {k}", spec)
                                  for k in ("where", "baseline", "candidate"))
    if bool(baseline) != bool(candidate):
        raise SpecError(f"{at}: a comparison needs both baseline and candidate (the axis values that differ)")
    if baseline and dict(baseline).keys() != dict(candidate).keys():
        raise SpecError(f"{at}: baseline and candidate must name the same axes, got "
                        f"{sorted(dict(baseline))} and {sorted(dict(candidate))}")
    if baseline and baseline == candidate:
        raise SpecError(f"{at}: baseline and candidate are the same rows")
    clash = set(dict(where)) & set(dict(baseline))
    if clash:
        raise SpecError(f"{at}: {sorted(clash)} in both where and baseline/candidate: name each axis once")
    scale, lo, hi, strict, claimed = _expect(table["expect"], at, metric, compares=bool(baseline))
    return Claim(table["id"], table["claim"], table.get("source", ""), metric, where, baseline, candidate,
                 scale, lo, hi, strict, claimed, table.get("note", ""))


def _axes(table: Any, at: str, spec: SweepSpec) -> tuple[tuple[str, str], ...]:
    if not isinstance(table, dict):
        raise SpecError(f"{at} must be a table of axis = value, e.g. {{ postlink = \"strip\" }}")
    for column, value in table.items():
        if column not in BY_COLUMN:
            raise SpecError(f"{at}: {unknown('axis', column, COLUMNS)}")
        if not isinstance(value, str):
            raise SpecError(f"{at}: {column} = {value!r}: the value must be a name (a string)")
        try:
            BY_COLUMN[column].check(value, spec)
        except SpecError as exc:
            raise SpecError(f"{at}: {exc}") from None
    return tuple(sorted(table.items(), key=lambda kv: COLUMNS.index(kv[0])))


def _number(expect: dict, key: str, at: str) -> float | None:
    value = expect.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SpecError(f"{at}: expect.{key} must be a number, got {value!r}")
    return float(value)


def _expect(expect: Any, at: str, metric: Metric, compares: bool):
    """The claimed band: (scale, lo, hi, strict, how it reads)."""
    if not isinstance(expect, dict) or not expect:
        raise SpecError(f"{at}: expect must be a table, e.g. expect = {{ ratio = 0.7, tolerance = 0.05 }}")
    for key in expect:
        if key not in EXPECT_KEYS:
            raise SpecError(f"{at}: {unknown('expect key', key, EXPECT_KEYS)}")
    groups = {"ratio": ("ratio", "ratio_min", "ratio_max", "direction"),
              "difference": ("difference", "difference_min", "difference_max"),
              "value": ("value", "min", "max", "equals")}
    scales = [s for s, keys in groups.items() if any(k in expect for k in keys)]
    if len(scales) != 1:
        raise SpecError(f"{at}: expect needs exactly one of: ratio[_min/_max], difference[_min/_max], direction "
                        f"(a comparison), or value, min/max, equals (the rows' own figure); got {sorted(expect)}")
    scale = scales[0]
    if compares != (scale != "value"):
        raise SpecError(f"{at}: expect.{next(k for k in expect if k in groups[scale])} "
                        + ("compares rows: give baseline and candidate" if not compares else
                           "is about the rows' own figure: leave out baseline and candidate, or expect a ratio "
                           "or difference"))
    if (metric.kind == "flag") != ("equals" in expect):
        raise SpecError(f"{at}: " + (f"metric {metric.name} is true or false: expect = {{ equals = true }}"
                                     if metric.kind == "flag" else f"expect.equals is for flag metrics "
                                     f"({', '.join(m for m, d in METRICS.items() if d.kind == 'flag')})"))
    unit = "" if scale == "ratio" else metric.unit
    tolerance = _number(expect, "tolerance", at)
    centre_key = {"ratio": "ratio", "difference": "difference", "value": "value"}[scale]
    if tolerance is not None and centre_key not in expect:
        raise SpecError(f"{at}: expect.tolerance goes with expect.{centre_key}")
    if "equals" in expect:
        if not isinstance(expect["equals"], bool) or len(expect) > 1:
            raise SpecError(f"{at}: expect = {{ equals = true }} or {{ equals = false }}, nothing else")
        share = 1.0 if expect["equals"] else 0.0
        return scale, share, share, False, f"{metric.name} {str(expect['equals']).lower()} on every row"
    if "direction" in expect:
        direction = expect["direction"]
        if direction not in DIRECTIONS or len(expect) > 1:
            raise SpecError(f"{at}: {unknown('direction', direction, DIRECTIONS)}" if direction not in DIRECTIONS
                            else f"{at}: expect.direction stands alone")
        # Timed figures move by noise: "higher" means beyond analysis.FACTOR, as the report's
        # comparisons call a change; an exact size is higher by a byte.
        factor = analysis.FACTOR if metric.kind == "timed" else 1.0
        return (scale, 0.0, 1 / factor, True, f"lower (ratio < {1 / factor:.3g})") if direction == "lower" else \
            (scale, factor, math.inf, True, f"higher (ratio > {factor:.3g})")
    centre = _number(expect, centre_key, at)
    if centre is not None:
        if any(k in expect for k in groups[scale] if k != centre_key):
            raise SpecError(f"{at}: expect.{centre_key} with a tolerance, or bounds, not both")
        tolerance = tolerance or 0.0
        if tolerance < 0:
            raise SpecError(f"{at}: expect.tolerance must not be negative")
        text = f"{_fmt(centre, scale, unit)} ± {_fmt(tolerance, 'value', unit)}"
        return scale, centre - tolerance, centre + tolerance, False, text
    low_key, high_key = (("min", "max") if scale == "value" else (f"{scale}_min", f"{scale}_max"))
    low, high = _number(expect, low_key, at), _number(expect, high_key, at)
    low, high = (-math.inf if low is None else low), (math.inf if high is None else high)
    if low > high:
        raise SpecError(f"{at}: expect.{low_key} is above expect.{high_key}")
    text = (f"≤ {_fmt(high, scale, unit)}" if low == -math.inf else f"≥ {_fmt(low, scale, unit)}"
            if high == math.inf else f"{_fmt(low, scale, unit)} to {_fmt(high, scale, unit)}")
    return scale, low, high, False, text


# -- measuring -----------------------------------------------------------------------------

def _figure(row: dict, metric: Metric) -> float | None:
    if metric.name == "shipped_bytes":
        return None if row.get("size_bytes") is None else row["size_bytes"] + (row.get("needed_libs_bytes") or 0)
    value = row.get(metric.name)
    return None if value is None else float(value)


def _measure_pair(claim: Claim, base: dict | None, cand: dict,
                  samples: Mapping[tuple[str, str], dict]) -> tuple[float, float, float] | str:
    """(value, lo, hi) of one pair (or one row, for a value claim), or why it has none."""
    metric = claim.metric
    if metric.kind != "timed":
        b, c = (_figure(base, metric) if base else None), _figure(cand, metric)
        if c is None or (base and b is None):
            return f"no {metric.name}"
        if claim.scale == "ratio":
            cmp = analysis.compare_exact(b, c)
            return (cmp.ratio,) * 3 if cmp else "baseline of 0"
        value = c - b if claim.scale == "difference" else c
        return value, value, value
    c = samples.get((cand["run_id"], cand["variant_key"]), {}).get(metric.sample, [])
    b = samples.get((base["run_id"], base["variant_key"]), {}).get(metric.sample, []) if base else []
    if not c or (base and not b):
        return f"no {metric.sample} samples"
    if min(len(c), len(b) if base else len(c)) < analysis.MIN_SAMPLES:
        return f"{analysis.TOO_FEW} (under {analysis.MIN_SAMPLES})"
    if claim.scale == "ratio":
        cmp = analysis.compare_samples(b, c)
        return (cmp.ratio, cmp.lo, cmp.hi) if cmp else "a baseline median of 0"
    if claim.scale == "difference":
        return analysis.median_difference(b, c)
    est = analysis.median_ci(c)
    return est.median, est.lo, est.hi


def _verdict(claim: Claim, lo: float, hi: float) -> str:
    """HOLDS when [lo, hi] lies inside the claimed band, FAILS when wholly outside it."""
    if claim.strict:  # a direction: a ratio of exactly 1 is neither lower nor higher
        inside, outside = claim.lo < lo and hi < claim.hi, hi <= claim.lo or lo >= claim.hi
    else:
        inside, outside = claim.lo <= lo and hi <= claim.hi, hi < claim.lo or lo > claim.hi
    return HOLDS if inside else FAILS if outside else INCONCLUSIVE


def _pool(values: list[float], scale: str) -> float:
    if scale == "ratio":
        return float(np.exp(np.mean(np.log(values))))
    return float(np.mean(values))


def _selected(df: pl.DataFrame, pairs: Sequence[tuple[str, str]]) -> pl.DataFrame:
    return df.filter(*[pl.col(k) == v for k, v in pairs]) if pairs else df


def _pairs(claim: Claim, df: pl.DataFrame) -> list[tuple[dict | None, dict]]:
    rows = _selected(df, claim.where).filter(pl.col("status") == "ok", claim.metric.present())
    if claim.metric.kind == "timed" and "emulated" in rows.columns:
        # Under QEMU the milliseconds are the emulator's, and so is the memory in user mode: a
        # claim about Go binaries is checked on native figures only.
        rows = rows.filter(pl.col("emulated").fill_null(False).not_())
    if not claim.compares:
        return [(None, r) for r in rows.iter_rows(named=True)]
    differ = [k for k, _ in claim.baseline]
    keys = ["run_id", *[c for c in COLUMNS if c not in differ and c in rows.columns]]
    base = _selected(rows, claim.baseline)
    # One machine's timings are not another's (Dask workers measure what they built): a timed
    # pair is of one host (analysis.same_host: equal fingerprints, or none recorded on either).
    same_host = claim.metric.kind == "timed" and "host_fingerprint" in rows.columns
    out = []
    for cand in _selected(rows, claim.candidate).iter_rows(named=True):
        host = [pl.col("host_fingerprint").eq_missing(pl.lit(cand["host_fingerprint"], pl.String))] if same_host else []
        match = base.filter(*[pl.col(k) == cand[k] for k in keys], *host)
        if match.height:
            out.append((match.row(0, named=True), cand))
    return out


def _installed(toolchain: str) -> bool | None:
    try:
        from .toolchains import get

        return get(toolchain).detect() is not None
    except Exception:  # noqa: BLE001 - a reason to show, never a failure of the check
        return None


def _why_not(claim: Claim, df: pl.DataFrame) -> str:
    """Why a claim has no measured pair in ``df``: what to add to the spec, or what failed."""
    missing = [c for c in ("status", *claim.metric.needs()) if c not in df.columns]
    if df.is_empty() or missing:
        return "no results" if df.is_empty() else f"these results have no {missing[0]} column"
    reasons = []
    for column, value in (*claim.where, *claim.baseline, *claim.candidate):
        if value in set(df[column].drop_nulls()):
            continue
        add = f"add {value!r} to the spec's {BY_COLUMN[column].key}"
        reason = f"no {column}={value} rows in this run: {add}"
        if column == "toolchain" and value != "go" and _installed(value) is False:
            reason = f"{value} is not installed here (see `slimlab doctor`): install it, then {add}"
        reasons.append(reason)
    if reasons:
        return "; ".join(dict.fromkeys(reasons))
    sides = [("", ())] if not claim.compares else [("baseline ", claim.baseline), ("candidate ", claim.candidate)]
    for name, side in sides:
        rows = _selected(_selected(df, claim.where), side)
        if rows.is_empty():
            wanted = ", ".join(f"{k}={v}" for k, v in (*claim.where, *side))
            return f"no {name}row has {wanted} together (the spec's excludes?)"
        failed = rows.filter(pl.col("status") != "ok")
        if failed.height == rows.height:
            first = failed.row(0, named=True)
            return f"every {name}row failed: {first['status']}: {first.get('reason') or 'no reason given'}"
        if rows.filter(pl.col("status") == "ok", claim.metric.present()).is_empty():
            hint = " (an image is built for a base other than none)" if claim.metric.name.startswith("image") else ""
            return f"{claim.metric.name} is empty on every ok {name}row{hint}"
    native = _selected(df, claim.where).filter(pl.col("status") == "ok", pl.col("emulated").fill_null(False).not_())
    if (claim.metric.kind == "timed" and claim.compares and "host_fingerprint" in native.columns
            and native["host_fingerprint"].n_unique() > 1):
        return ("no candidate row has a baseline row measured on the same host (host_fingerprint): one machine's "
                "timings are not compared with another's")
    if claim.metric.name == "startup_ms_median":
        return "only emulated rows: start-up times under QEMU are not native"
    return "no candidate row has a baseline row of the same run and other axes"


def _fmt(value: float, scale: str, unit: str) -> str:
    if value is None or not math.isfinite(value):
        return "∞" if value == math.inf else "-∞" if value == -math.inf else "?"
    if scale == "ratio":
        return f"{value:.3g}× ({value - 1:+.0%})"
    sign = "+" if scale == "difference" and value > 0 else ""
    if unit == "bytes":
        return f"{sign}{value / 1e6:.3g} MB" if abs(value) >= 1e5 else f"{sign}{value:.0f} bytes"
    if unit == "":
        return f"{value:.0%}"
    return f"{sign}{value:.3g} {unit}"


def _row(claim: Claim, group: str | None, measured: list, reason: str | None, notes: list[str]) -> dict:
    out = {"id": claim.id, "claim": claim.claim, "group": group, "compared": claim.compared(),
           "metric": claim.metric.name, "claimed": claim.claimed, "measured": None, "lo": None, "hi": None,
           "measured_text": "", "pairs": len(measured), "pairs_holding": None, "verdict": NOT_MEASURED,
           "why": reason or "", "source": claim.source, "note": claim.note}
    if not measured:
        return out
    unit = "" if claim.scale == "ratio" else claim.metric.unit
    value, lo, hi = (_pool([m[i] for m in measured], claim.scale) for i in range(3))
    holding = sum(_verdict(claim, m[1], m[2]) == HOLDS for m in measured)
    verdict = _verdict(claim, lo, hi)
    text = _fmt(value, claim.scale, unit) + ("" if lo == hi else f" [{_fmt(lo, claim.scale, unit)}, "
                                                                 f"{_fmt(hi, claim.scale, unit)}]")
    if claim.metric.kind == "flag":
        text = f"{claim.metric.name} on {round(value * len(measured))} of {len(measured)} rows"
    spread = "" if len(measured) == 1 or claim.metric.kind == "flag" else (
        f"; the {len(measured)} pairs range {_fmt(min(m[0] for m in measured), claim.scale, unit)} to "
        f"{_fmt(max(m[0] for m in measured), claim.scale, unit)}, {holding} hold")
    why = {HOLDS: f"within the claim ({claim.claimed})",
           FAILS: f"outside the claim ({claim.claimed})",
           INCONCLUSIVE: f"the interval straddles an end of the claim ({claim.claimed}): "
                         "more repeats would tell"}[verdict]
    out.update(measured=value, lo=lo, hi=hi, measured_text=text, pairs_holding=holding, verdict=verdict,
               why=why + spread + "".join(f"; {n}" for n in dict.fromkeys(notes)))
    return out


SCHEMA = {"id": pl.String, "claim": pl.String, "group": pl.String, "compared": pl.String, "metric": pl.String,
          "claimed": pl.String, "measured": pl.Float64, "lo": pl.Float64, "hi": pl.Float64,
          "measured_text": pl.String, "pairs": pl.Int64, "pairs_holding": pl.Int64, "verdict": pl.String,
          "why": pl.String, "source": pl.String, "note": pl.String}


def check_claims(df: pl.DataFrame, samples: pl.DataFrame | None,
                 claims: str | Path | Sequence[Mapping] | Sequence[Claim] | None = None,
                 by: str | None = None) -> pl.DataFrame:
    """One row per claim (per claim and ``by`` group, e.g. ``by="workload"``): the claim, the
    measured value (``measured``, ``lo``, ``hi``; a ratio, a difference in the metric's unit, or a
    value), ``measured_text`` as a reader sees it, how many pairs it pools and how many of them
    hold on their own, the ``verdict`` (VERDICTS) and ``why``.

    ``df``: a results frame (slimlab.results.load); ``samples``: its raw samples
    (slimlab.results.load_samples), needed for the timed metrics; ``claims``: a claims file, a
    list of claim tables or Claims, or None for the research brief's."""
    if isinstance(claims, (list, tuple)) and claims and all(isinstance(c, Claim) for c in claims):
        claim_list = list(claims)
    else:
        claim_list = load_claims(claims)
    if by is not None and by not in COLUMNS:
        raise unknown("by axis", by, COLUMNS)
    by_sample: dict[tuple[str, str], dict[str, list[float]]] = {}
    if samples is not None and not samples.is_empty():
        for key, group in samples.group_by(["run_id", "variant_key"]):
            by_sample[key] = {m.sample: group[m.sample].drop_nulls().to_list()
                              for m in METRICS.values() if m.sample and m.sample in group.columns}
    out = []
    for claim in claim_list:
        pairs = _pairs(claim, df) if not _why_missing_columns(claim, df) else []
        groups: dict[str | None, list] = {}
        for base, cand in pairs:
            groups.setdefault(cand[by] if by else None, []).append((base, cand))
        if not groups:
            out.append(_row(claim, None, [], _why_not(claim, df), []))
            continue
        for group, members in sorted(groups.items(), key=lambda kv: str(kv[0])):
            measured, notes = [], []
            if claim.metric.kind == "timed" and samples is None:
                out.append(_row(claim, group, [], "no samples given: timed metrics are compared on the raw "
                                                  "samples (slimlab.results.load_samples)", []))
                continue
            for base, cand in members:
                result = _measure_pair(claim, base, cand, by_sample)
                if isinstance(result, str):
                    notes.append(f"{cand['variant_key']}: {result}")
                else:
                    measured.append(result)
            out.append(_row(claim, group, measured, "; ".join(notes) if not measured else None,
                            notes))
    return pl.DataFrame(out, schema=SCHEMA)


def _why_missing_columns(claim: Claim, df: pl.DataFrame) -> bool:
    return df.is_empty() or any(c not in df.columns for c in ("status", "run_id", *claim.metric.needs()))


# -- showing -------------------------------------------------------------------------------

TABLE_COLUMNS = ("claim", "group", "compared", "claimed", "measured_text", "verdict", "why")


def claims_html(table: pl.DataFrame) -> str:
    """The claims table as an HTML table; every cell escaped (workload names are user input)."""
    columns = [c for c in TABLE_COLUMNS if c in table.columns and not (c == "group" and table[c].is_null().all())]
    # Inline alignment: Jupyter's own table rules (cells right-aligned) outrank a class selector.
    cell = 'style="text-align:left;vertical-align:top;padding:2px 6px"'
    colour = {HOLDS: "#176b2c", FAILS: "#b00020", INCONCLUSIVE: "#8a5a00", NOT_MEASURED: "#777"}
    head = "".join(f"<th {cell}>{html.escape(c.replace('_text', ''))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(
            f"<td {cell[:-1]}{';color:' + colour[row[c]] if c == 'verdict' and row[c] in colour else ''}\">"
            f"{html.escape('' if row[c] is None else str(row[c]))}</td>" for c in columns) + "</tr>"
        for row in table.iter_rows(named=True))
    return f'<table class="claims"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def brief_and(claims_file: str | Path | None) -> list[Claim]:
    """The research brief's claims, then the user's from ``claims_file`` (whose ids must differ)."""
    claims = load_claims()
    if claims_file is not None:
        mine = load_claims(claims_file)
        clash = sorted({c.id for c in claims} & {c.id for c in mine})
        if clash:
            raise SpecError(f"{claims_file}: claim ids {', '.join(clash)} are the research brief's already: "
                            "rename yours")
        claims += mine
    return claims


def display_claims(run_path: str | Path | None = None, claims_file: str | Path | None = None) -> pl.DataFrame:
    """For notebooks/claims.ipynb: check the brief's claims, and the user's in ``claims_file``
    after them, on a run (or data) directory; show the table (one row per claim, then per
    workload) and return the per-claim frame."""
    from IPython.display import HTML, display

    from .results import load, load_samples

    claims = brief_and(claims_file)
    df, samples = load(run_path), load_samples(run_path)
    table = check_claims(df, samples, claims)
    display(HTML(f"<h2>Claims checked on {html.escape(str(run_path))}</h2>" + claims_html(table)))
    display(HTML("<h3>Per workload</h3>" + claims_html(check_claims(df, samples, claims, by="workload"))))
    return table
