"""The report's trends section (``slimlab report DATA_DIR --trends``, notebooks/trends.ipynb):
per workload and metric, a line per variant across the runs, change points marked and
annotated with what changed, and the table of change points.

Every label (workload, variant, run id, tool version) comes from the user's data: it is
HTML-escaped before it reaches a table or a figure (plotly renders entities as text)."""

from __future__ import annotations

import html
import warnings

import plotly.graph_objects as go
import polars as pl
from plotly.colors import qualitative

from slimlab.results import DataWarning
from slimlab.trends import PENALTY_BETA, Trends, trends

METRIC_TITLES = {
    "size_bytes": "binary size (bytes)",
    "startup_ms_median": "median start-up (ms)",
    "peak_rss_kib_median": "median peak RSS (KiB)",
    "image_size_bytes": "image size (bytes)",
}
METRIC_ORDER = {m: i for i, m in enumerate(METRIC_TITLES)}  # a workload's figures in this order
MAX_LINES = 12  # per figure, beyond the variants that changed
MAX_ANNOTATIONS = 8  # per figure: more would cover the lines; every change point keeps its hover
CHANGE_COLOR = "#d62728"


def _esc(value: object) -> str:
    return html.escape(str(value))


def _variant_label(key: str, workload: str) -> str:
    """The variant key without its workload (the figure is the workload's)."""
    return key.removeprefix(f"{workload}|")


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.3g}"


def _short_cause(change: dict) -> str:
    kinds = change["attributed_to"]
    return f"{change['relative_change']:+.1%} " + ("+".join(kinds) if kinds else "unexplained")


def trends_figures(history: Trends) -> list[go.Figure]:
    """One figure per workload and metric that has a series of two runs or more."""
    figures = []
    long_enough = (history.series.filter(pl.len().over("workload", "variant_key", "metric") >= 2)
                   .sort(pl.col("workload"), pl.col("metric").replace_strict(METRIC_ORDER, default=len(METRIC_ORDER)),
                         maintain_order=True))
    for (workload, metric), group in long_enough.group_by(["workload", "metric"], maintain_order=True):
        fig = go.Figure()
        changes = history.change_points.filter(pl.col("workload") == workload, pl.col("metric") == metric)
        # Variants that changed first, then flat ones up to MAX_LINES: hundreds of lines hide each other.
        changed = set(changes["variant_key"])
        keys = sorted(group["variant_key"].unique(), key=lambda k: (k not in changed, k))
        drawn = keys[:max(MAX_LINES, len(changed))]
        for index, key in enumerate(drawn):
            points = group.filter(pl.col("variant_key") == key).sort("started_at")
            fig.add_trace(go.Scatter(
                x=points["started_at"].to_list(), y=points["value"].to_list(), mode="lines+markers",
                name=_esc(_variant_label(key, workload)), line={"color": qualitative.Plotly[index % 10]},
                hovertext=[_esc(f"{r} · {v or ''}") for r, v in zip(points["run_id"], points["toolchain_version"])],
                hoverinfo="x+y+text+name",
            ))
        marks = []
        for change in changes.to_dicts():
            after = group.filter(pl.col("variant_key") == change["variant_key"],
                                 pl.col("run_id") == change["run_after"])
            if not after.is_empty():
                marks.append((change, after["value"][0]))
        if marks:
            fig.add_trace(go.Scatter(
                x=[c["started_at_after"] for c, _ in marks], y=[y for _, y in marks], mode="markers",
                name="change point", marker={"symbol": "x", "size": 13, "color": CHANGE_COLOR},
                hovertext=[_esc(f"{_variant_label(c['variant_key'], workload)}: "
                                f"{c['run_before']} → {c['run_after']}, {c['relative_change']:+.1%}")
                           + "<br>" + "<br>".join(_esc(x) for x in c["causes"])
                           for c, _ in marks],
                hoverinfo="text",
            ))
            for change, y in marks[:MAX_ANNOTATIONS]:
                fig.add_annotation(x=change["started_at_after"], y=y, text=_esc(_short_cause(change)),
                                   showarrow=True, arrowhead=2, ax=0, ay=-36, font={"color": CHANGE_COLOR})
        left_out = f" ({len(keys) - len(drawn)} more variants, without change points, not drawn)" \
            if len(keys) > len(drawn) else ""
        fig.update_layout(
            title={"text": f"{_esc(workload)}: {METRIC_TITLES.get(metric, _esc(metric))} across runs{left_out}"},
            template="plotly_white", height=420, hovermode="closest",
            xaxis={"title": {"text": "run start (UTC)"}}, yaxis={"title": {"text": METRIC_TITLES.get(metric, "")}},
            legend={"title": {"text": "variant"}}, showlegend=True,  # one variant is named too
        )
        figures.append(fig)
    return figures


