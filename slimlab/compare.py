"""``slimlab compare``: two runs, or two variants of one run, side by side in the terminal.

Like ``benchstat`` or ``asv compare``: per variant and metric, A's median with its 95%
bootstrap interval, B's, the ratio B/A with its interval, the Mann–Whitney p-value and the
verdict of :mod:`slimlab.analysis` (the rules the report uses). A regression is a verdict
of larger, slower or higher with a ratio beyond ``factor``, or a variant that worked in A
and fails in B; the command exits 1 when there is one, so CI can gate on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from . import analysis
from .analysis import FACTOR, METRICS, REGRESSIONS, Comparison, Estimate
from .environment import host_label
from .errors import SlimlabError, unknown
from .results import MANIFEST, load, load_samples, manifest_hosts


@dataclass(frozen=True)
class Line:
    """One metric of one variant: A's and B's figures and B against A."""

    key: str  # the variant key (A's, for two variants of one run: "KEY1 -> KEY2")
    metric: str
    a: Estimate | None
    b: Estimate | None
    comparison: Comparison | None  # None: a status line (a variant that broke or recovered)
    regressed: bool
    note: str = ""


@dataclass
class Outcome:
    a_name: str
    b_name: str
    factor: float
    lines: list[Line] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Line]:
        return [line for line in self.lines if line.regressed]


def _run_dir(path: str | Path) -> Path:
    """``path`` if it is one run's directory; SlimlabError saying what it is otherwise."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return path
    if not path.exists():
        raise SlimlabError(f"{path} does not exist: give a run directory (DATA/runs/<run-id>)")
    runs = sorted(p.name for p in (path / "runs").iterdir() if (p / MANIFEST).is_file()) \
        if (path / "runs").is_dir() else []
    if runs:
        raise SlimlabError(f"{path} is a data directory, not a run: compare two of its runs, e.g. "
                           f"{path / 'runs' / runs[-1]} (its runs: {', '.join(runs)})")
    raise SlimlabError(f"{path} is not a run directory (no {MANIFEST}): give DATA/runs/<run-id>")


def _estimate(metric: analysis.Metric, row: dict, samples: dict | None) -> Estimate | None:
    if metric.sample is None:
        value = row.get(metric.column)
        return None if value is None else Estimate(float(value), float(value), float(value), 1)
    values = (samples or {}).get(metric.sample)
    return None if values is None else analysis.median_ci(values, n_resamples=analysis.SHOWN_RESAMPLES)


def _compare(outcome: Outcome, key: str, row_a: dict, row_b: dict, samples_a: dict | None,
             samples_b: dict | None, metrics: list[str]) -> None:
    ok_a, ok_b = row_a["status"] == "ok", row_b["status"] == "ok"
    if not (ok_a and ok_b):
        if ok_a or ok_b:
            status = f"{row_a['status']} -> {row_b['status']}"
            reason = row_b["reason"] if ok_a else row_a["reason"]
            outcome.lines.append(Line(key, "status", None, None, None, regressed=ok_a,
                                      note=f"{status}: {reason or ''}".strip()))
        return
    emulated = (bool(row_a.get("emulated")), bool(row_b.get("emulated")))
    for name in metrics:
        metric = METRICS[name]
        if metric.sample is not None and emulated[0] != emulated[1]:
            outcome.notes.append(f"{key}: {metric.label} not compared: emulated in "
                                 f"{'A' if emulated[0] else 'B'} only")
            continue
        found = analysis.compare_metric(metric, row_a, row_b, samples_a, samples_b, outcome.factor,
                                        analysis.SHOWN_RESAMPLES)
        if found is None:
            continue
        regressed = found.verdict in REGRESSIONS and found.ratio > outcome.factor
        outcome.lines.append(Line(key, name, _estimate(metric, row_a, samples_a), _estimate(metric, row_b, samples_b),
                                  found, regressed))


