"""Frames -> plotly figures. One function per figure; each copes with an empty input.

All text that reaches a figure comes from prep's ``plot_*`` columns, which are already
HTML-escaped, or is a fixed string written here.
"""

from __future__ import annotations

import html

import plotly.graph_objects as go
import polars as pl
from plotly.colors import qualitative
from plotly.subplots import make_subplots

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
    """Size against start-up median, error bars ±IQR/2, for native runs only: emulated
    milliseconds are QEMU's, not the target CPU's (72 ms for an arm64 hello says nothing),
    so emulated variants are drawn in the cross-CPU panel, relative to their own CPU."""
    title = "Size vs start-up time (native runs)"
    data = prep.startup(df)
    emulated = data.filter(pl.col("plot_emulated")).height
    data = data.filter(~pl.col("plot_emulated"))
    if data.is_empty():
        return note_figure(title, "No native start-up measurements to show."
                           + (f" {emulated} emulated variants: see the cross-CPU panel." if emulated else ""))
    colors = _colors(df)
    fig = go.Figure()
    for (group,), part in data.group_by(["plot_group"], maintain_order=True):
        fig.add_scatter(
            name=_name(part),
            x=part["plot_size_mib"].to_list(),
            y=part["startup_ms_median"].to_list(),
            error_y={
                "type": "data",
                "array": part["plot_startup_half_iqr"].to_list(),
                "visible": True,
                "thickness": 1.2,
            },
            mode="markers",
            marker={"color": colors[group], "size": 11, "line": {"width": 0.5, "color": colors[group]}},
            customdata=list(
                zip(
                    part["plot_label"],
                    part["startup_ms_iqr"].fill_null(float("nan")),
                    part["startup_n"].cast(pl.String).fill_null("?"),
                    part["plot_runner"],
                )
            ),
            hovertemplate=(
                "%{customdata[0]}<br>size %{x:.2f} MiB<br>start-up median %{y:.2f} ms"
                "<br>IQR %{customdata[1]:.2f} ms, n = %{customdata[2]}"
                "<br>runner %{customdata[3]}<extra></extra>"
            ),
        )
    if emulated:
        fig.add_annotation(text=f"{emulated} emulated variants are not here: their milliseconds are QEMU's. "
                                "The cross-CPU panel shows them relative to the same CPU's baseline.",
                           xref="paper", yref="paper", x=0, y=1.06, showarrow=False, font={"size": 11})
    fig.update_xaxes(title="File size (MiB)", rangemode="tozero")
    fig.update_yaxes(title="Start-up, median (ms); bars ±IQR/2", rangemode="tozero")
    return _layout(fig, title, 520, legend_title="workload")


def _members(section: str) -> str:
    return SECTION_GROUP_MEMBERS.get(section, "file bytes no section header accounts for")


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
                " (%{customdata[1]:.1%} of the file)"
                f"<br>{html.escape(_members(section))}<extra></extra>"
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
    nan = float("nan")
    hover = list(zip(
        data["image_size_bytes"], data["image_compressed_bytes"].cast(pl.Float64).fill_null(nan),
        data["plot_startup_ratio"].fill_null(nan), data["plot_rss_ratio"].fill_null(nan),
        data["plot_base"], data["plot_efficiency_pct"].fill_null(nan),
        data["image_wasted_bytes"].cast(pl.Float64).fill_null(nan),
        data["cgroup_peak_kib_median"].fill_null(nan),
    ))
    template = ("%{y}<br>base %{customdata[4]}: %{customdata[0]:,} bytes, %{customdata[1]:,.0f} compressed"
                "<br>%{fullData.name}: %{x:.2f} MiB"
                "<br>layer efficiency %{customdata[5]:.1f}%, wasted %{customdata[6]:,.0f} bytes (dive's definitions)"
                "<br>container start-up %{customdata[2]:.1f}× bare, program peak RSS %{customdata[3]:.2f}× bare, "
                "container cgroup peak %{customdata[7]:,.0f} KiB<extra></extra>")
    fig = go.Figure()
    for kind in prep.IMAGE_KINDS:
        column = f"plot_{kind}_mib"
        if not (data[column].fill_null(0) > 0).any():
            continue  # a kind no image here has (e.g. glibc without a libc base)
        name, colour = IMAGE_KIND_STYLE[kind]
        fig.add_bar(name=name, orientation="h", y=data["plot_label"].to_list(), x=data[column].to_list(),
                    marker_color=colour, customdata=hover, hovertemplate=template)
    fig.add_scatter(name="compressed (what a registry transfers)", mode="markers", y=data["plot_label"].to_list(),
                    x=data["plot_compressed_mib"].to_list(), marker={"symbol": "diamond", "size": 9,
                                                                     "color": "#222"},
                    customdata=hover, hovertemplate=template)
    fig.update_yaxes(**_category_axis(data))
    fig.update_xaxes(title="Image size (MiB)", rangemode="tozero")
    return _layout(fig, title, _bar_height(data.height), barmode="stack", legend_title="bytes")


