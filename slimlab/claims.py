"""The research brief's claims checked against measurements.

The claims are data (``slimlab/claims.toml``, or a user's file of the same shape): each names a
metric, the rows it is about (``where``, and ``conditions`` on how they were built and run), for
a comparison the axis values that differ (``baseline`` vs ``candidate``), and what it expects: a
ratio, a difference or a value, with a tolerance or a bound. :func:`check_claims` measures each
one on a results frame:

- Scope. A verdict is per workload and target (and host, for timings): "upx -9 costs +8.7 ms"
  is judged on hello amd64 and on httpd amd64 apart, never on a blend of the two. A ``where`` or
  ``candidate`` value may be a list (``postlink = ["strip+upx-9", "upx-9"]``: any chain that
  ends in UPX); ``conditions`` keep rows by how they were built (``cgo = true``: the build had
  CGO_ENABLED=1; ``cross_build = false``: built on a CPU of its own target). Only rows with
  status ok count, and timed metrics are native only (under QEMU the figures are the emulator's).
- Pairs. A comparison pairs every candidate row with the baseline row of the same run that has
  the same value on every other axis (``{postlink = "none"}`` vs ``{postlink = "strip"}``: each
  build with its own stripped copy); a timed pair is of rows measured on one host (the same
  ``host_fingerprint``).
- Each pair. Sizes are exact: ``analysis.compare_exact``'s ratio, or the plain difference, with
  no interval. Timed metrics go back to the raw samples: ``analysis.compare_samples`` for a ratio
  (its bootstrap interval), ``analysis.median_difference`` for a difference, ``median_ci`` for a
  value. Two builds of identical bytes (same sha256, runner and target) take the same time: their
  timing effect is exactly none.
- Verdict of a pair. "holds" when the interval lies inside the claimed band; outside it, the
  direction: "larger than claimed" (the effect goes the claimed way, further: a 32% saving
  against "10-30%"), "smaller than claimed" (the claimed way but short of it, or no change),
  "opposite" (wholly the other way); for a claim about a figure itself (an image under 12 MB),
  larger or smaller than claimed. An interval that straddles an end of the band is
  "inconclusive (...)". Timings follow the shared rules (``analysis.guard_timing``): a row that
  did not reach its stated precision gives ``PRECISION_NOT_REACHED``; on a busy host (the
  manifest's ``measurement.warnings``) a start-up verdict stands only when CPU time gives the
  same one, else ``HOST_BUSY``; image start-ups across bases on a vfs engine, ``VFS_STORAGE``.
- Verdict of a (claim, workload, target) line: its pairs' verdict when they agree (several runs,
  or several chains the claim names), else "inconclusive (the pairs disagree)", each listed.
  "not measured here (why)" when no pair exists: what to add to the spec, what failed, or which
  condition left the rows out.
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
from .errors import SpecError, did_you_mean, shown, unknown
from .model import BY_COLUMN, COLUMNS, TARGETS, SweepSpec

HOLDS = "holds"
LARGER = "larger than claimed"
SMALLER = "smaller than claimed"
OPPOSITE = "opposite"
INCONCLUSIVE = analysis.INCONCLUSIVE
NOT_MEASURED = "not measured here"
VERDICTS = (HOLDS, LARGER, SMALLER, OPPOSITE, INCONCLUSIVE, NOT_MEASURED)
STRADDLES = analysis.inconclusive("the interval straddles an end of the claim")
PAIRS_DISAGREE = analysis.inconclusive("the pairs disagree")
BUILTIN = "claims.toml"  # package data: the research brief's claims


def not_measured(why: str) -> str:
    """The verdict "not measured here (why)"."""
    return f"{NOT_MEASURED} ({why})"


def verdict_kind(verdict: str) -> str:
    """The VERDICTS word a verdict starts with: "inconclusive (host busy)" -> "inconclusive"."""
    return next((v for v in VERDICTS if verdict == v or verdict.startswith(v + " (")), verdict)


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # "exact" (one figure per build), "timed" (raw samples per start) or "flag" (a boolean)
    unit: str
    sample: str | None = None  # the SAMPLE_SCHEMA column of a timed metric
    columns: tuple[str, ...] = ()  # result columns it needs (default: its own name); the first must be set
    timing: bool = False  # a time: the precision rule applies to it
    wall: bool = False  # wall time: a busy host inflates it, so its verdicts need CPU time to agree

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
    Metric("startup_ms_median", "timed", "ms", "startup_ms", timing=True, wall=True),
    Metric("peak_rss_kib_median", "timed", "KiB", "peak_rss_kib"),
    Metric("ready_rss_kib_median", "timed", "KiB", "ready_rss_kib"),
    # CPU time per start: what start-up costs without the waiting a busy host adds to wall time.
    Metric("cpu_ms_median", "timed", "ms", "cpu_ms", timing=True),
)}
CPU_SAMPLE = METRICS["cpu_ms_median"].sample
EXPECT_KEYS = ("ratio", "ratio_min", "ratio_max", "difference", "difference_min", "difference_max",
               "direction", "value", "min", "max", "equals", "tolerance")
CLAIM_KEYS = ("id", "claim", "source", "metric", "where", "conditions", "baseline", "candidate", "expect",
              "note")
DIRECTIONS = ("lower", "higher")
# Row properties a claim may be conditioned on, beyond the axes (all true or false).
CONDITIONS = {
    "cgo": "the build had cgo on: CGO_ENABLED=1 in the profile's build_env, else in the Go build info",
    "cross_build": "built for another CPU than the one of the host that built and measured it",
    "emulated": "run under QEMU (timed claims are checked on native rows only)",
}
LINE_KEYS = ("workload", "target")  # a verdict is never pooled across these


Values = tuple[str, ...]  # one axis value, or several any of which a row may have


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str
    source: str
    metric: Metric
    where: tuple[tuple[str, Values], ...]
    baseline: tuple[tuple[str, Values], ...]  # one value per axis: a pair has one baseline row
    candidate: tuple[tuple[str, Values], ...]
    scale: str  # "ratio" (candidate/baseline), "difference" (candidate - baseline) or "value"
    lo: float  # the claimed band
    hi: float
    strict: bool  # a direction: the band's finite end itself is not in it (a ratio of 1 is not lower)
    claimed: str  # the band as a reader sees it
    note: str = ""
    conditions: tuple[tuple[str, bool], ...] = ()

    @property
    def compares(self) -> bool:
        return self.scale != "value"

    def compared(self) -> str:
        where = ", ".join(f"{k}={'|'.join(v)}" for k, v in self.where)
        if not self.compares:
            return where
        sides = " -> ".join(", ".join("|".join(v) for _, v in side)
                            for side in (self.baseline, self.candidate))
        axes = "/".join(dict.fromkeys(k for k, _ in (*self.baseline, *self.candidate)))
        return f"{axes} {sides}" + (f" ({where})" if where else "")

    def conditions_text(self) -> str:
        implied = () if self.metric.kind != "timed" or any(k == "emulated" for k, _ in self.conditions) \
            else (("emulated", False),)
        return ", ".join(f"{k}={str(v).lower()}" for k, v in (*self.conditions, *implied))


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
        raise SpecError(f"{label}: no claims: write each as a [[claim]] table with keys "
                        f"{', '.join(CLAIM_KEYS)}")
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
            raise SpecError(f"{at}: unknown key {key!r}{did_you_mean(key, CLAIM_KEYS)}; "
                            f"valid: {', '.join(CLAIM_KEYS)}")
    for key in ("id", "claim", "metric", "expect"):
        if key not in table:
            raise SpecError(f"{at}: missing {key!r}")
    for key in ("id", "claim", "source", "metric", "note"):
        if key in table and not isinstance(table[key], str):
            raise SpecError(f"{at}: {key} must be a string")
    if table["metric"] not in METRICS:
        raise SpecError(f"{at}: {unknown('metric', table['metric'], METRICS)}")
    metric = METRICS[table["metric"]]
    where, baseline, candidate = (_axes(table.get(k, {}), f"{at}: {k}", spec, several=k != "baseline")
                                  for k in ("where", "baseline", "candidate"))
    if bool(baseline) != bool(candidate):
        raise SpecError(f"{at}: a comparison needs both baseline and candidate (the axis values that differ)")
    if baseline and dict(baseline).keys() != dict(candidate).keys():
        raise SpecError(f"{at}: baseline and candidate must name the same axes, got "
                        f"{sorted(dict(baseline))} and {sorted(dict(candidate))}")
    if baseline and all(set(b) & set(c) for (_, b), (_, c) in zip(baseline, candidate)):
        raise SpecError(f"{at}: baseline and candidate are the same rows")
    clash = set(dict(where)) & set(dict(baseline))
    if clash:
        raise SpecError(f"{at}: {sorted(clash)} in both where and baseline/candidate: name each axis once")
    conditions = _conditions(table.get("conditions", {}), f"{at}: conditions", metric)
    scale, lo, hi, strict, claimed = _expect(table["expect"], at, metric, compares=bool(baseline))
    return Claim(table["id"], table["claim"], table.get("source", ""), metric, where, baseline, candidate,
                 scale, lo, hi, strict, claimed, table.get("note", ""), conditions)


def _axes(table: Any, at: str, spec: SweepSpec, several: bool) -> tuple[tuple[str, Values], ...]:
    if not isinstance(table, dict):
        raise SpecError(f"{at} must be a table of axis = value, e.g. {{ postlink = \"strip\" }}")
    out = {}
    for column, value in table.items():
        if column not in BY_COLUMN:
            raise SpecError(f"{at}: {unknown('axis', column, COLUMNS)}")
        values = value if several and isinstance(value, list) else [value]
        if not values or not all(isinstance(v, str) for v in values):
            raise SpecError(f"{at}: {column} = {value!r}: the value must be a name (a string)"
                            + (", or a list of names any of which a row may have" if several else
                               ": a pair has one baseline row"))
        for one in values:
            try:
                BY_COLUMN[column].check(one, spec)
            except SpecError as exc:
                raise SpecError(f"{at}: {exc}") from None
        out[column] = tuple(dict.fromkeys(values))
    return tuple(sorted(out.items(), key=lambda kv: COLUMNS.index(kv[0])))


def _conditions(table: Any, at: str, metric: Metric) -> tuple[tuple[str, bool], ...]:
    if not isinstance(table, dict):
        raise SpecError(f"{at} must be a table, e.g. conditions = {{ cgo = true, cross_build = false }}")
    for key, value in table.items():
        if key not in CONDITIONS:
            raise SpecError(f"{at}: {unknown('condition', key, CONDITIONS)}")
        if not isinstance(value, bool):
            raise SpecError(f"{at}: {key} = {value!r}: a condition is true or false")
    if table.get("emulated") and metric.kind == "timed":
        raise SpecError(f"{at}: emulated = true with the timed metric {metric.name}: timings under QEMU "
                        "are the emulator's, a timed claim is checked on native rows only")
    return tuple(sorted(table.items()))


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
        raise SpecError(f"{at}: expect needs exactly one of: ratio[_min/_max], difference[_min/_max], "
                        "direction (a comparison), or value, min/max, equals (the rows' own figure); "
                        f"got {sorted(expect)}")
    scale = scales[0]
    if compares != (scale != "value"):
        raise SpecError(f"{at}: expect.{next(k for k in expect if k in groups[scale])} "
                        + ("compares rows: give baseline and candidate" if not compares else
                           "is about the rows' own figure: leave out baseline and candidate, or expect a "
                           "ratio or difference"))
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
        return scale, share, share, False, f"{metric.name} {str(expect['equals']).lower()}"
    if "direction" in expect:
        direction = expect["direction"]
        if direction not in DIRECTIONS or len(expect) > 1:
            raise SpecError(f"{at}: {unknown('direction', direction, DIRECTIONS)}"
                            if direction not in DIRECTIONS else f"{at}: expect.direction stands alone")
        # Timed figures move by noise: "higher" means beyond analysis.FACTOR, as the report's
        # comparisons call a change; an exact size is higher by a byte.
        factor = analysis.FACTOR if metric.kind == "timed" else 1.0
        if direction == "lower":
            return scale, 0.0, 1 / factor, True, f"lower (ratio < {1 / factor:.3g})"
        return scale, factor, math.inf, True, f"higher (ratio > {factor:.3g})"
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


# -- what each row is: its conditions and its run's circumstances ---------------------------

def _setting(column: str, name: str) -> pl.Expr:
    """``name``'s value in a list column of 'NAME=value' items (build_env, build_settings), or null."""
    return (pl.col(column).list.eval(pl.element().filter(pl.element().str.starts_with(f"{name}=")))
            .list.first().str.split_exact("=", 1).struct.field("field_1"))


