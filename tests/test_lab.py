"""The explorer (slimlab.explore), its notebook under papermill and in JupyterLab, and the
sweep's progress in notebooks.

The browser test starts `slimlab lab` on a copy of notebooks/explore.ipynb beside a real
run whose user workload's path is an <img onerror> payload, and drives Debian's Chromium
with Playwright (tests/lab_explorer.js): run all cells, read the figure, change a dropdown,
facet, save. Chromium, node and playwright-core are set-up's job: missing, the test fails.
"""

from __future__ import annotations

import html
import xml.etree.ElementTree as ET
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import plotly.graph_objects as go
import polars as pl
import pytest
from browser import chromium_path, count_rendered_plots, dump_dom
from conftest import REPO, require

import slimlab
from slimlab import progress
from slimlab.errors import SlimlabError, SpecError
from slimlab.explore import Explorer, update_in_place
from slimlab.notebook import lab_argv
from slimlab.report import prep
from slimlab.results_schema import RESULT_SCHEMA

HOSTILE = "<img src=x onerror=window.__xss=1>"
PLAYWRIGHT = REPO / ".cache" / "node" / "node_modules" / "playwright-core"
LAB_SCRIPT = REPO / "tests" / "lab_explorer.js"


def frame(rows: list[dict]) -> pl.DataFrame:
    """A results frame from a few columns per row; the rest of the schema is null."""
    base = {"run_id": "r1", "toolchain": "go", "target": "linux/amd64", "postlink": "none", "base": "none",
            "status": "ok"}
    df = pl.DataFrame([{**base, **r} for r in rows], infer_schema_length=None)
    return prep.conform(df.cast({c: RESULT_SCHEMA[c] for c in df.columns}))


SMALL = [
    {"workload": "a", "profile": "default", "size_bytes": 4 << 20, "startup_ms_median": 2.0},
    {"workload": "a", "profile": "stripped", "size_bytes": 3 << 20, "startup_ms_median": 2.1},
    {"workload": "b", "profile": "default", "size_bytes": 6 << 20, "startup_ms_median": 3.0},
    {"workload": "b", "profile": "static", "size_bytes": 5 << 20, "startup_ms_median": 3.2},
    {"workload": "b", "profile": "static", "target": "linux/arm64", "size_bytes": 5 << 20,
     "startup_ms_median": 40.0},
    {"workload": "b", "profile": "default", "target": "linux/arm64", "status": "build_failed",
     "reason": "no cross compiler"},
]


def bars(fig: go.Figure) -> int:
    return sum(len(t.y) for t in fig.data)


# -- the explorer without a browser ----------------------------------------------------
@pytest.mark.unit
def test_linked_filters_offer_only_values_that_occur():
    explorer = Explorer(frame(SMALL))
    assert explorer.options("profile") == ["default", "static", "stripped"]
    explorer.select(workload="b")
    assert explorer.options("profile") == ["default", "static"]
    assert explorer.options("workload") == ["a", "b"]  # a filter never narrows its own dropdown
    explorer.select(profile="static")
    assert explorer.options("workload") == ["b"]
    assert explorer.options("target") == ["linux/amd64", "linux/arm64"]
    # Workload a has no static build: the profile filter is cleared, not left matching nothing.
    explorer.select(workload="a")
    assert explorer.filters["profile"] is None
    assert explorer.rows()["profile"].to_list() == ["default", "stripped"]


@pytest.mark.unit
def test_bad_names_are_refused_with_the_valid_ones():
    df = frame(SMALL)
    with pytest.raises(SpecError, match=r"unknown metric 'sise' \(did you mean 'size'\?\); valid: size, startup"):
        Explorer(df, metric="sise")
    with pytest.raises(SpecError, match=r"colour-by axis 'profil' \(did you mean 'profile'\?\)"):
        Explorer(df, color="profil")
    with pytest.raises(SpecError, match=r"facet-by axis 'cpu'.*valid: run_id, measured_on, workload, toolchain, profile, target"):
        Explorer(df, facet="cpu")
    with pytest.raises(SpecError, match=r"unknown workload 'c'; valid: a, b"):
        Explorer(df, filters={"workload": "c"})
    assert Explorer(df, facet="None", color="none").facet is None  # as `slimlab run -p facet None` passes it
    with pytest.raises(SpecError, match="unknown metric"):
        Explorer(Path("/nonexistent"), metric="sise")  # names are checked before the runs are read


