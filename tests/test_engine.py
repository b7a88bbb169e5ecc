"""The Docker engine's lifecycle on a real dockerd, a first image through the docker SDK, the
storage driver it runs with (overlay2 here, vfs only where overlayfs cannot work) and the
engine's own container floor a sweep times among its images."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time

import polars as pl
import pytest
from artifacts import built
from conftest import path_without

import slimlab
from slimlab import engine, image, results, workloads
from slimlab.errors import ToolError
from slimlab.measure import calibrate_overhead, noop_path
from slimlab.measure.launcher import noop_server_path
from slimlab.sweep import MEASURE_BURST, TRACE_ENV


def docker_cli(url: str, *args: str) -> str:
    done = subprocess.run(["docker", *args], env={**os.environ, "DOCKER_HOST": url}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_status_agrees_with_the_docker_cli(docker_engine):
    found = engine.status()
    assert found.reachable and found.url == docker_engine.url
    assert tuple(int(p) for p in found.api_version.split(".")) >= engine.MIN_API
    assert docker_cli(found.url, "version", "--format", "{{.Server.Version}}") == found.version
    assert engine.start() == found  # already answering: reused, nothing started


def test_stop_never_touches_an_engine_slimlab_did_not_start(docker_engine, tmp_path, monkeypatch):
    # As if the engine had been started by someone else: slimlab wrote down no pid for it.
    monkeypatch.setattr(engine, "OWNER", tmp_path / "owner.json")
    assert engine.stop() is False
    assert engine.status().reachable and not engine.status().owned
    # A pid written down that is not a dockerd (reused by another program) is not stopped either.
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (tmp_path / "owner.json").write_text(f'{{"pid": {sleeper.pid}, "socket": "/nonexistent"}}')
        assert engine.stop() is False
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_no_engine_says_how_to_start_or_install_one(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    monkeypatch.setattr(engine, "SOCKET", tmp_path / "nor-this.sock")
    monkeypatch.setattr(engine, "DEFAULT_SOCKET", tmp_path / "nor-that.sock")
    found = engine.status()
    assert not found.reachable and "slimlab engine start" in found.reason
    with pytest.raises(ToolError, match="slimlab engine start"):
        engine.client()
    monkeypatch.setenv("PATH", path_without({"dockerd"}, tmp_path / "bin"))
    assert "apt-get install docker.io" in engine.status().reason
    with pytest.raises(ToolError, match="apt-get install docker.io"):
        engine.start()


def _context(binary) -> io.BytesIO:
    """A build context: a FROM scratch Dockerfile and the binary, as the SDK takes it (a tar)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        dockerfile = b'FROM scratch\nCOPY hello /hello\nUSER 65532\nENTRYPOINT ["/hello"]\n'
        info = tarfile.TarInfo("Dockerfile")
        info.size, info.mtime = len(dockerfile), 0
        tar.addfile(info, io.BytesIO(dockerfile))
        tar.add(binary, arcname="hello")
    buffer.seek(0)
    return buffer


def test_a_scratch_image_builds_runs_and_is_cleaned_up(docker_engine):
    api = engine.client()
    binary = built("hello", "static")
    tag = f"slimlab-test/hello:{os.getpid()}-{time.monotonic_ns()}"
    image, _ = api.images.build(fileobj=_context(binary), custom_context=True, tag=tag, rm=True, forcerm=True)
    try:
        output = api.containers.run(tag, remove=True, network_mode="none", read_only=True, cap_drop=["ALL"],
                                    security_opt=["no-new-privileges"])
        assert output.decode() == workloads.resolve("hello").expect_stdout
        # The engine's size of a FROM scratch image is the binary's, and the CLI says the same.
        image.reload()
        assert image.attrs["Size"] == os.stat(binary).st_size
        assert int(docker_cli(docker_engine.url, "image", "inspect", "-f", "{{.Size}}", tag)) == image.attrs["Size"]
        assert api.containers.list(all=True, filters={"ancestor": tag}) == []  # --rm removed it
    finally:
        api.images.remove(tag, force=True)
        api.close()


# -- the storage driver -----------------------------------------------------------------

IMAGE_REPEATS = 10  # two rounds of MEASURE_BURST starts
SMALL_IMAGES = {"workloads": ["hello"], "profiles": ["static"], "targets": ["linux/amd64"],
                "bases": ["none", "scratch", "static"], "repeats": 3, "image_repeats": IMAGE_REPEATS, "warmup": 0}


@pytest.fixture(scope="module")
def image_sweep(docker_engine, tmp_path_factory):
    """A small image sweep (hello on scratch and static, and bare), traced: its run directory,
    rows, manifest and the trace's measure events."""
    where = tmp_path_factory.mktemp("engine-sweep")
    trace = where / "trace.jsonl"
    before = os.environ.get(TRACE_ENV)
    os.environ[TRACE_ENV] = str(trace)
    try:
        run = slimlab.sweep(SMALL_IMAGES, data_dir=where / "data", run_id="e", progress=False)
    finally:
        if before is None:
            os.environ.pop(TRACE_ENV, None)
        else:
            os.environ[TRACE_ENV] = before
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    return run, slimlab.load(run), slimlab.load_manifests(run)[0], [e for e in events if e["event"] == "measure"]


def test_the_engine_the_suite_uses_is_overlay2_and_the_sweep_manifest_names_it(docker_engine, image_sweep):
    assert docker_cli(docker_engine.url, "info", "--format", "{{.Driver}}") == engine.PRODUCTION_DRIVER
    _, df, manifest, _ = image_sweep
    assert df.filter(pl.col("base") != "none")["status"].to_list() == ["ok", "ok"]
    assert manifest["sessions"][-1]["engine"]["storage_driver"] == "overlay2"
    assert results.vfs_run_ids([manifest]) == set()


