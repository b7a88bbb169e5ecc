"""The container runner: a CLI image started with `docker run` semantics, timed and measured.

Start-up is ``docker run`` to exit as the engine serves it: create, start, wait, taken
from the caller's clock around the engine API calls, so it includes the runtime's
setup (namespaces, the rootfs, the cgroup), which is what a container costs over the
bare binary. Memory is the program's own peak RSS, the same kind of figure as bare:
slimlab's static launcher is bind-mounted read-only into the container and is its
entrypoint, so the program is forked from it, and wait4's ``ru_maxrss`` of the program
is reported on the container's stdout. (The container's cgroup peak would also count
the launcher and page cache; cgroup v1 removes the cgroup when the container stops, so
it is not read here.) Containers are removed whatever happens.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..image import discard, owner_label
from ..proc import tail
from .launcher import _exit, _fields
from .samples import CheckFailure, Sample

LAUNCHER_IN_CONTAINER = "/slimlab/launch"


@dataclass(frozen=True)
class ContainerRunner:
    api: Any = field(compare=False, repr=False)  # the docker SDK client
    tag: str
    program: str  # the binary's path inside the image, e.g. /app/hello
    launcher: Path  # the host's static launcher, mounted read-only
    name: str = "container"
    emulated: bool = False
    memory_scope: str = "program"  # its own ru_maxrss, from the launcher inside the container

    def check(self, workload, binary: Path, timeout_s: float) -> Sample:
        return self._start(workload, timeout_s, None)

    def samples(self, workload, binary: Path, timeout_s: float, runs: int, warmup: int = 0,
                cpu: int | None = None) -> list[Sample]:
        taken = [self._start(workload, timeout_s, cpu) for _ in range(warmup + runs)]
        return taken[warmup:]

    def _start(self, workload, timeout_s: float, cpu: int | None) -> Sample:
        if workload.kind != "cli":
            raise CheckFailure("broken", "servers are not measured in containers yet")
        from docker.types import Mount

        # The program's stdout is dropped, as bare; its stderr is the container's, so an exec
        # failure says why.
        command = [str(int(timeout_s * 1000)), "-", "/dev/stderr", "--", self.program, *workload.run_args()]
        started = time.perf_counter()
        try:
            container = self.api.containers.create(
                self.tag, entrypoint=[LAUNCHER_IN_CONTAINER], command=command, environment=workload.run_env(),
                network_mode="none", user="65532:65532", labels=owner_label(),
                # A mount (not a legacy bind) fails if the launcher is gone, instead of creating it.
                mounts=[Mount(LAUNCHER_IN_CONTAINER, str(self.launcher), type="bind", read_only=True)],
                cpuset_cpus=str(cpu) if cpu is not None else None,
            )
        except Exception as exc:  # noqa: BLE001 - the engine's word is the reason
            raise CheckFailure("broken", f"could not create the container: {tail(str(exc), 400)}") from exc
        try:
            container.start()
            try:
                container.wait(timeout=timeout_s + 30)
            except Exception as exc:  # noqa: BLE001 - requests' ReadTimeout: the launcher's own timeout failed
                raise CheckFailure("timeout", f"container did not exit within {timeout_s + 30:g}s") from exc
            ended = time.perf_counter()
            report = container.logs(stdout=True, stderr=False).decode(errors="replace").splitlines()
            errors = container.logs(stdout=False, stderr=True).decode(errors="replace")
        except CheckFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - DockerException, requests' errors
            raise CheckFailure("broken", f"container run: {type(exc).__name__}: {tail(str(exc), 400)}") from exc
        finally:
            discard(container)
        lines = {line.split(" ", 1)[0]: line for line in report}
        if "started" not in lines or "exited" not in lines:
            raise CheckFailure("broken", f"the launcher in the container did not report: {tail(errors, 400)}")
        exit = _exit(_fields(lines["started"]), _fields(lines["exited"]))
        if exit.timed_out or exit.exit_code != workload.expect_exit:
            status = "timeout" if exit.timed_out else "broken"
            said = tail(errors, 400)
            raise CheckFailure(status, f"in a container: {exit.describe()}, expected exit {workload.expect_exit}"
                                       + (f"; stderr: {said}" if said else ""))
        return Sample((ended - started) * 1000, exit.maxrss_kib, None, exit.exit_code, cpu_ms=exit.cpu_ms,
                      nvcsw=exit.nvcsw, nivcsw=exit.nivcsw, exit_maxrss_kib=exit.maxrss_kib)