def _runs(manifests: Sequence[Mapping] | None
          ) -> tuple[set[str], set[tuple[str, str]], set[str], dict[str, str]]:
    """From the runs' manifests: the runs measured on a busy host, (run, host fingerprint) of
    the Dask workers that were busy, the runs whose engine stored images with vfs, and each
    host fingerprint's CPU (uname -m)."""
    from .results import manifest_hosts, vfs_run_ids

    busy, busy_workers = set(), set()
    for manifest in manifests or []:
        if not isinstance(manifest, Mapping):
            continue
        run = manifest.get("run_id") or ""
        for session in manifest.get("sessions") or []:
            if not isinstance(session, Mapping):
                continue
            # A resumed run has several sessions; a busy one makes every row of the run suspect,
            # since a row's samples may come from any of them.
            if (session.get("measurement") or {}).get("warnings"):
                busy.add(run)
            busy_workers |= {(run, h.get("fingerprint")) for h in session.get("hosts") or []
                             if isinstance(h, Mapping) and h.get("warnings")}
    vfs = vfs_run_ids(manifests)
    machines = {fp: h.get("machine") for fp, h in manifest_hosts(manifests).items() if h.get("machine")}
    return busy, busy_workers, vfs, machines


def _described(df: pl.DataFrame, manifests: Sequence[Mapping] | None) -> pl.DataFrame:
    """``df`` with what conditions and the timing rules read: ``_cgo``, ``_cross_build``,
    ``_emulated``, ``_precision_reached``, ``_busy``, ``_vfs`` (null where it cannot be told)."""
    busy, busy_workers, vfs, machines = _runs(manifests)
    need = {"build_env": pl.List(pl.String), "build_settings": pl.List(pl.String), "emulated": pl.Boolean,
            "host_fingerprint": pl.String, "run_id": pl.String, "precision_reached": pl.Boolean,
            "startup_precision": pl.Float64}
    df = df.with_columns([pl.lit(None, dtype=t).alias(c) for c, t in need.items() if c not in df.columns])
    target_cpu = pl.col("target").replace_strict({n: t.machine for n, t in TARGETS.items()}, default=None,
                                                 return_dtype=pl.String)
    host_cpu = pl.col("host_fingerprint").replace_strict(machines, default=None, return_dtype=pl.String)
    worker = pl.concat_list(pl.col("run_id").fill_null(""), pl.col("host_fingerprint").fill_null(""))
    return df.with_columns(
        (pl.coalesce(_setting("build_env", "CGO_ENABLED"), _setting("build_settings", "CGO_ENABLED")) == "1")
        .alias("_cgo"),
        # Without the host's record (results from elsewhere), a row run under QEMU was built for
        # another CPU; one that never ran cannot tell.
        pl.when(host_cpu.is_not_null()).then(target_cpu != host_cpu).otherwise(pl.col("emulated"))
        .alias("_cross_build"),
        pl.col("emulated").alias("_emulated"),
        pl.col("precision_reached").fill_null(True).alias("_precision_reached"),
        (pl.col("run_id").is_in(list(busy))
         | worker.list.join("\0").is_in(["\0".join(w) for w in busy_workers if w[1]])).alias("_busy"),
        pl.col("run_id").is_in(list(vfs)).alias("_vfs"),
    )


