"""What a server's own network namespace costs its timed start in a container: slimlab's bridge
network with a port published on 127.0.0.1 (what a sweep uses) against the host's network.

Both are timed by slimlab's own container runner (spawn to the first healthy answer), with the
same confinement, taking turns one start at a time so a changing load reaches both. Prints, per
image, the median start-up of each with its 95% interval and the ratio bridge / host.

Usage: python benchmarks/container_network.py [--starts N] [--workloads noop-server,httpd]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from slimlab import bases, engine, toolchains, workloads
from slimlab.analysis import compare_samples, median_ci
from slimlab.build import build, default_cache_dir
from slimlab.image import build_image
from slimlab.measure.container import FLOOR_WORKLOADS, ContainerRunner, floor_runner
from slimlab.measure.launcher import launcher_path
from slimlab.model import BUILTIN_PROFILES, TARGETS


def runner_of(api, name: str, cache: Path) -> tuple[ContainerRunner, workloads.Workload]:
    """The floor's no-op server, or a built-in server workload built static on scratch."""
    if name == "noop-server":
        return floor_runner(api, launcher_path(cache), "server", cache), FLOOR_WORKLOADS["server"]
    workload, go = workloads.resolve(name), toolchains.get("go")
    target = TARGETS["linux/amd64"]
    built = build(workload, go, go.detect(), BUILTIN_PROFILES["static"], target, cache, timeout=600)
    assert built.ok, built.reason
    made = build_image(api, bases.base_layer("scratch", target, cache), built.binary, name)
    assert made.ok, made.reason
    return ContainerRunner(api, made.tag, f"/app/{name}", launcher_path(cache)), workload


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=30)
    parser.add_argument("--workloads", default="noop-server,httpd")
    args = parser.parse_args()
    cache, api = default_cache_dir(), engine.client()
    for name in args.workloads.split(","):
        bridge, workload = runner_of(api, name, cache)
        host = dataclasses.replace(bridge, server_network="host")
        taken: dict[str, list[float]] = {"bridge": [], "host": []}
        for runner in (bridge, host):  # one untimed start each: images and network warm
            runner.check(workload, Path(), 30)
        for index in range(args.starts):
            order = (("bridge", bridge), ("host", host)) if index % 2 == 0 else (("host", host), ("bridge", bridge))
            for kind, runner in order:
                taken[kind] += [s.startup_ms for s in runner.samples(workload, Path(), 30, 1)]
        for kind, samples in taken.items():
            found = median_ci(samples)
            print(f"{name:12} {kind:6} median {found.median:7.1f} ms [{found.lo:.1f}, {found.hi:.1f}] n={found.n}")
        ratio = compare_samples(taken["host"], taken["bridge"])
        print(f"{name:12} bridge / host {ratio.ratio:.2f} [{ratio.lo:.2f}, {ratio.hi:.2f}] "
              f"p={ratio.p_value:.3g} {ratio.verdict}")
    api.close()


if __name__ == "__main__":
    main()
