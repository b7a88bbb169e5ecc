"""Results files are untrusted input: they travel between people, and their values reach
Dockerfiles, shell lines, reports and terminals. Every command that reads one (dockerfile,
report, compare, claims) refuses a damaged or hostile file before use, naming the file, the
row's variant key (escaped) and the column; nothing is written."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import slimlab
from slimlab import dockerfile
from slimlab.errors import SlimlabError
from slimlab.results_schema import RESULT_SCHEMA, ResultsFileError, validate
from slimlab.results import results_frame

KEY = "hello|go|static|linux/amd64|none|none"


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    spec = {"workloads": ["hello"], "profiles": ["static"], "repeats": 3, "warmup": 0}
    return slimlab.sweep(spec, data_dir=tmp_path_factory.mktemp("validation"), run_id="good", progress=False)


def hostile_copy(run: Path, into: Path, **columns) -> Path:
    """A copy of ``run`` whose results have ``columns`` set on every row: a file from elsewhere."""
    copy = into / "runs" / "hostile"
    shutil.copytree(run, copy)
    frame = pl.read_parquet(copy / "results.parquet")
    frame.with_columns(*(pl.lit(v, dtype=frame.schema[c]).alias(c) for c, v in columns.items())) \
        .write_parquet(copy / "results.parquet")
    return copy


def slimlab_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "slimlab.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


# The values: each would put a RUN line of its own into the Dockerfile.
INJECTED = "\nRUN touch /INJ\nENV Y=1"


@pytest.mark.parametrize(("columns", "says"), [
    ({"build_env": ["X" + INJECTED]},
     f"row {KEY!r}, column build_env: ['X\\nRUN touch /INJ\\nENV Y=1'] has an item that holds a control character"),
    ({"variant_key": KEY + INJECTED}, f"row {KEY + INJECTED!r}, column variant_key: holds a control character"),
    ({"toolchain_version": "go version go1.26.8 linux/amd64" + INJECTED},
     f"row {KEY!r}, column toolchain_version: 'go version go1.26.8 linux/amd64\\nRUN touch /INJ\\nENV Y=1' holds"),
], ids=["build_env", "variant_key", "toolchain_version"])
def test_every_reader_refuses_a_hostile_results_file(good_run, tmp_path, columns, says):
    run = hostile_copy(good_run, tmp_path, **columns)
    out = tmp_path / "export"
    report = tmp_path / "report.html"
    for args in (["dockerfile", str(run), KEY, "--base", "scratch", "--out", str(out)],
                 ["report", str(run), "--out", str(report)],
                 ["compare", str(good_run), str(run)],
                 ["claims", str(run)]):
        done = slimlab_cli(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert f"{run / 'results.parquet'}: {says}" in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr and "\nRUN" not in done.stderr + done.stdout  # shown escaped
    assert not out.exists() and not report.exists()


def test_the_dockerfile_writer_refuses_control_characters_itself():
    """Defence in depth: a row that reached the writer without loading (a library caller's own
    dict) is refused at the Dockerfile's boundary too, by the same rule."""
    row = {"variant_key": KEY, "toolchain_version": "go version go1.26.8 linux/amd64", "go_version": "go1.26.8",
           "postlink": "none", "flags": ["-trimpath"], "build_env": ["X" + INJECTED]}
    with pytest.raises(SlimlabError, match=r"build_env 'X\\nRUN touch /INJ\\nENV Y=1' holds a control character "
                                           r"\('\\n'\): refused, since a Dockerfile would read it as the end"):
        dockerfile._check_row(row, None)
    with pytest.raises(SlimlabError, match="holds a control character"):
        dockerfile._check_row({**row, "build_env": []}, {"CGO_ENABLED": "0\x1b[2J"})


# Free text (a reason) may hold anything; shown raw, it would clear the terminal, retitle it,
# recolour what follows (ESC, and C1's CSI) and fake a line of output of its own (a newline).
HOSTILE_REASON = "exit 1\x1b[2J\x1b]0;owned\x07\nnote: no regression\x9b31m"


def assert_shown_escaped(text: str) -> None:
    assert "\x1b" not in text and "\x9b" not in text and "\x07" not in text, repr(text)
    assert "\\x1b[2J" in text, text
    assert not any(line.lstrip("- |").startswith("note: no regression") for line in text.splitlines()), text


