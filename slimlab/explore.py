"""The explorer: one or more runs behind linked filters, a metric, colour and facets.

``Explorer(path_or_paths).show()`` in JupyterLab draws ipywidgets controls (a dropdown
per axis, a metric, colour-by and facet-by), a plotly ``FigureWidget`` that is updated
in place when a control changes, a table of the selected rows and a button that writes
the current view as a standalone HTML figure. In a kernel without a frontend (papermill,
a scheduled run) widgets would be dead references in the executed notebook, so the
default view is shown as a plain figure instead, as text/html, which nbconvert keeps
(see slimlab.report.html.display_report).

Native, emulated (QEMU) and container timings are never drawn on one axis: a timing metric
is faceted by the kind of run (KIND) on top of any chosen facet, and by the measuring host
when several measured, and an emulated panel says so in its title.

Every label that comes from the data (workload paths, run ids, reasons) stays text: in
the figure it is escaped with prep.escape_text (plotly renders a subset of HTML in
labels and turns entities back into characters), in the table with html.escape, and in
the dropdowns it is an <option>'s text, which the browser never parses as HTML.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go
import polars as pl
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from slimlab.errors import SlimlabError, unknown
from slimlab.model import AXES, BY_COLUMN
from slimlab.progress import widget_frontend
from slimlab.report import prep
from slimlab.report.html import PLOTLY_CONFIG
from slimlab.results import load

MIB = 1024 * 1024


@dataclass(frozen=True)
class Metric:
    column: str
    title: str
    unit: str
    scale: float = 1.0  # column value * scale = the value shown, in ``unit``
    spread: str | None = None  # an IQR column: the bar's error bar is ± half of it
    timed: bool = False  # a figure of the host that measured it: never compared across hosts unsaid


METRICS: dict[str, Metric] = {
    "size": Metric("size_bytes", "Binary size", "MiB", 1 / MIB),
    "startup": Metric("startup_ms_median", "Start-up, median", "ms", spread="startup_ms_iqr", timed=True),
    "peak_rss": Metric("peak_rss_kib_median", "Peak RSS, median", "MiB", 1 / 1024, spread="peak_rss_kib_iqr",
                       timed=True),
    "cpu": Metric("cpu_ms_median", "CPU time per start, median", "ms", timed=True),
    "image_size": Metric("image_size_bytes", "Image size", "MiB", 1 / MIB),
    "image_compressed": Metric("image_compressed_bytes", "Image size, compressed", "MiB", 1 / MIB),
    "container_peak": Metric("cgroup_peak_kib_median", "Container memory peak, median", "MiB", 1 / 1024,
                             timed=True),
    "build_time": Metric("build_seconds", "Build time", "s"),
}
RUN = "run_id"  # a filter, colour and facet too when there are several runs
# The host that measured a row ("name [fingerprint]"): an axis too when rows come from several
# (Dask's measure_on = "workers", or runs of several machines); timings are faceted by it then.
HOST = "measured_on"
# How a row's timings were taken: natively, under QEMU, in a container (under QEMU too for
# another CPU's image). Each kind's figures are its own scale: a timing is faceted by it.
KIND = "kind"
KINDS = ("native", "emulated", "container", "container, emulated")  # panels in this order
EMULATED_MARK = " (QEMU: not native timings)"
LABELS = {RUN: "Run", HOST: "Host", KIND: "Kind"}  # the axes that are not the spec's
ALL = ""  # a filter's value for "every value"
ALL_LABEL = "(all)"
NONE_LABEL = "none"
PALETTE = qualitative.Plotly
BAR_ROW_PX = 24
BASE_HEIGHT_PX = 150
FACET_GAP_PX = 84  # room for an axis title, then the next panel's title
TABLE_MAX_ROWS = 200
TABLE_COLUMNS = (RUN, *(a.column for a in AXES), KIND, "status")


def _frame(source) -> pl.DataFrame:
    if isinstance(source, pl.DataFrame):
        return _with_derived(prep.conform(source))
    paths = [source] if source is None or isinstance(source, (str, Path)) else list(source)  # None: the data dir
    if not paths:
        raise SlimlabError("no run given: pass a run directory, a data directory, or a list of them")
    return _with_derived(prep.conform(pl.concat([load(p) for p in paths], how="diagonal_relaxed")))


def kind() -> pl.Expr:
    """A row's KIND: "native", "emulated", "container" or "container, emulated"."""
    emulated = pl.col("emulated").fill_null(False)
    container = pl.col("base").fill_null("none") != "none"
    return (pl.when(container & emulated).then(pl.lit(KINDS[3])).when(container).then(pl.lit(KINDS[2]))
            .when(emulated).then(pl.lit(KINDS[1])).otherwise(pl.lit(KINDS[0])))