@pytest.fixture
def overlay_mount(tmp_path):
    """A real overlay file system mounted under ``tmp_path`` (as root); unmounted after."""
    layers = {name: tmp_path / name for name in ("lower", "upper", "work", "merged")}
    for path in layers.values():
        path.mkdir()
    options = f"lowerdir={layers['lower']},upperdir={layers['upper']},workdir={layers['work']}"
    done = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(layers["merged"])],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"mount -t overlay (needs root): {done.stderr}"
    try:
        yield layers["merged"]
    finally:
        subprocess.run(["umount", "-l", str(layers["merged"])], capture_output=True, timeout=30, check=False)


def test_the_probe_falls_back_to_vfs_with_a_reason_for_a_data_directory_on_overlay(overlay_mount, tmp_path):
    home = overlay_mount / "engine"  # not there yet: the probe looks at the mount that will hold it
    choice = engine.storage_driver(home)
    assert choice.driver == engine.FALLBACK_DRIVER
    assert str(home) in choice.reason and "on overlay" in choice.reason and "upper layer" in choice.reason
    # What the probe foresees is what the kernel does: an overlay whose upper layer is on an overlay is refused.
    nested = {name: overlay_mount / name for name in ("l", "u", "w", "m")}
    for path in nested.values():
        path.mkdir()
    refused = subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                              f"lowerdir={nested['l']},upperdir={nested['u']},workdir={nested['w']}",
                              str(nested["m"])], capture_output=True, text=True, timeout=30)
    if refused.returncode == 0:
        subprocess.run(["umount", str(nested["m"])], check=False, timeout=30)
    assert refused.returncode != 0
    # Beside it, on this machine's own disk, overlay2 is chosen.
    beside = engine.storage_driver(tmp_path / "elsewhere")
    assert beside.driver == engine.PRODUCTION_DRIVER, beside.reason


# -- the container floor ------------------------------------------------------------------


def test_the_container_floor_is_a_noop_on_scratch_timed_in_the_same_rounds_as_the_images(docker_engine,
                                                                                        image_sweep):
    run, df, manifest, measured = image_sweep
    floor = manifest["sessions"][-1]["measurement"]["container_floor"]
    assert floor["error"] is None and list(floor["kinds"]) == ["cli"]  # hello is a CLI
    cli = floor["kinds"]["cli"]
    assert cli["error"] is None and cli["network"] == "none"
    assert cli["n"] == IMAGE_REPEATS == len(cli["samples_ms"])
    assert cli["ci_low_ms"] <= cli["median_ms"] <= cli["ci_high_ms"]
    assert results.container_floors([manifest]) == {"e": floor}
    # Its image is the no-op alone on scratch, and the engine runs it to exit 0.
    assert int(docker_cli(docker_engine.url, "image", "inspect", "-f", "{{.Size}}", cli["image"])) \
        == os.stat(noop_path()).st_size
    docker_cli(docker_engine.url, "run", "--rm", "--network", "none", cli["image"])
    # Interleaved: a burst in every round the images have (after one warm-up start each), its first
    # before each image's last and its last after each image's first.
    positions: dict[str, list[int]] = {}
    for index, event in enumerate(measured):
        positions.setdefault(event["variant"], []).append(index)
    floor_bursts = positions.pop("container-floor-cli")[1:]
    assert len(floor_bursts) == -(-IMAGE_REPEATS // MEASURE_BURST) >= 2
    for key in df.filter(pl.col("base") != "none")["variant_key"]:
        bursts = positions[key][1:]
        assert len(bursts) == len(floor_bursts)
        assert floor_bursts[0] < bursts[-1] and floor_bursts[-1] > bursts[0], (floor_bursts, bursts)
    # A container costs far more than a bare start of the same no-op: the floor is the engine's.
    bare_noop = calibrate_overhead(runs=10)["median_ms"]
    assert cli["median_ms"] > 10 * bare_noop
    rows = {r["base"]: r for r in df.iter_rows(named=True)}
    assert rows["scratch"]["container_floor_ms_median"] == rows["static"]["container_floor_ms_median"] \
        == cli["median_ms"]
    assert rows["none"]["container_floor_ms_median"] is None  # a bare start has no container in it


def test_a_server_image_gets_the_floor_of_a_noop_server_timed_as_servers_are(docker_engine, tmp_path):
    spec = {"workloads": ["hello", "httpd"], "profiles": ["static"], "targets": ["linux/amd64"],
            "bases": ["scratch"], "repeats": 2, "image_repeats": 3, "warmup": 0}
    run = slimlab.sweep(spec, data_dir=tmp_path / "data", progress=False)
    floor = slimlab.load_manifests(run)[0]["sessions"][-1]["measurement"]["container_floor"]
    assert sorted(floor["kinds"]) == ["cli", "server"]
    server = floor["kinds"]["server"]
    assert server["network"] == image.SERVER_NETWORK and server["error"] is None and server["n"] == 3
    assert int(docker_cli(docker_engine.url, "image", "inspect", "-f", "{{.Size}}", server["image"])) \
        == os.stat(noop_server_path()).st_size
    rows = {r["workload"]: r for r in slimlab.load(run).iter_rows(named=True)}
    assert rows["httpd"]["status"] == rows["hello"]["status"] == "ok"
    for workload, kind in (("hello", "cli"), ("httpd", "server")):
        assert rows[workload]["container_floor_ms_median"] == floor["kinds"][kind]["median_ms"]