def test_a_hostile_reason_is_shown_escaped_by_compare_claims_and_dockerfile(good_run, tmp_path):
    broken = hostile_copy(good_run, tmp_path, status="broken", reason=HOSTILE_REASON, size_bytes=None)
    for form in ("text", "markdown"):
        done = slimlab_cli("compare", str(good_run), str(broken), "--format", form, cwd=tmp_path)
        assert done.returncode == 1, (form, done.stdout, done.stderr)  # ok -> broken: a regression
        assert_shown_escaped(done.stdout)
    done = slimlab_cli("dockerfile", str(broken), KEY, "--base", "scratch", "--out", str(tmp_path / "x"),
                       cwd=tmp_path)
    assert done.returncode == 2 and "nothing to rebuild" in done.stderr, done.stderr
    assert_shown_escaped(done.stderr)
    done = slimlab_cli("claims", str(broken), cwd=tmp_path)
    assert "\x1b" not in done.stdout + done.stderr and "\x9b" not in done.stdout + done.stderr


def test_a_reason_never_reaches_the_dockerfile(good_run, tmp_path):
    """A row's reason is not written into the Dockerfile at all (only checked values are), so a
    newline in it cannot end a comment line there and start an instruction."""
    run = hostile_copy(good_run, tmp_path, reason="fine" + INJECTED)
    export = dockerfile.export(run, KEY, "scratch", tmp_path / "export")
    text = export.dockerfile.read_text()
    assert "FROM --platform=linux/amd64 scratch" in text
    assert "INJ" not in text and "fine" not in text


# -- the rules, on synthetic frames ----------------------------------------------------------
def a_row(**changes) -> dict:
    axes = {"workload": "hello", "toolchain": "go", "profile": "static", "target": "linux/amd64",
            "postlink": "strip+upx-9", "base": "scratch"}
    row = {**axes, "schema_version": 3, "run_id": "r1", "variant_key": "|".join(axes.values()), "status": "ok",
           "toolchain_version": "go version go1.26.8 linux/amd64", "flags": ["-trimpath", "-ldflags=-s -w"],
           "build_env": ["CGO_ENABLED=0"], "build_settings": ["-trimpath=true", "vcs.modified=false"],
           "upx_level": "9", "runner": "native", "memory_scope": "program"}
    row.update(changes)
    if any(c in changes for c in axes) and "variant_key" not in changes:
        row["variant_key"] = "|".join(row[c] for c in axes)
    return row


@pytest.mark.unit
def test_a_results_file_of_slimlabs_own_shape_passes():
    rows = [a_row(), a_row(workload="./my services/api v2", profile="fast (-O2)", status="broken",
                           reason="exit 1:\n\tpanic: boom\n\x1b[31mred\x1b[0m")]  # free text may span lines
    frame = results_frame(rows).with_columns(pl.lit(None).alias("go_buildid"))  # an all-null column: cast
    checked = validate(frame, RESULT_SCHEMA, "results.parquet")
    assert checked.schema["go_buildid"] == pl.String and checked.height == 2


@pytest.mark.unit
@pytest.mark.parametrize(("changes", "says"), [
    ({"status": "pwned"}, "column status: 'pwned' is not one of ok, build_failed"),
    ({"workload": "hel|lo"}, "column workload: 'hel|lo' holds '|'"),
    ({"variant_key": "hello|go|default|linux/amd64|none|none"}, "column variant_key: is not the row's axes"),
    ({"toolchain": "go;rm -rf /"}, "column toolchain: 'go;rm -rf /' is not a name of letters"),
    ({"base": "<script>"}, "column base: '<script>' is not a name"),
    ({"build_env": ["CGO_ENABLED=0", "RUN touch /INJ"]}, "column build_env: ['CGO_ENABLED=0', 'RUN touch /INJ'] "
                                                         "has an item that is not NAME=value"),
    ({"flags": ["-ldflags=-s\u2028RUN x"]}, "column flags: ['-ldflags=-s\\u2028RUN x'] has an item that holds"),
    ({"go_buildid": "abc\x1b]0;title\x07"}, "column go_buildid: 'abc\\x1b]0;title\\x07' holds a control character"),
    ({"run_id": "../elsewhere"}, "column run_id: '../elsewhere' is not a run directory's name"),
])
def test_what_the_schema_does_not_allow_is_refused_naming_file_row_and_column(changes, says):
    frame = results_frame([a_row(), a_row(**changes)])
    with pytest.raises(ResultsFileError) as caught:
        validate(frame, RESULT_SCHEMA, "/x/results.parquet")
    message = str(caught.value)
    assert message.startswith("/x/results.parquet: row ") and says in message, message
    assert "damaged or not slimlab's" in message


@pytest.mark.unit
def test_a_column_of_another_type_is_refused():
    frame = results_frame([a_row()]).with_columns(pl.lit("1234").alias("size_bytes"))
    with pytest.raises(ResultsFileError, match=r"results.parquet: column size_bytes is String, the results schema "
                                               r"says Int64"):
        validate(frame, RESULT_SCHEMA, "results.parquet")
