"""Trends across the runs of a data directory: per workload, variant and metric, the series
of values by run start time, its change points, and what changed between the runs around each.

Detection is ruptures' Pelt with the least-squares cost on the series relative to its median,
and a penalty that scales with the series' own noise:

    penalty = PENALTY_BETA * sigma**2 * ln(n)

sigma is estimated robustly from the first differences (MAD / sqrt(2)), so a step does not
inflate it as it would the plain standard deviation, and it has a floor per metric (sizes are
exact: the floor is the smallest step worth naming; timings: the resolution below which
run-to-run noise is not worth a point). A change point costs two parameters (where and the new
level), so BIC with a known variance would give beta = 2; with sigma estimated from 11 differences
and every position scanned, beta = 2 flags 26-30% of flat 12-run series of Gaussian noise. Measured
with this module's detect() (1,000-2,000 flat 12-run series, noise 2-10%): beta 6 -> about 5% of
them get a false change point, 8 -> 3.2-4.1%, 10 -> 2%; a step of 5 sigma at run 8 of 12 is found
at exactly that run 79-89% of the time at beta 8 (tests/test_trends.py keeps both rates). 8 is the
default. asv's step detection is the same idea (a penalised piecewise-constant fit whose penalty
comes from a noise estimate); ruptures is the maintained library for it.
Exact metrics may change at the last run alone (a size is known from one build); timings need
two runs after a step before it counts.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl

from .errors import SlimlabError, did_you_mean
from .results import load, load_manifests

METRICS = ("size_bytes", "startup_ms_median", "peak_rss_kib_median", "image_size_bytes")
# The smallest relative noise assumed per metric (see the module's docstring).
NOISE_FLOOR = {"size_bytes": 0.001, "image_size_bytes": 0.001}
DEFAULT_NOISE_FLOOR = 0.005
EXACT_METRICS = frozenset(NOISE_FLOOR)
PENALTY_BETA = 8.0
HOST_FIELDS = ("hostname", "cpu_model", "kernel", "cores")
# Compared from the rows themselves, by kind of cause: a variant's own compiler (not every
# toolchain the run had), its build command (a profile redefined), its image base's packages.
ROW_FIELDS = {
    "go": ("toolchain_version", "go_version"),
    "build": ("flags", "build_env"),
    "base": ("base_packages",),
}
ROW_TYPES = {"toolchain_version": pl.String, "go_version": pl.String, "flags": pl.List(pl.String),
             "build_env": pl.List(pl.String), "base_packages": pl.List(pl.String)}

RUN_SCHEMA = {
    "run_id": pl.String,
    "started_at": pl.Datetime("us", "UTC"),
    **{f: pl.String for f in HOST_FIELDS},
    "tools": pl.List(pl.String),
}
CHANGE_SCHEMA = {
    "workload": pl.String,
    "variant_key": pl.String,
    "metric": pl.String,
    "run_before": pl.String,
    "run_after": pl.String,
    "started_at_after": pl.Datetime("us", "UTC"),
    "value_before": pl.Float64,
    "value_after": pl.Float64,
    "relative_change": pl.Float64,
    "attributed_to": pl.List(pl.String),
    "causes": pl.List(pl.String),
}


class Trends(NamedTuple):
    series: pl.DataFrame  # workload, variant_key, metric, run_id, started_at, value, and ROW_TYPES' columns
    change_points: pl.DataFrame  # CHANGE_SCHEMA
    runs: pl.DataFrame  # RUN_SCHEMA: what each run was measured with


def run_contexts(manifests: list[dict]) -> pl.DataFrame:
    """One row per run: its start and what it ran with (host fingerprint, tool versions).

    The manifest's top-level host and tools are the first session's; a resumed run keeps
    later sessions' in ``sessions``, and those are not compared here."""
    rows = []
    for m in manifests:
        host = m.get("host") or {}
        tools = m.get("tools") or {}
        rows.append({
            "run_id": m.get("run_id"),
            "started_at": m.get("started_at"),
            **{f: None if host.get(f) is None else str(host[f]) for f in HOST_FIELDS},
            # toolchain:* entries are every compiler the run found; a variant's own is in its row
            "tools": sorted(f"{k}={v}" for k, v in tools.items() if not k.startswith("toolchain:")),
        })
    frame = pl.DataFrame(rows, schema={**RUN_SCHEMA, "started_at": pl.String})
    return frame.with_columns(pl.col("started_at").str.to_datetime(time_zone="UTC", time_unit="us")).sort("started_at")


def _check_metrics(metrics) -> tuple[str, ...]:
    """``metrics`` as a tuple: one name, several, or None (or "all") for every metric."""
    metrics = METRICS if metrics in (None, "all") else (metrics,) if isinstance(metrics, str) else tuple(metrics)
    for metric in metrics:
        if metric not in METRICS:
            raise SlimlabError(f"unknown trend metric {metric!r}{did_you_mean(metric, METRICS)}; "
                               f"valid: {', '.join(METRICS)}")
    return metrics