def _in(pairs: Sequence[tuple[str, Values]]) -> list[pl.Expr]:
    return [pl.col(k).is_in(list(v)) for k, v in pairs]


def _selected(df: pl.DataFrame, pairs: Sequence[tuple[str, Values]]) -> pl.DataFrame:
    return df.filter(*_in(pairs)) if pairs else df


def _conditioned(claim: Claim, rows: pl.DataFrame) -> pl.DataFrame:
    wanted = dict(claim.conditions)
    if claim.metric.kind == "timed":
        wanted.setdefault("emulated", False)
    kept = [pl.col(f"_{k}").eq_missing(pl.lit(v)) for k, v in wanted.items()]
    return rows.filter(*kept) if kept else rows


# -- measuring -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Measured:
    """One pair (or, for a value claim, one row): the figure, its interval and its verdict."""

    value: float
    lo: float
    hi: float
    verdict: str
    label: str  # what tells it from the line's other pairs: "postlink=upx-9"
    note: str = ""


def _figure(row: dict, metric: Metric) -> float | None:
    if metric.name == "shipped_bytes":
        size = row.get("size_bytes")
        return None if size is None else size + (row.get("needed_libs_bytes") or 0)
    value = row.get(metric.name)
    return None if value is None else float(value)


def _band_verdict(claim: Claim, lo: float, hi: float) -> str:
    """Where the interval [lo, hi] lies against the claimed band: inside, straddling an end, or
    outside, and then which way (larger, smaller than claimed, or the opposite direction)."""
    if claim.strict:  # a direction: a ratio of exactly 1 is neither lower nor higher
        inside, above, below = claim.lo < lo and hi < claim.hi, lo >= claim.hi, hi <= claim.lo
    else:
        inside, above, below = claim.lo <= lo and hi <= claim.hi, lo > claim.hi, hi < claim.lo
    if inside:
        return HOLDS
    if not (above or below):
        return STRADDLES
    neutral = {"ratio": 1.0, "difference": 0.0}.get(claim.scale)
    if neutral is None:  # the rows' own figure: there is no "no effect" to measure a direction from
        return LARGER if above else SMALLER
    way = 1 if claim.lo >= neutral else -1 if claim.hi <= neutral else 0
    if way == 0:  # a band around "no change": anything outside it is a larger change
        return LARGER
    if (above and way > 0) or (below and way < 0):
        return LARGER
    if (way > 0 and hi < neutral) or (way < 0 and lo > neutral):
        return OPPOSITE
    return SMALLER


