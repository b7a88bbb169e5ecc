"""Run a sweep: plan -> discover tools -> prepare every variant -> measure -> results.

Variants are prepared (build, post-link, inspect, check) by the spec's executor (slimlab.executor:
a local process pool by default, or Dask): workers hand back each variant as data and this
process alone journals it, then builds its image when it has a base. Variants that share a
build wait for the first of them, so every build runs once and reads as it would one by one.
Whatever goes wrong
in a stage, a refusing tool, a crash or a hang, becomes that variant's row with the
stage's status and the reason, and the sweep goes on. Ready variants are then measured
in interleaved rounds, each round visiting every variant once in a shuffled order, so
drift on a noisy machine hits all variants alike; nothing is prepared while measuring.
Everything finished is in the run's journal at once; re-running with the same run id
resumes.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import copy
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import polars as pl
from elftools.common.exceptions import ELFError

from . import (bases, buildinfo, cache as cache_, checkenv, engine, environment, image, libs, oci, pkgsize, postlink,
               supply, toolchains, tools)
from . import executor as executor_
from .build import build, default_cache_dir
from .build import cached as cached_build
from .errors import SlimlabError, ToolError
from .faults import MachineError, check_writable, machine_cause, stopped_message
from .history import record_run, seconds_per_variant
from .elf import build_path_prefixes, inspect
from .measure import (CheckFailure, Limits, Runner, Sample, calibrate_overhead, containment_probe,
                      launcher_path, runner_for, unlimited_warning)
from .measure.container import ContainerRunner
from .measure.crosscheck import crosscheck
from .model import TARGETS, Plan, SamplingRule, SweepSpec, Variant, get_chain
from .model import plan
from .progress import tqdm  # widgets in JupyterLab, lines under papermill
from .results import CAPABILITIES, MANIFEST, RunStore, check_resumable, now_utc, write_capabilities
from .results import data_dir as results_data_dir
from .results_schema import MACHINE_ERROR
from .runlock import RunLock
from .sampling import next_burst, noise_floor, precision_columns, projected_starts
from .rows import (Row, base_row, build_columns, container_columns, image_columns, index_columns, inspect_columns,
                   oci_columns, postlink_columns, sbom_columns, summary_columns, vuln_columns)
from .workloads import Workload, resolve

# What a stage's unexpected failure is recorded as. Failures a stage expects (a compile
# error, a refusing UPX, a wrong answer) it reports itself, with its own status.
PROGRAM_STATUSES = ("broken", "timeout")  # failures whose reason may quote the measured program
STAGE_STATUS = {"build": "build_failed", "postlink": "postlink_failed", "inspect": "broken", "check": "broken",
                "image": "build_failed", "measure": "broken"}
# What a stage may raise that is about the variant or its tools, not a bug in slimlab.
STAGE_ERRORS = (SlimlabError, OSError, ELFError, subprocess.SubprocessError, UnicodeError)
# Starts of one variant taken back to back per round (after one untimed start).
MEASURE_BURST = 5
# Boots of a full-system guest per target at most: its plan is fixed when the guest is made, so
# adaptive sampling decides between boots (the first takes min_repeats, the next what the
# interval projects, the last corrects a projection that fell short).
GUEST_BOOTS = 3
TRACE_ENV = "SLIMLAB_TRACE"  # see trace()


class StageFailure(Exception):
    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class Prepared:
    """One variant as a worker hands it back: plain data, journaled by the sweep alone."""

    variant: Variant
    row: Row
    packages: list[dict] | None = None  # its build's package sizes: journaled even when a later stage fails
    failure: tuple[str, str] | None = None  # (status, reason): the row is final
    runner: Runner | None = None
    built: Path | None = None  # the build's binary
    binary: Path | None = None  # the one that ships, after post-link
    started: float = 0.0  # time.time() on the worker, for the trace
    ended: float = 0.0
    worker: str = ""  # host:pid
    build_key: str | None = None  # the build's artifact cache key
    files: dict[str, bytes] | None = None  # from a worker on another machine: "built", "binary", "sbom"
    address: str | None = None  # the Dask worker's, when one prepared it
    on_worker: tuple | None = None  # (address, runner, binary) as that worker has them, kept by the sweep


@dataclass
class _Ready:
    """A variant that built and passed its functional check: waiting for timed samples."""

    variant: Variant
    workload: Workload
    runner: Runner
    binary: Path
    row: Row
    # measure_on = "workers": the Dask worker that prepared it (its address), with its runner and binary there.
    on_worker: tuple[str, Runner, Path] | None = None


def sweep(
    spec: SweepSpec | dict | str | Path,
    data_dir: str | Path | None = None,
    run_id: str | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    executor: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    measure_on: str | None = None,
    yes: bool = False,
) -> Path:
    """Run (or resume) a sweep into ``data_dir`` (None: slimlab.results.data_dir()); returns the run
    directory. ``executor``, ``workers``, ``scheduler`` and ``measure_on`` override the spec's
    (model.spec.EXECUTORS, MEASURE_ON): how it runs, not what. ``yes``: run a spec of more than its
    ``max_variants`` variants (refused otherwise, with their count and the time they would take).

    The run directory is locked for the life of the sweep (slimlab.runlock): a second sweep of the
    same run id is refused. A failure of the machine (a full disk, ...) stops the sweep with a
    MachineError, its variants' rows machine_error (slimlab.faults); a resume retries them."""
    data_dir = results_data_dir(data_dir)
    the_plan = plan(spec)
    the_plan = replace(the_plan, spec=the_plan.spec.with_execution(executor, workers, scheduler, measure_on))
    check_size(the_plan, Path(data_dir), yes)
    check_resumable(Path(data_dir), run_id, the_plan.spec.to_dict())  # before any work: a bad id is bad input
    spec = the_plan.spec
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    check_writable(Path(data_dir) / "runs", "data directory", "give another with --data (or $SLIMLAB_DATA)")
    check_writable(cache, "cache directory", "set $SLIMLAB_CACHE to a writable directory")
    # Taken before any work and held to the end; a fresh automatic id is locked when the store makes it.
    lock = RunLock.acquire(Path(data_dir) / "runs" / run_id) if run_id is not None else None
    try:
        # A silent scheduler is an error before any work; a LocalCluster starts only when there is work.
        dask = spec.executor == "dask"
        client = executor_.connect(spec.executor, spec.scheduler, spec.workers) if dask else None
        try:
            return _sweep(the_plan, data_dir, run_id, cache, progress, client, lock)
        finally:
            executor_.disconnect(client)
    finally:
        if lock is not None:
            lock.release(drop_empty=True)


def writes_of(cache: Path, data_dir: Path) -> tuple[Path, ...]:
    """The directories a sweep writes: where a tool's word of a full or read-only disk is checked
    (faults.machine_cause). Go's own build cache is in the user's cache directory unless $GOCACHE
    says otherwise."""
    go_cache = os.environ.get("GOCACHE") or os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache), Path(data_dir), Path(tempfile.gettempdir()), Path(go_cache)


def _sweep(the_plan: Plan, data_dir, run_id: str | None, cache: Path, progress: bool, client,
           lock: RunLock | None) -> Path:
    """sweep() once its spec is settled, its run locked and its Dask cluster (if any) answered."""
    opened: dict[str, str] = {}  # "run_id", once the store made the run (an automatic id has one then)
    if run_id is not None and (Path(data_dir) / "runs" / run_id / MANIFEST).is_file():
        opened["run_id"] = run_id  # a resume: earlier sessions measured
    try:
        return _sweep_locked(the_plan, data_dir, run_id, cache, progress, client, lock, opened)
    except MachineError:
        raise
    except Exception as exc:
        cause = machine_cause(exc, writes_of(cache, data_dir))
        if cause is None:
            raise
        raise MachineError(stopped_message(cause, opened.get("run_id", run_id), rows=False,
                                           started="run_id" in opened)) from exc