def _check(metrics, factor: float) -> list[str]:
    if not factor >= 1:
        raise SlimlabError(f"--factor must be at least 1 (a ratio either way), not {factor}: e.g. 1.05")
    metrics = list(metrics or METRICS)
    for name in metrics:
        if name not in METRICS:
            raise unknown("metric", name, METRICS)
    return metrics


def compare_runs(a: str | Path, b: str | Path, factor: float = FACTOR, metrics=None) -> Outcome:
    """Every variant key both runs have, B against A."""
    metrics = _check(metrics, factor)
    dirs = _run_dir(a), _run_dir(b)
    frames = [load(d) for d in dirs]
    samples = [analysis.sample_index(load_samples(d)) for d in dirs]
    keys = [f["variant_key"].to_list() for f in frames]
    common = [k for k in keys[0] if k in set(keys[1])]
    if not common:
        raise SlimlabError(f"no variant is in both runs: {dirs[0]} has {_some(keys[0])}; {dirs[1]} has "
                           f"{_some(keys[1])}. To compare two variants of one run: "
                           "slimlab compare RUN --variants KEY1 KEY2")
    outcome = Outcome(str(dirs[0]), str(dirs[1]), factor)
    rows = [{r["variant_key"]: r for r in f.iter_rows(named=True)} for f in frames]
    for key in common:
        row_a, row_b = rows[0][key], rows[1][key]
        _compare(outcome, key, row_a, row_b, samples[0].get((row_a["run_id"] or "", key)),
                 samples[1].get((row_b["run_id"] or "", key)), metrics)
    for side, mine, theirs in (("A", keys[0], keys[1]), ("B", keys[1], keys[0])):
        only = [k for k in mine if k not in set(theirs)]
        if only:
            outcome.notes.append(f"only in {side} ({len(only)}): {_some(only)}")
    _note_hosts(outcome, [(key, rows[0][key], rows[1][key]) for key in common], dirs)
    return outcome


def compare_variants(run: str | Path, key_a: str, key_b: str, factor: float = FACTOR, metrics=None) -> Outcome:
    """Two variants of one run: ``key_b`` against ``key_a``."""
    metrics = _check(metrics, factor)
    run_dir = _run_dir(run)
    frame = load(run_dir)
    keys = frame["variant_key"].to_list()
    for key in (key_a, key_b):
        if key not in keys:
            raise unknown("variant key", key, keys)
    rows = {r["variant_key"]: r for r in frame.iter_rows(named=True)}
    samples = analysis.sample_index(load_samples(run_dir))
    outcome = Outcome(key_a, key_b, factor)
    row_a, row_b = rows[key_a], rows[key_b]
    _compare(outcome, f"run {run_dir.name}: {', '.join(analysis.changed_axes(row_a, row_b)) or 'same axes'}",
             row_a, row_b, samples.get((row_a["run_id"] or "", key_a)), samples.get((row_b["run_id"] or "", key_b)),
             metrics)
    _note_hosts(outcome, [(f"{key_a} -> {key_b}", row_a, row_b)], [run_dir])  # workers may have measured them
    return outcome


def _some(keys: list[str], shown: int = 4) -> str:
    return ", ".join(keys[:shown]) + (f" and {len(keys) - shown} more" if len(keys) > shown else "") if keys else "none"


def _note_hosts(outcome: Outcome, pairs: list[tuple[str, dict, dict]], dirs) -> None:
    """A note per pair of hosts (by host fingerprint: environment.host_fingerprint) whose rows were
    compared: two runs on different machines, or, within a run, rows Dask workers measured."""
    records = manifest_hosts(json.loads((d / MANIFEST).read_text()) for d in dirs)
    apart: dict[tuple, list[tuple[str, dict, dict]]] = {}
    for key, row_a, row_b in pairs:
        if not analysis.same_host(row_a, row_b):
            apart.setdefault((row_a.get("host_fingerprint"), row_b.get("host_fingerprint")), []).append(
                (key, row_a, row_b))
    for (fp_a, fp_b), found in apart.items():
        keys = [key for key, _, _ in found]
        _, row_a, row_b = found[0]
        label_a = host_label(records.get(fp_a) or {"hostname": row_a.get("host")}, fp_a)
        label_b = host_label(records.get(fp_b) or {"hostname": row_b.get("host")}, fp_b)
        which = "" if len(keys) == len(pairs) else f" for {len(keys)} of {len(pairs)} variants ({_some(keys)})"
        outcome.notes.append(f"measured on different hosts (A: {label_a}, B: {label_b}){which}: timings may differ "
                             "for that reason alone")


