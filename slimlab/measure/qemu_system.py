"""The qemu-system runner: programs measured inside a full-system guest of their own CPU.

One boot measures a batch of variants (``measure_batch``): the initramfs (slimlab.guest)
carries busybox, slimlab's launcher built for that CPU, the binaries and a plan, a shell
script the host writes. The plan does what the host sweep does for a native variant:
the functional check, the check again with a crowded environment (checkenv), the
warm-up starts, then interleaved rounds of one untimed and up to ``burst`` timed starts
in the sweep's shuffled order. Inside, the launcher's peak RSS (wait4) is the program's
own, as on the host; a server is polled on the guest's loopback by the launcher itself
(``--health``), which reads VmRSS/VmHWM from the guest's /proc and stops it with SIGTERM.

Results come back over the serial console as the launcher's own report lines, each
prefixed ``@@ <variant> <step> L``; the host judges them with the same rules as for
a native run and hands each timed sample over as soon as its step ends, so an
interrupted sweep keeps what was measured. A guest that panics or hangs (killed at a
deadline) leaves its unfinished variants broken or timed out with the console's tail.

What differs from a native run: the guest's environment is PATH and HOME plus the
workload's own (not the sweep's); a gRPC health check (grpc_health) is not asked in the
guest (no gRPC client there), only the HTTP one: the sweep also runs the quick checks
under QEMU user mode (the row's qemu_user_check), where it is; and the binaries live on
the initramfs (tmpfs), so their mapped pages count as RssShmem rather than RssFile.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import random
import shlex
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .. import checkenv, guest, libs
from ..errors import SlimlabError
from ..elf import linkage
from ..model import Target
from ..proc import tail
from .launcher import SOURCE, Exit, _exit, _fields
from .samples import CheckFailure, Sample

if TYPE_CHECKING:
    from ..workloads import Workload

GUEST_ADDR = "127.0.0.1:8080"  # nothing else listens in the guest
GUEST_GRPC_ADDR = "127.0.0.1:8081"
STEP_LABELS = {"check": "", "crowded": checkenv.LABEL, "warm": "warm-up: "}


@dataclass(frozen=True)
class Job:
    """One variant in a boot: ``runs`` timed starts still wanted (0: the checks only)."""

    key: str
    workload: Workload
    binary: Path
    runs: int


@dataclass
class _Step:
    index: int  # the job's
    name: str  # check, crowded, warm, measure
    starts: int
    untimed: int  # leading starts not recorded
    first: int = 0  # measure: the index (within this boot) of its first timed sample


@dataclass
class BatchResult:
    failures: dict[str, CheckFailure] = field(default_factory=dict)  # key -> why it failed
    samples: dict[str, list[Sample]] = field(default_factory=dict)  # key -> its timed samples
    checked: set[str] = field(default_factory=set)  # keys that passed both functional checks
    boot: dict = field(default_factory=dict)  # what the manifest records of the boot


@dataclass(frozen=True)
class QemuSystemRunner:
    """Runs ``target``'s programs in a full-system guest. ``append`` adds kernel arguments
    (a test gives a bad ``rdinit=`` to make the guest panic)."""

    target: Target
    cache_dir: Path | None = None
    append: str = ""
    boot_budget_s: float = guest.BOOT_BUDGET_S  # for the kernel and init, besides the plan's own time
    emulated: bool = True
    memory_scope: str = "program"  # the guest kernel's count of the program's own pages
    batch: bool = True  # the sweep hands it all of a target's variants at once

    @property
    def name(self) -> str:
        return guest.MACHINES[self.target.goarch].qemu if self.target.goarch in guest.MACHINES else "qemu-system"

    # The Runner protocol, one boot per call: for a single variant. The sweep uses measure_batch.
    def check(self, workload, binary: Path, timeout_s: float) -> Sample:
        result = self.measure_batch([Job("check", workload, binary, 0)], timeout_s, warmup=0, burst=1)
        if "check" in result.failures:
            raise result.failures["check"]
        return result.samples["check"][0]

    def samples(self, workload, binary: Path, timeout_s: float, runs: int, warmup: int = 0,
                cpu: int | None = None) -> list[Sample]:
        result = self.measure_batch([Job("one", workload, binary, runs)], timeout_s, warmup=warmup, burst=runs,
                                    cpu=cpu)
        if "one" in result.failures:
            raise result.failures["one"]
        return result.samples.get("one", [])

    def measure_batch(self, jobs: list[Job], timeout_s: float, warmup: int, burst: int,
                      on_sample: Callable[[str, int, Sample], None] | None = None,
                      cpu: int | None = None) -> BatchResult:
        """Check and measure ``jobs`` in one boot. ``on_sample(key, i, sample)`` gets each timed
        sample (i counts from 0 within this boot) as soon as its step ends. The guest gets as
        many CPUs as a native run has (one with ``cpu``, pin_cpu): Go sizes GOMAXPROCS, and so
        its threads and their stacks, by them."""
        result = BatchResult()
        if not jobs:
            return result
        try:
            kit = guest.kit(self.target, SOURCE, self.cache_dir)
        except SlimlabError as exc:  # no QEMU, cross gcc or kernel to be had: say how to get them
            for job in jobs:
                result.failures[job.key] = CheckFailure("unsupported", str(exc))
            return result
        steps = _plan(jobs, warmup, burst)
        with tempfile.TemporaryDirectory(prefix="slimlab-guest-") as tmp:
            files = {"init": (0o755, _INIT.encode()), "bin/busybox": (0o755, kit.busybox),
                     "slimlab/launch": (0o755, kit.launcher),
                     "slimlab/plan.sh": (0o644, _script(jobs, steps, timeout_s).encode())}
            for i, job in enumerate(jobs):
                files[f"v/{i}/{Path(job.workload.name).name or 'program'}"] = (0o755, job.binary)
            files.update(_libraries([job.binary for job in jobs], self.target))
            initrd = Path(tmp) / "initrd.cpio"
            size = guest.initramfs(files, initrd)
            # The initramfs lives in the guest's RAM: room for it twice (unpacked while read) and the programs.
            memory = max(512, 256 + 2 * (size >> 20))
            budget = self.boot_budget_s + sum(s.starts for s in steps) * (timeout_s + 2)
            cpus = 1 if cpu is not None else len(os.sched_getaffinity(0))
            # A step's report is printed when its starts are done (up to warm-up or burst + 1
            # starts): silent longer than the longest step may take, or than the kernel takes
            # to boot, is hung.
            silence = max(self.boot_budget_s, max(st.starts for st in steps) * (timeout_s + 2) + 30)
            lines = guest.boot(kit, initrd, budget, memory, self.append, cpus, silence_s=silence)
            console = _Reader(jobs, steps, result, on_sample).read(lines)
        for job in jobs:  # whatever the guest did not finish: the console says why
            if job.key in result.failures or (job.key in result.checked and
                                               len(result.samples.get(job.key, [])) >= job.runs):
                continue
            if console.silent_s is not None:
                status, how = "timeout", f"the guest printed nothing for {console.silent_s:.0f}s (hung) and was killed"
            elif console.exit_code is None:
                status, how = "timeout", f"the guest did not finish within {budget:g}s"
            else:
                status, how = "broken", f"the guest ended (QEMU exit {console.exit_code}) before finishing"
            result.failures[job.key] = CheckFailure(status, f"{self.name}: {how}; console: {console.tail()}")
        result.boot = {"target": self.target.name, **kit.versions, "boot_s": console.boot_s,
                       "elapsed_s": round(console.elapsed_s, 3), "memory_mib": memory, "initrd_bytes": size,
                       "cpus": cpus, "variants": len(jobs), "starts": sum(s.starts for s in steps),
                       "timed_starts": sum(j.runs for j in jobs)}
        return result


def _libraries(binaries: list[Path], target: Target) -> dict[str, tuple[int, Path]]:
    """What dynamic binaries load (gccgo's libgo, cgo's libc), from the cross sysroot: the loader
    at the path the binary names, the libraries in /lib (on the guest loader's default path)."""
    files = {}
    for binary in binaries:
        found = linkage(binary)
        if found["interpreter"]:
            loader = libs.resolve(Path(found["interpreter"]).name, target)
            if loader is not None:
                files[found["interpreter"].lstrip("/")] = (0o755, loader)
        for name, path in libs.closure(found["needed_libs"], target).items():
            if path is not None:  # one that is missing: the program's own check says so in the guest
                files[f"lib/{name}"] = (0o755, path)
    return files


def _plan(jobs: list[Job], warmup: int, burst: int) -> list[_Step]:
    """The starts in the order the host sweep takes them (sweep._rounds): both checks of
    every variant, its warm-up, then rounds in a shuffled order (seed 0), each visit one
    untimed and up to ``burst`` timed starts back to back."""
    steps = [_Step(i, name, 1, 0) for i in range(len(jobs)) for name in ("check", "crowded")]
    steps += [_Step(i, "warm", warmup, warmup) for i, job in enumerate(jobs) if warmup and job.runs]
    taken = [0] * len(jobs)
    active = [i for i, job in enumerate(jobs) if job.runs]
    shuffle = random.Random(0)
    while active:
        shuffle.shuffle(active)
        for i in list(active):
            runs = min(burst, jobs[i].runs - taken[i])
            steps.append(_Step(i, "measure", 1 + runs, 1, taken[i]))
            taken[i] += runs
            if taken[i] >= jobs[i].runs:
                active.remove(i)
    return steps


# PID 1 mounts what the plan needs and runs it as a child: the launcher refuses to run
# with init as its parent (it takes that for an orphan whose sweep died).
_INIT = """#!/bin/busybox sh
/bin/busybox mkdir -p /proc /dev /tmp /sys
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs dev /dev
/bin/busybox --install -s /bin
export PATH=/bin
ip link set lo up
echo "@@ boot uptime=$(cut -d' ' -f1 /proc/uptime) kernel=$(uname -r)"
sh /slimlab/plan.sh
echo "@@ done uptime=$(cut -d' ' -f1 /proc/uptime)"
poweroff -f
"""


def _script(jobs: list[Job], steps: list[_Step], timeout_s: float) -> str:
    out = ["# slimlab's plan: one block per step; a variant that failed (/tmp/failed.N) is skipped"]
    timeout_ms = int(timeout_s * 1000)
    for step in steps:
        job = jobs[step.index]
        w, i, s = job.workload, step.index, step.name
        program = f"/v/{i}/{Path(w.name).name or 'program'}"
        server = w.kind == "server"
        args = w.run_args(GUEST_ADDR, GUEST_GRPC_ADDR) if server else w.run_args()
        env = w.run_env(GUEST_ADDR, GUEST_GRPC_ADDR) if server else w.run_env()
        if s == "crowded":
            env = {**env, **dict(checkenv.service_link_variables())}
        env = {"PATH": "/bin", "HOME": "/", **env}
        health = ["--health", GUEST_ADDR.rsplit(":", 1)[1], w.health_path] if server else []
        capture = s in ("check", "crowded") and not server
        launch = shlex.join(["/slimlab/launch", *health, "--runs", str(step.starts), str(timeout_ms),
                             "/tmp/o" if capture else "-", "/tmp/e", "--", program, *args])
        tag = f"@@ {i} {s}"
        if server:
            good = (f'[ "$(grep -c "^ready .* http_status=200 " /tmp/r)" = {step.starts} ] && '
                    f'[ "$(grep -c "^exited .* exit=0 signal=0 .* timed_out=0 " /tmp/r)" = {step.starts} ]')
        else:
            good = f'[ "$(grep -c "^exited .* exit={w.expect_exit} signal=0 .* timed_out=0 " /tmp/r)" = {step.starts} ]'
        if capture and w.expect_stdout is not None:
            good += f' && [ "$(sha256sum < /tmp/o | cut -c1-64)" = {_sha(w.expect_stdout)} ]'
        out += [
            f"if [ ! -e /tmp/failed.{i} ]; then",
            f'echo "{tag} begin"',
            f"env -i {' '.join(shlex.quote(f'{k}={v}') for k, v in env.items())} {launch} >/tmp/r 2>&1",
            f'sed "s/^/{tag} L /" /tmp/r',
            *([f'echo "{tag} out $(sha256sum < /tmp/o | cut -c1-64) $(head -c 2000 /tmp/o | base64 | tr -d \'\\n\')"']
              if capture else []),
            f'echo "{tag} err $(tail -c 600 /tmp/e | base64 | tr -d \'\\n\')"',
            f"{good} || touch /tmp/failed.{i}",
            f'echo "{tag} end"',
            "fi",
        ]
    return "\n".join(out) + "\n"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _b64(text: str) -> str:
    try:
        return base64.b64decode(text).decode(errors="replace")
    except (binascii.Error, ValueError):
        return ""


class _Reader:
    """Follows the console: collects each step's lines and judges the step at its end."""

    def __init__(self, jobs: list[Job], steps: list[_Step], result: BatchResult, on_sample) -> None:
        self.jobs, self.result, self.on_sample = jobs, result, on_sample
        self.order = {(s.index, s.name): [] for s in steps}
        for s in steps:
            self.order[(s.index, s.name)].append(s)
        self.lines: dict[tuple[int, str], list[str]] = {}

    def read(self, lines) -> guest.Console:
        while True:
            try:
                line = next(lines)
            except StopIteration as stop:
                return stop.value
            if not line.startswith("@@ "):
                continue
            words = line.split(" ", 4)
            if len(words) < 4 or not words[1].isdigit() or (int(words[1]), words[2]) not in self.order:
                continue
            at = (int(words[1]), words[2])
            if words[3] == "begin":
                self.lines[at] = []
            elif words[3] == "end":
                queue = self.order[at]
                if queue:
                    self._judge(queue.pop(0), self.lines.pop(at, []))
            else:
                self.lines.setdefault(at, []).append(" ".join(words[3:]))

    def _judge(self, step: _Step, lines: list[str]) -> None:
        job = self.jobs[step.index]
        if job.key in self.result.failures:
            return
        label = STEP_LABELS.get(step.name, f"samples {step.first + 1}-{step.first + step.starts - 1}: ")
        try:
            samples = _judge(job, step, lines)
        except CheckFailure as failure:
            self.result.failures[job.key] = CheckFailure(failure.status, label + failure.reason)
            return
        except (KeyError, ValueError, IndexError) as exc:  # a report line cut or garbled on the console
            self.result.failures[job.key] = CheckFailure(
                "broken", f"{label}the guest's report could not be read ({type(exc).__name__}: {exc}): "
                          f"{' | '.join(lines)[-300:]}")
            return
        if step.name == "crowded":
            self.result.checked.add(job.key)
        if step.name == "check" and job.runs == 0:  # check() alone: its sample is the check's
            self.result.samples.setdefault(job.key, []).extend(samples)
        if step.name != "measure":
            return
        for offset, sample in enumerate(samples[step.untimed:]):
            self.result.samples.setdefault(job.key, []).append(sample)
            if self.on_sample is not None:
                self.on_sample(job.key, step.first + offset, sample)


def _judge(job: Job, step: _Step, lines: list[str]) -> list[Sample]:
    """The step's samples, or CheckFailure with the same wording as a native run's."""
    w = job.workload
    starts, started, ready = [], None, None
    out_sha, out_head, stderr = None, "", ""
    for line in lines:
        kind, _, rest = line.partition(" ")
        if kind == "L" and rest.startswith("started "):
            started, ready = _fields(rest), None
        elif kind == "L" and rest.startswith("ready "):
            ready = _fields(rest)
        elif kind == "L" and rest.startswith("exited ") and started is not None:
            starts.append((_exit(started, _fields(rest)), ready))
            started = None
        elif kind == "out":
            sha, _, b64 = rest.partition(" ")
            out_sha, out_head = sha, _b64(b64)
        elif kind == "err":
            stderr = tail(_b64(rest), 600)
    said = f"; stderr: {stderr}" if stderr else ""
    if not starts:
        launcher = "; ".join(line[2:] for line in lines if line.startswith("L "))
        raise CheckFailure("broken", f"the launcher did not start {Path(str(job.binary)).name}: "
                                     f"{launcher or 'no report'}{said}")
    samples = []
    for number, (exit, answer) in enumerate(starts, start=1):
        where = "" if step.starts == 1 else f"start {number} of {step.starts}: "
        samples.append(_server_sample(w, exit, answer, where, said, step.name != "measure")
                       if w.kind == "server" else _cli_sample(w, exit, where, said))
    if len(samples) != step.starts:
        raise CheckFailure("broken", f"the launcher reported {len(samples)} of {step.starts} starts{said}")
    if step.name in ("check", "crowded") and w.kind != "server" and w.expect_stdout is not None \
            and out_sha != _sha(w.expect_stdout):
        raise CheckFailure("broken", f"wrong output: expected {w.expect_stdout!r}, got {out_head[-300:]!r}")
    return samples


def _cli_sample(w, exit: Exit, where: str, said: str) -> Sample:
    if exit.timed_out or exit.exit_code != w.expect_exit:
        raise CheckFailure("timeout" if exit.timed_out else "broken",
                           f"{where}expected exit {w.expect_exit}: {exit.describe()}{said}")
    return Sample(exit.wall_ms, exit.maxrss_kib, None, exit.exit_code, cpu_ms=exit.cpu_ms, nvcsw=exit.nvcsw,
                  nivcsw=exit.nivcsw, exit_maxrss_kib=exit.maxrss_kib)


def _server_sample(w, exit: Exit, answer: dict | None, where: str, said: str, check: bool) -> Sample:
    if answer is None:
        if exit.timed_out:
            raise CheckFailure("timeout", f"{where}no answer on {w.health_path} within the timeout")
        raise CheckFailure("broken", f"{where}exited before answering {w.health_path}: {exit.describe()}{said}")
    status = int(answer["http_status"])
    body = bytes.fromhex(answer.get("body_hex", "")).decode(errors="replace")
    if status != 200:
        raise CheckFailure("broken", f"{where}{w.health_path} answered {status}, not 200: {body!r}")
    if check and w.expect_body is not None and body != w.expect_body:
        raise CheckFailure("broken", f"{where}{w.health_path} body {body!r}, expected {w.expect_body!r}")
    if exit.timed_out or exit.exit_code != 0:
        raise CheckFailure("timeout" if exit.timed_out else "broken",
                           f"{where}did not exit cleanly on SIGTERM: {exit.describe()}{said}")
    rss = int(answer["vmrss_kib"]) if int(answer["vmrss_kib"]) >= 0 else None
    hwm = int(answer["vmhwm_kib"]) if int(answer["vmhwm_kib"]) >= 0 else None
    ready_ns = int(answer["ready_ns"])
    return Sample((ready_ns - exit.start_ns) / 1e6, max(exit.maxrss_kib, hwm or 0, rss or 0), rss, exit.exit_code,
                  cpu_ms=exit.cpu_ms, nvcsw=exit.nvcsw, nivcsw=exit.nivcsw, exit_maxrss_kib=exit.maxrss_kib,
                  stop_hwm_kib=hwm)


def runner_unsupported(target: Target) -> str | None:
    return guest.unsupported_reason(target)