def _sweep_locked(the_plan: Plan, data_dir, run_id: str | None, cache: Path, progress: bool, client,
                  lock: RunLock | None, opened: dict[str, str]) -> Path:
    found = tools.discover(the_plan.spec, cache, progress)
    launcher_path(cache)  # compile the launcher now: a missing cc fails before any build
    host = environment.host()
    context = {"tools": found.manifest(), "host": host}
    store = RunStore.open(Path(data_dir), run_id, the_plan.spec.to_dict(), context, lock)  # None: a fresh id
    opened["run_id"] = store.manifest["run_id"]
    # How this machine contains bare runs (a cgroup with the spec's limits, or why not).
    containment = store.manifest["sessions"][-1]["containment"] = containment_probe(Limits.of(the_plan.spec))
    if (unlimited := unlimited_warning(containment)) is not None:
        print(f"slimlab: {unlimited}", file=sys.stderr)
    if progress:  # an interrupted user needs the id to resume
        print(f"slimlab: run {store.manifest['run_id']} in {store.run_dir}", file=sys.stderr)
    sweeper = _Sweeper(the_plan, found, store, cache, host["hostname"], client)
    pending = [v for v in the_plan.variants if not store.done(v.key)]
    ended = False
    try:
        with tempfile.TemporaryDirectory(prefix="slimlab-postlink-") as workdir:
            preparer = _Preparer(the_plan.spec, found, cache, host["hostname"], store.manifest["run_id"],
                                 store.run_dir, Path(workdir), sweeper.vulndb(pending),
                                 environment.host_fingerprint(host))
            sweeper.preparer = preparer
            ready = sweeper.prepare_all(pending, progress)
            if sweeper.machine_fault is not None:  # what is prepared is measured by the resume, not here
                raise MachineError(stopped_message(sweeper.machine_fault, store.manifest["run_id"]))
            sweeper.index_rows(ready)
            sweeper.measure(ready, progress)
        if sweeper.machine_fault is not None:  # a variant the machine failed while measuring
            raise MachineError(stopped_message(sweeper.machine_fault, store.manifest["run_id"]))
        if the_plan.spec.probe and not (store.run_dir / CAPABILITIES).is_file():
            from .probe import run_probes

            matrix = run_probes(list(the_plan.spec.toolchains), cache_dir=cache)
            image_bases = [b for b in the_plan.spec.bases if b != "none"]
            if image_bases and sweeper.api is not None:  # the engine answered for this sweep's images
                from .baseprobe import run_base_probes

                matrix = pl.concat([matrix, run_base_probes(image_bases, sweeper.api, cache)])
            write_capabilities(store.run_dir, matrix)
        ended = True
    except Exception as exc:  # the runs index calls the run failed, and says why
        store.manifest["sessions"][-1]["error"] = f"{type(exc).__name__}: {exc}"
        cause = machine_cause(exc, sweeper.writes)
        if cause is not None and not isinstance(exc, MachineError):
            raise MachineError(stopped_message(cause, store.manifest["run_id"], rows=False)) from exc
        raise
    finally:
        # Each step runs whatever the one before raised: a store that cannot close (a full disk)
        # still leaves the run in the index and the engine's client and a LocalCluster closed.
        try:
            try:
                store.close(ended=ended)
            except OSError as exc:  # a full disk while failing already: the journal has every record
                if ended or machine_cause(exc, sweeper.writes) is None:
                    raise
            finally:
                record_run(data_dir, store.run_dir)  # in the runs index, interrupted or not
        finally:
            sweeper.close()
    if progress:
        print(f"slimlab: {_summary(store.rows.values())}", file=sys.stderr)
    return store.run_dir


# What a variant takes when the data directory has no finished run to say (a cached build, its
# checks and 10-20 timed starts of a CLI; builds take longer): README, "CLI".
SECONDS_PER_VARIANT = 2.0


def check_size(the_plan: Plan, data_dir: Path, yes: bool) -> None:
    """SlimlabError when the plan has more variants than the spec's max_variants and ``yes`` is
    not given: their count and the time they would take, before any work."""
    count, allowed = len(the_plan.variants), the_plan.spec.max_variants
    if count <= allowed or yes:
        return
    measured = seconds_per_variant(data_dir)
    rate, basis = ((measured, f"{measured:.1f} s a variant, as the finished runs of {data_dir} took")
                   if measured is not None else
                   (SECONDS_PER_VARIANT, f"about {SECONDS_PER_VARIANT:g} s a variant with cached builds; "
                                         f"more where it compiles"))
    raise SlimlabError(f"the spec expands to {count:,} variants, more than max_variants ({allowed:,}): about "
                       f"{_duration(count * rate)} ({basis}). Run it anyway with --yes (or max_variants = "
                       f"{count} in the spec), or narrow its axes or add excludes")


def _duration(seconds: float) -> str:
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min" if hours else f"{max(minutes, 1)} min"


def _summary(rows) -> str:
    """How the variants ended, and how many builds the artifact cache saved (a re-run of an
    unchanged spec with unchanged tools compiles nothing)."""
    rows = list(rows)
    statuses = [row["status"] for row in rows]
    counts = ", ".join(f"{statuses.count(s)} {s}" for s in dict.fromkeys(sorted(statuses)))
    built = [row.get("build_cached") for row in rows if row.get("build_cached") is not None]
    return (f"{len(rows)} variant{'' if len(rows) == 1 else 's'} ({counts or 'none'}); "
            f"builds: {sum(built)} reused from the cache, {len(built) - sum(built)} compiled")


