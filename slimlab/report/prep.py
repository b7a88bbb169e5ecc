"""Frames -> frames: shape the results frame for the report's figures.

Everything here is plain polars. The figure-ready frames carry a few extra columns,
all prefixed ``plot_``; their text is HTML-escaped, because plotly renders a subset of
HTML (<b>, <br>, <a>, ...) in labels, legends and hover text, while it turns entities such
as ``&lt;`` back into literal characters. Escaping once, here, is what makes a workload
named ``<b>x`` show up as the text ``<b>x``. The original columns are left untouched, so
a caller building an HTML table escapes them itself (see html.py).
"""

from __future__ import annotations

import html

import polars as pl

from slimlab.model import AXES
from slimlab.results_schema import RESULT_SCHEMA, STATUSES

# Figures are faceted by these (and by emulation): within a facet a bar's label leaves them out.
FACET_COLUMNS = ("workload", "target")
FACET_ORDER = ("plot_group", "plot_emulated", "target")  # native panels before emulated ones
# Figures of timings (start-up, memory) are faceted by the measuring host too: one machine's
# milliseconds are not another's (Dask workers may each measure what they built).
TIMED_FACET_ORDER = (*FACET_ORDER, "plot_host")
# Appended, one at a time and only to rows whose label is still ambiguous.
DISAMBIGUATORS = ("toolchain_version", "flags", "build_env", "run_id", "variant_key")
LABEL_SEPARATOR = " · "
# Axis ticks and legend entries are cut to these lengths so one long name cannot squeeze
# the plot area away; the full text stays in the hover.
TICK_MAX_CHARS = 70
LEGEND_MAX_CHARS = 40

# ELF sections that occupy file bytes, in stacking order. bss is left out on purpose:
# it is zero-filled memory at run time and takes no space in the file.
FILE_SECTIONS = ("text", "rodata", "data", "pclntab", "symtab", "dwarf", "other")
# File bytes no section column accounts for: ELF/program headers, alignment padding, or
# a packed (UPX) binary whose sections are not visible at all.
UNATTRIBUTED = "unattributed"

MIB = 1024 * 1024


def text_of(column: str) -> pl.Expr:
    """A column as plain text; list columns (flags, build_env) joined with spaces."""
    if isinstance(RESULT_SCHEMA.get(column), pl.List):
        return pl.col(column).list.join(" ")
    return pl.col(column).cast(pl.String)


def _label_part(axis) -> pl.Expr:
    value = pl.col(axis.column)
    part = pl.concat_str([pl.lit(axis.label_prefix), value.fill_null("?")]) if axis.label_prefix else value.fill_null("?")
    if axis.unlabelled is None:
        return part
    return pl.when(value.is_null() | (value == axis.unlabelled)).then(None).otherwise(part)


def crosscheck_ratios(df: pl.DataFrame) -> pl.DataFrame:
    """Rows with a hyperfine cross-check: ``plot_label`` and ``ratio`` = slimlab / hyperfine median."""
    df = conform(df)
    checked = df.filter(pl.col("crosscheck_hyperfine_ms_median").is_not_null() & (pl.col("status") == "ok"))
    return with_labels(checked).select(
        "plot_label", (pl.col("crosscheck_slimlab_ms_median") / pl.col("crosscheck_hyperfine_ms_median")).alias("ratio"),
        (pl.col("crosscheck_slimlab_ms_p25") / pl.col("crosscheck_hyperfine_ms_p25")).alias("ratio_p25"),
    )


def escape_text(expr: pl.Expr) -> pl.Expr:
    """HTML-escape a string expression (nulls stay null)."""
    return expr.map_elements(html.escape, return_dtype=pl.String, skip_nulls=True)


def shorten(expr: pl.Expr, max_chars: int) -> pl.Expr:
    """Cut a string to ``max_chars`` characters, ending with an ellipsis when cut.

    Apply before escaping, never after: cutting escaped text could split an entity.
    """
    return (
        pl.when(expr.str.len_chars() > max_chars)
        .then(pl.concat_str([expr.str.slice(0, max_chars - 1), pl.lit("…")]))
        .otherwise(expr)
    )


def conform(df: pl.DataFrame) -> pl.DataFrame:
    """Return ``df`` with every RESULT_SCHEMA column present (missing ones as nulls).

    The report must draw whatever frame it is handed: an empty one, one from an older
    schema version, or a hand-made one in a test.
    """
    missing = [
        pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in RESULT_SCHEMA.items()
        if name not in df.columns
    ]
    return df.with_columns(missing) if missing else df