@pytest.mark.unit
def test_figure_follows_filters_metric_and_facets():
    explorer = Explorer(frame(SMALL), color="profile")
    fig = explorer.figure()
    assert bars(fig) == 5  # the failed row is in the table, not in the figure
    assert sorted(t.name for t in fig.data) == ["default", "static", "stripped"]
    assert "Binary size (MiB)" in fig.layout.title.text
    explorer.select(workload="a")
    fig = explorer.figure()
    assert bars(fig) == 2 and max(x for t in fig.data for x in t.x) == pytest.approx(4.0)
    explorer.select(workload=None)
    explorer.metric, explorer.facet = "startup", "target"
    fig = explorer.figure()
    assert fig.layout.xaxis2 is not None and fig.layout.yaxis2 is not None  # arm64 on its own axes
    arm = [t for t in fig.data if t.xaxis == "x2"]
    assert [x for t in arm for x in t.x] == [40.0]
    assert "Start-up" in fig.layout.title.text
    explorer.select(profile="stripped")
    explorer.select(target="linux/arm64")  # no stripped build there: the older choice is cleared
    assert explorer.filters == {**dict.fromkeys(explorer.axes), "target": "linux/arm64"}
    assert "2 selected row(s)" in explorer.table_html()


@pytest.mark.unit
def test_several_runs_are_an_axis_and_tell_bars_apart():
    df = pl.concat([frame(SMALL[:2]), frame(SMALL[:2]).with_columns(pl.lit("r2").alias("run_id"),
                                                                     pl.col("size_bytes") + 1)])
    explorer = Explorer(df, color="run_id")
    assert explorer.axes[0] == "run_id" and explorer.options("run_id") == ["r1", "r2"]
    fig = explorer.figure()
    labels = [y for t in fig.data for y in t.y]
    assert sorted(t.name for t in fig.data) == ["r1", "r2"] and len(set(labels)) == 4
    explorer.select(run_id="r2")
    assert bars(explorer.figure()) == 2 and "Run r2" in explorer.title()


@pytest.mark.unit
def test_timings_of_several_hosts_are_never_on_one_scale():
    two = pl.concat([frame(SMALL[:4]).with_columns(pl.lit("ci-a").alias("host"), pl.lit("aaa").alias("host_fingerprint")),
                     frame(SMALL[:2]).with_columns(pl.lit(HOSTILE).alias("host"), pl.lit("bbb").alias("host_fingerprint"),
                                                   pl.col("startup_ms_median") * 3)])
    explorer = Explorer(two, metric="startup")
    assert "measured_on" in explorer.axes and explorer.options("measured_on") == [f"{HOSTILE} [bbb]", "ci-a [aaa]"]
    fig = explorer.figure()
    titles = [a.text for a in fig.layout.annotations]
    assert titles == [f"Host {html.escape(HOSTILE)} [bbb]", "Host ci-a [aaa]"]  # a panel per host, escaped
    axes = {t.xaxis for t in fig.data}
    assert len(axes) == 2 and bars(fig) == 6
    # Sizes are the same wherever measured: one panel, the host in no bar's name.
    sizes = Explorer(two, metric="size").figure()
    assert not sizes.layout.annotations and {t.xaxis for t in sizes.data} == {"x"}
    explorer.select(measured_on="ci-a [aaa]")
    assert not explorer.figure().layout.annotations and "Host ci-a [aaa]" in explorer.title()
    one = Explorer(frame(SMALL[:2]).with_columns(pl.lit("h").alias("host")), metric="startup")
    assert "measured_on" not in one.axes  # one host: not an axis


