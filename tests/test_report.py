"""Tests for slimlab.report (prep, figures, html) and slimlab.notebook.

Frames are synthetic, built from RESULT_SCHEMA: the report's job is to draw whatever
frame it gets, so it is tested on frames shaped to hit its edge cases. Browser tests load
the written HTML in headless Chromium, offline, and inspect the DOM after scripts ran.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for the browser helper beside this file

import browser  # noqa: E402

from slimlab import analysis  # noqa: E402
from slimlab.errors import SlimlabError  # noqa: E402
from slimlab.notebook import run_notebook  # noqa: E402
from slimlab.report import figures, prep  # noqa: E402
from slimlab.report.html import display_report, render_report_html, write_report  # noqa: E402
from slimlab.results_schema import RESULT_SCHEMA, SCHEMA_VERSION  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

# The first line of the inlined plotly.min.js: present once per copy of the library.
PLOTLYJS_MARKER = "* plotly.js v"
N_FIGURES = len(figures.report_figures(pl.DataFrame(schema=RESULT_SCHEMA)))

# Hostile strings. Each, if it ever ran, would leave a mark in the DOM whose text never
# appears literally in the input ("'pwned-x-'+6*7" evaluates to "pwned-x-42").
HOSTILE_WORKLOAD = (
    "</script><script>document.title='PW'+'NED';var e=document.createElement('div');"
    "e.id='pwned-script-'+6*7;document.body.appendChild(e)</script><b>x"
)
HOSTILE_SHORT = "<b>x</b>&amp;"  # short enough to show uncut in the legend


def _img(tag: str) -> str:
    """An <img> whose onerror (src=x does not exist) would add an element."""
    return (
        f"<img src=x onerror=\"var e=document.createElement('i');e.id='pwned-{tag}-'+6*7;"
        f'document.body.appendChild(e)">'
    )


HOSTILE_TITLE = "report " + _img("title")
HOSTILE_MANIFEST = {
    "run_id": "r1" + _img("runid"),
    "host": {"cpu": "AMD EPYC " + _img("cpu"), "kernel": "6.1.0", "load": [0.5, 0.4]},
    "tools": {"go": "go1.23.4", "tinygo": None},
    "spec": "[axes]\nworkload = ['hello']\n",
}
PWNED = re.compile(r"pwned-[a-z]+-42|PWNED")


def row(**values) -> dict:
    """One result row: every schema column, plausible defaults, overridden by ``values``."""
    base = dict.fromkeys(RESULT_SCHEMA)
    base.update(
        schema_version=SCHEMA_VERSION,
        run_id="r1",
        workload="hello",
        toolchain="gc",
        toolchain_version="go1.23.4",
        profile="default",
        target="linux/amd64",
        postlink="none",
        status="ok",
        emulated=False,
        runner="native",
        needed_libs=[],
        measured_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    )
    base.update(values)
    base.setdefault("variant_key", None)
    if base["variant_key"] is None:
        base["variant_key"] = "-".join(
            str(base[k]) for k in ("workload", "profile", "target", "postlink")
        )
    return base


def measured_row(size: int, startup_ms: float, rss_kib: float, **values) -> dict:
    sections = {
        "section_text_bytes": int(size * 0.4),
        "section_rodata_bytes": int(size * 0.2),
        "section_data_bytes": int(size * 0.02),
        "section_bss_bytes": int(size * 0.5),  # large on purpose: must not enter the stack
        "section_pclntab_bytes": int(size * 0.2),
        "section_symtab_bytes": int(size * 0.05),
        "section_dwarf_bytes": int(size * 0.1),
        "section_other_bytes": int(size * 0.01),
    }
    return row(
        size_bytes=size,
        startup_n=30,
        startup_ms_median=startup_ms,
        startup_ms_iqr=startup_ms / 10,
        peak_rss_kib_median=rss_kib,
        peak_rss_kib_iqr=rss_kib / 20,
        peak_rss_kib_max=int(rss_kib * 1.1),
        **{**sections, **values},
    )


def frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=RESULT_SCHEMA, orient="row")


@pytest.fixture
def full_frame() -> pl.DataFrame:
    """Two workloads, several post-link chains, an emulated run, failures, hostile labels."""
    rows = []
    for workload, mib in (("hello", 2.0), ("httpd", 7.0)):
        for postlink, factor in (("none", 1.0), ("strip", 0.8), ("upx", 0.35)):
            rows.append(
                measured_row(
                    int(mib * factor * 2**20), 1.2 * mib, 1500.0 * mib, workload=workload,
                    postlink=postlink, upx_level="9" if postlink == "upx" else None,
                )
            )
    rows += [
        measured_row(
            2 * 2**20, 9.5, 14000.0, target="linux/arm64", emulated=True,
            runner="qemu-aarch64-static",
        ),
        row(workload="httpd", toolchain="tinygo", status="build_failed",
            reason="net/http unsupported\n" + _img("reason")),
        row(postlink="upx", upx_level="9", status="broken", reason="exit status 139", run_id="r2",
            size_bytes=100_000),
        measured_row(3 * 2**20, 2.0, 2000.0, workload=HOSTILE_WORKLOAD),
        measured_row(2**20, 1.0, 1000.0, workload=HOSTILE_SHORT),
    ]
    return frame(rows)


@pytest.fixture
def all_failed_frame() -> pl.DataFrame:
    return frame(
        [
            row(status="build_failed", reason="compiler crashed"),
            row(workload="httpd", status="timeout", reason="no answer in 10 s"),
            row(toolchain="gollvm", status="unsupported", reason="not installed"),
        ]
    )


@pytest.fixture
def null_measurements_frame() -> pl.DataFrame:
    """Status ok, but every measurement column null (e.g. a size-only sweep, a bad probe)."""
    return frame([row(), row(workload="httpd")])


# --- prep -------------------------------------------------------------------------


@pytest.mark.unit
def test_labels_are_escaped_unique_and_readable(full_frame):
    labelled = prep.with_labels(full_frame)
    assert labelled["plot_label"].is_unique().all()
    hostile = labelled.filter(pl.col("workload") == HOSTILE_WORKLOAD)
    assert hostile["plot_label"][0].startswith(html.escape(HOSTILE_WORKLOAD) + " · gc")
    assert hostile["plot_group"][0] == html.escape(HOSTILE_WORKLOAD)
    assert "<" not in "".join(labelled["plot_label"]) + "".join(labelled["plot_tick"])
    # Ticks are cut before escaping, so an entity is never split.
    tick = html.unescape(hostile["plot_tick"][0])
    assert tick.endswith("…") and len(tick) == prep.TICK_MAX_CHARS
    first = labelled.filter(pl.col("workload") == "hello", pl.col("postlink") == "none")
    assert first["plot_label"][0] == "hello · gc · default · linux/amd64 · none"


@pytest.mark.unit
def test_labels_disambiguate_the_same_variant_in_two_runs():
    labelled = prep.with_labels(frame([row(run_id="a"), row(run_id="b")]))
    assert labelled["plot_label"].to_list() == [
        "hello · gc · default · linux/amd64 · none · a",
        "hello · gc · default · linux/amd64 · none · b",
    ]


@pytest.mark.unit
def test_sections_leave_out_bss_and_add_up_to_the_file_size(full_frame):
    long = prep.sections(full_frame)
    assert "bss" not in long["section"].to_list()
    totals = long.group_by("plot_label").agg(pl.col("bytes").sum(), pl.col("size_bytes").first())
    assert (totals["bytes"] == totals["size_bytes"]).all()


@pytest.mark.unit
def test_measured_plots_use_ok_rows_only(full_frame):
    assert set(prep.sizes(full_frame)["status"]) == {"ok"}
    assert prep.sizes(full_frame).height == full_frame.filter(pl.col("status") == "ok").height


@pytest.mark.unit
def test_status_counts_list_every_status(full_frame):
    counts = dict(prep.status_counts(full_frame).iter_rows())
    assert counts["build_failed"] == 1 and counts["broken"] == 1 and counts["timeout"] == 0
    assert sum(counts.values()) == full_frame.height


@pytest.mark.unit
def test_prep_copes_with_a_frame_missing_columns():
    sparse = pl.DataFrame({"workload": ["hello"], "status": ["ok"], "size_bytes": [1000]})
    assert prep.sizes(sparse).height == 1
    assert prep.startup(sparse).is_empty()


# --- figures ----------------------------------------------------------------------


@pytest.mark.unit
@pytest.mark.parametrize(
    "make", [figures.size_bars, figures.section_bars, figures.startup_scatter,
             figures.rss_bars, figures.results_table],
)
@pytest.mark.parametrize("name", ["empty", "all_failed", "null_measurements", "full"])
def test_every_figure_copes_with_every_frame(make, name, request, all_failed_frame,
                                             null_measurements_frame, full_frame):
    df = {
        "empty": pl.DataFrame(schema=RESULT_SCHEMA),
        "all_failed": all_failed_frame,
        "null_measurements": null_measurements_frame,
        "full": full_frame,
    }[name]
    fig = make(df)
    assert fig.layout.title.text
    fig.to_json()  # serialisable


@pytest.mark.unit
def test_empty_measured_figures_carry_a_note(all_failed_frame):
    fig = figures.size_bars(all_failed_frame)
    assert not fig.data
    assert "No successfully built" in fig.layout.annotations[0].text


def panels(fig) -> dict[str, list]:
    """A faceted figure's panel title -> the traces drawn on that panel's axes."""
    titles = [a.text for a in fig.layout.annotations if a.yref == "paper" and a.xref == "paper" and a.y <= 1]
    found: dict[str, list] = {t: [] for t in titles}
    for trace in fig.data:
        row = int(trace.yaxis[1:] or 1)
        found[titles[row - 1]].append(trace)
    return found


@pytest.mark.unit
@pytest.mark.parametrize("make", [figures.size_bars, figures.section_bars, figures.startup_scatter,
                                  figures.rss_bars])
def test_emulated_rows_get_panels_and_axes_of_their_own(make, full_frame):
    """Faceted by workload and target: QEMU's milliseconds never share an axis with native ones."""
    fig = make(full_frame)
    found = panels(fig)
    emulated = [t for t in found if "emulated" in t]
    assert emulated == ["hello · linux/arm64 (emulated: QEMU figures, compare within this panel only)"]
    assert "hello · linux/amd64" in found and "httpd · linux/amd64" in found
    axes = {t: {(tr.xaxis, tr.yaxis) for tr in traces} for t, traces in found.items()}
    assert all(len(a) == 1 for a in axes.values()) and len(set.union(*axes.values())) == len(found)
    assert fig.layout.xaxis.matches is None  # own x axes: no shared range
    if make is figures.startup_scatter:
        native_ms = {float(y) for t, traces in found.items() if t not in emulated
                     for tr in traces for y in tr.y}
        emulated_ms = {float(y) for tr in found[emulated[0]] for y in tr.y}
        assert emulated_ms == {9.5} and 9.5 not in native_ms