def _estimate(claim: Claim, b: Sequence[float], c: Sequence[float]) -> tuple[float, float, float] | str:
    if not c or (claim.compares and not b):
        return "no samples"
    if min(len(c), len(b) if claim.compares else len(c)) < analysis.MIN_SAMPLES:
        return f"{analysis.TOO_FEW} (under {analysis.MIN_SAMPLES})"
    if claim.scale == "ratio":
        cmp = analysis.compare_samples(b, c)
        return (cmp.ratio, cmp.lo, cmp.hi) if cmp else "a baseline median of 0"
    if claim.scale == "difference":
        return analysis.median_difference(b, c)
    est = analysis.median_ci(c)
    return est.median, est.lo, est.hi


def _same_binary(base: dict | None, cand: dict) -> bool:
    return base is not None and analysis.same_binary(base, cand)


def _busy_verdict(claim: Claim, verdict: str, b: dict, c: dict) -> tuple[str, str]:
    """A wall-time verdict on a busy host stands when CPU time agrees: the shared direction rule
    (analysis.guard_timing) and the same verdict on the CPU-time samples; else HOST_BUSY. With
    a note of what CPU time gave."""
    cpu = _estimate(claim, b.get(CPU_SAMPLE, []), c.get(CPU_SAMPLE, []))
    if isinstance(cpu, str):
        return analysis.HOST_BUSY, f"on a busy host, CPU time: {cpu}"
    cpu_verdict = _band_verdict(claim, cpu[1], cpu[2])
    cpu_text = _measured_text(claim, Measured(*cpu, cpu_verdict, ""))
    note = f"on a busy host, CPU time: {cpu_text} ({cpu_verdict})"
    if cpu_verdict != verdict:
        return analysis.HOST_BUSY, note
    if claim.compares:
        wall = analysis.compare_samples(b[claim.metric.sample], c[claim.metric.sample])
        cpu_cmp = analysis.compare_samples(b[CPU_SAMPLE], c[CPU_SAMPLE], lower_is=analysis.LOWER,
                                           higher_is=analysis.HIGHER)
        if wall and analysis.is_inconclusive(analysis.guard_timing(wall, cpu=cpu_cmp, busy=True).verdict):
            return analysis.HOST_BUSY, note
    return verdict, note


