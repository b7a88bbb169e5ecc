"""The measuring machine and tools, recorded in every run's manifest."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_kib() -> int | None:
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def host() -> dict:
    load1, load5, load15 = os.getloadavg()
    return {
        "hostname": platform.node(),
        "cpu_model": _cpu_model(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "os": platform.platform(),
        "mem_total_kib": _mem_total_kib(),
        "loadavg": [load1, load5, load15],
    }


def python_tools() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for dist in ("slimlab", "polars", "plotly", "pyelftools", "papermill"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions
