"""slimlab's start-up figures against hyperfine -N on the same binary, under the same load.

The two tools take turns in small chunks (ROUNDS x CHUNK starts each), so a load that
changes by the second reaches both. Prints, per repetition, the ratio slimlab/hyperfine
of several quantiles, the host's noise while measuring and the warning slimlab would give.

Usage: python benchmarks/startup_agreement.py BINARY [--reps N] [--rounds N] [--chunk N]
           [--spin none|same|own] [--mode burst|single|hyperfine] [--cpu N]
  --spin same   keep one core busy with a loop in this session (same autogroup), as
                `sh -c 'while :; do :; done' &` in the shell that runs pytest does
  --spin own    the same loop in its own session (another autogroup)
  --mode burst  slimlab's take_samples (CHUNK starts back to back, one launcher)
  --mode single one take_sample per start, as the sweep calls it
  --mode pipe   the old way: Launch, whose "started" line wakes the caller at each start
  --mode hyperfine  hyperfine against itself: the noise floor of any comparison
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from slimlab import environment, workloads
from slimlab.measure import Launch, runner_for, take_sample, take_samples
from slimlab.model import TARGETS

QUANTILES = {"min": 0.0, "p10": 0.1, "p25": 0.25, "p50": 0.5, "p75": 0.75}


def hyperfine(binary: Path, runs: int, cpu: int | None = None) -> list[float]:
    with tempfile.NamedTemporaryFile(suffix=".json") as export:
        argv = ["hyperfine", "-N", "--warmup", "1", "--runs", str(runs), "--export-json", export.name, str(binary)]
        if cpu is not None:
            argv = ["taskset", "-c", str(cpu), *argv]
        subprocess.run(argv, check=True, capture_output=True)
        return [t * 1000 for t in json.loads(Path(export.name).read_text())["results"][0]["times"]]


def quantile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q * 100) - 1] if q else min(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary", type=Path)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--chunk", type=int, default=5)
    parser.add_argument("--spin", choices=["none", "same", "own"], default="none")
    parser.add_argument("--mode", choices=["burst", "single", "pipe", "hyperfine"], default="burst")
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args()
    wl, native = workloads.resolve("hello"), runner_for(TARGETS["linux/amd64"])

    def ours() -> list[float]:
        if args.mode == "hyperfine":
            return hyperfine(args.binary, args.chunk, args.cpu)
        if args.mode == "pipe":
            times = []
            for _ in range(args.chunk + 1):
                with Launch([str(args.binary)], timeout_s=10, stdout=None, stderr=None, cpu=args.cpu) as launch:
                    times.append(launch.wait().wall_ms)
            return times[1:]
        if args.mode == "single":
            take_sample(wl, native, args.binary, 10, cpu=args.cpu)  # warm-up, as hyperfine's
            return [take_sample(wl, native, args.binary, 10, cpu=args.cpu).startup_ms for _ in range(args.chunk)]
        samples = take_samples(wl, native, args.binary, 10, args.chunk, cpu=args.cpu, warmup=1)
        nivcsw.extend(s.nivcsw for s in samples)
        return [s.startup_ms for s in samples]

    nivcsw: list[int | None] = []
    spinner = None
    if args.spin != "none":
        spinner = subprocess.Popen(["sh", "-c", "while :; do :; done"], start_new_session=args.spin == "own")
    try:
        for _ in range(args.reps):
            before = environment.noise_snapshot()
            mine, theirs = [], []
            nivcsw.clear()
            for round_ in range(args.rounds):
                # Alternate who goes first, so neither always follows the other's warm-up.
                if round_ % 2:
                    theirs += hyperfine(args.binary, args.chunk, args.cpu)
                mine += ours()
                if not round_ % 2:
                    theirs += hyperfine(args.binary, args.chunk, args.cpu)
            noise = environment.host_noise(before, environment.noise_snapshot())
            ratios = " ".join(f"{k} {quantile(mine, q) / quantile(theirs, q):.3f}" for k, q in QUANTILES.items())
            print(f"slimlab/hyperfine {ratios} | medians {statistics.median(mine):.3f} / "
                  f"{statistics.median(theirs):.3f} ms, n={len(mine)} | load {noise['loadavg_after'][0]:.1f} "
                  f"cpu-pressure {noise['cpu_pressure_pct']}% steal {noise['steal_pct']}%", flush=True)
            for warning in environment.busy_host_warnings(noise, nivcsw):
                print("  " + warning[:140] + "...")
    finally:
        if spinner:
            spinner.kill()
            spinner.wait()


if __name__ == "__main__":
    main()
