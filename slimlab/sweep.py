"""Run a sweep: every variant through build -> post-link -> inspect -> check -> measure.

Variants are prepared one by one (a failure becomes a row and the sweep goes on), then
measured in interleaved rounds, each round visiting every variant once in a shuffled
order, so drift on a noisy machine hits all variants alike. Everything finished is in
the run's journal at once; re-running with the same run id resumes.
"""

from __future__ import annotations

import random
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from . import checkenv, environment, libs, pkgsize, postlink, toolchains, workloads
from .build import build, default_cache_dir
from .errors import ToolError
from .inspect import build_path_prefixes, inspect_binary
from .measure import CheckFailure, Runner, Sample, check_and_sample, launcher_path, runner_for, summarize, take_sample
from .results import CAPABILITIES, RunStore, new_run_id, now_utc, write_capabilities
from .results_schema import SCHEMA_VERSION
from .spec import SweepSpec
from .targets import TARGETS
from .toolchains import ToolchainInfo
from .variants import Variant, expand


@dataclass
class _Ready:
    """A variant that built and passed its functional check: waiting for timed samples."""

    variant: Variant
    workload: workloads.Workload
    runner: Runner
    binary: Path
    row: dict


@dataclass(frozen=True)
class Plan:
    spec: SweepSpec
    variants: list[Variant]
    workloads: dict[str, workloads.Workload]
    toolchains: dict[str, toolchains.Toolchain]
    infos: dict[str, ToolchainInfo | None]  # None: missing, its variants are unsupported


def plan(spec: SweepSpec | dict | str | Path, progress: bool = True) -> Plan:
    """Validate everything and find (or install) every tool, before any work starts."""
    spec = SweepSpec.load(spec)
    found = {name: workloads.resolve(name, spec.base_dir) for name in spec.workloads}
    adapters = {name: toolchains.get(name) for name in spec.toolchains}
    infos = {}
    for name, adapter in adapters.items():
        adapter.ensure(progress)  # a Go release from PyPI is installed here, once
        info = adapter.detect()
        if info is None and adapter.missing_is_error:
            raise ToolError(f"toolchain {name!r} not found; install it with: {adapter.install_hint()}")
        infos[name] = info
    return Plan(spec, expand(spec), found, adapters, infos)


