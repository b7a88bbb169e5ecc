"""Self-contained HTML reports: header, warnings, answers, figures, every row, and the
environment folded at the end.

A report must open offline, years later, from a file or a CI artifact: plotly.js is
inlined exactly once (never a CDN link) and every string that came from the user (labels,
reasons, manifest values, the title) is HTML-escaped before it is written.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import html
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from slimlab.environment import host_label
from slimlab.report import figures, prep
from slimlab.report.answers import answers_html, host_names
from slimlab.results import vfs_run_ids
from slimlab.results_schema import STATUSES

# Shown first in the table; any other column of the frame follows in frame order.
TABLE_LEAD_COLUMNS = (
    "run_id",
    "workload",
    "toolchain",
    "toolchain_version",
    "profile",
    "target",
    "postlink",
    "upx_level",
    "base",
    "status",
    "reason",
    "size_bytes",
    "startup_ms_median",
    "startup_ms_iqr",
    "startup_n",
    "peak_rss_kib_median",
    "peak_rss_kib_iqr",
    "emulated",
    "runner",
    "host",
    "host_fingerprint",
)

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}

# Free text that may be long or hold newlines: wrapped, not kept on one line.
WRAPPED_COLUMNS = frozenset({"reason", "flags", "build_env", "needed_libs", "build_settings", "dep_modules",
                             "dwarf_sections", "postlink_removed_sections", "packages_source"})
LONG_CELL_CHARS = 40

# Scoped under .slimlab-report so that, displayed inside a notebook, it leaves the
# notebook's own styles alone.
CSS = """
.slimlab-report { font-family: system-ui, -apple-system, "Segoe UI", sans-serif;
  color: #222; max-width: 1400px; margin: 0 auto; padding: 0 12px; }
.slimlab-report h1 { font-size: 1.7em; margin: 0.6em 0 0.2em; }
.slimlab-report h2 { font-size: 1.25em; margin: 1.4em 0 0.5em; border-bottom: 1px solid #ddd; }
.slimlab-report .meta { color: #555; margin: 0.2em 0; }
.slimlab-report table { border-collapse: collapse; font-size: 0.85em; }
.slimlab-report table th, .slimlab-report table td { border: 1px solid #ddd; padding: 3px 7px;
  text-align: left; vertical-align: top; }
.slimlab-report th { background: #f4f4f4; position: sticky; top: 0; }
.slimlab-report .results td { white-space: nowrap; }
.slimlab-report td.num { text-align: right; font-variant-numeric: tabular-nums; }
.slimlab-report .kv th { width: 16em; background: #fafafa; position: static; }
.slimlab-report .kv pre { margin: 0; white-space: pre-wrap; }
.slimlab-report .scroll { overflow: auto; max-height: 80vh; }
.slimlab-report tr.status-failed td { background: #fff4f2; }
.slimlab-report tr.status-unsupported td { background: #f6f6f6; color: #666; }
.slimlab-report .note { background: #fff8e1; border-left: 4px solid #f0b400;
  padding: 6px 10px; margin: 0.6em 0; }
.slimlab-report .warning { background: #fdecea; border-left: 4px solid #d62728;
  padding: 6px 10px; margin: 0.6em 0; }
.slimlab-report .figure { margin: 1.2em 0; }
.slimlab-report details { margin: 0.4em 0; }
.slimlab-report summary { cursor: pointer; font-weight: 600; }
.slimlab-report .results td:empty::after { content: "–"; color: #aaa; }
.slimlab-report details.environment { margin-top: 1.4em; }
.slimlab-report details.environment > summary h2 { display: inline; border: none; }
.slimlab-report .warning p { margin: 0; }
.slimlab-report .warning ul { margin: 0.3em 0; font-size: 0.9em; }
.slimlab-report .answer { border: 1px solid #ddd; border-radius: 4px; padding: 4px 12px; margin: 0.8em 0; }
.slimlab-report .answer h3 small { color: #666; font-weight: normal; }
.slimlab-report .answer-emulated { background: #fff3cd; color: #7a5a00; font-size: 0.8em; padding: 1px 6px; }
.slimlab-report h3 .answer-host { background: #e8eef9; color: #23466e; font-size: 0.8em; padding: 1px 6px; }
.slimlab-report .answer-recommended { background: #eef7ee; border-left: 4px solid #2ca02c; padding: 2px 10px; }
.slimlab-report .answer-rule, .slimlab-report .answer-note { color: #555; font-size: 0.9em; }
.slimlab-report .effect-better { color: #1a7f37; }
.slimlab-report .effect-worse { color: #b42318; }
.slimlab-report .effect-same { color: #555; }
"""


def _esc(value: object) -> str:
    return html.escape(str(value))


def _format_cell(value: Any) -> str:
    """One table cell's text (unescaped): numbers with separators, lists joined."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, (list, tuple)):
        return ", ".join(_format_cell(v) for v in value)
    if isinstance(value, Mapping):
        # A struct in a list (sections, image bytes by kind): its values only, in field order;
        # the column's header names the fields once.
        return " ".join("–" if v is None else _format_cell(v) for v in value.values())
    return str(value)


def _flatten(value: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    """Nested manifest dicts/lists as (dotted.key, scalar) pairs, in their own order."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            yield from _flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, (list, tuple)) and any(isinstance(v, (Mapping, list)) for v in value):
        for index, inner in enumerate(value):
            yield from _flatten(inner, f"{prefix}[{index}]")
    else:
        yield prefix, value


def _manifest_html(manifests: list[Mapping[str, Any]]) -> str:
    if not manifests:
        return ""
    parts = []
    for index, manifest in enumerate(manifests):
        name = manifest.get("run_id") or f"manifest {index + 1}"
        rows = []
        for key, value in _flatten(manifest):
            if value is None:
                rows.append(f'<tr><th>{_esc(key)}</th><td class="null">–</td></tr>')
                continue
            text = _format_cell(value)
            cell = f"<pre>{_esc(text)}</pre>" if "\n" in text else _esc(text)
            rows.append(f"<tr><th>{_esc(key)}</th><td>{cell}</td></tr>")
        parts.append(
            f"<details><summary>{_esc(name)}</summary>"
            f'<table class="kv">{"".join(rows)}</table></details>'
        )
    return "\n".join(parts)


def _sessions(manifests: list[Mapping[str, Any]]) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """(escaped run id, measurement) of every session that measured."""
    for manifest in manifests:
        for session in manifest.get("sessions") or []:
            if session.get("measurement"):
                yield _esc(manifest.get("run_id") or "?"), session["measurement"]


def _busy_host_html(manifests: list[Mapping[str, Any]]) -> str:
    """The sweep's busy-host warnings (slimlab.environment.busy_host_warnings), per run, and those
    of the Dask workers that measured for it (measure_on = "workers"), naming the worker's host."""
    here = [f'<p class="warning">Run {run}: {_esc(warning)}</p>'
            for run, measured in _sessions(manifests) for warning in measured.get("warnings") or []]
    workers = [f'<p class="warning">Run {_esc(manifest.get("run_id") or "?")}, measured on '
               f'{_esc(host_label(host, host.get("fingerprint")))}: {_esc(warning)}</p>'
               for manifest in manifests for session in manifest.get("sessions") or []
               for host in session.get("hosts") or [] if isinstance(host, dict)
               for warning in host.get("warnings") or []]
    return "".join(here + workers)


def _measurement_html(manifests: list[Mapping[str, Any]]) -> str:
    """Per run: the launcher's own cost, the host's noise while measuring and the container floor."""
    parts = []
    for run, measured in _sessions(manifests):
        overhead = measured.get("launcher_overhead") or {}
        noise = measured.get("noise") or {}
        facts = []
        if overhead.get("median_ms") is not None:
            facts.append(f"launcher overhead (a static no-op started the same way): median "
                         f"{overhead['median_ms']:.3f} ms over {overhead.get('n')} starts")
        if noise:
            loads = "→".join(f"{(v or [None])[0]:.2f}" for v in (noise.get("loadavg_before"),
                                                                 noise.get("loadavg_after")) if v)
            facts.append(f"host while measuring: load {loads}, CPUs busy {noise.get('busy_pct')}%, "
                         f"steal {noise.get('steal_pct')}%, CPU pressure {noise.get('cpu_pressure_pct')}%")
        if measured.get("pin_cpu") is not None:
            facts.append(f"measured on CPU {measured['pin_cpu']} only")
        facts += _floor_facts(measured.get("container_floor"), overhead.get("median_ms"))
        if facts:
            parts.append(f'<p class="note">Run {run}: {_esc("; ".join(facts))}.</p>')
    return "".join(parts)


FLOOR_KINDS = {"cli": "CLIs: a no-op to its exit, --network none",
               "server": "servers: a no-op server to its first answer"}


def _floor_network(kind: str, network: str | None) -> str:
    """Where a server's floor ran: the host's network (runs before issue 18) or its own."""
    if kind != "server":
        return ""
    if network in (None, "host"):
        return ", the host's network"
    return f", its own network ({network}, its port published on 127.0.0.1)"


def _floor_facts(floor: Mapping[str, Any] | None, bare_noop_ms: float | None) -> list[str]:
    """The engine's floor (sweep: a static no-op on scratch timed among the images, for each kind of
    them), and what it says: the container's own cost, and that a row's start-up beyond it is its
    program's and base's."""
    if not floor:
        return []
    if floor.get("error"):
        return [f"container floor not measured: {floor['error']}"]
    facts = []
    for kind, measured in (floor.get("kinds") or {}).items():
        how = FLOOR_KINDS.get(kind, kind) + _floor_network(kind, measured.get("network"))
        if measured.get("median_ms") is None or measured.get("error"):
            facts.append(f"container floor for {how} not measured: {measured.get('error') or 'no starts'}")
            continue
        text = (f"container floor for {how} (static, on scratch, timed in the same rounds as the images, "
                f"image {measured.get('image')}): median {measured['median_ms']:.1f} ms, 95% CI "
                f"[{measured['ci_low_ms']:.1f}, {measured['ci_high_ms']:.1f}], n = {measured.get('n')}")
        if bare_noop_ms is not None and kind == "cli":  # the launcher's calibration is the CLI no-op's
            added = measured["median_ms"] - bare_noop_ms
            text += f"; the container adds {added:.1f} ms to a bare start of the no-op"
        facts.append(text)
    if facts:
        facts.append("an image's start-up beyond its kind's floor (column container_floor_ms_median) is "
                     "what its program and base add")
    return facts


def _vfs_html(manifests: list[Mapping[str, Any]]) -> str:
    """One line on the first screen when images were timed on a vfs engine: its container
    start-up is the test engine's, not a production engine's."""
    runs = sorted(vfs_run_ids(manifests))
    if not runs:
        return ""
    text = (f"Container start-up of run {', '.join(runs)} is not representative of a production engine: "
            "its Docker engine used the vfs storage driver, which copies the whole image for every container "
            "(so a base with more files starts slower), where production engines use overlay2.")
    return f'<p class="warning vfs">{_esc(text)}</p>'


def _engine_html(manifests: list[Mapping[str, Any]]) -> str:
    """Per run: the Docker engine its images were built and run on, and whether it was this machine's."""
    parts = []
    for manifest in manifests:
        for session in manifest.get("sessions") or []:
            found = session.get("engine")
            if not found:
                continue
            where = {True: "this machine", False: "another machine: containers not timed"}.get(
                found.get("this_machine"), "machine not recorded")
            if found.get("this_machine") and found.get("scheme") not in (None, "unix"):
                # Timed by this client's clock around the API calls: each of them crossed the transport.
                where += f"; container start-up includes API round trips over {found['scheme']}"
            text = (f"images built and run on Docker engine {found.get('version')} "
                    f"({found.get('storage_driver')} storage), {found.get('name') or '?'} (ID {found.get('id') or '?'}), "
                    f"at {found.get('url')} ({where})"
                    + (f", DOCKER_HOST={found['docker_host']}" if found.get("docker_host") else ""))
            parts.append(f'<p class="note">Run {_esc(manifest.get("run_id") or "?")}: {_esc(text)}.</p>')
    return "".join(parts)


CROSSCHECK_TOLERANCE = 0.05  # within 5% of hyperfine -N: agreement


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def _crosscheck_html(df: pl.DataFrame, disagreeing: bool) -> str:
    """How far slimlab's start-up figures are from hyperfine -N's on the same binaries:
    ``disagreeing`` True gives the note only when they are further apart than the tolerance
    (a warning, near the top), False only when they agree (the environment section)."""
    ratios = prep.crosscheck_ratios(df)
    if ratios.is_empty():
        return ""
    apart = max(abs(math.log(v)) for v in ratios["ratio"].to_list()) > math.log1p(CROSSCHECK_TOLERANCE)
    if apart != disagreeing:
        return ""
    values = ratios["ratio"].to_list()
    geomean = _geomean(values)
    worst = ratios.sort((pl.col("ratio").log()).abs(), descending=True).row(0, named=True)
    text = (f"Start-up cross-check against hyperfine -N (the same binaries, in alternating turns, "
            f"{len(values)} native CLI variant(s)): slimlab / hyperfine median ratio {geomean:.3f} "
            f"(geometric mean; {min(values):.3f} to {max(values):.3f}).")
    fast = ratios["ratio_p25"].drop_nulls().to_list()
    if fast:
        text += f" At the 25th percentile: {_geomean(fast):.3f} ({min(fast):.3f} to {max(fast):.3f})."
    if apart:
        text += (f" Furthest apart: {html.unescape(worst['plot_label'])} at {worst['ratio']:.3f} (median). "
                 "Medians of a few ms drift apart when starts wait for a CPU (see the host's load above): a "
                 "start either gets one at once or waits a scheduler tick, and the median can land in either.")
    return f'<p class="note">{_esc(text)}</p>'


def _status_html(df: pl.DataFrame) -> str:
    """Rows per status (every known status, zeros too), above the table of all rows."""
    counts = prep.status_counts(df)
    cells = "".join(
        f'<tr><td>{_esc(status if status is not None else "(missing)")}</td>'
        f'<td class="num">{count:,}</td></tr>'
        for status, count in counts.iter_rows()
    )
    total = f'<tr><th>total</th><th class="num">{df.height:,}</th></tr>'
    return f'<table class="status"><tr><th>status</th><th>rows</th></tr>{cells}{total}</table>'


def _emulated_html(df: pl.DataFrame) -> str:
    n_emulated = int(df["emulated"].fill_null(False).sum())
    if not n_emulated:
        return ""
    return (f'<p class="note">{n_emulated:,} row(s) were measured under emulation (QEMU): their start-up times '
            "and RSS are not native figures, so they have panels of their own in every figure.</p>")


HOST_ROWS_LISTED = 12


def _hosts_html(df: pl.DataFrame, manifests: list) -> str:
    """When the rows were measured on more than one host (by fingerprint: Dask workers measuring
    what they built, or runs from several machines): which, and how the report keeps them apart."""
    hosts = host_names(df, manifests)
    if len(hosts) < 2:
        return ""
    counts = df.group_by("host_fingerprint").agg(pl.len().alias("n"), pl.col("run_id").drop_nulls().unique().sort())
    items = "".join(
        f"<li>{_esc(hosts[r['host_fingerprint']])}: {r['n']:,} row(s)"
        + (f" (run {_esc(', '.join(r['run_id'][:HOST_ROWS_LISTED]))})" if r["run_id"] else "") + "</li>"
        for r in counts.sort("n", "host_fingerprint", descending=[True, False], nulls_last=True).iter_rows(named=True))
    text = (f"The rows were measured on {len(hosts)} hosts (below). One machine's timings are "
            "not another's, so start-up and memory are compared within a host only: the answers have a block per "
            "host (a baseline measured elsewhere is compared on size alone), and the start-up, memory and post-link "
            "figures a panel per host. Sizes do not depend on the host: the size figures compare every row.")
    return f'<div class="warning hosts"><p>{_esc(text)}</p><ul>{items}</ul></div>'


def _failed_html(df: pl.DataFrame, table_id: str) -> str:
    failed = df.filter(pl.col("status").fill_null("?") != "ok")
    if failed.is_empty():
        return ""
    counts = ", ".join(f"{_esc(status)}: {count:,}" for status, count in
                       failed.group_by(pl.col("status").fill_null("(missing)")).len().sort("status").iter_rows())
    return (f'<p class="warning">{failed.height:,} of {df.height:,} row(s) are not "ok" ({counts}). They are left '
            f'out of the figures; each is listed with its reason in the <a href="#{table_id}">table of all rows</a>.'
            "</p>")


OUTLIERS_LISTED = 12


def _outliers_html(df: pl.DataFrame, samples: pl.DataFrame | None) -> str:
    """hyperfine's "Statistical outliers were detected", per variant, from the raw samples."""
    found = prep.outliers(df, samples)
    if found.is_empty():
        return ""
    items = "".join(  # plot_label is escaped already
        f"<li>{r['plot_label']}: {r['n_outliers']:,} of {r['n']:,} starts (median {r['median_ms']:.2f} ms, "
        f"slowest {r['max_ms']:.2f} ms, fastest {r['min_ms']:.2f} ms)</li>"
        for r in found.head(OUTLIERS_LISTED).iter_rows(named=True))
    if found.height > OUTLIERS_LISTED:
        items += f"<li>… and {found.height - OUTLIERS_LISTED:,} more (most outliers first)</li>"
    text = (f"Statistical outliers were detected in the start-up samples of {found.height:,} variant(s): starts "
            f"whose modified Z-score |x − median| / MAD exceeds {prep.OUTLIER_THRESHOLD:g}, hyperfine's rule (ten "
            "standard deviations from the median, estimated from the MAD). A start that waited for a CPU or for "
            "the disk lands there. Medians "
            "hardly move, means and maxima do; consider re-running on a quiet host (pin_cpu) or with more "
            "warm-up starts.")
    return (f'<div class="warning"><p>{_esc(text)}</p><details><summary>which variants</summary>'
            f"<ul>{items}</ul></details></div>")


def _warnings_html(df: pl.DataFrame, manifests: list, samples: pl.DataFrame | None, table_id: str,
                   load_warnings: Sequence[str] = ()) -> str:
    """What makes the figures below less than they seem: one line on the first screen that names
    each warning and counts them, unfolding to the warnings themselves."""
    failed = df.filter(pl.col("status").fill_null("?") != "ok").height
    emulated = int(df["emulated"].fill_null(False).sum()) if "emulated" in df.columns else 0
    outliers = prep.outliers(df, samples).height
    parts = [
        ("container start-up on a vfs engine: not representative", _vfs_html(manifests)),
        (f"{len(load_warnings)} file(s) skipped", "".join(f'<p class="warning">Skipped: {_esc(w)}</p>'
                                                          for w in load_warnings)),
        ("rows from several hosts", _hosts_html(df, manifests)),
        ("the host was busy while measuring", _busy_host_html(manifests)),
        ("start-up disagrees with hyperfine", _crosscheck_html(df, disagreeing=True)),
        (f"outliers in {outliers:,} variant(s)", _outliers_html(df, samples) if outliers else ""),
        (f"{failed:,} row(s) not ok", _failed_html(df, table_id)),
        (f"{emulated:,} emulated row(s)", _emulated_html(df)),
    ]
    found = [(title, body) for title, body in parts if body]
    if not found:
        return ""
    summary = f"{len(found)} warning{'s' if len(found) > 1 else ''}: " + "; ".join(title for title, _ in found)
    return (f'<details class="warnings"><summary class="warning">{_esc(summary)}</summary>'
            f'{"".join(body for _, body in found)}</details>')


def _environment_html(df: pl.DataFrame, manifests: list) -> str:
    """The environment, tool versions, spec and measurement set-up: folded, at the end."""
    inner = _measurement_html(manifests) + _engine_html(manifests) + _crosscheck_html(df, disagreeing=False) + _manifest_html(manifests)
    if not inner:
        return ""
    return ('<details class="environment"><summary><h2>Environment, tool versions, spec and measurement '
            f"({len(manifests):,} run(s))</h2></summary>{inner}</details>")


def _row_class(status: object) -> str:
    # A fixed vocabulary, so no frame value ever lands inside an attribute.
    if status == "ok":
        return "status-ok"
    if status == "unsupported":
        return "status-unsupported"
    return "status-failed" if status in STATUSES else "status-other"


def _table_html(df: pl.DataFrame, table_id: str) -> str:
    """Every row and every column that holds a value somewhere. Cells carry no attributes
    (a 1,000-row table would be mostly class names): their alignment and wrapping come from
    per-column rules, and an empty cell shows a dash from the style sheet."""
    columns = [c for c in TABLE_LEAD_COLUMNS if c in df.columns]
    columns += [c for c in df.columns if c not in columns]
    empty = [c for c in columns if df[c].null_count() == df.height] if df.height else []
    columns = [c for c in columns if c not in empty] or columns
    def head(column: str) -> str:
        dtype = df.schema[column]
        inner = getattr(dtype, "inner", None)
        fields = f" ({' '.join(f.name for f in inner.fields)})" if isinstance(inner, pl.Struct) else ""
        return f"<th>{_esc(column + fields)}</th>"

    header = "".join(head(c) for c in columns)
    rules = []
    rows = []
    texts: dict[str, list[str]] = {}
    for column in columns:
        values = df[column].to_list()
        texts[column] = ["" if v is None else _esc(_format_cell(v)) for v in values]
        nth = f"#{table_id}-table td:nth-child({columns.index(column) + 1})"
        if df.schema[column].is_numeric():
            rules.append(f"{nth}{{text-align:right;font-variant-numeric:tabular-nums}}")
        elif column in WRAPPED_COLUMNS or any(len(t) > LONG_CELL_CHARS for t in texts[column]):
            rules.append(f"{nth}{{white-space:pre-wrap;overflow-wrap:anywhere;min-width:16em;max-width:36em}}")
    statuses = df["status"].to_list() if "status" in df.columns else [None] * df.height
    for index, status in enumerate(statuses):
        cells = "".join(f"<td>{texts[c][index]}</td>" for c in columns)
        rows.append(f'<tr class="{_row_class(status)}">{cells}</tr>')
    body = "".join(rows) or f'<tr><td colspan="{max(len(columns), 1)}">No rows.</td></tr>'
    left_out = (f'<p class="meta">Empty in every row, left out: {_esc(", ".join(empty))}.</p>'
                if empty and empty[0] not in columns else "")
    table = (f'<table class="results" id="{table_id}-table"><thead><tr>{header}</tr></thead>'
             f"<tbody>{body}</tbody></table>")
    return (
        f'<h2 id="{table_id}">All rows ({df.height:,})</h2>{_status_html(prep.conform(df))}{left_out}'
        f"<style>{' '.join(rules)}</style>"
        f'<div class="scroll">{_packed(table) if len(table) > TABLE_INLINE_MAX_CHARS else table}</div>'
    )


# A table of 1,000 real rows is about 4 MB of HTML, mostly the same words again and again
# (build settings, section names, run ids): above this size it is embedded gzip-compressed,
# a tenth of that, and inflated by the browser on load (DecompressionStream: every current
# browser). It is the same escaped HTML either way.
TABLE_INLINE_MAX_CHARS = 1_000_000
_INFLATE = """<script>(function () {
  var packed = document.currentScript.previousElementSibling;
  var bytes = Uint8Array.from(atob(packed.textContent.trim()), function (c) { return c.charCodeAt(0); });
  new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).text()
    .then(function (table) { packed.insertAdjacentHTML("afterend", table); packed.remove(); });
})();</script>"""


def _packed(table: str) -> str:
    """The table's HTML, gzip-compressed and base64-encoded, with the script that inflates it."""
    data = base64.b64encode(gzip.compress(table.encode("utf-8"), compresslevel=6, mtime=0)).decode("ascii")
    return (f'<script type="application/gzip+base64" class="packed-table">{data}</script>{_INFLATE}'
            "<noscript>The table of all rows needs JavaScript here (it is stored compressed); "
            "every row is in the run's results.parquet.</noscript>")


# plotly's JSON writer escapes every non-ASCII character: each "·" of a label takes 6 bytes
# (\u00b7) instead of 2, a fifth of a 1,000-variant report's figures. The document is UTF-8,
# so those are written as themselves; escaped backslashes are skipped whole, and the escapes
# plotly makes for safety (<, >, &, /: all ASCII) and the JavaScript line separators stay.
PLOTLYJS_START = "* plotly.js v"  # the inlined library's first comment line
_JSON_ESCAPE = re.compile(r"\\\\|\\u([0-9a-fA-F]{4})")


def _unescape(match: re.Match) -> str:
    code = int(match.group(1), 16) if match.group(1) else 0
    if code < 0xA0 or 0xD800 <= code <= 0xDFFF or code in (0x2028, 0x2029):
        return match.group(0)
    return chr(code)


def _figures_html(df: pl.DataFrame, packages: pl.DataFrame | None = None, **choices) -> str:
    parts = []
    for index, fig in enumerate(figures.report_figures(df, packages, **choices)):
        # plotly.js goes in once, with the first figure; the others reuse it. Never "cdn":
        # the report has to work without a network. The library is taken as it is; only the
        # figures' JSON is unescaped.
        library = ""
        if index == 0:
            library = fig.to_html(full_html=False, include_plotlyjs=True)
            # Its two <script>s (config, library), without the figure's wrapper <div>.
            library = library[library.index("<script"):
                              library.index("</script>", library.index(PLOTLYJS_START)) + len("</script>")]
        snippet = fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            config=PLOTLY_CONFIG,
            default_height=f"{fig.layout.height or 450}px",
        )
        parts.append(f'<div class="figure">{library}{_JSON_ESCAPE.sub(_unescape, snippet)}</div>')
    return "\n".join(parts)


def _as_list(manifest: Mapping[str, Any] | list[Mapping[str, Any]] | None) -> list:
    if manifest is None:
        return []
    if isinstance(manifest, Mapping):
        return [manifest]
    return list(manifest)


def render_report_fragment(
    df: pl.DataFrame,
    title: str,
    manifest: Mapping[str, Any] | list[Mapping[str, Any]] | None = None,
    packages: pl.DataFrame | None = None,
    treemap_variant: str | None = None,
    compare_variants: tuple[str, str] | None = None,
    capabilities: pl.DataFrame | None = None,
    samples: pl.DataFrame | None = None,
    baseline: Any = None,
    factor: float | None = None,
    run_dirs: Mapping[str, str | Path] | None = None,
    sections: Sequence[Callable[[bool], str]] = (),
    constraints: Any = None,
    load_warnings: Sequence[str] = (),
) -> str:
    """The report as one <div> (with its own <style>), for embedding in a page or notebook.

    In reading order: the header, warnings (files the loaders skipped, a busy host, outliers,
    failed rows), the answers (answers.answers_html: what to pick per workload, effects against
    ``baseline``, a change counting beyond ``factor``; the recommendation under ``constraints``,
    slimlab.analysis.parse_constraints), the figures, extra ``sections``, every row,
    and the environment folded at the end. ``run_dirs`` (run id -> its directory) makes the
    answers' ``slimlab dockerfile`` command lines name the real run directories.

    ``samples`` (``slimlab.load_samples``) are the timed starts behind the medians: the
    outlier warnings and the answers' confidence intervals need them. ``packages``
    (``slimlab.load_packages``) feeds the package treemap and the package comparison;
    ``treemap_variant`` / ``compare_variants`` choose their variant keys; ``capabilities``
    (``slimlab.load_capabilities``) feeds the capability heatmap. ``sections`` (e.g. the trends,
    slimlab.report.trends.trends_section) are each called with whether plotly.js is on the page
    already; ``load_warnings`` name the files the loaders skipped (corrupt or half-written runs).
    """
    manifests = _as_list(manifest)
    conformed = prep.conform(df)
    ids = prep.run_ids(df)
    ids += [str(m["run_id"]) for m in manifests if m.get("run_id") and str(m["run_id"]) not in ids]
    runs = ", ".join(_esc(i) for i in ids) or "none"
    header = (
        f"<header><h1>{_esc(title)}</h1>"
        f'<p class="meta">Runs: {runs}</p>'
        f'<p class="meta">{df.height:,} rows · generated by slimlab at '
        f"{_esc(dt.datetime.now(dt.UTC).isoformat(timespec='seconds'))}</p></header>"
    )
    figures_part = _figures_html(df, packages, treemap_variant=treemap_variant, compare_variants=compare_variants,
                                 capabilities=capabilities)
    # Unique per report: two reports shown in one notebook keep their own links and column rules.
    table_id = f"slimlab-rows-{uuid.uuid4().hex[:8]}"
    return "\n".join(
        [
            '<div class="slimlab-report">',
            f"<style>{CSS}</style>",
            header,
            _warnings_html(conformed, manifests, samples, table_id, load_warnings),
            answers_html(conformed, samples, manifests, baseline=baseline, run_dirs=run_dirs, constraints=constraints,
                         **({"factor": factor} if factor is not None else {})),
            "<h2>Figures</h2>",
            figures_part,
            *(section(bool(figures_part)) for section in sections),  # plotly.js came with the first figure
            _table_html(df, table_id),
            _environment_html(conformed, manifests),
            "</div>",
        ]
    )


def render_report_html(
    df: pl.DataFrame,
    title: str,
    manifest: Mapping[str, Any] | list[Mapping[str, Any]] | None = None,
    packages: pl.DataFrame | None = None,
    **choices,
) -> str:
    """The report as one self-contained HTML document (plotly.js inlined once)."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_esc(title)}</title>\n</head>\n<body>\n"
        f"{render_report_fragment(df, title, manifest, packages, **choices)}\n</body>\n</html>\n"
    )


def write_report(
    df: pl.DataFrame,
    out_path: str | Path,
    title: str,
    manifest: Mapping[str, Any] | list[Mapping[str, Any]] | None = None,
    packages: pl.DataFrame | None = None,
    **choices,
) -> Path:
    """Write the report to ``out_path`` (parents created) and return the path."""
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(render_report_html(df, title, manifest, packages, **choices), encoding="utf-8")
    return out_path


def display_report(
    df: pl.DataFrame,
    title: str,
    manifest: Mapping[str, Any] | list[Mapping[str, Any]] | None = None,
    packages: pl.DataFrame | None = None,
    **choices,
) -> None:
    """Show the report in a notebook as a text/html output.

    Plain HTML, not plotly's own mime bundle: nbconvert's HTML export keeps text/html
    verbatim but drops plotly's JSON output, and the "notebook_connected"/CDN renderers
    come out blank offline.
    """
    from IPython.display import HTML, display  # only needed inside a kernel

    display(HTML(render_report_fragment(df, title, manifest, packages, **choices)))