KINDS = [  # one workload, each kind of run: native, under QEMU, in a container, both
    {"workload": "a", "profile": "default", "size_bytes": 4 << 20, "startup_ms_median": 1.7,
     "cpu_ms_median": 1.2},
    {"workload": "a", "profile": "stripped", "size_bytes": 3 << 20, "startup_ms_median": 1.8,
     "cpu_ms_median": 1.3},
    {"workload": "a", "profile": "default", "target": "linux/arm64", "emulated": True,
     "runner": "qemu-aarch64-static", "size_bytes": 4 << 20, "startup_ms_median": 150.0,
     "cpu_ms_median": 140.0},
    {"workload": "a", "profile": "default", "base": "scratch", "size_bytes": 4 << 20,
     "startup_ms_median": 390.0, "cpu_ms_median": 1.4},
    {"workload": "a", "profile": "default", "base": "scratch", "target": "linux/arm64", "emulated": True,
     "size_bytes": 4 << 20, "startup_ms_median": 3966.0, "cpu_ms_median": 150.0},
]


@pytest.mark.unit
def test_native_emulated_and_container_timings_never_share_an_axis():
    """Issue 17 item 6: start-up of native (1.7 ms), QEMU (150 ms) and container runs (up to
    3,966 ms) on one linear axis. Each kind is a panel of its own, native first, emulated marked."""
    for metric in ("startup", "cpu"):
        fig = Explorer(frame(KINDS), metric=metric).figure()
        titles = [a.text for a in fig.layout.annotations]
        assert titles == ["native", "emulated (QEMU: not native timings)", "container",
                          "container, emulated (QEMU: not native timings)"], (metric, titles)
        by_axis = {}
        for trace in fig.data:
            by_axis.setdefault(trace.xaxis, []).extend(trace.x)
        assert len(by_axis) == 4 and sorted(len(v) for v in by_axis.values()) == [1, 1, 1, 2]
        native = by_axis["x"]  # the first panel's axis holds only the native bars
        assert sorted(native) == ([1.7, 1.8] if metric == "startup" else [1.2, 1.3])
    # A facet the user chose is split by kind too; the bars need not say the kind then.
    fig = Explorer(frame(KINDS), metric="startup", facet="target").figure()
    assert [a.text for a in fig.layout.annotations] == [
        "Target linux/amd64 · native", "Target linux/amd64 · container",
        "Target linux/arm64 · emulated (QEMU: not native timings)",
        "Target linux/arm64 · container, emulated (QEMU: not native timings)"]
    # One kind left by a filter: one panel, marked when it is emulated, unmarked when native.
    explorer = Explorer(frame(KINDS), metric="startup", filters={"kind": "emulated"})
    assert [a.text for a in explorer.figure().layout.annotations] == ["emulated (QEMU: not native timings)"]
    explorer.select(kind="native")
    assert not explorer.figure().layout.annotations and {t.xaxis for t in explorer.figure().data} == {"x"}
    # Sizes are the same figure whatever runs them: one panel, unless asked for a panel per kind.
    assert not Explorer(frame(KINDS), metric="size").figure().layout.annotations
    assert len(Explorer(frame(KINDS), metric="size", facet="kind").figure().layout.annotations) == 4
    assert "kind" in Explorer(frame(KINDS)).axes and "kind" not in Explorer(frame(SMALL[:4])).axes


@pytest.mark.unit
def test_selection_with_nothing_to_plot_says_so():
    explorer = Explorer(frame(SMALL), metric="peak_rss")
    fig = explorer.figure()
    assert not fig.data and "No ok row with peak rss, median" in fig.layout.annotations[0].text