def with_labels(df: pl.DataFrame) -> pl.DataFrame:
    """Add ``plot_label`` (one unique, escaped name per row) and ``plot_group`` (workload).

    Also ``plot_tick`` / ``plot_group_name``: the same, shortened for axes and legends
    (not unique; use them as tick text and trace names, never as categories or keys).
    ``plot_host`` names the measuring host (host_name), and ``plot_timed_facet`` is ``plot_facet``
    with "measured on <host>" added when the frame's rows come from more than one host.

    The label reads "workload · toolchain · profile · target · postlink", plus the UPX
    level and the image base when there is one (every axis of model.axes, in order). Rows that would still share a label (same variant in
    two runs, two flag sets under one profile) get the first distinguishing column added,
    so no bar silently lands on top of another.
    """
    df = conform(df)
    parts, short_parts = [], []
    for axis in AXES:
        parts.append(_label_part(axis))
        if axis.column not in FACET_COLUMNS:
            short_parts.append(parts[-1])
        if axis.column == "postlink":  # the chain's UPX level right after its name
            parts.append(pl.concat_str([pl.lit("upx "), pl.col("upx_level")]))
            short_parts.append(parts[-1])
    raw = pl.concat_str(parts, separator=LABEL_SEPARATOR, ignore_nulls=True)
    short = pl.concat_str(short_parts, separator=LABEL_SEPARATOR, ignore_nulls=True)
    df = df.with_columns(raw.alias("plot_label"), raw.alias("_raw"), short.alias("_short"))
    for column in DISAMBIGUATORS:
        if df["plot_label"].n_unique() == df.height:
            break
        extra = text_of(column).fill_null("?")
        candidate = df.with_columns(
            pl.when(pl.col("plot_label").is_duplicated())
            .then(pl.concat_str([pl.col("plot_label"), extra], separator=LABEL_SEPARATOR))
            .otherwise(pl.col("plot_label"))
            .alias("plot_label")
        )
        # Only keep a column that tells rows apart; one that is equal everywhere is noise.
        if candidate["plot_label"].n_unique() > df["plot_label"].n_unique():
            df = candidate
    if not df.is_empty() and not df["plot_label"].is_unique().all():
        # Same variant twice in one run: should not happen, but must not hide a bar.
        number = pl.int_range(pl.len()).over("plot_label") + 1
        df = df.with_columns(
            pl.when(pl.col("plot_label").is_duplicated())
            .then(pl.concat_str([pl.col("plot_label"), pl.lit(" #"), number.cast(pl.String)]))
            .otherwise(pl.col("plot_label"))
            .alias("plot_label")
        )
    workload = pl.col("workload").fill_null("?")
    # The facet's own label: what the disambiguation appended to the full label goes on the
    # short one too, so it is unique within its facet (same workload, target, emulation).
    short = pl.concat_str([pl.col("_short"), pl.col("plot_label").str.slice(pl.col("_raw").str.len_chars())])
    emulated = pl.col("emulated").fill_null(False)
    facet = pl.concat_str([shorten(workload, TICK_MAX_CHARS), pl.col("target").fill_null("?")],
                          separator=LABEL_SEPARATOR)
    facet = pl.when(emulated).then(pl.concat_str([facet, pl.lit(" (emulated: QEMU figures, compare within this "
                                                                 "panel only)")])).otherwise(facet)
    host = host_name()
    timed_facet = (pl.concat_str([facet, pl.lit(" · measured on "), host]) if n_hosts(df) > 1 else facet)
    return df.with_columns(
        escape_text(short).alias("plot_short"),
        escape_text(shorten(short, TICK_MAX_CHARS)).alias("plot_short_tick"),
        escape_text(facet).alias("plot_facet"),
        escape_text(timed_facet).alias("plot_timed_facet"),
        escape_text(host).alias("plot_host"),
        escape_text(pl.col("plot_label")).alias("plot_label"),
        escape_text(shorten(pl.col("plot_label"), TICK_MAX_CHARS)).alias("plot_tick"),
        escape_text(workload).alias("plot_group"),
        escape_text(shorten(workload, LEGEND_MAX_CHARS)).alias("plot_group_name"),
        escape_text(pl.col("runner").fill_null("?")).alias("plot_runner"),
        pl.col("emulated").fill_null(False).alias("plot_emulated"),
    ).drop("_raw", "_short")


def host_name() -> pl.Expr:
    """A row's measuring host, unescaped: "hostname [fingerprint]" (environment.host_fingerprint),
    "unrecorded host" without a fingerprint."""
    name = pl.col("host").fill_null("?")
    return (pl.when(pl.col("host_fingerprint").is_null()).then(pl.lit("unrecorded host"))
            .otherwise(pl.concat_str([name, pl.lit(" ["), pl.col("host_fingerprint"), pl.lit("]")])))


def same_host_as(column: str) -> pl.Expr:
    """Whether a row was measured on the host whose fingerprint ``column`` holds (a baseline's,
    joined in): only then are their timings compared (analysis.same_host, for frames)."""
    return pl.col("host_fingerprint").eq_missing(pl.col(column))