class _Preparer:
    """The preparation stages of one variant, without the run's store: what a worker runs.

    Pickles (the plan's data, the tools found, paths): a pool sends it to each worker once.
    ``vulndb``: the spec's vulnerability database's digest, or why it could not be read.
    """

    def __init__(self, spec: SweepSpec, found: tools.Tools, cache: Path, host: str, run_id: str, run_dir: Path,
                 workdir: Path, vulndb: str | StageFailure | None, fingerprint: str | None = None) -> None:
        self.spec, self.tools, self.cache, self.host = spec, found, cache, host
        self.fingerprint = fingerprint  # of the host that measures (environment.host_fingerprint)
        self.run_id, self.run_dir = run_id, run_dir  # SBOMs are written into the run directory
        self.workdir = workdir  # where post-link steps stage their files
        self.vulndb = vulndb
        self.workloads = {name: resolve(name, spec.base_dir) for name in spec.workloads}
        self.token: str | None = None  # Dask: names the file that tells a worker it shares this cache

    def cached_here(self, variant: Variant) -> bool:
        """Whether this machine's cache holds the variant's build and post-link output: a Dask
        sweep then prepares it here, and nothing is built again anywhere."""
        info = self.tools.infos[variant.toolchain]
        if info is None:
            return False
        built = cached_build(self.workloads[variant.workload], self.tools.adapters[variant.toolchain], info,
                             self.spec.all_profiles()[variant.profile], TARGETS[variant.target], self.cache)
        try:
            return built is not None and postlink.cached(get_chain(variant.postlink), built, self.cache)
        except (OSError, ELFError):
            return False

    def failed(self, variant: Variant, status: str, reason: str) -> Prepared:
        """A variant whose preparation ended before any stage: its row says why."""
        out = Prepared(variant, base_row(self.run_id, variant, None, self.host, self.fingerprint),
                       failure=(status, reason))
        out.started = out.ended = time.time()
        return out

    def prepare(self, variant: Variant) -> Prepared:
        """One variant made ready to time (the image excepted), or with the failure that ends its row."""
        started = time.time()
        info = self.tools.infos[variant.toolchain]
        if info is not None:  # the compiler that builds for this target (a cross gccgo is its own)
            info = self.tools.adapters[variant.toolchain].info_for(info, TARGETS[variant.target])
        out = Prepared(variant, base_row(self.run_id, variant, info, self.host, self.fingerprint))
        try:
            self._prepare(variant, out)
        except StageFailure as failure:
            out.failure = (failure.status, failure.reason)
        out.started, out.ended, out.worker = started, time.time(), f"{self.host}:{os.getpid()}"
        return out

    def _prepare(self, variant: Variant, out: Prepared) -> None:
        """The stages that need no engine, filling in ``out``; a StageFailure says which one failed."""
        spec, target, row = self.spec, TARGETS[variant.target], out.row
        adapter, info = self.tools.adapters[variant.toolchain], self.tools.infos[variant.toolchain]
        profile = spec.all_profiles()[variant.profile]
        chain = get_chain(variant.postlink)
        if info is None:
            raise StageFailure("unsupported", f"{variant.toolchain} is not installed; "
                                              f"install it with: {adapter.install_hint()}")
        unsupported = adapter.unsupported_reason(profile, target) or postlink.unsupported_reason(chain, target)
        if unsupported:  # e.g. a missing cross compiler or upx: say how to install it
            raise StageFailure("unsupported", unsupported)
        workload = self.workloads[variant.workload]

        built = _stage("build", build, workload, adapter, info, profile, target, self.cache, spec.build_timeout_s)
        row.update(build_columns(built))  # with the version of the compiler that built for this target
        out.build_key = built.key
        if not built.ok:
            raise StageFailure("timeout" if built.timed_out else "build_failed", built.reason)
        # Package sizes come from the build itself (before strip/UPX), while it has .symtab.
        packages, row["packages_source"] = _stage("inspect", pkgsize.package_rows, built.binary)
        out.packages = packages or None

        linked = _stage("postlink", postlink.apply, chain, built.binary, self.workdir,
                        cache_dir=self.cache, timeout=spec.build_timeout_s)
        row.update(postlink_columns(linked))
        if not linked.ok:
            raise StageFailure("postlink_failed", linked.reason)

        row.update(_stage("inspect", self._inspect, workload, info, target, built.binary, linked.binary))
        row.update(self._scan(linked.binary))
        if variant.base == "none":  # an image's SBOM, with its base's packages, is written with the image
            row.update(_stage("inspect", self._sbom, variant, target, built.binary, linked.binary))
        # An image's program runs in its container (another CPU's through binfmt QEMU user
        # mode): the bare check before it is QEMU user mode's too, whatever the spec's runner.
        choice = spec.runner_of(variant.target) if variant.base == "none" else "qemu-user"
        runner = runner_for(target, launcher_path(self.cache), choice, self.cache, Limits.of(spec))
        if isinstance(runner, str):
            raise StageFailure("unsupported", runner)
        row.update(runner=runner.name, memory_scope=runner.memory_scope)
        out.runner, out.built, out.binary = runner, built.binary, linked.binary
        if getattr(runner, "batch", False):  # a guest checks it in the boot that measures it (_guests)
            row["qemu_user_check"] = self._user_mode_verdict(workload, target, linked.binary)
            return
        # The check runs twice. First with the sweep's own environment (os.environ, passed on
        # by the launcher, plus the workload's env): what a shell or CI job gives a program.
        # Then with a crowded one, as a Kubernetes pod gets (see checkenv): UPX-packed Go
        # binaries are known to crash with large environments, and a check in an empty or
        # small environment would call them "ok".
        for label, checked in (("", workload), (checkenv.LABEL, checkenv.crowded(workload))):
            try:
                sample = _stage("check", runner.check, checked, linked.binary, spec.run_timeout_s)
            except CheckFailure as failure:
                _note_escaped(row, failure.escaped)
                raise StageFailure(failure.status, label + failure.reason) from failure
            _note_escaped(row, sample.escaped_processes)
        # An image (a base other than "none") is built and checked by the sweep itself (_Sweeper.accept).

    def _user_mode_verdict(self, workload: Workload, target, binary: Path) -> str | None:
        """The quick functional check under QEMU user mode too, beside the guest's: "ok" or why
        not. Both verdicts go into the row: a crash under one emulator only is the emulator's."""
        user = runner_for(target, launcher_path(self.cache), "qemu-user", limits=Limits.of(self.spec))
        if isinstance(user, str):
            return None
        for label, checked in (("", workload), (checkenv.LABEL, checkenv.crowded(workload))):
            try:
                _stage("check", user.check, checked, binary, self.spec.run_timeout_s)
            except CheckFailure as failure:
                return f"{failure.status}: {label}{failure.reason}"
            except StageFailure as failure:
                return f"{failure.status}: {label}{failure.reason}"
        return "ok"

    def _scan(self, binary: Path) -> dict:
        """govulncheck's findings for the binary that ships; a scan that cannot run is said in
        the row (vuln_reason) and the variant goes on."""
        if self.spec.vulndb is None:
            return vuln_columns(supply.VulnScan(False, reason=supply.NO_DB_REASON))
        if isinstance(self.vulndb, StageFailure):  # the database could not be read: say so in every row
            return vuln_columns(supply.VulnScan(False, reason=self.vulndb.reason))
        db = Path(self.spec.vulndb)
        try:
            found = supply.scan(self.tools.govulncheck, self.tools.versions["govulncheck"], binary, db,
                                self.vulndb, self.cache, self.spec.build_timeout_s)
        except (*STAGE_ERRORS, ValueError) as exc:  # ValueError: JSON that is not govulncheck's or the db's
            found = supply.VulnScan(False, reason=f"govulncheck: {type(exc).__name__}: {exc}")
        return vuln_columns(found)

    def _sbom(self, variant: Variant, target, built_binary: Path, binary: Path, tag: str | None = None,
              packages: tuple[str, ...] = ()) -> dict:
        """The variant's CycloneDX SBOM in the run directory (sbom/). Modules come from the build
        before post-link: UPX hides the build info, not the modules it packs."""
        try:
            info = buildinfo.read(built_binary)
        except (buildinfo.UnsupportedBuildInfo, ValueError):
            info = None
        archs = bases.deb_architectures(variant.base, target, self.cache) if packages else {}
        debs = [supply.DebPackage(name, version, archs.get(name, "")) for name, _, version in
                (p.partition("=") for p in packages)]
        out = self.run_dir / "sbom" / supply.file_name(variant.key)
        found = supply.write_sbom(out, binary=binary, info=info, name=_image_name(self.workloads[variant.workload]),
                                  image=tag, packages=debs, distro=supply.host_distro() if debs else None)
        return sbom_columns(found, self.run_dir)

    def _inspect(self, workload: Workload, info, target, built: Path, linked: Path) -> dict:
        # UPX hides the program header a loader reads: how the program links (static or not,
        # which libraries) is that of the build, before post-link.
        found = inspect(linked, build_paths=build_path_prefixes(workload.source_dir, info.path), linkage_of=built)
        return {**inspect_columns(found), "needed_libs_bytes": libs.needed_bytes(list(found.needed_libs), target)}


def _prepare_one(preparer: _Preparer, variant: Variant) -> Prepared:
    """A pool's task (slimlab.executor): module-level, so it pickles by name."""
    return preparer.prepare(variant)


# A Dask worker's toolchains, as it found them (one detect() per worker process).
_WORKER_TOOLCHAINS: dict[str, object] = {}


def _prepare_remote(preparer: _Preparer, variant: Variant) -> Prepared:
    """A Dask task: the variant prepared on whichever worker took it.

    A worker on this machine, or one that shares its cache directory, builds into the cache
    and writes the SBOM into the run directory as a local worker does. Any other worker uses
    its own cache and work directory and sends the files back (Prepared.files) for the sweep
    to keep by hash. A worker whose toolchain is missing or another release than the one the
    sweep found makes the variant an ``unsupported`` row that names the worker.
    """
    import socket

    from distributed import get_worker

    address = get_worker().address
    worker = f"{socket.gethostname()} ({address})"
    found = _WORKER_TOOLCHAINS.get(variant.toolchain)
    if found is None:
        # Found afresh, as on this worker's PATH (the sweep's adapter holds its own host's paths).
        found = _WORKER_TOOLCHAINS[variant.toolchain] = toolchains.get(variant.toolchain).detect() or "missing"
    wanted = preparer.tools.infos[variant.toolchain]
    if wanted is not None and (found == "missing" or found.identity != wanted.identity):
        have = "does not have it" if found == "missing" else f"has {found.version}"
        return preparer.failed(variant, "unsupported",
                               f"worker {worker} lacks {variant.toolchain} {wanted.version} ({have}); install it "
                               f"there: {preparer.tools.adapters[variant.toolchain].install_hint()}")
    if preparer.token and (preparer.cache / f".client-{preparer.token}").is_file():
        prepared = preparer.prepare(variant)
        prepared.worker, prepared.address = worker, address
        return prepared
    with tempfile.TemporaryDirectory(prefix="slimlab-worker-") as tmp:
        here = copy.copy(preparer)
        here.cache, here.run_dir, here.workdir = default_cache_dir(), Path(tmp), Path(tmp)
        prepared = here.prepare(variant)
        prepared.worker, prepared.address = worker, address
        files = {}
        if prepared.built is not None:
            files["built"] = prepared.built.read_bytes()
        if prepared.binary is not None and prepared.binary != prepared.built:
            files["binary"] = prepared.binary.read_bytes()
        if prepared.row.get("sbom_path") and (here.run_dir / prepared.row["sbom_path"]).is_file():
            files["sbom"] = (here.run_dir / prepared.row["sbom_path"]).read_bytes()
        prepared.files = files or None
    return prepared


def _stage(name: str, call, *args, **kwargs):
    """Run one stage; what it raises about the variant or its tools becomes a StageFailure."""
    try:
        return call(*args, **kwargs)
    except STAGE_ERRORS as exc:
        raise StageFailure(STAGE_STATUS[name], f"{name}: {type(exc).__name__}: {exc}") from exc