@pytest.mark.unit
def test_widgets_update_the_figure_in_place():
    explorer = Explorer(frame(SMALL), color="profile")
    box = explorer.widget
    figure = explorer._figure
    assert isinstance(figure, go.FigureWidget) and figure in box.children
    sent = []
    figure.observe(lambda change: sent.append(change.name) if change.new else None,
                   names=["_py2js_addTraces", "_py2js_deleteTraces", "_py2js_restyle", "_py2js_relayout",
                          "_py2js_update"])
    explorer._dropdowns["workload"].value = "b"
    assert explorer._figure is figure and bars(figure) == 3
    # Linked: the profile dropdown now offers b's profiles only.
    assert [v for _, v in explorer._dropdowns["profile"].options] == ["", "default", "static"]
    explorer._facet.value = "target"
    assert "xaxis2" in figure.layout.to_plotly_json()
    explorer._facet.value = ""
    assert "xaxis2" not in figure.layout.to_plotly_json()  # the gone facet's axes are removed, not left empty
    explorer._color.value = ""
    assert len(figure.data) == 1 and bars(figure) == 3
    assert "_py2js_deleteTraces" in sent and "_py2js_update" in sent
    assert "4 selected row(s)" in explorer._table.value  # the failed build is listed, not drawn


@pytest.mark.unit
def test_update_in_place_matches_a_fresh_figure():
    explorer = Explorer(frame(SMALL), color="profile", facet="target")
    widget = go.FigureWidget(explorer.figure())
    explorer.facet, explorer.color = None, "workload"
    fresh = explorer.figure()
    update_in_place(widget, fresh)

    def traces(fig) -> list[dict]:
        return [{k: v for k, v in t.items() if k != "uid"} for t in fig.to_plotly_json()["data"]]

    assert traces(widget) == traces(fresh)
    assert widget.layout.to_plotly_json() == fresh.layout.to_plotly_json()


@pytest.mark.unit
def test_hostile_labels_stay_text(tmp_path):
    rows = [{**r, "workload": f"/src/{HOSTILE}" if r["workload"] == "a" else r["workload"]} for r in SMALL]
    rows[-1]["reason"] = f"failed: {HOSTILE}"
    explorer = Explorer(frame(rows), facet="workload")
    payload = explorer.figure().to_json()
    assert HOSTILE not in payload and html.escape(HOSTILE) in payload
    table = explorer.table_html()
    assert "<img" not in table and table.count(html.escape(HOSTILE)) == 3
    [saved] = explorer.save(tmp_path / "figures")
    text = saved.read_text()
    assert saved.parent == tmp_path / "figures" and "<html>" in text
    assert HOSTILE not in text and "* plotly.js v" in text  # plotly.js inlined, no CDN
    assert '<script src="https://' not in text


@pytest.mark.slow  # a browser (kaleido drives chromium)
def test_explorer_exports_the_view_for_papers_from_a_running_event_loop(tmp_path):
    """The buttons' export (kaleido driving Debian's chromium) also works where a kernel runs
    it: inside an asyncio loop that is already running."""
    import asyncio

    rows = [{**r, "workload": f"/src/{HOSTILE}" if r["workload"] == "a" else r["workload"]} for r in SMALL]
    explorer = Explorer(frame(rows), facet="workload")

    async def in_a_kernel():
        return explorer.save(tmp_path / "figures", formats=("html", "svg", "pdf"))

    paths = asyncio.run(in_a_kernel())
    assert sorted(p.suffix for p in paths) == [".html", ".pdf", ".svg"]
    svg = next(p for p in paths if p.suffix == ".svg").read_text()
    tree = ET.fromstring(svg)  # well-formed
    texts = ["".join(node.itertext()) for node in tree.iter("{http://www.w3.org/2000/svg}text")]
    assert f"/src/{HOSTILE}" in texts  # the label is a text node's characters...
    assert not [node for node in tree.iter() if node.tag.endswith("img")]  # ...never an element
    assert next(p for p in paths if p.suffix == ".pdf").read_bytes().startswith(b"%PDF")
    with pytest.raises(SlimlabError, match="svgg"):
        explorer.save(tmp_path / "figures", formats=("svgg",))


