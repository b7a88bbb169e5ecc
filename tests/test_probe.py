"""The capability matrix: real probe programs, compiled and run with real toolchains."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import plotly.graph_objects as go
import polars as pl
import pytest

from browser import dump_dom
from conftest import path_without, require

from slimlab import probe, toolchains
from slimlab.report import figures
from slimlab.build import default_cache_dir
from slimlab.errors import SpecError
from slimlab.model import Profile

log = logging.getLogger(__name__)
HOSTILE = "<script>alert('probe')</script> & <b>bold</b>"


@pytest.fixture(scope="module")
def go_frame() -> pl.DataFrame:
    df = probe.run_probes(["go"])
    log.info("capability matrix, host go:\n%s", df.select("probe", "passed", "stage", "seconds"))
    return df


def host_go():
    adapter = toolchains.get("go")
    info = adapter.detect()
    assert info is not None, "the host go is needed"
    return adapter, info


def custom_probe(tmp_path: Path, name: str, main_go: str, profile: Profile, **kw) -> probe.Probe:
    source = tmp_path / name
    source.mkdir()
    (source / "go.mod").write_text(f"module slimlab.probe/{name}\n\ngo 1.18\n")
    (source / "main.go").write_text(main_go)
    base = probe.Probe(name, name, profile, f"test probe {name}", probe._expect("ok\n"), **kw)
    return replace(base, source=str(source))  # an absolute source: PROBES_DIR / abs == abs


def test_one_row_per_probe_with_the_schema(go_frame):
    assert go_frame.schema == pl.Schema(probe.SCHEMA)
    assert go_frame["probe"].to_list() == probe.probe_names()
    assert set(go_frame["toolchain"]) == {"go"}
    assert go_frame["toolchain_version"].str.starts_with("go version go").all()


def test_every_probe_passes_with_the_host_go(go_frame):
    failed = go_frame.filter(~pl.col("passed"))
    assert failed.is_empty(), failed.select("probe", "stage", "error").to_dicts()
    assert go_frame["error"].null_count() == go_frame.height  # no error text on a pass
    assert (go_frame["stage"] == "check").all()  # a pass went through every stage
    assert (go_frame["seconds"] > 0).all() and (go_frame["build_seconds"] > 0).all()


def test_static_probes_really_are_static(go_frame):
    """Re-read the cached binaries: the ones that must be static have no ELF interpreter."""
    adapter, info = host_go()
    from slimlab.build import build
    from slimlab.model import TARGETS
    from slimlab.workloads import Workload

    for p in probe.PROBES:
        if p.must_be_static:
            out = build(Workload(p.name, p.source_dir), adapter, info, p.profile, TARGETS["linux/amd64"],
                        default_cache_dir(), 600)
            assert out.ok and out.cached  # built once, by the matrix above
            assert probe.dynamic_linking(out.binary) is None


def test_build_failure_is_recorded_with_the_compiler_error(tmp_path):
    """A program that needs cgo cannot build with cgo off: stage build, go's own message."""
    needs_cgo = custom_probe(tmp_path, "needs-cgo", 'package main\n\n// int answer(void) { return 42; }\n'
                             'import "C"\n\nimport "fmt"\n\nfunc main() { fmt.Println(C.answer()) }\n',
                             Profile("probe-cgo-off", cgo=False))
    row = probe.run_probe(*host_go(), needs_cgo, default_cache_dir())
    assert (row["passed"], row["stage"]) == (False, "build")
    assert "build constraints exclude all Go files" in row["error"], row["error"]


def test_dynamic_binary_fails_the_static_check():
    """os/user with cgo on links libc dynamically: the static requirement must catch it."""
    with_cgo = replace(probe.PROBES[probe.probe_names().index("os-user-cgo-off")], name="os-user-cgo-on",
                       profile=Profile("probe-cgo-on", cgo=True))
    row = probe.run_probe(*host_go(), with_cgo, default_cache_dir())
    assert (row["passed"], row["stage"]) == (False, "check"), row
    assert row["error"].startswith("not static: interpreter /"), row["error"]


def test_run_failure_keeps_stderr(tmp_path):
    crashing = custom_probe(tmp_path, "crashing",
                            'package main\n\nimport (\n\t"fmt"\n\t"os"\n)\n\nfunc main() {\n'
                            f'\tfmt.Fprintln(os.Stderr, "{HOSTILE}")\n\tos.Exit(3)\n}}\n',
                            Profile("probe"))
    row = probe.run_probe(*host_go(), crashing, default_cache_dir())
    assert (row["passed"], row["stage"]) == (False, "run")
    assert "exit 3" in row["error"] and "<script>" in row["error"]


