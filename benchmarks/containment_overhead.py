"""What containing bare runs (measure.contain) costs: a start inside a cgroup against one outside.

Takes turns: calibrate_overhead (a static no-op, as programs are timed) contained and not,
REPS times each, so a load that changes by the second reaches both; and times making and
removing one batch's cgroup (outside every timed start, once per batch). Prints the medians
and the ratio contained/uncontained of the start's median and of its fastest.

Usage: python benchmarks/containment_overhead.py [--reps N] [--runs N] [--cpu N]
"""

from __future__ import annotations

import argparse
import statistics
import time

from slimlab.measure import Limits, calibrate_overhead
from slimlab.measure.contain import contained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--cpu", type=int, default=None)
    args = parser.parse_args()
    taken: dict[str, list[dict]] = {"contained": [], "bare": []}
    kind = None
    for _ in range(args.reps):
        for label, limits in (("contained", Limits()), ("bare", None)):
            found = calibrate_overhead(runs=args.runs, cpu=args.cpu, limits=limits)
            kind = found["containment"] or kind
            taken[label].append(found)
    batches = []
    for _ in range(50):
        started = time.perf_counter()
        with contained(Limits()):
            pass
        batches.append((time.perf_counter() - started) * 1000)
    medians = {label: statistics.median(c["median_ms"] for c in got) for label, got in taken.items()}
    fastest = {label: statistics.median(c["min_ms"] for c in got) for label, got in taken.items()}
    print(f"containment: {kind}; {args.reps} turns of {args.runs} no-op starts each")
    for label in taken:
        print(f"  {label:9}  median {medians[label]:.4f} ms   fastest {fastest[label]:.4f} ms")
    print(f"  ratio contained/bare: median {medians['contained'] / medians['bare']:.3f}, "
          f"fastest {fastest['contained'] / fastest['bare']:.3f}")
    print(f"  one batch's cgroup made and removed: median {statistics.median(batches):.2f} ms "
          f"(outside the timed starts)")


if __name__ == "__main__":
    main()