@pytest.mark.unit
def test_figure_text_is_escaped(full_frame):
    """No trace of any figure carries a raw '<' from the data: plotly would parse it."""
    for fig in [*figures.report_figures(full_frame), figures.results_table(full_frame)]:
        payload = json.dumps(fig.to_plotly_json()["data"], default=str)
        assert "<script" not in payload and "<b>x" not in payload and "<img" not in payload


# --- html -------------------------------------------------------------------------


@pytest.mark.unit
def test_report_inlines_plotlyjs_exactly_once_and_loads_nothing(full_frame):
    text = render_report_html(full_frame, "t", HOSTILE_MANIFEST)
    assert text.count(PLOTLYJS_MARKER) == 1
    assert text.count("Plotly.newPlot(") == N_FIGURES
    # plotly.min.js itself names cdn.plot.ly (a default topojson URL for geo maps, unused
    # here); everything around the inlined library must not.
    start = text.index(PLOTLYJS_MARKER)
    outside = text[:start] + text[text.index("</script>", start):]
    assert "cdn.plot.ly" not in outside and "https://" not in outside
    assert not re.search(r"<script[^>]*\bsrc=", text)
    assert not re.search(r"<link[^>]*\bhref=[\"']?https?:", text)


@pytest.mark.unit
def test_report_escapes_every_user_string(full_frame):
    text = render_report_html(full_frame, HOSTILE_TITLE, HOSTILE_MANIFEST)
    for hostile in (HOSTILE_WORKLOAD, HOSTILE_TITLE, _img("reason"), _img("cpu"), _img("runid")):
        assert hostile not in text
    assert html.escape(HOSTILE_WORKLOAD) in text  # the table cell
    assert html.escape(HOSTILE_TITLE) in text
    assert "<img" not in text and "</script><script>document" not in text


