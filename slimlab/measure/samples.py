"""One start of a program: its functional check, start-up time and memory.

``check_and_sample`` runs the workload's functional check (right output, healthy
endpoint, clean exit) and yields a sample; ``take_sample`` times a start with output
thrown away, as hyperfine does, and ``take_samples`` several starts back to back, as
hyperfine does between its runs. A program that misbehaves raises ``CheckFailure``
with the status and reason to record. ``cpu`` pins the launcher and the program to
one CPU (see launcher.c); Go then sets GOMAXPROCS to 1, so a pinned figure is not
comparable with an unpinned one.

A server's start-up is always spawn-to-first-healthy-HTTP-answer. A workload with
``grpc_health = true`` is, in the functional check only, also asked over gRPC
(``grpc.health.v1.Health/Check``, a real gRPC client) after that answer and before it
is stopped; timed starts never make that call, so it adds nothing to their figures.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ToolError
from ..proc import tail
from ..workloads import Workload
from .contain import Containment, contained, escape_reason
from .launcher import Exit, Launch, run_starts

if TYPE_CHECKING:
    from .runners import LauncherRunner

POLL_INTERVAL_S = 0.0005  # between health probes: fine enough for ms start-ups, light on 2 cores
GRPC_CHECK_TIMEOUT_S = 5.0  # at most this long for the gRPC health answer (within the run timeout)


@dataclass(frozen=True)
class Sample:
    startup_ms: float  # CLI: spawn to exit; server: spawn to first healthy answer
    peak_rss_kib: int  # CLI: ru_maxrss (counted in 128 KiB steps: see _server); server: max(VmHWM before stop, ru_maxrss)
    ready_rss_kib: int | None  # server: VmRSS when it first answered healthy
    exit_code: int | None
    cpu_ms: float | None = None  # user + system CPU time of all its threads, to its exit
    nvcsw: int | None = None  # voluntary context switches (rusage ru_nvcsw), to its exit
    nivcsw: int | None = None  # involuntary ones (ru_nivcsw): preempted for another task
    exit_maxrss_kib: int | None = None  # ru_maxrss alone (for a server, a lower bound: see _server)
    stop_hwm_kib: int | None = None  # server: VmHWM read just before the stop signal
    cgroup_peak_kib: int | None = None  # in a container: its cgroup's peak memory (see measure.container)
    escaped_processes: int | None = None  # contained bare runs: processes it left running (measure.contain)


class CheckFailure(Exception):
    def __init__(self, status: str, reason: str, escaped: int | None = None) -> None:
        super().__init__(reason)
        self.status = status  # "broken" or "timeout"
        self.reason = reason
        self.escaped = escaped  # processes the failing batch left running (killed), when contained


def check_and_sample(workload: Workload, runner: LauncherRunner, binary: Path, timeout_s: float,
                     cpu: int | None = None) -> Sample:
    """Run once with output captured and checked; raise CheckFailure if it does not work."""
    return _run(workload, runner, binary, timeout_s, check=True, runs=1, cpu=cpu)[0]


def take_sample(workload: Workload, runner: LauncherRunner, binary: Path, timeout_s: float,
                cpu: int | None = None) -> Sample:
    """Run once for timing; failures still raise (a program may crash only sometimes)."""
    return _run(workload, runner, binary, timeout_s, check=False, runs=1, cpu=cpu)[0]


def take_samples(workload: Workload, runner: LauncherRunner, binary: Path, timeout_s: float, runs: int,
                 cpu: int | None = None, warmup: int = 0) -> list[Sample]:
    """``warmup`` untimed then ``runs`` timed starts back to back; the first that fails raises CheckFailure.

    A CLI's starts follow each other inside one launcher with nothing in between, as
    hyperfine's warm-up and runs do; a server's are taken one after the other.
    """
    if warmup + runs == 0:
        return []
    return _run(workload, runner, binary, timeout_s, check=False, runs=warmup + runs, cpu=cpu)[warmup:]


def _run(workload: Workload, runner: LauncherRunner, binary: Path, timeout_s: float, check: bool, runs: int,
         cpu: int | None) -> list[Sample]:
    # One cgroup for the batch (measure.contain), made and removed outside every timed start.
    box = None
    with tempfile.TemporaryDirectory(prefix="slimlab-run-") as tmp:
        out = Path(tmp) / "stdout" if check else None
        err = Path(tmp) / "stderr"  # always kept: it says why a program failed
        try:
            with contained(runner.limits) as box:
                if workload.kind == "server":
                    samples = [_server(workload, runner, binary, timeout_s, out, err, check, cpu, box)
                               for _ in range(runs)]
                else:
                    samples = _cli(workload, runner, binary, timeout_s, out, err, check, runs, cpu, box)
        except CheckFailure as failure:
            if box is not None and box.left:
                failure.escaped = max(failure.escaped or 0, box.left)
            raise
        except ToolError as exc:  # the launcher died (killed, by its program too): what it left is counted
            if box is None or not box.left:
                raise
            raise CheckFailure("broken", f"{exc}; {escape_reason(box.left, None)} (killed with its cgroup)",
                               box.left) from exc
    if box is not None and box.left:  # left after the launcher's own sweep: still the program's
        raise CheckFailure("broken", escape_reason(box.left, None), box.left)
    return samples


def _argv(runner: LauncherRunner, binary: Path, args: list[str]) -> list[str]:
    return [*runner.prefix, str(binary), *args]


def _failure(exit: Exit, err: Path, what: str, box: Containment | None = None,
             escaped: int | None = None) -> CheckFailure:
    status = "timeout" if exit.timed_out else "broken"
    stderr = tail(err.read_text(errors="replace"), 600) if err.exists() else ""
    limits = "; ".join(box.limit_reasons()) if box is not None else ""
    return CheckFailure(status, f"{what}: {exit.describe()}" + (f"; {limits}" if limits else "")
                        + (f"; stderr: {stderr}" if stderr else ""), escaped)


def _escaped(exits: list[Exit]) -> int | None:
    """The most processes one of these starts left running (None: not contained)."""
    counts = [e.escaped for e in exits if e.escaped is not None]
    return max(counts) if counts else None


def _judge_escapes(exits: list[Exit]) -> None:
    """A program that leaves processes running is broken, whatever else it did right."""
    escaped = _escaped(exits)
    if escaped:
        first = next(e for e in exits if e.escaped)
        raise CheckFailure("broken", escape_reason(escaped, first.escaped_comm), escaped)


def _cli(workload, runner, binary, timeout_s, out, err, check, runs, cpu, box=None) -> list[Sample]:
    # Why start-up is taken this way, and why it once disagreed with hyperfine -N.
    #
    # A start is vfork (in the launcher) to reaped exit on CLOCK_MONOTONIC, as hyperfine -N
    # times spawn to wait. With the measured program at real-time priority (chrt -f, so
    # no other load delays it) both read the same: medians within 4%. On a busy 2-core
    # host the old test read them 0.34x-2.6x apart, and hyperfine, in the same scheme
    # (turns of 3 warm-ups + 15 runs), read 0.59x-1.58x apart from ITSELF with one core
    # busy. ftrace (sched_switch/sched_wakeup) showed why:
    # - A loaded start mostly waits for a CPU. A Go hello is 4-5 threads (main, sysmon,
    #   Ms for the GC's background goroutines) and is reaped only once every thread has
    #   run to its exit; a task woken onto a CPU held by a CPU-bound one often waits for
    #   that one's slice to end at a tick (HZ=250: up to 4 ms). E.g. one 9.7 ms start
    #   under hyperfine: 5.4 ms before the child ran to exec, 1.2 ms running, 2.7 ms for
    #   the last thread to get a CPU to die on.
    # - So the times are bimodal: ~1.2-1.5 ms when nothing waits, 3-8 ms when something
    #   does. When about half the starts wait, the median lands in either mode by chance,
    #   and the load (the rest of the suite, other jobs) changes by the second: 1.31 vs
    #   3.92 ms was "fast mode vs slow mode", not a bias. It is worst with the busy task
    #   in the measurement's own session (autogroup), like a spinner started with & from
    #   the shell that runs pytest. No tool gets a stable median there; the fast
    #   quantiles (p10, p25) stay within ~10% between tools that take turns.
    # - Biases that were ours, each putting the caller (Python) on a CPU while the program
    #   started: the launcher's "started" line on a pipe woke it in every start (ftrace:
    #   ~84 us of Python on a CPU inside 24 of 24 timed starts; 0 of 24 now), and waiting
    #   with Popen.wait(timeout=) polls (wakes at 0.5, 1, 2, ... ms). Now the launcher
    #   waits for a go byte, reports to a file, and the caller sleeps on a pidfd
    #   (run_starts), like hyperfine in wait().
    # - The launcher forked; fork copies page tables and the launcher then takes
    #   copy-on-write faults: +5-8% (~0.1 ms) on a hello against hyperfine. It vforks
    #   now, and reads 2-5% BELOW hyperfine on a quiet host (no-op 1.07 vs 1.13 ms,
    #   hello 1.41-1.51 vs 1.48-1.58 ms): hyperfine's timed window also holds its own
    #   spawn work (strace, per run: 3 opens of /dev/null, 6 prlimit, mmap and munmap of
    #   the child's stack), ours is set up once per launcher.
    # - Pacing. On a quiet host single starts with Python's work between them (as the
    #   sweep takes them) read 1.00-1.02x hyperfine's median, starts back to back in one
    #   launcher (take_samples) 0.96-0.98x. With one core busy they part: the same share
    #   of Go's wake-ups lands on the busy CPU (27% vs 28% of them), but there a wake-up
    #   of spaced starts waited 0.48 ms on average, one of back-to-back starts 0.93 ms
    #   (hyperfine) or 1.01 ms (take_samples): medians 0.42-0.77x hyperfine's for single
    #   starts, 0.82-1.11x for bursts. That was the old 0.61 "with a core busy". So take
    #   back-to-back starts (take_samples, with a warm-up) to compare with hyperfine.
    #   The launcher's own cost per start is calibrate_overhead(), a static no-op.
    # On a busy host a start-up median measures the host as much as the program: cpu_ms
    # (not inflated by waiting), nivcsw and environment.host_noise() say how busy it was,
    # and environment.busy_host_warnings() words the warning.
    exits = run_starts(_argv(runner, binary, workload.run_args()), runs=runs, timeout_s=timeout_s, stdout=out,
                       stderr=err, env=workload.run_env(), cpu=cpu, launcher=runner.launcher, containment=box)
    samples = []
    for index, exit in enumerate(exits):
        if exit.timed_out or exit.exit_code != workload.expect_exit:
            what = f"expected exit {workload.expect_exit}"
            raise _failure(exit, err, what if runs == 1 else f"start {index + 1} of {runs}: {what}", box,
                           _escaped(exits))
        samples.append(Sample(exit.wall_ms, exit.maxrss_kib, None, exit.exit_code, cpu_ms=exit.cpu_ms,
                              nvcsw=exit.nvcsw, nivcsw=exit.nivcsw, exit_maxrss_kib=exit.maxrss_kib,
                              escaped_processes=exit.escaped))
    _judge_escapes(exits)
    if len(samples) != runs:
        raise ToolError(f"the measurement launcher reported {len(samples)} of {runs} starts of {binary}")
    if check and workload.expect_stdout is not None:
        got = out.read_text(errors="replace")
        if got != workload.expect_stdout:
            raise CheckFailure("broken", f"wrong output: expected {workload.expect_stdout!r}, got {got[-300:]!r}")
    return samples


def free_loopback_addr() -> str:
    return free_loopback_addrs(1)[0]


def free_loopback_addrs(count: int) -> list[str]:
    """``count`` distinct free loopback addresses (all bound at once, so never the same port twice)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            s = stack.enter_context(socket.socket())
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    return [f"127.0.0.1:{port}" for port in ports]


