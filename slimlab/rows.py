"""Stage outcomes -> result columns, in one place.

Every column a sweep writes goes through a ``Row``, which refuses a name the results
schema does not declare: a misspelt column fails where it is written, not when the
frame is built from the journal later.
"""

from __future__ import annotations

from typing import Any

from .build import BuildOutcome
from .cache import file_sha256
from .image import ContainerCheck, ImageOutcome
from .elf import Inspection, inspect
from .model import TARGETS, Variant
from .oci import OciOutcome
from .postlink import PostlinkOutcome
from .results_schema import RESULT_SCHEMA, SCHEMA_VERSION, SECTION_GROUPS
from .supply import SbomOutcome, VulnScan
from .toolchains import ToolchainInfo


class Row(dict):
    """One result row under construction: a dict that only takes schema columns."""

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in RESULT_SCHEMA:
            from .errors import did_you_mean

            raise KeyError(f"{key!r} is not a results column{did_you_mean(key, RESULT_SCHEMA)}")
        super().__setitem__(key, value)

    def update(self, *args, **kwargs) -> None:  # dict.update bypasses __setitem__
        for key, value in dict(*args, **kwargs).items():
            self[key] = value


def base_row(run_id: str, variant: Variant, info: ToolchainInfo | None, host: str,
             fingerprint: str | None = None) -> Row:
    """What every row carries, whatever its status: its axes and where it was measured.

    ``info``: the compiler that builds for the variant's target (a cross gccgo's own).
    ``host``/``fingerprint``: the hostname and environment.host_fingerprint of the machine that
    measures the row (a Dask worker's own when workers measure); None leaves the fingerprint to
    the loader, which takes the run manifest's host (slimlab.results.fill_host_fingerprints)."""
    from .model import get_chain

    row = Row()
    row.update(
        schema_version=SCHEMA_VERSION,
        run_id=run_id,
        variant_key=variant.key,
        **variant.axes(),
        toolchain_version=info.version if info else None,
        upx_level=get_chain(variant.postlink).upx_level,
        postlink_steps=list(get_chain(variant.postlink).steps),
        emulated=not TARGETS[variant.target].is_native,
        host=host,
        host_fingerprint=fingerprint,
        measured_at=None,
    )
    return row


def build_columns(built: BuildOutcome) -> dict[str, Any]:
    return {
        "toolchain_version": built.toolchain_version,
        "build_seconds": built.seconds,
        "build_cached": built.cached,
        "flags": list(built.flags),
        "build_env": list(built.profile_env),
    }


def postlink_columns(linked: PostlinkOutcome) -> dict[str, Any]:
    """What the chain did (see results_schema)."""
    upx = linked.upx_step
    return {
        "size_before_postlink_bytes": linked.size_before,
        "postlink_step_bytes": [s.size_after for s in linked.steps if s.size_after is not None],
        "postlink_step_seconds": [s.seconds for s in linked.steps],
        "postlink_seconds": linked.seconds,
        "postlink_cached": linked.cached,
        "postlink_removed_sections": sorted({n for s in linked.steps for n in s.removed_sections}),
        "upx_test_ok": upx.upx_test_ok if upx else None,
        "upx_ratio": (upx.size_after / upx.size_before) if upx and upx.size_after else None,
        "binary_sha256": file_sha256(linked.binary) if linked.ok and linked.binary else None,
    }


def inspect_columns(found: Inspection) -> dict[str, Any]:
    """The file's columns: sizes by section group and per section, linkage, hardening, residue,
    Go build info (see results_schema for each column's meaning)."""
    info = found.build_info
    return {
        "size_bytes": found.size_bytes,
        **{f"section_{group}_bytes": found.group_bytes(group) for group in SECTION_GROUPS},
        "sections": [{"name": s.name, "type": s.type, "size_bytes": s.size, "group": s.group}
                     for s in found.sections],
        "elf_type": found.elf_type,
        "elf_machine": found.elf_machine,
        "has_dwarf": bool(found.dwarf_sections),
        "has_symtab": found.has_symtab,
        "is_static": found.is_static,
        "interpreter": found.interpreter,
        "needed_libs": list(found.needed_libs),
        "is_pie": found.is_pie,
        "relro": found.relro,
        "nx_stack": found.nx_stack,
        "stack_canary": found.stack_canary,
        "dwarf_sections": found.dwarf_sections,
        "upx_packed": found.upx_packed,
        "go_buildid": found.go_buildid,
        "has_go_buildid": found.has_go_buildid,
        "leaked_paths": found.leaked_paths,
        "go_version": info.go_version if info else None,
        "main_package": info.path if info else None,
        "main_module": info.main.path if info and info.main else None,
        "main_module_version": info.main.version if info and info.main else None,
        "dep_modules": [str(d) for d in info.deps] if info else None,
        "build_settings": [f"{k}={v}" for k, v in info.settings] if info else None,
    }


