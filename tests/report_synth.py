"""A synthetic run for the report's scale tests and benchmarks/report_render.py.

Shaped like a real sweep's frames (RESULT_SCHEMA, SAMPLE_SCHEMA): several workloads and
targets, one emulated, toolchains × profiles × post-link chains, a few failures with
reasons, list columns, and 30 timed starts per measured variant with the odd outlier. The
numbers are drawn from a seeded generator: the same ``n`` gives the same frames.
"""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import polars as pl

from slimlab.results_schema import RESULT_SCHEMA, SAMPLE_SCHEMA, SCHEMA_VERSION

WORKLOADS = ("hello", "httpd", "grpc-echo", "json-cli")
TARGETS = (("linux/amd64", False, "native"), ("linux/arm64", True, "qemu-aarch64"))
TOOLCHAINS = (("gc", "go1.26.0"), ("gc-1.25", "go1.25.6"), ("tinygo", "tinygo 0.39.0"), ("gccgo", "gccgo 14.2"))
PROFILES = (("default", []), ("stripped", ["-ldflags=-s -w"]), ("trimpath", ["-trimpath", "-ldflags=-s -w"]),
            ("static", ["-tags=netgo,osusergo", "-ldflags=-s -w -extldflags=-static"]),
            ("pgo", ["-pgo=auto"]))
POSTLINK = (("none", None, 1.0, 1.0), ("strip", None, 0.78, 1.0), ("upx", "1", 0.42, 3.0), ("upx", "9", 0.33, 3.4),
            ("upx", "best", 0.31, 3.5), ("upx", "lzma", 0.27, 6.0))
SAMPLES_PER_VARIANT = 30
# What a real gc build's row holds: 15 section headers, and a build_settings list whose
# DefaultGODEBUG alone is ~600 characters (go version -m of a Go 1.26 binary).
SECTIONS = ((".note.go.buildid", "SHT_NOTE", "other"), (".text", "SHT_PROGBITS", "text"),
            (".rodata", "SHT_PROGBITS", "rodata"), (".typelink", "SHT_PROGBITS", "rodata"),
            (".itablink", "SHT_PROGBITS", "rodata"), (".gosymtab", "SHT_PROGBITS", "pclntab"),
            (".gopclntab", "SHT_PROGBITS", "pclntab"), (".go.buildinfo", "SHT_PROGBITS", "rodata"),
            (".noptrdata", "SHT_PROGBITS", "data"), (".data", "SHT_PROGBITS", "data"), (".bss", "SHT_NOBITS", "bss"),
            (".noptrbss", "SHT_NOBITS", "bss"), (".debug_info", "SHT_PROGBITS", "dwarf"),
            (".symtab", "SHT_SYMTAB", "symtab"), (".strtab", "SHT_STRTAB", "symtab"))
GODEBUG = "DefaultGODEBUG=" + ",".join(f"{name}={i % 2}" for i, name in enumerate(
    ("asynctimerchan containermaxprocs cryptocustomrand decoratemappings gotestjsonbuildtext gotypesalias "
     "httpcookiemaxnum httplaxcontentlength httpmuxgo121 httpservecontentkeepheaders multipathtcp randseednop "
     "rsa1024min tls10server tls3des tlsmlkem tlsrsakex tlssecpmlkem tlssha1 tlsunsafeekm updatemaxprocs "
     "urlmaxqueryparams urlstrictcolons winreadlinkvolume winsymlink x509keypairleaf x509negativeserial "
     "x509rsacrt x509sha256skid x509usepolicies").split()))