def series(results: pl.DataFrame, runs: pl.DataFrame, metrics=METRICS) -> pl.DataFrame:
    """Per workload, variant and metric, the value of every run that measured it (status ok),
    ordered by run start time."""
    metrics = _check_metrics(metrics)
    present = [m for m in metrics if m in results.columns]
    ok = results.filter(pl.col("status") == "ok")
    columns = ["workload", "variant_key", "run_id", *[c for c in ROW_TYPES if c in ok.columns]]
    long = (ok.select(*columns, *[pl.col(m).cast(pl.Float64) for m in present])
            .unpivot(index=columns, on=present, variable_name="metric", value_name="value")
            .drop_nulls("value"))
    long = long.with_columns(pl.lit(None, dtype).alias(c) for c, dtype in ROW_TYPES.items() if c not in long.columns)
    return (long.join(runs.select("run_id", "started_at"), on="run_id", how="left")
            .select("workload", "variant_key", "metric", "run_id", "started_at", "value", *ROW_TYPES)
            .sort("workload", "variant_key", "metric", "started_at", "run_id"))


def detect(values, metric: str, beta: float = PENALTY_BETA) -> list[int]:
    """Indexes where a new level starts (each > 0) in ``values``, a series in run order."""
    import ruptures

    y = np.asarray(values, dtype=float)
    exact = metric in EXACT_METRICS
    min_size = 1 if exact else 2
    if len(y) < 2 * min_size + (0 if exact else 1):
        return []
    scale = np.median(np.abs(y)) or 1.0
    rel = y / scale
    diffs = np.diff(rel)
    sigma = 1.4826 * np.median(np.abs(diffs - np.median(diffs))) / np.sqrt(2)
    sigma = max(sigma, NOISE_FLOOR.get(metric, DEFAULT_NOISE_FLOOR))
    penalty = beta * sigma**2 * np.log(len(y))
    breaks = ruptures.Pelt(model="l2", min_size=min_size, jump=1).fit(rel.reshape(-1, 1)).predict(pen=penalty)
    return [int(b) for b in breaks[:-1]]  # the last break is always the series' end


def _diff(label: str, before, after) -> str | None:
    if before == after:
        return None
    if isinstance(before, list) and isinstance(after, list):  # name what went and what came
        gone = [x for x in before if x not in after]
        came = [x for x in after if x not in before]
        return f"{label}: " + ", ".join([*(f"−{x}" for x in gone), *(f"+{x}" for x in came)] or ["reordered"])
    return f"{label}: {before} → {after}"


def _causes(before: dict, after: dict, run_before: dict, run_after: dict) -> tuple[list[str], list[str]]:
    """(kinds, descriptions) of what differs between two neighbouring points of a series: kinds
    "go", "build", "base" (from the rows), "tools", "host" (from the runs' manifests)."""
    kinds, causes = [], []
    for kind, fields in ROW_FIELDS.items():
        found = [d for f in fields if (d := _diff(f, before.get(f), after.get(f)))]
        if found:
            kinds.append(kind)
            causes += found
    tools_before = dict(t.split("=", 1) for t in run_before.get("tools") or [])
    tools_after = dict(t.split("=", 1) for t in run_after.get("tools") or [])
    tools = [d for name in sorted(tools_before.keys() | tools_after.keys())
             if (d := _diff(f"tool {name}", tools_before.get(name, "absent"), tools_after.get(name, "absent")))]
    if tools:
        kinds.append("tools")
        causes += tools
    host = [d for f in HOST_FIELDS if (d := _diff(f"host {f}", run_before.get(f), run_after.get(f)))]
    if host:
        kinds.append("host")
        causes += host
    if not causes:
        causes.append("nothing slimlab records changed (noise, or a change it does not record)")
    return kinds, causes


def change_points(series_frame: pl.DataFrame, runs: pl.DataFrame, beta: float = PENALTY_BETA) -> pl.DataFrame:
    """Each change point of each series (CHANGE_SCHEMA): the runs either side, the median level
    of the segment before and after, the relative change, and what changed between the two runs."""
    by_run = {r["run_id"]: r for r in runs.iter_rows(named=True)}
    found = []
    for (workload, key, metric), group in series_frame.group_by(
            ["workload", "variant_key", "metric"], maintain_order=True):
        points = group.sort("started_at", "run_id").to_dicts()
        values = [p["value"] for p in points]
        breaks = detect(values, metric, beta)
        edges = [0, *breaks, len(values)]
        for i, start in enumerate(breaks):
            before_level = float(np.median(values[edges[i]:start]))
            after_level = float(np.median(values[start:edges[i + 2]]))
            before, after = points[start - 1], points[start]
            kinds, causes = _causes(before, after, by_run.get(before["run_id"], {}), by_run.get(after["run_id"], {}))
            found.append({
                "workload": workload, "variant_key": key, "metric": metric,
                "run_before": before["run_id"], "run_after": after["run_id"], "started_at_after": after["started_at"],
                "value_before": before_level, "value_after": after_level,
                "relative_change": after_level / before_level - 1 if before_level else None,
                "attributed_to": kinds, "causes": causes,
            })
    return pl.DataFrame(found, schema=CHANGE_SCHEMA)


def trends(path=None, metrics=METRICS, beta: float = PENALTY_BETA) -> Trends:
    """The series and change points of every run in the data directory ``path``; ``metrics``:
    one of METRICS, several, or None for all."""
    metrics = _check_metrics(metrics)
    results = load(path)
    runs = run_contexts(load_manifests(path))
    if "measured_at" in results.columns:  # a manifest without a start: its first finished row
        first = results.group_by("run_id").agg(pl.col("measured_at").min().alias("first_row"))
        runs = (runs.join(first, on="run_id", how="left")
                .with_columns(pl.col("started_at").fill_null(pl.col("first_row"))).drop("first_row")
                .sort("started_at"))
    frame = series(results, runs, metrics)
    return Trends(frame, change_points(frame, runs, beta), runs)
