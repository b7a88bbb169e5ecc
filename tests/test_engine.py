"""The Docker engine's lifecycle on a real dockerd, and a first image through the docker SDK."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import time

import pytest
from artifacts import built
from conftest import path_without

from slimlab import engine, workloads
from slimlab.errors import ToolError


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
