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

# Sizing the local pool: benchmarks/pool_sizing.py, on the 2-core machine this was written
# on (shared, load 3.5-4.6 from other work), each from an empty artifact cache with Go's
# build cache warm; seconds of preparation, median of 2, GOMAXPROCS unset / 1:
#   baseline (8 variants)                 1 worker 4.8 / 4.5   2: 3.8 / 3.2   3: 3.0 / 3.0   4: 3.2 / 3.0
#   default, amd64, no images (24, UPX)   1 worker 37  / 40    2: 29  / 29    3: 28  / 29    4: 25  / 25
# Two workers per core beat one: a variant's preparation is short processes (the go link,
# strip, UPX, two functional checks) with waits between them (fsync and dropping the new
# binary's pages, postlink.settle; Python parsing ELF), which another worker fills. Capping
# the go command's own parallelism (GOMAXPROCS=1, one compile or link at a time) changed
# nothing measurable: with Go's build cache warm a build is mostly its link, so the go
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


@contextmanager
def open_pool(executor: str, fn: Callable, context: Any, workers: int | None = None) -> Iterator[Pool]:
    """The pool for ``executor`` (model.spec.EXECUTORS); ``workers``: the local pool's size."""
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
