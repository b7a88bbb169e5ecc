"""How big the local executor's pool should be: preparation time by pool size and Go's own parallelism.

For each pool size (1 = the sequential executor) and each GOMAXPROCS given to the go
command (unset: every core; 1: one thread, so the go command also runs one compile or link
at a time), the spec's preparation runs with an empty slimlab artifact cache (Go's own
build cache warm, as in sweep_throughput.py) and the manifest's preparation seconds are
printed. Measurement is cut to one start per variant: only preparation is compared.

Usage: python benchmarks/pool_sizing.py [SPEC] [--rounds N]   (default: the baseline spec,
and the default spec narrowed to linux/amd64 without images: postlink chains included)
Results from a shared 2-core machine are noisy: rounds alternate the configurations.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from slimlab import SweepSpec, sweep
from slimlab.model.spec import ADAPTIVE_KEYS  # a fixed repeats replaces them

SIZES = (1, 2, 3, 4)
GOMAXPROCS = (None, "1")


def specs(names: list[str]) -> dict[str, SweepSpec]:
    if names:
        return {name: SweepSpec.load(name) for name in names}
    narrowed = {**SweepSpec.load("default").to_dict(), "targets": ["linux/amd64"], "bases": ["none"],
                "probe": False, "excludes": []}
    return {"baseline": SweepSpec.load("baseline"), "default (amd64, bases none)": SweepSpec.from_dict(narrowed)}


def prepare_seconds(spec: SweepSpec, workers: int, gomaxprocs: str | None, tmp: Path, n: int) -> float:
    spec = SweepSpec.from_dict({**{k: v for k, v in spec.to_dict().items() if k not in ADAPTIVE_KEYS},
                                "repeats": 1, "warmup": 0})
    os.environ["SLIMLAB_CACHE"] = str(tmp / f"cache{n}")  # empty: every build and post-link step runs
    if gomaxprocs is None:
        os.environ.pop("GOMAXPROCS", None)
    else:
        os.environ["GOMAXPROCS"] = gomaxprocs
    run = sweep(spec, data_dir=tmp / "data", run_id=f"r{n}", progress=False,
                executor="sequential" if workers == 1 else "local", workers=workers)
    return json.loads((run / "manifest.json").read_text())["sessions"][-1]["preparation"]["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("spec", nargs="*")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    for label, spec in specs(args.spec).items():
        configs = [(w, g) for g in GOMAXPROCS for w in SIZES]
        seconds: dict[tuple, list[float]] = {c: [] for c in configs}
        with tempfile.TemporaryDirectory(prefix="slimlab-sizing-") as tmp:
            prepare_seconds(spec, 2, None, Path(tmp), 0)  # warm Go's build cache and the page cache
            n = 1
            for _ in range(args.rounds):
                for config in configs:
                    seconds[config].append(prepare_seconds(spec, *config, Path(tmp), n))
                    n += 1
        print(f"{label}: {len(spec.values('workloads'))} workloads, load {os.getloadavg()[0]:.2f}")
        for (workers, gomaxprocs), values in seconds.items():
            print(f"  workers {workers}  GOMAXPROCS {gomaxprocs or 'unset':>5}: preparation "
                  f"{statistics.median(values):6.2f} s  (runs: {', '.join(f'{v:.2f}' for v in values)})", flush=True)


if __name__ == "__main__":
    main()
