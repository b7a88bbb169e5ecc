"""Frames -> plotly figures. One function per figure; each copes with an empty input.

All text that reaches a figure comes from prep's ``plot_*`` columns, which are already
HTML-escaped, or is a fixed string written here.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go
import polars as pl
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from slimlab import analysis
from slimlab.report import prep
from slimlab.results_schema import SECTION_GROUP_MEMBERS

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
    # A group holds more than its name says (results_schema.SECTION_GROUP_MEMBERS); the
    # hover lists every member, the legend names the surprising ones.
    "text": "text (+ .plt, .init, .fini)",
    "rodata": "rodata (+ .typelink, .itablink, .go.buildinfo, ...)",
    "data": "data (+ .got, .dynamic, ...)",
    "pclntab": "pclntab (Go line/func tables)",
    "symtab": "symtab + strtab",
    "dwarf": "DWARF debug info",
    prep.UNATTRIBUTED: "unattributed (headers, padding, packed)",
}
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
    legend: dict = {"title": {"text": legend_title}, **layout.pop("legend", {})}
    if legend_traceorder:
        legend["traceorder"] = legend_traceorder
    fig.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left"},
        template="plotly_white",
        font={"size": 13},
        height=height,
        margin=layout.pop("margin", {"l": 20, "r": 90, "t": 70, "b": 60}),
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


# -- facets: one panel per (workload, target, emulated or not), stacked -----------------
FACET_GAP_PX = 70  # between stacked panels: the panel's title above, the x ticks of the one before
SCATTER_FACET_PX = 380
MARGIN_TOP_PX, MARGIN_BOTTOM_PX = 100, 60
FACET_MARGIN = {"l": 20, "r": 90, "t": MARGIN_TOP_PX, "b": MARGIN_BOTTOM_PX}


# Trace data goes to plotly as numpy arrays, not lists: plotly then skips its per-element
# validation (7x faster at 1,000 variants) and writes numbers as base64 typed arrays.
def _values(values: pl.Series) -> np.ndarray:
    """A numeric column for plotting: float32 (7 digits, more than any axis or hover shows,
    4 bytes a value in the report); a null becomes NaN, a gap."""
    return values.cast(pl.Float32).to_numpy()


def _custom(*columns: pl.Series) -> np.ndarray:
    """Hover data, one row per point: numbers as float64 (byte counts stay exact)."""
    return np.column_stack([c.cast(pl.Float64).to_numpy() for c in columns])


def _texts(values: pl.Series) -> np.ndarray:
    return values.cast(pl.String).to_numpy()


def facets(data: pl.DataFrame, timed: bool = False) -> list[tuple[str, pl.DataFrame]]:
    """(escaped panel title, rows) per facet, in the frame's order (prep sorts by facet).
    ``timed``: a figure of measurements (start-up, memory) has a panel per measuring host too."""
    if timed:
        return [(part["plot_timed_facet"][0], part)
                for _, part in data.group_by(list(prep.TIMED_FACET_ORDER), maintain_order=True)]
    return [(part["plot_facet"][0], part)
            for _, part in data.group_by(list(prep.FACET_ORDER), maintain_order=True)]


def _stacked(panels: list[tuple[str, int]], x_title: str) -> go.Figure:
    """Panels stacked in one column, each ``px`` tall in the plot area with its own x axis
    (never shared: an emulated CPU's milliseconds are not native ones)."""
    heights = [px for _, px in panels]
    area = sum(heights) + FACET_GAP_PX * (len(panels) - 1)
    fig = make_subplots(rows=len(panels), cols=1, row_heights=heights, subplot_titles=[t for t, _ in panels],
                        vertical_spacing=FACET_GAP_PX / area if len(panels) > 1 else 0)
    for annotation in fig.layout.annotations:  # panel titles: left-aligned, as headings read
        annotation.update(x=0, xanchor="left", font={"size": 13})
    fig.update_xaxes(rangemode="tozero")
    fig.update_xaxes(title=x_title, row=len(panels), col=1)
    fig.layout.height = area + MARGIN_TOP_PX + MARGIN_BOTTOM_PX
    return fig


def _facet_axis(part: pl.DataFrame) -> dict:
    """A panel's category axis: one tick per row, first row on top; tick text only where a
    label had to be cut (the categories themselves are the full labels)."""
    axis = {"type": "category", "categoryorder": "array", "autorange": "reversed", "automargin": True,
            "categoryarray": part["plot_short"].unique(maintain_order=True).to_list()}
    if (part["plot_short"] != part["plot_short_tick"]).any():
        ticks = part.select("plot_short", "plot_short_tick").unique("plot_short", maintain_order=True)
        axis.update(tickmode="array", tickvals=ticks["plot_short"].to_list(), ticktext=ticks["plot_short_tick"].to_list())
    return axis


def _bar_panels(data: pl.DataFrame, label_column: str = "plot_short",
                timed: bool = False) -> list[tuple[str, pl.DataFrame, int]]:
    return [(title, part, BAR_ROW_PX * max(part[label_column].n_unique(), 2))
            for title, part in facets(data, timed)]


def size_bars(df: pl.DataFrame) -> go.Figure:
    """Binary file size per variant, a panel per workload and target, smallest first."""
    title = "Binary size per variant (MiB), smallest first; a panel per workload and target"
    data = prep.sizes(df)
    if data.is_empty():
        return note_figure(title, "No successfully built and checked variant to show.")
    colors = _colors(df)
    panels = _bar_panels(data)
    fig = _stacked([(t, px) for t, _, px in panels], "File size (MiB)")
    for row, (_, part, _) in enumerate(panels, start=1):
        fig.add_bar(
            row=row, col=1, name=part["plot_facet"][0], showlegend=False, orientation="h",
            cliponaxis=False,  # let "12.3 MiB" run past the last gridline
            y=_texts(part["plot_short"]), x=_values(part["plot_size_mib"]),
            marker_color=colors[part["plot_group"][0]],
            texttemplate="%{x:.2f} MiB", textposition="outside",
            customdata=_custom(part["size_bytes"], part["plot_size_share"]),
            hovertemplate=(
                "%{y}<br>%{customdata[0]:,} bytes (%{x:.2f} MiB)"
                "<br>%{customdata[1]:.0%} of the largest variant of this panel's workload<extra>%{fullData.name}</extra>"
            ),
        )
        fig.update_yaxes(row=row, col=1, **_facet_axis(part))
    return _layout(fig, title, fig.layout.height, barmode="overlay", showlegend=False, margin=FACET_MARGIN)


# The scatter's three kinds of point: (name, named on the plot, colour it, marker size)
FRONT_KINDS = {
    2: ("on the size/start-up frontier", True, True, 11),
    1: ("on the frontier only with memory", False, True, 8),
    0: ("dominated", False, False, 7),
}


def startup_scatter(df: pl.DataFrame) -> go.Figure:
    """Size against start-up median (bars ±IQR/2), a panel per workload and target, with the
    Pareto frontier (slimlab.analysis.pareto_mask): the line steps through the variants no
    other beats on size and start-up, which are named; those no other beats once peak memory
    counts too are coloured; the dominated ones are grey. Emulated targets get panels of
    their own: their milliseconds are QEMU's; so does each measuring host."""
    title = ("Size vs start-up of the builds: the Pareto frontier per workload and target (named: no build is "
             "smaller and faster; images: see the container table)")
    data = prep.startup(df)
    if data.is_empty():
        return note_figure(title, "No start-up measurements to show.")
    colors = _colors(df)
    panels = facets(data, timed=True)
    fig = _stacked([(t, SCATTER_FACET_PX) for t, _ in panels], "File size (MiB)")
    shown: set[str] = set()  # each kind of point once in the legend
    for row, (_, part) in enumerate(panels, start=1):
        two = analysis.pareto_mask(part, ["size_bytes", "startup_ms_median"])
        # Memory joins the objectives where the panel has any (QEMU user mode leaves it empty),
        # as the answers rank them (slimlab.analysis.answer_rows).
        three = (analysis.pareto_mask(part, ["size_bytes", "startup_ms_median", "peak_rss_kib_median"])
                 if part["peak_rss_kib_median"].is_not_null().any() else two)
        part = part.with_columns(pl.Series("plot_front", two.cast(pl.Int8) + (two | three).cast(pl.Int8)))
        colour = colors[part["plot_group"][0]]
        for kind in (0, 1, 2):  # the frontier drawn last, on top
            points = part.filter(pl.col("plot_front") == kind).sort("size_bytes")
            if points.is_empty():
                continue
            name, named, coloured, size = FRONT_KINDS[kind]
            fig.add_scatter(
                row=row, col=1, name=name, legendgroup=name, showlegend=name not in shown,
                x=_values(points["plot_size_mib"]), y=_values(points["startup_ms_median"]),
                error_y={"type": "data", "array": _values(points["plot_startup_half_iqr"]), "visible": True,
                         "thickness": 1, "color": colour if coloured else "#d0d0d0"},
                mode="markers+text" if named else "markers", text=_texts(points["plot_short"]),
                # Neighbours on the frontier take turns above and below, so close names do not overprint.
                textposition=[("top right", "bottom right")[i % 2] for i in range(points.height)],
                textfont={"size": 11, "color": "#222"},
                marker={"color": colour if coloured else "#c8c8c8", "size": size,
                        "line": {"width": 1, "color": "#222"} if named else {"width": 0}},
                customdata=_custom(points["peak_rss_kib_median"], points["startup_n"]),
                hovertemplate=("%{text}<br>size %{x:.2f} MiB<br>start-up median %{y:.2f} ms"
                               "<br>peak RSS %{customdata[0]:,.0f} KiB, n = %{customdata[1]}"
                               "<br>%{fullData.name}<extra></extra>"),
            )
            shown.add(name)
        front = part.filter(pl.col("plot_front") == 2).sort("size_bytes")
        fig.add_scatter(row=row, col=1, showlegend=False, name="frontier (size, start-up)",
                        x=_values(front["plot_size_mib"]), y=_values(front["startup_ms_median"]), mode="lines",
                        line={"shape": "hv", "color": colour, "width": 1.5}, hoverinfo="skip")
        emulated = bool(part["plot_emulated"][0])
        fig.update_yaxes(row=row, col=1, rangemode="tozero",
                         title="QEMU's ms (median)" if emulated else "start-up, median (ms)")
    return _layout(fig, title, fig.layout.height, margin=FACET_MARGIN,
                   legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1, "yanchor": "bottom"})


