"""Start-up and memory figures agree with hyperfine and /usr/bin/time on the same binaries."""

from __future__ import annotations

import json
import logging
import statistics
import subprocess

import pytest
from artifacts import built
from conftest import require

from slimlab import environment, workloads
from slimlab.errors import SpecError
from slimlab.measure import available_cpus, calibrate_overhead, run_starts, runner_for, take_sample, take_samples
from slimlab.model import TARGETS

log = logging.getLogger(__name__)
NATIVE = runner_for(TARGETS["linux/amd64"])
CHUNK, ROUNDS = 5, 30  # starts per turn, turns per tool: 150 starts each


def ours(workload: str, binary, runs: int) -> list:
    wl = workloads.resolve(workload)
    return [take_sample(wl, NATIVE, binary, timeout_s=10) for _ in range(runs)]


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[round(q * 20) - 1]


def hyperfine_ms(hyperfine: str, binary, runs: int, export) -> list[float]:
    subprocess.run([hyperfine, "-N", "--warmup", "1", "--runs", str(runs), "--export-json", str(export), str(binary)],
                   check=True, capture_output=True)
    return [t * 1000 for t in json.loads(export.read_text())["results"][0]["times"]]


@pytest.mark.parametrize("profile", ["default", "stripped"])
def test_startup_agrees_with_hyperfine(profile, tmp_path):
    hyperfine = require("hyperfine", "apt-get install hyperfine")
    binary = built("hello", profile)
    wl = workloads.resolve("hello")
    mine, theirs, nivcsw = [], [], []
    before = environment.noise_snapshot()
    # The tools take turns in chunks of 5, so a load that changes by the second (the rest
    # of the suite, other jobs) reaches both alike; each turn starts with one warm-up and
    # runs back to back, hyperfine's pacing (spaced starts wait less on a busy host: see
    # samples._cli).
    for turn in range(ROUNDS):
        if turn % 2:
            theirs += hyperfine_ms(hyperfine, binary, CHUNK, tmp_path / "hf.json")
        samples = take_samples(wl, NATIVE, binary, 10, CHUNK, warmup=1)
        mine += [s.startup_ms for s in samples]
        nivcsw += [s.nivcsw for s in samples]
        if not turn % 2:
            theirs += hyperfine_ms(hyperfine, binary, CHUNK, tmp_path / "hf.json")
    warnings = environment.busy_host_warnings(environment.host_noise(before, environment.noise_snapshot()), nivcsw)
    ratio = {q: quantile(mine, q) / quantile(theirs, q) for q in (0.1, 0.25, 0.5)}
    log.info("start-up %s: slimlab p10/p25/median %.3f/%.3f/%.3f ms, hyperfine -N %.3f/%.3f/%.3f ms, "
             "ratios %.3f/%.3f/%.3f%s", profile, *(quantile(mine, q) for q in ratio),
             *(quantile(theirs, q) for q in ratio), *ratio.values(), f"; {warnings[0]}" if warnings else "")
    # Both time spawn to reaped exit of the same file under the same load. On a busy host
    # the times are bimodal (see samples._cli): a start either gets a CPU at once or waits
    # about a scheduler tick, and when about half of them wait, the median lands in either
    # mode by chance -- hyperfine against itself, taking turns like this, read medians
    # 0.49x to 1.12x apart at load 8 with a core busy. The fast starts (10th and 25th
    # percentiles) do not have that problem: hyperfine against itself read 0.86-1.08
    # there, slimlab against hyperfine 0.85-1.04 with a core busy (slimlab's spawn is
    # ~50 us cheaper). The band is 1.25x either way, tighter than the old 0.6-1.5 and
    # outside the noise seen: a 1.5x bias of either sign (1.28x+ or 0.69x-), Python's
    # subprocess (+1.5 ms, 1.8x) or a unit slip (1000x) fall outside it.
    assert 0.8 <= ratio[0.1] <= 1.25
    assert 0.8 <= ratio[0.25] <= 1.25
    # The median too, where it means something: on a host slimlab itself calls quiet.
    if not warnings:
        assert 0.8 <= ratio[0.5] <= 1.25