def _measure_pair(claim: Claim, base: dict | None, cand: dict, label: str,
                  samples: Mapping[tuple[str, str], dict]) -> Measured | str:
    """The pair's (or row's) figure and verdict, or why it has none."""
    metric = claim.metric
    if metric.kind == "flag":
        value = cand.get(metric.name)
        if value is None:
            return f"no {metric.name}"
        value = float(value)
        return Measured(value, value, value, HOLDS if value == claim.lo else OPPOSITE, label)
    if metric.kind == "exact":
        b, c = (_figure(base, metric) if base else None), _figure(cand, metric)
        if c is None or (base and b is None):
            return f"no {metric.name}"
        if claim.scale == "ratio":
            cmp = analysis.compare_exact(b, c)
            if cmp is None:
                return "baseline of 0"
            value = cmp.ratio
        else:
            value = c - b if claim.scale == "difference" else c
        return Measured(value, value, value, _band_verdict(claim, value, value), label)
    if _same_binary(base, cand):
        # Identical bytes started the same way: any difference in their samples is noise.
        value = 1.0 if claim.scale == "ratio" else 0.0
        return Measured(value, value, value, _band_verdict(claim, value, value), label,
                        f"{analysis.SAME_BINARY} as {base['variant_key']}: no timing difference")
    mine = samples.get((cand["run_id"], cand["variant_key"]), {})
    theirs = samples.get((base["run_id"], base["variant_key"]), {}) if base else {}
    found = _estimate(claim, theirs.get(metric.sample, []), mine.get(metric.sample, []))
    if isinstance(found, str):
        return f"{found} of {metric.sample}"
    value, lo, hi = found
    verdict, note = _band_verdict(claim, lo, hi), ""
    rows = [r for r in (base, cand) if r is not None]
    if analysis.is_inconclusive(verdict):
        pass
    elif metric.timing and _unresolved(rows, theirs.get(metric.sample, []), mine.get(metric.sample, [])):
        verdict = analysis.PRECISION_NOT_REACHED
    elif (metric.wall and base is not None and base.get("base") != cand.get("base")
          and "none" not in (base.get("base"), cand.get("base")) and any(r["_vfs"] for r in rows)):
        verdict = analysis.VFS_STORAGE
    elif metric.wall and any(r["_busy"] for r in rows):
        verdict, note = _busy_verdict(claim, verdict, theirs, mine)
    return Measured(value, lo, hi, verdict, label, note)


def _unresolved(rows: list[dict], base_samples, cand_samples) -> bool:
    """A timing short of its stated precision decides nothing, unless the change is beyond what
    the precision it reached resolves (analysis.precision_of, as analysis.guard_timing)."""
    reached, resolution = analysis.precision_of(*({"precision_reached": r["_precision_reached"],
                                                   "startup_precision": r.get("startup_precision")} for r in rows))
    if reached:
        return False
    base, cand = np.asarray(base_samples, dtype=float), np.asarray(cand_samples, dtype=float)
    if resolution is None or not base.size or not cand.size or np.median(base) == 0:
        return True
    return abs(float(np.median(cand) / np.median(base)) - 1) <= resolution


def _pairs(claim: Claim, rows: pl.DataFrame) -> list[tuple[dict | None, dict]]:
    """(baseline, candidate) row pairs of ``rows`` (ok rows in the claim's scope and conditions)."""
    if not claim.compares:
        return [(None, r) for r in rows.iter_rows(named=True)]
    differ = [k for k, _ in claim.baseline]
    keys = ["run_id", *[c for c in COLUMNS if c not in differ and c in rows.columns]]
    base = _selected(rows, claim.baseline)
    # One machine's timings are not another's (Dask workers measure what they built): a timed
    # pair is of one host (analysis.same_host: equal fingerprints, or none recorded on either).
    timed = claim.metric.kind == "timed"
    out = []
    for cand in _selected(rows, claim.candidate).iter_rows(named=True):
        host = [pl.col("host_fingerprint").eq_missing(pl.lit(cand["host_fingerprint"], pl.String))
                ] if timed else []
        match = base.filter(*[pl.col(k).eq_missing(cand[k]) for k in keys], *host)
        if match.height:
            out.append((match.row(0, named=True), cand))
    return out


def _installed(toolchain: str) -> bool | None:
    try:
        from .toolchains import get

        return get(toolchain).detect() is not None
    except Exception:  # noqa: BLE001 - a reason to show, never a failure of the check
        return None


def _condition_misses(claim: Claim, rows: pl.DataFrame) -> str:
    """Which of the claim's conditions left out ``rows``, and what those rows are instead."""
    wanted = dict(claim.conditions)
    if claim.metric.kind == "timed":
        wanted.setdefault("emulated", False)
    out = []
    for key, value in wanted.items():
        missed = rows.filter(pl.col(f"_{key}").eq_missing(pl.lit(value)).not_())
        if missed.height:
            first = missed.row(0, named=True)
            found = first[f"_{key}"]
            what = {"cgo": ("CGO_ENABLED=1", "CGO_ENABLED=0", "cgo unknown (no build info)"),
                    "cross_build": ("a cross build", "a native build", "built where, unknown"),
                    "emulated": ("run under QEMU", "run natively", "never run")}[key]
            what = what[0] if found else what[1] if found is False else what[2]
            out.append(f"{key}={str(value).lower()} left out {missed.height} "
                       f"(e.g. {first['variant_key']}: {what})")
    return "; ".join(out)