class _Sweeper:
    """The sweep's own side: it journals what workers prepared, builds images, and measures."""

    def __init__(self, the_plan: Plan, found: tools.Tools, store: RunStore, cache: Path, host: str,
                 client=None) -> None:
        self.client = client  # Dask's, for executor dask and dask-local
        self.plan = the_plan
        self.spec = the_plan.spec
        self.tools = found
        self.store = store
        self.cache = cache
        self.host = host
        self.preparer: _Preparer | None = None  # sweep() sets it, with the post-link work directory
        self.api = None  # the Docker engine's client, on first use
        self.engine_found: engine.EngineStatus | None = None  # where that engine is (set with api)
        self.owns_client = False  # a LocalCluster prepare_all started, kept for measure_on = "workers"
        self.machine_fault: str | None = None  # what the machine did, once a row was machine_error
        self.writes = writes_of(cache, store.run_dir)  # where a tool's word of a full disk is checked
        self.engine_root: Path | None = None  # the engine's data directory, when it is on this machine

    def close(self) -> None:
        """The engine's client and a LocalCluster this sweep started, closed."""
        try:
            if self.api is not None:
                self.api.close()
        finally:
            if self.owns_client:
                executor_.disconnect(self.client)

    def _finish(self, row: Row, status: str, reason: str | None = None, engine_said: bool = False) -> None:
        """The variant's row, journaled: machine_error instead when the reason is the machine's fault.
        ``engine_said``: the reason is the engine's (or a container's), so a full disk is looked for on
        the engine's data directory too, or believed when that is on another machine."""
        writes = self.writes
        if engine_said:
            writes = (*writes, self.engine_root) if self.engine_root is not None else None
        # A check's or a start's reason holds the program's own words (PROGRAM_STATUSES).
        cause = (machine_cause(reason, writes, program_output=status in PROGRAM_STATUSES)
                 if status not in ("ok", MACHINE_ERROR) else None)
        if cause is not None:  # the machine's failure, not the variant's: not done, a resume retries it
            status, reason = MACHINE_ERROR, f"{cause}: {reason}"
            self.machine_fault = self.machine_fault or cause
        row.update(status=status, reason=reason, measured_at=now_utc().isoformat())
        self.store.add_row(row)

    def _finish_engine_stage(self, row: Row, status: str, reason: str) -> None:
        """The row of a variant a stage that used the engine failed (its image build or check, a timed
        start of its container). The engine is asked first: when it no longer answers, the failure is
        the machine's (whatever the SDK made of it: a refused connection, a 500, a timeout)."""
        silent = engine.silent(self.engine_found.url) if self.engine_found is not None else None
        if silent is not None:
            self.machine_fault = self.machine_fault or "the engine stopped answering"
            self._finish(row, MACHINE_ERROR, f"the engine stopped answering ({silent}): {reason}")
            return
        self._finish(row, status, reason, engine_said=True)

    def vulndb(self, pending: list[Variant]) -> str | StageFailure | None:
        """The spec's vulnerability database's digest, taken once here for every worker; why not, when
        it cannot be read (each row's scan then says so)."""
        if self.spec.vulndb is None or not pending:
            return None
        db = Path(self.spec.vulndb)
        try:
            digest = supply.db_digest(db)
            # Findings are as of the database: which one, and how recent, goes with them.
            self.store.manifest["sessions"][-1]["vulndb"] = {
                "path": str(db), "sha256": digest,
                "modified": json.loads((db / "index" / "db.json").read_text()).get("modified")}
        except (*STAGE_ERRORS, ValueError) as exc:  # ValueError: JSON that is not the db's
            return StageFailure("broken", f"govulncheck: {type(exc).__name__}: {exc}")
        self.store.write_manifest()
        return digest

    # -- prepare: build -> post-link -> inspect -> check, by the executor; images here -----
    def prepare_all(self, pending: list[Variant], progress: bool) -> list[_Ready]:
        """Every pending variant prepared by the spec's executor; the ready ones, in plan order.

        Variants that share a build (same workload, toolchain, profile and target) wait for
        the first of them: it builds, they find its artifact cached, as one by one; and of
        those, variants that share a post-link chain wait for the first with it (one UPX run,
        not one per base). Rows and package sizes are this process's work, as each variant
        comes back; its image is built and checked in a thread of this process meanwhile
        (the engine does the work), while the workers prepare the next variants.
        """
        spec, store = self.spec, self.store
        groups: dict[tuple, list[Variant]] = {}
        for variant in pending:
            groups.setdefault((variant.workload, variant.toolchain, variant.profile, variant.target), []).append(variant)
        order = {variant.key: n for n, variant in enumerate(pending)}
        ready: list[_Ready] = []
        started = now_utc()

        def lost(variant: Variant, exc: Exception) -> Prepared:  # the executor gave it up (a worker died)
            return self.preparer.failed(variant, "broken", f"prepare: {type(exc).__name__}: {exc}")

        local_cluster = spec.executor == "dask-local" and bool(pending)  # started for this sweep's work only
        client = executor_.connect(spec.executor, None, spec.workers) if local_cluster else self.client
        task = _prepare_one if client is None else _prepare_remote
        kind = "sequential" if spec.executor == "dask-local" and not local_cluster else spec.executor  # no work
        with contextlib.ExitStack() as stack:
            if local_cluster and spec.measure_on == "workers":  # its workers time what they prepared
                self.client, self.owns_client = client, True
            elif local_cluster:
                stack.callback(executor_.disconnect, client)
            if client is not None:  # a worker that sees this file in the cache shares this machine's files
                self.preparer.token = os.urandom(8).hex()
                token = self.cache / f".client-{self.preparer.token}"
                token.write_text(self.host)
                stack.callback(token.unlink, missing_ok=True)
            pool = stack.enter_context(executor_.open_pool(kind, task, self.preparer, spec.workers, client, lost,
                                                           here=self.preparer.cached_here, here_fn=_prepare_one))
            waiting: dict[str, list[Variant]] = {}
            for first, *rest in groups.values():
                pool.submit(first)
                waiting[first.key] = rest
            # After the submissions: a local pool forks its workers then, before any thread exists.
            bar = tqdm(total=len(pending), desc="build+check", unit="variant", disable=not progress,
                       file=sys.stderr)
            # Threads, not processes: an image is the engine's work, the SDK's calls wait on it.
            images = stack.enter_context(cf.ThreadPoolExecutor(max(1, pool.workers), "slimlab-image"))
            imaging: dict[cf.Future, Prepared] = {}

            def imaged(done) -> None:
                for future in done:
                    prepared = imaging.pop(future)
                    item = self._imaged(prepared, future)
                    if item is not None:
                        ready.append(item)
                    bar.update()

            try:
                for prepared in pool.results():
                    if self.machine_fault is not None:  # stop: the rest would fail alike; a resume does them
                        break
                    for follower in self._release(prepared.variant, waiting.pop(prepared.variant.key, ()), waiting):
                        pool.submit(follower)
                    trace(event="prepare", variant=prepared.variant.key, worker=prepared.worker,
                          start=prepared.started, end=prepared.ended)
                    bar.set_postfix_str(prepared.variant.label, refresh=False)
                    if self.accept(prepared):
                        if prepared.variant.base == "none":
                            ready.append(self._ready(prepared))
                        elif (multi_arch := self._before_image(prepared)) is not None:
                            imaging[images.submit(self._image_of, prepared, multi_arch)] = prepared
                            continue
                    bar.update()
                    imaged([future for future in imaging if future.done()])
                imaged(cf.wait(imaging).done)
            finally:
                bar.close()
            described = pool.describe()
        ended = now_utc()
        store.manifest["sessions"][-1]["preparation"] = {
            **described, "measure_on": spec.measure_on, "variants": len(pending), "started_at": started.isoformat(),
            "ended_at": ended.isoformat(), "seconds": round((ended - started).total_seconds(), 3)}
        store.write_manifest()
        return sorted(ready, key=lambda item: order[item.variant.key])

    @staticmethod
    def _release(done: Variant, followers, waiting: dict[str, list[Variant]]) -> list[Variant]:
        """Of the variants waiting for ``done`` (its build is cached now), those to prepare now:
        every one with its post-link chain (cached too), and the first with each other chain,
        the rest of which wait for that first."""
        now: list[Variant] = []
        by_chain: dict[str, list[Variant]] = {}
        for variant in followers:
            if variant.postlink == done.postlink:
                now.append(variant)
            else:
                by_chain.setdefault(variant.postlink, []).append(variant)
        for first, *rest in by_chain.values():
            now.append(first)
            waiting[first.key] = rest
        return now

    def accept(self, prepared: Prepared) -> bool:
        """A variant a worker prepared: its files kept, its package sizes journaled, and its row
        when it failed (False); True when it goes on, to its image or to be timed."""
        if prepared.address is not None and self.spec.measure_on == "workers":
            prepared.on_worker = (prepared.address, prepared.runner, prepared.binary)  # before _materialize
        if prepared.files:
            self._materialize(prepared)
        if prepared.packages:
            self.store.add_packages(prepared.variant.key, prepared.packages)
        if prepared.failure is not None:
            self._finish(prepared.row, *prepared.failure)
            return False
        return True

    def _ready(self, prepared: Prepared, runner: Runner | None = None) -> _Ready:
        """Ready to time: here, or (measure_on = "workers") on the worker that prepared it, unless
        it runs in an image (this host's engine) or a full-system guest (booted here)."""
        on_worker = prepared.on_worker
        if runner is not None or getattr(prepared.runner, "batch", False):
            on_worker = None
        return _Ready(prepared.variant, self.preparer.workloads[prepared.variant.workload], runner or prepared.runner,
                      prepared.binary, prepared.row, on_worker)

    def _before_image(self, prepared: Prepared) -> bool | None:
        """What an image needs of this process before a thread builds it: the engine's client and
        record, QEMU registered for another CPU, and whether it is one platform of several (an OCI
        index, _multi_arch); None, with the row, when it cannot be had."""
        try:
            self._engine()
            multi_arch = self._multi_arch(TARGETS[prepared.variant.target])  # where the engine is decides
        except StageFailure as failure:
            self._finish(prepared.row, failure.status, failure.reason)
            return None
        return multi_arch

    def _image_of(self, prepared: Prepared, multi_arch: bool) -> ContainerRunner:
        """In an image thread: the variant's image built and checked (its row's columns filled in);
        the runner that times it."""
        variant = prepared.variant
        workload, target = self.preparer.workloads[variant.workload], TARGETS[variant.target]
        tag = self._image(variant, workload, target, prepared.built, prepared.binary, prepared.row, multi_arch)
        # Timed like the bare binary, but with `docker run` semantics (measure.container).
        return self._container_runner(workload, tag, target=target)

    def _imaged(self, prepared: Prepared, future: cf.Future) -> _Ready | None:
        """An image thread's outcome, journaled here: ready to time, or the row of its failure."""
        try:
            runner = future.result()
        except StageFailure as failure:
            self._finish_engine_stage(prepared.row, failure.status, failure.reason)
            return None
        except Exception as exc:  # noqa: BLE001 - the SDK's errors: this image's, unless the engine's
            self._finish_engine_stage(prepared.row, "broken", f"image: {type(exc).__name__}: {exc}")
            return None
        prepared.row.update(runner=runner.name, emulated=runner.emulated, memory_scope=runner.memory_scope)
        return self._ready(prepared, runner)

    def _materialize(self, prepared: Prepared) -> None:
        """Files a worker on another machine sent back, put where this host measures them: the build
        under its key in the artifact cache (a later sweep here finds it), what ships under its
        sha256, the SBOM in the run directory; and the runner is this host's."""
        files, row, sent = prepared.files, prepared.row, prepared.built

        def keep(kind: str, key: str, name: str, data: bytes, meta: dict) -> Path:
            entry = cache_.entry(self.cache, kind, key)
            if cache_.lookup(entry, name) is None:
                with cache_.store(entry) as staging:
                    (staging.path / name).write_bytes(data)
                    (staging.path / name).chmod(0o755)
                    staging.publish(meta, name)
            return entry / name

        if "built" in files:
            prepared.built = keep("artifacts", prepared.build_key, prepared.built.name, files["built"],
                                  {"seconds": row.get("build_seconds"), "worker": prepared.worker})
        if prepared.binary is not None and prepared.binary == sent:  # no post-link step: what ships is the build
            prepared.binary = prepared.built
        if "binary" in files:
            shipped = files["binary"]
            prepared.binary = keep("remote", hashlib.sha256(shipped).hexdigest(), prepared.binary.name, shipped,
                                   {"worker": prepared.worker})
            postlink.settle(prepared.binary)  # measured from disk, as the worker's own would have been
        if "sbom" in files:
            out = self.store.run_dir / row["sbom_path"]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(files["sbom"])
        if prepared.runner is not None:
            choice = self.spec.runner_of(prepared.variant.target) if prepared.variant.base == "none" else "qemu-user"
            runner = runner_for(TARGETS[prepared.variant.target], launcher_path(self.cache), choice,
                                self.cache, Limits.of(self.spec))
            prepared.runner = runner if not isinstance(runner, str) else None
            if prepared.runner is None:
                prepared.failure = ("unsupported", runner)
        prepared.files = None

    def _image(self, variant: Variant, workload: Workload, target, built_binary: Path, binary: Path, row: Row,
               multi_arch: bool) -> str:
        """The binary on its base, built in the engine and checked in a container, confined as it is
        timed (in an image thread: _before_image made the engine's client)."""
        api = self.api
        layer = _stage("image", bases.base_layer, variant.base, target, self.cache)
        closure = _stage("image", bases.closure, layer, row.get("needed_libs") or (), target)
        if multi_arch:  # one image per platform, and an OCI index over them (slimlab.oci)
            made = oci.build_platform_image(api, self.store.run_dir, oci.ref_name(variant.axes()), layer, binary,
                                            _image_name(workload), target, closure=closure)
            built = made.image
            row.update(oci_columns(made))
        else:
            built = image.build_image(api, layer, binary, _image_name(workload), timeout_s=self.spec.build_timeout_s,
                                      closure=closure)
        row.update(image_columns(built))
        if not built.ok:
            raise StageFailure("build_failed", built.reason)
        row.update(_stage("image", self.preparer._sbom, variant, target, built_binary, binary, built.tag,
                               built.base_packages))
        # One check, confined as every container is (image.Confinement): what is timed is what was checked.
        if workload.kind == "server":  # its published loopback port polled from here (measure.container)
            checked = self._server_check(workload, built.tag, target=target)
        else:
            checked = image.check_in_container(api, built.tag, workload, self.spec.run_timeout_s,
                                               image.Confinement.of(self.spec))
        row.update(container_columns(checked))
        if not checked.ok:  # a dynamic binary on scratch: the classic mistake, recorded as what it is
            raise StageFailure(checked.status, f"container: {checked.reason}")
        return built.tag

    def _container_runner(self, workload: Workload, tag: str, target=None) -> ContainerRunner:
        # Another CPU's container runs under the QEMU registered in binfmt_misc (engine.register_qemu):
        # its timings are emulated, and the launcher's wait4 counts QEMU's memory with the program's.
        foreign = target is not None and not target.is_native
        api = self._engine()
        if not self.engine_found.local:
            found = self.engine_found
            raise StageFailure("unsupported", f"containers are timed, and servers checked, only on an engine on this "
                                              f"machine: the one at {engine.shown(found.url)} ({found.name}) is on "
                                              f"another (its ID answers at none of this machine's sockets), where "
                                              f"slimlab's launcher, bind-mounted from this machine's disk, is not, and "
                                              f"a server listens on that machine's loopback, not this one's")
        return ContainerRunner(api, tag, f"/app/{_image_name(workload)}", launcher_path(self.cache),
                               name=f"container+{target.qemu}" if foreign else "container", emulated=foreign,
                               memory_scope="emulator+program" if foreign else "program",
                               confinement=image.Confinement.of(self.spec))

    def _multi_arch(self, target) -> bool:
        """Images of a sweep with several targets (or of another CPU) go through slimlab.oci; containers of
        another CPU need its QEMU registered with the fix-binary flag, which `slimlab engine start` does."""
        # The engine's own machine's binfmt_misc is not readable from here: on another machine the
        # container check says whether a foreign program runs.
        if not target.is_native and self.engine_found.local:
            entry = target.qemu.removesuffix("-static")
            if "F" not in dict(engine.binfmt_state()).get(entry, ""):
                with contextlib.suppress(SlimlabError):  # not root: the row says what to run
                    engine.register_qemu()
                self.store.manifest["sessions"][-1]["engine"]["binfmt"] = dict(engine.binfmt_state())
                self.store.write_manifest()
            if "F" not in dict(engine.binfmt_state()).get(entry, ""):
                raise StageFailure("unsupported", f"containers of {target.name} need {entry} registered in "
                                                  f"binfmt_misc with the fix-binary flag (F): {engine.START_COMMAND}")
        return len(self.spec.values("targets")) > 1 or not target.is_native

    def index_rows(self, ready: list[_Ready]) -> None:
        """Each image row's index as it stands once every variant was prepared: all the platforms built."""
        items = [item for item in ready if item.row.get("oci_layout")]
        layout = oci.Layout(self.store.run_dir / oci.LAYOUT_DIR) if items else None
        for item in items:
            item.row.update(index_columns(oci.index_of(layout, item.row["oci_layout"].split(":", 1)[1])))

    def _server_check(self, workload: Workload, tag: str, target=None) -> image.ContainerCheck:
        try:
            self._container_runner(workload, tag, target).check(workload, Path(), self.spec.run_timeout_s)
        except CheckFailure as failure:
            return image.ContainerCheck(False, failure.reason, failure.status)
        return image.ContainerCheck(True)

    # -- supply chain ------------------------------------------------------------------

    def _engine(self):
        """The engine's SDK client, found once per sweep; without one, image rows are unsupported."""
        if self.api is None:
            try:
                found = engine.status()
                api = engine.client(found=found)
                info = api.info()
                # Containers a killed sweep left behind: their label names the sweep's host and pid, this
                # client's, so this works on another machine's engine too.
                image.remove_leftovers(api)
            except Exception as exc:  # noqa: BLE001 - DockerException, requests' errors: no engine for us
                raise StageFailure("unsupported", f"{type(exc).__name__}: {exc}") from exc
            self.api, self.engine_found = api, found
            root = info.get("DockerRootDir")
            self.engine_root = Path(root) if found.local and root else None
            # Container figures depend on the engine: with vfs storage every container copies
            # its whole image, so a bigger base starts slower than it would on overlay2. Where it
            # is (DOCKER_HOST, this machine or another) says whether its containers were timed.
            self.store.manifest["sessions"][-1]["engine"] = {
                **found.record(), "version": info.get("ServerVersion"),
                "storage_driver": info.get("Driver"), "cgroup_version": info.get("CgroupVersion"),
                # QEMU entries and flags: foreign containers need F; unknown for another machine's engine
                "binfmt": dict(found.binfmt) if found.local else None,
                "containers": image.Confinement.of(self.spec).record(),  # how every container ran
            }
            self.store.write_manifest()
        return self.api

    # -- measure ---------------------------------------------------------------------
    def measure(self, ready: list[_Ready], progress: bool) -> None:
        """Timed samples in interleaved rounds, each variant until its sampling rule is met
        (spec.sampling: min_repeats, then bursts while its interval is wider than the precision
        target, up to max_repeats or its time budget).

        Each round visits every variant still short of its rule once, in a shuffled order, and
        takes up to MEASURE_BURST starts of it back to back after one untimed start: hyperfine's
        pacing. On a busy host starts spaced apart wait less for a CPU than back-to-back ones
        (see measure.samples._cli), so single interleaved starts read up to 0.4x hyperfine's
        median there; bursts agree with it (tests/test_measure.py). Variants whose shipped bytes
        are the same (_one_per_binary) are timed once. What the host did meanwhile, the
        launcher's own cost, any busy-host warning and the A/A noise floor go into the manifest
        (this session's "measurement") and are printed.
        """
        spec, store = self.spec, self.store
        ready, copies = self._one_per_binary(ready)
        remote = [r for r in ready if r.on_worker is not None]
        ready = [r for r in ready if r.on_worker is None]
        self._measure_on_workers(remote, progress)  # first: this host may be one of theirs
        guests = [r for r in ready if getattr(r.runner, "batch", False)]
        ready = [r for r in ready if r not in guests]
        self._guests(guests, progress)
        measured = [*remote, *guests, *ready]
        if not any(self._more(r) for r in ready):
            # Killed after a variant's last samples and before its row: finish it from them.
            for item in ready:
                self._complete(item)
            ready = []
        if ready:
            bar = tqdm(total=len(ready), desc="measure", unit="variant", disable=not progress,
                       file=sys.stderr)
            started = now_utc()  # after every preparation ended (prepare_all): nothing else runs now
            with _sweep_off_cpu(spec.pin_cpu):
                try:
                    calibration = calibrate_overhead(self.cache, cpu=spec.pin_cpu, limits=Limits.of(spec),
                                                     launcher=launcher_path(self.cache))
                except STAGE_ERRORS as exc:  # the figures still stand; the manifest says why one is missing
                    calibration = {"error": f"{type(exc).__name__}: {exc}"}
                before = environment.noise_snapshot()
                container_floor = self._rounds(ready, bar)
                noise = environment.host_noise(before, environment.noise_snapshot())
            bar.close()
            taken = [s.get("nivcsw") for r in ready for s in store.samples.get(r.variant.key, [])]
            warnings = environment.busy_host_warnings(noise, taken)
            store.manifest["sessions"][-1]["measurement"] = {
                "launcher_overhead": calibration, "noise": noise, "warnings": warnings,
                "pin_cpu": spec.pin_cpu, "burst": MEASURE_BURST, "started_at": started.isoformat(),
                **({"container_floor": container_floor} if container_floor else {}),
            }
            for warning in warnings:
                print(f"slimlab: {warning}", file=sys.stderr)
        for item, first in copies:
            self._copy(item, first)
        ok = [r.variant.key for r in measured if store.rows.get(r.variant.key, {}).get("status") == "ok"]
        floor = noise_floor({key: [s["startup_ms"] for s in store.samples.get(key, [])] for key in ok},
                            MEASURE_BURST)
        store.manifest["sessions"][-1].setdefault("measurement", {})["noise_floor"] = floor
        store.write_manifest()
        if progress and floor["pairs"]:
            print(f"slimlab: A/A noise floor over {floor['pairs']} binaries (their samples split in halves): "
                  f"|ratio - 1| median {floor['abs_change_median']:.3f}, 95th percentile "
                  f"{floor['abs_change_p95']:.3f}; {floor['false_verdicts']} called faster or slower",
                  file=sys.stderr)

    def _one_per_binary(self, ready: list[_Ready]) -> tuple[list[_Ready], list[tuple[_Ready, str]]]:
        """The variants to time, and the others with the key of the one whose samples they share:
        variants whose shipped binary has the same sha256, run by the same runner for the same
        target (for images, in the same image; with measure_on = "workers", on the same worker)
        are one measurement. The first in plan order is timed; a variant of a resumed run whose
        twin finished in an earlier session shares that one's samples."""
        def identity(sha: str | None, runner: str | None, target: str, tag: str | None, where: str | None):
            return None if not sha else (sha, runner, target, tag, where)

        first: dict[tuple, str] = {}
        for key, row in self.store.rows.items():  # finished in an earlier session, timed here
            found = identity(row.get("binary_sha256"), row.get("runner"), row.get("target"),
                             row.get("image_tag"), None)
            if row.get("status") == "ok" and not row.get("same_binary_as") and row.get("host") == self.host \
                    and found is not None:
                first.setdefault(found, key)
        measured, copies = [], []
        for item in ready:
            row = item.row
            found = identity(row.get("binary_sha256"), row.get("runner"), item.variant.target,
                             row.get("image_tag"), item.on_worker[0] if item.on_worker else None)
            if found is not None and found in first:
                copies.append((item, first[found]))
                continue
            if found is not None:
                first[found] = item.variant.key
            measured.append(item)
        return measured, copies

    def _copy(self, item: _Ready, first: str) -> None:
        """A variant whose binary ``first`` was timed for: its samples copied under its own key (the
        report and compare look samples up by variant), its figures those of ``first``."""
        store, done = self.store, self.store.rows[first]
        item.row["same_binary_as"] = first
        if done["status"] != "ok":
            self._finish(item.row, done["status"], f"same binary as {first}: {done.get('reason')}")
            return
        have = store.sample_count(item.variant.key)
        for sample in store.samples.get(first, [])[have:]:
            store.add_sample({**sample, "variant_key": item.variant.key})
        item.row.update(host=done.get("host"), host_fingerprint=done.get("host_fingerprint"))
        self._complete(item, {k: v for k, v in done.items() if k.startswith("crosscheck_")})

    def _measure_on_workers(self, items: list[_Ready], progress: bool) -> None:
        """measure_on = "workers": each Dask worker times the variants it prepared (_measure_remote),
        every worker at once but one at a time per host, after all preparation. Their samples are
        journaled here as each worker ends; each row names the host that timed it (host,
        host_fingerprint), and the manifest keeps each worker's host record, with the noise while
        it measured, in this session's "hosts".
        A worker that leaves the cluster before it ends makes its variants' rows say so."""
        if not items:
            return
        store, client = self.store, self.client
        jobs: dict[str, list[_Ready]] = {}
        stored: dict[str, list[float]] = {}  # a resumed variant's samples: the worker decides from them too
        for item in items:
            address, runner, binary = item.on_worker
            jobs.setdefault(address, []).append(_Ready(item.variant, item.workload, runner, binary, {}))
            stored[item.variant.key] = self._startups(item.variant.key)
        by_key = {item.variant.key: item for item in items}
        bar = tqdm(total=len(items), desc="measure (on workers)", unit="variant", disable=not progress,
                   file=sys.stderr)
        hosts = store.manifest["sessions"][-1].setdefault("hosts", [])  # read by results.manifest_hosts
        pending = {}
        for address, batch in jobs.items():
            pending[client.submit(_measure_remote, self.spec, batch, {j.variant.key: stored[j.variant.key]
                                                                        for j in batch},
                                  workers=[address], allow_other_workers=False, pure=False)] = address

        def lost(address: str, why: str) -> None:  # a killed worker is the machine's fault: a resume retries
            self.machine_fault = self.machine_fault or f"worker {address} was lost"
            for job in jobs[address]:
                self._finish(by_key[job.variant.key].row, MACHINE_ERROR, f"measure on worker {address}: {why}")
                bar.update()

        while pending:
            done = [future for future in pending if future.done()]
            if not done:
                time.sleep(0.2)  # distributed.wait would need a default client: this one is not
            for future in done:
                address = pending.pop(future)
                try:
                    out = future.result()
                except Exception as exc:  # noqa: BLE001 - KilledWorker, the worker's crash: its rows say so
                    lost(address, f"{type(exc).__name__}: {exc}")
                    continue
                hosts.append({**out["host"], "fingerprint": out["fingerprint"], "worker": address,
                              "noise": out["noise"], "warnings": out["warnings"], "measure_started": out["started"],
                              "measure_ended": out["ended"]})
                for job in jobs[address]:
                    key, item = job.variant.key, by_key[job.variant.key]
                    first = store.sample_count(key)
                    for index, sample in enumerate(out["samples"][key]):
                        store.add_sample(_sample_record(store, key, first + index, sample))
                    item.row.update(host=out["host"]["hostname"], host_fingerprint=out["fingerprint"])
                    if key in out["failures"]:
                        self._finish(item.row, *out["failures"][key])
                    else:
                        self._complete(item, out["crosscheck"].get(key, {}))
                    bar.update()
            # A task tied to a worker that is gone would wait for it for ever.
            alive = set(client.scheduler_info(n_workers=-1)["workers"])
            for future, address in list(pending.items()):
                if address not in alive:
                    future.cancel()
                    del pending[future]
                    lost(address, "the worker left the cluster before it had timed them all")
        bar.close()
        store.write_manifest()

    def _guests(self, ready: list[_Ready], progress: bool) -> None:
        """Variants that run in a full-system guest (measure.qemu_system): one boot per target
        checks and measures every one of them still short of its sampling rule, in the order
        _rounds takes them; each sample is stored as its step ends, so a resumed sweep boots only
        for the starts still missing. A guest runs a plan fixed when it boots, so the rule is
        applied between boots (sampling.projected_starts), up to GUEST_BOOTS per target. What
        each boot was goes into the manifest ("guests")."""
        from .measure.qemu_system import BatchResult, Job

        store = self.store
        by_target: dict[str, list[_Ready]] = {}
        for item in ready:
            by_target.setdefault(item.variant.target, []).append(item)
        for target, items in by_target.items():
            failed: dict[str, CheckFailure] = {}
            for _boot in range(GUEST_BOOTS):
                first = {item.variant.key: store.sample_count(item.variant.key) for item in items}
                jobs = [Job(item.variant.key, item.workload, item.binary, runs) for item in items
                        if item.variant.key not in failed
                        and (runs := projected_starts(self._rule(item), self._startups(item.variant.key),
                                                      MEASURE_BURST))]
                if not jobs:
                    break
                bar = tqdm(total=sum(j.runs for j in jobs), desc=f"measure {target} (guest)", unit="run",
                           disable=not progress, file=sys.stderr)

                def keep(key: str, index: int, sample: Sample, first=first, bar=bar) -> None:
                    store.add_sample(_sample_record(store, key, first[key] + index, sample))
                    bar.update()

                trace(event="guest", target=target, start=time.time())
                try:
                    result = items[0].runner.measure_batch(jobs, self.spec.run_timeout_s, self.spec.warmup,
                                                           MEASURE_BURST, keep, cpu=self.spec.pin_cpu)
                except STAGE_ERRORS as exc:  # no guest could be made or run: each of its variants says why
                    # A kernel or busybox that cannot be had (no Debian mirror, no cross compiler) is
                    # this host's limit, as a missing QEMU is; anything else broke while running.
                    status = "unsupported" if isinstance(exc, ToolError) else "broken"
                    failure = CheckFailure(status, f"measure: {type(exc).__name__}: {exc}")
                    result = BatchResult(failures={job.key: failure for job in jobs})
                bar.close()
                failed.update(result.failures)
                if result.boot:
                    store.manifest["sessions"][-1].setdefault("guests", []).append(result.boot)
                    store.write_manifest()
            for item in items:
                failure = failed.get(item.variant.key)
                if failure is not None:
                    self._finish(item.row, failure.status, failure.reason)
                else:
                    self._complete(item)

    def _rounds(self, ready: list[_Ready], bar) -> dict | None:
        """Every variant's timed starts, with the container floor's among them when some run in
        containers; what the floor measured (the manifest's ``container_floor``), or None."""
        store = self.store

        def keep(item: _Ready, index: int, samples: list[Sample]) -> None:
            for offset, sample in enumerate(samples):
                store.add_sample(_sample_record(store, item.variant.key, index + offset, sample))

        def finished(item: _Ready, failure: str | None, status: str = "") -> None:
            if failure is None:
                self._complete(item)
            elif isinstance(item.runner, ContainerRunner):
                self._finish_engine_stage(item.row, status, failure)
            else:
                self._finish(item.row, status, failure)

        def ended(item: _Ready, failure: str | None, status: str = "") -> None:
            finished(item, failure, status)
            bar.update()

        def taken(item: _Ready) -> int:
            return store.sample_count(item.variant.key)

        floor = _ContainerFloor.among(ready, self)
        timed_rounds(ready + floor.items, self.spec, *floor.around(taken, self._more, keep, ended))
        return floor.record(ready, store)

    def _rule(self, item: _Ready) -> SamplingRule:
        """The variant's sampling rule: a container's may differ (``image_repeats``)."""
        return _rule_of(self.spec, item.runner)

    def _startups(self, key: str) -> list[float]:
        return [s["startup_ms"] for s in self.store.samples.get(key, [])]

    def _more(self, item: _Ready) -> int:
        """Timed starts the variant takes next, from all its samples so far (0: it has enough)."""
        return next_burst(self._rule(item), self._startups(item.variant.key), MEASURE_BURST)

    def _complete(self, item: _Ready, checked: dict | None = None) -> None:
        """A variant with all its samples: its summary and the precision it reached (over every
        sample it has), the cross-check (``checked``: taken where the samples were), and its row."""
        samples = self.store.samples.get(item.variant.key, [])
        item.row.update(summary_columns(samples))
        item.row.update(precision_columns(self._rule(item), [s["startup_ms"] for s in samples]))
        if item.row.get("memory_scope") == "emulator+program":
            # Under QEMU user mode the peak is QEMU's process, not the program's: it is kept, named
            # so, and never shown as the program's memory (a qemu-system guest gives that).
            item.row["emulator_peak_rss_kib_median"] = item.row["peak_rss_kib_median"]
            item.row.update(peak_rss_kib_median=None, peak_rss_kib_iqr=None, peak_rss_kib_max=None,
                            ready_rss_kib_median=None)
        item.row.update(_crosscheck(self.spec, item) if checked is None else checked)
        self._finish(item.row, "ok")


