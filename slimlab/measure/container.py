"""The container runner: an image started with `docker run` semantics, timed and measured.

Start-up is ``docker run`` to exit for a CLI, and to the first healthy answer for a
server, as the engine serves it: create, start, then wait (or poll the health endpoint
from here), taken from the caller's clock around the engine API calls, so it includes
the runtime's setup (namespaces, the rootfs, the cgroup), which is what a container
costs over the bare binary. Every container is confined as ``image.Confinement`` says (not
root, read-only, no capabilities, memory and pids limits). A CLI has no network. A server has
its own network namespace on slimlab's bridge network (``image.SERVER_NETWORK``), listening
on all of the container's addresses at a port that is published on the host's 127.0.0.1 only,
and is polled there from here; it is stopped with SIGTERM, which slimlab's launcher (PID 1 in
the container) passes on to it. Why not the host's network, which would start faster: a
server's own namespace is what production gives it, and the cost is measured, not avoided
(README, "Containers"). A program killed for memory, or refused a thread by the pids limit,
is a failure naming that limit.

Memory, two figures:
- the program's own peak RSS, the same kind of figure as bare: slimlab's static launcher
  is bind-mounted read-only into the container and is its entrypoint, so the program is
  forked from it and wait4's ``ru_maxrss`` is reported on the container's stdout (for a
  server, also VmRSS/VmHWM read from the host's /proc, as bare);
- the container cgroup's peak (``cgroup_peak_kib``), read by the launcher inside the
  container just after the program ended (v1 ``memory.max_usage_in_bytes``, v2
  ``memory.peak``): cgroup v1 removes the cgroup when the container stops, so it cannot
  be read afterwards from outside. It counts everything charged to the container's
  cgroup: the runtime's init process before it became the launcher, the launcher, the
  program, the page cache of files first read or written inside the container, tmpfs
  pages, and (v1 with kernel-memory accounting) kernel memory such as page tables. It
  does not count the engine's shim (containerd-shim runs in the engine's cgroup) nor
  image files whose pages the engine cached already, writing the image's layers (or, on
  vfs, copying the rootfs for the container). Measured here (cgroup v1, overlay2 as on vfs):
  about 3.5-4 MB for every image, a hello (1.9 MB RSS) as an httpd (5.9 MB RSS): the
  runtime's init (runc, a Go program) sets the peak before it becomes the launcher, and the
  program's mostly file-backed pages were charged to the engine. So the cgroup figure can
  be below the program's RSS; it is what a memory limit on the container must leave room
  for, not what the program uses.

Containers are removed whatever happens.

The engine's own floor (``floor_runner``), one per kind of image: a static C no-op alone on
scratch, started exactly as an image's program is (the launcher as entrypoint, the no-op
forked from it) and timed the same way: for CLIs noop.c, ``docker run --network none`` to its
exit; for servers noop_server.c, on slimlab's bridge network to its first healthy answer. Its
start-up is what ``docker run`` costs with no program in it, so a container figure splits into
what the container adds (floor minus the bare no-op) and what the program adds (the figure
minus the floor). One floor would not do for both: a server's network (a bridge, a published
port and its proxy) costs more than a CLI's empty one, and a server's figure ends at its
answer, before the exit a CLI's includes.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import bases
from ..image import Confinement, build_image, discard, network_gone, owner_label, server_network
from ..model.target import TARGETS
from ..proc import tail
from ..workloads import ADDR, Workload
from .launcher import NOOP_SERVER_SOURCE, NOOP_SOURCE, Exit, _exit, _fields, noop_path, noop_server_path
from .samples import (CheckFailure, Sample, _status_kib, await_health, grpc_after_answer, judge_answer,
                      server_addrs)

LAUNCHER_IN_CONTAINER = "/slimlab/launch"
# The floors' programs as workloads, by the kind of image each is the floor of.
FLOOR_WORKLOADS = {
    "cli": Workload("slimlab-noop", NOOP_SOURCE.parent),  # prints nothing, exits 0
    "server": Workload("slimlab-noop-server", NOOP_SERVER_SOURCE.parent, kind="server", args=("-addr", ADDR),
                       expect_body="ok\n"),
}


@dataclass(frozen=True)
class ContainerRunner:
    api: Any = field(compare=False, repr=False)  # the docker SDK client
    tag: str
    program: str  # the binary's path inside the image, e.g. /app/hello
    launcher: Path  # the host's static launcher, mounted read-only
    name: str = "container"
    emulated: bool = False
    memory_scope: str = "program"  # its own ru_maxrss, from the launcher inside the container
    confinement: Confinement = Confinement()  # how every one of its containers runs
    # A server's network: None for image.SERVER_NETWORK; "host" only to measure what its own
    # namespace costs (benchmarks/container_network.py), never in a sweep.
    server_network: str | None = None

    def check(self, workload, binary: Path, timeout_s: float) -> Sample:
        return self._start(workload, timeout_s, None, check=True)

    def samples(self, workload, binary: Path, timeout_s: float, runs: int, warmup: int = 0,
                cpu: int | None = None) -> list[Sample]:
        taken = [self._start(workload, timeout_s, cpu, check=False) for _ in range(warmup + runs)]
        return taken[warmup:]

    def _start(self, workload, timeout_s: float, cpu: int | None, check: bool) -> Sample:
        if workload.kind == "server":
            return self._server(workload, timeout_s, cpu, check)
        return self._cli(workload, timeout_s, cpu)

    def _create(self, command: list[str], environment: dict[str, str], network: str, cpu: int | None,
                ports: tuple[int, ...] = ()):
        from docker.types import Mount

        # The server's ports, each published on the host's loopback under its own number.
        published = {f"{port}/tcp": ("127.0.0.1", port) for port in ports}
        try:
            return self.api.containers.create(
                self.tag, entrypoint=[LAUNCHER_IN_CONTAINER], command=["--cgroup-peak", *command],
                environment=environment, labels=owner_label(), ports=published or None,
                # A mount (not a legacy bind) fails if the launcher is gone, instead of creating it.
                mounts=[Mount(LAUNCHER_IN_CONTAINER, str(self.launcher), type="bind", read_only=True)],
                cpuset_cpus=str(cpu) if cpu is not None else None, **self.confinement.options(network),
            )
        except Exception as exc:  # noqa: BLE001 - the engine's word is the reason
            raise CheckFailure("broken", f"could not create the container: {tail(str(exc), 400)}") from exc

    def _start_server(self, command: list[str], environment: dict[str, str], network: str, cpu: int | None,
                      ports: tuple[int, ...], remade: bool = False):
        """A server's container, created and started, and when that began (monotonic ns). Its network
        removed since it was made (someone's clean-up) is made again, once, and the clock restarted."""
        started = time.monotonic_ns()
        container = self._create(command, environment, network, cpu, ports)
        try:
            container.start()
        except Exception as exc:  # noqa: BLE001 - the engine's word is the reason
            discard(container)
            if remade or network in ("host", "none") or not network_gone(exc, network):
                raise CheckFailure("broken", f"container run: {type(exc).__name__}: {tail(str(exc), 400)}") \
                    from exc
            server_network(self.api, network, remake=True)
            return self._start_server(command, environment, network, cpu, ports, remade=True)
        return container, started

    def _cli(self, workload, timeout_s: float, cpu: int | None) -> Sample:
        # The program's stdout is dropped, as bare; its stderr is the container's, so an exec
        # failure says why.
        command = [str(int(timeout_s * 1000)), "-", "/dev/stderr", "--", self.program, *workload.run_args()]
        started = time.perf_counter()
        container = self._create(command, workload.run_env(), "none", cpu)
        with _removed_after(container):
            container.start()
            try:
                container.wait(timeout=timeout_s + 30)
            except Exception as exc:  # noqa: BLE001 - requests' ReadTimeout: the launcher's own timeout failed
                raise CheckFailure("timeout", f"container did not exit within {timeout_s + 30:g}s") from exc
            ended = time.perf_counter()
            exit, errors = _reported(container)
            failed = exit.timed_out or exit.exit_code != workload.expect_exit
            limit = self.confinement.limit_hit(container, _stderr(container, whole=True)) if failed else None
        if limit:
            raise CheckFailure("broken", f"in a container: {exit.describe()}: {limit}")
        if failed:
            status = "timeout" if exit.timed_out else "broken"
            raise CheckFailure(status, f"in a container: {exit.describe()}, expected exit {workload.expect_exit}"
                                       + (f"; stderr: {errors}" if errors else ""))
        return Sample((ended - started) * 1000, exit.maxrss_kib, None, exit.exit_code, cpu_ms=exit.cpu_ms,
                      nvcsw=exit.nvcsw, nivcsw=exit.nivcsw, exit_maxrss_kib=exit.maxrss_kib,
                      cgroup_peak_kib=_kib(exit.cgroup_peak_bytes))

    def _server(self, workload, timeout_s: float, cpu: int | None, check: bool) -> Sample:
        addr, grpc_addr = server_addrs(workload)  # free ports of the host's loopback: published there
        ports = tuple(int(a.rsplit(":", 1)[1]) for a in (addr, grpc_addr) if a)
        network = self.server_network or server_network(self.api)  # made once per engine, before the clock
        inside, grpc_inside = (a if network == "host" else _all_addresses(a) for a in (addr, grpc_addr))
        command = [str(int(timeout_s * 1000)), "-", "/dev/stderr", "--", self.program,
                   *workload.run_args(inside, grpc_inside)]
        container, started = self._start_server(command, workload.run_env(inside, grpc_inside), network, cpu,
                                                () if network == "host" else ports)
        with _removed_after(container):
            alive = _Alive(container)
            deadline = time.monotonic() + timeout_s
            answer = await_health(addr, workload.health_path, deadline, alive)
            ready_ns = time.monotonic_ns()  # start-up ends at the first healthy answer, as bare
            program = _program_pid(alive.host_pid()) if answer is not None and alive.visible is not False else None
            ready_rss = _status_kib(program, "VmRSS") if program else None
            grpc_problem = grpc_after_answer(workload, answer, grpc_addr, deadline, check)
            stop_hwm = _status_kib(program, "VmHWM") if program else None  # why: see samples._server
            # SIGTERM to PID 1, the launcher, which passes it on; a server that never answered is killed.
            try:
                container.kill(signal="SIGTERM" if answer is not None else "SIGKILL")
            except Exception:  # noqa: BLE001, S110 - it exited already: the wait and its report say how
                pass
            try:
                container.wait(timeout=timeout_s + 30)
            except Exception as exc:  # noqa: BLE001 - requests' ReadTimeout
                raise CheckFailure("timeout", f"container did not stop within {timeout_s + 30:g}s of SIGTERM") \
                    from exc
            exit, errors = _reported(container) if answer is not None else (None, _stderr(container))
            clean = answer is not None and not exit.timed_out and exit.exit_code == 0
            limit = None if clean else self.confinement.limit_hit(container, _stderr(container, whole=True))
        if limit:
            raise CheckFailure("broken", f"in a container: {limit}")
        if answer is None:
            if alive.seen_exit:
                raise CheckFailure("broken", f"in a container: exited before answering {workload.health_path}"
                                             + (f"; stderr: {errors}" if errors else ""))
            raise CheckFailure("timeout", f"in a container: no answer on {workload.health_path} within {timeout_s:g}s")
        judge_answer(workload, answer, check, grpc_problem)
        if exit.timed_out or exit.exit_code != 0:
            raise CheckFailure("timeout" if exit.timed_out else "broken",
                               f"in a container: did not exit cleanly on SIGTERM: {exit.describe()}"
                               + (f"; stderr: {errors}" if errors else ""))
        peak = max(exit.maxrss_kib, stop_hwm or 0, ready_rss or 0)
        return Sample((ready_ns - started) / 1e6, peak, ready_rss, exit.exit_code, cpu_ms=exit.cpu_ms,
                      nvcsw=exit.nvcsw, nivcsw=exit.nivcsw, exit_maxrss_kib=exit.maxrss_kib, stop_hwm_kib=stop_hwm,
                      cgroup_peak_kib=_kib(exit.cgroup_peak_bytes))


def floor_runner(api, launcher: Path, kind: str, cache_dir: Path | None = None,
                 timeout_s: float = 600, confinement: Confinement = Confinement()) -> ContainerRunner:
    """The engine's floor for images of ``kind`` (a workload kind, "cli" or "server") as a runner:
    its static no-op (FLOOR_WORKLOADS) on scratch for this host's CPU, built in the engine;
    CheckFailure with the engine's reason when it cannot be."""
    native = next(t for t in TARGETS.values() if t.is_native)
    scratch = bases.base_layer("scratch", native, cache_dir)
    program = (noop_server_path if kind == "server" else noop_path)(cache_dir)
    name = FLOOR_WORKLOADS[kind].name
    built = build_image(api, scratch, program, name, timeout_s=timeout_s)
    if not built.ok:
        raise CheckFailure("build_failed", f"the container floor's image: {built.reason}")
    return ContainerRunner(api, built.tag, f"/app/{name}", launcher, name="container-floor",
                           confinement=confinement)


@contextlib.contextmanager
def _removed_after(container):
    """The engine's errors (DockerException, requests' errors) as this run's failure; the
    container removed whatever happens."""
    try:
        yield
    except CheckFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - the engine's word is the reason
        raise CheckFailure("broken", f"container run: {type(exc).__name__}: {tail(str(exc), 400)}") from exc
    finally:
        discard(container)


class _Alive:
    """Is the container's launcher still running? The first question is answered without
    asking the engine, so the first health poll follows the start at once; after that the
    launcher's host pid is looked up once and /proc is read."""

    def __init__(self, container) -> None:
        self.container = container
        self.asked = False
        self.pid: int | None = None
        self.seen_exit = False
        # Is the engine's pid ours to read in /proc? Not for an engine in another pid namespace
        # (remote, rootless, a socket mounted into a container): then ask the engine instead.
        self.visible: bool | None = None

    def host_pid(self) -> int | None:
        if self.pid is None:
            self.container.reload()
            self.pid = self.container.attrs["State"].get("Pid") or None
        return self.pid

    def __call__(self) -> bool:
        if not self.asked:
            self.asked = True
            return True
        pid = self.host_pid()
        if pid is None:  # the engine reports no process: it has exited
            running = False
        else:
            if self.visible is None:
                self.visible = Path(f"/proc/{pid}").exists()
            if self.visible:
                running = _status_kib(pid, "VmSize") is not None  # a zombie has no VmSize
            else:
                self.container.reload()
                running = bool(self.container.attrs["State"].get("Running"))
        self.seen_exit = not running
        return running


def _program_pid(launcher_pid: int | None) -> int | None:
    """The host pid of the program: the launcher's (PID 1 in the container) only child."""
    if launcher_pid is None:
        return None
    try:
        children = Path(f"/proc/{launcher_pid}/task/{launcher_pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def _kib(value: int | None) -> int | None:
    return None if value is None else value // 1024


def _stderr(container, whole: bool = False) -> str:
    said = container.logs(stdout=False, stderr=True).decode(errors="replace")
    return said if whole else tail(said, 400)


def _all_addresses(addr: str | None) -> str | None:
    """Where a server listens inside its container: the same port on all of the container's
    addresses, which the engine forwards the published host port to."""
    return None if addr is None else f"0.0.0.0:{addr.rsplit(':', 1)[1]}"


def _reported(container) -> tuple[Exit, str]:
    """What the launcher in the container reported on its stdout, and the program's stderr."""
    report = container.logs(stdout=True, stderr=False).decode(errors="replace").splitlines()
    errors = _stderr(container)
    lines = {line.split(" ", 1)[0]: line for line in report}
    if "started" not in lines or "exited" not in lines:
        raise CheckFailure("broken", f"the launcher in the container did not report: {errors}")
    return _exit(_fields(lines["started"]), _fields(lines["exited"])), errors