def synthetic_run(n_variants: int, seed: int = 0, workloads=WORKLOADS, targets=TARGETS,
                  failed_every: int = 23, run_id: str = "20261129T000000-synth"):
    """(results, samples, manifests) of a run with ``n_variants`` rows."""
    rng = np.random.default_rng(seed)
    axes = [workloads, targets, TOOLCHAINS, PROFILES, POSTLINK, ("none", "scratch")]
    lap_size = int(np.prod([len(a) for a in axes]))
    axes = itertools.product(*axes)
    rows, samples = [], []
    when = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
    for index, combo in enumerate(itertools.islice(itertools.cycle(axes), n_variants)):
        workload, (target, emulated, runner), (toolchain, version), (profile, flags), chain, base = combo
        postlink, upx_level, shrink, slower = chain
        lap = index // lap_size  # a second lap over the axes is a second run
        key = f"{workload}-{toolchain}-{profile}-{target}-{postlink}{upx_level or ''}-{base}-{lap}"
        size = int((1.6 + 5 * WORKLOADS.index(workload) / 3) * 2**20 * shrink * rng.uniform(0.8, 1.2))
        row = dict.fromkeys(RESULT_SCHEMA)
        row.update(
            schema_version=SCHEMA_VERSION, run_id=run_id if lap == 0 else f"{run_id}-{lap}", variant_key=key,
            workload=workload, toolchain=toolchain, toolchain_version=version, profile=profile, flags=flags,
            build_env=["CGO_ENABLED=0"], target=target, postlink=postlink, upx_level=upx_level, base=base,
            emulated=emulated, runner=runner, status="ok", size_bytes=size, measured_at=when,
            go_version=version.split()[0], main_package=f"example.com/{workload}", is_pie=False, relro="none",
            nx_stack=True, upx_packed=postlink == "upx", has_symtab=profile == "default" and postlink == "none",
            build_settings=["-buildmode=exe", "-compiler=gc", GODEBUG, "CGO_ENABLED=0",
                            f"GOARCH={target.split('/')[1]}", "GOOS=linux", "GOAMD64=v1"],
            sections=[{"name": name, "type": kind, "size_bytes": int(size * rng.uniform(0.001, 0.3)), "group": group}
                      for name, kind, group in SECTIONS],
            binary_sha256=f"{rng.integers(2**63):016x}" * 4, go_buildid=f"{rng.integers(2**63):020x}/" * 4,
            elf_type="ET_EXEC", elf_machine="EM_AARCH64" if emulated else "EM_X86_64", host="bench-host",
            build_seconds=float(rng.uniform(0.1, 9)), build_cached=bool(index % 2), has_dwarf=profile == "default",
            is_static=True, memory_scope="program", packages_source="symtab", main_module=f"example.com/{workload}",
            main_module_version="(devel)", size_before_postlink_bytes=int(size / shrink),
            dep_modules=[f"golang.org/x/net@v0.{i}.0" for i in range(3)],
            needed_libs=[], image_size_bytes=size + 2_000_000 if base != "none" else None,
            **{f"section_{name}_bytes": int(size * share) for name, share in
               (("text", 0.38), ("rodata", 0.2), ("data", 0.02), ("bss", 0.1), ("pclntab", 0.22),
                ("symtab", 0.04), ("dwarf", 0.06), ("other", 0.01))},
        )
        if index % failed_every == failed_every - 1:
            row.update(status="build_failed", size_bytes=None, reason=f"{toolchain}: undefined: net.Dialer\n"
                       "exit status 1 (synthetic failure)")
            rows.append(row)
            continue
        base_ms = (1.1 + 0.3 * WORKLOADS.index(workload)) * slower * (25 if emulated else 1)
        starts = rng.lognormal(np.log(base_ms), 0.05, SAMPLES_PER_VARIANT)
        if index % 7 == 0:  # a start that waited for a CPU: what hyperfine calls an outlier
            starts[rng.integers(SAMPLES_PER_VARIANT)] = base_ms * 12
        rss = rng.normal(1800 + 900 * WORKLOADS.index(workload), 40, SAMPLES_PER_VARIANT).round().astype(int)
        q1, q3 = np.percentile(starts, [25, 75])
        row.update(startup_n=SAMPLES_PER_VARIANT, startup_ms_median=float(np.median(starts)),
                   startup_ms_iqr=float(q3 - q1), startup_ms_min=float(starts.min()),
                   startup_ms_max=float(starts.max()), peak_rss_kib_median=float(np.median(rss)),
                   peak_rss_kib_iqr=float(np.subtract(*np.percentile(rss, [75, 25]))),
                   peak_rss_kib_max=int(rss.max()), cpu_ms_median=float(np.median(starts) * 0.6),
                   nivcsw_median=1.0)
        rows.append(row)
        samples += [{"run_id": row["run_id"], "variant_key": key, "sample_index": i, "startup_ms": float(s),
                     "peak_rss_kib": int(r), "ready_rss_kib": None, "exit_code": 0, "nivcsw": 1, "nvcsw": 3,
                     "cpu_ms": float(s * 0.6), "exit_maxrss_kib": int(r), "stop_hwm_kib": None,
                     "cgroup_peak_kib": None}
                    for i, (s, r) in enumerate(zip(starts, rss, strict=True))]
    df = pl.DataFrame(rows, schema=RESULT_SCHEMA, orient="row")
    sample_frame = pl.DataFrame(samples, schema=SAMPLE_SCHEMA, orient="row")
    manifests = [{"run_id": run_id, "host": {"cpu": "synthetic", "cores": 2}, "tools": {"go": "go1.26.0"},
                  "spec": "[axes]\nworkload = ['hello']\n",
                  "sessions": [{"measurement": {"warnings": ["Warning: the host was busy while measuring "
                                                             "(load average 3.10 on 2 cores)."],
                                                "noise": {}, "launcher_overhead": {}}}]}]
    return df, sample_frame, manifests