def _health(addr: str, path: str) -> tuple[int, bytes] | None:
    """(status, body) of GET path, or None while nothing listens yet."""
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=2)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    # Not ready yet, whatever the way: refused, reset, too slow, or not speaking HTTP (yet).
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def grpc_health_check(addr: str, service: str = "", timeout_s: float = GRPC_CHECK_TIMEOUT_S) -> str | None:
    """Ask the standard gRPC health service at ``addr``: None when it answers SERVING, else why not."""
    import grpc  # imported here: only functional checks of gRPC workloads pay for it
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    what = f"gRPC health check (grpc.health.v1.Health/Check, service {service!r}) on {addr}"
    # No proxy: the program listens on loopback, whatever http_proxy says.
    with grpc.insecure_channel(addr, options=[("grpc.enable_http_proxy", 0)]) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_s,
                wait_for_ready=True,  # a gRPC listener that opens just after the HTTP one is not a failure
            )
        except grpc.RpcError as exc:
            return f"{what} failed: {exc.code().name}: {tail(exc.details() or '', 300)}"
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        return f"{what} answered {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}, not SERVING"
    return None


def _status_kib(pid: int, field: str) -> int | None:
    """``field`` (VmRSS, VmHWM) of /proc/PID/status in KiB, or None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def _vmrss_kib(pid: int) -> int | None:
    return _status_kib(pid, "VmRSS")


def server_addrs(workload: Workload) -> tuple[str, str | None]:
    """Free loopback addresses for a server to listen on: HTTP, and gRPC when it takes one."""
    if workload.uses_grpc_addr or workload.grpc_health:
        addr, grpc_addr = free_loopback_addrs(2)
        return addr, grpc_addr
    return free_loopback_addr(), None


def await_health(addr: str, path: str, deadline: float, running) -> tuple[int, bytes] | None:
    """Poll ``path`` until it answers, ``running()`` turns false, or ``deadline`` (monotonic) passes."""
    while time.monotonic() < deadline and running():
        answer = _health(addr, path)
        if answer is not None:
            return answer
        time.sleep(POLL_INTERVAL_S)
    return None


def grpc_after_answer(workload: Workload, answer, grpc_addr: str | None, deadline: float, check: bool) -> str | None:
    """The functional check's gRPC question (after a healthy HTTP answer, untimed): None or why it failed."""
    if not (check and workload.grpc_health and answer is not None and answer[0] == 200):
        return None
    remaining = deadline - time.monotonic()
    return grpc_health_check(grpc_addr, workload.grpc_service, max(0.5, min(GRPC_CHECK_TIMEOUT_S, remaining)))