def n_hosts(df: pl.DataFrame) -> int:
    """How many hosts measured the frame's rows (by fingerprint; no fingerprint counts as one)."""
    return conform(df)["host_fingerprint"].n_unique() if df.height else 0


def measured(df: pl.DataFrame) -> pl.DataFrame:
    """Rows whose variant built, ran and passed its check, labelled; others are not plotted."""
    return with_labels(df).filter(pl.col("status") == "ok")


def sizes(df: pl.DataFrame) -> pl.DataFrame:
    """Measured rows with a file size, per facet (workload, target) smallest first.

    ``plot_size_mib`` is the size in MiB; ``plot_size_share`` is the fraction of the
    largest ok variant of the same workload, which reads as "what slimming bought".
    """
    return (
        measured(df)
        .filter(pl.col("size_bytes").is_not_null())
        .with_columns(
            (pl.col("size_bytes") / MIB).alias("plot_size_mib"),
            (pl.col("size_bytes") / pl.col("size_bytes").max().over("workload")).alias(
                "plot_size_share"
            ),
        )
        .sort([*FACET_ORDER, "size_bytes", "plot_label"])
    )


def startup(df: pl.DataFrame) -> pl.DataFrame:
    """Measured builds (no image) with both a size and a start-up median, for the size/time
    scatter. Images are left out: their start-up is a container's, and against a binary's
    file size every one would look dominated; the answers rank them apart too."""
    return (
        measured(df)
        .filter(pl.col("size_bytes").is_not_null() & pl.col("startup_ms_median").is_not_null()
                & (pl.col("base").is_null() | (pl.col("base") == "none")))
        .with_columns(
            (pl.col("size_bytes") / MIB).alias("plot_size_mib"),
            # Error bars are drawn ±IQR/2 around the median: the schema keeps the IQR's
            # width, not its quartiles, so this is the honest symmetric rendering.
            (pl.col("startup_ms_iqr").fill_null(0.0) / 2).alias("plot_startup_half_iqr"),
        )
        .sort([*TIMED_FACET_ORDER, "size_bytes", "plot_label"])
    )


def memory(df: pl.DataFrame) -> pl.DataFrame:
    """Measured rows with a peak-RSS median, in MiB, per facet lowest first."""
    return (
        measured(df)
        .filter(pl.col("peak_rss_kib_median").is_not_null())
        .with_columns(
            # QEMU user mode's figure is QEMU's process (runs before memory_scope kept it apart);
            # a full-system guest's is the program's own.
            pl.when(pl.col("memory_scope").is_null()).then(pl.col("plot_emulated"))
            .otherwise(pl.col("memory_scope") == "emulator+program").alias("plot_emulator_rss"),
            (pl.col("peak_rss_kib_median") / 1024).alias("plot_rss_mib"),
            (pl.col("peak_rss_kib_iqr").fill_null(0.0) / 1024 / 2).alias("plot_rss_half_iqr_mib"),
        )
        .sort([*TIMED_FACET_ORDER, "peak_rss_kib_median", "plot_label"])
    )


IMAGE_MATCH = ("run_id", "workload", "toolchain", "profile", "target", "postlink")


# What an image's bytes are (slimlab.image.KINDS), in stacking order.
IMAGE_KINDS = ("binary", "libs", "ca_bundle", "zoneinfo", "libc", "rest")


def _kind_mib(kind: str) -> pl.Expr:
    """MiB of one kind of an image's bytes; rows without the breakdown (older runs) split
    into the binary and the rest."""
    listed = pl.col("image_bytes_by_kind").list.eval(
        pl.element().filter(pl.element().struct.field("kind") == kind).struct.field("bytes")).list.sum()
    fallback = {"binary": pl.col("size_bytes"), "rest": pl.col("image_size_bytes") - pl.col("size_bytes")}
    unlisted = fallback.get(kind, pl.lit(0))
    return pl.when(pl.col("image_bytes_by_kind").is_null()).then(unlisted).otherwise(listed) / (1024 * 1024)