@pytest.mark.unit
def test_report_shows_header_environment_and_status(full_frame):
    text = render_report_html(full_frame, "My sweep", HOSTILE_MANIFEST)
    assert "<h1>My sweep</h1>" in text
    assert "host.cpu" in text and "tools.go" in text and "go1.23.4" in text
    assert "build_failed" in text and "exit status 139" in text
    assert "measured under emulation" in text


@pytest.mark.unit
def test_report_takes_a_list_of_manifests(full_frame):
    text = render_report_html(full_frame, "t", [{"run_id": "a", "k": 1}, {"run_id": "b"}])
    assert text.count("<details><summary>a</summary>") == 1 and text.count("<details><summary>b</summary>") == 1
    assert "<details open" not in text  # the environment is folded


@pytest.mark.unit
@pytest.mark.parametrize("df", [pl.DataFrame(schema=RESULT_SCHEMA), pl.DataFrame()])
def test_empty_report_is_valid(df):
    text = render_report_html(df, "empty")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert text.count(PLOTLYJS_MARKER) == 1
    assert "No rows." in text


@pytest.mark.unit
def test_write_report_creates_parent_dirs(tmp_path, full_frame):
    out = write_report(full_frame, tmp_path / "a" / "b" / "report.html", "t")
    assert out.is_file() and out.read_text(encoding="utf-8").count(PLOTLYJS_MARKER) == 1