def _absent(claim: Claim, df: pl.DataFrame) -> tuple[str, str] | None:
    """Why no line of the claim can be measured in ``df`` at all (no results, or an axis value it
    names is in no row: what to add to the spec), or None."""
    missing = [c for c in ("status", "run_id", *claim.metric.needs()) if c not in df.columns]
    if df.is_empty() or missing:
        return "no results", ("no results" if df.is_empty() else f"these results have no {missing[0]} column")
    reasons = []
    for column, values in (*claim.where, *claim.baseline, *claim.candidate):
        if set(values) & set(df[column].drop_nulls()):
            continue
        named = " or ".join(repr(v) for v in values)
        add = f"add {named} to the spec's {BY_COLUMN[column].key}"
        reason = f"no {column}={'|'.join(values)} rows in this run: {add}"
        absent = [v for v in values if column == "toolchain" and v != "go" and _installed(v) is False]
        if absent and len(absent) == len(values):
            reason = f"{named} is not installed here (see `slimlab doctor`): install it, then {add}"
        reasons.append(reason)
    if reasons:
        short = "not installed" if any("not installed" in r for r in reasons) else "not in the spec"
        return short, "; ".join(dict.fromkeys(reasons))
    return None


def _why_not(claim: Claim, df: pl.DataFrame, scoped: pl.DataFrame) -> tuple[str, str]:
    """Why a line has no measured pair: (a few words for its verdict, the full reason: what to add
    to the spec, what failed, which condition left the rows out). ``df``: every row given;
    ``scoped``: the line's rows (its workload and target, within the claim's where)."""
    absent = _absent(claim, df)
    if absent:
        return absent
    sides = [("baseline ", claim.baseline), ("candidate ", claim.candidate)] if claim.compares else [("", ())]
    for name, side in sides:
        rows = _selected(scoped, side)
        if rows.is_empty():
            wanted = ", ".join(f"{k}={'|'.join(v)}" for k, v in (*claim.where, *side))
            return "not in the spec", f"no {name}row has {wanted} together (the spec's excludes?)"
        ok = rows.filter(pl.col("status") == "ok")
        if ok.is_empty():
            first = rows.row(0, named=True)
            return "rows failed", (f"every {name}row failed: {first['status']}: "
                                   f"{first.get('reason') or 'no reason given'}")
        kept = _conditioned(claim, ok)
        if kept.is_empty():
            if claim.metric.kind == "timed" and ok["_emulated"].fill_null(False).all():
                return "emulated only", (f"every ok {name}row ran under QEMU: its timings are the "
                                         "emulator's, not the program's")
            return "outside its conditions", (f"no ok {name}row meets the conditions: "
                                              f"{_condition_misses(claim, ok)}")
        if kept.filter(claim.metric.present()).is_empty():
            image = claim.metric.name.startswith("image")
            hint = " (an image is built for a base other than none)" if image else ""
            return "no figure", f"{claim.metric.name} is empty on every ok {name}row{hint}"
    kept = _conditioned(claim, scoped.filter(pl.col("status") == "ok"))
    if claim.metric.kind == "timed" and claim.compares and kept["host_fingerprint"].n_unique() > 1:
        return "another host", ("no candidate row has a baseline row measured on the same host "
                                "(host_fingerprint): one machine's timings are not compared with another's")
    return "no pair", "no candidate row has a baseline row of the same run and other axes"


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


def _measured_text(claim: Claim, m: Measured) -> str:
    if claim.metric.kind == "flag":
        return f"{claim.metric.name} {str(bool(m.value)).lower()}"
    unit = "" if claim.scale == "ratio" else claim.metric.unit
    return _fmt(m.value, claim.scale, unit) + ("" if m.lo == m.hi else f" [{_fmt(m.lo, claim.scale, unit)}, "
                                                                       f"{_fmt(m.hi, claim.scale, unit)}]")


def _pool(values: list[float], scale: str) -> float:
    if scale == "ratio":
        return float(np.exp(np.mean(np.log(values))))
    return float(np.mean(values))


SCHEMA = {"id": pl.String, "claim": pl.String, "workload": pl.String, "target": pl.String, "host": pl.String,
          "group": pl.String, "compared": pl.String, "conditions": pl.String, "metric": pl.String,
          "claimed": pl.String, "measured": pl.Float64, "lo": pl.Float64, "hi": pl.Float64,
          "measured_text": pl.String, "pairs": pl.Int64, "pairs_holding": pl.Int64, "verdict": pl.String,
          "why": pl.String, "source": pl.String, "note": pl.String}