def images(df: pl.DataFrame) -> pl.DataFrame:
    """Rows with an image, its bytes split into base and binary, and its container figures as
    ratios to the same build run bare (its ``none`` base row): ``plot_base_mib``,
    ``plot_binary_mib``, ``plot_<kind>_mib`` for each of IMAGE_KINDS, ``plot_compressed_mib``,
    ``plot_efficiency_pct`` (dive's), ``plot_startup_ratio``, ``plot_rss_ratio``."""
    df = conform(df)
    bare = df.filter(pl.col("base") == "none", pl.col("status") == "ok").select(
        *IMAGE_MATCH, pl.col("startup_ms_median").alias("_startup0"), pl.col("peak_rss_kib_median").alias("_rss0"),
        pl.col("runner").alias("_runner0"), pl.col("host_fingerprint").alias("_host0"),
    ).unique(list(IMAGE_MATCH), keep="first")
    # Another CPU's container runs under QEMU user mode; its bare build may have run in a
    # full-system guest: a ratio of two emulators' times means nothing, so there is none.
    # Nor is there one between two hosts' times.
    alike = ((~pl.col("emulated").fill_null(False)
              | (pl.col("runner").fill_null("").str.strip_prefix("container+") == pl.col("_runner0")))
             & same_host_as("_host0"))
    boxed = with_labels(df).filter(pl.col("image_size_bytes").is_not_null())
    mib = 1024 * 1024
    return (
        boxed.join(bare, on=list(IMAGE_MATCH), how="left")
        .with_columns(
            ((pl.col("image_size_bytes") - pl.col("size_bytes")) / mib).alias("plot_base_mib"),
            *[_kind_mib(kind).alias(f"plot_{kind}_mib") for kind in IMAGE_KINDS],
            (pl.col("image_efficiency") * 100).alias("plot_efficiency_pct"),
            (pl.col("image_compressed_bytes") / mib).alias("plot_compressed_mib"),
            pl.when(alike).then(pl.col("startup_ms_median") / pl.col("_startup0")).alias("plot_startup_ratio"),
            pl.when(alike).then(pl.col("peak_rss_kib_median") / pl.col("_rss0")).alias("plot_rss_ratio"),
            escape_text(pl.col("base")).alias("plot_base"),
        )
        .drop("_startup0", "_rss0", "_runner0", "_host0")
        .sort([*FACET_ORDER, "image_size_bytes", "plot_label"])
    )


CPU_MATCH = ("run_id", "workload", "toolchain", "profile", "target", "base")


def cross_cpu(df: pl.DataFrame) -> pl.DataFrame:
    """Bare binaries of a sweep over several targets, one row per (variant, target):
    ``plot_variant`` (the variant without its target), ``plot_target``, the size by section
    (``plot_<section>_mib``), the program's own peak RSS (``plot_rss_mib``; empty for QEMU
    user mode, whose figure is the emulator's) and its ratio to the same build on the native
    target (``plot_rss_vs_native``), and start-up relative to the same CPU's
    variant without post-link (``plot_startup_rel``): emulated milliseconds are not native
    ones, but a ratio on one CPU is comparable. Empty unless there are two targets."""
    df = conform(df)
    bare = df.filter((pl.col("base").fill_null("none") == "none"), pl.col("status") == "ok",
                     pl.col("size_bytes").is_not_null())
    if bare["target"].n_unique() < 2:
        return bare.clear()
    baseline = bare.filter(pl.col("postlink") == "none").select(
        *CPU_MATCH, pl.col("startup_ms_median").alias("_startup_none"), pl.col("host_fingerprint").alias("_host_none"))
    own_rss = pl.when(pl.col("memory_scope").fill_null("program") == "program").then(pl.col("peak_rss_kib_median"))
    natives = bare.filter(~pl.col("emulated").fill_null(False))["target"]
    native_target = (natives if not natives.is_empty() else bare["target"]).sort().to_list()[0]
    parts = [pl.col(c).cast(pl.String).fill_null("?") for c in ("workload", "toolchain", "profile", "postlink")]
    out = (
        bare.join(baseline, on=list(CPU_MATCH), how="left", nulls_equal=True)
        .with_columns(
            escape_text(pl.concat_str(parts, separator=LABEL_SEPARATOR)).alias("plot_variant"),
            escape_text(pl.col("target")).alias("plot_target"),
            (own_rss / 1024).alias("plot_rss_mib"),
            # a ratio of one host's times only
            pl.when(same_host_as("_host_none"))
            .then(pl.col("startup_ms_median") / pl.col("_startup_none")).alias("plot_startup_rel"),
            *[(pl.col(f"section_{name}_bytes").fill_null(0) / MIB).alias(f"plot_{name}_mib") for name in FILE_SECTIONS],
        )
        .drop("_startup_none", "_host_none")
    )
    native = out.filter(pl.col("target") == native_target).select(
        "run_id", "workload", "toolchain", "profile", "postlink", "base", pl.col("plot_rss_mib").alias("_rss0"),
        pl.col("host_fingerprint").alias("_host0"))
    return (out.join(native, on=["run_id", "workload", "toolchain", "profile", "postlink", "base"], how="left",
                     nulls_equal=True)
            .with_columns(pl.when(same_host_as("_host0"))
                          .then(pl.col("plot_rss_mib") / pl.col("_rss0")).alias("plot_rss_vs_native"))
            .drop("_rss0", "_host0")
            .with_columns(pl.concat_str([pl.col("plot_variant"), pl.col("plot_target"),
                                         # one machine's bars beside another's say whose they are
                                         *([escape_text(host_name())] if n_hosts(df) > 1 else [])],
                                        separator=LABEL_SEPARATOR).alias("plot_label"))
            .sort(["plot_variant", "target"]))