def cross_cpu_panel(df: pl.DataFrame) -> go.Figure:
    """Per target CPU: size by section, the program's own peak RSS beside the native
    target's, and start-up relative to the same CPU's build without post-link."""
    title = "Across CPUs: size by section, the program's own peak RSS, start-up relative to the same CPU's baseline"
    data = prep.cross_cpu(df)
    if data.is_empty():
        return note_figure(title, "One target CPU in these runs (spec: targets = [\"linux/amd64\", \"linux/arm64\"]).")
    labels = data["plot_label"].to_list()
    fig = make_subplots(rows=1, cols=3, shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=("size by section (MiB)", "program's peak RSS (MiB)",
                                        "start-up ÷ same CPU, no post-link"))
    for name in prep.FILE_SECTIONS:
        values = data[f"plot_{name}_mib"].to_list()
        if not any(values):
            continue
        fig.add_bar(name=SECTION_NAMES.get(name, name), orientation="h", y=labels, x=values,
                    marker_color=SECTION_COLORS.get(name, "#999"), legendgroup="sections",
                    hovertemplate="%{y}<br>" + html.escape(name) + ": %{x:.2f} MiB<extra></extra>", row=1, col=1)
    runner = data["runner"].fill_null("?").map_elements(html.escape, return_dtype=pl.String)
    fig.add_bar(name="peak RSS (program's own)", orientation="h", y=labels, x=data["plot_rss_mib"].to_list(),
                marker_color="#4C78A8", showlegend=False,
                customdata=list(zip(data["plot_rss_vs_native"].fill_null(float("nan")), runner)),
                hovertemplate="%{y}<br>%{x:.2f} MiB, %{customdata[0]:.2f}× the native target's"
                              "<br>measured by %{customdata[1]}<extra></extra>", row=1, col=2)
    fig.add_bar(name="start-up ratio", orientation="h", y=labels, x=data["plot_startup_rel"].to_list(),
                marker_color="#F58518", showlegend=False,
                customdata=list(zip(data["startup_ms_median"].fill_null(float("nan")),
                                    data["emulated"].fill_null(False))),
                hovertemplate="%{y}<br>%{x:.2f}× the same CPU's build without post-link"
                              "<br>(%{customdata[0]:.1f} ms; emulated: %{customdata[1]})<extra></extra>",
                row=1, col=3)
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    return _layout(fig, title, _bar_height(data.height), barmode="stack", legend_title="section")


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
    """Per image: does it work in a plain and in a hardened container, and what the container
    costs over the bare binary in start-up and memory."""
    title = ("Containers: plain and hardened runs (user 65532, read-only root, no capabilities, "
             "no new privileges), start-up and memory against bare")
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
    """Peak RSS median per variant. Rows whose figure is QEMU user mode's process (older runs:
    newer ones keep it apart, as emulator_peak_rss_kib_median) are hatched and say so; a
    full-system guest's figure is the program's own."""
    title = "Peak memory (RSS) per variant"
    data = prep.memory(df)
    if data.is_empty():
        return note_figure(title, "No memory measurements to show.")
    colors = _colors(df)
    fig = go.Figure()
    for (group, emulated), part in data.group_by(
        ["plot_group", "plot_emulator_rss"], maintain_order=True
    ):
        fig.add_bar(
            name=_name(part, " (QEMU user mode: includes QEMU)" if emulated else ""),
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
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.09,
                        subplot_titles=("Start-up (median) vs none", "Peak RSS (median) vs none"))
    for (group, profile, is_upx), part in data.group_by(["plot_group", "plot_profile", "plot_is_upx"],
                                                         maintain_order=True):
        custom = list(zip(
            part["plot_label"], part["size_bytes"], part["plot_startup_delta_ms"].fill_null(float("nan")),
            part["plot_rss_delta_kib"].fill_null(float("nan")),
        ))
        for col, metric in ((1, "plot_startup_ratio"), (2, "plot_rss_ratio")):
            fig.add_scatter(
                row=1, col=col,
                name=_name(part, f" · {profile}" + ("" if is_upx else " (no UPX)")),
                legendgroup=f"{group}|{profile}|{is_upx}",
                showlegend=col == 1,
                x=part["plot_size_ratio"].to_list(),
                y=part[metric].to_list(),
                mode="markers+text",
                text=part["plot_chain"].to_list(),
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
    fig.update_xaxes(title="File size / size without a chain", tickformat=".0%", rangemode="tozero")
    fig.update_yaxes(title="Start-up median / none", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title="Peak RSS median / none", rangemode="tozero", row=1, col=2)
    for col in (1, 2):  # the "costs nothing" line
        fig.add_hline(y=1.0, line={"dash": "dot", "color": "#999", "width": 1}, row=1, col=col)
    return _layout(fig, title, 560, legend_title="workload · profile")


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
