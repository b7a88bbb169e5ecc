"""Run ids: checked before use, automatic ones never shared, only an explicit one resumes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from slimlab.errors import SlimlabError
from slimlab.results import MANIFEST, RUN_ID_RULE, RunStore, validate_run_id

REPO = Path(__file__).resolve().parent.parent
CONTEXT = {"host": {"hostname": "test"}}


@pytest.mark.parametrize("bad, problem", [
    ("", "is empty"),
    ("a/b", "contains '/'"),
    ("/abs", "contains '/'"),
    ("..", "contains '..'"),
    ("x..y", "contains '..'"),
    (".", "is '.'"),
    ("run\n2", "control character"),
    ("run\x00", "control character"),
    ("run\x1b[31m", "control character"),
    (7, "not a string"),  # None is not an id: it asks for an automatic one
])
def test_bad_run_ids_are_rejected_naming_the_rule(bad, problem, tmp_path):
    with pytest.raises(SlimlabError) as err:
        validate_run_id(bad)
    assert problem in str(err.value) and RUN_ID_RULE in str(err.value)
    with pytest.raises(SlimlabError, match="invalid run id"):
        RunStore.open(tmp_path, bad, {"spec": 1}, CONTEXT)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("good", ["baseline", "baseline-2", "20250101T000000Z-0a1b2c", "a.b", "über lauf"])
def test_good_run_ids_pass(good):
    assert validate_run_id(good) == good


def test_automatic_ids_never_share_a_run_and_only_an_explicit_id_resumes(tmp_path):
    first = RunStore.open(tmp_path, None, {"spec": 1}, CONTEXT)
    second = RunStore.open(tmp_path, None, {"spec": 1}, CONTEXT)
    first.close(ended=True)
    second.close(ended=True)
    assert first.run_dir != second.run_dir
    # Same second (almost always), same spec: still two runs of one session each.
    for store in (first, second):
        manifest = json.loads((store.run_dir / MANIFEST).read_text())
        assert len(manifest["sessions"]) == 1 and manifest["run_id"] == store.run_dir.name
        assert validate_run_id(manifest["run_id"]) and "-" in manifest["run_id"]

    again = RunStore.open(tmp_path, first.run_dir.name, {"spec": 1}, CONTEXT)  # explicit: resumes
    again.close(ended=True)
    assert again.run_dir == first.run_dir
    assert len(json.loads((first.run_dir / MANIFEST).read_text())["sessions"]) == 2


def test_cli_rejects_a_bad_run_id_before_any_work(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "slimlab.cli", "sweep", "baseline", "--data", str(tmp_path),
                           "--run-id", "../elsewhere"], capture_output=True, text=True, env=env, timeout=60,
                          check=False)
    assert done.returncode == 2, done.stderr
    assert "contains '/'" in done.stderr and RUN_ID_RULE in done.stderr
    assert not list(tmp_path.iterdir())  # nothing created, nothing built


def test_two_sweeps_started_together_get_two_runs(tmp_path):
    """Two real sweeps started at the same moment, without --run-id: two run directories."""
    spec = tmp_path / "one.toml"
    spec.write_text('workloads = ["hello"]\nrepeats = 1\nwarmup = 0\n')
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-m", "slimlab.cli", "sweep", str(spec), "--data", str(tmp_path / "data"), "-q"]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    run_dirs = {out.strip().splitlines()[-1] for out, _ in outs}
    assert len(run_dirs) == 2
    for run_dir in run_dirs:
        manifest = json.loads((Path(run_dir) / MANIFEST).read_text())
        assert len(manifest["sessions"]) == 1 and manifest["ended_at"]