def platform_images(df: pl.DataFrame) -> pl.DataFrame:
    """Images of a multi-arch sweep: one row per (image, platform), with ``plot_image`` naming
    the image without its target (escaped), ``plot_platform`` and ``plot_index`` (the short
    index digest), sorted so an image's platforms sit side by side."""
    df = conform(df).filter(pl.col("image_platform").is_not_null(), pl.col("image_size_bytes").is_not_null())
    parts = [pl.col(c).cast(pl.String).fill_null("?") for c in ("workload", "toolchain", "profile", "postlink")]
    return df.with_columns(
        escape_text(pl.concat_str([*parts, pl.concat_str([pl.lit("on "), pl.col("base")])],
                                  separator=LABEL_SEPARATOR)).alias("plot_image"),
        escape_text(pl.col("image_platform")).alias("plot_platform"),
        escape_text(pl.col("oci_index_digest").fill_null("–").str.replace("sha256:", "").str.slice(0, 12))
        .alias("plot_index"),
        (pl.col("image_size_bytes") / (1024 * 1024)).alias("plot_image_mib"),
        (pl.col("oci_image_bytes") / (1024 * 1024)).alias("plot_oci_mib"),
    ).sort(["plot_image", "plot_platform"])


def containers(df: pl.DataFrame) -> pl.DataFrame:
    """One row per image variant (any status): the plain and hardened verdicts and the
    container's figures beside the same build's bare ones, as display strings."""
    data = images(df)
    verdict = {True: "works", False: "fails", None: "–"}

    def ratio(column: str) -> pl.Expr:
        return pl.when(pl.col(column).is_null()).then(pl.lit("–")).otherwise(
            pl.col(column).round(2).cast(pl.String) + pl.lit("×"))

    return data.with_columns(
        pl.col("container_ok").replace_strict(verdict, default="–", return_dtype=pl.String).alias("plot_plain"),
        pl.when(pl.col("container_ok") & pl.col("container_hardened_ok").not_())
        .then(pl.lit("fails (a finding)"))
        .otherwise(pl.col("container_hardened_ok").replace_strict(verdict, default="–", return_dtype=pl.String))
        .alias("plot_hardened"),
        escape_text(pl.col("status").fill_null("?")).alias("plot_status"),
        pl.col("startup_ms_median").round(1).cast(pl.String).fill_null("–").alias("plot_startup_ms"),
        ratio("plot_startup_ratio").alias("plot_startup_x"),
        pl.col("peak_rss_kib_median").round(0).cast(pl.Int64).cast(pl.String).fill_null("–").alias("plot_rss_kib"),
        ratio("plot_rss_ratio").alias("plot_rss_x"),
        pl.col("cgroup_peak_kib_median").round(0).cast(pl.Int64).cast(pl.String).fill_null("–")
        .alias("plot_cgroup_kib"),
        escape_text(shorten(pl.coalesce(pl.col("container_reason"), pl.col("reason")).fill_null(""), 160))
        .alias("plot_container_reason"),
    ).sort("plot_label")


def sections(df: pl.DataFrame) -> pl.DataFrame:
    """Long format: one row per (variant, file section) with ``section`` and ``bytes``.

    Besides the FILE_SECTIONS there is an UNATTRIBUTED part, the file size minus the
    sections, so each stack adds up to the real file size.
    """
    rows = measured(df).filter(pl.col("size_bytes").is_not_null())
    section_columns = [f"section_{name}_bytes" for name in FILE_SECTIONS]
    accounted = pl.sum_horizontal([pl.col(c).fill_null(0) for c in section_columns])
    rows = rows.with_columns(
        (pl.col("size_bytes") - accounted).clip(lower_bound=0).alias(f"section_{UNATTRIBUTED}_bytes")
    )
    long = rows.unpivot(
        index=["plot_label", "plot_tick", "plot_group", "plot_short", "plot_short_tick", "plot_facet",
               "plot_emulated", "target", "size_bytes"],
        on=[*section_columns, f"section_{UNATTRIBUTED}_bytes"],
        variable_name="section",
        value_name="bytes",
    )
    return (
        long.with_columns(
            pl.col("section").str.strip_prefix("section_").str.strip_suffix("_bytes"),
            pl.col("bytes").fill_null(0).cast(pl.Int64),
        )
        .with_columns(
            (pl.col("bytes") / MIB).alias("plot_mib"),
            (pl.col("bytes") / pl.col("size_bytes")).alias("plot_share"),
        )
        .sort([*FACET_ORDER, "size_bytes", "plot_label"])
    )