def sweep(
    spec: SweepSpec | dict | str | Path,
    data_dir: str | Path = "data",
    run_id: str | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Run (or resume) a sweep; returns the run directory."""
    the_plan = plan(spec, progress)
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    launcher_path(cache)  # compile the launcher now: a missing cc fails before any build
    context = {
        "tools": {
            **environment.python_tools(),
            **{f"toolchain:{n}": (i.version if i else "missing") for n, i in the_plan.infos.items()},
            **postlink.tool_versions(),
        },
        "host": environment.host(),
    }
    store = RunStore.open(Path(data_dir), run_id or new_run_id(), the_plan.spec.to_dict(), context)
    pending = [v for v in the_plan.variants if not store.done(v.key)]
    bar = tqdm(total=len(pending), desc="build+check", unit="variant", disable=not progress, file=sys.stderr)
    ended = False
    try:
        with tempfile.TemporaryDirectory(prefix="slimlab-postlink-") as workdir:
            ready = []
            for variant in pending:
                bar.set_postfix_str(variant.label, refresh=False)
                outcome = _prepare(the_plan, variant, store, cache, Path(workdir))
                if outcome is not None:
                    ready.append(outcome)
                bar.update()
            bar.close()
            _measure(ready, store, the_plan.spec, cache, progress)
        if the_plan.spec.probe and not (store.run_dir / CAPABILITIES).is_file():
            from .probe import run_probes

            write_capabilities(store.run_dir, run_probes(list(the_plan.spec.toolchains), cache_dir=cache))
        ended = True
    finally:
        bar.close()
        store.close(ended=ended)
    return store.run_dir


def _base_row(store: RunStore, variant: Variant, info: ToolchainInfo | None) -> dict:
    chain = postlink.get_chain(variant.postlink)
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": store.manifest["run_id"],
        "variant_key": variant.key,
        **variant.axes(),
        "toolchain_version": info.version if info else None,
        "upx_level": chain.upx_level,
        "postlink_steps": list(chain.steps),
        "base": None,
        "emulated": not TARGETS[variant.target].is_native,
        "measured_at": None,
    }


def _finish(store: RunStore, row: dict, status: str, reason: str | None = None) -> None:
    row.update(status=status, reason=reason, measured_at=now_utc().isoformat())
    store.add_row(row)


def _prepare(the_plan: Plan, variant: Variant, store: RunStore, cache: Path, workdir: Path) -> _Ready | None:
    """Build, post-link, inspect and check one variant. Returns it ready to time, or records why not."""
    spec = the_plan.spec
    info = the_plan.infos[variant.toolchain]
    row = _base_row(store, variant, info)
    if variant.unsupported:
        return _finish(store, row, "unsupported", variant.unsupported)
    adapter = the_plan.toolchains[variant.toolchain]
    if info is None:
        return _finish(store, row, "unsupported",
                       f"{variant.toolchain} is not installed; install it with: {adapter.install_hint()}")
    chain = postlink.get_chain(variant.postlink)
    missing = postlink.unsupported_reason(chain)  # e.g. no upx: say how to install it
    if missing:
        return _finish(store, row, "unsupported", missing)
    workload = the_plan.workloads[variant.workload]
    target = TARGETS[variant.target]
    built = build(workload, adapter, info, spec.all_profiles()[variant.profile], target, cache, spec.build_timeout_s)
    row.update(build_seconds=built.seconds, build_cached=built.cached, flags=built.flags, build_env=built.profile_env)
    if not built.ok:
        return _finish(store, row, "timeout" if built.timed_out else "build_failed", built.reason)
    # Package sizes come from the build itself (before strip/UPX), while it has .symtab.
    packages, row["packages_source"] = pkgsize.package_rows(built.binary)
    if packages:
        store.add_packages(variant.key, packages)
    linked = postlink.apply(chain, built.binary, workdir, cache_dir=cache, timeout=spec.build_timeout_s)
    row.update(linked.columns())
    if not linked.ok:
        return _finish(store, row, "postlink_failed", linked.reason)
    row.update(inspect_binary(linked.binary, build_paths=build_path_prefixes(workload.source_dir, info.path)))
    row["needed_libs_bytes"] = libs.needed_bytes(row["needed_libs"], target)
    runner = runner_for(target)
    if isinstance(runner, str):
        return _finish(store, row, "unsupported", runner)
    row["runner"] = runner.name
    # The check runs twice. First with the sweep's own environment (os.environ, passed on
    # by the launcher, plus the workload's env): what a shell or CI job gives a program.
    # Then with a crowded one, as a Kubernetes pod gets (see checkenv): UPX-packed Go
    # binaries are known to crash with large environments, and a check in an empty or
    # small environment would call them "ok".
    for label, checked in (("", workload), (checkenv.LABEL, checkenv.crowded(workload))):
        try:
            check_and_sample(checked, runner, linked.binary, spec.run_timeout_s)
        except CheckFailure as failure:
            return _finish(store, row, failure.status, label + failure.reason)
    return _Ready(variant, workload, runner, linked.binary, row)


def _measure(ready: list[_Ready], store: RunStore, spec: SweepSpec, cache: Path, progress: bool) -> None:
    """Timed samples in interleaved rounds until every variant has ``spec.repeats``."""
    todo = sum(spec.repeats - min(store.sample_count(r.variant.key), spec.repeats) for r in ready)
    bar = tqdm(total=todo, desc="measure", unit="run", disable=not progress, file=sys.stderr)
    active = []
    for item in ready:
        try:
            for _ in range(spec.warmup):  # warm the page cache and CPU state; not recorded
                take_sample(item.workload, item.runner, item.binary, spec.run_timeout_s)
            active.append(item)
        except CheckFailure as failure:
            _finish(store, item.row, failure.status, f"warm-up: {failure.reason}")
    shuffle = random.Random(0)
    while active:
        shuffle.shuffle(active)
        for item in list(active):
            key = item.variant.key
            index = store.sample_count(key)
            if index < spec.repeats:
                try:
                    sample = take_sample(item.workload, item.runner, item.binary, spec.run_timeout_s)
                except CheckFailure as failure:
                    active.remove(item)
                    _finish(store, item.row, failure.status, f"sample {index + 1}: {failure.reason}")
                    continue
                store.add_sample(_sample_record(store, key, index, sample))
                bar.update()
            if store.sample_count(key) >= spec.repeats:
                active.remove(item)
                item.row.update(_summary(store.samples[key][: spec.repeats]))
                _finish(store, item.row, "ok")
    bar.close()


def _sample_record(store: RunStore, key: str, index: int, sample: Sample) -> dict:
    return {
        "run_id": store.manifest["run_id"],
        "variant_key": key,
        "sample_index": index,
        "startup_ms": sample.startup_ms,
        "peak_rss_kib": sample.peak_rss_kib,
        "ready_rss_kib": sample.ready_rss_kib,
        "exit_code": sample.exit_code,
    }


def _summary(samples: list[dict]) -> dict:
    startup = summarize([s["startup_ms"] for s in samples])
    rss = summarize([s["peak_rss_kib"] for s in samples])
    ready = summarize([s["ready_rss_kib"] for s in samples])
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
    }
