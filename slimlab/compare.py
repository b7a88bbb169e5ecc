"""``slimlab compare``: two runs, or two variants of one run, side by side (text, Markdown or JSON).

Like ``benchstat`` or ``asv compare``: per variant and metric, A's median with its 95%
bootstrap interval, B's, the ratio B/A with its interval, the Mann–Whitney p-value and the
verdict of :mod:`slimlab.analysis` (the rules the report uses). A regression is a verdict
of larger, slower or higher with a ratio beyond ``factor``, or a variant that worked in A
and fails in B; the command exits 1 when there is one, so CI can gate on it.

A timing verdict that noise could explain is not a regression: the same shipped bytes on
both sides are "same binary" (an A/A pair), a row whose timings did not reach the stated
precision is "inconclusive (precision not reached)", and on a busy host (either run's
busy-host warning) a start-up verdict stands only when CPU time moved the same way, else
"inconclusive (host busy)" (``analysis.guard_timing``). Each run's noise heads the output.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from . import analysis
from .analysis import FACTOR, METRICS, REGRESSIONS, Comparison, Estimate
from .environment import host_label
from .errors import SlimlabError, shown, unknown
from .results import MANIFEST, load, load_samples, manifest_hosts

FORMATS = ("text", "markdown", "json")
JSON_VERSION = 1  # bump when a key of render_json's object is renamed, removed or changes meaning
# What makes two rows' shipped bytes one thing: the binary, run the same way; for an image,
# the image too where both rows recorded it (its tag names what decides its content).


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
    same_binary: bool = False  # both sides shipped the same bytes (same_binary)


@dataclass(frozen=True)
class Noise:
    """How quiet one side's measurement was: the host while measuring (per measuring session,
    and per Dask worker that measured for it), its busy-host warnings and the precision its
    compared rows reached (``precision_reached`` per row; a row without it: unknown)."""

    name: str
    hosts: list[dict] = field(default_factory=list)  # {"where", "load_before", "load_after", "cores", ...}
    warnings: list[str] = field(default_factory=list)
    precision_reached: int = 0
    precision_not_reached: int = 0
    precision_unknown: int = 0
    precision_targets: list[float] = field(default_factory=list)

    @property
    def busy(self) -> bool:
        return bool(self.warnings)


@dataclass
class Outcome:
    a_name: str
    b_name: str
    factor: float
    lines: list[Line] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    noise: list[Noise] = field(default_factory=list)  # A's and B's (one run's twice for --variants)

    @property
    def regressions(self) -> list[Line]:
        return [line for line in self.lines if line.regressed]

    @property
    def inconclusive(self) -> list[Line]:
        """Timing lines whose verdict noise could explain (same binary included): never regressions."""
        return [line for line in self.lines if line.comparison is not None and (
            line.same_binary or analysis.is_inconclusive(line.comparison.verdict))]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0


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


def _manifest(run_dir: Path) -> dict:
    try:
        found = json.loads((run_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


same_binary = analysis.same_binary


def _timed(row: dict) -> bool:
    return row.get("status") == "ok" and row.get("startup_ms_median") is not None


def run_noise(name: str, manifest: dict, rows: list[dict]) -> Noise:
    """``name``'s Noise: its manifest's measuring sessions (``measurement``: noise, warnings) and the
    hosts that measured for it (a session's ``hosts``), and the precision ``rows`` reached."""
    sessions = [s for s in manifest.get("sessions") or [] if isinstance(s, dict)]
    measured = [("this host", s["measurement"]) for s in sessions if isinstance(s.get("measurement"), dict)]
    measured += [(host.get("hostname") or "a worker", host) for s in sessions for host in s.get("hosts") or []
                 if isinstance(host, dict)]
    hosts, warnings = [], []
    for where, record in measured:
        noise = record.get("noise") if isinstance(record.get("noise"), dict) else {}
        if noise:
            hosts.append({"where": where, "load_before": _first(noise.get("loadavg_before")),
                          "load_after": _first(noise.get("loadavg_after")), "cores": noise.get("cores"),
                          "busy_pct": noise.get("busy_pct"),
                          "cpu_pressure_pct": noise.get("cpu_pressure_pct"),
                          "steal_pct": noise.get("steal_pct")})
        warnings += [str(w) for w in record.get("warnings") or []]
    reached = [row.get("precision_reached") for row in rows if _timed(row)]
    targets = sorted({float(row["precision_target"]) for row in rows
                      if _timed(row) and row.get("precision_target") is not None})
    return Noise(name, hosts, list(dict.fromkeys(warnings)),
                 precision_reached=sum(r is True for r in reached),
                 precision_not_reached=sum(r is False for r in reached),
                 precision_unknown=sum(r is None for r in reached), precision_targets=targets)


def _first(values) -> float | None:
    return float(values[0]) if isinstance(values, (list, tuple)) and values else None


def _estimate(metric: analysis.Metric, row: dict, samples: dict | None) -> Estimate | None:
    if metric.sample is None:
        value = row.get(metric.column)
        return None if value is None else Estimate(float(value), float(value), float(value), 1)
    values = (samples or {}).get(metric.sample)
    return None if values is None else analysis.median_ci(values, n_resamples=analysis.SHOWN_RESAMPLES)


def _guarded(name: str, found: Comparison, cpu: Comparison | None, *, same: bool, busy: bool,
             precision_reached: bool, resolution: float | None = None) -> Comparison:
    """``found`` (metric ``name``) with analysis.guard_timing's honesty: any timed figure of the same
    bytes is SAME_BINARY; a start-up or CPU verdict of a row short of its precision is
    PRECISION_NOT_REACHED; start-up on a busy host needs CPU time to agree (CPU time is the referee
    there, so it is not held to that itself). Sizes are exact and peak RSS the kernel's count."""
    if METRICS[name].sample is None:
        return found
    if same:
        return analysis.guard_timing(found, same_binary=True)
    if name == "startup":
        return analysis.guard_timing(found, cpu=cpu, busy=busy, precision_reached=precision_reached,
                                     resolution=resolution)
    if name == "cpu":
        return analysis.guard_timing(found, precision_reached=precision_reached, resolution=resolution)
    return found


def _compare(outcome: Outcome, key: str, row_a: dict, row_b: dict, samples_a: dict | None,
             samples_b: dict | None, metrics: list[str], busy: bool) -> None:
    ok_a, ok_b = row_a["status"] == "ok", row_b["status"] == "ok"
    if not (ok_a and ok_b):
        if ok_a or ok_b:
            status = f"{row_a['status']} -> {row_b['status']}"
            reason = row_b["reason"] if ok_a else row_a["reason"]
            outcome.lines.append(Line(key, "status", None, None, None, regressed=ok_a,
                                      note=f"{status}: {reason or ''}".strip()))
        return
    emulated = (bool(row_a.get("emulated")), bool(row_b.get("emulated")))
    same = same_binary(row_a, row_b)
    # a row that does not say (written before the column): unknown, so not held against it
    precision_reached, resolution = analysis.precision_of(row_a, row_b)

    def compared(name: str) -> Comparison | None:
        return analysis.compare_metric(METRICS[name], row_a, row_b, samples_a, samples_b, outcome.factor,
                                       analysis.SHOWN_RESAMPLES)

    cpu = compared("cpu") if "startup" in metrics else None  # the busy-host referee, shown or not
    for name in metrics:
        metric = METRICS[name]
        if metric.sample is not None and emulated[0] != emulated[1]:
            outcome.notes.append(f"{key}: {metric.label} not compared: emulated in "
                                 f"{'A' if emulated[0] else 'B'} only")
            continue
        found = cpu if name == "cpu" and cpu is not None else compared(name)
        if found is None:
            continue
        found = _guarded(name, found, cpu, same=same, busy=busy, precision_reached=precision_reached,
                         resolution=resolution)
        regressed = found.verdict in REGRESSIONS and found.ratio > outcome.factor
        outcome.lines.append(Line(key, name, _estimate(metric, row_a, samples_a),
                                  _estimate(metric, row_b, samples_b), found, regressed,
                                  same_binary=same and metric.sample is not None))


def _check(metrics, factor: float) -> list[str]:
    if not factor >= 1:
        raise SlimlabError(f"--factor must be at least 1 (a ratio either way), not {factor}: e.g. 1.05")
    metrics = list(metrics or METRICS)
    for name in metrics:
        if name not in METRICS:
            raise unknown("metric", name, METRICS)
    return metrics


def check_format(name: str) -> str:
    """``name`` if it is one of FORMATS; SpecError with did-you-mean otherwise."""
    if name not in FORMATS:
        raise unknown("format", name, FORMATS)
    return name


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
    outcome.noise = [run_noise(str(d), _manifest(d), [side[k] for k in common])
                     for d, side in zip(dirs, rows)]
    busy = any(n.busy for n in outcome.noise)
    for key in common:
        row_a, row_b = rows[0][key], rows[1][key]
        _compare(outcome, key, row_a, row_b, samples[0].get((row_a["run_id"] or "", key)),
                 samples[1].get((row_b["run_id"] or "", key)), metrics, busy)
    for side, mine, theirs in (("A", keys[0], keys[1]), ("B", keys[1], keys[0])):
        only = [k for k in mine if k not in set(theirs)]
        if only:
            outcome.notes.append(f"only in {side} ({len(only)}): {_some(only)}")
    _note_hosts(outcome, [(key, rows[0][key], rows[1][key]) for key in common], dirs)
    return outcome


def compare_variants(run: str | Path, key_a: str, key_b: str, factor: float = FACTOR,
                     metrics=None) -> Outcome:
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
    manifest = _manifest(run_dir)
    outcome.noise = [run_noise(f"{run_dir} ({key})", manifest, [row])
                     for key, row in ((key_a, row_a), (key_b, row_b))]
    _compare(outcome, f"run {run_dir.name}: {', '.join(analysis.changed_axes(row_a, row_b)) or 'same axes'}",
             row_a, row_b, samples.get((row_a["run_id"] or "", key_a)),
             samples.get((row_b["run_id"] or "", key_b)),
             metrics, outcome.noise[0].busy)
    _note_hosts(outcome, [(f"{key_a} -> {key_b}", row_a, row_b)], [run_dir])  # workers may have measured them
    return outcome


def _some(keys: list[str], shown: int = 4) -> str:
    if not keys:
        return "none"
    return ", ".join(keys[:shown]) + (f" and {len(keys) - shown} more" if len(keys) > shown else "")


def _note_hosts(outcome: Outcome, pairs: list[tuple[str, dict, dict]], dirs) -> None:
    """A note per pair of hosts (by host fingerprint: environment.host_fingerprint) whose rows were
    compared: two runs on different machines, or, within a run, rows Dask workers measured."""
    records = manifest_hosts(_manifest(d) for d in dirs)
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
        which = ("" if len(keys) == len(pairs)
                 else f" for {len(keys)} of {len(pairs)} variants ({_some(keys)})")
        outcome.notes.append(f"measured on different hosts (A: {label_a}, B: {label_b}){which}: timings may "
                             "differ for that reason alone")


# -- what is said ----------------------------------------------------------------------------------
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


def _warning_reasons(warning: str) -> str:
    """A busy-host warning's first sentence ("the host was busy while measuring (why)"), without
    the advice that follows it (environment.busy_host_warnings' wording)."""
    text = warning.removeprefix("Warning: ")
    end = text.find("). ")
    return text[:end + 1] if end >= 0 else text


def noise_sentences(noise: Noise) -> list[str]:
    """What a header says of one side: the host while measuring, busy or not, the precision reached."""
    def load(host: dict) -> str:
        loads = "→".join(f"{v:.2f}" for v in (host["load_before"], host["load_after"]) if v is not None)
        text = f"load {loads or '?'}" + (f" on {host['cores']} cores" if host.get("cores") else "")
        if host.get("cpu_pressure_pct") is not None:
            text += f", CPU pressure {host['cpu_pressure_pct']:g}%"
        return text if host["where"] == "this host" else f"{host['where']}: {text}"

    hosts = "; ".join(load(h) for h in noise.hosts) if noise.hosts else "not recorded"
    said = [f"host while measuring: {hosts}"]
    said.append("host busy: " + "; ".join(_warning_reasons(w) for w in noise.warnings) if noise.busy
                else "host busy: no warning")
    counted = noise.precision_reached + noise.precision_not_reached + noise.precision_unknown
    if counted == noise.precision_unknown:
        said.append("precision reached: " + ("unknown (not recorded)" if counted else "no timed row"))
    else:
        target = ", ".join(f"±{t:.1%}".replace(".0%", "%") for t in noise.precision_targets)
        text = (f"precision{f' ({target})' if target else ''} reached by {noise.precision_reached} of "
                f"{counted} timed rows")
        if noise.precision_not_reached:
            text += f", not by {noise.precision_not_reached}"
        if noise.precision_unknown:
            text += f", unknown for {noise.precision_unknown}"
        said.append(text)
    return said


def _rule(outcome: Outcome) -> str:
    return (f"a change is slower/larger/higher (or faster/smaller/lower) when Mann-Whitney U gives "
            f"p < {analysis.ALPHA} and the ratio is beyond x{outcome.factor:g}; sizes are exact; the same "
            f"binary on both sides, timings short of their precision and, on a busy host, start-up that CPU "
            f"time does not confirm are inconclusive: never a regression")


def _summary(outcome: Outcome, marked: str = "marked '!'") -> str:
    regressions = outcome.regressions
    verdict = (f"{len(regressions)} regression(s) beyond x{outcome.factor:g}, {marked}" if regressions
               else f"no regression beyond x{outcome.factor:g}")
    counts: dict[str, int] = {}
    for line in outcome.inconclusive:
        counts[line.comparison.verdict] = counts.get(line.comparison.verdict, 0) + 1
    if counts:
        verdict += "; not regressions: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
    return verdict


def _cells(line: Line) -> tuple[str, ...]:
    """metric, A, B, ratio, p, verdict of a line, as text."""
    if line.comparison is None:
        return (line.metric, "", "", "", "", line.note)
    unit, c = METRICS[line.metric].unit, line.comparison
    ratio = f"{c.ratio:.3f}" + (f" [{c.lo:.3f}, {c.hi:.3f}]" if c.lo != c.hi else "")
    return (METRICS[line.metric].label, _figure(line.a, unit), _figure(line.b, unit), ratio, _p(c.p_value),
            c.verdict)


def render(outcome: Outcome) -> str:
    """The terminal table: each side's noise, one block per variant, a line per metric,
    regressions marked with '!'."""
    header = ("", "metric", "A", "B", "B/A [95% CI]", "p", "verdict")
    table: list[tuple[str, ...]] = []
    current = None
    for line in outcome.lines:  # every value shown escaped: a reason may come from another's results file
        if line.key != current:
            table.append((shown(line.key),))
            current = line.key
        table.append(("!" if line.regressed else "", *(shown(c) for c in _cells(line))))
    widths = [max([len(header[i])] + [len(r[i]) for r in table if len(r) > 1]) for i in range(len(header))]
    out = []
    for side, name, noise in zip("AB", (outcome.a_name, outcome.b_name), outcome.noise or [None, None]):
        out.append(f"{side}: {shown(name)}")
        out += [f"   {shown(sentence)}" for sentence in (noise_sentences(noise) if noise else [])]
    out += ["", "  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    for row in table:
        out.append(row[0] if len(row) == 1 else "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    out.append("")
    out += [f"note: {shown(n)}" for n in outcome.notes]
    return "\n".join([*out, _rule(outcome), _summary(outcome)])


def _md(text: str) -> str:
    """Text as a Markdown table cell's: on one line, control characters escaped, HTML escaped (a CI
    comment renders HTML), pipes escaped."""
    return html.escape(shown(" ".join(str(text).split())), quote=False).replace("|", "\\|")


def render_markdown(outcome: Outcome) -> str:
    """A CI comment: each side's noise as a list, the lines as a table, notes and the verdict."""
    out = [f"**slimlab compare**: B against A, x{outcome.factor:g}", ""]
    for side, name, noise in zip("AB", (outcome.a_name, outcome.b_name), outcome.noise or [None, None]):
        said = "; ".join(noise_sentences(noise)) if noise else ""
        out.append(f"- **{side}**: {_md(name)}" + (f" ({_md(said)})" if said else ""))
    out += ["", "| variant | metric | A | B | B/A [95% CI] | p | verdict |", "|---|---|---|---|---|---|---|"]
    for line in outcome.lines:
        cells = [_md(c) for c in _cells(line)]
        if line.regressed:
            cells[-1] = f"**{cells[-1]} (regression)**"
        out.append("| " + " | ".join([_md(line.key), *cells]) + " |")
    out.append("")
    out += [f"- note: {_md(n)}" for n in outcome.notes]
    out += ["", _md(_rule(outcome)), "", f"**{_md(_summary(outcome, marked='marked (regression)'))}**"]
    return "\n".join(out)


def _estimate_json(estimate: Estimate | None) -> dict | None:
    if estimate is None:
        return None
    return {"median": estimate.median, "lo": estimate.lo, "hi": estimate.hi, "n": estimate.n}


def as_json(outcome: Outcome) -> dict:
    """The outcome as plain data with stable keys (version JSON_VERSION), for CI."""
    def side(name: str, noise: Noise | None) -> dict:
        if noise is None:
            return {"name": name}
        return {"name": name, "hosts": noise.hosts, "busy": noise.busy, "warnings": noise.warnings,
                "precision": {"reached": noise.precision_reached, "not_reached": noise.precision_not_reached,
                              "unknown": noise.precision_unknown, "targets": noise.precision_targets}}

    sides = outcome.noise or [None, None]
    lines = []
    for line in outcome.lines:
        c = line.comparison
        lines.append({
            "key": line.key, "metric": line.metric, "unit": METRICS[line.metric].unit if c else None,
            "a": _estimate_json(line.a), "b": _estimate_json(line.b),
            "ratio": c.ratio if c else None, "lo": c.lo if c else None, "hi": c.hi if c else None,
            "p_value": c.p_value if c else None, "verdict": c.verdict if c else line.note,
            "regressed": line.regressed, "inconclusive": bool(c) and analysis.is_inconclusive(c.verdict),
            "same_binary": line.same_binary,
        })
    return {"slimlab_compare": JSON_VERSION, "factor": outcome.factor, "alpha": analysis.ALPHA,
            "a": side(outcome.a_name, sides[0]), "b": side(outcome.b_name, sides[1]), "lines": lines,
            "notes": outcome.notes, "regressions": len(outcome.regressions),
            "inconclusive": len(outcome.inconclusive), "exit_code": outcome.exit_code}


def render_json(outcome: Outcome) -> str:
    return json.dumps(as_json(outcome), indent=2, allow_nan=False)


RENDERERS = {"text": render, "markdown": render_markdown, "json": render_json}


def frame(outcome: Outcome) -> pl.DataFrame:
    """The lines as a frame (for notebooks and tests)."""
    return pl.DataFrame([{
        "key": line.key, "metric": line.metric,
        "a_median": line.a.median if line.a else None, "b_median": line.b.median if line.b else None,
        "ratio": line.comparison.ratio if line.comparison else None,
        "lo": line.comparison.lo if line.comparison else None,
        "hi": line.comparison.hi if line.comparison else None,
        "p_value": line.comparison.p_value if line.comparison else None,
        "verdict": line.comparison.verdict if line.comparison else line.note, "regressed": line.regressed,
        "same_binary": line.same_binary,
    } for line in outcome.lines], schema={"key": pl.String, "metric": pl.String, "a_median": pl.Float64,
                                          "b_median": pl.Float64, "ratio": pl.Float64, "lo": pl.Float64,
                                          "hi": pl.Float64, "p_value": pl.Float64, "verdict": pl.String,
                                          "regressed": pl.Boolean, "same_binary": pl.Boolean})