@pytest.mark.unit
def test_display_report_emits_plain_html(monkeypatch, full_frame):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    display_report(full_frame, "t")
    assert len(shown) == 1 and isinstance(shown[0], IPython.display.HTML)
    assert shown[0].data.count(PLOTLYJS_MARKER) == 1


# --- rendered in a browser --------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("name", ["full", "empty", "all_failed", "null_measurements"])
def test_report_renders_every_figure(name, tmp_path, full_frame, all_failed_frame,
                                     null_measurements_frame):
    df = {
        "full": full_frame,
        "empty": pl.DataFrame(schema=RESULT_SCHEMA),
        "all_failed": all_failed_frame,
        "null_measurements": null_measurements_frame,
    }[name]
    path = write_report(df, tmp_path / "report.html", HOSTILE_TITLE, HOSTILE_MANIFEST)
    dom = browser.dump_dom(path)
    assert browser.count_rendered_plots(dom) == N_FIGURES
    assert not PWNED.search(dom)


@pytest.mark.slow
def test_hostile_labels_render_as_text_and_run_nothing(tmp_path, full_frame):
    path = write_report(full_frame, tmp_path / "report.html", HOSTILE_TITLE, HOSTILE_MANIFEST)
    dom = browser.dump_dom(path)
    # Nothing ran: no element the payloads would add, the title is untouched.
    assert not PWNED.search(dom), PWNED.search(dom)
    assert f"<title>{html.escape(HOSTILE_TITLE, quote=False)}</title>" in dom
    # Plotly drew the labels as literal text (serialized with &lt;), neither parsed as
    # markup (<b> would become a bold <tspan>) nor double-escaped (&amp;lt;).
    svg_text = re.findall(r"<text\b[^>]*>([^<]*)</text>", dom)
    assert any(t.startswith("&lt;/script&gt;&lt;script&gt;document.title=") for t in svg_text)
    assert "&lt;b&gt;x&lt;/b&gt;&amp;amp; · linux/amd64" in svg_text  # a panel's title
    assert not any("&amp;lt;" in t for t in svg_text)