def _changes_table(changes: pl.DataFrame) -> str:
    if changes.is_empty():
        return "<p>No change points: every series is flat within its own noise.</p>"
    head = "".join(f"<th>{h}</th>" for h in ("workload", "variant", "metric", "runs", "before", "after",
                                              "change", "what changed"))
    rows = []
    for c in changes.sort("started_at_after").to_dicts():
        rows.append(
            "<tr>" + "".join(f"<td>{_esc(v)}</td>" for v in (
                c["workload"], _variant_label(c["variant_key"], c["workload"]), c["metric"],
                f"{c['run_before']} → {c['run_after']}", _number(c["value_before"]), _number(c["value_after"]),
                f"{c['relative_change']:+.1%}"))
            + "<td>" + "<br>".join(_esc(x) for x in c["causes"]) + "</td></tr>")
    return (f'<div class="scroll"><table class="trends"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def trends_html(history: Trends | str, include_plotlyjs: bool = True, metrics=None) -> str:
    """The trends section: ``history`` from slimlab.trends.trends, or a data directory.

    ``include_plotlyjs``: False when the page has plotly.js already (the report's figures)."""
    from slimlab.report.html import PLOTLY_CONFIG

    if not isinstance(history, Trends):
        history = trends(history, metrics)
    runs = history.runs
    parts = ["<h2>Trends</h2>"]
    if runs.height < 2:
        parts.append(f"<p>{runs.height} run: a trend needs two or more.</p>")
        return "\n".join(parts)
    first, last = runs["started_at"].min(), runs["started_at"].max()
    n_series = history.series.select("workload", "variant_key", "metric").n_unique()
    parts.append(
        f'<p class="meta">{runs.height} runs from {_esc(first)} to {_esc(last)}; {n_series} series; '
        f"{history.change_points.height} change points (ruptures Pelt, penalty {PENALTY_BETA:g}·σ²·ln n, "
        "σ from the series' own run-to-run differences), each attributed to what differs between the runs "
        "either side: the variant's Go, the run's tools, its host.</p>")
    parts.append(_changes_table(history.change_points))
    for index, fig in enumerate(trends_figures(history)):
        snippet = fig.to_html(full_html=False, include_plotlyjs=include_plotlyjs and index == 0,
                              config=PLOTLY_CONFIG, default_height="420px")
        parts.append(f'<div class="figure">{snippet}</div>')
    return "\n".join(parts)


def trends_section(path, metrics=None):
    """The report's hook: a callable given whether plotly.js is on the page already."""
    def section(plotly_loaded: bool) -> str:
        with warnings.catch_warnings():  # the report lists the skipped files already, once
            warnings.simplefilter("ignore", DataWarning)
            return trends_html(path, include_plotlyjs=not plotly_loaded, metrics=metrics)
    return section


def display_trends(history: Trends | str, metrics=None) -> None:
    """Show the trends section in a notebook (plain HTML: nbconvert keeps it as it is)."""
    from IPython.display import HTML, display

    from slimlab.report.html import CSS

    display(HTML(f'<div class="slimlab-report"><style>{CSS}</style>{trends_html(history, metrics=metrics)}</div>'))
