"""The build lines the answers print rebuild the row's shipped bytes, pasted into a clean shell."""

from __future__ import annotations

import hashlib
import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest

import slimlab
from slimlab import buildline
from slimlab.errors import SlimlabError
from slimlab.report.answers import answers_html
from slimlab.workloads import resolve

SPEC = {"workloads": ["hello"], "toolchains": ["go"], "profiles": ["default", "static", "trimmed"],
        "targets": ["linux/amd64", "linux/arm64"], "postlink": ["none", "strip"], "runner": "qemu-user",
        "repeats": 3, "warmup": 0, "probe": False}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return slimlab.sweep(SPEC, data_dir=tmp_path_factory.mktemp("buildline") / "data", run_id="lines", progress=False)


def clean_shell(line: str, home: Path) -> subprocess.CompletedProcess:
    """``line`` in bash with nothing of this process's environment but a PATH to go and binutils."""
    go = Path(shutil.which("go")).parent
    return subprocess.run(["env", "-i", f"PATH={go}:/usr/bin:/bin", f"HOME={home}", "bash", "-c", line],
                          capture_output=True, text=True, timeout=600, check=False)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_trimpath_row_is_rebuilt_byte_for_byte_by_its_line_in_a_clean_shell(run, tmp_path):
    df = slimlab.load(run)
    rows = df.filter(pl.col("status") == "ok").to_dicts()
    trimmed = [r for r in rows if "-trimpath" in (r["flags"] or [])]
    assert {r["target"] for r in trimmed} == {"linux/amd64", "linux/arm64"}
    assert {tuple(r["postlink_steps"]) for r in trimmed} == {(), ("strip",)}
    for row in trimmed:
        source = tmp_path / row["variant_key"].replace("|", "_").replace("/", "-")
        shutil.copytree(resolve("hello").source_dir, source)
        line = buildline.build_line(row, buildline.settings_for(rows, row), source)
        assert "GOOS=linux" in line.build_shell() and f"GOARCH={row['target'].split('/')[1]}" in line.build_shell()
        done = clean_shell(line.shell(), tmp_path / "home")
        assert done.returncode == 0, done.stderr
        assert sha256(source / line.output) == row["binary_sha256"], (row["variant_key"], line.shell())


def test_the_recommended_line_in_the_report_rebuilds_its_binary_for_each_target(run, tmp_path):
    df = slimlab.load(run)
    text = answers_html(df, slimlab.load_samples(run), slimlab.load_manifests(run))
    blocks = text.split('<div class="answer">')[1:]
    checked = set()
    for block in blocks:
        key_target = re.search(r"<h3>hello <small>([^ ]+) ", block).group(1)
        build = html.unescape(re.search(r"build in <code>[^<]+</code>: <code>([^<]+)</code>", block).group(1))
        then = [html.unescape(c) for c in re.findall(r"<code>([^<]+)</code>",
                                                      (re.search(r"<li>then: (.*?) \(ships", block) or [None, ""])[1])]
        ships = re.search(r"\(ships <code>([^<]+)</code>\)", block)
        picked = df.filter((pl.col("target") == key_target) & (pl.col("status") == "ok"))
        recommended = re.search(r"<b>Recommended:</b> ([^<]+)</p>", block).group(1)
        source = tmp_path / key_target.replace("/", "-")
        shutil.copytree(resolve("hello").source_dir, source)
        done = clean_shell(" && ".join([f"cd {source}", build, *then]), tmp_path / "home")
        assert done.returncode == 0, done.stderr
        output = source / (ships.group(1) if ships else "hello")
        assert sha256(output) in set(picked["binary_sha256"]), (recommended, build)
        checked.add(key_target)
    assert checked == {"linux/amd64", "linux/arm64"}


@pytest.mark.unit
def test_a_results_file_cannot_split_a_build_line_with_a_newline():
    row = {"workload": "hello", "toolchain": "go", "toolchain_version": "go version go1.26.8 linux/amd64",
           "target": "linux/amd64", "flags": ["-trimpath"], "build_env": ["X\nrm -rf /=1"], "postlink_steps": []}
    with pytest.raises(SlimlabError, match="control character"):
        buildline.build_line(row)
    assert buildline.build_line({**row, "build_env": []}).build_shell().endswith("go build -o hello -trimpath .")
    with pytest.raises(SlimlabError, match="post-link step"):
        buildline.build_line({**row, "build_env": [], "postlink_steps": ["upx-99"]})


@pytest.mark.unit
def test_the_line_names_the_release_the_target_and_cgo_of_a_cross_build():
    row = {"workload": "x/y", "toolchain": "go1.22.10", "toolchain_version": None, "go_version": None,
           "target": "linux/arm/v7", "flags": [], "build_env": [], "postlink_steps": ["strip", "upx-9"]}
    line = buildline.build_line(row)
    env = dict(line.env)
    assert (env["GOTOOLCHAIN"], env["GOOS"], env["GOARCH"], env["GOARM"], env["CGO_ENABLED"]) == \
        ("go1.22.10", "linux", "arm", "7", "0")
    assert line.postlink[0][0] == "arm-linux-gnueabihf-strip" and line.postlink[1][0] == "upx"
    assert line.output == "y.strip.upx-9"
    gccgo = buildline.build_line({**row, "toolchain": "gccgo", "flags": ["-compiler", "gccgo"], "target": "linux/arm64"})
    assert dict(gccgo.env)["GCCGO"] == "aarch64-linux-gnu-gccgo" and dict(gccgo.env)["CC"] == "aarch64-linux-gnu-gcc"
    assert "GOTOOLCHAIN" not in dict(gccgo.env)
