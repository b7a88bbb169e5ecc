"""The results schema: every column of the tidy results frame, its type and what it means.

Kept in its own module so the report, the store and the tests agree on one definition.
Bump SCHEMA_VERSION whenever a column is renamed, removed or changes meaning, and add a
step to ``slimlab.results.MIGRATIONS`` that brings older runs up to date on load.
Version 1 (the first release) had the axes, status, ELF sizes by section group and the timings.
Version 2 added the post-link, hardening, residue, Go build info and package columns.
Version 3: ``flags`` and ``build_env`` are lists (argv as run), the ``base`` axis, the
per-section table ``sections``, and the measurement-noise columns. It later gained
``host_fingerprint`` (a new column, no change of meaning: rows written before it get it on
load from their run's manifest, see ``slimlab.results.fill_host_fingerprints``), and the
precision columns (``startup_precision``, ``precision_target``, ``precision_reached``, the
median's interval) and ``same_binary_as``: new columns, null in rows written before them.
Later still: the status ``machine_error`` and ``escaped_processes`` (null in older rows); and
the container check became one hardened, limited run (``container_ok`` equals
``container_hardened_ok``; older rows keep their plain and hardened verdicts).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from .errors import CONTROL_PATTERN, SlimlabError
from .model import AXES
from .model.variant import KEY_SEPARATOR

SCHEMA_VERSION = 3

STATUSES = ("ok", "build_failed", "postlink_failed", "broken", "timeout", "unsupported", "machine_error")
# machine_error: the machine failed the variant, not its code (a full disk, a read-only file
# system, too many open files, a killed worker, a dead engine); never cached, retried on resume.
MACHINE_ERROR = "machine_error"


@dataclass(frozen=True)
class Column:
    name: str
    dtype: pl.DataType
    description: str


# What each section_<group>_bytes column adds up (slimlab.elf.section_group decides;
# sizes are sh_size, what `readelf -S` prints). The exact per-section sizes are in `sections`.
SECTION_GROUP_MEMBERS: dict[str, str] = {
    "text": "machine code: .text, .init, .fini and the PLT (.plt, .plt.got, .plt.sec, .iplt)",
    "rodata": "read-only data: .rodata*, .typelink, .itablink, .gosymtab, .go.buildinfo, .go.fipsinfo, "
              ".noptrrodata",
    "data": "writable data: .data*, .noptrdata, .data.rel.ro, .got, .got.plt, .init_array, .fini_array, "
            ".dynamic, .tdata",
    "bss": "zero-initialised memory (SHT_NOBITS: .bss, .noptrbss, .tbss); its memory size, no file bytes",
    "pclntab": "Go's PC-line table (.gopclntab), kept by -s -w: stack traces need it",
    "symtab": "the symbol table and its strings (.symtab, .strtab): removed by -s or strip",
    "dwarf": "DWARF debug info (.debug_*, .zdebug_*): removed by -w or strip",
    "other": "every other section: .note.*, .interp, .dynsym, .dynstr, .rela.*, .gnu.*, .comment, "
             ".shstrtab, .eh_frame*, ...",
}
SECTION_GROUPS = tuple(SECTION_GROUP_MEMBERS)

SECTION_STRUCT = pl.Struct({"name": pl.String, "type": pl.String, "size_bytes": pl.Int64, "group": pl.String})

# The variant's axes (declared once, in slimlab.model.axes) and the build's identity:
# every row carries them, whatever its status.
AXIS_COLUMNS: tuple[Column, ...] = (
    *(Column(a.column, pl.String, f"axis: {a.description}") for a in AXES),
    Column("toolchain_version", pl.String, "the compiler's own version line, e.g. 'go version go1.26.8 linux/amd64'"),
    Column("flags", pl.List(pl.String), "the build command's flags, one list item per argv word, as run"),
    Column("build_env", pl.List(pl.String), "the environment the profile set, 'NAME=value' items"),
    Column("upx_level", pl.String, "UPX level/mode of the chain, null without UPX"),
)

COLUMNS: tuple[Column, ...] = (
    Column("schema_version", pl.Int32, "results schema version the row was written with"),
    Column("run_id", pl.String, "the run (a directory under DATA/runs/)"),
    Column("variant_key", pl.String, "the axes joined with '|': stable across runs and machines"),
    *AXIS_COLUMNS,
    Column("status", pl.String, f"one of {', '.join(STATUSES)}"),
    Column("reason", pl.String, "why the status is not ok: the tool's or the check's own words"),
    Column("emulated", pl.Boolean, "run under QEMU (user mode, a full-system guest, or in a container through "
                                   "binfmt_misc): timings are not native"),
    Column("runner", pl.String, "what started the program: 'native', the user-mode emulator (e.g. "
                                "qemu-aarch64-static) or the full-system one whose guest ran it (qemu-system-aarch64)"),
    Column("memory_scope", pl.String, "what peak RSS counts: 'program' (native, container, qemu-system guest: the "
                                      "program's own) or 'emulator+program' (qemu-user: QEMU's process)"),
    Column("qemu_user_check", pl.String, "with runner qemu-system: the functional checks (plain and crowded "
                                         "environment) also run under QEMU user mode: 'ok' or its status and reason"),
    Column("host", pl.String, "the host that measured the row (its hostname)"),
    Column("host_fingerprint", pl.String,
           "environment.host_fingerprint of that host: hostname, CPU model, cores, machine, kernel and memory; "
           "timings of rows with different fingerprints are never compared (rows written before the column: "
           "filled on load from the run's manifest)"),
    Column("build_seconds", pl.Float64, "wall time of the compiler run (of the original run when cached)"),
    Column("build_cached", pl.Boolean, "the binary came from the artifact cache"),
    Column("size_bytes", pl.Int64, "file size of the binary as measured (after the post-link chain)"),
    Column("binary_sha256", pl.String, "sha256 of that binary: what the image holds, what `slimlab dockerfile` "
                                       "must rebuild"),
    Column("elf_type", pl.String, "ET_EXEC or ET_DYN"),
    Column("elf_machine", pl.String, "e_machine, e.g. EM_X86_64"),
    *(Column(f"section_{group}_bytes", pl.Int64, members) for group, members in SECTION_GROUP_MEMBERS.items()),
    Column("sections", pl.List(SECTION_STRUCT), "every section header: name, type, sh_size, group (readelf -S)"),
    Column("has_dwarf", pl.Boolean, "any .debug_*/.zdebug_* section present"),
    Column("has_symtab", pl.Boolean, ".symtab present"),
    Column("is_static", pl.Boolean, "no program interpreter and no needed libraries (of the build before UPX)"),
    Column("interpreter", pl.String, "PT_INTERP, e.g. /lib64/ld-linux-x86-64.so.2 (of the build before UPX)"),
    Column("needed_libs", pl.List(pl.String), "DT_NEEDED entries (of the build before UPX, which hides them)"),
    Column("needed_libs_bytes", pl.Int64,
           "on-disk bytes of those libraries and theirs (all ldd lists): what an image adds"),
    # post-link chain (slimlab.postlink); steps in the order they ran
    Column("postlink_steps", pl.List(pl.String), "e.g. ['strip', 'upx-9']; [] for 'none'"),
    Column("size_before_postlink_bytes", pl.Int64, "the build's file size, before the chain"),
    Column("postlink_step_bytes", pl.List(pl.Int64), "file size after each step that succeeded"),
    Column("postlink_step_seconds", pl.List(pl.Float64), "wall time of each step (incl. `upx -t`)"),
    Column("postlink_seconds", pl.Float64, "whole chain (of the original run when cached)"),
    Column("postlink_cached", pl.Boolean, "output taken from the post-link cache"),
    Column("postlink_removed_sections", pl.List(pl.String), "sections strip/objcopy took out"),
    Column("upx_test_ok", pl.Boolean, "`upx -t` passed on the packed file; null without UPX"),
    Column("upx_ratio", pl.Float64, "packed size / size before the UPX step (UPX's 'Ratio')"),
    # hardening (slimlab.elf; checksec's rules)
    Column("is_pie", pl.Boolean, "ET_DYN with an interpreter or DF_1_PIE"),
    Column("relro", pl.String, "'none', 'partial' (PT_GNU_RELRO), 'full' (and BIND_NOW)"),
    Column("nx_stack", pl.Boolean, "PT_GNU_STACK present and not executable"),
    Column("stack_canary", pl.Boolean, "__stack_chk_fail referenced; null: no symbol table to tell"),
    # residue
    Column("dwarf_sections", pl.List(pl.String), "names of the .debug_*/.zdebug_* sections"),
    Column("leaked_paths", pl.Int64, "distinct strings starting with the source dir/GOPATH/GOROOT; null: packed"),
    Column("has_go_buildid", pl.Boolean, "a Go build-ID note is present; null: UPX-packed, cannot tell"),
    Column("go_buildid", pl.String, "that build ID (what `go tool buildid` prints)"),
    Column("upx_packed", pl.Boolean, "the file is UPX-packed (its own sections are hidden)"),
    # Go build info from .go.buildinfo (what `go version -m` prints); null when absent
    Column("go_version", pl.String, "e.g. 'go1.26.8'"),
    Column("main_package", pl.String, "import path of the main package"),
    Column("main_module", pl.String, "main module path"),
    Column("main_module_version", pl.String, "'(devel)' for a local build"),
    Column("dep_modules", pl.List(pl.String), "'path@version', 'path@version => replacement'"),
    Column("build_settings", pl.List(pl.String), "'key=value': -ldflags, CGO_ENABLED, GOARCH, -trimpath, ..."),
    # size per Go package (packages.parquet)
    Column("packages_source", pl.String, "'symtab' when package rows exist, else why not"),
    # timed starts (samples.parquet holds every one)
    Column("startup_n", pl.Int64, "timed starts behind the figures below"),
    Column("startup_ms_median", pl.Float64,
           "median start-up: CLI spawn to exit, server spawn to first healthy answer (launcher-timed)"),
    Column("startup_ms_ci_low", pl.Float64, "low end of the 95% percentile-bootstrap interval of the median"),
    Column("startup_ms_ci_high", pl.Float64, "high end of that interval"),
    Column("startup_precision", pl.Float64,
           "the precision the start-up median reached: the wider half of its 95% interval over the median "
           "(0.02: known to ±2%), over all the variant's samples"),
    Column("precision_target", pl.Float64, "the spec's precision: the half-width sampling aimed for"),
    Column("precision_reached", pl.Boolean,
           "startup_precision is within precision_target; false: max_repeats or the variant's time budget "
           "(variant_budget_s) ended its sampling first (or repeats fixed its count), and its timing "
           "verdicts are inconclusive (precision not reached); the status stays ok"),
    Column("same_binary_as", pl.String,
           "the variant_key of the variant whose timed starts this row shares: the same shipped bytes "
           "(binary_sha256), runner, target and image are one measurement; its samples are copied under "
           "this row's key; null: timed itself"),
    Column("escaped_processes", pl.Int64,
           "processes the program left running after a start (in its cgroup, process group or session), "
           "killed by slimlab; the largest count over its starts and checks; more than 0 makes the row broken"),
    Column("startup_ms_iqr", pl.Float64, "interquartile range of the start-up samples"),
    Column("startup_ms_min", pl.Float64, "fastest start-up sample"),
    Column("startup_ms_max", pl.Float64, "slowest start-up sample"),
    Column("peak_rss_kib_median", pl.Float64,
           "median peak resident set (KiB): wait4 ru_maxrss of the program; servers: the larger of that "
           "and VmHWM read before the stop signal. Empty under QEMU user mode (see emulator_peak_rss_kib_median)"),
    Column("emulator_peak_rss_kib_median", pl.Float64,
           "QEMU user mode only (memory_scope 'emulator+program'): the median peak RSS of QEMU's process running "
           "the program, which the peak_rss columns then leave empty; runner qemu-system gives the program's own"),
    Column("peak_rss_kib_iqr", pl.Float64, "interquartile range of the peak-RSS samples"),
    Column("peak_rss_kib_max", pl.Int64, "largest peak-RSS sample"),
    Column("ready_rss_kib_median", pl.Float64, "servers only: VmRSS once /healthz first answers"),
    Column("cgroup_peak_kib_median", pl.Float64,
           "images only: median peak of the container's memory cgroup (v1 memory.max_usage_in_bytes, v2 "
           "memory.peak), read inside it as the program ended: the program, slimlab's launcher, the runtime's "
           "init and the page cache charged to the container; not the engine's shim"),
    Column("container_floor_ms_median", pl.Float64,
           "images only: median start-up of the engine's floor, a static no-op on scratch timed in the "
           "same rounds and timed the same way (a CLI to its exit, a server to its first answer; the "
           "session's manifest measurement.container_floor has its interval): startup_ms_median minus this "
           "is what the program and its base add to `docker run`"),
    Column("nivcsw_median", pl.Float64,
           "median involuntary context switches of the program per start (rusage ru_nivcsw): high means "
           "it was preempted, a sign of a busy host"),
    Column("cpu_ms_median", pl.Float64,
           "median user + system CPU time of the program per start (rusage): what start-up costs in CPU, "
           "not inflated by waiting for one on a busy host"),
    # the image (slimlab.image), for a base other than "none"
    Column("image_tag", pl.String, "the image in the engine, tagged by what decides its content"),
    Column("image_size_bytes", pl.Int64, "the engine's Size of the image (docker image inspect): base plus binary layer"),
    Column("image_compressed_bytes", pl.Int64,
           "about what a registry transfers: each layer gzip -6 compressed (docker push: Go's gzip, within a few %)"),
    Column("image_layer_bytes", pl.List(pl.Int64),
           "each history entry's size, base first (docker history); metadata entries (USER, ENTRYPOINT) are 0"),
    Column("image_build_seconds", pl.Float64, "building the image (0 when the engine had it already)"),
    Column("image_cached", pl.Boolean, "the engine had the image already"),
    Column("base_packages", pl.List(pl.String), "the base's Debian packages, 'package=version'"),
    Column("image_efficiency", pl.Float64,
           "dive's efficiency score (slimlab.layerfs, equal to `dive --ci --json`'s): per path the smallest size "
           "seen in any layer, summed, over all sizes seen summed; 1: no byte is stored twice or deleted"),
    Column("image_wasted_bytes", pl.Int64,
           "dive's wasted bytes: every size of each path found in more than one layer (a file deleted or "
           "overwritten by a later layer), summed; a deleted directory is not counted, as dive does not"),
    Column("image_bytes_by_kind", pl.List(pl.Struct({"kind": pl.String, "bytes": pl.Int64})),
           "the image's file bytes by what they are: binary, ca_bundle, zoneinfo, libc, rest (the base's other "
           "files: users, configuration, licences, a shell)"),
    Column("container_ok", pl.Boolean,
           "the functional check passed in a container; it runs hardened, as every container slimlab starts "
           "(see container_hardened_ok); in runs before issue 18 it was a plain container's check"),
    Column("container_hardened_ok", pl.Boolean,
           "the check passed with --user 65532 --read-only (tmpfs /tmp) --cap-drop ALL --security-opt "
           "no-new-privileges and the spec's memory_limit_mb and pids_limit, and no network for a CLI (a "
           "server: its own, a port published on 127.0.0.1); since issue 18 the one check, so equal to "
           "container_ok; before, a second check after the plain one, without the limits"),
    Column("container_reason", pl.String,
           "why the container check failed, naming the limit it hit (memory_limit_mb, pids_limit) if any"),
    # multi-arch images (slimlab.oci): a sweep with several targets writes each image into the run's OCI
    # image layout, one image per platform and an image index over the platforms of a variant and base
    Column("image_platform", pl.String, "the image's platform as its OCI index names it: linux/amd64, linux/arm/v7"),
    Column("oci_layout", pl.String,
           "PATH:REF of the image index in the run's OCI image layout, PATH relative to the run directory: "
           "`skopeo inspect --raw oci:<run dir>/PATH:REF`; this platform alone is REF.<os>-<arch>[-<variant>]"),
    Column("oci_manifest_digest", pl.String, "this platform's image manifest (reproducible: same binary and base, "
                                             "same digest)"),
    Column("oci_image_bytes", pl.Int64,
           "this platform's image as a registry stores it: its config and gzip-compressed layer blobs"),
    Column("oci_build_seconds", pl.Float64, "writing this platform's image: layer tars, compression, blobs, index"),
    Column("oci_index_digest", pl.String,
           "the image index over the platforms in oci_index_platforms, as it stood when every variant of the sweep "
           "had been prepared (a row that failed before that: as it stood then)"),
    Column("oci_index_platforms", pl.List(pl.String), "the platforms that index lists, in TARGETS' order"),
    # supply chain (slimlab.supply): an SBOM of what ships, and govulncheck's findings
    Column("sbom_path", pl.String,
           "the variant's CycloneDX 1.6 JSON SBOM, relative to the run directory: Go modules and stdlib from "
           "the build info, and for an image its base's Debian packages"),
    Column("sbom_components", pl.Int64, "components in that SBOM (an image's SBOM counts the binary as one)"),
    Column("vuln_ids", pl.List(pl.String),
           "OSV ids govulncheck -mode binary reports as affecting the binary (a finding at a function); "
           "null when the scan did not run"),
    Column("vuln_count", pl.Int64, "how many: len(vuln_ids)"),
    Column("vuln_scan_level", pl.String,
           "'symbol': the binary's symbol table says which vulnerable functions it holds; 'module': no "
           ".symtab (stripped), every vulnerable symbol of an affected module version counts"),
    Column("vuln_scan_seconds", pl.Float64, "govulncheck's wall time (of the original scan when cached)"),
    Column("vuln_scan_cached", pl.Boolean, "the scan came from the cache (same binary, database and scanner)"),
    Column("vuln_reason", pl.String, "why the scan did not run or failed (no vulndb in the spec, a packed binary)"),
    # an independent figure: hyperfine -N on the same binary, in alternating turns with slimlab
    Column("crosscheck_n", pl.Int64, "starts each tool took for the cross-check (native CLIs with hyperfine only)"),
    Column("crosscheck_slimlab_ms_median", pl.Float64, "slimlab's start-up median in the cross-check turns"),
    Column("crosscheck_hyperfine_ms_median", pl.Float64,
           "hyperfine -N's start-up median of the same binary in the turns between slimlab's"),
    Column("crosscheck_slimlab_ms_p25", pl.Float64, "slimlab's 25th percentile in the cross-check turns"),
    Column("crosscheck_hyperfine_ms_p25", pl.Float64, "hyperfine -N's 25th percentile in the cross-check turns"),
    Column("measured_at", pl.Datetime("us", "UTC"), "when the row was finished"),
)

# Columns schema 2 added that a run of schema 1 cannot fill in: they need the binary, which a run
# does not keep, so a migrated schema-1 row has them null (slimlab.results._migrate_1_to_2 fills
# in what schema 1 implies: no post-link steps, no UPX, gc's Go version).
SCHEMA_1_LACKS = frozenset({
    "needed_libs_bytes", "postlink_seconds", "postlink_cached", "is_pie", "relro", "nx_stack", "stack_canary",
    "dwarf_sections", "leaked_paths", "has_go_buildid", "go_buildid", "main_package", "main_module",
    "main_module_version", "dep_modules", "build_settings",
})
SCHEMA_1_NOTE = " (null in runs migrated from results schema 1, which did not record it)"

RESULT_SCHEMA: dict[str, pl.DataType] = {c.name: c.dtype for c in COLUMNS}
DESCRIPTIONS: dict[str, str] = {c.name: c.description + (SCHEMA_1_NOTE if c.name in SCHEMA_1_LACKS else "")
                                for c in COLUMNS}

SAMPLE_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String,
    "variant_key": pl.String,
    "sample_index": pl.Int64,
    "startup_ms": pl.Float64,
    "peak_rss_kib": pl.Int64,
    "ready_rss_kib": pl.Int64,
    "exit_code": pl.Int64,
    "nivcsw": pl.Int64,  # involuntary context switches of the program in this start
    "nvcsw": pl.Int64,  # voluntary ones
    "cpu_ms": pl.Float64,  # user + system CPU time of the program in this start (not inflated by waiting)
    "exit_maxrss_kib": pl.Int64,  # wait4's ru_maxrss alone (peak_rss_kib may be larger for a server)
    "stop_hwm_kib": pl.Int64,  # servers: VmHWM read just before the stop signal
    "cgroup_peak_kib": pl.Int64,  # in a container: the container cgroup's peak (see slimlab.measure.container)
}

# One row per (variant, Go package): code bytes attributed to the package from the
# unstripped build's symbol table (slimlab.pkgsize), before any post-link step.
PACKAGE_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String,
    "variant_key": pl.String,
    "package": pl.String,  # import path; "(no Go package)", "(compiler-generated)"
    "bytes": pl.Int64,
}


# -- a results file from elsewhere --------------------------------------------------------------
# Results files travel between people, and their values reach Dockerfiles, shell lines, reports
# and terminals: every table is checked against its schema before use (validate).
class ResultsFileError(SlimlabError):
    """A table of a run that does not hold what the schema says: damaged, or not slimlab's."""


