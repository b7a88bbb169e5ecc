"""Where a sweep's preparation runs: in this process, in a local process pool, or on Dask.

A pool runs ``fn(context, item)`` for each submitted item and yields the results as they
finish. ``fn`` is a module-level function and ``context`` and items are plain picklable
data (the plan's variants, the spec, the tools found): a worker does the heavy work
(compilers, post-link tools, ELF parsing, functional checks) and hands back a result; the
caller alone writes the run's journal, so an interrupted sweep loses nothing and resumes.
Results may be submitted while iterating (a variant that reuses another's build waits for
it). Nothing here measures: the sweep times its starts after the pool is closed.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import multiprocessing
import os
import signal
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import SlimlabError

# How long the client waits for a Dask scheduler to answer before the sweep is refused.
CONNECT_TIMEOUT_S = 10

# Sizing the local pool: benchmarks/pool_sizing.py, on the 2-core machine this was written
# on (shared: load 2-4.6 from other work), each from an empty artifact cache with Go's
# build cache warm; seconds of preparation, median of 2, GOMAXPROCS unset / 1:
#   baseline (8 variants)                 1 worker 2.7 / 3.0   2: 1.75 / 1.7  3: 1.7 / 1.6   4: 1.6 / 1.5
#   default, amd64, no images (24, UPX)   1 worker 37  / 40    2: 29   / 29   3: 28  / 29    4: 25  / 25
# (the second line before package sizes and leaked paths were made 20x cheaper to compute).
# Two workers per core beat one: a variant's preparation is short processes (the go link,
# strip, UPX, two functional checks) with waits between them (fsync and dropping the new
# binary's pages, postlink.settle; Python parsing ELF), which another worker fills. Capping
# the go command's own parallelism (GOMAXPROCS=1, one compile or link at a time) changed
# nothing beyond the noise: with Go's build cache warm a build is mostly its link, so the go
# command keeps its default. More than 2 per core was not tried: memory grows with each.
# On a shared machine more processes also take a bigger share of the CPUs from the others.
WORKERS_PER_CPU = 2
MIN_WORKERS = 2  # a cluster of one CPU still overlaps one variant's waits with another's work
# A task whose worker died this often is given up, as Dask's distributed.scheduler.allowed-failures (3).
ALLOWED_FAILURES = 3


class WorkerDied(RuntimeError):
    """The local worker process preparing an item died, each time it was tried."""


def default_workers() -> int:
    """The local pool's size on this machine: WORKERS_PER_CPU per CPU this process may use."""
    return max(MIN_WORKERS, WORKERS_PER_CPU * len(os.sched_getaffinity(0)))


class Pool:
    """Runs ``fn(context, item)`` for submitted items; :meth:`results` yields as they finish."""

    name = "?"
    workers = 1

    def submit(self, item: Any) -> None:
        raise NotImplementedError

    def results(self) -> Iterator[Any]:
        raise NotImplementedError

    def describe(self) -> dict:
        """What the manifest records of how this session prepared its variants."""
        return {"executor": self.name, "workers": self.workers}


class SequentialPool(Pool):
    """One item at a time, in this process, in the order submitted: the sweep as it always was."""

    name = "sequential"

    def __init__(self, fn: Callable, context: Any) -> None:
        self.fn, self.context = fn, context
        self.queue: deque = deque()

    def submit(self, item: Any) -> None:
        self.queue.append(item)

    def results(self) -> Iterator[Any]:
        while self.queue:
            yield self.fn(self.context, self.queue.popleft())


# The context of a local worker process, set once by _init_worker (not pickled per task), and
# the directory where it notes which task it runs (ProcessPool._blame).
_CONTEXT: Any = None
_LEDGER: str | None = None


def _init_worker(context: Any, ledger: str | None = None) -> None:
    global _CONTEXT, _LEDGER
    _CONTEXT, _LEDGER = context, ledger
    # A sweep killed with SIGKILL takes its workers with it: they would otherwise build on
    # for nobody (PR_SET_PDEATHSIG, as the launcher and guests do).
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    # Ctrl-C reaches the whole foreground group: the sweep decides, workers do not die half-way.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _call(fn: Callable, item: Any, task: int | None = None) -> Any:
    if _LEDGER is not None and task is not None:  # a plain file: no lock a killed worker could hold
        Path(_LEDGER, str(task)).write_text(str(os.getpid()))
    return fn(_CONTEXT, item)


