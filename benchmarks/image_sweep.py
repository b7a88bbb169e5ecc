"""How long slimlab takes to build and measure images, against a plain shell script doing the same.

The matrix is the default workloads (hello, httpd) with the `default` and `static`
profiles on the `scratch` and `static` bases. The shell script is what a careful person
would write by hand with the docker CLI: for each variant, `go build`, `docker build`
of a two-line Dockerfile on the same base image, `docker image inspect` for the size,
then the same number of `docker run`s (a CLI to its exit; a server on the host network,
polled with curl, then `docker stop`). It does less than slimlab: no hardened run, no
program memory inside the container, no compressed size, no checks of the output.
Both use the same base images (slimlab's, imported first) and start with Go's build
cache warm. Then slimlab runs again with nothing changed: resuming the same run id
(nothing left to do) and as a new run (images from the engine, measurements again).

Usage: python benchmarks/image_sweep.py [REPEATS]   (default 5; needs a running engine:
`slimlab engine start`). Timings on a shared 2-core machine are noisy: compare ratios.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import sweep_throughput  # this directory's (the script's own directory leads sys.path)
from slimlab import SweepSpec, bases, engine, expand, image, sweep, toolchains, workloads
from slimlab.model import TARGETS

BASES = ("scratch", "static")


def spec_for(repeats: int) -> SweepSpec:
    return SweepSpec.from_parameters({
        "workloads": ["hello", "httpd"], "profiles": ["default", "static"], "bases": list(BASES),
        "repeats": repeats, "warmup": 1,
    })


def shell_script(spec: SweepSpec, work: Path, base_refs: dict[str, str]) -> str:
    """A bash script doing the same builds, images and container runs with the docker CLI."""
    lines = ["set -u", "port=42000",
             "trap 'docker images -q bench/shell | xargs -r docker rmi -f >/dev/null 2>&1' EXIT"]
    for n, v in enumerate(expand(spec)):
        wl = workloads.resolve(v.workload, spec.base_dir)
        ctx = work / f"ctx{n}"
        ctx.mkdir()
        name = Path(wl.name).name
        (ctx / "Dockerfile").write_text(f"FROM {base_refs[v.base]}\nCOPY {name} /app/{name}\n"
                                        f'USER 65532:65532\nENTRYPOINT ["/app/{name}"]\n')
        cmd = toolchains.get(v.toolchain).build_command(
            wl.source_dir, spec.all_profiles()[v.profile], TARGETS[v.target], ctx / name)
        env = " ".join(f"{k}={shlex.quote(val)}" for k, val in cmd.env.items())
        tag = f"bench/shell:{n}"
        lines += [
            f"(cd {shlex.quote(str(cmd.cwd))} && env {env} {shlex.join(cmd.argv)}) || exit 1",
            f"docker build -q -t {tag} {shlex.quote(str(ctx))} >/dev/null || exit 1",
            f"docker image inspect -f '{{{{.Size}}}}' {tag} >> {shlex.quote(str(work / 'sizes'))}",
        ]
        runs = spec.warmup + spec.repeats
        if wl.kind == "cli":
            args = shlex.join(wl.run_args())
            lines.append(f"for i in $(seq {runs}); do docker run --rm --network none {tag} {args} >/dev/null 2>&1;"
                         " done")
        else:
            args = shlex.join(wl.run_args("127.0.0.1:PORT")).replace("PORT", "$port")
            lines += [
                f"for i in $(seq {runs}); do",
                "  port=$((port+1))",
                f"  cid=$(docker run -d --network host {tag} {args})",
                # Bounded, as slimlab's run timeout: a dynamic build on scratch never answers.
                f"  for t in $(seq 10000); do curl -sf http://127.0.0.1:$port{wl.health_path} >/dev/null && break;"
                # every 50 polls: has it exited (a dynamic build on scratch never answers)?
                " if (( t % 50 == 0 )) && [ -z \"$(docker ps -q --filter id=$cid)\" ]; then break; fi;"
                " sleep 0.001; done",
                "  docker stop -t 10 $cid >/dev/null; docker rm -f $cid >/dev/null",
                "done",
            ]
        lines.append(f"docker rmi {tag} >/dev/null")
    return "\n".join(lines) + "\n"


def timed(what: str, fn) -> float:
    return sweep_throughput.timed(what, fn, width=62)


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    found = engine.status()
    if not found.reachable:
        sys.exit(f"no Docker engine: {found.reason}")
    os.environ["DOCKER_HOST"] = found.url  # for the docker CLI of the shell script
    spec = spec_for(repeats)
    variants = expand(spec)
    print(f"matrix: {len(variants)} images x {repeats} runs (+1 warm-up), engine {found.url}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    api = engine.client()
    refs = {name: image._base_ref(api, bases.base_layer(name, TARGETS["linux/amd64"])) for name in BASES}
    with tempfile.TemporaryDirectory(prefix="slimlab-bench-images-") as tmp:
        tmp = Path(tmp)
        script = shell_script(spec, tmp, refs)
        for line in script.splitlines():  # warm Go's build cache for both alike
            if " build " in line and "docker" not in line:
                subprocess.run(["bash", "-c", line], check=True, capture_output=True)
        shell = timed("plain shell script (go build, docker build/inspect/run)",
                      lambda: subprocess.run(["bash", "-c", script], check=True, capture_output=True))
        os.environ["SLIMLAB_CACHE"] = str(tmp / "cache")
        data = tmp / "data"
        cold = timed("slimlab sweep, empty artifact cache (+ hardened runs)",
                     lambda: sweep(spec, data_dir=data, run_id="a", progress=False))
        resume = timed("slimlab sweep again, same run id (resume, nothing to do)",
                       lambda: sweep(spec, data_dir=data, run_id="a", progress=False))
        again = timed("slimlab sweep again, new run id (images cached, re-measure)",
                      lambda: sweep(spec, data_dir=data, run_id="b", progress=False))
    api.close()
    print(f"ratio slimlab cold / shell script:     {cold / shell:.2f}")
    print(f"ratio slimlab new run / shell script:  {again / shell:.2f}")
    print(f"ratio slimlab resume / slimlab cold:   {resume / cold:.3f}")


if __name__ == "__main__":
    main()