def test_wrong_output_is_a_check_failure():
    goroutines = probe.PROBES[probe.probe_names().index("goroutines")]
    wrong = replace(goroutines, check_output=probe._expect("jobs=1\n"))
    row = probe.run_probe(*host_go(), wrong, default_cache_dir())
    assert (row["passed"], row["stage"]) == (False, "check")
    assert "expected output 'jobs=1\\n'" in row["error"]


def test_missing_toolchain_gets_not_installed_rows(hide_tools):
    hide_tools("tinygo")  # absent even where it is installed: the test is about its absence
    df = probe.run_probes(["tinygo"])
    assert df.height == len(probe.PROBES)
    assert df["passed"].null_count() == df.height and df["toolchain_version"].null_count() == df.height
    assert df["error"].str.starts_with("not installed: ").all()


def test_gccgo_matrix():
    require("gccgo", "apt-get install gccgo")
    df = probe.run_probes(["gccgo"])
    log.info("capability matrix, gccgo:\n%s", df.select("probe", "passed", "stage", "error"))
    assert df["probe"].to_list() == probe.probe_names()
    assert df["toolchain_version"].str.contains("gccgo").all()
    assert df["passed"].null_count() == 0
    # A failure always says why; a pass never carries an error.
    assert (df["passed"] == df["error"].is_null()).all()


@pytest.mark.unit
def test_unknown_probe_name_is_a_spec_error():
    with pytest.raises(SpecError, match="did you mean 'goroutines'"):
        probe.run_probes(["go"], probes=["gorutines"])


# -- the figure ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mixed_frame(go_frame, tmp_path_factory) -> pl.DataFrame:
    """Real rows of every kind: passes (host go), a failure with hostile stderr, not installed."""
    tmp = tmp_path_factory.mktemp("hostile")
    src = tmp / "hostile"
    src.mkdir()
    (src / "go.mod").write_text("module slimlab.probe/hostile\n\ngo 1.18\n")
    (src / "main.go").write_text('package main\n\nimport (\n\t"fmt"\n\t"os"\n)\n\nfunc main() {\n'
                                 '\tfmt.Fprintln(os.Stderr, "<script>alert(1)</script> & <b>bold</b>")\n'
                                 '\tos.Exit(3)\n}\n')
    hostile = probe.Probe("<i>hostile</i>", str(src), Profile("probe"), "prints HTML", probe._expect("ok\n"))
    failing = pl.DataFrame([probe.run_probe(*host_go(), hostile, default_cache_dir())], schema=probe.SCHEMA)
    with pytest.MonkeyPatch.context() as patch:  # a not-installed row, whether or not TinyGo is here
        patch.setenv("PATH", path_without({"tinygo"}, tmp / "path-without-tinygo"))
        not_installed = probe.run_probes(["tinygo"], probes=["goroutines"])
    return pl.concat([go_frame, failing, not_installed])


def test_heatmap_cells_colours_and_escaping(mixed_frame):
    fig = figures.capability_heatmap(mixed_frame)
    assert isinstance(fig, go.Figure)
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == 1
    heat = heat[0]
    assert list(heat.x[: len(probe.PROBES)]) == probe.probe_names()
    assert "&lt;i&gt;hostile&lt;/i&gt;" in heat.x  # labels are escaped
    values = {v for row in heat.z for v in row if v is not None}
    assert {0.0, 1.0} <= values
    hover = "\n".join(h for row in heat.customdata for h in row)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hover and "<script>" not in hover
    assert "&lt;b&gt;bold&lt;/b&gt;" in hover
    assert "failed at run" in hover
    assert 0.5 in values and "not installed" in hover


def test_heatmap_renders_offline_in_a_browser(mixed_frame, tmp_path):
    page = tmp_path / "matrix.html"
    figures.capability_heatmap(mixed_frame).write_html(page, include_plotlyjs=True, full_html=True)
    dom = dump_dom(page)
    assert 'class="hm"' in dom or "heatmaplayer" in dom  # plotly drew the heatmap
    assert "<script>alert(1)</script>" not in dom
    for name in probe.probe_names():
        assert name in dom
