"""The measuring machine and tools, recorded in every run's manifest, and how busy it was."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path


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


def _sched_autogroup() -> bool | None:
    """Whether the scheduler shares CPU between sessions first (then a busy task in the
    measurement's own session weighs on it more than one elsewhere: see measure/samples.py)."""
    try:
        return Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
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
        "sched_autogroup": _sched_autogroup(),
    }


_this_host = host  # host_fingerprint's parameter shadows the function's name


# What makes two hosts "the same machine", whose timings may be compared: not its load or its
# OS string. The hostname is in: two identical VMs are still two machines, with their own
# neighbours and noise.
HOST_FACTS = ("hostname", "cpu_model", "machine", "cores", "kernel", "mem_total_kib")


def host_fingerprint(host: dict | None = None) -> str:
    """A short, stable hex digest (12 digits of sha256) of ``host``'s HOST_FACTS (default: this
    machine's, from :func:`host`). Deterministic across processes and Python versions on one
    host (sorted-key JSON, no hash seed); any fact that differs gives another digest, so rows
    with the same fingerprint were timed on the same machine as it was then (a kernel upgrade
    makes a new one). The runs index (slimlab.history) fingerprints a run's host the same way.
    A fact a record lacks counts as null: an old manifest's partial host record still has one."""
    host = _this_host() if host is None else host
    facts = {k: host.get(k) for k in HOST_FACTS}
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:12]


def host_label(host: dict | None, fingerprint: str | None = None) -> str:
    """How a report names a host: 'name (cpu model, N cores, kernel K) [fingerprint]', from what
    the record has (unescaped: the caller escapes)."""
    host = host or {}
    facts = [str(host["cpu_model"])] if host.get("cpu_model") else []
    facts += [f"{host['cores']} cores"] if host.get("cores") else []
    facts += [f"kernel {host['kernel']}"] if host.get("kernel") else []
    name = str(host.get("hostname") or "unknown host")
    return name + (f" ({', '.join(facts)})" if facts else "") + (f" [{fingerprint}]" if fingerprint else "")


def python_tools() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for dist in ("slimlab", "polars", "plotly", "pyelftools", "papermill"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


# When a run counts as taken on a busy host. The run itself keeps about one task
# runnable (the program, or Python between starts), so the thresholds sit above that.
BUSY_LOAD_PER_CORE = 0.75  # 1-minute load average per core, before or after
BUSY_CPU_PRESSURE_PCT = 20.0  # PSI: share of the time some task waited for a CPU
BUSY_STEAL_PCT = 5.0  # CPU time the hypervisor gave to other guests
# Involuntary context switches of the measured programs do not decide on their own: a Go
# hello on a quiet 2-core guest is preempted 2-3 times per start by its own threads (0 at
# real-time priority, 5 with one core busy, 5 at load 8), and a bigger program more, so
# any fixed threshold flags quiet hosts for one program and misses busy ones for another.
# They are named in the warning, as evidence, when the host was busy.


def _proc_stat_cpu() -> list[int] | None:
    """The aggregate "cpu" line of /proc/stat: user nice system idle iowait irq softirq steal ..."""
    try:
        with open("/proc/stat") as f:
            first = f.readline().split()
    except OSError:
        return None
    return [int(v) for v in first[1:]] if first and first[0] == "cpu" else None


def _cpu_pressure_us() -> int | None:
    """PSI "some" total (µs during which at least one task waited for a CPU), if the kernel has PSI."""
    try:
        with open("/proc/pressure/cpu") as f:
            for line in f:
                if line.startswith("some "):
                    return int(line.rsplit("total=", 1)[1])
    except (OSError, IndexError, ValueError):
        return None
    return None


def noise_snapshot() -> dict:
    """Counters to take before and after a measurement; ``host_noise`` compares two."""
    return {
        "monotonic_ns": time.monotonic_ns(),
        "loadavg": list(os.getloadavg()),
        "cpu_jiffies": _proc_stat_cpu(),
        "cpu_pressure_us": _cpu_pressure_us(),
    }


def host_noise(before: dict, after: dict) -> dict:
    """What the host did between two ``noise_snapshot``s, for the manifest.

    ``busy_pct`` and ``steal_pct`` are shares of all CPUs' time (from /proc/stat), so
    they include the measurement itself; ``cpu_pressure_pct`` is the share of the wall
    time during which some task, ours or not, waited for a CPU (None without PSI).
    """
    seconds = (after["monotonic_ns"] - before["monotonic_ns"]) / 1e9
    noise = {
        "seconds": round(seconds, 3),
        "cores": os.cpu_count(),
        "loadavg_before": before["loadavg"],
        "loadavg_after": after["loadavg"],
        "busy_pct": None,
        "steal_pct": None,
        "cpu_pressure_pct": None,
    }
    a, b = before["cpu_jiffies"], after["cpu_jiffies"]
    if a and b:
        # guest and guest_nice (fields 9-10) are already counted in user and nice.
        delta = [y - x for x, y in zip(a[:8], b[:8])]
        total = sum(delta)
        if total > 0:
            idle = delta[3] + delta[4]  # idle + iowait
            noise["busy_pct"] = round(100 * (total - idle) / total, 1)
            noise["steal_pct"] = round(100 * delta[7] / total, 1) if len(delta) > 7 else None
    if before["cpu_pressure_us"] is not None and after["cpu_pressure_us"] is not None and seconds > 0:
        waited_s = (after["cpu_pressure_us"] - before["cpu_pressure_us"]) / 1e6
        noise["cpu_pressure_pct"] = round(100 * waited_s / seconds, 1)
    return noise


def busy_host_warnings(noise: dict, nivcsw: list[int | None] | None = None) -> list[str]:
    """Warnings, hyperfine-style, when the host was busy while measuring; [] when it was quiet.

    ``noise`` comes from ``host_noise``; busy means load, CPU pressure or steal above the
    BUSY_* thresholds. ``nivcsw`` are the measured starts' involuntary context switches
    (Sample.nivcsw), quoted in the warning.
    """
    why = []
    cores = noise.get("cores") or os.cpu_count() or 1
    load = max(noise["loadavg_before"][0], noise["loadavg_after"][0])
    if load / cores > BUSY_LOAD_PER_CORE:
        why.append(f"load average {load:.2f} on {cores} cores")
    if (noise.get("cpu_pressure_pct") or 0) > BUSY_CPU_PRESSURE_PCT:
        why.append(f"tasks waited for a CPU {noise['cpu_pressure_pct']:.0f}% of the time")
    if (noise.get("steal_pct") or 0) > BUSY_STEAL_PCT:
        why.append(f"the hypervisor took {noise['steal_pct']:.0f}% of the CPU time (steal)")
    if not why:
        return []
    counts = [n for n in (nivcsw or []) if n is not None]
    if counts:
        why.append(f"measured programs were preempted {statistics.median(counts):g} times per start (median)")
    warning = (f"Warning: the host was busy while measuring ({'; '.join(why)}). Start-up times include "
               "waiting for a CPU and may be far from a quiet host's; CPU time (cpu_ms) is less affected. "
               "Measure on a quiet host, or pin the measurement to a CPU nothing else uses (pin_cpu).")
    return [warning]
