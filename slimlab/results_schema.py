"""The results schema: column names and types of the tidy results frame.

Kept in its own module so the report, the store and the tests agree on one definition.
Bump SCHEMA_VERSION whenever a column is renamed, removed or changes meaning.
Version 2 added the post-link, hardening, residue, Go build info and package columns.
"""

from __future__ import annotations

import polars as pl

SCHEMA_VERSION = 2

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
    "needed_libs_bytes": pl.Int64,  # on-disk bytes of those libraries and theirs (all ldd lists): what an image adds
    # -- post-link chain (slimlab.postlink); steps in the order they ran
    "postlink_steps": pl.List(pl.String),  # e.g. ["strip", "upx-9"]; [] for "none"
    "size_before_postlink_bytes": pl.Int64,  # the build's file size, before the chain
    "postlink_step_bytes": pl.List(pl.Int64),  # file size after each step that succeeded
    "postlink_step_seconds": pl.List(pl.Float64),  # wall time of each step (incl. `upx -t`)
    "postlink_seconds": pl.Float64,  # whole chain (of the original run when cached)
    "postlink_cached": pl.Boolean,  # output taken from the post-link cache
    "postlink_removed_sections": pl.List(pl.String),  # sections strip/objcopy took out
    "upx_test_ok": pl.Boolean,  # `upx -t` passed on the packed file; null without UPX
    "upx_ratio": pl.Float64,  # packed size / size before the UPX step (UPX's "Ratio")
    # -- hardening (slimlab.inspect; checksec's rules)
    "is_pie": pl.Boolean,  # ET_DYN with an interpreter or DF_1_PIE
    "relro": pl.String,  # "none", "partial" (PT_GNU_RELRO), "full" (and BIND_NOW)
    "nx_stack": pl.Boolean,  # PT_GNU_STACK present and not executable
    "stack_canary": pl.Boolean,  # __stack_chk_fail referenced; null: no symbol table to tell
    # -- residue
    "dwarf_sections": pl.List(pl.String),  # names of the .debug_*/.zdebug_* sections
    "leaked_paths": pl.Int64,  # distinct strings starting with the source dir/GOPATH/GOROOT; null: packed
    "has_go_buildid": pl.Boolean,  # a Go build-ID note is present; null: UPX-packed, cannot tell
    "go_buildid": pl.String,  # that build ID (what `go tool buildid` prints)
    "upx_packed": pl.Boolean,  # the file is UPX-packed (its own sections are hidden)
    # -- Go build info from .go.buildinfo (what `go version -m` prints); null when absent
    "go_version": pl.String,  # e.g. "go1.26.8"
    "main_package": pl.String,  # import path of the main package
    "main_module": pl.String,  # main module path
    "main_module_version": pl.String,  # "(devel)" for a local build
    "dep_modules": pl.List(pl.String),  # "path@version", "path@version => replacement"
    "build_settings": pl.List(pl.String),  # "key=value": -ldflags, CGO_ENABLED, GOARCH, -trimpath, ...
    # -- size per Go package (packages.parquet)
    "packages_source": pl.String,  # "symtab" when package rows exist, else why not
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

# One row per (variant, Go package): code bytes attributed to the package from the
# unstripped build's symbol table (slimlab.pkgsize), before any post-link step.
PACKAGE_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String,
    "variant_key": pl.String,
    "package": pl.String,  # import path; "(no Go package)", "(compiler-generated)"
    "bytes": pl.Int64,
}

SECTION_GROUPS = ("text", "rodata", "data", "bss", "pclntab", "symtab", "dwarf", "other")