class _ContainerFloor:
    """The engine's own floor (measure.container.floor_runner): a static no-op on scratch for each
    kind of image timed (a CLI's, a server's), timed as more items of the rounds that time the
    images, so drift and a busy host hit it as them. Its samples are the manifest's
    (``container_floor``), never a variant's; each container row gets the median of its kind's
    floor (``container_floor_ms_median``)."""

    KEY = "container-floor"
    NETWORK = {"cli": "none", "server": image.SERVER_NETWORK}  # as measure.container times each kind

    def __init__(self, items: dict[str, _Ready] | None = None, rule: SamplingRule | None = None,
                 failure: str | None = None) -> None:
        self.by_kind = items or {}
        self.rule = rule  # a container's: the floor is sampled as the images are
        self.samples: dict[str, list[Sample]] = {kind: [] for kind in self.by_kind}
        self.failures: dict[str, str | None] = dict.fromkeys(self.by_kind)
        self.failure = failure  # it could not be had at all
        self._kind = {id(item): kind for kind, item in self.by_kind.items()}

    @property
    def items(self) -> list[_Ready]:
        return list(self.by_kind.values())

    @classmethod
    def among(cls, ready: list[_Ready], sweeper: _Sweeper) -> _ContainerFloor:
        """The floor of the engine that runs ``ready``'s containers, for each kind of them (sampled by
        a container's rule, as the images are); with none, a floor that times nothing."""
        boxed = [item for item in ready if isinstance(item.runner, ContainerRunner)]
        if not boxed:
            return cls()
        from types import SimpleNamespace

        from .measure.container import FLOOR_WORKLOADS, floor_runner

        items = {}
        try:
            for kind in sorted({item.workload.kind for item in boxed}):
                runner = floor_runner(sweeper._engine(), launcher_path(sweeper.cache), kind, sweeper.cache,
                                      sweeper.spec.build_timeout_s, image.Confinement.of(sweeper.spec))
                variant = SimpleNamespace(key=f"{cls.KEY}-{kind}", base="scratch", target=None,
                                          label=f"container floor ({kind})")
                items[kind] = _Ready(variant, FLOOR_WORKLOADS[kind], runner, Path(), {})
        except (CheckFailure, StageFailure, *STAGE_ERRORS) as exc:
            return cls(failure=getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}")
        return cls(items, sweeper._rule(boxed[0]))

    def around(self, taken, more, keep, finished) -> tuple:
        """timed_rounds' four callbacks, with the floor's own answers for the floor's items."""
        if not self.by_kind:
            return taken, more, keep, finished
        kind = self._kind

        def taken_(item):
            return len(self.samples[kind[id(item)]]) if id(item) in kind else taken(item)

        def more_(item):
            if id(item) not in kind:
                return more(item)
            return next_burst(self.rule, [s.startup_ms for s in self.samples[kind[id(item)]]], MEASURE_BURST)

        def keep_(item, index, samples):
            if id(item) in kind:
                self.samples[kind[id(item)]] += samples
            else:
                keep(item, index, samples)

        def finished_(item, reason, status=""):
            if id(item) in kind:
                self.failures[kind[id(item)]] = reason
            else:
                finished(item, reason, status)

        return taken_, more_, keep_, finished_

    def record(self, ready: list[_Ready], store: RunStore) -> dict | None:
        """The floor as the manifest keeps it (per kind: its image and network, median with its 95%
        interval, n, the raw starts); each kind's median written into every container row of that
        kind that ended ok."""
        if not self.by_kind and self.failure is None:
            return None
        from .analysis import median_ci

        floor = {"program": "a static C no-op on scratch, started by slimlab's launcher as an image's "
                            "program is: for CLIs int main(void) { return 0; } to its exit, for servers a "
                            "server answering 200 at once, to its first answer",
                 "error": self.failure, "kinds": {}}
        for kind, samples in self.samples.items():
            wall, cpu = median_ci([s.startup_ms for s in samples]), median_ci([s.cpu_ms for s in samples])
            floor["kinds"][kind] = {
                "image": self.by_kind[kind].runner.tag, "network": self.NETWORK[kind],
                "median_ms": wall.median if wall else None, "ci_low_ms": wall.lo if wall else None,
                "ci_high_ms": wall.hi if wall else None, "n": len(samples),
                "cpu_ms_median": cpu.median if cpu else None, "samples_ms": [s.startup_ms for s in samples],
                "error": self.failures[kind]}
        for item in ready:
            row = store.rows.get(item.variant.key)
            if not isinstance(item.runner, ContainerRunner) or row is not item.row or row["status"] != "ok":
                continue
            measured = floor["kinds"].get(item.workload.kind) or {}
            if measured.get("median_ms") is not None and measured["error"] is None:  # none if cut short
                row["container_floor_ms_median"] = measured["median_ms"]
                store.add_row(row)
        return floor


