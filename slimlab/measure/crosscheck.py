"""An independent figure beside slimlab's own: hyperfine -N on the same binary, in the same sweep.

For a native CLI variant the sweep takes a few more starts of it in alternating turns,
slimlab's launcher then hyperfine, right after its timed samples: the same binary, the
same load. The two medians go into the row, so a report can show how far apart the tools
are, and why (a busy host), instead of asking the reader to trust one of them.
"""

from __future__ import annotations

import json
import shlex
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from .. import proc

if TYPE_CHECKING:
    from ..workloads import Workload
    from .runners import Runner

TURNS = 3  # alternating turns per tool
CHUNK = 5  # starts per turn, after one untimed start


def hyperfine_ms(hyperfine: str, argv: list[str], env: dict[str, str], runs: int, cpu: int | None,
                 ignore_failure: bool, timeout_s: float = 120) -> list[float]:
    """Start-up times (ms) of ``argv`` as ``hyperfine -N`` takes them: one warm-up, then ``runs``."""
    with tempfile.TemporaryDirectory(prefix="slimlab-hyperfine-") as tmp:
        export = Path(tmp) / "times.json"
        command = [hyperfine, "-N", "--style", "none", "--warmup", "1", "--runs", str(runs),
                   "--export-json", str(export), *(["--ignore-failure"] if ignore_failure else []),
                   "--", shlex.join(argv)]
        if cpu is not None:
            command = ["taskset", "-c", str(cpu), *command]
        # proc.run: a hang is killed with the program hyperfine is timing, not hyperfine alone.
        done = proc.run(command, env=env, timeout=timeout_s)
        if not done.ok:
            raise done.error("hyperfine")
        return [t * 1000 for t in json.loads(export.read_text())["results"][0]["times"]]


def crosscheck(runner: Runner, workload: Workload, binary: Path, timeout_s: float,
               cpu: int | None = None) -> dict | None:
    """Both tools' start-up medians of a native CLI, taken in turns; None where hyperfine cannot
    take the same figure (a server: hyperfine times to exit, not to a healthy answer; an
    emulated CPU) or is not installed."""
    hyperfine = shutil.which("hyperfine")
    if hyperfine is None or runner.name != "native" or workload.kind != "cli":
        return None
    env = workload.run_env()  # added to this process's environment, as the launcher passes it on
    mine: list[float] = []
    theirs: list[float] = []
    for _ in range(TURNS):
        mine += [s.startup_ms for s in runner.samples(workload, binary, timeout_s, CHUNK, warmup=1, cpu=cpu)]
        theirs += hyperfine_ms(hyperfine, [str(binary), *workload.run_args()], env, CHUNK, cpu,
                               ignore_failure=workload.expect_exit != 0, timeout_s=30 + 2 * CHUNK * timeout_s)
    # The 25th percentile too: on a busy host a median of few-ms starts can land in either of
    # two modes (a start that got a CPU at once, or waited a scheduler tick); the fast
    # quarter does not (see measure.samples._cli).
    return {
        "crosscheck_n": len(mine),
        "crosscheck_slimlab_ms_median": statistics.median(mine),
        "crosscheck_hyperfine_ms_median": statistics.median(theirs),
        "crosscheck_slimlab_ms_p25": statistics.quantiles(mine, n=4, method="inclusive")[0],
        "crosscheck_hyperfine_ms_p25": statistics.quantiles(theirs, n=4, method="inclusive")[0],
    }
