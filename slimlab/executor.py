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
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


# The context of a local worker process, set once by _init_worker (not pickled per task).
_CONTEXT: Any = None


def _init_worker(context: Any) -> None:
    global _CONTEXT
    _CONTEXT = context
    # A sweep killed with SIGKILL takes its workers with it: they would otherwise build on
    # for nobody (PR_SET_PDEATHSIG, as the launcher and guests do).
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    # Ctrl-C reaches the whole foreground group: the sweep decides, workers do not die half-way.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _call(fn: Callable, item: Any) -> Any:
    return fn(_CONTEXT, item)


class ProcessPool(Pool):
    """A pool of worker processes on this machine (concurrent.futures)."""

    name = "local"

    def __init__(self, fn: Callable, context: Any, workers: int) -> None:
        self.fn, self.workers = fn, workers
        # fork: a worker starts with slimlab imported and the context in memory, at once;
        # spawn or forkserver would import slimlab again in each (0.4 s here). The sweep
        # holds no engine client or lock yet when the pool starts (images are made here).
        self.executor = cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                               initializer=_init_worker, initargs=(context,))
        self.pending: set[cf.Future] = set()

    def submit(self, item: Any) -> None:
        self.pending.add(self.executor.submit(_call, self.fn, item))

    def results(self) -> Iterator[Any]:
        while self.pending:
            done, self.pending = cf.wait(self.pending, return_when=cf.FIRST_COMPLETED)
            for future in done:
                yield future.result()

    def close(self, failed: bool = False) -> None:
        if failed:  # interrupted or broken: no task is worth waiting for, and none may outlive the sweep
            for process in list((getattr(self.executor, "_processes", None) or {}).values()):
                process.kill()
        self.executor.shutdown(wait=True, cancel_futures=True)


class DaskPool(Pool):
    """Items as tasks on a Dask cluster (distributed): its scheduler places them, retries those
    whose worker died (up to its ``allowed-failures``), and ``on_error`` makes a result of a task
    it gave up on, so every item still yields exactly one result."""

    def __init__(self, fn: Callable, context: Any, client, name: str, on_error: Callable) -> None:
        from distributed import as_completed

        self.fn, self.client, self.name, self.on_error = fn, client, name, on_error
        self.workers = len(client.scheduler_info(n_workers=-1)["workers"])
        # Sent to every worker once, not with each task.
        self.context = client.scatter(context, broadcast=True, hash=False)
        self.pending = as_completed(loop=client.loop, with_results=False)
        self.items: dict[str, Any] = {}

    def submit(self, item: Any) -> None:
        future = self.client.submit(self.fn, self.context, item, pure=False)
        self.items[future.key] = item
        self.pending.add(future)

    def results(self) -> Iterator[Any]:
        for future in self.pending:
            item = self.items.pop(future.key)
            try:
                yield future.result()
            except Exception as exc:  # noqa: BLE001 - KilledWorker, a worker's crash: that item's result says so
                yield self.on_error(item, exc)
            future.release()

    def describe(self) -> dict:
        return {**super().describe(), "scheduler": self.client.scheduler.address}


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
              on_error: Callable | None = None) -> Iterator[Pool]:
    """The pool for ``executor`` (model.spec.EXECUTORS); ``workers``: the local pool's size;
    ``client``: connect()'s, for Dask; ``on_error(item, exc)``: the result of a Dask task that failed."""
    if client is not None:
        yield DaskPool(fn, context, client, executor, on_error)
        return
    if executor == "sequential" or (executor == "local" and workers == 1):
        yield SequentialPool(fn, context)
        return
    if executor == "local":
        pool = ProcessPool(fn, context, workers or default_workers())
        try:
            yield pool
        except BaseException:
            pool.close(failed=True)
            raise
        pool.close()
        return
    raise ValueError(f"executor {executor!r} is not available")