def status_counts(df: pl.DataFrame) -> pl.DataFrame:
    """Count rows per status: every known status (zeros included) first, then unknown ones."""
    df = conform(df)
    counts = df.group_by("status").len("count")
    known = pl.DataFrame({"status": list(STATUSES)})
    ordered = known.join(counts, on="status", how="left").with_columns(
        pl.col("count").fill_null(0)
    )
    unknown = counts.filter(~pl.col("status").is_in(STATUSES) | pl.col("status").is_null())
    return pl.concat(
        [ordered.cast({"count": pl.UInt32}), unknown.sort("status").cast({"count": pl.UInt32})]
    )


def run_ids(df: pl.DataFrame) -> list[str]:
    """The distinct run ids in the frame, sorted."""
    return sorted(v for v in conform(df)["run_id"].unique().to_list() if v is not None)


# -- post-link chains against the same build without one ---------------------------
# Two rows are "the same build" when everything but the post-link chain agrees.
BUILD_KEYS = ("run_id", "workload", "toolchain", "toolchain_version", "profile", "flags", "build_env",
              "target", "base")


def postlink_costs(df: pl.DataFrame) -> pl.DataFrame:
    """Each ok post-linked row with ratios against its build's ``none`` row.

    ``plot_size_ratio`` = size / size without a chain (the compression ratio),
    ``plot_startup_ratio`` and ``plot_rss_ratio`` the same for the start-up and peak-RSS
    medians; ``plot_startup_delta_ms`` / ``plot_rss_delta_kib`` the differences. Rows
    whose build has no ok ``none`` row are left out: there is nothing to compare with. A
    ``none`` row measured on another host gives the size ratio only (its times are another
    machine's): the timed ratios and differences are null.
    """
    rows = measured(df)
    keys = [text_of(k).fill_null("\0") for k in BUILD_KEYS]
    rows = rows.with_columns(pl.concat_str(keys, separator="\x1f").alias("_build"))
    base = rows.filter(pl.col("postlink") == "none").select(
        "_build",
        pl.col("size_bytes").alias("_size0"),
        pl.col("startup_ms_median").alias("_startup0"),
        pl.col("peak_rss_kib_median").alias("_rss0"),
        pl.col("host_fingerprint").alias("_host0"),
    ).unique("_build", keep="first")
    out = rows.filter(pl.col("postlink") != "none").join(base, on="_build", how="inner")
    same_host = same_host_as("_host0")
    return (
        out.with_columns(
            (pl.col("size_bytes") / pl.col("_size0")).alias("plot_size_ratio"),
            pl.when(same_host).then(pl.col("startup_ms_median") / pl.col("_startup0")).alias("plot_startup_ratio"),
            pl.when(same_host).then(pl.col("peak_rss_kib_median") / pl.col("_rss0")).alias("plot_rss_ratio"),
            pl.when(same_host).then(pl.col("startup_ms_median") - pl.col("_startup0")).alias("plot_startup_delta_ms"),
            pl.when(same_host).then(pl.col("peak_rss_kib_median") - pl.col("_rss0")).alias("plot_rss_delta_kib"),
            escape_text(pl.col("postlink")).alias("plot_chain"),
            pl.col("upx_level").is_not_null().alias("plot_is_upx"),
            escape_text(pl.col("profile").fill_null("?")).alias("plot_profile"),
        )
        .drop("_build", "_size0", "_startup0", "_rss0", "_host0")
        .sort(["plot_group", "plot_profile", "plot_size_ratio"], descending=[False, False, True])
    )


# -- hardening and residue -----------------------------------------------------------
def _yes_no(column: str) -> pl.Expr:
    return (pl.when(pl.col(column).is_null()).then(pl.lit("?"))
            .when(pl.col(column)).then(pl.lit("yes")).otherwise(pl.lit("no")))


def hardening(df: pl.DataFrame) -> pl.DataFrame:
    """One row per inspected variant (any status), with display strings for the table.

    All ``plot_*`` text is escaped; "?" marks a fact the file does not show (a UPX-packed
    file hides its build ID and paths; a file without symbol tables cannot tell a canary).
    """
    rows = with_labels(df).filter(pl.col("size_bytes").is_not_null())
    return rows.with_columns(
        escape_text(pl.col("status").fill_null("?")).alias("plot_status"),
        _yes_no("is_pie").alias("plot_pie"),
        pl.col("relro").fill_null("?").alias("plot_relro"),
        _yes_no("nx_stack").alias("plot_nx"),
        _yes_no("stack_canary").alias("plot_canary"),
        pl.when(pl.col("is_static").is_null()).then(pl.lit("?"))
        .when(pl.col("is_static")).then(pl.lit("static")).otherwise(pl.lit("dynamic")).alias("plot_linking"),
        (pl.col("section_dwarf_bytes").fill_null(0) / 1024).round(1).alias("plot_dwarf_kib"),
        _yes_no("has_symtab").alias("plot_symtab"),
        pl.col("leaked_paths").cast(pl.String).fill_null("?").alias("plot_leaked"),
        _yes_no("has_go_buildid").alias("plot_buildid"),
        escape_text(pl.col("go_version").fill_null("–")).alias("plot_go_version"),
        _yes_no("upx_packed").alias("plot_packed"),
    ).sort("plot_label")


