"""Frames -> plotly figures. One function per figure; each copes with an empty input.

All text that reaches a figure comes from prep's ``plot_*`` columns, which are already
HTML-escaped, or is a fixed string written here.
"""

from __future__ import annotations

import html

import plotly.graph_objects as go
import polars as pl
from plotly.colors import qualitative

from slimlab.report import prep

# A workload keeps its colour in every figure of a report.
WORKLOAD_PALETTE = qualitative.Plotly
SECTION_COLORS = {
    "text": "#4C78A8",
    "rodata": "#72B7B2",
    "data": "#54A24B",
    "pclntab": "#EECA3B",
    "symtab": "#F58518",
    "dwarf": "#E45756",
    "other": "#B279A2",
    prep.UNATTRIBUTED: "#BAB0AC",
}
SECTION_NAMES = {
    "pclntab": "pclntab (Go line/func tables)",
    "symtab": "symtab + strtab",
    "dwarf": "DWARF debug info",
    prep.UNATTRIBUTED: "unattributed (headers, padding, packed)",
}
EMULATED_SYMBOL = "diamond-open"
EMULATED_PATTERN = "/"

BAR_ROW_PX = 26  # height per horizontal bar, so long sweeps stay legible
BASE_HEIGHT_PX = 170


def _layout(
    fig: go.Figure,
    title: str,
    height: int,
    legend_title: str = "",
    legend_traceorder: str | None = None,
    **layout,
) -> go.Figure:
    """The look every report figure shares; ``layout`` adds figure-specific settings."""
    legend: dict = {"title": {"text": legend_title}}
    if legend_traceorder:
        legend["traceorder"] = legend_traceorder
    fig.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left"},
        template="plotly_white",
        font={"size": 13},
        height=height,
        margin={"l": 20, "r": 90, "t": 70, "b": 60},
        legend=legend,
        **layout,
    )
    return fig


def note_figure(title: str, message: str) -> go.Figure:
    """A blank figure that says why there is nothing to plot (e.g. every variant failed)."""
    fig = go.Figure()
    fig.add_annotation(
        text=html.escape(message),
        showarrow=False,
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        font={"size": 15, "color": "#666"},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, 240)


def _colors(df: pl.DataFrame) -> dict[str, str]:
    """Escaped workload name -> colour, from every workload of the frame (plotted or not),
    so that one workload has the same colour in each figure."""
    ordered = sorted(set(prep.with_labels(df)["plot_group"].to_list()))
    return {g: WORKLOAD_PALETTE[i % len(WORKLOAD_PALETTE)] for i, g in enumerate(ordered)}


def _name(part: pl.DataFrame, suffix: str = "") -> str:
    """Trace name: the group's shortened (escaped) workload name."""
    return part["plot_group_name"][0] + suffix


def _bar_height(n_rows: int, min_rows: int = 3) -> int:
    """Figure height for ``n_rows`` horizontal bars; ``min_rows`` leaves room for a legend."""
    return BASE_HEIGHT_PX + BAR_ROW_PX * max(n_rows, min_rows)


def _category_axis(data: pl.DataFrame) -> dict:
    """A category axis over the frame's unique labels, showing their shortened ticks."""
    ticks = data.select("plot_label", "plot_tick").unique("plot_label", maintain_order=True)
    labels = ticks["plot_label"].to_list()
    # Reversed so the first row of the frame is the top bar, as a table reads.
    return {
        "type": "category",
        "categoryorder": "array",
        "categoryarray": labels,
        "tickmode": "array",
        "tickvals": labels,
        "ticktext": ticks["plot_tick"].to_list(),
        "autorange": "reversed",
        "automargin": True,
        "title": None,
    }