# --- notebooks --------------------------------------------------------------------


def _notebook(path: Path, cells: list[str]) -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    nb.cells = [new_code_cell(cells[0], metadata={"tags": ["parameters"]})]
    nb.cells += [new_code_cell(source) for source in cells[1:]]
    nbformat.write(nb, path)
    return path


@pytest.fixture
def kernel_env(monkeypatch):
    """Let the notebook kernel import slimlab from this checkout."""
    import os

    paths = [str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))


@pytest.mark.slow
def test_run_notebook_exports_a_report_that_renders(tmp_path, full_frame, kernel_env):
    full_frame.write_parquet(tmp_path / "results.parquet")
    nb = _notebook(
        tmp_path / "report.ipynb",
        [
            'results = "missing.parquet"\ntitle = "x"',
            "import polars as pl\nimport slimlab.report",
            "slimlab.report.display_report(pl.read_parquet(results), title)",
        ],
    )
    out = run_notebook(
        nb, {"results": Path("results.parquet"), "title": "From papermill"},
        tmp_path / "out" / "report.html", cwd=tmp_path,
    )
    assert out == tmp_path / "out" / "report.html"
    assert (tmp_path / "out" / "report.ipynb").is_file()  # kept beside the HTML
    text = out.read_text(encoding="utf-8")
    assert text.count(PLOTLYJS_MARKER) == 1 and "From papermill" in text
    # No script fetched from the network (nbconvert's require.js/MathJax are switched off;
    # its mermaid loader stays, but only imports when a page has mermaid diagrams).
    assert not re.search(r"<script[^>]*\bsrc=[\"']?https?:", text)
    dom = browser.dump_dom(out)
    assert browser.count_rendered_plots(dom) == N_FIGURES
    assert not PWNED.search(dom)


@pytest.mark.slow
def test_run_notebook_failure_says_where_the_notebook_is(tmp_path, kernel_env):
    nb = _notebook(tmp_path / "bad.ipynb", ["x = 1", "raise ValueError('boom')"])
    executed = tmp_path / "kept" / "bad.executed.ipynb"
    with pytest.raises(SlimlabError, match="boom") as info:
        run_notebook(nb, {}, tmp_path / "bad.html", executed_ipynb=executed)
    assert str(executed) in str(info.value)
    assert executed.is_file() and not (tmp_path / "bad.html").exists()


@pytest.mark.unit
def test_run_notebook_never_overwrites_its_source(tmp_path):
    nb = _notebook(tmp_path / "report.ipynb", ["x = 1"])
    from slimlab.notebook import _executed_path

    assert _executed_path(nb, tmp_path / "report.html", None) == tmp_path / "report.executed.ipynb"


@pytest.mark.unit
def test_run_notebook_missing_notebook(tmp_path):
    with pytest.raises(SlimlabError, match="not found"):
        run_notebook(tmp_path / "nope.ipynb", {}, None)