def _crosscheck(spec: SweepSpec, item: _Ready) -> dict:
    """hyperfine's figure beside ours (measure.crosscheck), on the host that took the samples; a
    cross-check that fails leaves the columns empty and the variant's own figures stand."""
    trace(event="crosscheck", variant=item.variant.key, start=time.time())
    try:
        found = crosscheck(item.runner, item.workload, item.binary, spec.run_timeout_s, spec.pin_cpu)
    except (CheckFailure, KeyError, ValueError, *STAGE_ERRORS):  # ValueError: hyperfine's JSON
        return {}
    return found or {}


def _rule_of(spec: SweepSpec, runner) -> SamplingRule:
    return spec.sampling(container=isinstance(runner, ContainerRunner))


def _measure_remote(spec: SweepSpec, items: list[_Ready], stored: dict[str, list[float]]) -> dict:
    """A Dask task (measure_on = "workers"): the timed starts ``items`` (which this worker
    prepared) still need by the spec's sampling rule, deciding from their ``stored`` start-ups
    and what it takes, paced as the sweep paces its own (timed_rounds), with hyperfine's
    cross-check. A Dask Lock named by the host's fingerprint keeps the workers of one machine
    from timing at once. Returns the samples, failures and cross-checks by variant, and the host."""
    from distributed import Lock

    host = environment.host()
    fingerprint = environment.host_fingerprint(host)
    samples: dict[str, list[Sample]] = {item.variant.key: [] for item in items}
    failures: dict[str, tuple[str, str]] = {}
    checks: dict[str, dict] = {}

    def keep(item: _Ready, _index: int, taken: list[Sample]) -> None:
        samples[item.variant.key] += taken

    def more(item: _Ready) -> int:
        startups = stored.get(item.variant.key, []) + [s.startup_ms for s in samples[item.variant.key]]
        return next_burst(_rule_of(spec, item.runner), startups, MEASURE_BURST)

    def finished(item: _Ready, reason: str | None, status: str = "") -> None:
        if reason is None:
            checks[item.variant.key] = _crosscheck(spec, item)
        else:
            failures[item.variant.key] = (status, reason)

    with Lock(f"slimlab-measure-{fingerprint}"):
        started, before = time.time(), environment.noise_snapshot()
        with _sweep_off_cpu(spec.pin_cpu):
            timed_rounds(items, spec, lambda item: len(samples[item.variant.key]), more, keep, finished)
        noise = environment.host_noise(before, environment.noise_snapshot())
    taken = [s.nivcsw for got in samples.values() for s in got]
    return {"host": host, "fingerprint": fingerprint, "samples": samples, "failures": failures, "crosscheck": checks,
            "started": started, "ended": time.time(), "noise": noise,
            "warnings": environment.busy_host_warnings(noise, taken)}