@pytest.mark.parametrize("profile", ["default", "static"])
def test_peak_rss_agrees_with_gnu_time(profile):
    gnu_time = require("/usr/bin/time", "apt-get install time")
    binary = built("hello", profile)
    wl = workloads.resolve("hello")
    mine, theirs = [], []
    for _ in range(20):  # in turns, like the start-up test
        done = subprocess.run([gnu_time, "-f", "%M", str(binary)], capture_output=True, text=True, check=True)
        theirs.append(int(done.stderr.strip().splitlines()[-1]))
        mine.append(take_sample(wl, NATIVE, binary, timeout_s=10).peak_rss_kib)
    ratio = statistics.median(mine) / statistics.median(theirs)
    log.info("peak RSS %s: slimlab median %s KiB, /usr/bin/time %%M median %s KiB, ratio %.3f",
             profile, statistics.median(mine), statistics.median(theirs), ratio)
    # Both read ru_maxrss from wait4 after forking from a small process, so they agree
    # to within the kernel's accounting: ru_maxrss moves in 128 KiB steps (per-CPU RSS
    # counters, see samples._server), so one start reads 1736, 1864 or 1992 KiB for the
    # same ~1.9 MiB program, and medians of 10 sometimes sat a step (6.7%) apart; of 20,
    # rarely. A launcher that inherited Python's RSS would read ~14 MiB here, 7x too
    # much, and a unit slip is 1024x.
    assert 0.9 <= ratio <= 1.1


def test_server_start_up_is_spawn_to_healthy():
    binary = built("httpd", "stripped")
    samples = ours("httpd", binary, 5)
    for s in samples:
        assert s.exit_code == 0  # it shut down cleanly on SIGTERM
        assert 0 < s.startup_ms < 5000
        assert s.ready_rss_kib and s.ready_rss_kib > 1000
        assert s.peak_rss_kib > 1000


def test_server_peak_rss_is_an_upper_bound():
    binary = built("httpd", "stripped")
    samples = ours("httpd", binary, 8)
    for s in samples:
        # A peak is at least what was seen on the way: the RSS when it first answered,
        # VmHWM just before the stop signal, and the kernel's figure at exit.
        assert s.peak_rss_kib >= s.ready_rss_kib
        assert s.peak_rss_kib == max(s.stop_hwm_kib, s.exit_maxrss_kib, s.ready_rss_kib)
        assert s.stop_hwm_kib >= s.ready_rss_kib  # VmHWM never falls
    # ru_maxrss alone read below the ready RSS in most starts (the bug this fixes).
    low = sum(s.exit_maxrss_kib < s.ready_rss_kib for s in samples)
    log.info("httpd: ru_maxrss below ready VmRSS in %d of %d starts; peak - exit maxrss: %s KiB",
             low, len(samples), [s.peak_rss_kib - s.exit_maxrss_kib for s in samples])


def test_samples_carry_cpu_time_and_context_switches():
    binary = built("hello", "stripped")
    for s in take_samples(workloads.resolve("hello"), NATIVE, binary, 10, 5):
        assert 0 < s.cpu_ms < 1000
        assert s.nvcsw is not None and s.nvcsw >= 0 and s.nivcsw is not None and s.nivcsw >= 0
        assert 500 < s.peak_rss_kib < 16 * 1024  # a Go hello's few MiB, in KiB (a unit slip is 1024x)