@pytest.mark.unit
def test_lab_command(tmp_path):
    argv = lab_argv(tmp_path, port=8999, ip="127.0.0.1", open_browser=False)
    assert argv[:3] == [sys.executable, "-m", "jupyterlab"]  # the server, hence the kernel, is this Python
    assert f"--ServerApp.root_dir={tmp_path}" in argv and "--no-browser" in argv
    assert "--ServerApp.port=8999" in argv and "--ServerApp.port_retries=0" in argv  # that port or an error
    assert lab_argv()[3] == f"--ServerApp.root_dir={REPO / 'notebooks'}"
    with pytest.raises(SlimlabError, match="no directory .*nowhere to open JupyterLab on"):
        lab_argv(tmp_path / "nowhere")


@pytest.mark.unit
def test_progress_bars_follow_the_frontend(monkeypatch):
    class Shell:
        kernel = object()

    import IPython

    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    assert not progress.in_kernel()
    bar = progress.tqdm(total=3, file=io.StringIO())
    assert bar.mininterval == 0.1  # a terminal's usual refresh
    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell())
    assert progress.in_kernel() and not progress.widget_frontend()
    bar = progress.tqdm(total=3, file=io.StringIO())
    assert bar.mininterval == progress.HEADLESS_INTERVAL_S  # papermill: a few lines, not one per tick
    monkeypatch.setenv("JPY_SESSION_NAME", "/nb/explore.ipynb")
    assert progress.widget_frontend()