def _samples(spec: SweepSpec, item, runs: int, warmup: int) -> list[Sample]:
    trace(event="measure", variant=item.variant.key, start=time.time(), pid=os.getpid())
    try:
        return item.runner.samples(item.workload, item.binary, spec.run_timeout_s, runs, warmup=warmup,
                                   cpu=spec.pin_cpu)
    except CheckFailure as failure:
        _note_escaped(item.row, failure.escaped)
        raise
    except STAGE_ERRORS as exc:  # a launcher that failed or got stuck: this variant's problem
        raise CheckFailure("broken", f"measure: {type(exc).__name__}: {exc}") from exc


def _note_escaped(row: Row, escaped: int | None) -> None:
    """The row's escaped_processes: the most any of its checks or starts left (measure.contain)."""
    if escaped is not None:
        row["escaped_processes"] = max(escaped, row.get("escaped_processes") or 0)


def timed_rounds(items: list, spec: SweepSpec, taken, more, keep, finished) -> None:
    """The pacing of timed starts, wherever they run (the sweep, or a Dask worker measuring what
    it prepared): one untimed start of each item, then rounds, each visiting every item still
    wanting starts once in a shuffled order and taking its next burst (up to MEASURE_BURST
    starts back to back after one untimed start). ``taken(item)``: its samples so far;
    ``more(item)``: the starts it takes next, 0 once it has enough (sampling.next_burst);
    ``keep(item, index, samples)`` stores a burst; ``finished(item, reason, status)`` ends it
    (reason None: it has enough)."""
    active = []
    for item in items:
        try:
            _samples(spec, item, 0, spec.warmup)  # warm the page cache and CPU state; not recorded
            active.append(item)
        except CheckFailure as failure:
            finished(item, f"warm-up: {failure.reason}", failure.status)
    shuffle = random.Random(0)
    while active:
        shuffle.shuffle(active)
        for item in list(active):
            runs = more(item)
            if runs <= 0:
                active.remove(item)
                finished(item, None)
                continue
            index = taken(item)
            try:
                samples = _samples(spec, item, runs, warmup=1)
            except CheckFailure as failure:
                active.remove(item)
                finished(item, f"samples {index + 1}-{index + runs}: {failure.reason}", failure.status)
                continue
            keep(item, index, samples)