class ProcessPool(Pool):
    """A pool of worker processes on this machine (concurrent.futures).

    It holds at most one task per worker, the rest queued here, so the items in flight
    when a worker dies (killed, out of memory) are known. A dead worker breaks the whole
    executor: a fresh one takes over and those items run again. The item the dead worker
    was preparing is blamed; at ALLOWED_FAILURES deaths ``on_error(item, exc)`` is its
    result instead, as with Dask's scheduler, so every item yields exactly one result.
    """

    name = "local"

    def __init__(self, fn: Callable, context: Any, workers: int, on_error: Callable | None = None) -> None:
        self.fn, self.context, self.workers, self.on_error = fn, context, workers, on_error
        self.queue: deque = deque()
        self.running: dict[cf.Future, tuple[int, Any]] = {}
        self.tasks = 0
        self.deaths: dict[int, int] = {}  # by id(item): items need not be hashable
        self.restarts = 0
        self.ledger = tempfile.TemporaryDirectory(prefix="slimlab-pool-")
        # fork: a worker starts with slimlab imported and the context in memory, at once;
        # spawn or forkserver would import slimlab again in each (0.4 s here). The sweep
        # holds no engine client or lock yet when the pool starts, and no thread.
        self.executor = self._start("fork")
        self.processes: dict = {}

    def _start(self, method: str) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(method),
                                      initializer=_init_worker, initargs=(self.context, self.ledger.name))

    def submit(self, item: Any) -> None:
        self.queue.append(item)
        self._fill()

    def _fill(self) -> None:
        while self.queue and len(self.running) < self.workers:
            item = self.queue.popleft()
            self.tasks += 1
            self.running[self.executor.submit(_call, self.fn, item, self.tasks)] = (self.tasks, item)
        # The worker processes, kept to read their exit codes if one dies (started at the first submit).
        self.processes.update(getattr(self.executor, "_processes", None) or {})

    def results(self) -> Iterator[Any]:
        while self.running or self.queue:
            self._fill()
            done, _ = cf.wait(self.running, return_when=cf.FIRST_COMPLETED)
            finished, broken = [], False
            for future in done:
                try:
                    finished.append(future.result())
                    del self.running[future]
                except cf.process.BrokenProcessPool:
                    broken = True
            if broken:
                finished += self._recover()
            yield from finished  # the caller may submit meanwhile: the executor is whole again

    def _recover(self) -> list[Any]:
        """A worker died, and every item in flight failed with it. Start a fresh executor
        (spawn: this process may have threads by now, which fork would copy half-way; and a
        spawned worker is this process's child, so PR_SET_PDEATHSIG still ties it to the sweep)
        and run those items again, except one blamed ALLOWED_FAILURES times."""
        lost = list(self.running.values())
        self.running.clear()
        self.executor.shutdown(wait=True, cancel_futures=True)
        blamed = self._blame(lost)
        self.executor, self.processes = self._start("spawn"), {}
        self.restarts += 1
        given_up = []
        for task, item in reversed(lost):
            deaths = self.deaths[id(item)] = self.deaths.get(id(item), 0) + (task in blamed)
            if deaths >= ALLOWED_FAILURES and self.on_error is not None:
                given_up.append(self.on_error(item, WorkerDied(
                    f"a worker process died while preparing it, {deaths} times (killed, or out of memory)")))
            else:
                self.queue.appendleft(item)
        return given_up

    def _blame(self, lost: list[tuple[int, Any]]) -> set[int]:
        """The tasks whose own worker died. The executor ends the others with SIGTERM once one is
        gone, so the dead are those that ended otherwise (SIGKILL, a crash); when that cannot be
        told, every task in flight is suspect, as on a Dask worker."""
        exits = {process.pid: process.exitcode for process in self.processes.values()}
        blamed = set()
        for task, _item in lost:
            try:
                pid = int(Path(self.ledger.name, str(task)).read_text())
            except (OSError, ValueError):  # never started, or killed while noting it
                continue
            if exits.get(pid) not in (-signal.SIGTERM, None):
                blamed.add(task)
        return blamed or {task for task, _item in lost}

    def describe(self) -> dict:
        return {**super().describe(), "restarts": self.restarts}

    def close(self, failed: bool = False) -> None:
        if failed:  # interrupted or broken: no task is worth waiting for, and none may outlive the sweep
            for process in list((getattr(self.executor, "_processes", None) or {}).values()):
                process.kill()
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.ledger.cleanup()