# -- real runs, papermill and JupyterLab ---------------------------------------------------
@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory) -> Path:
    """A real small sweep: hello and a user workload whose directory name is an <img> payload."""
    root = tmp_path_factory.mktemp("lab")
    workload = root / "src" / HOSTILE
    workload.mkdir(parents=True)
    # The module path has to be valid; the directory name is what labels show.
    (workload / "go.mod").write_text("module example.com/xss\n\ngo 1.21\n")
    (workload / "main.go").write_text('package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hi") }\n')
    (workload / "workload.toml").write_text('kind = "cli"\nexpect_stdout = "hi\\n"\n')
    spec = {"workloads": [str(workload), "hello"], "profiles": ["default", "stripped"], "repeats": 3, "warmup": 0}
    run = slimlab.sweep(spec, data_dir=root / "data", run_id="xss", progress=False)
    assert slimlab.load(run)["status"].to_list() == ["ok"] * 4
    return run


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slimlab.cli", *args], cwd=cwd, check=False, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_explore_notebook_renders_statically_under_papermill(hostile_run, tmp_path):
    out = tmp_path / "explore.html"
    done = _cli("run", str(REPO / "notebooks" / "explore.ipynb"), "-p", "run_path", str(hostile_run),
                "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    executed = nbformat.read(out.with_suffix(".ipynb"), as_version=4)
    outputs = [o for cell in executed.cells if cell.cell_type == "code" for o in cell.outputs]
    mimes = {m for o in outputs for m in o.get("data", {})}
    assert "text/html" in mimes and "application/vnd.jupyter.widget-view+json" not in mimes
    dom = dump_dom(out)
    assert count_rendered_plots(dom) == 1
    assert "<img src=\"x\"" not in dom and html.escape(HOSTILE) in dom  # shown as text, never an element


@pytest.mark.slow
def test_sweep_notebook_progress_is_plain_lines_under_papermill(tmp_path):
    out = tmp_path / "sweep.html"
    done = _cli("run", str(REPO / "notebooks" / "sweep.ipynb"), "-p", "workloads", '["hello"]',
                "-p", "profiles", '["default"]', "-p", "repeats", "2", "-p", "warmup", "0",
                "-p", "data_dir", str(tmp_path / "data"), "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    executed = nbformat.read(out.with_suffix(".ipynb"), as_version=4)
    sweep_cell = next(c for c in executed.cells if "slimlab.sweep(" in c.source)
    text = "".join(o.get("text", "") for o in sweep_cell.outputs if o.output_type == "stream")
    assert "build+check: 100%" in text and "measure: 100%" in text
    assert not [o for o in sweep_cell.outputs if o.output_type == "display_data"]  # no widget references


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _processes_mentioning(marker: str) -> list[int]:
    """Pids whose command line holds ``marker`` (a path unique to this test)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _stop(server: subprocess.Popen, runtime: Path) -> None:
    """SIGTERM: Jupyter shuts its kernels down and exits; whatever is left (a kernel runs in
    its own session) is found by the test's runtime directory in its command line."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
    for pid in _processes_mentioning(str(runtime)):
        os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_explorer_in_jupyterlab_with_chromium(hostile_run, tmp_path):
    node = require("node", "apt-get install nodejs npm")
    chromium = chromium_path()
    if not (PLAYWRIGHT / "package.json").is_file():
        pytest.fail(f"playwright-core is not installed in {PLAYWRIGHT}; `make setup` installs it", pytrace=False)
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(REPO / "notebooks" / "explore.ipynb", root)
    # Away from the notebook: its run_path None means the data directory `slimlab lab --data` names.
    shutil.copytree(hostile_run.parent.parent, tmp_path / "elsewhere" / "data")
    jupyter = tmp_path / "jupyter"  # Jupyter's own state stays in the test, away from the user's
    token, port = secrets.token_hex(16), _free_port()
    env = {**os.environ, "JUPYTER_TOKEN": token, "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime"),
           "JUPYTER_CONFIG_DIR": str(jupyter / "config"), "JUPYTER_DATA_DIR": str(jupyter / "data"),
           "JUPYTERLAB_SETTINGS_DIR": str(jupyter / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(jupyter / "workspaces")}
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "slimlab.cli", "lab", str(root), "--port", str(port),
                               "--no-browser", "--data", str(tmp_path / "elsewhere" / "data")], env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not come up on port {port}:\n{(tmp_path / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.25)
        started = time.monotonic()
        done = subprocess.run([node, str(LAB_SCRIPT), str(PLAYWRIGHT), base, token, str(tmp_path), chromium],
                              check=False, capture_output=True, text=True, timeout=900)
        seconds = time.monotonic() - started
        assert done.returncode == 0, (f"{done.stderr[-4000:]}\n--- jupyter log:\n"
                                      f"{(tmp_path / 'lab.log').read_text()[-4000:]}")
        seen = json.loads(done.stdout)
        print(f"browser test: {seconds:.1f} s (page open {seen['openMs']} ms, all cells run {seen['ranMs']} ms)")
    finally:
        _stop(server, jupyter)
        log.close()
    assert not _processes_mentioning(str(jupyter)), "a Jupyter server or kernel outlived the test"

    before, filtered = seen["before"], seen["filtered"]
    assert before["bars"] == 4 and len(before["ticks"]) == 4
    # The payload is drawn as text: the tick labels' textContent holds it literally (cut to
    # the tick's length, after its dangerous part).
    assert sum("<img src=x onerror=" in tick for tick in before["ticks"]) == 2, before["ticks"]
    assert before["width"] > 0.9 * before["outputWidth"]  # the figure fills the output area
    assert seen["profileOptions"] == ["(all)", "default", "stripped"]
    # The dropdown changed the figure's data, in the same plot div (a FigureWidget updated in place).
    assert filtered["bars"] == 2 and filtered["sameDiv"]
    assert sorted(filtered["values"]) != sorted(before["values"])
    assert "Profile stripped" in filtered["title"]
    assert HOSTILE in seen["tableBefore"] and seen["tableFiltered"].startswith("2 selected row(s)")
    assert seen["faceted"]["subplots"] == 2 and seen["unfaceted"]["subplots"] == 1
    assert seen["unfaceted"]["sameDiv"]
    assert seen["saveMessage"].startswith("Saved ")
    (saved,) = (root / "figures").glob("explore-size-*.html")
    assert html.escape(HOSTILE) in saved.read_text()
    assert seen["xss"] == "undefined" and seen["injectedImages"] == 0
    assert not seen["pageErrors"], seen["pageErrors"]