def size_bars(df: pl.DataFrame) -> go.Figure:
    """Binary file size per variant, one colour per workload."""
    title = "Binary size per variant"
    data = prep.sizes(df)
    if data.is_empty():
        return note_figure(title, "No successfully built and checked variant to show.")
    colors = _colors(df)
    fig = go.Figure()
    for (group,), part in data.group_by("plot_group", maintain_order=True):
        fig.add_bar(
            name=_name(part),
            orientation="h",
            cliponaxis=False,  # let "12.3 MiB" run past the last gridline
            y=part["plot_label"].to_list(),
            x=part["plot_size_mib"].to_list(),
            marker_color=colors[group],
            text=[f"{v:.2f} MiB" for v in part["plot_size_mib"]],
            textposition="outside",
            customdata=list(zip(part["size_bytes"], part["plot_size_share"])),
            hovertemplate=(
                "%{y}<br>%{customdata[0]:,} bytes (%{x:.2f} MiB)"
                "<br>%{customdata[1]:.0%} of the largest variant of this workload<extra></extra>"
            ),
        )
    fig.update_yaxes(**_category_axis(data))
    fig.update_xaxes(title="File size (MiB)", rangemode="tozero")
    # Overlay, not group: each label has exactly one bar, so grouping would only shift
    # and thin the bars by the number of workloads.
    return _layout(
        fig, title, _bar_height(data.height), barmode="overlay", legend_title="workload"
    )


def startup_scatter(df: pl.DataFrame) -> go.Figure:
    """Size against start-up median, error bars ±IQR/2; emulated runs get their own marker."""
    title = "Size vs start-up time"
    data = prep.startup(df)
    if data.is_empty():
        return note_figure(title, "No start-up measurements to show.")
    colors = _colors(df)
    fig = go.Figure()
    for (group, emulated), part in data.group_by(
        ["plot_group", "plot_emulated"], maintain_order=True
    ):
        fig.add_scatter(
            name=_name(part, " (emulated)" if emulated else ""),
            x=part["plot_size_mib"].to_list(),
            y=part["startup_ms_median"].to_list(),
            error_y={
                "type": "data",
                "array": part["plot_startup_half_iqr"].to_list(),
                "visible": True,
                "thickness": 1.2,
            },
            mode="markers+text" if emulated else "markers",
            # Emulated timings are QEMU's, not the target CPU's: say so on the point.
            text=["emulated"] * part.height if emulated else None,
            textposition="top right",
            textfont={"size": 11, "color": "#666"},
            marker={
                "color": colors[group],
                "size": 11,
                "symbol": EMULATED_SYMBOL if emulated else "circle",
                "line": {"width": 2 if emulated else 0.5, "color": colors[group]},
            },
            customdata=list(
                zip(
                    part["plot_label"],
                    part["startup_ms_iqr"].fill_null(float("nan")),
                    part["startup_n"].cast(pl.String).fill_null("?"),
                    part["plot_runner"],
                    ["yes (QEMU, not native timing)" if emulated else "no"] * part.height,
                )
            ),
            hovertemplate=(
                "%{customdata[0]}<br>size %{x:.2f} MiB<br>start-up median %{y:.2f} ms"
                "<br>IQR %{customdata[1]:.2f} ms, n = %{customdata[2]}"
                "<br>runner %{customdata[3]}, emulated: %{customdata[4]}<extra></extra>"
            ),
        )
    fig.update_xaxes(title="File size (MiB)", rangemode="tozero")
    fig.update_yaxes(title="Start-up, median (ms); bars ±IQR/2", rangemode="tozero")
    return _layout(fig, title, 520, legend_title="workload")


def section_bars(df: pl.DataFrame) -> go.Figure:
    """ELF file bytes per section, stacked per variant. bss takes no file bytes: not shown."""
    title = "ELF sections per variant (file bytes; bss is memory-only and not shown)"
    data = prep.sections(df)
    if data.is_empty():
        return note_figure(title, "No section data to show.")
    fig = go.Figure()
    for section in (*prep.FILE_SECTIONS, prep.UNATTRIBUTED):
        part = data.filter(pl.col("section") == section)
        if part["bytes"].sum() == 0:
            continue  # an all-zero trace only clutters the legend
        fig.add_bar(
            name=SECTION_NAMES.get(section, section),
            orientation="h",
            y=part["plot_label"].to_list(),
            x=part["plot_mib"].to_list(),
            marker_color=SECTION_COLORS[section],
            customdata=list(zip(part["bytes"], part["plot_share"])),
            hovertemplate=(
                f"%{{y}}<br>{section}: %{{customdata[0]:,}} bytes"
                " (%{customdata[1]:.1%} of the file)<extra></extra>"
            ),
        )
    fig.update_yaxes(**_category_axis(data))
    fig.update_xaxes(title="File bytes per section (MiB)", rangemode="tozero")
    return _layout(
        fig,
        title,
        # Up to 8 legend entries (the sections) must fit beside even a single bar.
        _bar_height(data["plot_label"].n_unique(), min_rows=len(SECTION_COLORS)),
        barmode="stack",
        legend_title="section",
        legend_traceorder="normal",  # text first, as the stacks read left to right
    )