def trace(**event) -> None:
    """One JSON line in the file $SLIMLAB_TRACE names, when set: when each variant's preparation
    began and ended (on its worker's clock, time.time()) and when each burst of measured starts
    began (and in which process), so a test or a curious user can see that no measurement
    overlapped preparation, nor another measurement on the same host."""
    path = os.environ.get(TRACE_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event) + "\n")


def _image_name(workload: Workload) -> str:
    """The binary's file name in its image (/app/<name>)."""
    return Path(workload.name).name or "program"


@contextlib.contextmanager
def _sweep_off_cpu(cpu: int | None):
    """With ``pin_cpu``, the sweep's own Python runs on the other CPUs while measuring."""
    if cpu is None:
        yield
        return
    allowed = os.sched_getaffinity(0)
    others = allowed - {cpu}
    if others:
        os.sched_setaffinity(0, others)
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def _sample_record(store: RunStore, key: str, index: int, sample: Sample) -> dict:
    return {
        "run_id": store.manifest["run_id"],
        "variant_key": key,
        "sample_index": index,
        "startup_ms": sample.startup_ms,
        "peak_rss_kib": sample.peak_rss_kib,
        "ready_rss_kib": sample.ready_rss_kib,
        "exit_code": sample.exit_code,
        "nivcsw": sample.nivcsw,
        "nvcsw": sample.nvcsw,
        "cpu_ms": sample.cpu_ms,
        "exit_maxrss_kib": sample.exit_maxrss_kib,
        "stop_hwm_kib": sample.stop_hwm_kib,
        "cgroup_peak_kib": sample.cgroup_peak_kib,
    }
