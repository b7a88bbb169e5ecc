"""Whatever a stage raises about a variant becomes that variant's row; the sweep goes on.

These faults cannot be caused for real on demand (a measurement launcher that dies
mid-run, a post-link tool that writes garbage), so each test injects one into an
otherwise real sweep and checks that it lands in a row, not in a traceback.
"""

from __future__ import annotations

import polars as pl

import slimlab
from slimlab import postlink
from slimlab.errors import ToolError
from slimlab.measure import LauncherRunner


def test_a_launcher_that_fails_while_measuring_is_a_row(tmp_path, monkeypatch):
    real = LauncherRunner.samples
    calls = {"httpd": 0}

    def flaky(self, workload, binary, timeout_s, runs, warmup=0, cpu=None):
        if workload.name == "httpd" and runs:
            calls["httpd"] += 1
            if calls["httpd"] == 2:  # the second round of timed starts
                raise ToolError("the measurement launcher ended without a report (exit -9)")
        return real(self, workload, binary, timeout_s, runs, warmup, cpu)

    monkeypatch.setattr(LauncherRunner, "samples", flaky)
    run = slimlab.sweep({"workloads": ["hello", "httpd"], "repeats": 8, "warmup": 0}, data_dir=tmp_path,
                        progress=False)
    df = slimlab.load(run)
    rows = {r["workload"]: r for r in df.iter_rows(named=True)}
    assert rows["hello"]["status"] == "ok" and rows["hello"]["startup_n"] == 8
    assert rows["httpd"]["status"] == "broken"
    assert rows["httpd"]["reason"].startswith("samples 6-8: measure: ToolError: the measurement launcher ended")
    assert rows["httpd"]["size_bytes"] > 0  # what was found before the failure is kept


def test_a_post_link_output_that_is_not_elf_is_a_row(tmp_path, monkeypatch):
    real = postlink.apply

    def garbage(chain, binary, workdir, **kw):
        outcome = real(chain, binary, workdir, **kw)
        if chain.name != "strip":
            return outcome
        bad = tmp_path / "garbage" / binary.name
        bad.parent.mkdir(exist_ok=True)
        bad.write_bytes(b"#!/bin/sh\necho not an ELF file\n")
        return postlink.PostlinkOutcome(True, bad, size_before=outcome.size_before, steps=outcome.steps)

    monkeypatch.setattr(postlink, "apply", garbage)
    run = slimlab.sweep({"workloads": ["hello"], "postlink": ["none", "strip"], "repeats": 2, "warmup": 0},
                        data_dir=tmp_path / "d", progress=False)
    df = slimlab.load(run)
    assert df.filter(pl.col("postlink") == "none")["status"].to_list() == ["ok"]
    (bad,) = df.filter(pl.col("postlink") == "strip").iter_rows(named=True)
    assert bad["status"] == "broken"
    assert bad["reason"].startswith("inspect: ELFError:"), bad["reason"]
