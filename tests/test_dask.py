"""Preparation on a Dask cluster (executor = "dask"): the same rows as the local executor, a
worker killed mid-build costs no variant, a worker without the toolchain says so in its
rows, and a scheduler that does not answer is refused before any work."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import polars as pl
import psutil
import pytest
from conftest import path_without
from distributed import LocalCluster
from test_executor import SMALL, comparable

import slimlab
from slimlab import environment
from slimlab.errors import SlimlabError, SpecError
from slimlab.faults import MachineError
from slimlab.results_schema import MACHINE_ERROR
from slimlab.sweep import TRACE_ENV, sweep


@contextlib.contextmanager
def sweeping(spec, **options):
    """sweep(spec, **options) in a thread while the block runs; yields (done, thread): ``done``
    gets "run" (the run directory) or "error" by the time the block has ended and the sweep with it."""
    done: dict = {}

    def run() -> None:
        try:
            done["run"] = sweep(spec, **options)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            done["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield done, thread
    finally:
        thread.join(300)


@pytest.fixture
def cluster():
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as made:
        yield made


def test_a_dask_cluster_gives_the_local_executors_rows(tmp_path, cluster):
    runs = {}
    for executor, scheduler in (("local", None), ("dask", cluster.scheduler_address)):
        runs[executor] = sweep(SMALL, data_dir=tmp_path / "data", run_id=executor, cache_dir=tmp_path / executor,
                               progress=False, executor=executor, scheduler=scheduler)
    local, dask = (slimlab.load(runs[e]) for e in ("local", "dask"))
    assert local["status"].to_list() == ["ok"] * 4
    # Sizes, statuses, build info (flags, Go version, modules, build settings), whether a build was reused.
    assert comparable(dask).equals(comparable(local), null_equal=True)
    preparation = slimlab.load_manifests(runs["dask"])[0]["sessions"][-1]["preparation"]
    assert preparation["executor"] == "dask" and preparation["scheduler"] == cluster.scheduler_address
    assert preparation["workers"] == 2


def test_a_worker_killed_while_building_loses_no_variant(tmp_path, cluster):
    spec = {**SMALL, "workloads": ["hello", "httpd"], "profiles": ["default", "stripped", "trimmed", "static"]}
    with sweeping(spec, data_dir=tmp_path, run_id="r", cache_dir=tmp_path / "cache", progress=False,
                  executor="dask", scheduler=cluster.scheduler_address) as (done, thread):
        killed = None
        deadline = time.monotonic() + 120
        while killed is None and thread.is_alive() and time.monotonic() < deadline:
            for worker in psutil.Process().children():  # the cluster's workers (the nannies are threads here)
                try:
                    building = any(p.name() in ("go", "compile", "link") for p in worker.children(recursive=True))
                except psutil.NoSuchProcess:
                    continue
                if building:
                    worker.kill()
                    killed = worker
                    break
            time.sleep(0.01)
    assert killed is not None, "no worker was caught building"
    assert "error" not in done, done.get("error")
    df = slimlab.load(done["run"])
    assert df.height == 16 and df["variant_key"].n_unique() == 16  # each variant once: none lost, none twice
    assert df["status"].to_list() == ["ok"] * 16, df.filter(df["status"] != "ok")["reason"].to_list()


def test_a_worker_without_the_toolchain_gives_unsupported_rows_naming_it(tmp_path):
    path = path_without({"go"}, tmp_path / "bin")
    with LocalCluster(n_workers=1, processes=True, threads_per_worker=1, dashboard_address=None,
                      env={"PATH": path}) as bare:
        # An empty cache here: what this machine has built already would be prepared here (cached_here).
        run = sweep(SMALL, data_dir=tmp_path, run_id="r", cache_dir=tmp_path / "cache", progress=False,
                    executor="dask", scheduler=bare.scheduler_address)
        address = next(iter(bare.scheduler_info["workers"]))
    df = slimlab.load(run)
    assert df["status"].to_list() == ["unsupported"] * 4
    assert all(f"worker {socket.gethostname()} ({address}) lacks go" in r for r in df["reason"].to_list())


def test_a_scheduler_that_does_not_answer_is_refused_before_any_work(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    start = time.monotonic()
    with pytest.raises(SlimlabError, match=f"cannot reach the Dask scheduler at {address}"):
        sweep(SMALL, data_dir=tmp_path, progress=False, scheduler=address)
    assert time.monotonic() - start < 30
    assert not (tmp_path / "runs").exists()


def test_a_worker_that_does_not_share_the_cache_sends_its_files_to_be_kept_by_hash(tmp_path):
    """As a worker on another machine does: it builds into its own cache, and the sweep keeps
    the build under its key (a later build here reuses it), what ships under its sha256, and
    the SBOM in the run directory."""
    import hashlib

    from distributed import Client

    from slimlab import tools
    from slimlab.build import build
    from slimlab.model import TARGETS, plan
    from slimlab.results import RunStore
    from slimlab.sweep import _prepare_remote, _Preparer, _Sweeper

    the_plan = plan({**SMALL, "profiles": ["default"], "postlink": ["strip"]})
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    found = tools.discover(the_plan.spec, ours, progress=False)
    store = RunStore.open(tmp_path / "data", "r", the_plan.spec.to_dict(), {"tools": {}, "host": {}})
    # No token file: the worker cannot tell it shares this cache, as one on another machine could not.
    preparer = _Preparer(the_plan.spec, found, ours, "client", "r", store.run_dir, tmp_path, None)
    with LocalCluster(n_workers=1, processes=True, threads_per_worker=1, dashboard_address=None,
                      env={"SLIMLAB_CACHE": str(theirs)}) as cluster, Client(cluster) as client:
        prepared = client.submit(_prepare_remote, preparer, the_plan.variants[0]).result()
    assert prepared.failure is None and set(prepared.files) == {"built", "binary", "sbom"}
    assert theirs in prepared.built.parents and not (ours / "artifacts").exists()

    sweeper = _Sweeper(the_plan, found, store, ours, "client")
    sweeper.preparer = preparer
    assert sweeper.accept(prepared)
    item = sweeper._ready(prepared)
    store.close(ended=True)
    assert (ours / "remote") in item.binary.parents
    assert hashlib.sha256(item.binary.read_bytes()).hexdigest() == item.row["binary_sha256"]
    assert (store.run_dir / item.row["sbom_path"]).is_file()
    assert ours in item.runner.launcher.parents  # measured here, with this host's launcher
    variant = the_plan.variants[0]
    again = build(preparer.workloads[variant.workload], found.adapters["go"], found.infos["go"],
                  the_plan.spec.all_profiles()["default"], TARGETS[variant.target], ours, 60)
    assert again.cached and again.binary == prepared.built  # not built again here


def test_measured_on_workers_each_times_what_it_prepared_alone_on_its_host(tmp_path, monkeypatch):
    from distributed import Client

    trace = tmp_path / "trace"
    monkeypatch.setenv(TRACE_ENV, str(trace))
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                      env={TRACE_ENV: str(trace)}) as cluster:  # the workers write the trace too
        with Client(cluster, set_as_default=False) as client:
            pids = client.run(os.getpid)  # worker address -> its process
        run = sweep(SMALL, data_dir=tmp_path, run_id="r", cache_dir=tmp_path / "cache", progress=False,
                    executor="dask", scheduler=cluster.scheduler_address, measure_on="workers")
    df = slimlab.load(run)
    assert df["status"].to_list() == ["ok"] * 4
    assert df["host_fingerprint"].to_list() == [environment.host_fingerprint()] * 4  # a LocalCluster: this host
    assert slimlab.load_samples(run).group_by("variant_key").len()["len"].to_list() == [3] * 4
    assert df["crosscheck_n"].is_not_null().all(), "hyperfine's cross-check runs where the samples were taken"

    events = [json.loads(line) for line in trace.read_text().splitlines()]
    prepared = {e["variant"]: e["worker"] for e in events if e["event"] == "prepare"}
    measured = sorted((e for e in events if e["event"] == "measure"), key=lambda e: e["start"])
    assert measured and min(e["start"] for e in measured) >= max(e["end"] for e in events if e["event"] == "prepare")
    for event in measured:  # timed by the very worker process that prepared it
        address = prepared[event["variant"]].split("(")[1].rstrip(")")
        assert event["pid"] == pids[address] != os.getpid()
    # One host: its workers took turns (a Dask Lock per host fingerprint), never interleaved.
    order = [e["pid"] for e in measured]
    turns = 1 + sum(a != b for a, b in itertools.pairwise(order))
    assert turns == len(set(order)), order
    session = slimlab.load_manifests(run)[0]["sessions"][-1]
    assert session["preparation"]["measure_on"] == "workers"
    assert [h["fingerprint"] for h in session["hosts"]] == [environment.host_fingerprint()] * len(set(order))


@pytest.mark.unit
def test_measure_on_workers_needs_a_dask_cluster(tmp_path):
    with pytest.raises(SpecError, match="measure_on = \"workers\" is for a Dask cluster"):
        sweep(SMALL, data_dir=tmp_path, measure_on="workers")
    with pytest.raises(SpecError, match="did you mean 'workers'"):
        sweep({**SMALL, "executor": "dask-local", "measure_on": "worker"}, data_dir=tmp_path)
    assert not (tmp_path / "runs").exists()


def test_what_this_machine_has_cached_is_not_sent_to_a_worker(tmp_path, cluster):
    ours = tmp_path / "ours"
    sweep(SMALL, data_dir=tmp_path, run_id="first", cache_dir=ours, progress=False, executor="local")
    # SMALL again, plus a profile not built yet: only its variants go to the cluster.
    run = sweep({**SMALL, "profiles": ["default", "stripped", "trimmed"]}, data_dir=tmp_path, run_id="second",
                cache_dir=ours, progress=False, executor="dask", scheduler=cluster.scheduler_address)
    df = slimlab.load(run)
    assert df["status"].to_list() == ["ok"] * 6
    preparation = slimlab.load_manifests(run)[0]["sessions"][-1]["preparation"]
    assert preparation["prepared_here"] == 4  # SMALL's four, from this machine's cache
    assert df.filter(pl.col("profile") != "trimmed")["build_cached"].to_list() == [True] * 4
    assert sorted(df.filter(pl.col("profile") == "trimmed")["build_cached"].to_list()) == [False, True]


def test_an_interrupted_dask_client_resumes_and_reuses_what_workers_built(tmp_path, cluster):
    spec = tmp_path / "spec.toml"
    spec.write_text('workloads = ["hello", "httpd"]\nprofiles = ["default", "stripped", "trimmed", "static"]\n'
                    'postlink = ["none", "strip"]\nrepeats = 2\nwarmup = 0\n')
    data, run_dir, cache = tmp_path / "data", tmp_path / "data" / "runs" / "r", tmp_path / "cache"
    argv = [sys.executable, "-m", "slimlab.cli", "sweep", str(spec), "--data", str(data), "--run-id", "r", "-q",
            "--scheduler", cluster.scheduler_address]
    env = {**os.environ, "SLIMLAB_CACHE": str(cache)}  # empty: every build runs

    def built() -> int:  # complete entries of the artifact cache: builds the workers finished
        return sum(1 for _ in (cache / "artifacts").glob("*/[!.]*/meta.json"))

    client = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while built() < 2:
        assert client.poll() is None, "the sweep ended before it could be killed: " + client.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    client.send_signal(signal.SIGKILL)
    client.wait()
    session = json.loads((run_dir / "manifest.json").read_text())["sessions"][-1]
    assert "preparation" not in session, "killed after preparation: too late to test this"
    from distributed import Client

    with Client(cluster, set_as_default=False) as watcher:  # tasks running at the kill end, for nobody
        while any(watcher.processing().values()):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    before = built()

    subprocess.run(argv, env=env, check=True, capture_output=True)
    df = slimlab.load(run_dir)
    assert df.height == 16 and df["variant_key"].n_unique() == 16 and df["status"].to_list() == ["ok"] * 16
    compiled = df.filter(~pl.col("build_cached")).height
    assert 2 <= before < 8 and compiled == 8 - before  # only the builds not finished before the kill ran again


def test_a_worker_lost_while_measuring_gives_rows_saying_so(tmp_path, monkeypatch):
    trace = tmp_path / "trace"
    monkeypatch.setenv(TRACE_ENV, str(trace))
    spec = {**SMALL, "repeats": 40}
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                      env={TRACE_ENV: str(trace)}) as cluster, \
            sweeping(spec, data_dir=tmp_path, run_id="r", cache_dir=tmp_path / "cache", progress=False,
                     executor="dask", scheduler=cluster.scheduler_address, measure_on="workers") as (done, thread):
        killed = None
        deadline = time.monotonic() + 120
        while killed is None and thread.is_alive() and time.monotonic() < deadline:
            measuring = [json.loads(line) for line in (trace.read_text().splitlines() if trace.exists() else [])
                         if '"measure"' in line and '"pid"' in line]
            if measuring:
                killed = measuring[0]["pid"]
                os.kill(killed, signal.SIGKILL)  # the worker timing its variants
            time.sleep(0.01)
    assert killed is not None, "no worker was caught measuring"
    # A lost worker is the machine's fault, not its variants': they are machine_error, the sweep stops
    # saying so, and a resume retries them.
    assert isinstance(done.get("error"), MachineError) and "was lost" in str(done["error"]), done
    df = slimlab.load(tmp_path / "runs" / "r")
    assert df.height == 4 and df["variant_key"].n_unique() == 4
    lost = df.filter(pl.col("status") == MACHINE_ERROR)
    assert lost.height >= 1 and all("left the cluster before it had timed them all" in r for r in lost["reason"])
    assert df.filter(pl.col("status") == "ok").height == 4 - lost.height
