"""The base capability matrix: what a program can rely on in each image base.

Small probe programs (``slimlab/probes/``), built static with the host's go, run in a
container on every base: can crypto/x509 find system roots (the base's CA bundle), can
time.LoadLocation name a zone (the base's zoneinfo), and can it with ``time/tzdata``
compiled in (no zoneinfo needed). The frame has the capability matrix's columns
(``probe.SCHEMA``), with the base where the toolchain would be, so the report draws it
with the same heatmap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from . import bases, image, toolchains
from .build import build
from .model import TARGETS, Profile
from .paths import default_cache_dir
from .probe import PROBES_DIR, SCHEMA
from .workloads import Workload

_STATIC = Profile("probe-cgo-off", "cgo disabled: a static binary any base can run", cgo=False)


# Go's `timetzdata` build tag compiles time/tzdata in, as `import _ "time/tzdata"` would.
_STATIC_TZDATA = Profile("probe-cgo-off-tzdata", "cgo disabled, zoneinfo embedded (-tags=timetzdata)", cgo=False,
                         flags=("-tags=timetzdata",))


@dataclass(frozen=True)
class BaseProbe:
    name: str
    source: str  # the directory under slimlab/probes/
    description: str
    expect: str  # its whole stdout when it passes
    profile: Profile = _STATIC


BASE_PROBES = (
    BaseProbe("system-roots", "system-roots", "crypto/x509 SystemCertPool finds the base's CA bundle",
              "system roots found\n"),
    BaseProbe("tzdata", "tzdata", 'time.LoadLocation("Europe/Berlin") from the base\'s zoneinfo', "CET\n"),
    BaseProbe("tzdata-embedded", "tzdata", "the same with time/tzdata compiled into the binary", "CET\n",
              _STATIC_TZDATA),
)


def run_base_probes(base_names: list[str], api, cache_dir: Path | None = None,
                    timeout_s: float = 60.0) -> pl.DataFrame:
    """One row per (base, probe): ``toolchain`` holds the base, ``toolchain_version`` its packages."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    target = TARGETS["linux/amd64"] if TARGETS["linux/amd64"].is_native else next(
        t for t in TARGETS.values() if t.is_native)
    go = toolchains.get("go")
    info = go.detect()
    rows = []
    for base_name in base_names:
        layer = bases.base_layer(base_name, target, cache)
        packages = ", ".join(f"{p}={v}" for p, v in sorted(layer.packages.items())) or "(nothing)"
        for probe in BASE_PROBES:
            started = time.perf_counter()
            row = {"toolchain": f"base {base_name}", "toolchain_version": packages, "probe": probe.name,
                   "description": probe.description, "passed": False, "stage": "build", "error": None,
                   "build_seconds": None, "build_cached": None}
            workload = Workload(probe.name, PROBES_DIR / probe.source, expect_stdout=probe.expect)
            built = build(workload, go, info, probe.profile, target, cache, 600)
            row.update(build_seconds=built.seconds, build_cached=built.cached)
            if not built.ok:
                row["error"] = built.reason
            else:
                made = image.build_image(api, layer, built.binary, probe.name, timeout_s=600)
                if not made.ok:
                    row["error"] = made.reason
                else:
                    row["stage"] = "check"
                    checked = image.check_in_container(api, made.tag, workload, timeout_s, hardened=True)
                    row.update(passed=checked.ok, error=checked.reason)
            row["seconds"] = time.perf_counter() - started
            rows.append(row)
    return pl.DataFrame(rows, schema=SCHEMA)