def rss_bars(df: pl.DataFrame) -> go.Figure:
    """Peak RSS median per variant; emulated rows hatched, as their RSS includes QEMU."""
    title = "Peak memory (RSS) per variant"
    data = prep.memory(df)
    if data.is_empty():
        return note_figure(title, "No memory measurements to show.")
    colors = _colors(df)
    fig = go.Figure()
    for (group, emulated), part in data.group_by(
        ["plot_group", "plot_emulated"], maintain_order=True
    ):
        fig.add_bar(
            name=_name(part, " (emulated: includes QEMU)" if emulated else ""),
            orientation="h",
            y=part["plot_label"].to_list(),
            x=part["plot_rss_mib"].to_list(),
            error_x={"type": "data", "array": part["plot_rss_half_iqr_mib"].to_list()},
            marker={
                "color": colors[group],
                "pattern": {"shape": EMULATED_PATTERN if emulated else ""},
            },
            customdata=list(
                zip(
                    part["peak_rss_kib_median"],
                    part["peak_rss_kib_max"].cast(pl.Float64).fill_null(float("nan")),
                    part["startup_n"].cast(pl.String).fill_null("?"),
                )
            ),
            hovertemplate=(
                "%{y}<br>peak RSS median %{customdata[0]:,.0f} KiB (%{x:.1f} MiB)"
                "<br>max %{customdata[1]:,.0f} KiB, n = %{customdata[2]}<extra></extra>"
            ),
        )
    fig.update_yaxes(**_category_axis(data))
    fig.update_xaxes(title="Peak RSS, median (MiB); bars ±IQR/2", rangemode="tozero")
    return _layout(fig, title, _bar_height(data.height), barmode="overlay", legend_title="workload")


# The table figure lists every row, failed ones with their status and reason.
TABLE_COLUMNS = (
    ("variant", "plot_label"),
    ("status", "plot_status"),
    ("reason", "plot_reason"),
    ("size (bytes)", "size_bytes"),
    ("start-up median (ms)", "startup_ms_median"),
    ("start-up IQR (ms)", "startup_ms_iqr"),
    ("n", "startup_n"),
    ("peak RSS median (KiB)", "peak_rss_kib_median"),
    ("emulated", "emulated"),
)


def results_table(df: pl.DataFrame) -> go.Figure:
    """Every row of the frame as a plotly table (the HTML report uses an HTML table)."""
    title = "All variants"
    data = prep.with_labels(df)
    if data.is_empty():
        return note_figure(title, "The results frame is empty.")
    data = data.with_columns(
        prep.escape_text(pl.col("status").fill_null("?")).alias("plot_status"),
        prep.escape_text(pl.col("reason").fill_null("")).alias("plot_reason"),
    )
    cells = []
    for _, column in TABLE_COLUMNS:
        values = data[column]
        if values.dtype.is_float():
            values = values.round(2)
        cells.append(values.cast(pl.String).fill_null("").to_list())
    fig = go.Figure(
        go.Table(
            header={"values": [name for name, _ in TABLE_COLUMNS], "align": "left"},
            cells={"values": cells, "align": "left"},
            columnwidth=[4, 1.2, 3, 1.2, 1.2, 1.2, 0.6, 1.4, 0.9],
        )
    )
    return _layout(fig, title, 160 + 32 * min(data.height, 30))


def report_figures(df: pl.DataFrame) -> list[go.Figure]:
    """The figures of the HTML report, in display order."""
    return [size_bars(df), section_bars(df), startup_scatter(df), rss_bars(df)]
