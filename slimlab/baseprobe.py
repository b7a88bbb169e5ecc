"""The base capability matrix: what a program can rely on in each image base.

Small probe programs (``slimlab/probes/``), built static with the host's go, run in a
container on every base: does a TLS client trusting the system roots only (the base's CA
bundle) accept a server whose CA is in that bundle, can time.LoadLocation name a zone (the
base's zoneinfo), and can it with ``time/tzdata`` compiled in (no zoneinfo needed). The
frame has the capability matrix's columns (``probe.SCHEMA``), with the base where the
toolchain would be, so the report draws it with the same heatmap.

The TLS probe's CA is made here, per call (openssl): no public CA's key is at hand, and a
root store that merely loads proves nothing. Its image appends that CA to the base's own
bundle, where the base keeps its roots: a base without a bundle (scratch, a Debian root
without ca-certificates) gets none, so the probe says what the base provides.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from . import bases, image, proc, toolchains
from .build import build
from .errors import ToolError
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
    local_ca: bool = False  # it verifies a leaf of a CA made here, appended to the base's bundle


BASE_PROBES = (
    BaseProbe("system-roots", "system-roots",
              "a TLS client trusting x509.SystemCertPool only verifies a local CA's leaf, the CA appended to the "
              "base's CA bundle", "verified by the system roots\n", local_ca=True),
    BaseProbe("tzdata", "tzdata", 'time.LoadLocation("Europe/Berlin") from the base\'s zoneinfo', "CET\n"),
    BaseProbe("tzdata-embedded", "tzdata", "the same with time/tzdata compiled into the binary", "CET\n",
              _STATIC_TZDATA),
)


BUNDLE = "etc/ssl/certs/ca-certificates.crt"  # where Debian (and Go's crypto/x509 first) keeps the roots
SERVER_NAME = "probe.slimlab.test"


def local_ca(into: Path) -> dict[str, Path]:
    """A CA and a leaf for SERVER_NAME it signed, made with openssl in ``into``: {"ca", "leaf", "key"} PEM files."""
    if shutil.which("openssl") is None:
        raise ToolError(f"openssl not found: {bases.TOOLS['openssl']}", ["openssl"])
    ca, ca_key, leaf, key, csr = (into / n for n in ("ca.pem", "ca.key", "leaf.pem", "leaf.key", "leaf.csr"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    steps = (
        ["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=slimlab probe CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"],
        ["openssl", "req", *ec, "-keyout", key, "-out", csr, "-subj", f"/CN={SERVER_NAME}"],
        # Go checks the name against the subjectAltName only, never the CN.
        ["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", leaf,
         "-days", "2", "-extfile", "/dev/stdin"],
    )
    for argv in steps:
        done = proc.run([str(a) for a in argv], cwd=into, timeout=60,
                        input=f"subjectAltName=DNS:{SERVER_NAME}\n" if "-extfile" in argv else None)
        if not done.ok:
            raise done.error(" ".join(str(a) for a in argv[:3]))
    return {"ca": ca, "leaf": leaf, "key": key}


def _with_local_ca(layer, ca: Path, into: Path) -> dict[str, Path]:
    """The base's bundle with the local CA appended, as a file for the probe's image; nothing
    for a base that has no bundle (nothing to append to: the point is what the base holds)."""
    bundle = bases.read_file(layer, BUNDLE)
    if bundle is None:
        return {}
    into.mkdir(parents=True, exist_ok=True)
    path = into / "ca-certificates.crt"
    path.write_bytes(bundle + (b"" if bundle.endswith(b"\n") else b"\n") + ca.read_bytes())
    return {BUNDLE: path}


def run_base_probes(base_names: list[str], api, cache_dir: Path | None = None,
                    timeout_s: float = 60.0) -> pl.DataFrame:
    """One row per (base, probe): ``toolchain`` holds the base, ``toolchain_version`` its packages."""
    with tempfile.TemporaryDirectory(prefix="slimlab-ca-") as tmp:
        return _run_base_probes(base_names, api, Path(tmp), cache_dir, timeout_s)


def _run_base_probes(base_names: list[str], api, tmp: Path, cache_dir: Path | None, timeout_s: float) -> pl.DataFrame:
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    pki = local_ca(tmp)
    tls_env = (("PROBE_LEAF_CERT", pki["leaf"].read_text()), ("PROBE_LEAF_KEY", pki["key"].read_text()),
               ("PROBE_SERVER_NAME", SERVER_NAME))
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
            workload = Workload(probe.name, PROBES_DIR / probe.source, expect_stdout=probe.expect,
                                env=tls_env if probe.local_ca else ())
            built = build(workload, go, info, probe.profile, target, cache, 600)
            row.update(build_seconds=built.seconds, build_cached=built.cached)
            if not built.ok:
                row["error"] = built.reason
            else:
                files = _with_local_ca(layer, pki["ca"], tmp / base_name) if probe.local_ca else {}
                made = image.build_image(api, layer, built.binary, probe.name, timeout_s=600, files=files)
                if not made.ok:
                    row["error"] = made.reason
                else:
                    row["stage"] = "check"
                    checked = image.check_in_container(api, made.tag, workload, timeout_s)
                    row.update(passed=checked.ok, error=checked.reason)
            row["seconds"] = time.perf_counter() - started
            rows.append(row)
    return pl.DataFrame(rows, schema=SCHEMA)
