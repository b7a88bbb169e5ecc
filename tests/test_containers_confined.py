"""Every container slimlab starts is confined as the spec says (issue 18, case 3), read back from
the engine's own inspect of each container; a program that hits a limit is a row naming it."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
from pathlib import Path

import polars as pl
import pytest

import slimlab
from artifacts import go_program
from slimlab import dockerfile, engine, image, workloads
from slimlab.measure.container import LAUNCHER_IN_CONTAINER, ContainerRunner
from slimlab.measure.launcher import launcher_path
from slimlab.measure.samples import CheckFailure

MEMORY_MB, PIDS = 256, 100  # not the defaults: the spec's values must reach the engine


@pytest.fixture
def created(monkeypatch):
    """The engine's inspect of every container created meanwhile (the SDK's create returns it)."""
    from docker.models.containers import ContainerCollection

    found, lock, create = [], threading.Lock(), ContainerCollection.create

    def recording(self, *args, **kwargs):
        container = create(self, *args, **kwargs)
        with lock:
            found.append(container.attrs)
        return container

    monkeypatch.setattr(ContainerCollection, "create", recording)
    return found


@pytest.fixture
def confined_run(docker_engine, created, tmp_path):
    spec = {"workloads": ["hello", "httpd"], "profiles": ["static"], "bases": ["scratch"], "repeats": 2,
            "warmup": 0, "memory_limit_mb": MEMORY_MB, "pids_limit": PIDS}
    run = slimlab.sweep(spec, data_dir=tmp_path, run_id="confined", progress=False)
    df, swept = slimlab.load(run), list(created)
    api = engine.client()
    try:  # the Dockerfile export's container (never started), made outside any sweep
        (hello,) = df.filter(pl.col("workload") == "hello").iter_rows(named=True)
        dockerfile.file_in_image(api, hello["image_tag"], "/app/hello")
    finally:
        api.close()
    return df, swept, json.loads((Path(run) / "manifest.json").read_text()), created[len(swept):]


def test_every_container_is_read_only_unprivileged_and_limited_as_the_spec_says(confined_run):
    df, containers, manifest, _ = confined_run
    assert df["status"].to_list() == ["ok", "ok"], df.select("workload", "reason").rows()
    floors = {kind: found["image"] for kind, found in
              manifest["sessions"][-1]["measurement"]["container_floor"]["kinds"].items()}
    tags = {r["workload"]: r["image_tag"] for r in df.iter_rows(named=True)}
    roles = []
    for attrs in containers:
        host, config = attrs["HostConfig"], attrs["Config"]
        timed = config["Entrypoint"] == [LAUNCHER_IN_CONTAINER]
        workload = next((w for w, t in tags.items() if t == config["Image"]), None)
        kind = next((k for k, t in floors.items() if t == config["Image"]), None)
        role = "floor" if kind else "timed" if timed else "check"
        roles.append((role, workload or kind, host["NetworkMode"]))
        assert host["ReadonlyRootfs"] is True, roles[-1]
        assert host["CapDrop"] == ["ALL"], roles[-1]
        assert "no-new-privileges" in host["SecurityOpt"], roles[-1]
        assert config["User"] == "65532:65532", roles[-1]
        assert host["PidsLimit"] == PIDS and host["Memory"] == MEMORY_MB << 20, roles[-1]
        assert host["MemorySwap"] == MEMORY_MB << 20, roles[-1]  # no swap beyond the limit
        assert "/tmp" in (host["Tmpfs"] or {}), roles[-1]
        if (workload or kind) in ("httpd", "server"):  # its own namespace, its ports on loopback only
            assert host["NetworkMode"] == image.SERVER_NETWORK, roles[-1]
            bindings = [b for port in host["PortBindings"].values() for b in port]
            assert bindings and all(b["HostIp"] == "127.0.0.1" for b in bindings), host["PortBindings"]
        else:
            assert host["NetworkMode"] == "none", roles[-1]
    # Each kind of container was made and inspected: the checks, the timed starts and the floors
    # (a server's check is the runner's, so its container is the timed starts' too: 1 + 2).
    kinds = {(role, what) for role, what, _ in roles}
    assert {("check", "hello"), ("timed", "hello"), ("floor", "cli"), ("floor", "server")} <= kinds, sorted(kinds)
    assert sum(what == "httpd" for _, what, _ in roles) >= 3, roles


def test_the_dockerfile_exports_container_is_confined_with_the_default_limits(confined_run):
    _, _, _, exported = confined_run
    (attrs,) = exported
    host = attrs["HostConfig"]
    assert host["ReadonlyRootfs"] and host["CapDrop"] == ["ALL"] and attrs["Config"]["User"] == "65532:65532"
    assert host["NetworkMode"] == "none" and "no-new-privileges" in host["SecurityOpt"]
    assert host["PidsLimit"] == image.Confinement().pids_limit == 512
    assert host["Memory"] == image.Confinement().memory_limit_mb << 20 == 1024 << 20


def test_a_server_answers_on_its_loopback_port_from_its_own_network(confined_run):
    df, containers, manifest, _ = confined_run
    (httpd,) = df.filter(pl.col("workload") == "httpd").iter_rows(named=True)
    # Checked and timed: every start answered its health check through the published port.
    assert httpd["container_ok"] and httpd["container_hardened_ok"] and httpd["startup_n"] == 2, httpd["reason"]
    assert all(a["HostConfig"]["NetworkMode"] != "host" for a in containers)
    engine_record = manifest["sessions"][-1]["engine"]["containers"]
    assert engine_record["memory_limit_mb"] == MEMORY_MB and engine_record["pids_limit"] == PIDS
    assert engine_record["read_only"] is True and engine_record["cap_drop"] == ["ALL"]


def test_a_program_past_a_limit_is_a_broken_row_naming_the_limit(docker_engine, tmp_path):
    """256 MB touched against a 64 MB limit: the kernel kills it (OOMKilled); 200 threads against a
    pids limit of 32: Go's runtime is refused one. Both checked and, for memory, timed too. Each does
    so only as the image's user (65532), so the sweep's bare check of the same binary passes and the
    container's limits are what is hit."""
    root = tmp_path / "src"
    root.mkdir()
    hog = go_program(root, "memhog", """\
        package main

        import (
            "fmt"
            "os"
        )

        func main() {
            var keep [][]byte
            for i := 0; i < 32 && os.Getuid() == 65532; i++ { // 32 x 8 MB, every page touched
                b := make([]byte, 8<<20)
                for j := range b {
                    b[j] = 1
                }
                keep = append(keep, b)
            }
            fmt.Println("allocated", len(keep)*8, "MB")
        }
        """, 'kind = "cli"\nexpect_stdout = "allocated 0 MB\\n"\n')  # bare; 256 in a container
    threads = go_program(root, "threads", """\
        package main

        import (
            "fmt"
            "os"
            "runtime"
            "time"
        )

        func main() {
            for i := 0; i < 200 && os.Getuid() == 65532; i++ { // each goroutine holds an OS thread of its own
                go func() { runtime.LockOSThread(); time.Sleep(time.Hour) }()
            }
            time.Sleep(300 * time.Millisecond)
            fmt.Println("done")
        }
        """, 'kind = "cli"\nexpect_stdout = "done\\n"\n')
    run = slimlab.sweep({"workloads": [hog, threads], "profiles": ["static"], "bases": ["scratch"], "repeats": 1,
                         "warmup": 0, "memory_limit_mb": 64, "pids_limit": 32}, data_dir=tmp_path / "d",
                        progress=False)
    rows = {Path(r["workload"]).name: r for r in slimlab.load(run).iter_rows(named=True)}
    hogged, threaded = rows["memhog"], rows["threads"]
    assert hogged["status"] == "broken" and hogged["container_ok"] is False, hogged
    assert "memory limit (memory_limit_mb = 64; OOMKilled)" in hogged["reason"], hogged["reason"]
    assert threaded["status"] == "broken", threaded
    assert "pids limit (pids_limit = 32)" in threaded["reason"], threaded["reason"]
    assert "failed to create new OS thread" in threaded["reason"]
    # A timed start that hits the limit says so too (the launcher survives; its child was killed).
    api = engine.client()
    try:
        runner = ContainerRunner(api, hogged["image_tag"], "/app/memhog", launcher_path(),
                                 confinement=image.Confinement(64, 32))
        workload = workloads.resolve(hog)
        with pytest.raises(CheckFailure) as failed:
            runner.samples(workload, Path(), 30, 1)
        assert failed.value.status == "broken"
        assert "memory limit (memory_limit_mb = 64; OOMKilled)" in failed.value.reason, failed.value.reason
    finally:
        api.close()