# Free text in a tool's or a check's own words, which may span lines; shown escaped, never run.
FREE_TEXT = frozenset({"reason", "container_reason", "qemu_user_check", "vuln_reason", "packages_source"})
# Names from slimlab's own vocabulary: letters, digits and . _ + / - only.
NAME_COLUMNS = ("toolchain", "target", "postlink", "base", "upx_level", "image_platform", "runner",
                "memory_scope")
NAME_PATTERN = r"^[A-Za-z0-9._+/-]+$"
# Names users choose (a workload's path, a custom profile) may hold any printable character but
# KEY_SEPARATOR, which joins a variant's key.
ENV_ITEM_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*="  # build_env: NAME=value
SETTING_PATTERN = r"^[^=\s]+="  # build_settings: key=value, as `go version -m` lists them
REFUSED = ": the file is damaged or not slimlab's: refused before use"


def _any_item(column: str, test: pl.Expr) -> pl.Expr:
    return pl.col(column).list.eval(test).list.any()


def _refuse(source, frame: pl.DataFrame, bad: pl.Expr, column: str, problem: str) -> None:
    """ResultsFileError naming the file, the first offending row's variant key and the column."""
    found = frame.filter(bad.fill_null(False))
    if found.is_empty():
        return
    row = found.row(0, named=True)
    value = "" if column == "variant_key" else f"{row.get(column)!r} "
    more = f" (and {found.height - 1} more row(s))" if found.height > 1 else ""
    key = row.get("variant_key")
    raise ResultsFileError(f"{source}: row {key!r}{more}, column {column}: {value}{problem}{REFUSED}")