def test_calibration_times_a_static_no_op(tmp_path):
    cal = calibrate_overhead(runs=20)
    assert cal["n"] == 20
    assert 0 < cal["min_ms"] <= cal["median_ms"] < 100
    assert cal["maxrss_kib"] < 1500  # static, tiny: no dynamic loader, no libc mapped
    # The floor is below a real program's start-up measured the same way, in turns.
    binary = built("hello", "stripped")
    wl = workloads.resolve("hello")
    noop, hello = [], []
    for _ in range(4):
        noop.append(calibrate_overhead(runs=10)["min_ms"])
        hello.append(min(s.startup_ms for s in take_samples(wl, NATIVE, binary, 10, 10)))
    log.info("launcher overhead (no-op) min %.3f ms vs Go hello min %.3f ms", min(noop), min(hello))
    assert min(noop) < min(hello)


def test_pinning_reaches_the_program(tmp_path):
    cpu = available_cpus()[-1]
    out = tmp_path / "out"
    exits = run_starts(["sh", "-c", "grep Cpus_allowed_list /proc/self/status"], runs=1, timeout_s=10,
                       stdout=out, stderr=None, cpu=cpu)
    assert exits[0].exit_code == 0
    assert out.read_text().split() == ["Cpus_allowed_list:", str(cpu)]
    # Unpinned, the program may use the CPUs its caller may.
    run_starts(["sh", "-c", "grep Cpus_allowed_list /proc/self/status"], runs=1, timeout_s=10, stdout=out,
               stderr=None)
    here = subprocess.run(["sh", "-c", "grep Cpus_allowed_list /proc/self/status"], capture_output=True, text=True,
                          check=True)
    assert out.read_text() == here.stdout


def test_back_to_back_starts_stop_only_at_a_kill():
    # An exit code is the caller's to judge (a workload may expect 1); a timeout or a
    # signal ends the series, and its Exit is the last one.
    assert [e.exit_code for e in run_starts(["false"], runs=3, timeout_s=10, stdout=None, stderr=None)] == [1, 1, 1]
    killed = run_starts(["sh", "-c", "kill -9 $$"], runs=3, timeout_s=10, stdout=None, stderr=None)
    assert [(e.exit_code, e.signal) for e in killed] == [(None, 9)]
    slow = run_starts(["sleep", "5"], runs=3, timeout_s=0.2, stdout=None, stderr=None)
    assert len(slow) == 1 and slow[0].timed_out and slow[0].wall_ms < 2000


def test_pinning_to_a_missing_cpu_names_the_valid_ones():
    with pytest.raises(SpecError, match=r"CPU 4096.*CPUs are 0"):
        run_starts(["true"], runs=1, timeout_s=10, stdout=None, stderr=None, cpu=4096)


def test_busy_host_warning():
    quiet = {"cores": 2, "loadavg_before": [0.3, 0.2, 0.1], "loadavg_after": [0.9, 0.3, 0.1],
             "cpu_pressure_pct": 3.0, "steal_pct": 0.0}
    assert environment.busy_host_warnings(quiet, [0, 0, 1]) == []
    busy = {**quiet, "loadavg_after": [3.1, 1.0, 0.4], "cpu_pressure_pct": 45.0}
    (warning,) = environment.busy_host_warnings(busy, [0, 0, 1])
    assert "load average 3.10 on 2 cores" in warning and "45%" in warning
    (warning,) = environment.busy_host_warnings({**quiet, "steal_pct": 12.0})
    assert "steal" in warning
    # Preemptions alone do not make a host busy (its own threads preempt a Go program).
    assert environment.busy_host_warnings(quiet, [5, 6, 4]) == []
    (warning,) = environment.busy_host_warnings(busy, [5, 6, 4])
    assert "preempted 5 times per start" in warning


def test_host_noise_reads_this_host():
    before = environment.noise_snapshot()
    subprocess.run(["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"], check=True)
    noise = environment.host_noise(before, environment.noise_snapshot())
    assert noise["seconds"] > 0 and noise["cores"] >= 1
    assert 0 < noise["busy_pct"] <= 100  # the loop above kept a CPU busy
    assert 0 <= noise["steal_pct"] <= 100
    assert noise["cpu_pressure_pct"] is None or 0 <= noise["cpu_pressure_pct"] <= 100 * noise["cores"]
