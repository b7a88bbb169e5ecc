"""An independent figure beside slimlab's own: hyperfine -N on the same binary, in the same sweep.

For a native CLI variant the sweep takes a few more starts of it in alternating turns,
slimlab's launcher then hyperfine, right after its timed samples: the same binary, the
same load. The two medians go into the row, so a report can show how far apart the tools
are, and why (a busy host), instead of asking the reader to trust one of them.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..workloads import Workload
    from .runners import Runner

TURNS = 3  # alternating turns per tool
CHUNK = 5  # starts per turn, after one untimed start


def hyperfine_ms(hyperfine: str, argv: list[str], env: dict[str, str], runs: int, cpu: int | None,
                 ignore_failure: bool) -> list[float]:
    """Start-up times (ms) of ``argv`` as ``hyperfine -N`` takes them: one warm-up, then ``runs``."""
    with tempfile.TemporaryDirectory(prefix="slimlab-hyperfine-") as tmp:
        export = Path(tmp) / "times.json"
        command = [hyperfine, "-N", "--style", "none", "--warmup", "1", "--runs", str(runs),
                   "--export-json", str(export), *(["--ignore-failure"] if ignore_failure else []),
                   "--", shlex.join(argv)]
        if cpu is not None:
            command = ["taskset", "-c", str(cpu), *command]
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)
        return [t * 1000 for t in json.loads(export.read_text())["results"][0]["times"]]


def crosscheck(runner: Runner, workload: Workload, binary: Path, timeout_s: float,
               cpu: int | None = None) -> dict | None:
    """Both tools' start-up medians of a native CLI, taken in turns; None where hyperfine cannot
    take the same figure (a server: hyperfine times to exit, not to a healthy answer; an
    emulated CPU) or is not installed."""
    hyperfine = shutil.which("hyperfine")
    if hyperfine is None or runner.emulated or workload.kind != "cli":
        return None
    env = {**os.environ, **workload.run_env()}
    mine: list[float] = []
    theirs: list[float] = []
    for _ in range(TURNS):
        mine += [s.startup_ms for s in runner.samples(workload, binary, timeout_s, CHUNK, warmup=1, cpu=cpu)]
        theirs += hyperfine_ms(hyperfine, [str(binary), *workload.run_args()], env, CHUNK, cpu,
                               ignore_failure=workload.expect_exit != 0)
    return {
        "crosscheck_n": len(mine),
        "crosscheck_slimlab_ms_median": statistics.median(mine),
        "crosscheck_hyperfine_ms_median": statistics.median(theirs),
    }