@pytest.mark.unit
def test_report_notebook_is_parameterised():
    nb = json.loads((REPO / "notebooks" / "report.ipynb").read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", [])
    params: dict = {}
    exec("".join(code[0]["source"]), params)  # noqa: S102 - our own notebook's literals
    # None: the data directory (slimlab.results.data_dir), wherever the kernel runs
    assert params["run_path"] is None and params["title"] == "slimlab report"
    assert params["baseline"] is None and params["trends"] is False
    body = "\n".join("".join(c["source"]) for c in code[1:])
    assert "display_path_report(run_path, title, trends=trends," in body and "parse_baseline(baseline)" in body


@pytest.mark.unit
def test_labels_number_true_duplicates():
    labelled = prep.with_labels(frame([row(), row()]))
    assert labelled["plot_label"].to_list() == [
        "hello · gc · default · linux/amd64 · none #1",
        "hello · gc · default · linux/amd64 · none #2",
    ]


@pytest.mark.slow
def test_report_notebook_renders_a_real_run(tiny_run, tmp_path, kernel_env):
    """End to end: the shipped notebook, on a real (small) sweep, through papermill."""
    out = run_notebook(
        REPO / "notebooks" / "report.ipynb",
        {"run_path": str(tiny_run), "title": "tiny run"},
        tmp_path / "report.html",
    )
    text = out.read_text(encoding="utf-8")
    assert text.count(PLOTLYJS_MARKER) == 1 and "tiny run" in text
    assert browser.count_rendered_plots(browser.dump_dom(out)) == N_FIGURES


@pytest.mark.unit
def test_crosscheck_note_states_the_ratio_and_escapes_the_label():
    df = pl.DataFrame([
        row(workload="hello", profile="default", crosscheck_n=15, crosscheck_slimlab_ms_median=2.0,
            crosscheck_hyperfine_ms_median=2.0, crosscheck_slimlab_ms_p25=1.0, crosscheck_hyperfine_ms_p25=1.0),
        row(workload=_img("xcheck"), profile="stripped", crosscheck_n=15, crosscheck_slimlab_ms_median=1.5,
            crosscheck_hyperfine_ms_median=2.0, crosscheck_slimlab_ms_p25=1.0, crosscheck_hyperfine_ms_p25=1.0),
        row(workload="httpd", profile="default"),  # a server: no cross-check
    ], schema=RESULT_SCHEMA)
    text = render_report_html(df, "t")
    assert "2 native CLI variant(s)" in text and "0.866 (geometric mean; 0.750 to 1.000)" in text
    assert "Furthest apart:" in text and "at 0.750" in text
    assert "At the 25th percentile: 1.000 (1.000 to 1.000)" in text
    assert "<img src=x" not in text and "&lt;img src=x" in text


@pytest.mark.unit
def test_image_figure_stacks_the_bytes_by_kind_and_shows_dive_efficiency():
    kinds = {"binary": 1_000_000, "ca_bundle": 200_000, "zoneinfo": 1_300_000, "libc": 0, "rest": 20_000}
    df = pl.DataFrame([
        row(workload="hello", profile="static", status="ok", size_bytes=1_000_000, base="static",
            image_size_bytes=sum(kinds.values()), image_compressed_bytes=900_000, image_efficiency=0.5,
            image_wasted_bytes=123_456, image_bytes_by_kind=[{"kind": k, "bytes": v} for k, v in kinds.items()]),
    ], schema=RESULT_SCHEMA)
    data = prep.images(df).row(0, named=True)
    for kind, size in kinds.items():
        assert data[f"plot_{kind}_mib"] == pytest.approx(size / 1024 / 1024)
    assert data["plot_efficiency_pct"] == 50.0
    fig = figures.image_bars(df)
    # glibc is absent from every image here: no empty trace for it.
    assert [t.name for t in fig.data][:4] == ["the Go binary", "CA bundle (TLS roots)", "zoneinfo (time zones)",
                                              "rest of the base (users, config, licences, shell)"]
    assert sum(t.x[0] for t in fig.data[:4]) == pytest.approx(sum(kinds.values()) / 1024 / 1024)
    compressed = fig.data[-1]  # the full hover rides on the compressed marker
    assert compressed.customdata[0][5] == 123_456 and "dive" in compressed.hovertemplate


@pytest.mark.unit
def test_image_figure_splits_base_and_binary_and_states_the_container_cost():
    common = dict(workload="hello", profile="static", status="ok", size_bytes=1_000_000)
    df = pl.DataFrame([
        row(**common, base="none", startup_ms_median=2.0, peak_rss_kib_median=1800.0),
        row(**common, base="scratch", image_size_bytes=1_000_000, image_compressed_bytes=400_000,
            startup_ms_median=250.0, peak_rss_kib_median=1800.0),
        row(**common, base=_img("base"), image_size_bytes=2_500_000, image_compressed_bytes=900_000,
            startup_ms_median=1000.0, peak_rss_kib_median=1900.0),
    ], schema=RESULT_SCHEMA)
    data = prep.images(df)
    assert data.height == 2
    scratch = data.filter(pl.col("base") == "scratch").row(0, named=True)
    assert scratch["plot_base_mib"] == 0 and scratch["plot_startup_ratio"] == 125.0
    assert scratch["plot_rss_ratio"] == 1.0
    other = data.filter(pl.col("base") != "scratch").row(0, named=True)
    assert other["plot_base_mib"] == pytest.approx(1_500_000 / 1024 / 1024)
    fig = figures.image_bars(df)
    # Rows without the breakdown by kind (older runs): the binary and the rest of the base.
    assert [t.name for t in fig.data] == ["the Go binary", "rest of the base (users, config, licences, shell)",
                                          "compressed (what a registry transfers)"]
    text = fig.to_json()
    assert "<img src=x" not in text and "&lt;img src=x" in text
    assert "No images" in figures.image_bars(df.filter(pl.col("base") == "none")).layout.annotations[0].text


@pytest.mark.unit
def test_container_table_marks_a_hardened_failure_as_a_finding_and_escapes_reasons():
    common = dict(workload="hello", profile="static", status="ok", size_bytes=1_000_000)
    df = pl.DataFrame([
        row(**common, base="none", startup_ms_median=2.0, peak_rss_kib_median=1800.0),
        row(**common, base="scratch", image_size_bytes=1_000_000, startup_ms_median=250.0,
            peak_rss_kib_median=1800.0, cgroup_peak_kib_median=3700.0, container_ok=True,
            container_hardened_ok=False, container_reason="hardened: open <b>/home</b>: read-only file system"),
    ], schema=RESULT_SCHEMA)
    (found,) = prep.containers(df).iter_rows(named=True)
    assert (found["plot_plain"], found["plot_hardened"]) == ("works", "fails (a finding)")
    assert found["plot_startup_x"] == "125.0×" and found["plot_rss_x"] == "1.0×" and found["plot_cgroup_kib"] == "3700"
    assert "&lt;b&gt;" in found["plot_container_reason"]
    fig = figures.container_table(df)
    assert "fails (a finding)" in fig.to_json() and "<b>/home" not in fig.to_json()


@pytest.mark.unit
def test_platform_bars_put_each_images_platforms_side_by_side_with_its_index():
    common = dict(workload=_img("w"), profile="static", status="ok", base="scratch",
                  oci_index_digest="sha256:" + "ab" * 32)
    df = pl.DataFrame([
        row(**common, target="linux/amd64", image_platform="linux/amd64", image_size_bytes=2_000_000,
            oci_image_bytes=800_000),
        row(**common, target="linux/arm64", image_platform="linux/arm64", image_size_bytes=1_900_000,
            oci_image_bytes=700_000),
        row(workload="hello", profile="static", status="ok", base="scratch", image_size_bytes=1_000_000),
    ], schema=RESULT_SCHEMA)
    data = prep.platform_images(df)
    assert data["plot_platform"].to_list() == ["linux/amd64", "linux/arm64"]  # the single-arch image is not here
    assert data["plot_image"].n_unique() == 1 and data["plot_index"].unique().to_list() == ["abababababab"]
    fig = figures.platform_bars(df)
    assert [t.name for t in fig.data if t.type == "bar"] == ["linux/amd64", "linux/arm64"]
    text = fig.to_json()
    assert "<img src=x" not in text and "&lt;img src=x" in text and "index abababababab" in text
    assert "No multi-arch" in figures.platform_bars(df.tail(1)).layout.annotations[0].text


@pytest.mark.unit
def test_cross_cpu_panel_shows_the_programs_own_memory_and_start_up_against_the_same_cpu():
    def bare(target, postlink, startup, rss, scope="program", emulated=False, runner="native"):
        return row(workload=_img("x"), profile="static", status="ok", target=target, postlink=postlink,
                   size_bytes=1_000_000, section_text_bytes=400_000, startup_ms_median=startup,
                   peak_rss_kib_median=rss, memory_scope=scope, emulated=emulated, runner=runner)
    df = pl.DataFrame([
        bare("linux/amd64", "none", 2.0, 2000.0),
        bare("linux/amd64", "upx-9", 20.0, 4000.0),
        bare("linux/arm64", "none", 70.0, 2100.0, emulated=True, runner="qemu-system-aarch64"),
        bare("linux/arm64", "upx-9", 700.0, 4200.0, emulated=True, runner="qemu-system-aarch64"),
        bare("linux/arm/v7", "none", 40.0, None, scope="emulator+program", emulated=True, runner="qemu-arm-static"),
    ], schema=RESULT_SCHEMA)
    data = {(r["target"], r["postlink"]): r for r in prep.cross_cpu(df).iter_rows(named=True)}
    assert data[("linux/arm64", "upx-9")]["plot_startup_rel"] == 10.0  # against arm64's own none, not amd64's
    assert data[("linux/arm64", "none")]["plot_rss_vs_native"] == pytest.approx(1.05)
    assert data[("linux/arm/v7", "none")]["plot_rss_mib"] is None  # QEMU user mode: not the program's memory
    assert data[("linux/amd64", "none")]["plot_text_mib"] == pytest.approx(400_000 / 1024 / 1024)
    fig = figures.cross_cpu_panel(df)
    text = fig.to_json()
    assert "<img src=x" not in text and "&lt;img src=x" in text
    one_cpu = df.filter(pl.col("target") == "linux/amd64")
    assert "One target CPU" in figures.cross_cpu_panel(one_cpu).layout.annotations[0].text


@pytest.mark.unit
def test_the_scatter_shows_builds_and_agrees_with_the_answers_frontier():
    """Images start in a container and are ranked apart (slimlab.analysis): the size/start-up
    scatter of binaries leaves them out, and names the same frontier as the answers."""
    rows = [measured_row(2_000_000, 1.0, 1500.0, profile="default"),
            measured_row(1_300_000, 1.1, 1500.0, profile="stripped"),
            measured_row(1_400_000, 1.5, 1600.0, profile="trimmed"),  # dominated by stripped
            measured_row(1_300_000, 400.0, 1600.0, profile="stripped", base="scratch", image_size_bytes=1_400_000)]
    df = frame(rows)
    scatter = prep.startup(df)
    assert sorted(scatter["profile"]) == ["default", "stripped", "trimmed"]
    assert set(scatter["base"].drop_nulls()) <= {"none"}
    named = {t for trace in figures.startup_scatter(df).data if trace.mode == "markers+text" for t in trace.text}
    answered = analysis.answer_rows(df).filter(pl.col("on_frontier") & (pl.col("base").fill_null("none") == "none"))
    assert len(named) == answered.height == 2