# -- size per Go package ---------------------------------------------------------------
PACKAGE_COLUMNS = ("run_id", "variant_key", "package", "bytes")


def package_variants(packages: pl.DataFrame | None, df: pl.DataFrame) -> pl.DataFrame:
    """The variants that have package sizes: run_id, variant_key, total bytes, label.

    Variants that differ only in their post-link chain share one build, hence one set of
    package sizes; the ``none`` row (or else the first) stands for them.
    """
    empty = pl.DataFrame(schema={"run_id": pl.String, "variant_key": pl.String, "total": pl.Int64,
                                 "plot_label": pl.String, "plot_group": pl.String, "postlink": pl.String})
    if packages is None or packages.is_empty() or not set(PACKAGE_COLUMNS) <= set(packages.columns):
        return empty
    totals = packages.group_by("run_id", "variant_key").agg(pl.col("bytes").sum().alias("total"))
    labelled = with_labels(df).select("run_id", "variant_key", "plot_label", "plot_group", "postlink",
                                      *[k for k in BUILD_KEYS if k != "run_id"])
    joined = totals.join(labelled, on=["run_id", "variant_key"], how="left").with_columns(
        pl.col("plot_label").fill_null(escape_text(pl.col("variant_key"))),
        pl.col("plot_group").fill_null("?"),
    )
    build = [text_of(k).fill_null("\0") for k in BUILD_KEYS]
    joined = (
        joined.with_columns(pl.concat_str(build, separator="\x1f").alias("_build"),
                            (pl.col("postlink") != "none").fill_null(True).alias("_not_none"))
        .sort(["_not_none", "run_id", "variant_key"])
    )
    # Rows without a results row (a hand-made frame) keep their own identity.
    keep = joined.with_columns(
        pl.when(pl.col("postlink").is_null()).then(pl.col("variant_key")).otherwise(pl.col("_build")).alias("_build")
    ).unique("_build", keep="first", maintain_order=True)
    return keep.select(empty.columns).sort(["total", "plot_label"], descending=[True, False])


def _pick(variants: pl.DataFrame, key: str | None) -> dict | None:
    if variants.is_empty():
        return None
    if key is None:
        return variants.row(0, named=True)
    match = variants.filter(pl.col("variant_key") == key)
    return match.sort("run_id").row(-1, named=True) if not match.is_empty() else None


def package_tree(packages: pl.DataFrame | None, df: pl.DataFrame, variant_key: str | None = None):
    """(variant, tree frame) for a treemap of one variant's packages; (None, None) without data.

    The tree splits import paths at "/": ``net/http`` sits inside ``net``. Each node's
    ``bytes`` are its own code (0 for a path prefix that is no package itself).
    """
    chosen = _pick(package_variants(packages, df), variant_key)
    if chosen is None:
        return None, None
    mine = packages.filter((pl.col("run_id") == chosen["run_id"]) & (pl.col("variant_key") == chosen["variant_key"]))
    own = dict(zip(mine["package"].to_list(), mine["bytes"].to_list()))
    nodes: dict[str, int] = {}
    for package in own:
        parts = package.split("/") if not package.startswith("(") else [package]
        for depth in range(1, len(parts) + 1):
            nodes.setdefault("/".join(parts[:depth]), 0)
    for package, size in own.items():
        nodes[package] = nodes.get(package, 0) + size
    ids = list(nodes)
    parents = [("/".join(i.split("/")[:-1]) if "/" in i and not i.startswith("(") else "") for i in ids]
    tree = pl.DataFrame({"id": ids, "parent": parents, "bytes": [nodes[i] for i in ids]},
                        schema={"id": pl.String, "parent": pl.String, "bytes": pl.Int64})
    tree = tree.with_columns(
        escape_text(pl.col("id")).alias("plot_id"),
        escape_text(pl.col("parent")).alias("plot_parent"),
        escape_text(pl.col("id").str.split("/").list.last()).alias("plot_name"),
    )
    return chosen, tree


