"""Old and broken runs in a data directory: a run of results schema 1 (written by the first
release's own code, tests/fixtures/schema1) loads migrated; a run that cannot be migrated is
refused naming its version and what to do; corrupt files and half-written runs are skipped
by name while the rest loads."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import polars as pl
import pytest

from slimlab.errors import SlimlabError
from slimlab.report import write_path_report
from slimlab.results import (
    SCHEMA_1_PACKAGES,
    DataWarning,
    RunStore,
    load,
    load_manifests,
    load_packages,
    load_samples,
)
from slimlab.results_schema import (
    DESCRIPTIONS,
    RESULT_SCHEMA,
    SCHEMA_1_LACKS,
    SCHEMA_VERSION,
)

SCHEMA1 = Path(__file__).parent / "fixtures" / "schema1"
pytestmark = pytest.mark.unit  # files and frames only: no program runs


@pytest.fixture
def schema1_data(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(SCHEMA1, data, ignore=shutil.ignore_patterns("README.md"))
    return data


def test_a_schema_1_run_loads_migrated(schema1_data):
    run = schema1_data / "runs" / "schema1-run"
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    raw = pl.read_parquet(run / "results.parquet")
    assert raw["schema_version"].unique().to_list() == [1] and raw["flags"].dtype == pl.String
    df = load(schema1_data)
    assert df["schema_version"].unique().to_list() == [SCHEMA_VERSION]
    assert df.height == raw.height == 2 and (df["status"] == "ok").all()
    # five-axis keys gain the base axis; the base is "none" (a bare binary)
    assert sorted(df["variant_key"]) == sorted(k + "|none" for k in raw["variant_key"])
    assert (df["base"] == "none").all()
    # space-joined flags become argv words
    stripped = df.filter(pl.col("profile") == "stripped").row(0, named=True)
    assert stripped["flags"] == ["-ldflags=-s -w"]
    # what schema 1 implies: no post-link steps, no UPX, gc's own Go release in the build info
    for row in df.iter_rows(named=True):
        assert row["postlink_steps"] == [] and row["postlink_step_bytes"] == []
        assert row["size_before_postlink_bytes"] == row["size_bytes"] > 0
        assert row["upx_packed"] is False and row["upx_test_ok"] is None
        assert row["go_version"].startswith("go1.") and f" {row['go_version']} " in row["toolchain_version"]
        assert row["packages_source"] == SCHEMA_1_PACKAGES
    # what it cannot know is null, and the column's meaning says so
    for column in SCHEMA_1_LACKS:
        assert column not in df.columns or df[column].is_null().all(), column
        assert "schema 1" in DESCRIPTIONS[column]
    # it concatenates with a current frame, types agreeing
    both = pl.concat([df, pl.DataFrame(schema=RESULT_SCHEMA)], how="diagonal_relaxed")
    assert {c: both.schema[c] for c in df.columns if c in RESULT_SCHEMA} == \
        {c: RESULT_SCHEMA[c] for c in df.columns if c in RESULT_SCHEMA}
    # samples are keyed like the rows; schema 1 had no package table
    samples = load_samples(schema1_data)
    assert set(samples["variant_key"]) == set(df["variant_key"]) and samples.height == 2 * 3
    assert load_packages(schema1_data).is_empty()
    # loading migrates in memory: the run on disk is as schema 1 left it
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def _set_version(run: Path, version: int) -> None:
    frame = pl.read_parquet(run / "results.parquet").with_columns(pl.lit(version, pl.Int32).alias("schema_version"))
    frame.write_parquet(run / "results.parquet")
    manifest = json.loads((run / "manifest.json").read_text())
    (run / "manifest.json").write_text(json.dumps({**manifest, "schema_version": version}))


def test_a_run_that_cannot_be_migrated_names_its_version_and_what_to_do(schema1_data):
    run = schema1_data / "runs" / "schema1-run"
    _set_version(run, 0)
    with pytest.raises(SlimlabError, match=r"schema 0 in .*results.parquet cannot be migrated: this slimlab "
                                           r"migrates schema 1 to 3"):
        load(schema1_data)
    _set_version(run, SCHEMA_VERSION + 1)
    with pytest.raises(SlimlabError,
                       match=rf"schema {SCHEMA_VERSION + 1} in .*upgrade slimlab \(a newer checkout, then `make setup`\)"):
        load(run)


CONTEXT = {"tools": {"python": "3.11.7"}, "host": {"hostname": "vm", "cores": 2}}


def _good_run(data: Path, run_id: str, workload: str) -> Path:
    store = RunStore.open(data, run_id, {"workloads": [workload]}, CONTEXT)
    key = f"{workload}|go|default|linux/amd64|none|none"
    store.add_sample({"run_id": run_id, "variant_key": key, "sample_index": 0, "startup_ms": 1.5})
    store.add_packages(key, [{"package": "main", "bytes": 1234}])
    store.add_row({"schema_version": SCHEMA_VERSION, "run_id": run_id, "variant_key": key, "workload": workload,
                   "status": "ok", "size_bytes": 1_000_000, "startup_ms_median": 1.5})
    store.close(ended=True)
    return store.run_dir


def test_corrupt_files_and_half_written_runs_are_skipped_by_name(tmp_path):
    data = tmp_path / "data"
    good = [_good_run(data, "good-1", "hello"), _good_run(data, "good-2", "httpd")]
    # a manifest cut mid-write
    cut = _good_run(data, "cut-manifest", "cut")
    manifest = (cut / "manifest.json").read_bytes()
    (cut / "manifest.json").write_bytes(manifest[: len(manifest) // 2])
    # a run killed before its manifest: a journal and nothing else
    journal_only = data / "runs" / "journal-only"
    journal_only.mkdir()
    shutil.copy(good[0] / "journal.jsonl", journal_only / "journal.jsonl")
    # a readable manifest over garbage tables: random bytes, Parquet's magic around garbage, half a file
    garbage = _good_run(data, "garbage-tables", "garbage")
    (garbage / "results.parquet").write_bytes(os.urandom(4096))
    (garbage / "samples.parquet").write_bytes(b"PAR1" + os.urandom(2048) + b"PAR1")
    packages = (garbage / "packages.parquet").read_bytes()
    (garbage / "packages.parquet").write_bytes(packages[: len(packages) // 2])

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = load(data)
        samples = load_samples(data)
        packages_df = load_packages(data)
        manifests = load_manifests(data)
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(messages) == len(caught)  # nothing else went wrong
    for name in ("cut-manifest/manifest.json", "journal-only", "garbage-tables/results.parquet",
                 "garbage-tables/samples.parquet", "garbage-tables/packages.parquet"):
        assert any(name in m for m in messages), (name, messages)
    assert any("journal.jsonl" in m for m in messages if "journal-only" in m)  # says what the run holds
    # the rest loads: both good runs' rows, samples and packages; the garbage run's manifest
    assert sorted(df["run_id"]) == ["good-1", "good-2"]
    assert sorted(samples["run_id"]) == ["good-1", "good-2"]
    assert sorted(packages_df["run_id"]) == ["good-1", "good-2"]
    assert sorted(m["run_id"] for m in manifests) == ["garbage-tables", "good-1", "good-2"]

    # the report says so near the top, and still shows the rest
    out = tmp_path / "report.html"
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # the report takes them over: none escape
        write_path_report(data, out, title="damaged", trends=True)
    text = out.read_text(encoding="utf-8")
    # the two unreadable runs, and the results, samples and package tables
    assert text.count('<p class="warning">Skipped: ') == 5
    for name in ("cut-manifest/manifest.json", "journal-only", "garbage-tables/results.parquet",
                 "garbage-tables/samples.parquet", "garbage-tables/packages.parquet"):
        assert name in text
    assert text.index("Skipped: ") < text.index("<h2>Figures</h2>")
    assert "good-1" in text and "good-2" in text


def test_a_corrupt_run_given_alone_is_an_error_naming_the_file(tmp_path):
    run = _good_run(tmp_path, "only", "hello")
    (run / "manifest.json").write_text('{"schema_version": 3, "run_')
    with pytest.raises(SlimlabError, match=r"only/manifest.json: not valid JSON"):
        load(run)
    with pytest.raises(SlimlabError, match=r"unreadable runs skipped: only"), pytest.warns(DataWarning):
        load(tmp_path)