def inspect_binary(path, build_paths=None, linkage_of=None) -> dict[str, Any]:
    """``inspect`` a file and map it to its result columns, in one call."""
    return inspect_columns(inspect(path, build_paths, linkage_of))


def image_columns(built: ImageOutcome) -> dict[str, Any]:
    return {
        "image_tag": built.tag,
        "image_size_bytes": built.size_bytes,
        "image_compressed_bytes": built.compressed_bytes,
        "image_layer_bytes": list(built.layer_bytes),
        "image_build_seconds": built.seconds,
        "image_cached": built.cached,
        "base_packages": list(built.base_packages),
        "image_efficiency": built.layer_waste.efficiency if built.layer_waste else None,
        "image_wasted_bytes": built.layer_waste.wasted_bytes if built.layer_waste else None,
        "image_bytes_by_kind": [{"kind": kind, "bytes": size} for kind, size in built.bytes_by_kind().items()]
        if built.ok else None,
    }


def container_columns(checked: ContainerCheck) -> dict[str, Any]:
    """The functional check's columns: it ran once, hardened (image.Confinement), so both verdicts are its."""
    return {"container_ok": checked.ok, "container_hardened_ok": checked.ok,
            "container_reason": checked.reason}


# -- multi-arch images (slimlab.oci) -------------------------------------------------------
def oci_columns(made: OciOutcome) -> dict[str, Any]:
    """A platform image's columns; the index's come later (index_columns), once all platforms are in."""
    found = made.platform
    return {
        "image_platform": found.platform if found else None,
        "oci_layout": made.layout,
        "oci_manifest_digest": found.manifest["digest"] if found else None,
        "oci_image_bytes": found.bytes if found else None,
        "oci_build_seconds": found.seconds if found else None,
    }


def index_columns(index: tuple[str, list[str]] | None) -> dict[str, Any]:
    digest, platforms = index or (None, None)
    return {"oci_index_digest": digest, "oci_index_platforms": platforms}


# -- supply chain (slimlab.supply) -------------------------------------------------------
def sbom_columns(sbom: SbomOutcome, run_dir) -> dict[str, Any]:
    return {"sbom_path": sbom.path.relative_to(run_dir).as_posix(), "sbom_components": sbom.components}


def vuln_columns(found: VulnScan) -> dict[str, Any]:
    """The scan's findings; ids and count stay null when it did not run (not the same as 0)."""
    return {
        "vuln_ids": list(found.ids) if found.ran else None,
        "vuln_count": len(found.ids) if found.ran else None,
        "vuln_scan_level": found.level,
        "vuln_scan_seconds": found.seconds,
        "vuln_scan_cached": found.cached if found.ran else None,
        "vuln_reason": found.reason,
    }


def summary_columns(samples: list[dict]) -> dict[str, Any]:
    """Medians and spread of a variant's timed samples."""
    from .measure import summarize

    startup = summarize([s["startup_ms"] for s in samples])
    rss = summarize([s["peak_rss_kib"] for s in samples])
    ready = summarize([s["ready_rss_kib"] for s in samples])
    nivcsw = summarize([s.get("nivcsw") for s in samples])
    cpu = summarize([s.get("cpu_ms") for s in samples])
    cgroup = summarize([s.get("cgroup_peak_kib") for s in samples])
    return {
        "startup_n": startup["n"],
        "startup_ms_median": startup["median"],
        "startup_ms_iqr": startup["iqr"],
        "startup_ms_min": startup["min"],
        "startup_ms_max": startup["max"],
        "peak_rss_kib_median": rss["median"],
        "peak_rss_kib_iqr": rss["iqr"],
        "peak_rss_kib_max": rss["max"],
        "ready_rss_kib_median": ready["median"],
        "nivcsw_median": nivcsw["median"],
        "cpu_ms_median": cpu["median"],
        "cgroup_peak_kib_median": cgroup["median"],
    }