def _line(claim: Claim, scope: dict, measured: list[Measured], why: tuple[str, str] | None,
          notes: list[str]) -> dict:
    """One (claim, workload, target[, host, group]) line of the claims frame."""
    out = {"id": claim.id, "claim": claim.claim, **scope, "compared": claim.compared(),
           "conditions": claim.conditions_text(), "metric": claim.metric.name, "claimed": claim.claimed,
           "measured": None, "lo": None, "hi": None, "measured_text": "", "pairs": len(measured),
           "pairs_holding": None, "verdict": "", "why": "", "source": claim.source, "note": claim.note}
    extra = "".join(f"; {n}" for n in dict.fromkeys(notes))
    if not measured:
        short, long = why or ("no pair", "no pair")
        return {**out, "verdict": not_measured(short), "why": long + extra}
    verdicts = list(dict.fromkeys(m.verdict for m in measured))
    verdict = verdicts[0] if len(verdicts) == 1 else PAIRS_DISAGREE
    if len(measured) == 1:
        value, lo, hi = measured[0].value, measured[0].lo, measured[0].hi
        text = _measured_text(claim, measured[0])
    else:  # several runs, or several chains the claim names: each shown, the line's figure pooled
        value = _pool([m.value for m in measured], claim.scale) if claim.metric.kind != "flag" else None
        lo, hi = min(m.lo for m in measured), max(m.hi for m in measured)
        text = "; ".join(f"{m.label}: {_measured_text(claim, m)}"
                         + (f" ({m.verdict})" if len(verdicts) > 1 else "") for m in measured)
    flag = claim.metric.kind == "flag"
    why = {HOLDS: f"as claimed ({claim.claimed})" if flag else f"within the claim ({claim.claimed})",
           LARGER: f"beyond the claim ({claim.claimed}) in its direction",
           SMALLER: f"short of the claim ({claim.claimed})",
           OPPOSITE: f"the claim is {claim.claimed}" if flag else
                     f"the other way from the claim ({claim.claimed})",
           STRADDLES: f"the interval straddles an end of the claim ({claim.claimed}): more repeats would "
                      "tell",
           analysis.HOST_BUSY: "the host was busy while measuring and CPU time does not give the same "
                               "verdict",
           analysis.PRECISION_NOT_REACHED: "a side's start-up timings did not reach the spec's precision",
           analysis.VFS_STORAGE: "container start-up on a vfs engine grows with the base's files: not what "
                                 "overlay2 gives",
           PAIRS_DISAGREE: f"its {len(measured)} pairs give different verdicts against the claim "
                           f"({claim.claimed})"}.get(verdict, "")
    notes = [m.note for m in measured if m.note] + notes
    return {**out, "measured": value, "lo": lo, "hi": hi, "measured_text": text,
            "pairs_holding": sum(m.verdict == HOLDS for m in measured), "verdict": verdict,
            "why": why + "".join(f"; {n}" for n in dict.fromkeys(notes))}


def _label(claim: Claim, cand: dict, varying: Sequence[str]) -> str:
    chosen = dict(claim.candidate)
    axes = [*(k for k, v in chosen.items() if len(v) > 1), *(k for k in varying if k not in chosen)]
    return ", ".join(f"{k}={cand[k]}" for k in dict.fromkeys(axes)) or cand["variant_key"]


def check_claims(df: pl.DataFrame, samples: pl.DataFrame | None,
                 claims: str | Path | Sequence[Mapping] | Sequence[Claim] | None = None,
                 by: str | None = None, manifests: Sequence[Mapping] | None = None) -> pl.DataFrame:
    """One row per (claim, workload, target), and per host for timed claims (and per value of the
    ``by`` axis, e.g. ``by="profile"``): the claim, the measured value (``measured``, ``lo``,
    ``hi``; a ratio, a difference in the metric's unit, or a value), ``measured_text`` as a reader
    sees it, how many pairs it rests on and how many of them hold, the ``verdict`` (one of
    VERDICTS, with a reason in brackets for inconclusive and not measured here) and ``why``.

    ``df``: a results frame (slimlab.results.load); ``samples``: its raw samples
    (slimlab.results.load_samples), needed for the timed metrics; ``claims``: a claims file, a
    list of claim tables or Claims, or None for the research brief's; ``manifests``: the runs'
    manifests (slimlab.results.load_manifests), for the busy-host rule, the engine's storage
    driver and the hosts' CPUs (cross builds)."""
    if isinstance(claims, (list, tuple)) and claims and all(isinstance(c, Claim) for c in claims):
        claim_list = list(claims)
    else:
        claim_list = load_claims(claims)
    if by is not None and by not in COLUMNS:
        raise unknown("by axis", by, COLUMNS)
    split = [*LINE_KEYS, *([by] if by and by not in LINE_KEYS else [])]
    by_sample: dict[tuple[str, str], dict[str, list[float]]] = {}
    if samples is not None and not samples.is_empty():
        for key, group in samples.group_by(["run_id", "variant_key"]):
            by_sample[key] = {m.sample: group[m.sample].drop_nulls().to_list()
                              for m in METRICS.values() if m.sample and m.sample in group.columns}
    described = _described(df, manifests) if not df.is_empty() and "status" in df.columns else df
    out = []
    for claim in claim_list:
        absent = _absent(claim, described)
        if absent:  # one line for the run: no workload or target of it has what the claim is about
            out.append(_line(claim, _scope(None, split, by), [], absent, []))
            continue
        scoped = _selected(described, claim.where)
        if scoped.is_empty():
            out.append(_line(claim, _scope(None, split, by), [], _why_not(claim, described, scoped), []))
            continue
        for _, line_rows in sorted(scoped.group_by(split, maintain_order=True),
                                   key=lambda kv: tuple(str(v) for v in kv[0])):
            out += _lines(claim, described, line_rows, split, by, samples is not None, by_sample)
    return pl.DataFrame(out, schema=SCHEMA)


def _scope(row: dict | None, split: Sequence[str], by: str | None, host: str | None = None) -> dict:
    return {"workload": row and row["workload"], "target": row and row["target"], "host": host,
            "group": row[by] if row and by and by not in LINE_KEYS else None}


