"""The results schema: column names and types of the tidy results frame.

Kept in its own module so the report, the store and the tests agree on one definition.
Bump SCHEMA_VERSION whenever a column is renamed, removed or changes meaning.
"""

from __future__ import annotations

import polars as pl

SCHEMA_VERSION = 1

STATUSES = ("ok", "build_failed", "postlink_failed", "broken", "timeout", "unsupported")

# The variant's axes: every row carries them, whatever its status.
AXIS_COLUMNS = {
    "workload": pl.String,
    "toolchain": pl.String,
    "toolchain_version": pl.String,
    "profile": pl.String,
    "flags": pl.String,  # the build command's flags, space-joined, as run
    "build_env": pl.String,  # the environment the profile set, e.g. "CGO_ENABLED=0"
    "target": pl.String,  # e.g. "linux/amd64"
    "postlink": pl.String,  # post-link chain name; "none" when nothing ran
    "upx_level": pl.String,  # UPX level/mode of the chain, null without UPX
    "base": pl.String,  # image base, null for bare binaries
}

RESULT_SCHEMA: dict[str, pl.DataType] = {
    "schema_version": pl.Int32,
    "run_id": pl.String,
    "variant_key": pl.String,
    **AXIS_COLUMNS,
    "status": pl.String,
    "reason": pl.String,
    "emulated": pl.Boolean,  # run under QEMU user emulation: timings are not native
    "runner": pl.String,  # "native" or "qemu-aarch64-static", ...
    "build_seconds": pl.Float64,
    "build_cached": pl.Boolean,
    "size_bytes": pl.Int64,
    "elf_type": pl.String,
    "elf_machine": pl.String,
    "section_text_bytes": pl.Int64,
    "section_rodata_bytes": pl.Int64,
    "section_data_bytes": pl.Int64,
    "section_bss_bytes": pl.Int64,  # memory size; occupies no file bytes
    "section_pclntab_bytes": pl.Int64,
    "section_symtab_bytes": pl.Int64,
    "section_dwarf_bytes": pl.Int64,
    "section_other_bytes": pl.Int64,
    "has_dwarf": pl.Boolean,
    "has_symtab": pl.Boolean,
    "is_static": pl.Boolean,
    "interpreter": pl.String,
    "needed_libs": pl.List(pl.String),
    "startup_n": pl.Int64,
    "startup_ms_median": pl.Float64,
    "startup_ms_iqr": pl.Float64,
    "startup_ms_min": pl.Float64,
    "startup_ms_max": pl.Float64,
    "peak_rss_kib_median": pl.Float64,
    "peak_rss_kib_iqr": pl.Float64,
    "peak_rss_kib_max": pl.Int64,
    "ready_rss_kib_median": pl.Float64,  # servers only: RSS once /healthz first answers
    "measured_at": pl.Datetime("us", "UTC"),
}

SAMPLE_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String,
    "variant_key": pl.String,
    "sample_index": pl.Int64,
    "startup_ms": pl.Float64,
    "peak_rss_kib": pl.Int64,
    "ready_rss_kib": pl.Int64,
    "exit_code": pl.Int64,
}

SECTION_GROUPS = ("text", "rodata", "data", "bss", "pclntab", "symtab", "dwarf", "other")
