"""One start of a program: its functional check, start-up time and memory.

``check_and_sample`` runs the workload's functional check (right output, healthy
endpoint, clean exit) and yields a sample; ``take_sample`` times a start with output
thrown away, as hyperfine does. A program that misbehaves raises ``CheckFailure``
with the status and reason to record.

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

from ..proc import tail
from ..workloads import Workload
from .launcher import Exit, Launch
from .runners import Runner

POLL_INTERVAL_S = 0.0005  # between health probes: fine enough for ms start-ups, light on 2 cores
GRPC_CHECK_TIMEOUT_S = 5.0  # at most this long for the gRPC health answer (within the run timeout)


@dataclass(frozen=True)
class Sample:
    startup_ms: float  # CLI: spawn to exit; server: spawn to first healthy answer
    peak_rss_kib: int  # ru_maxrss of the whole run
    ready_rss_kib: int | None  # server: VmRSS when it first answered healthy
    exit_code: int | None


class CheckFailure(Exception):
    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status  # "broken" or "timeout"
        self.reason = reason


def check_and_sample(workload: Workload, runner: Runner, binary: Path, timeout_s: float) -> Sample:
    """Run once with output captured and checked; raise CheckFailure if it does not work."""
    return _run(workload, runner, binary, timeout_s, check=True)


def take_sample(workload: Workload, runner: Runner, binary: Path, timeout_s: float) -> Sample:
    """Run once for timing; failures still raise (a program may crash only sometimes)."""
    return _run(workload, runner, binary, timeout_s, check=False)


def _run(workload: Workload, runner: Runner, binary: Path, timeout_s: float, check: bool) -> Sample:
    with tempfile.TemporaryDirectory(prefix="slimlab-run-") as tmp:
        out = Path(tmp) / "stdout" if check else None
        err = Path(tmp) / "stderr"  # always kept: it says why a program failed
        if workload.kind == "server":
            return _server(workload, runner, binary, timeout_s, out, err, check)
        return _cli(workload, runner, binary, timeout_s, out, err, check)


def _argv(runner: Runner, binary: Path, args: list[str]) -> list[str]:
    return [*runner.prefix, str(binary), *args]


def _failure(exit: Exit, err: Path, what: str) -> CheckFailure:
    status = "timeout" if exit.timed_out else "broken"
    stderr = tail(err.read_text(errors="replace"), 600) if err.exists() else ""
    return CheckFailure(status, f"{what}: {exit.describe()}" + (f"; stderr: {stderr}" if stderr else ""))


def _cli(workload, runner, binary, timeout_s, out, err, check) -> Sample:
    with Launch(_argv(runner, binary, workload.run_args()), timeout_s=timeout_s, stdout=out, stderr=err,
                env=workload.run_env()) as launch:
        exit = launch.wait()
    if exit.timed_out or exit.exit_code != workload.expect_exit:
        raise _failure(exit, err, f"expected exit {workload.expect_exit}")
    if check and workload.expect_stdout is not None:
        got = out.read_text(errors="replace")
        if got != workload.expect_stdout:
            raise CheckFailure("broken", f"wrong output: expected {workload.expect_stdout!r}, got {got[-300:]!r}")
    return Sample(exit.wall_ms, exit.maxrss_kib, None, exit.exit_code)


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


def _vmrss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def _server(workload, runner, binary, timeout_s, out, err, check) -> Sample:
    if workload.uses_grpc_addr or workload.grpc_health:
        addr, grpc_addr = free_loopback_addrs(2)
    else:
        addr, grpc_addr = free_loopback_addr(), None
    argv = _argv(runner, binary, workload.run_args(addr, grpc_addr))
    grpc_problem = None
    with Launch(argv, timeout_s=timeout_s, stdout=out, stderr=err, env=workload.run_env(addr, grpc_addr)) as launch:
        deadline = time.monotonic() + timeout_s
        answer = None
        while time.monotonic() < deadline and launch.running():
            answer = _health(addr, workload.health_path)
            if answer is not None:
                break
            time.sleep(POLL_INTERVAL_S)
        # Start-up ends here, at the first healthy HTTP answer: the gRPC check below is not timed.
        ready_ns = time.monotonic_ns()  # same clock (CLOCK_MONOTONIC) as the launcher's start
        ready_rss = _vmrss_kib(launch.pid) if answer is not None else None
        hung = answer is None and launch.running()  # alive, but never healthy in time
        if check and workload.grpc_health and answer is not None and answer[0] == 200:
            remaining = deadline - time.monotonic()
            grpc_problem = grpc_health_check(grpc_addr, workload.grpc_service,
                                             max(0.5, min(GRPC_CHECK_TIMEOUT_S, remaining)))
        launch.terminate()
        exit = launch.wait()
    if answer is None:
        if hung or exit.timed_out:
            raise CheckFailure("timeout", f"no answer on {workload.health_path} within {timeout_s:g}s")
        raise _failure(exit, err, f"exited before answering {workload.health_path}")
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
    if exit.timed_out or exit.exit_code != 0:
        raise _failure(exit, err, "did not exit cleanly on SIGTERM")
    return Sample((ready_ns - launch.start_ns) / 1e6, exit.maxrss_kib, ready_rss, exit.exit_code)