def _lines(claim: Claim, df: pl.DataFrame, rows: pl.DataFrame, split: Sequence[str], by: str | None,
           have_samples: bool, by_sample: Mapping) -> list[dict]:
    """The lines of one (workload, target[, by]) scope: one per host that timed pairs, for a
    timed claim; else one."""
    first = rows.row(0, named=True)
    kept = _conditioned(claim, rows.filter(pl.col("status") == "ok", claim.metric.present()))
    pairs = _pairs(claim, kept)
    if not pairs:
        return [_line(claim, _scope(first, split, by), [], _why_not(claim, df, rows), [])]
    if claim.metric.kind == "timed" and not have_samples:
        return [_line(claim, _scope(first, split, by), [], ("no samples", "no samples given: timed metrics "
                                                            "are compared on the raw samples "
                                                            "(slimlab.results.load_samples)"), [])]
    failed = _selected(rows, claim.candidate if claim.compares else ()).filter(pl.col("status") != "ok")
    failures = [f"{r['variant_key']}: {r['status']}: {r.get('reason') or 'no reason given'}"
                for r in failed.iter_rows(named=True)]
    hosts: dict[str | None, list] = {}
    for base, cand in pairs:
        hosts.setdefault(cand.get("host_fingerprint") if claim.metric.kind == "timed" else None, []).append(
            (base, cand))
    lines = []
    for fingerprint, members in hosts.items():
        cands = [c for _, c in members]
        varying = [k for k in ("run_id", *COLUMNS) if len({c.get(k) for c in cands}) > 1]
        measured, notes = [], []
        for base, cand in members:
            found = _measure_pair(claim, base, cand, _label(claim, cand, varying), by_sample)
            if isinstance(found, str):
                notes.append(f"{cand['variant_key']}: {found}")
            else:
                measured.append(found)
        host = (cands[0].get("host") or fingerprint) if len(hosts) > 1 else None
        why = ("no usable samples", "; ".join(notes)) if not measured else None
        lines.append(_line(claim, _scope(first, split, by, host), measured, why,
                           (notes if measured else []) + failures))
    return lines


# -- showing -------------------------------------------------------------------------------

TABLE_COLUMNS = ("claim", "workload", "target", "host", "group", "compared", "claimed", "measured_text",
                 "verdict", "why")
COLOURS = {HOLDS: "#176b2c", LARGER: "#b00020", SMALLER: "#b00020", OPPOSITE: "#b00020",
           INCONCLUSIVE: "#8a5a00", NOT_MEASURED: "#777"}


def claims_html(table: pl.DataFrame) -> str:
    """The claims table as an HTML table; every cell escaped (workload names are user input)."""
    optional = ("host", "group")
    columns = [c for c in TABLE_COLUMNS
               if c in table.columns and not (c in optional and table[c].is_null().all())]
    # Inline alignment: Jupyter's own table rules (cells right-aligned) outrank a class selector.
    cell = 'style="text-align:left;vertical-align:top;padding:2px 6px"'
    head = "".join(f"<th {cell}>{html.escape(c.replace('_text', ''))}</th>" for c in columns)

    def colour(column: str, value) -> str:
        found = COLOURS.get(verdict_kind(value)) if column == "verdict" and value else None
        return f";color:{found}" if found else ""

    body = "".join(
        "<tr>" + "".join(
            f"<td {cell[:-1]}{colour(c, row[c])}\">"
            f"{html.escape('' if row[c] is None else str(row[c]))}</td>" for c in columns) + "</tr>"
        for row in table.iter_rows(named=True))
    return f'<table class="claims"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def claims_text(table: pl.DataFrame) -> str:
    """The claims table for a terminal: each claim's words, what it compares and claims, then
    one line per workload and target (and host, and group) with the measured value, the verdict
    and why."""
    blocks = []
    for (claim_id,), lines in table.group_by("id", maintain_order=True):
        first = lines.row(0, named=True)
        head = [f"{claim_id}: {first['claim']}",
                f"  {first['metric']}, {first['compared'] or 'every row'}"
                + (f"; conditions: {first['conditions']}" if first["conditions"] else "")
                + f"; claimed: {first['claimed']}"]
        rows = [[shown(cell) for cell in (  # escaped: a row's reason may come from another's results file
                 " / ".join(str(r[k]) for k in ("workload", "target", "host", "group") if r[k] is not None)
                 or "(this run)", r["measured_text"] or "-", r["verdict"], r["why"])]
                for r in lines.iter_rows(named=True)]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        head += ["  " + "  ".join(cell.ljust(width) for cell, width in zip(r[:3], widths)) + "  " + r[3]
                 for r in rows]
        blocks.append("\n".join(head))
    return "\n\n".join(blocks)


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


def check_path(run_path: str | Path | None, claims: Sequence[Claim], by: str | None = None) -> pl.DataFrame:
    """check_claims on a run (or data) directory: its results, samples and manifests."""
    from .results import load, load_manifests, load_samples

    return check_claims(load(run_path), load_samples(run_path), claims, by=by,
                        manifests=load_manifests(run_path))


def display_claims(run_path: str | Path | None = None, claims_file: str | Path | None = None,
                   by: str | None = None) -> pl.DataFrame:
    """For notebooks/claims.ipynb: check the brief's claims, and the user's in ``claims_file``
    after them, on a run (or data) directory; show the table (a line per claim, workload and
    target, and ``by`` value) and return it."""
    from IPython.display import HTML, display

    table = check_path(run_path, brief_and(claims_file), by=by)
    display(HTML(f"<h2>Claims checked on {html.escape(str(run_path))}</h2>" + claims_html(table)))
    return table