def _members(section: str) -> str:
    return SECTION_GROUP_MEMBERS.get(section, "file bytes no section header accounts for")


def section_bars(df: pl.DataFrame) -> go.Figure:
    """ELF file bytes per section, stacked per variant, a panel per workload and target.
    bss takes no file bytes: not shown."""
    title = "ELF sections per variant (file bytes, MiB; bss is memory-only and not shown)"
    data = prep.sections(df)
    if data.is_empty():
        return note_figure(title, "No section data to show.")
    panels = _bar_panels(data)
    # Up to 8 legend entries (the sections) must fit beside even a single panel.
    fig = _stacked([(t, max(px, BAR_ROW_PX * len(SECTION_COLORS) // len(panels))) for t, _, px in panels],
                   "File bytes per section (MiB)")
    in_legend = set()
    for row, (_, part, _) in enumerate(panels, start=1):
        for section in (*prep.FILE_SECTIONS, prep.UNATTRIBUTED):
            rows = part.filter(pl.col("section") == section)
            if rows["bytes"].sum() == 0:
                continue  # an all-zero trace only clutters the legend
            fig.add_bar(
                row=row, col=1, name=SECTION_NAMES.get(section, section), legendgroup=section,
                showlegend=section not in in_legend, orientation="h",
                y=_texts(rows["plot_short"]), x=_values(rows["plot_mib"]),
                marker_color=SECTION_COLORS[section],
                customdata=_values(rows["plot_share"]),  # bytes: the table has them exactly
                hovertemplate=(
                    f"%{{y}}<br>{section}: %{{x:.3f}} MiB"
                    " (%{customdata:.1%} of the file)"
                    f"<br>{html.escape(_members(section))}<extra></extra>"
                ),
            )
            in_legend.add(section)
        fig.update_yaxes(row=row, col=1, **_facet_axis(part))
    return _layout(fig, title, fig.layout.height, barmode="stack", legend_title="section",
                   legend_traceorder="normal", margin=FACET_MARGIN)  # text first, as the stacks read left to right


IMAGE_KIND_STYLE = {  # kind: (legend name, colour)
    "binary": ("the Go binary", "#4C78A8"),
    "libs": ("its own libraries (beyond glibc)", "#B279A2"),
    "ca_bundle": ("CA bundle (TLS roots)", "#54A24B"),
    "zoneinfo": ("zoneinfo (time zones)", "#EECA3B"),
    "libc": ("glibc and loader", "#E45756"),
    "rest": ("rest of the base (users, config, licences, shell)", "#BAB0AC"),
}


def image_bars(df: pl.DataFrame) -> go.Figure:
    """Image size per variant and base, stacked by what the bytes are, with the compressed
    size a registry transfers; the hover adds dive's layer efficiency and wasted bytes, and
    the container's start-up and memory against the same build run bare."""
    title = "Image size per variant and base (uncompressed, stacked by what the bytes are; ◆ compressed)"
    data = prep.images(df)
    if data.is_empty():
        return note_figure(title, "No images in these runs (spec: bases = [\"scratch\", \"static\", ...]).")
    # The full hover rides on the compressed marker only: on every stacked bar it would repeat
    # the same numbers once per kind of bytes.
    hover = _custom(data["image_size_bytes"], data["image_compressed_bytes"], data["plot_startup_ratio"],
                    data["plot_rss_ratio"], data["plot_efficiency_pct"], data["image_wasted_bytes"],
                    data["cgroup_peak_kib_median"])
    template = ("%{y}<br>%{customdata[0]:,} bytes, %{customdata[1]:,.0f} compressed (%{x:.2f} MiB)"
                "<br>layer efficiency %{customdata[4]:.1f}%, wasted %{customdata[5]:,.0f} bytes (dive's definitions)"
                "<br>container start-up %{customdata[2]:.1f}× bare, program peak RSS %{customdata[3]:.2f}× bare, "
                "container cgroup peak %{customdata[6]:,.0f} KiB<extra></extra>")
    data = data.with_columns(pl.Series("_row", range(data.height)))
    panels = _bar_panels(data)
    fig = _stacked([(t, px) for t, _, px in panels], "Image size (MiB)")
    in_legend = set()
    for row, (_, part, _) in enumerate(panels, start=1):
        for kind in prep.IMAGE_KINDS:
            column = f"plot_{kind}_mib"
            if not (data[column].fill_null(0) > 0).any():
                continue  # a kind no image here has (e.g. glibc without a libc base)
            name, colour = IMAGE_KIND_STYLE[kind]
            fig.add_bar(row=row, col=1, name=name, legendgroup=kind, showlegend=kind not in in_legend,
                        orientation="h", y=_texts(part["plot_short"]), x=_values(part[column]), marker_color=colour,
                        hovertemplate="%{y}<br>%{fullData.name}: %{x:.2f} MiB<extra></extra>")
            in_legend.add(kind)
        fig.add_scatter(row=row, col=1, name="compressed (what a registry transfers)", legendgroup="compressed",
                        showlegend=row == 1, mode="markers", y=_texts(part["plot_short"]),
                        x=_values(part["plot_compressed_mib"]),
                        marker={"symbol": "diamond", "size": 9, "color": "#222"},
                        customdata=hover[part["_row"].to_numpy()], hovertemplate=template)
        fig.update_yaxes(row=row, col=1, **_facet_axis(part))
    return _layout(fig, title, fig.layout.height, barmode="stack", legend_title="bytes", margin=FACET_MARGIN)


def cross_cpu_panel(df: pl.DataFrame) -> go.Figure:
    """Per target CPU: file size, the program's own peak RSS beside the native
    target's, and start-up relative to the same CPU's build without post-link."""
    title = "Across CPUs: file size, the program's own peak RSS, start-up relative to the same CPU's baseline"
    data = prep.cross_cpu(df)
    if data.is_empty():
        return note_figure(title, "One target CPU in these runs (spec: targets = [\"linux/amd64\", \"linux/arm64\"]).")
    labels = _texts(data["plot_label"])
    fig = make_subplots(rows=1, cols=3, shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=("file size (MiB)", "program's peak RSS (MiB)",
                                        "start-up ÷ same CPU, no post-link"))
    # One bar of file size: the split by section is the section figure's, a panel per target.
    fig.add_bar(name="file size", orientation="h", y=labels, x=_values(data["size_bytes"] / prep.MIB),
                marker_color="#72B7B2", showlegend=False,
                hovertemplate="%{y}<br>%{x:.2f} MiB (by section: the section figure)<extra></extra>", row=1, col=1)
    runner = data["runner"].fill_null("?").map_elements(html.escape, return_dtype=pl.String)
    fig.add_bar(name="peak RSS (program's own)", orientation="h", y=labels, x=_values(data["plot_rss_mib"]),
                marker_color="#4C78A8", showlegend=False,
                customdata=np.column_stack([_values(data["plot_rss_vs_native"]), _texts(runner)]),
                hovertemplate="%{y}<br>%{x:.2f} MiB, %{customdata[0]:.2f}× the native target's"
                              "<br>measured by %{customdata[1]}<extra></extra>", row=1, col=2)
    fig.add_bar(name="start-up ratio", orientation="h", y=labels, x=_values(data["plot_startup_rel"]),
                marker_color="#F58518", showlegend=False,
                customdata=_custom(data["startup_ms_median"]),
                hovertemplate="%{y}<br>%{x:.2f}× the same CPU's build without post-link"
                              "<br>(%{customdata[0]:.1f} ms of the CPU's own clock or its emulator's)"
                              "<extra></extra>",
                row=1, col=3)
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    return _layout(fig, title, _bar_height(data.height), showlegend=False)


def platform_bars(df: pl.DataFrame) -> go.Figure:
    """Multi-arch images: each image's size per platform side by side, with what a registry
    stores (config and gzip layers) and the OCI index digest over its platforms."""
    title = "Multi-arch images: size per platform (bars: uncompressed; ◆ stored compressed), and the index"
    data = prep.platform_images(df)
    if data.is_empty():
        return note_figure(title, "No multi-arch images in these runs (spec: several targets and a base).")
    fig = go.Figure()
    for n, (platform,) in enumerate(data.select("plot_platform").unique(maintain_order=True).iter_rows()):
        part = data.filter(pl.col("plot_platform") == platform)
        hover = list(zip(part["image_size_bytes"], part["oci_image_bytes"].cast(pl.Float64).fill_null(float("nan")),
                         part["plot_index"], part["plot_platform"]))
        template = ("%{y}<br>%{customdata[3]}: %{customdata[0]:,} bytes, %{customdata[1]:,.0f} stored compressed"
                    "<br>OCI index %{customdata[2]}<extra></extra>")
        colour = WORKLOAD_PALETTE[n % len(WORKLOAD_PALETTE)]
        fig.add_bar(name=platform, orientation="h", y=part["plot_image"].to_list(), x=part["plot_image_mib"].to_list(),
                    marker_color=colour, customdata=hover, hovertemplate=template, legendgroup=platform)
        fig.add_scatter(name=f"{platform} compressed", mode="markers", y=part["plot_image"].to_list(),
                        x=part["plot_oci_mib"].to_list(), marker={"symbol": "diamond", "size": 8, "color": colour,
                                                                   "line": {"color": "#222", "width": 1}},
                        customdata=hover, hovertemplate=template, legendgroup=platform, showlegend=False)
    images = data.select("plot_image", "plot_index").unique(maintain_order=True)
    fig.update_yaxes(autorange="reversed", tickmode="array", tickvals=images["plot_image"].to_list(),
                     ticktext=[f"{i} · index {d}" for i, d in images.iter_rows()])
    fig.update_xaxes(title="Image size (MiB)", rangemode="tozero")
    return _layout(fig, title, _bar_height(data.height), barmode="group", legend_title="platform")


CONTAINER_COLUMNS = (
    ("variant", "plot_label"),
    ("status", "plot_status"),
    ("plain run", "plot_plain"),
    ("hardened run", "plot_hardened"),
    ("start-up (ms)", "plot_startup_ms"),
    ("× bare", "plot_startup_x"),
    ("program peak RSS (KiB)", "plot_rss_kib"),
    ("× bare", "plot_rss_x"),
    ("container cgroup peak (KiB)", "plot_cgroup_kib"),
    ("why", "plot_container_reason"),
)


def container_table(df: pl.DataFrame) -> go.Figure:
    """Per image: does it work in a confined container (older runs: also a plain one), and what the container
    costs over the bare binary in start-up and memory."""
    # Since every container is confined, one check fills both columns; runs by older slimlab
    # versions checked a plain container too, and there the two can differ.
    title = ("Containers: does each image work confined (user 65532, read-only root, no capabilities, "
             "no new privileges, memory and pids limits; older runs: also plain), start-up and memory "
             "against bare")
    data = prep.containers(df)
    if data.is_empty():
        return note_figure(title, "No images in these runs (spec: bases = [\"scratch\", \"static\", ...]).")
    cells = [data[column].cast(pl.String).fill_null("").to_list() for _, column in CONTAINER_COLUMNS]
    fig = go.Figure(go.Table(
        header={"values": [name for name, _ in CONTAINER_COLUMNS], "align": "left"},
        cells={"values": cells, "align": "left"},
        columnwidth=[5, 1, 1, 1.3, 1, 0.8, 1.2, 0.8, 1.3, 4],
    ))
    return _layout(fig, title, 160 + 32 * min(data.height, 30))


def rss_bars(df: pl.DataFrame) -> go.Figure:
    """Peak RSS median per variant, a panel per workload and target, lowest first. Rows
    whose figure is QEMU user mode's process (older runs: newer ones keep it apart, as
    emulator_peak_rss_kib_median) are hatched and say so; a full-system guest's figure is
    the program's own."""
    title = "Peak memory (RSS) per variant (MiB, median; bars ±IQR/2), lowest first"
    data = prep.memory(df)
    if data.is_empty():
        return note_figure(title, "No memory measurements to show.")
    colors = _colors(df)
    panels = _bar_panels(data, timed=True)
    fig = _stacked([(t, px) for t, _, px in panels], "Peak RSS, median (MiB)")
    for row, (_, part, _) in enumerate(panels, start=1):
        for (emulated,), rows in part.group_by(["plot_emulator_rss"], maintain_order=True):
            fig.add_bar(
                row=row, col=1, showlegend=False, orientation="h",
                name=part["plot_timed_facet"][0] + (" (QEMU user mode: includes QEMU)" if emulated else ""),
                y=_texts(rows["plot_short"]), x=_values(rows["plot_rss_mib"]),
                error_x={"type": "data", "array": _values(rows["plot_rss_half_iqr_mib"])},
                marker={"color": colors[part["plot_group"][0]],
                        "pattern": {"shape": EMULATED_PATTERN if emulated else ""}},
                customdata=_custom(rows["peak_rss_kib_median"], rows["peak_rss_kib_max"], rows["startup_n"]),
                hovertemplate=("%{y}<br>peak RSS median %{customdata[0]:,.0f} KiB (%{x:.1f} MiB)"
                               "<br>max %{customdata[1]:,.0f} KiB, n = %{customdata[2]}"
                               "<br>%{fullData.name}<extra></extra>"),
            )
        fig.update_yaxes(row=row, col=1, **_facet_axis(part))
    return _layout(fig, title, fig.layout.height, barmode="overlay", showlegend=False, margin=FACET_MARGIN)


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


def postlink_panel(df: pl.DataFrame) -> go.Figure:
    """The UPX panel: each chain's size ratio against its start-up and peak-RSS ratios.

    Every ratio is against the same build without a post-link chain ("none"), so 0.4 on
    the x axis means the chain left 40% of the file, and 6 on a y axis means six times the
    start-up time (or memory) of the unpacked program.
    """
    title = "Post-link chains (UPX panel): what the bytes saved cost, against the same build unchained"
    data = prep.postlink_costs(df)
    if data.is_empty():
        return note_figure(title, "No post-linked variant with a measured 'none' chain of the same build "
                                  "to compare with (add 'none' to the postlink axis).")
    colors = _colors(df)
    # A row of panels per target: an emulated CPU's ratios (QEMU unpacking UPX) are not native ones;
    # and per measuring host, when there are several: one machine's ratios are not another's.
    targets = (data.select("plot_emulated", "target", "plot_host").unique(maintain_order=True)
               .sort("plot_emulated", "target", "plot_host"))
    several_hosts = prep.n_hosts(df) > 1
    titles = []
    for emulated, target, host in targets.iter_rows():
        name = html.escape(target or "?") + (" (emulated)" if emulated else "")
        name += f" · measured on {host}" if several_hosts else ""  # plot_host is escaped already
        titles += [f"{name}: start-up (median) vs none", f"{name}: peak RSS (median) vs none"]
    fig = make_subplots(rows=targets.height, cols=2, horizontal_spacing=0.09, subplot_titles=titles,
                        vertical_spacing=0.12 / max(targets.height - 1, 1) if targets.height > 1 else 0.0)
    shown = set()
    for row, (emulated, target, host) in enumerate(targets.iter_rows(), start=1):
        mine = data.filter(pl.col("plot_emulated") == emulated, pl.col("target").eq_missing(target),
                           pl.col("plot_host") == host)
        for (group, profile, is_upx), part in mine.group_by(["plot_group", "plot_profile", "plot_is_upx"],
                                                            maintain_order=True):
            custom = np.column_stack([_texts(part["plot_label"]),
                                      _custom(part["size_bytes"], part["plot_startup_delta_ms"],
                                              part["plot_rss_delta_kib"]).astype(object)])
            key = f"{group}|{profile}|{is_upx}"
            for col, metric in ((1, "plot_startup_ratio"), (2, "plot_rss_ratio")):
                fig.add_scatter(
                    row=row, col=col,
                    name=_name(part, f" · {profile}" + ("" if is_upx else " (no UPX)")),
                    legendgroup=key,
                    showlegend=col == 1 and key not in shown,
                    x=_values(part["plot_size_ratio"]),
                    y=_values(part[metric]),
                    mode="markers+text",
                    text=_texts(part["plot_chain"]),
                    textposition="top center",
                    textfont={"size": 10, "color": "#555"},
                    marker={"color": colors[group], "size": 10,
                            "symbol": "circle" if is_upx else "square-open",
                            "line": {"width": 1.5, "color": colors[group]}},
                    customdata=custom,
                    hovertemplate=(
                        "%{customdata[0]}<br>size %{customdata[1]:,} bytes = %{x:.1%} of none"
                        "<br>start-up %{customdata[2]:+.2f} ms, peak RSS %{customdata[3]:+,.0f} KiB vs none"
                        "<br>ratio %{y:.2f}<extra></extra>"
                    ),
                )
            shown.add(key)
        fig.update_yaxes(title="Start-up median / none", rangemode="tozero", row=row, col=1)
        fig.update_yaxes(title="Peak RSS median / none", rangemode="tozero", row=row, col=2)
        for col in (1, 2):  # the "costs nothing" line
            fig.add_hline(y=1.0, line={"dash": "dot", "color": "#999", "width": 1}, row=row, col=col)
    fig.update_xaxes(title="File size / size without a chain", tickformat=".0%", rangemode="tozero")
    return _layout(fig, title, 160 + 400 * targets.height, legend_title="workload · profile")


HARDENING_COLUMNS = (
    ("variant", "plot_label"),
    ("status", "plot_status"),
    ("PIE", "plot_pie"),
    ("RELRO", "plot_relro"),
    ("NX stack", "plot_nx"),
    ("canary", "plot_canary"),
    ("linking", "plot_linking"),
    ("DWARF (KiB)", "plot_dwarf_kib"),
    (".symtab", "plot_symtab"),
    ("leaked build paths", "plot_leaked"),
    ("Go build ID", "plot_buildid"),
    ("Go (buildinfo)", "plot_go_version"),
    ("UPX-packed", "plot_packed"),
)


def hardening_table(df: pl.DataFrame) -> go.Figure:
    """Hardening (PIE, RELRO, NX, canary, linking) and residue (DWARF, symtab, paths, build ID)."""
    title = "Hardening and residue per variant ('?': the file does not show it, e.g. UPX-packed)"
    data = prep.hardening(df)
    if data.is_empty():
        return note_figure(title, "No inspected binary to show.")
    cells = [data[column].cast(pl.String).fill_null("").to_list() for _, column in HARDENING_COLUMNS]
    fig = go.Figure(go.Table(
        header={"values": [name for name, _ in HARDENING_COLUMNS], "align": "left"},
        cells={"values": cells, "align": "left"},
        columnwidth=[5, 1.2, 0.7, 0.9, 0.9, 0.9, 1, 1, 0.8, 1.1, 1, 1.2, 1],
    ))
    return _layout(fig, title, 160 + 32 * min(data.height, 30))


def package_treemap(df: pl.DataFrame, packages: pl.DataFrame | None = None,
                    variant_key: str | None = None) -> go.Figure:
    """Code bytes per Go package of one variant (default: the largest with package sizes)."""
    title = "Code size per Go package"
    chosen, tree = prep.package_tree(packages, df, variant_key)
    if chosen is None:
        wanted = f" for variant {variant_key!r}" if variant_key else ""
        return note_figure(title, f"No package sizes{wanted}: they need an unstripped build "
                                  "(a profile without -s) with its symbol table.")
    fig = go.Figure(go.Treemap(
        ids=tree["plot_id"].to_list(),
        parents=tree["plot_parent"].to_list(),
        labels=tree["plot_name"].to_list(),
        values=tree["bytes"].to_list(),
        branchvalues="remainder",
        customdata=tree["plot_id"].to_list(),
        hovertemplate="%{customdata}<br>%{value:,} bytes of code<br>%{percentRoot:.1%} of the total<extra></extra>",
        textinfo="label+value+percent root",
    ))
    _layout(fig, f"{title}: {chosen['plot_label']} ({chosen['total']:,} bytes)", 640)
    return fig.update_layout(margin={"l": 10, "r": 10, "t": 70, "b": 10})


def package_diff_bars(df: pl.DataFrame, packages: pl.DataFrame | None = None,
                      variant_keys: tuple[str, str] | None = None, top: int = 15) -> go.Figure:
    """The packages whose code size differs most between two variants (b minus a)."""
    title = "Packages that differ most between two variants"
    a, b, diff = prep.package_diff(packages, df, variant_keys, top)
    if a is None:
        return note_figure(title, "Needs package sizes of two different builds (unstripped profiles).")
    subtitle = f"{b['plot_label']}  minus  {a['plot_label']}"
    if diff.is_empty():
        return note_figure(f"{title}: {subtitle}", "The two variants have the same code size in every package.")
    colors = ["#E45756" if d > 0 else "#54A24B" for d in diff["delta"]]
    fig = go.Figure(go.Bar(
        orientation="h",
        y=diff["plot_package"].to_list(),
        x=(diff["delta"] / 1024).to_list(),
        marker_color=colors,
        customdata=list(zip(diff["bytes_a"], diff["bytes_b"], diff["delta"])),
        hovertemplate="%{y}<br>%{customdata[0]:,} -> %{customdata[1]:,} bytes (%{customdata[2]:+,})<extra></extra>",
    ))
    ticks = diff.select("plot_package", "plot_tick")
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=ticks["plot_package"].to_list(),
                     tickmode="array", tickvals=ticks["plot_package"].to_list(), ticktext=ticks["plot_tick"].to_list(),
                     autorange="reversed", automargin=True)
    fig.update_xaxes(title="Code size difference (KiB), first named minus second; red: larger in the first")
    return _layout(fig, f"{title}:<br><sub>{subtitle}</sub>", _bar_height(diff.height), showlegend=False)


def report_figures(
    df: pl.DataFrame,
    packages: pl.DataFrame | None = None,
    treemap_variant: str | None = None,
    compare_variants: tuple[str, str] | None = None,
    capabilities: pl.DataFrame | None = None,
) -> list[go.Figure]:
    """The figures of the HTML report, in display order (always the same number of them).

    ``packages`` is the package-size frame (``slimlab.load_packages``); ``treemap_variant``
    and ``compare_variants`` pick variant keys for the package figures; ``capabilities``
    is the probe matrix (``slimlab.load_capabilities``).
    """
    return [
        size_bars(df),
        section_bars(df),
        startup_scatter(df),
        rss_bars(df),
        cross_cpu_panel(df),
        image_bars(df),
        container_table(df),
        platform_bars(df),
        postlink_panel(df),
        hardening_table(df),
        package_treemap(df, packages, treemap_variant),
        package_diff_bars(df, packages, compare_variants),
        capability_figure(capabilities),
    ]


def capability_figure(capabilities: pl.DataFrame | None) -> go.Figure:
    """The toolchain × probe heatmap, or a note when the run did not probe."""
    if capabilities is None or capabilities.is_empty():
        return note_figure("Capability matrix", "No capability probes in these runs (spec: probe = true).")
    return capability_heatmap(capabilities)


# -- capability matrix (slimlab.probe's frame) -----------------------------------------
CAPABILITY_COLOURS = {"pass": "#2ca02c", "fail": "#d62728", "not installed": "#c7c7c7"}
_CAPABILITY_ERROR_CHARS = 900


def _capability_hover(text: str) -> str:
    """Escaped for plotly's HTML-like labels, with line breaks kept."""
    if len(text) > _CAPABILITY_ERROR_CHARS:
        text = "…" + text[-_CAPABILITY_ERROR_CHARS:]
    lines = []
    for line in text.splitlines() or [""]:
        while len(line) > 100:  # long compiler lines would make the hover box wider than the page
            lines.append(line[:100])
            line = line[100:]
        lines.append(line)
    return "<br>".join(html.escape(line) for line in lines)


def capability_heatmap(df: pl.DataFrame, title: str = "Capability matrix: toolchain × probe"):
    """toolchain × probe: green pass, red fail (stage on the cell), grey not installed; hover: the error."""
    probes = list(dict.fromkeys(df["probe"].to_list()))  # run_probes' order
    names = list(dict.fromkeys(df["toolchain"].to_list()))
    cells = {(r["toolchain"], r["probe"]): r for r in df.iter_rows(named=True)}
    z, text, hover = [], [], []
    for name in names:
        z_row, text_row, hover_row = [], [], []
        for probe in probes:
            r = cells.get((name, probe))
            if r is None:
                z_row.append(None)
                text_row.append("")
                hover_row.append("")
                continue
            head = (f"<b>{html.escape(name)}</b> × <b>{html.escape(probe)}</b><br>"
                    f"{html.escape(r.get('description') or '')}<br>"
                    f"{html.escape(r['toolchain_version'] or '')}<br>")
            if r["passed"] is None:
                z_row.append(0.5)
                text_row.append("not installed")
                hover_row.append(head + _capability_hover(r["error"] or ""))
            elif r["passed"]:
                z_row.append(1.0)
                text_row.append("pass")
                hover_row.append(head + f"passed ({r['seconds']:.1f} s)")
            else:
                z_row.append(0.0)
                text_row.append(f"fail: {html.escape(r['stage'] or '?')}")
                hover_row.append(head + f"failed at {html.escape(r['stage'] or '?')}:<br>"
                                 + _capability_hover(r["error"] or ""))
        z.append(z_row)
        text.append(text_row)
        hover.append(hover_row)
    colourscale = [
        [0.0, CAPABILITY_COLOURS["fail"]], [0.25, CAPABILITY_COLOURS["fail"]],
        [0.25, CAPABILITY_COLOURS["not installed"]], [0.75, CAPABILITY_COLOURS["not installed"]],
        [0.75, CAPABILITY_COLOURS["pass"]], [1.0, CAPABILITY_COLOURS["pass"]],
    ]
    fig = go.Figure(go.Heatmap(
        z=z, x=[html.escape(p) for p in probes], y=[html.escape(n) for n in names],
        zmin=0, zmax=1, colorscale=colourscale, showscale=False, xgap=2, ygap=2,
        text=text, texttemplate="%{text}", customdata=hover, hovertemplate="%{customdata}<extra></extra>",
    ))
    for label, colour in CAPABILITY_COLOURS.items():  # a legend for the three colours
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=label,
                                 marker=dict(size=12, symbol="square", color=colour)))
    fig.update_layout(
        title=html.escape(title), xaxis_title="probe", yaxis_title="toolchain or image base",
        yaxis=dict(autorange="reversed"), plot_bgcolor="white",
        height=160 + 48 * max(1, len(names)), legend=dict(orientation="h", y=-0.25),
    )
    return fig