# -- the table ------------------------------------------------------------------------------------
def _number(value: float, unit: str) -> str:
    return f"{value:,.2f}" if unit == "ms" else f"{value:,.0f}"


def _figure(estimate: Estimate | None, unit: str) -> str:
    if estimate is None:
        return "-"
    text = f"{_number(estimate.median, unit)} {unit}"
    if estimate.lo != estimate.hi:
        text += f" [{_number(estimate.lo, unit)}, {_number(estimate.hi, unit)}]"
    return text


def _p(value: float | None) -> str:
    if value is None:
        return "exact"
    return "p<0.001" if value < 0.001 else f"p={value:.3f}"


def render(outcome: Outcome) -> str:
    """The table: one block per variant, a line per metric, regressions marked with '!'."""
    header = ("", "metric", "A", "B", "B/A [95% CI]", "p", "verdict")
    table: list[tuple[str, ...]] = []
    current = None
    for line in outcome.lines:
        if line.key != current:
            table.append((line.key,))
            current = line.key
        mark = "!" if line.regressed else ""
        if line.comparison is None:
            table.append((mark, line.metric, "", "", "", "", line.note))
            continue
        unit = METRICS[line.metric].unit
        c = line.comparison
        ratio = f"{c.ratio:.3f}" + (f" [{c.lo:.3f}, {c.hi:.3f}]" if c.lo != c.hi else "")
        table.append((mark, METRICS[line.metric].label, _figure(line.a, unit), _figure(line.b, unit), ratio,
                      _p(c.p_value), c.verdict))
    widths = [max([len(header[i])] + [len(r[i]) for r in table if len(r) > 1]) for i in range(len(header))]
    out = [f"A: {outcome.a_name}", f"B: {outcome.b_name}", "",
           "  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    for row in table:
        out.append(row[0] if len(row) == 1 else "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    out.append("")
    out += [f"note: {n}" for n in outcome.notes]
    rule = (f"a change is slower/larger/higher (or faster/smaller/lower) when Mann-Whitney U gives "
            f"p < {analysis.ALPHA} and the ratio is beyond x{outcome.factor:g}; sizes are exact")
    regressions = outcome.regressions
    verdict = (f"{len(regressions)} regression(s) beyond x{outcome.factor:g}, marked '!'" if regressions
               else f"no regression beyond x{outcome.factor:g}")
    return "\n".join([*out, rule, verdict])


def frame(outcome: Outcome) -> pl.DataFrame:
    """The lines as a frame (for notebooks and tests)."""
    return pl.DataFrame([{
        "key": line.key, "metric": line.metric,
        "a_median": line.a.median if line.a else None, "b_median": line.b.median if line.b else None,
        "ratio": line.comparison.ratio if line.comparison else None,
        "lo": line.comparison.lo if line.comparison else None, "hi": line.comparison.hi if line.comparison else None,
        "p_value": line.comparison.p_value if line.comparison else None,
        "verdict": line.comparison.verdict if line.comparison else line.note, "regressed": line.regressed,
    } for line in outcome.lines], schema={"key": pl.String, "metric": pl.String, "a_median": pl.Float64,
                                          "b_median": pl.Float64, "ratio": pl.Float64, "lo": pl.Float64,
                                          "hi": pl.Float64, "p_value": pl.Float64, "verdict": pl.String,
                                          "regressed": pl.Boolean})
