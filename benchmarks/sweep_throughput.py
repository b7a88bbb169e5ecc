"""How long slimlab takes for a sweep (the default spec, `make demo`'s), against a plain shell loop doing the same.

The shell loop is what a careful person would write by hand: for each variant, `go build`
with the profile's flags; the post-link chain's commands (strip, objcopy, upx) on a copy;
for an image, `docker build` of the binary on its base (the same base tar slimlab makes,
ADDed to scratch) on the same engine; then the spec's warm-up starts and a fixed 20 timed
ones (LOOP_REPEATS: what slimlab took before it sampled to a precision), bare ones under
`/usr/bin/time -f %M` (a server polled with curl until its health path answers), containers
with `docker run`, each start's wall time taken from bash's $EPOCHREALTIME. Another CPU's
binaries run under QEMU user mode, as a script would run them; slimlab runs them in a
full-system guest of that CPU (the spec's runner), one boot for all of them (a few, when
adaptive sampling asks for more starts). Neither does the capability probes (the spec's
`probe` is turned off for both): a loop would not.

Both start with Go's build cache and the bases warm (the bases were built into slimlab's
cache and the engine before), so the comparison is of the harness, not of the compiler
or of Debian's mirror. Then slimlab runs again with nothing changed: once resuming the
same run id (nothing left to do) and once as a new run (every build from slimlab's
artifact cache, every measurement taken again).

Each executor given (default: sequential, local and dask-local: slimlab.executor) runs the
three sweeps from its own empty artifact cache; the ratios say what preparing variants in
parallel saves. The time each cold sweep spent preparing (the manifest's) is printed beside.
Beside the time ratio, the precision each side reached per variant: the wider half of the 95%
bootstrap interval of its median start-up over the median (slimlab.sampling.relative_precision),
slimlab's from its row, the loop's from its own 20 starts computed the same way.

Usage: python benchmarks/sweep_throughput.py [SPEC] [--executor NAME ...]   (default SPEC: default)
Needs the Docker engine for a spec with images (slimlab engine start).
Prints the figures; timings on a shared 2-core machine are noisy, compare the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from slimlab import SweepSpec, bases, engine, expand, sweep, toolchains, workloads
from slimlab.build import default_cache_dir
from slimlab.model import TARGETS, get_chain
from slimlab.model.chain import STEPS
from slimlab.postlink import tool_for
from slimlab.sampling import relative_precision

LOOP_REPEATS = 20  # the loop's timed starts per variant, fixed


def _postlink(chain_name: str, target, built: str, out: str) -> list[str]:
    """The chain's steps as commands, as slimlab.postlink runs them (objcopy's removals are
    slimlab's own choice per binary, so the loop uses strip's flags for it: what a script would)."""
    lines, src = [], built
    for n, step in enumerate(STEPS[name] for name in get_chain(chain_name).steps):
        dst = f"{out}.step{n}"
        tool = tool_for(step.tool, target)
        if step.tool == "upx":
            lines.append(f"{tool} {shlex.join(step.args)} -q --no-progress -o {dst} {src} >/dev/null && "
                         f"{tool} -t {dst} >/dev/null")
        elif step.tool == "objcopy":
            lines.append(f"{tool} --strip-all {src} {dst}")
        else:
            lines.append(f"{tool} {shlex.join(step.args)} -o {dst} {src}")
        src = dst
    lines.append(f"cp {src} {out}")
    return lines


def _clock(times: str | None) -> tuple[str, str]:
    """Shell commands around one start that append its begin and end to ``times`` (no-ops without)."""
    return ("t0=$EPOCHREALTIME", f'echo "$t0 $EPOCHREALTIME" >> {times}') if times else (":", ":")


def _starts(wl, prefix: str, runs: int, times: str | None = None) -> list[str]:
    """``runs`` starts of ``prefix`` + the workload's arguments: a CLI to its exit, a server to a
    healthy answer; with ``times``, each start's begin and end (bash's $EPOCHREALTIME) appended to it."""
    begin, end = _clock(times)
    if wl.kind == "cli":
        args = shlex.join(wl.run_args())
        return [f"for i in $(seq {runs}); do {begin}; {prefix} {args} >/dev/null; {end}; done"]
    args = shlex.join(wl.run_args("127.0.0.1:PORT")).replace("PORT", "$port")
    # A server that could not listen (a port another process holds) exits: start it again
    # on the next port, rather than polling a dead port for ever.
    return [
        f"for i in $(seq {runs}); do",
        "  while :; do",
        "    port=$((port+1))",
        f"    {begin}; {prefix} {args} & tpid=$!",
        f"    until curl -sf http://127.0.0.1:$port{wl.health_path} >/dev/null; do",
        "      kill -0 $tpid 2>/dev/null || continue 2; sleep 0.001",
        "    done",
        f"    {end}",
        "    pkill -TERM -P $tpid; kill -TERM $tpid 2>/dev/null; wait $tpid; break",
        "  done",
        "done",
    ]


def shell_loop(spec: SweepSpec, bin_dir: Path, cache: Path, starts: bool = True) -> str:
    """A bash script doing the sweep's builds, post-link steps, images and (``starts``) starts one
    variant at a time."""
    # The engine's classic builder, as slimlab's SDK build uses (a CLI without buildx needs it too).
    lines = ["set -u", "export DOCKER_BUILDKIT=0", f"cd {shlex.quote(str(bin_dir))}", "port=41000"]
    for n, v in enumerate(expand(spec)):
        wl = workloads.resolve(v.workload, spec.base_dir)
        target = TARGETS[v.target]
        cmd = toolchains.get(v.toolchain).build_command(
            wl.source_dir, spec.all_profiles()[v.profile], target, bin_dir / f"built{n}")
        env = " ".join(f"{k}={shlex.quote(val)}" for k, val in cmd.env.items())
        lines.append(f"(cd {shlex.quote(str(cmd.cwd))} && env {env} {shlex.join(cmd.argv)}) || exit 1")
        lines += _postlink(v.postlink, target, f"built{n}", f"bin{n}")
        if v.base == "none":
            emulator = "" if target.is_native else f"{target.qemu} "
            prefix = f"/usr/bin/time -f %M -a -o rss{n} {emulator}./bin{n}"
            if starts:
                lines += _starts(wl, prefix, spec.warmup) + _starts(wl, prefix, LOOP_REPEATS, f"times{n}")
            continue
        layer = bases.base_layer(v.base, target, cache)
        name = Path(wl.name).name
        context = bin_dir / f"image{n}"
        context.mkdir()
        dockerfile = ["FROM scratch"] + (["ADD base.tar /"] if layer.tar else []) + [
            f"COPY bin /app/{name}", "USER 65532:65532", f'ENTRYPOINT ["/app/{name}"]']
        (context / "Dockerfile").write_text("\n".join(dockerfile) + "\n")
        if layer.tar:
            shutil.copyfile(layer.tar, context / "base.tar")
        lines += [f"cp bin{n} image{n}/bin", f"docker build -q -t slimlab-bench/loop:{n} image{n} >/dev/null || exit 1"]
        for runs, times in ((spec.warmup, None), (LOOP_REPEATS, f"times{n}")) if starts else ():
            begin, end = _clock(times)
            if wl.kind == "cli":
                lines += _starts(wl, f"docker run --rm slimlab-bench/loop:{n}", runs, times)
                continue
            args = shlex.join(wl.run_args("127.0.0.1:PORT")).replace("PORT", "$port")
            lines += [
                f"for i in $(seq {runs}); do",
                "  port=$((port+1))",
                f"  {begin}; cid=$(docker run -d --network host slimlab-bench/loop:{n} {args})",
                # A server that cannot start (a dynamic binary on scratch) exits: stop polling it.
                f"  until curl -sf http://127.0.0.1:$port{wl.health_path} >/dev/null; do",
                "    [ \"$(docker inspect -f '{{.State.Running}}' $cid)\" = true ] || break; sleep 0.001",
                "  done",
                f"  {end}",
                "  docker stop -t 5 $cid >/dev/null; docker rm $cid >/dev/null",
                "done",
            ]
        lines.append(f"docker rmi -f slimlab-bench/loop:{n} >/dev/null")
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


def loop_startups(bin_dir: Path, variants) -> dict[str, list[float]]:
    """The loop's timed starts per variant key, in ms, from its times files."""
    out = {}
    for n, v in enumerate(variants):
        file = bin_dir / f"times{n}"
        lines = file.read_text().split("\n") if file.is_file() else []
        out[v.key] = [(float(end) - float(begin)) * 1000 for begin, end in (ln.split() for ln in lines if ln)]
    return out


