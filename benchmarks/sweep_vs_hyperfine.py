"""An independent re-measurement of a sweep: hyperfine -N on the sweep's own binaries, right after it.

Runs a native CLI sweep (hello, every built-in profile by default), then hyperfine -N on
each cached binary, and prints slimlab's start-up median against hyperfine's, per variant
and as a geometric mean, with the busy-host warning slimlab recorded. The sweep takes its
starts in bursts per interleaved round (slimlab.sweep.MEASURE_BURST); hyperfine runs one
variant at a time. Ratios near 1.0 mean the sweep's own conditions add nothing.

Usage: python benchmarks/sweep_vs_hyperfine.py [--repeats N] [--workload hello] [--profiles a,b]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import tempfile
from pathlib import Path

import slimlab
from slimlab import toolchains, workloads
from slimlab.build import build, default_cache_dir
from slimlab.model import BUILTIN_PROFILES, TARGETS


def hyperfine_median_ms(binary: Path, runs: int) -> float:
    with tempfile.NamedTemporaryFile(suffix=".json") as export:
        subprocess.run(["hyperfine", "-N", "--warmup", "3", "--runs", str(runs), "--export-json", export.name,
                        str(binary)], check=True, capture_output=True)
        return json.loads(Path(export.name).read_text())["results"][0]["median"] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--workload", default="hello")
    parser.add_argument("--profiles", default="default,stripped,trimmed,static")
    args = parser.parse_args()
    profiles = args.profiles.split(",")
    with tempfile.TemporaryDirectory(prefix="slimlab-agree-") as tmp:
        run = slimlab.sweep({"workloads": [args.workload], "profiles": profiles, "repeats": args.repeats,
                             "warmup": 2}, data_dir=tmp, progress=False)
        df = slimlab.load(run)
        (manifest,) = slimlab.load_manifests(run)
        wl, go = workloads.resolve(args.workload), toolchains.get("go")
        info, ratios = go.detect(), []
        print(f"{'variant':<40} {'slimlab ms':>10} {'hyperfine ms':>12} {'ratio':>6}")
        for row in df.iter_rows(named=True):
            built = build(wl, go, info, BUILTIN_PROFILES[row["profile"]], TARGETS[row["target"]],
                          default_cache_dir(), 600)  # the sweep's cached binary
            theirs = hyperfine_median_ms(built.binary, args.repeats)
            ratios.append(row["startup_ms_median"] / theirs)
            print(f"{row['workload'] + ' ' + row['profile']:<40} {row['startup_ms_median']:>10.3f} "
                  f"{theirs:>12.3f} {ratios[-1]:>6.3f}")
        geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        print(f"geometric mean ratio slimlab/hyperfine: {geomean:.3f}")
        for warning in manifest["sessions"][-1]["measurement"]["warnings"]:
            print(warning)


if __name__ == "__main__":
    main()