def judge_answer(workload: Workload, answer: tuple[int, bytes], check: bool, grpc_problem: str | None) -> None:
    """Raise CheckFailure unless the first answer is a healthy one (and, checking, the right one)."""
    status, body = answer
    if status != 200:
        said = tail(body.decode(errors="replace"), 300)
        raise CheckFailure("broken", f"{workload.health_path} answered {status}, not 200"
                                     + (f": {said!r}" if said else ""))
    if check and workload.expect_body is not None and body.decode(errors="replace") != workload.expect_body:
        raise CheckFailure("broken", f"{workload.health_path} body {tail(body.decode(errors='replace'), 200)!r}, "
                                     f"expected {workload.expect_body!r}")
    if grpc_problem is not None:
        raise CheckFailure("broken", grpc_problem)


def _server(workload, runner, binary, timeout_s, out, err, check, cpu, box=None) -> Sample:
    addr, grpc_addr = server_addrs(workload)
    argv = _argv(runner, binary, workload.run_args(addr, grpc_addr))
    with Launch(argv, timeout_s=timeout_s, stdout=out, stderr=err, env=workload.run_env(addr, grpc_addr),
                cpu=cpu, launcher=runner.launcher, containment=box) as launch:
        deadline = time.monotonic() + timeout_s
        answer = await_health(addr, workload.health_path, deadline, launch.running)
        # Start-up ends here, at the first healthy HTTP answer: the gRPC check below is not timed.
        ready_ns = time.monotonic_ns()  # same clock (CLOCK_MONOTONIC) as the launcher's start
        ready_rss = _vmrss_kib(launch.pid) if answer is not None else None
        hung = answer is None and launch.running()  # alive, but never healthy in time
        grpc_problem = grpc_after_answer(workload, answer, grpc_addr, deadline, check)
        # The peak is read here too, because ru_maxrss at exit undercounts: the kernel
        # keeps RSS in per-CPU counters (percpu_counter, Linux 6.2+) that reach the shared
        # total only in batches of 32 pages per CPU. The exit path (do_exit ->
        # setmax_mm_hiwater_rss -> get_mm_rss) reads the shared total without the per-CPU
        # remainders, while /proc/PID/status sums them exactly (get_mm_counter_sum,
        # Linux 6.16 and stable kernels). So ru_maxrss moves in 128 KiB steps and reads
        # up to 32 pages x CPUs x (anon, file) counters low: httpd here read 40-220 KiB
        # below VmHWM, even below its own ready VmRSS. VmHWM is max(the exact RSS now,
        # the high-water mark the kernel recorded), so max(VmHWM now, ru_maxrss) is an
        # upper bound of what both saw; what it allocates while shutting down only the
        # (low) exit figure sees.
        stop_hwm = _status_kib(launch.pid, "VmHWM") if answer is not None else None
        launch.terminate()
        exit = launch.wait()
    if answer is None:
        if hung or exit.timed_out:
            raise CheckFailure("timeout", f"no answer on {workload.health_path} within {timeout_s:g}s",
                               exit.escaped)
        raise _failure(exit, err, f"exited before answering {workload.health_path}", box, exit.escaped)
    judge_answer(workload, answer, check, grpc_problem)
    if exit.timed_out or exit.exit_code != 0:
        raise _failure(exit, err, "did not exit cleanly on SIGTERM", box, exit.escaped)
    _judge_escapes([exit])
    peak = max(exit.maxrss_kib, stop_hwm or 0, ready_rss or 0)
    return Sample((ready_ns - launch.start_ns) / 1e6, peak, ready_rss, exit.exit_code, cpu_ms=exit.cpu_ms,
                  nvcsw=exit.nvcsw, nivcsw=exit.nivcsw, exit_maxrss_kib=exit.maxrss_kib,
                  stop_hwm_kib=stop_hwm, escaped_processes=exit.escaped)