def print_precision(loop: dict[str, list[float]], data: Path, run_id: str) -> None:
    """Per variant, the precision each side reached and its starts; then how often slimlab's was at
    least as good. A variant that failed on either side has no precision there."""
    import slimlab

    rows = {r["variant_key"]: r for r in slimlab.load(data / "runs" / run_id).iter_rows(named=True)}
    print(f"precision reached (±, the 95% interval of the median start-up over the median), run {run_id}:")
    print(f"  {'variant':<52} {'loop':>14} {'slimlab':>14}")
    better = compared = 0
    for key, starts in loop.items():
        ours = rows.get(key, {})
        theirs = relative_precision(starts) if len(starts) >= 3 else None
        mine = ours.get("startup_precision") if ours.get("status") == "ok" else None

        def shown(value, n) -> str:
            return "-" if value is None else f"{value:6.1%} (n={n:>2})"

        same = f"  same binary as {ours['same_binary_as']}" if ours.get("same_binary_as") else ""
        print(f"  {key:<52} {shown(theirs, len(starts)):>14} {shown(mine, ours.get('startup_n')):>14}{same}")
        if theirs is not None and mine is not None:
            compared += 1
            better += mine <= theirs
    print(f"  slimlab's precision at least as good as the loop's on {better} of {compared} variants")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("spec", nargs="?", default="default")
    parser.add_argument("--executor", action="append", help="repeat it (default: sequential, local, dask-local)")
    args = parser.parse_args()
    spec = SweepSpec.load(args.spec)
    if spec.probe:
        print("the capability probes are turned off for both contestants: a loop would not run them")
        spec = replace(spec, probe=False)
    executors = args.executor or ["sequential", "local", "dask-local"]
    variants = expand(spec)
    rule = spec.sampling()
    counts = (f"{spec.repeats} repeats" if spec.repeats else
              f"{rule.min_repeats}-{rule.max_repeats} starts to ±{rule.precision:.1%}")
    print(f"spec {spec.name}: {len(variants)} variants x {counts} (+{spec.warmup} warm-up; the loop: "
          f"{LOOP_REPEATS}), {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    cache = default_cache_dir()
    if any(v.base != "none" for v in variants):
        url = engine.status().url
        if url is None:
            sys.exit(f"this spec has images: start the engine first ({engine.START_COMMAND})")
        os.environ["DOCKER_HOST"] = url  # for the loop's docker CLI, and slimlab's
        for v in variants:  # the bases, warm for both (built once into slimlab's cache)
            if v.base != "none":
                bases.base_layer(v.base, TARGETS[v.target], cache)
    with tempfile.TemporaryDirectory(prefix="slimlab-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "bins").mkdir()
        script = shell_loop(spec, tmp / "bins", cache)
        # Warm Go's build cache for both contestants alike.
        for line in script.splitlines():
            if " build " in line and not line.startswith("docker"):
                subprocess.run(["bash", "-c", line], check=True, capture_output=True)
        shell = timed("plain shell loop (go build, post-link, docker build, starts)",
                      lambda: subprocess.run(["bash", "-c", script], check=True, capture_output=True))
        # The loop's preparation alone (no starts): what slimlab's executor parallelises.
        (tmp / "bins-prep").mkdir()
        prep_script = shell_loop(spec, tmp / "bins-prep", cache, starts=False)
        shell_prep = timed("  the same loop without its starts (preparation only)",
                           lambda: subprocess.run(["bash", "-c", prep_script], check=True, capture_output=True))
        data = tmp / "data"
        figures = {}
        for executor in executors:
            artifacts = tmp / f"cache-{executor}"  # empty of builds: every build runs
            artifacts.mkdir()
            for kept in ("apt", "bases", "bases-resolved", "guest-kernel", "guest-launcher", "launcher"):
                if (cache / kept).is_dir():  # what was warm for the loop is warm here too
                    subprocess.run(["cp", "-a", str(cache / kept), str(artifacts / kept)], check=True)
            os.environ["SLIMLAB_CACHE"] = str(artifacts)

            def run(run_id: str, executor=executor) -> None:
                sweep(spec, data_dir=data, run_id=f"{executor}-{run_id}", progress=False, executor=executor)

            cold = timed(f"slimlab sweep --executor {executor}, empty artifact cache", lambda: run("a"))
            resume = timed("  again, same run id (resume, nothing to do)", lambda: run("a"))
            again = timed("  again, new run id (cached builds, re-measure)", lambda: run("b"))
            figures[executor] = (cold, resume, again, preparation_seconds(data / "runs" / f"{executor}-a"))
        loop = loop_startups(tmp / "bins", variants)
        for executor in figures:
            print_precision(loop, data, f"{executor}-a")
    for executor, (cold, resume, again, prepared) in figures.items():
        print(f"{executor}: cold / shell loop {cold / shell:.2f} (preparing {prepared:.1f} s of {cold:.1f} s; "
              f"preparation / the loop's {prepared / shell_prep:.2f}), "
              f"new run / shell loop {again / shell:.2f}, resume / cold {resume / cold:.3f}")
    if "sequential" in figures:
        for executor, (cold, *_rest) in figures.items():
            if executor != "sequential":
                print(f"{executor} / sequential, cold sweep: {cold / figures['sequential'][0]:.2f}")


if __name__ == "__main__":
    main()