@pytest.mark.unit
def test_the_report_says_which_network_the_server_floor_ran_on():
    from slimlab.report.html import _floor_facts

    measured = {"image": "slimlab/image:x", "median_ms": 200.0, "ci_low_ms": 190.0, "ci_high_ms": 210.0, "n": 10,
                "error": None}
    ours = _floor_facts({"kinds": {"server": {**measured, "network": image.SERVER_NETWORK}}}, None)[0]
    older = _floor_facts({"kinds": {"server": {**measured, "network": "host"}}}, None)[0]
    assert f"its own network ({image.SERVER_NETWORK}, its port published on 127.0.0.1)" in ours
    assert "the host's network" in older and "own network" not in older


@pytest.mark.unit
@pytest.mark.parametrize(("stderr", "pids"), [
    ("runtime: failed to create new OS thread (have 31 already; errno=11)\n"
     "runtime: may need to increase max user processes (ulimit -u)\nfatal error: newosproc", True),
    ("runtime: failed to create new OS thread (have 31 already; errno=12)\nfatal error: newosproc", False),
    ("runtime/cgo: pthread_create failed: Resource temporarily unavailable", True),
    ("runtime/cgo: pthread_create failed: Cannot allocate memory", False),
], ids=["go-eagain", "go-enomem", "cgo-eagain", "cgo-enomem"])
def test_only_eagain_is_the_pids_limit(stderr, pids):
    """EAGAIN (errno 11) is the pids limit's refusal; ENOMEM (12) is memory, not a process count."""
    class Removed:  # a container gone already: its stderr is all there is to go by
        def reload(self):
            raise RuntimeError("no such container")

    said = image.Confinement(64, 32).limit_hit(Removed(), stderr)
    assert (said is not None and "pids limit (pids_limit = 32)" in said) is pids, said


def test_a_server_network_removed_meanwhile_is_made_again(docker_engine, tmp_path):
    """The network is labelled as a network (no owner to outlive); when someone removes it after a
    sweep made it, the next server start makes it again instead of failing."""
    from slimlab.measure.container import FLOOR_WORKLOADS, floor_runner

    api = engine.client()
    name = f"slimlab-test-servers-{os.getpid()}"  # not the shared one, which others' sweeps use now
    try:
        floor = floor_runner(api, launcher_path(), "server", tmp_path)
        runner = dataclasses.replace(floor, server_network=name)
        assert image.server_network(api, name) == name
        labels = api.networks.get(name).attrs["Labels"]
        assert labels == image.NETWORK_LABELS and image.LABEL not in labels
        assert runner.check(FLOOR_WORKLOADS["server"], Path(), 30).startup_ms > 0
        api.networks.get(name).remove()  # someone's clean-up
        assert runner.check(FLOOR_WORKLOADS["server"], Path(), 30).startup_ms > 0
        assert api.networks.get(name).name == name
    finally:
        with contextlib.suppress(Exception):
            api.networks.get(name).remove()
        api.close()
