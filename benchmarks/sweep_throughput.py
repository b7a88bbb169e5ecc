"""How long slimlab takes for the default sweep, against a plain shell loop doing the same.

The shell loop is what a careful person would write by hand: for each variant, `go build`
with the profile's flags, then the same number of warm-up and timed starts, each under
`/usr/bin/time -f %M` (and, for the server, polled with curl until /healthz answers).
Both start with Go's own build cache warm, so the comparison is of the harness, not of
the compiler. Then slimlab runs again with nothing changed: once resuming the same run
id (nothing left to do) and once as a new run (every build from slimlab's artifact
cache, every measurement taken again).

Each executor given (default: sequential, local and dask-local: slimlab.executor) runs the
three sweeps from its own empty artifact cache; the ratios say what preparing variants in
parallel saves. The time each cold sweep spent preparing (the manifest's) is printed beside.

Usage: python benchmarks/sweep_throughput.py [SPEC] [--executor NAME ...]   (default: the built-in baseline spec)
The shell loop reproduces builds and native measurements only: a SPEC with post-link
chains or foreign targets is refused rather than compared unfairly.
Prints the figures; timings on a shared 2-core machine are noisy, compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from slimlab import SweepSpec, expand, sweep, toolchains, workloads
from slimlab.model import TARGETS


def shell_loop(spec: SweepSpec, bin_dir: Path) -> str:
    """A bash script doing the sweep's builds and measurements sequentially."""
    lines = ["set -u", f"cd {shlex.quote(str(bin_dir))}", "port=41000"]
    for n, v in enumerate(expand(spec)):
        wl = workloads.resolve(v.workload, spec.base_dir)
        cmd = toolchains.get(v.toolchain).build_command(
            wl.source_dir, spec.all_profiles()[v.profile], TARGETS[v.target], bin_dir / f"bin{n}")
        env = " ".join(f"{k}={shlex.quote(val)}" for k, val in cmd.env.items())
        lines.append(f"(cd {shlex.quote(str(cmd.cwd))} && env {env} {shlex.join(cmd.argv)}) || exit 1")
        runs = spec.warmup + spec.repeats
        if wl.kind == "cli":
            args = shlex.join(wl.run_args())
            lines.append(f"for i in $(seq {runs}); do /usr/bin/time -f %M -a -o rss{n} ./bin{n} {args} >/dev/null; done")
        else:
            args = shlex.join(wl.run_args("127.0.0.1:PORT")).replace("PORT", "$port")
            # A server that could not listen (a port another process holds) exits: start it again
            # on the next port, rather than polling a dead port for ever.
            lines += [
                f"for i in $(seq {runs}); do",
                "  while :; do",
                "    port=$((port+1))",
                f"    /usr/bin/time -f %M -a -o rss{n} ./bin{n} {args} & tpid=$!",
                f"    until curl -sf http://127.0.0.1:$port{wl.health_path} >/dev/null; do",
                "      kill -0 $tpid 2>/dev/null || continue 2; sleep 0.001",
                "    done",
                "    pkill -TERM -P $tpid; wait $tpid; break",
                "  done",
                "done",
            ]
    return "\n".join(lines) + "\n"


def timed(what: str, fn, width: int = 58) -> float:
    """Run ``fn`` and print how long it took beside ``what``."""
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    print(f"{what:<{width}} {seconds:8.2f} s", flush=True)
    return seconds


def preparation_seconds(run_dir: Path) -> float:
    return json.loads((run_dir / "manifest.json").read_text())["sessions"][0]["preparation"]["seconds"]  # not the resume's


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("spec", nargs="?", default="baseline")
    parser.add_argument("--executor", action="append", help="repeat it (default: sequential, local, dask-local)")
    args = parser.parse_args()
    spec = SweepSpec.load(args.spec)
    executors = args.executor or ["sequential", "local", "dask-local"]
    if set(spec.postlink) != {"none"} or any(not TARGETS[t].is_native for t in spec.targets) or spec.probe:
        sys.exit("the shell loop reproduces native builds and measurements only: "
                 "use a spec without post-link chains, foreign targets or probes (e.g. 'baseline')")
    variants = expand(spec)
    print(f"spec: {len(variants)} variants x {spec.repeats} repeats (+{spec.warmup} warm-up), "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="slimlab-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "bins").mkdir()
        script = shell_loop(spec, tmp / "bins")
        # Warm Go's build cache for both contestants alike.
        for line in script.splitlines():
            if " build " in line:
                subprocess.run(["bash", "-c", line], check=True, capture_output=True)
        shell = timed("plain shell loop (go build + /usr/bin/time + curl)",
                      lambda: subprocess.run(["bash", "-c", script], check=True, capture_output=True))
        data = tmp / "data"
        figures = {}
        for executor in executors:
            os.environ["SLIMLAB_CACHE"] = str(tmp / f"cache-{executor}")  # empty: every build runs

            def run(run_id: str, executor=executor) -> None:
                sweep(spec, data_dir=data, run_id=f"{executor}-{run_id}", progress=False, executor=executor)

            cold = timed(f"slimlab sweep --executor {executor}, empty artifact cache", lambda: run("a"))
            resume = timed("  again, same run id (resume, nothing to do)", lambda: run("a"))
            again = timed("  again, new run id (cached builds, re-measure)", lambda: run("b"))
            figures[executor] = (cold, resume, again, preparation_seconds(data / "runs" / f"{executor}-a"))
    for executor, (cold, resume, again, prepared) in figures.items():
        print(f"{executor}: cold / shell loop {cold / shell:.2f} (preparing {prepared:.1f} s of {cold:.1f} s), "
              f"new run / shell loop {again / shell:.2f}, resume / cold {resume / cold:.3f}")
    if "sequential" in figures:
        for executor, (cold, *_rest) in figures.items():
            if executor != "sequential":
                print(f"{executor} / sequential, cold sweep: {cold / figures['sequential'][0]:.2f}")


if __name__ == "__main__":
    main()