def validate(frame: pl.DataFrame, schema: dict[str, pl.DataType], source) -> pl.DataFrame:
    """``frame`` (a table read from ``source``, brought up to this schema) checked before use:
    each column of ``schema`` of its type (an all-null column is cast), no control character in
    any text but FREE_TEXT, statuses of STATUSES, slimlab's names of NAME_PATTERN, no '|' in an
    axis value and a variant key that is the row's axes joined, build_env and build_settings
    items of NAME=value. ResultsFileError naming the file, the row's key (escaped) and the column."""
    casts = []
    for name, dtype in schema.items():
        if name not in frame.columns or frame.schema[name] == dtype:
            continue
        if frame.schema[name] == pl.Null:
            casts.append(pl.col(name).cast(dtype))
        else:
            raise ResultsFileError(f"{source}: column {name} is {frame.schema[name]}, the results schema "
                                   f"says {dtype}{REFUSED}")
    frame = frame.with_columns(casts) if casts else frame
    if frame.is_empty():
        return frame
    present = [name for name in schema if name in frame.columns]
    for name in present:
        if name in FREE_TEXT:
            continue
        if schema[name] == pl.String:
            _refuse(source, frame, pl.col(name).str.contains(CONTROL_PATTERN), name,
                    "holds a control character")
        elif schema[name] == pl.List(pl.String):
            _refuse(source, frame, _any_item(name, pl.element().str.contains(CONTROL_PATTERN)), name,
                    "has an item that holds a control character")
    if "status" in present:
        _refuse(source, frame, ~pl.col("status").is_in(STATUSES), "status",
                f"is not one of {', '.join(STATUSES)}")
    for name in (n for n in NAME_COLUMNS if n in present):
        _refuse(source, frame, ~pl.col(name).str.contains(NAME_PATTERN), name,
                "is not a name of letters, digits and . _ + / -")
    axes = [a.column for a in AXES]
    if all(a in present for a in axes):
        for name in axes:
            _refuse(source, frame, pl.col(name).str.contains(KEY_SEPARATOR, literal=True), name,
                    f"holds {KEY_SEPARATOR!r}, which joins a variant's key")
        if "variant_key" in present:
            joined = pl.concat_str([pl.col(a) for a in axes], separator=KEY_SEPARATOR)
            _refuse(source, frame, pl.col("variant_key") != joined, "variant_key",
                    f"is not the row's axes ({', '.join(axes)}) joined with {KEY_SEPARATOR!r}")
    for name, pattern, shape in (("build_env", ENV_ITEM_PATTERN, "NAME=value"),
                                 ("build_settings", SETTING_PATTERN, "key=value")):
        if name in present:
            _refuse(source, frame, _any_item(name, ~pl.element().str.contains(pattern)), name,
                    f"has an item that is not {shape}")
    if "run_id" in present:
        _refuse(source, frame, pl.col("run_id").str.contains("/", literal=True) | (pl.col("run_id") == "..")
                | (pl.col("run_id") == "."), "run_id", "is not a run directory's name")
    return frame
