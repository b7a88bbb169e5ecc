"""A crowded but realistic environment for the functional check.

Kubernetes gives every container seven variables per Service in its namespace
(``<NAME>_SERVICE_HOST``, ``<NAME>_SERVICE_PORT``, ``<NAME>_PORT``,
``<NAME>_PORT_<P>_TCP``, ``..._PROTO``, ``..._PORT``, ``..._ADDR``; ``enableServiceLinks``
is on by default), so a pod in a namespace with 100 Services starts with some 700
variables. Programs must work there. Some do not: on this project's machine a UPX 4.2.2
packed Go binary for linux/arm64 (run under qemu-aarch64) dies with SIGSEGV once the
environment holds about 510 variables, while the same binary unpacked, or UPX-packed
for amd64, runs with 20,000. The sweep therefore checks every variant a second time
with this environment added to its own; timings use the plain environment.
"""

from __future__ import annotations

from dataclasses import replace

from .workloads import Workload

SERVICES = 100  # x 7 variables each
LABEL = f"with a crowded environment (+{SERVICES * 7} variables, like Kubernetes service links): "


def service_link_variables(services: int = SERVICES) -> tuple[tuple[str, str], ...]:
    """The variables Kubernetes would set for ``services`` Services (names prefixed SLIMLAB_)."""
    out = []
    for i in range(services):
        name = f"SLIMLAB_SVC{i:03d}"
        host, port = f"10.96.{i // 250}.{i % 250 + 1}", str(8000 + i)
        tcp = f"tcp://{host}:{port}"
        out += [
            (f"{name}_SERVICE_HOST", host),
            (f"{name}_SERVICE_PORT", port),
            (f"{name}_PORT", tcp),
            (f"{name}_PORT_{port}_TCP", tcp),
            (f"{name}_PORT_{port}_TCP_PROTO", "tcp"),
            (f"{name}_PORT_{port}_TCP_PORT", port),
            (f"{name}_PORT_{port}_TCP_ADDR", host),
        ]
    return tuple(out)


def crowded(workload: Workload, services: int = SERVICES) -> Workload:
    """``workload`` with the service-link variables added to its environment."""
    return replace(workload, env=(*workload.env, *service_link_variables(services)))
