"""Post-link chains with the real strip, objcopy and upx: sizes, verdicts, and that every
slimmed binary still works (or is reported as not working)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest
from artifacts import built
from conftest import require
from elftools.elf.elffile import ELFFile

import slimlab
from slimlab import checkenv, postlink, workloads
from slimlab.build import default_cache_dir
from slimlab.errors import SpecError
from slimlab.rows import inspect_binary
from slimlab.measure import CheckFailure, check_and_sample, runner_for
from slimlab.report import figures, prep
from slimlab.results_schema import RESULT_SCHEMA
from slimlab.model import TARGETS
from slimlab.rows import postlink_columns
from slimlab.workloads import Workload

NATIVE = runner_for(TARGETS["linux/amd64"])
CHAINS = ["none", "strip", "strip-debug", "objcopy", "upx-1", "upx-9", "upx-lzma"]


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def readelf(*args: str) -> str:
    return subprocess.run(["readelf", *args], capture_output=True, text=True, check=True).stdout


def section_names(path: Path) -> set[str]:
    with open(path, "rb") as fh:
        return {s.name for s in ELFFile(fh).iter_sections() if s.name}


def check(workload: str | Workload, binary: Path, runner=NATIVE, timeout_s: float = 20):
    wl = workloads.resolve(workload) if isinstance(workload, str) else workload
    return check_and_sample(wl, runner, binary, timeout_s)


# --- the chain registry ------------------------------------------------------------


@pytest.mark.unit
def test_chain_names_parse_into_steps():
    assert postlink.get_chain("none").steps == ()
    chain = postlink.get_chain("strip+objcopy+upx-9")
    assert chain.steps == ("strip", "objcopy", "upx-9") and chain.upx_level == "9"
    assert postlink.get_chain("upx-lzma").upx_level == "lzma"
    assert postlink.get_chain("strip").upx_level is None
    assert postlink.get_chain("upx-brute").slow and not postlink.get_chain("upx-9").slow
    for n in range(1, 10):
        assert postlink.get_chain(f"upx-{n}").steps == (f"upx-{n}",)


@pytest.mark.unit
@pytest.mark.parametrize("name, suggestion", [
    ("upx9", "upx-9"), ("stirp", "strip"), ("upx-9+strip", None), ("strip+strip-debug", None), ("upx-10", None),
])
def test_unknown_chains_are_spec_errors_with_a_suggestion(name, suggestion):
    with pytest.raises(SpecError) as info:
        postlink.get_chain(name)
    message = str(info.value)
    assert f"unknown postlink chain {name!r}" in message and "strip+upx-9" in message
    if suggestion:
        assert f"(did you mean {suggestion!r}?)" in message


@pytest.mark.unit
def test_spec_validation_uses_the_chain_registry():
    with pytest.raises(SpecError, match=r"did you mean 'upx-lzma'"):
        slimlab.SweepSpec.from_dict({"workloads": ["hello"], "postlink": ["upx-lzmaa"]})
    spec = slimlab.SweepSpec.from_dict({"workloads": ["hello"], "postlink": ["none", "strip+upx-best"]})
    assert spec.postlink == ("none", "strip+upx-best")


# --- real chains on real builds -----------------------------------------------------


@pytest.fixture(scope="module")
def chained(tmp_path_factory) -> dict:
    """{(workload, chain): (input, outcome)} for the default (unstripped) builds."""
    cache = tmp_path_factory.mktemp("postlink-cache")
    out = {}
    for workload in ("hello", "httpd"):
        binary = built(workload, "default")
        before = sha256(binary)
        for name in CHAINS:
            out[workload, name] = (binary, postlink.apply(postlink.get_chain(name), binary, cache, cache_dir=cache))
        assert sha256(binary) == before, "a chain modified the cached build artifact"
    return out


@pytest.mark.parametrize("workload", ["hello", "httpd"])
def test_every_chain_records_true_sizes_and_still_works(workload, chained):
    for name in CHAINS:
        binary, outcome = chained[workload, name]
        assert outcome.ok, (name, outcome.reason)
        size = os.stat(outcome.binary).st_size
        columns = postlink_columns(outcome)
        assert inspect_binary(outcome.binary)["size_bytes"] == size
        assert columns["size_before_postlink_bytes"] == os.stat(binary).st_size
        if name == "none":
            assert outcome.binary == binary and columns["postlink_step_bytes"] == []
            assert columns["upx_test_ok"] is None and columns["upx_ratio"] is None
        else:
            assert outcome.binary != binary
            assert columns["postlink_step_bytes"][-1] == size  # the last step's size is the file's
            assert size < os.stat(binary).st_size
            assert len(columns["postlink_step_seconds"]) == 1 and columns["postlink_seconds"] > 0
        # Every variant passes the functional check, in the crowded environment as well.
        sample = check(workload, outcome.binary)
        assert sample.exit_code == 0
        check(checkenv.crowded(workloads.resolve(workload)), outcome.binary)


@pytest.mark.parametrize("workload", ["hello", "httpd"])
def test_upx_is_smallest_and_passes_its_own_test(workload, chained):
    upx = require("upx", postlink.UPX_INSTALL_HINT)
    size = {name: os.stat(chained[workload, name][1].binary).st_size for name in CHAINS}
    assert size["upx-9"] < size["strip"] < size["none"]
    assert size["upx-9"] < size["upx-1"]
    for name in ("upx-1", "upx-9", "upx-lzma"):
        outcome = chained[workload, name][1]
        assert postlink_columns(outcome)["upx_test_ok"] is True
        assert subprocess.run([upx, "-t", str(outcome.binary)], capture_output=True).returncode == 0
        # upx's own "Ratio" column: packed / unpacked, to 0.01%.
        listing = subprocess.run([upx, "-l", str(outcome.binary)], capture_output=True, text=True).stdout
        percent = next(w for w in listing.split() if w.endswith("%"))
        assert postlink_columns(outcome)["upx_ratio"] * 100 == pytest.approx(float(percent[:-1]), abs=0.01)
        assert inspect_binary(outcome.binary)["upx_packed"] is True
        assert "There are no sections" in readelf("-SW", str(outcome.binary))


def test_strip_and_objcopy_remove_what_they_say(chained):
    _, strip = chained["hello", "strip"]
    _, debug = chained["hello", "strip-debug"]
    _, objcopy = chained["hello", "objcopy"]
    original = section_names(chained["hello", "none"][1].binary)
    for outcome in (strip, debug, objcopy):
        removed = set(postlink_columns(outcome)["postlink_removed_sections"])
        assert removed == original - section_names(outcome.binary)
        assert not any(n.startswith(".debug_") for n in section_names(outcome.binary))
    assert ".symtab" in section_names(debug.binary) and ".symtab" not in section_names(strip.binary)
    theirs = readelf("-SW", str(objcopy.binary))
    assert ".note.go.buildid" not in theirs and ".note.gnu.build-id" not in theirs and ".symtab" not in theirs
    assert ".go.buildinfo" in theirs  # kept on purpose: go version -m and scanners read it
    assert {".note.go.buildid", ".note.gnu.build-id", ".symtab", ".strtab"} <= set(postlink_columns(objcopy)[
        "postlink_removed_sections"])
    assert os.stat(objcopy.binary).st_size < os.stat(strip.binary).st_size


def test_outputs_are_cached_by_content(chained, tmp_path):
    binary, first = chained["hello", "upx-1"]
    cache = first.binary.parents[3]  # <cache>/postlink/<kk>/<key>/<file>
    again = postlink.apply(postlink.get_chain("upx-1"), binary, tmp_path, cache_dir=cache)
    assert again.cached and not first.cached
    assert again.binary == first.binary and sha256(again.binary) == sha256(first.binary)
    assert again.steps == first.steps  # the original run's record, time included
    # A different input is a different entry.
    other = postlink.apply(postlink.get_chain("upx-1"), built("hello", "stripped"), tmp_path, cache_dir=cache)
    assert not other.cached and other.binary != first.binary


# --- failures: refusal, broken output, missing tool --------------------------------


def test_upx_refusal_is_a_postlink_failed_row(tmp_path):
    spec = {"workloads": ["hello"], "profiles": ["as-pie"], "custom_profiles": {"as-pie": {"pie": True}},
            "postlink": ["none", "upx-1"], "repeats": 1, "warmup": 0}
    rows = {r["postlink"]: r for r in slimlab.load(slimlab.sweep(spec, tmp_path, "pie", progress=False))
            .iter_rows(named=True)}
    assert rows["none"]["status"] == "ok" and rows["none"]["is_pie"]
    failed = rows["upx-1"]
    assert failed["status"] == "postlink_failed"
    assert "CantPackException" in failed["reason"]  # UPX's own words
    assert failed["postlink_steps"] == ["upx-1"] and failed["postlink_step_bytes"] == []
    assert failed["size_before_postlink_bytes"] == rows["none"]["size_bytes"]


def corrupt_text(binary: Path, out: Path) -> Path:
    """A copy of ``binary`` whose whole .text section is int3 (0xCC) bytes."""
    shutil.copyfile(binary, out)
    shutil.copymode(binary, out)
    with open(out, "rb") as fh:
        text = ELFFile(fh).get_section_by_name(".text")
        offset, size = text["sh_offset"], text["sh_size"]
    with open(out, "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xcc" * size)
    return out


def test_a_binary_with_corrupted_text_is_broken(tmp_path, chained):
    _, stripped = chained["hello", "strip"]
    bad = corrupt_text(stripped.binary, tmp_path / "hello")
    assert os.stat(bad).st_size == os.stat(stripped.binary).st_size  # same shape, wrong bytes
    with pytest.raises(CheckFailure) as info:
        check("hello", bad)
    assert info.value.status == "broken"
    assert "killed by SIGTRAP" in info.value.reason


def test_a_sweep_reports_a_corrupted_chain_output_as_broken(tmp_path, monkeypatch):
    """The real chain runs; its output is then corrupted, as a faulty tool would leave it."""
    real_apply = postlink.apply

    def apply_then_corrupt(chain, binary, workdir, **kw):
        outcome = real_apply(chain, binary, workdir, **kw)
        if chain.name != "strip":
            return outcome
        into = Path(workdir) / "corrupted"
        into.mkdir(exist_ok=True)
        bad = corrupt_text(outcome.binary, into / outcome.binary.name)
        return postlink.PostlinkOutcome(True, bad, size_before=outcome.size_before, steps=outcome.steps)

    monkeypatch.setattr(postlink, "apply", apply_then_corrupt)
    spec = {"workloads": ["hello", "httpd"], "postlink": ["none", "strip"], "repeats": 1, "warmup": 0}
    df = slimlab.load(slimlab.sweep(spec, tmp_path, "bad", progress=False))
    status = {(r["workload"], r["postlink"]): r for r in df.iter_rows(named=True)}
    for workload in ("hello", "httpd"):
        assert status[workload, "none"]["status"] == "ok"
        broken = status[workload, "strip"]
        assert broken["status"] == "broken", broken["reason"]
        assert "killed by SIGTRAP" in broken["reason"]
        assert broken["startup_ms_median"] is None  # never timed


def test_upx_brute_works_when_asked_and_upx_t_is_not_enough(tmp_path):
    """--brute on a small PIE C program: `upx -t` says OK, the program segfaults.

    A real UPX 4.2.2 fault (NRV2B at level 10 on this file): the functional check, not
    UPX's own test, is what tells a packed binary works.
    """
    cc = require("cc", "apt-get install gcc")
    source = tmp_path / "t.c"
    source.write_text("int main(void) { return 0; }\n")
    binary = tmp_path / "prog"
    subprocess.run([cc, "-O2", "-o", str(binary), str(source)], check=True)
    outcome = postlink.apply(postlink.get_chain("upx-brute"), binary, tmp_path, cache_dir=tmp_path / "cache")
    assert outcome.ok and postlink_columns(outcome)["upx_test_ok"] is True
    assert os.stat(outcome.binary).st_size < os.stat(binary).st_size
    program = Workload("prog", tmp_path)  # a CLI that must exit 0
    check(program, binary)  # the original works
    with pytest.raises(CheckFailure) as info:
        check(program, outcome.binary)
    assert info.value.status == "broken" and "killed by SIGSEGV" in info.value.reason
    # Other levels pack the same file into one that works.
    good = postlink.apply(postlink.get_chain("upx-9"), binary, tmp_path, cache_dir=tmp_path / "cache")
    check(program, good.binary)


def test_upx_arm64_go_binary_fails_only_in_a_crowded_environment(tmp_path):
    """UPX-packed Go for arm64 (under QEMU) dies with ~510+ environment variables."""
    require("qemu-aarch64-static", "apt-get install qemu-user-static")
    spec = {"workloads": ["hello"], "profiles": ["stripped"], "targets": ["linux/arm64"],
            "postlink": ["none", "upx-9"], "repeats": 1, "warmup": 0}
    rows = {r["postlink"]: r for r in slimlab.load(slimlab.sweep(spec, tmp_path, "arm", progress=False))
            .iter_rows(named=True)}
    assert rows["none"]["status"] == "ok" and rows["none"]["emulated"]
    packed = rows["upx-9"]
    assert packed["status"] == "broken", packed["reason"]
    assert packed["reason"].startswith(checkenv.LABEL) and "SIGSEGV" in packed["reason"]
    assert packed["upx_test_ok"] is True  # upx -t cannot see this either
    # In a small environment the same file passes: only the crowded check catches it.
    binary = postlink.apply(postlink.get_chain("upx-9"), built("hello", "stripped", "linux/arm64"), tmp_path,
                            cache_dir=default_cache_dir())
    assert binary.cached
    check("hello", binary.binary, runner=runner_for(TARGETS["linux/arm64"]), timeout_s=60)


def test_missing_upx_makes_unsupported_rows_that_say_how_to_install(tmp_path, hide_tools):
    hide_tools("upx")
    assert shutil.which("go") is not None
    reason = postlink.unsupported_reason(postlink.get_chain("strip+upx-9"))
    assert "needs upx" in reason and "make setup" in reason and "bookworm-backports upx-ucl" in reason
    assert postlink.unsupported_reason(postlink.get_chain("strip")) is None
    spec = {"workloads": ["hello"], "profiles": ["stripped"], "postlink": ["strip", "strip+upx-9"],
            "repeats": 1, "warmup": 0}
    run = slimlab.sweep(spec, tmp_path / "d", "noupx", progress=False)
    rows = {r["postlink"]: r for r in slimlab.load(run).iter_rows(named=True)}
    assert rows["strip"]["status"] == "ok"
    assert rows["strip+upx-9"]["status"] == "unsupported" and rows["strip+upx-9"]["reason"] == reason
    assert rows["strip+upx-9"]["upx_level"] == "9" and rows["strip+upx-9"]["postlink_steps"] == ["strip", "upx-9"]
    (manifest,) = slimlab.load_manifests(run)
    assert manifest["tools"]["postlink:upx"] == "missing"
    assert manifest["tools"]["postlink:strip"].startswith("GNU strip")


# --- the sweep's columns and the UPX panel -----------------------------------------


@pytest.fixture(scope="module")
def chain_run(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("chain-data")
    spec = {"workloads": ["hello"], "profiles": ["default"], "postlink": ["none", "strip", "upx-1", "strip+upx-1"],
            "repeats": 3, "warmup": 0}
    return slimlab.sweep(spec, data_dir=data, run_id="chains", progress=False)


def test_sweep_rows_carry_the_chain_record(chain_run):
    df = slimlab.load(chain_run)
    assert dict(df.schema) == RESULT_SCHEMA
    rows = {r["postlink"]: r for r in df.iter_rows(named=True)}
    assert all(r["status"] == "ok" for r in rows.values()), {k: r["reason"] for k, r in rows.items()}
    none, strip, both = rows["none"], rows["strip"], rows["strip+upx-1"]
    assert none["postlink_steps"] == [] and both["postlink_steps"] == ["strip", "upx-1"]
    assert both["size_before_postlink_bytes"] == none["size_bytes"]
    assert both["postlink_step_bytes"] == [strip["size_bytes"], both["size_bytes"]]
    assert both["upx_ratio"] == pytest.approx(both["size_bytes"] / strip["size_bytes"])
    assert both["upx_level"] == "1" and both["upx_test_ok"] is True and strip["upx_test_ok"] is None
    assert none["startup_n"] == both["startup_n"] == 3  # measured like any build
    assert both["peak_rss_kib_median"] > 0


def test_upx_panel_ratios_are_against_the_same_builds_none(chain_run):
    df = slimlab.load(chain_run)
    costs = prep.postlink_costs(df)
    assert sorted(costs["postlink"].to_list()) == ["strip", "strip+upx-1", "upx-1"]
    none = df.filter(pl.col("postlink") == "none").row(0, named=True)
    for row in costs.iter_rows(named=True):
        assert row["plot_size_ratio"] == pytest.approx(row["size_bytes"] / none["size_bytes"])
        assert row["plot_startup_ratio"] == pytest.approx(row["startup_ms_median"] / none["startup_ms_median"])
        assert row["plot_rss_ratio"] == pytest.approx(row["peak_rss_kib_median"] / none["peak_rss_kib_median"])
    fig = figures.postlink_panel(df)
    assert len(fig.data) == 4  # (UPX, not UPX) x (start-up, RSS)
    upx = [t for t in fig.data if t.marker.symbol == "circle"]
    assert sorted(upx[0].text) == ["strip+upx-1", "upx-1"]


@pytest.mark.unit
def test_upx_panel_needs_a_none_row_of_the_same_build():
    rows = [
        {"run_id": "r", "workload": "w", "toolchain": "go", "profile": "p", "target": "t", "postlink": chain,
         "status": "ok", "size_bytes": size, "startup_ms_median": ms, "peak_rss_kib_median": 1000.0,
         "upx_level": level}
        for chain, size, ms, level in (("none", 1000, 2.0, None), ("upx-9", 400, 10.0, "9"))
    ]
    rows.append({**rows[1], "profile": "other"})  # no "none" for this build: left out
    df = prep.conform(pl.DataFrame(rows))
    costs = prep.postlink_costs(df)
    assert costs.height == 1
    assert costs["plot_size_ratio"][0] == pytest.approx(0.4) and costs["plot_startup_ratio"][0] == pytest.approx(5)
    assert costs["plot_startup_delta_ms"][0] == pytest.approx(8.0)
    lonely = figures.postlink_panel(df.filter(pl.col("postlink") != "none"))
    assert not lonely.data and "none" in lonely.layout.annotations[0].text


def test_stripping_does_not_inflate_peak_rss(tmp_path):
    """Freshly written outputs are settled (fsync + dropped from the page cache).

    Without that, on ext4 with Linux 6.x a file just written by strip sits in large page
    cache folios and the program's peak RSS reads high (httpd: +8%, grpc-redis: +45%),
    which would be charged to `strip`. strip does not touch the loadable segments, so the
    memory of the stripped program must match the original's.
    """
    wl = workloads.resolve("httpd")
    binary = built("httpd", "default")
    rss = {}
    for name in ("none", "strip"):
        out = postlink.apply(postlink.get_chain(name), binary, tmp_path, cache_dir=tmp_path).binary
        samples = [check(wl, out).peak_rss_kib for _ in range(7)]
        rss[name] = sorted(samples)[3]
    assert rss["strip"] == pytest.approx(rss["none"], rel=0.03), rss


@pytest.mark.parametrize("target", ["linux/arm64", "linux/arm/v7"])
def test_strip_and_objcopy_handle_foreign_cpus(target, tmp_path):
    """A binary for another CPU goes through that CPU's binutils, and still runs (under QEMU)."""
    spec = {"workloads": ["hello"], "targets": [target], "postlink": ["strip", "objcopy"], "repeats": 1,
            "warmup": 0}
    rows = slimlab.load(slimlab.sweep(spec, data_dir=tmp_path, progress=False))
    assert rows["status"].to_list() == ["ok", "ok"], rows.select("postlink", "reason")
    assert not rows["has_symtab"].any() and not rows["has_dwarf"].any()
    assert (rows["size_bytes"] < rows["size_before_postlink_bytes"]).all()
    assert rows["emulated"].all()