def _with_derived(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` (conformed) with HOST, the host that measured each row as the report names it,
    and KIND."""
    return frame.with_columns(prep.host_name().alias(HOST), kind().alias(KIND))


def _shorten(text: str, max_chars: int) -> str:
    return pl.select(prep.shorten(pl.lit(text), max_chars)).item()


def _cell_text(value) -> str:
    """A cell's plain text: numbers with separators, lists joined, null as a dash."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value)


class Explorer:
    """An explorer over a run directory, a data directory, several of them, or a frame.

    ``metric`` is a key of METRICS; ``color`` and ``facet`` an axis column (or None);
    ``filters`` maps axis columns to the one value to keep. Bad names fail here, naming
    the valid ones, before anything is drawn.
    """

    def __init__(self, source, metric: str = "size", color: str | None = "workload", facet: str | None = None,
                 filters: Mapping[str, str] | None = None, out_dir: str | Path = "figures") -> None:
        # run, host and kind: axes only when several (below)
        self.axes = [RUN, HOST, *(a.column for a in AXES), KIND]
        # Names first, before the runs are read: a typo costs nothing.
        self.metric = self._check_metric(metric)
        self.color = self._check_axis(color, "colour-by axis")
        self.facet = self._check_axis(facet, "facet-by axis")
        for column in filters or {}:
            self._check_axis(column, "filter axis")
        self.df = _frame(source)
        for column in (RUN, HOST, KIND):
            if self.df[column].n_unique() <= 1 and column not in (self.color, self.facet, *(filters or {})):
                self.axes.remove(column)
        self.filters: dict[str, str | None] = dict.fromkeys(self.axes)
        for column, value in (filters or {}).items():
            values = self._values(column, self.df)
            if value not in values:
                raise unknown(column, value, values)
            self.filters[column] = value
        self.out_dir = Path(out_dir)
        self._widget = None
        self._syncing = False
        # One colour per value of each axis over the whole frame, so a value keeps its
        # colour while filters change.
        self._colors = {c: {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(self._values(c, self.df))}
                        for c in self.axes}

    # -- checks and choices ---------------------------------------------------------
    @staticmethod
    def _check_metric(name: str) -> str:
        if name not in METRICS:
            raise unknown("metric", name, METRICS)
        return name

    def _check_axis(self, name: str | None, what: str) -> str | None:
        if name is None or name in (ALL, NONE_LABEL, "None"):  # "None" as papermill's -p passes it
            return None
        if name not in self.axes:
            raise unknown(what, name, self.axes)
        return name

    @staticmethod
    def _values(column: str, frame: pl.DataFrame) -> list[str]:
        return sorted(v for v in frame[column].unique().to_list() if v is not None)

    def _matching(self, skip: str | None = None) -> pl.DataFrame:
        conditions = [pl.col(c) == v for c, v in self.filters.items() if v is not None and c != skip]
        return self.df.filter(*conditions) if conditions else self.df

    def options(self, column: str) -> list[str]:
        """The values of ``column`` present among the rows every other filter keeps."""
        return self._values(column, self._matching(skip=column))

    def select(self, **filters: str | None) -> None:
        """Set filters (None: every value). Other filters whose value no longer occurs with
        these are cleared: the latest choice wins."""
        for column, value in filters.items():
            self._check_axis(column, "filter axis")
            self.filters[column] = value or None
        self._settle(chosen=set(filters))
        if self._widget is not None:
            self._sync_widgets()
            self._redraw()

    def _settle(self, chosen: set[str]) -> None:
        """Clear filters whose value is not among their options (the ``chosen`` ones last),
        until every filter's value occurs."""
        order = [c for c in self.filters if c not in chosen] + [c for c in self.filters if c in chosen]
        changed = True
        while changed:
            changed = False
            for column in order:
                value = self.filters[column]
                if value is not None and value not in self.options(column):
                    self.filters[column] = None
                    changed = True
                    break  # one at a time: clearing one may make another's value occur again

    # -- what is shown ----------------------------------------------------------------
    def rows(self) -> pl.DataFrame:
        """The rows the filters keep, any status."""
        return self._matching()

    def _plotted(self) -> pl.DataFrame:
        metric = METRICS[self.metric]
        data = self.rows().filter(pl.col("status") == "ok", pl.col(metric.column).is_not_null())
        spread = (pl.col(metric.spread).fill_null(0.0) / 2 * metric.scale) if metric.spread else pl.lit(0.0)
        data = data.with_columns((pl.col(metric.column) * metric.scale).alias("plot_value"),
                                 spread.alias("plot_spread"))
        # A bar is named by the axes that still vary in the view (a filter or the facets
        # fix the others); the run, then the variant key, when that is not enough.
        facets = self._facets_of(data)
        varying = [c for c in self.axes if c not in facets and data[c].n_unique() > 1] or ["workload"]
        parts = [pl.col(c).cast(pl.String).fill_null("?") for c in varying]
        label = pl.concat_str(parts, separator=prep.LABEL_SEPARATOR)
        data = data.with_columns(label.alias("plot_raw"))
        for extra in (RUN, "variant_key"):
            if data["plot_raw"].is_unique().all():
                break
            data = data.with_columns(
                pl.when(pl.col("plot_raw").is_duplicated())
                .then(pl.concat_str([pl.col("plot_raw"), pl.col(extra).fill_null("?")], separator=prep.LABEL_SEPARATOR))
                .otherwise(pl.col("plot_raw")).alias("plot_raw"))
        return data.with_columns(
            prep.escape_text(pl.col("plot_raw")).alias("plot_label"),
            prep.escape_text(prep.shorten(pl.col("plot_raw"), prep.TICK_MAX_CHARS)).alias("plot_tick"),
        ).sort("plot_value", "plot_label")

    def _facets_of(self, data: pl.DataFrame) -> list[str]:
        """The columns the figure is split by: the chosen facet and, for a timing, the host when
        the rows come from several and the kind (never one scale for figures of different
        machines, or of native, emulated and container runs)."""
        facets = [self.facet] if self.facet else []
        if METRICS[self.metric].timed:
            if HOST not in facets and data[HOST].n_unique() > 1:
                facets.append(HOST)
            if KIND not in facets:
                facets.append(KIND)
        return facets

    def _panels(self, data: pl.DataFrame, facets: list[str]) -> list[tuple]:
        """The facet values that occur together, one tuple per panel: in each facet's order, kinds
        in KINDS' order (native first), a null last."""
        def order(panel: tuple) -> tuple:
            return tuple((value is None, KINDS.index(value) if column == KIND else 0, value or "")
                         for column, value in zip(facets, panel))

        return sorted(data.select(facets).unique().rows(), key=order) if facets else [()]

    def _panel_title(self, facets: list[str], panel: tuple, show_kind: bool) -> str:
        """A panel's title, unescaped: "Workload a · emulated (QEMU: not native timings)"."""
        parts = []
        for column, value in zip(facets, panel):
            if column == KIND:
                if show_kind:
                    parts.append(value + (EMULATED_MARK if "emulated" in value else ""))
            else:
                parts.append(f"{self._axis_label(column)} {'–' if value is None else value}")
        return " · ".join(parts)

    def title(self) -> str:
        metric = METRICS[self.metric]
        chosen = [f"{self._axis_label(c)} {v}" for c, v in self.filters.items() if v is not None]
        return f"{metric.title} ({metric.unit})" + (f": {', '.join(chosen)}" if chosen else "")

    def figure(self) -> go.Figure:
        """The current view as a plain plotly figure: horizontal bars, smallest on top,
        one subplot per facet value (each with its own scale: emulated CPUs apart)."""
        metric = METRICS[self.metric]
        data = self._plotted()
        title = html.escape(self.title())
        if data.is_empty():
            fig = go.Figure()
            fig.add_annotation(text=html.escape(f"No ok row with {metric.title.lower()} in this selection."),
                               showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                               font={"size": 15, "color": "#666"})
            fig.update_xaxes(visible=False)
            fig.update_yaxes(visible=False)
            fig.update_layout(title={"text": title, "x": 0.01}, template="plotly_white", height=260)
            return fig
        facets = self._facets_of(data)
        panels = self._panels(data, facets)
        parts = [data.filter(*(pl.col(c).eq_missing(v) for c, v in zip(facets, panel))) if facets else data
                 for panel in panels]
        # The kind is said when it is chosen, when kinds differ, or when the one kind is not native.
        kinds = {panel[facets.index(KIND)] for panel in panels} if KIND in facets else set()
        show_kind = self.facet == KIND or len(kinds) > 1 or bool(kinds - {KINDS[0]})
        titles = [self._panel_title(facets, panel, show_kind) for panel in panels]
        counts = [part.height for part in parts]
        height = BASE_HEIGHT_PX + BAR_ROW_PX * sum(counts) + FACET_GAP_PX * (len(panels) - 1)
        fig = make_subplots(
            rows=len(panels), cols=1, row_heights=[max(n, 1) for n in counts],
            vertical_spacing=FACET_GAP_PX / height if len(panels) > 1 else 0.0,
            subplot_titles=[html.escape(t) for t in titles] if any(titles) else None,
        )
        seen: set[str] = set()
        for row, part in enumerate(parts, start=1):
            groups = [(None, part)] if self.color is None else [
                (v, part.filter(pl.col(self.color) == v)) for v in self._values(self.color, part)]
            for value, bars in groups:
                full = value if value is not None else metric.title
                name = html.escape(_shorten(full, prep.LEGEND_MAX_CHARS))
                color = self._colors[self.color][value] if self.color else PALETTE[0]
                fig.add_trace(go.Bar(
                    orientation="h", y=bars["plot_label"].to_list(), x=bars["plot_value"].to_list(),
                    name=name, legendgroup=html.escape(full), showlegend=self.color is not None and full not in seen,
                    marker={"color": color},
                    error_x={"type": "data", "array": bars["plot_spread"].to_list(), "visible": bool(metric.spread)},
                    text=[f"{v:,.2f}" for v in bars["plot_value"]], textposition="outside", cliponaxis=False,
                    hovertext=[f"{label}<br>{v:,.3f} {metric.unit}" for label, v in
                               zip(bars["plot_label"], bars["plot_value"])],
                    hovertemplate="%{hovertext}<extra></extra>",
                ), row=row, col=1)
                seen.add(full)
            fig.update_yaxes(row=row, col=1, type="category", categoryorder="array",
                             categoryarray=part["plot_label"].to_list(), tickmode="array",
                             tickvals=part["plot_label"].to_list(), ticktext=part["plot_tick"].to_list(),
                             autorange="reversed", automargin=True)
            fig.update_xaxes(row=row, col=1, title_text=html.escape(metric.unit), rangemode="tozero")
        fig.update_layout(title={"text": title, "x": 0.01, "xanchor": "left"}, template="plotly_white",
                          height=height, barmode="group", font={"size": 13},
                          legend={"title": {"text": html.escape(self._axis_label(self.color))}},
                          margin={"l": 20, "r": 90, "t": 70, "b": 50})
        return fig

    def _axis_label(self, column: str | None) -> str:
        if column is None:
            return ""
        return BY_COLUMN[column].label if column in BY_COLUMN else LABELS[column]

    def table_html(self) -> str:
        """The selected rows as an HTML table, every value escaped."""
        metric = METRICS[self.metric]
        rows = self.rows().sort(metric.column, nulls_last=True)
        columns = [*TABLE_COLUMNS, metric.column, "reason"]
        header = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = []
        for record in rows.head(TABLE_MAX_ROWS).select(columns).iter_rows(named=True):
            cells = "".join(f"<td>{html.escape(_cell_text(record[c]))}</td>" for c in columns)
            body.append(f"<tr>{cells}</tr>")
        more = (f"<p>{rows.height - TABLE_MAX_ROWS:,} more rows not shown.</p>"
                if rows.height > TABLE_MAX_ROWS else "")
        return (f'<div class="slimlab-explorer-table" style="overflow:auto;max-height:24em">'
                f"<p>{rows.height:,} selected row(s)</p><table><thead><tr>{header}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table>{more}</div>")

    def static_html(self) -> str:
        """The current view as an HTML fragment: the figure (plotly.js inlined) and the table."""
        fig = self.figure()
        figure = fig.to_html(full_html=False, include_plotlyjs=True, config=PLOTLY_CONFIG,
                             default_height=f"{fig.layout.height or 450}px")
        return f'<div class="slimlab-explorer">{figure}{self.table_html()}</div>'

    def save(self, out_dir: str | Path | None = None, formats: Iterable[str] = ("html",)) -> list[Path]:
        """Write the current view: a standalone HTML figure (plotly.js inlined) and, for papers,
        ``svg``/``pdf``/``png`` (kaleido with Debian's chromium, as ``slimlab report --figures``).
        Returns the paths written."""
        from slimlab.report.export import check_formats, export_figures

        formats = list(formats)
        others = [f for f in formats if f != "html"]
        wanted = check_formats(others) if others else ()  # refused before any work
        out = Path(out_dir) if out_dir is not None else self.out_dir
        out.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        fig = self.figure()
        written = []
        if "html" in formats:
            path = out / f"explore-{self.metric}-{stamp}.html"
            fig.write_html(path, include_plotlyjs=True, config=PLOTLY_CONFIG)
            written.append(path)
        if wanted:
            written += export_figures([fig], out / f"explore-{self.metric}-{stamp}", wanted)
        return written

    # -- widgets --------------------------------------------------------------------------
    def show(self, interactive: bool | None = None) -> None:
        """Display the explorer: widgets where a frontend draws them, else the static view."""
        from IPython.display import HTML, display

        if interactive if interactive is not None else widget_frontend():
            display(self.widget)
            # plotly's anywidget view draws before it is in the page, at plotly's default 700 px
            # (plotly.py issue 5208); asked again once shown, it takes the output's width.
            self._figure.plotly_relayout({"autosize": True})
        else:
            display(HTML(self.static_html()))

    @property
    def widget(self):
        """The explorer's ipywidgets box (built on first use)."""
        if self._widget is None:
            self._widget = self._build()
        return self._widget

    def _build(self):
        import ipywidgets as w

        self._dropdowns = {}
        for column in self.axes:
            box = w.Dropdown(description=self._axis_label(column), layout=w.Layout(width="auto"))
            box.add_class(f"slimlab-filter-{column}")
            self._dropdowns[column] = box
        self._sync_widgets()
        for column, box in self._dropdowns.items():
            box.observe(lambda change, column=column: self._on_filter(column, change.new), names="value")
        axis_choices = [(NONE_LABEL, ALL)] + [(self._axis_label(c), c) for c in self.axes]
        self._metric = w.Dropdown(description="Metric", options=[(m.title, k) for k, m in METRICS.items()],
                                  value=self.metric)
        self._color = w.Dropdown(description="Colour by", options=axis_choices, value=self.color or ALL)
        self._facet = w.Dropdown(description="Facet by", options=axis_choices, value=self.facet or ALL)
        for box, name in ((self._metric, "metric"), (self._color, "color"), (self._facet, "facet")):
            box.add_class(f"slimlab-{name}")
            box.observe(lambda change, name=name: self._on_choice(name, change.new), names="value")
        self._save = w.Button(description="Save view as HTML", icon="download", layout=w.Layout(width="auto"))
        self._save.add_class("slimlab-save")
        self._save.on_click(lambda _: self._on_save(("html",)))
        self._export = w.Button(description="Save as SVG + PDF", icon="file", layout=w.Layout(width="auto"))
        self._export.add_class("slimlab-export")
        self._export.on_click(lambda _: self._on_save(("svg", "pdf")))
        self._message = w.HTML()
        self._message.add_class("slimlab-message")
        self._figure = go.FigureWidget(self.figure())
        self._figure.add_class("slimlab-figure")
        self._table = w.HTML(self.table_html())
        self._table.add_class("slimlab-table")
        box = w.VBox([
            w.HBox(list(self._dropdowns.values()), layout=w.Layout(flex_flow="row wrap")),
            w.HBox([self._metric, self._color, self._facet, self._save, self._export], layout=w.Layout(flex_flow="row wrap")),
            self._message, self._figure, self._table,
        ])
        box.add_class("slimlab-explorer")
        return box

    def _sync_widgets(self) -> None:
        """Each dropdown offers the values the other filters leave (linked dropdowns)."""
        self._syncing = True
        try:
            for column, box in self._dropdowns.items():
                options = [(ALL_LABEL, ALL)] + [(v, v) for v in self.options(column)]
                if tuple(box.options) != tuple(options):
                    box.options = options
                box.value = self.filters[column] or ALL
        finally:
            self._syncing = False

    def _on_filter(self, column: str, value: str) -> None:
        if self._syncing:
            return
        self.filters[column] = value or None
        self._settle(chosen={column})
        self._sync_widgets()
        self._redraw()

    def _on_choice(self, name: str, value: str) -> None:
        setattr(self, name, value or None if name != "metric" else value)
        self._redraw()

    def _on_save(self, formats: tuple[str, ...]) -> None:
        try:
            paths = self.save(formats=formats)
        except Exception as exc:  # noqa: BLE001 - a button's error would otherwise go to the kernel's log unseen
            self._message.value = f"<b>Not saved</b>: {html.escape(str(exc))}"
        else:
            self._message.value = "Saved " + ", ".join(f"<code>{html.escape(str(p.resolve()))}</code>" for p in paths)

    def _redraw(self) -> None:
        update_in_place(self._figure, self.figure())
        self._table.value = self.table_html()


def update_in_place(widget: go.FigureWidget, fresh: go.Figure) -> None:
    """Make ``widget`` show ``fresh`` by restyling its traces (adding or deleting only the
    difference in count) and relaying out, so the view stays one widget in the page."""
    old_layout = widget.layout.to_plotly_json()
    new_layout = fresh.layout.to_plotly_json()
    stale = {key: None for key in old_layout if key not in new_layout}
    if stale:  # e.g. the axes of a facet that is gone: null removes them in plotly.js
        widget.plotly_relayout(stale)
    with widget.batch_update():
        keep = min(len(widget.data), len(fresh.data))
        if len(widget.data) > keep:
            widget.data = widget.data[:keep]
        for old, new in zip(widget.data, fresh.data):
            props = {k: v for k, v in new.to_plotly_json().items() if k not in ("type", "uid")}
            props.update({k: None for k in old.to_plotly_json() if k not in props and k not in ("type", "uid")})
            old.update(props, overwrite=True)
        if len(fresh.data) > keep:
            widget.add_traces(list(fresh.data[keep:]))
        widget.layout = fresh.layout


def explore(source: str | Path | Iterable | None = None, **choices) -> Explorer:
    """Build an Explorer and show it (the notebook's one call)."""
    explorer = Explorer(source, **choices)
    explorer.show()
    return explorer