class DaskPool(Pool):
    """Items as tasks on a Dask cluster (distributed): its scheduler places them, retries those
    whose worker died (up to its ``allowed-failures``), and ``on_error`` makes a result of a task
    it gave up on, so every item still yields exactly one result.

    ``here(item)``, when given, picks items to run in this process instead, with
    ``here_fn(context, item)``: those whose work is already done in this machine's cache, so it
    is not done again anywhere.
    """

    def __init__(self, fn: Callable, context: Any, client, name: str, on_error: Callable,
                 here: Callable | None = None, here_fn: Callable | None = None) -> None:
        from distributed import as_completed

        self.fn, self.client, self.name, self.on_error = fn, client, name, on_error
        self.here, self.here_fn, self.local_context = here, here_fn, context
        self.workers = len(client.scheduler_info(n_workers=-1)["workers"])
        # Sent to every worker once, not with each task.
        self.context = client.scatter(context, broadcast=True, hash=False)
        self.pending = as_completed(loop=client.loop, with_results=False)
        self.items: dict[str, Any] = {}
        self.local: deque = deque()
        self.kept_here = 0

    def submit(self, item: Any) -> None:
        if self.here is not None and self.here(item):
            self.local.append(item)
            return
        future = self.client.submit(self.fn, self.context, item, pure=False)
        self.items[future.key] = item
        self.pending.add(future)

    def results(self) -> Iterator[Any]:
        while self.local or not self.pending.is_empty():
            if self.local:
                self.kept_here += 1
                yield self.here_fn(self.local_context, self.local.popleft())
                continue
            future = next(self.pending)
            item = self.items.pop(future.key)
            try:
                yield future.result()
            except Exception as exc:  # noqa: BLE001 - KilledWorker, a worker's crash: that item's result says so
                yield self.on_error(item, exc)
            future.release()

    def describe(self) -> dict:
        return {**super().describe(), "scheduler": self.client.scheduler.address, "prepared_here": self.kept_here}


def connect(executor: str, scheduler: str | None, workers: int | None):
    """The Dask client for ``executor`` ("dask": the cluster at ``scheduler``; "dask-local": a
    LocalCluster of ``workers`` processes), or None for the local executors. A scheduler that
    does not answer is one clear error, before any work."""
    if executor not in ("dask", "dask-local"):
        return None
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise SlimlabError(f"executor {executor!r} needs Dask: pip install 'dask[distributed]' ({exc})") from exc
    if executor == "dask-local":
        # One thread per worker process: a variant's stages are processes and Python, and
        # Python holds the GIL. No dashboard: its fixed port may be taken, and nobody looks.
        cluster = LocalCluster(n_workers=workers or default_workers(), threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=50)
        return Client(cluster, set_as_default=False)
    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise SlimlabError(f"cannot reach the Dask scheduler at {scheduler} ({type(exc).__name__}: {exc}); "
                           f"start one there (dask scheduler), or use executor = \"dask-local\" or \"local\"") from exc


def disconnect(client) -> None:
    """Close the client, and the LocalCluster when the sweep started it."""
    if client is None:
        return
    cluster = client.cluster
    client.close()
    if cluster is not None:
        cluster.close()


@contextmanager
def open_pool(executor: str, fn: Callable, context: Any, workers: int | None = None, client=None,
              on_error: Callable | None = None, here: Callable | None = None,
              here_fn: Callable | None = None) -> Iterator[Pool]:
    """The pool for ``executor`` (model.spec.EXECUTORS); ``workers``: the local pool's size;
    ``client``: connect()'s, for Dask; ``on_error(item, exc)``: the result of an item whose worker
    died each time it was tried (Dask's KilledWorker, or the local pool's WorkerDied); ``here``,
    ``here_fn``: Dask's items to run in this process (DaskPool)."""
    if client is not None:
        yield DaskPool(fn, context, client, executor, on_error, here, here_fn)
        return
    if executor == "sequential" or (executor == "local" and workers == 1):
        yield SequentialPool(fn, context)
        return
    if executor == "local":
        pool = ProcessPool(fn, context, workers or default_workers(), on_error)
        try:
            yield pool
        except BaseException:
            pool.close(failed=True)
            raise
        pool.close()
        return
    raise ValueError(f"executor {executor!r} is not available")