def package_diff(packages: pl.DataFrame | None, df: pl.DataFrame,
                 variant_keys: tuple[str, str] | None = None, top: int = 15):
    """(variant a, variant b, frame) of the ``top`` packages whose code size differs most.

    Without ``variant_keys``: a is the smallest and b the largest variant with package
    sizes, preferring two of one workload. ``delta`` is b - a in bytes.
    """
    variants = package_variants(packages, df)
    if variant_keys is not None:
        a, b = _pick(variants, variant_keys[0]), _pick(variants, variant_keys[1])
    else:
        a = b = None
        for _, group in variants.group_by("plot_group", maintain_order=True):
            if group["total"].n_unique() >= 2:
                a, b = group.row(-1, named=True), group.row(0, named=True)
                break
        if a is None and variants["total"].n_unique() >= 2:
            a, b = variants.row(-1, named=True), variants.row(0, named=True)
    if a is None or b is None:
        return None, None, None

    def sizes(v: dict) -> pl.DataFrame:
        return packages.filter((pl.col("run_id") == v["run_id"]) & (pl.col("variant_key") == v["variant_key"])) \
            .group_by("package").agg(pl.col("bytes").sum())

    both = sizes(a).join(sizes(b), on="package", how="full", suffix="_b", coalesce=True).select(
        "package", pl.col("bytes").fill_null(0).alias("bytes_a"), pl.col("bytes_b").fill_null(0).alias("bytes_b")
    )
    diff = (
        both.with_columns((pl.col("bytes_b") - pl.col("bytes_a")).alias("delta"))
        .filter(pl.col("delta") != 0)
        .sort([pl.col("delta").abs(), pl.col("package")], descending=[True, False])
        .head(top)
        .with_columns(
            escape_text(pl.col("package")).alias("plot_package"),
            escape_text(shorten(pl.col("package"), TICK_MAX_CHARS)).alias("plot_tick"),
        )
    )
    return a, b, diff


# -- outliers in the timed starts (the report's warnings) ---------------------------------
# hyperfine's rule (src/outlier_detection.rs, after Iglewicz and Hoaglin): a start is an outlier
# when its modified Z-score |x - median| / MAD exceeds 1.4826 · 10, i.e. it lies more than ten
# standard deviations (estimated robustly from the MAD) from the median.
OUTLIER_THRESHOLD = 1.4826 * 10.0
OUTLIER_MIN_SAMPLES = 5  # fewer starts have no median absolute deviation worth the name
SAMPLE_KEYS = ("run_id", "variant_key")


def outliers(df: pl.DataFrame, samples: pl.DataFrame | None) -> pl.DataFrame:
    """Variants whose start-up samples hold outliers by hyperfine's rule (OUTLIER_THRESHOLD),
    as it warns "Statistical outliers were detected": ``plot_label``, ``n``,
    ``n_outliers``, ``median_ms``, ``max_ms``, ``min_ms``, most outliers first. A start
    that waited for a CPU (a busy host) or for the disk (a cold cache) lands there."""
    empty = pl.DataFrame(schema={"run_id": pl.String, "variant_key": pl.String, "plot_label": pl.String,
                                 "n": pl.UInt32, "n_outliers": pl.UInt32, "median_ms": pl.Float64,
                                 "max_ms": pl.Float64, "min_ms": pl.Float64})
    if samples is None or samples.is_empty() or not {*SAMPLE_KEYS, "startup_ms"} <= set(samples.columns):
        return empty
    x = pl.col("startup_ms")
    keys = list(SAMPLE_KEYS)
    deviation = (x - x.median().over(keys)).abs()
    centred = samples.filter(x.is_not_null()).with_columns(deviation.alias("_dev")).with_columns(
        pl.col("_dev").median().over(keys).alias("_mad"))
    # As hyperfine: with a MAD of 0 any start off the median is an outlier, one on it is not.
    flagged = pl.when(pl.col("_mad") > 0).then(pl.col("_dev") / pl.col("_mad") > OUTLIER_THRESHOLD) \
        .otherwise(pl.col("_dev") > 0)
    per_variant = centred.group_by(keys).agg(
        pl.len().alias("n"), flagged.sum().cast(pl.UInt32).alias("n_outliers"), x.median().alias("median_ms"),
        x.max().alias("max_ms"), x.min().alias("min_ms"),
    ).filter((pl.col("n") >= OUTLIER_MIN_SAMPLES) & (pl.col("n_outliers") > 0))
    if per_variant.is_empty():
        return empty
    labels = with_labels(df).select(*keys, "plot_label").unique(keys, keep="first")
    return (per_variant.join(labels, on=keys, how="left")
            .with_columns(pl.col("plot_label").fill_null(escape_text(pl.col("variant_key"))))
            .sort(["n_outliers", "plot_label"], descending=[True, False])
            .select(empty.columns))
