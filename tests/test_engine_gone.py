"""An engine that stops answering mid-sweep is the machine's fault (issue 18: a dead engine is
never a variant's build_failed or broken): its variants' rows are machine_error, the sweep stops
with exit 75, and a resume, with the engine back, measures them.

The engine is slimlab's real one, reached through a unix socket this test forwards byte for byte
and closes at a chosen request: after that, connecting to its socket file is refused, as to the
socket of a dockerd that died. The shared engine itself is never stopped.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import slimlab
from slimlab import engine
from slimlab.faults import EXIT_CODE as MACHINE_EXIT

REPO = Path(__file__).resolve().parent.parent
SPEC = 'workloads = ["hello"]\nprofiles = ["static"]\nbases = ["scratch"]\nrepeats = 2\nwarmup = 0\n'


class EngineProxy:
    """A unix socket at ``path`` that forwards to the engine at ``upstream`` until the ``nth`` request
    naming ``dies_at`` arrives: that request is dropped, with every connection, and the socket stops
    listening (its file stays, so connecting is refused)."""

    def __init__(self, path: Path, upstream: str, dies_at: bytes | None = None, nth: int = 1) -> None:
        self.upstream, self.dies_at, self.left = upstream, dies_at, nth
        self.lock, self.sockets, self.dead = threading.Lock(), [], False
        path.unlink(missing_ok=True)
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(str(path))
        self.listener.listen(32)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # die() shut the listener down
                return
            server = socket.socket(socket.AF_UNIX)
            server.connect(self.upstream)
            with self.lock:
                self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, requests: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if requests and self.dies_at is not None and self.dies_at in chunk:
                    with self.lock:
                        self.left -= 1
                        last = self.left == 0
                    if last:
                        self.die()
                        return
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                end.close()

    def die(self) -> None:
        with self.lock:
            self.dead = True
            self.listener.shutdown(socket.SHUT_RDWR)
            self.listener.close()
            for end in self.sockets:
                with contextlib.suppress(OSError):  # closed already
                    end.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def upstream(docker_engine) -> str:
    found = engine.status()
    if not found.url.startswith("unix://"):
        pytest.fail(f"the test forwards a unix socket; the engine answers at {found.url}")
    return found.url.removeprefix("unix://")


def sweep_through(proxy_path: Path, spec: Path, data: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "DOCKER_HOST": f"unix://{proxy_path}"}
    return subprocess.run([sys.executable, "-m", "slimlab.cli", "sweep", str(spec), "--data", str(data),
                           "--run-id", "gone", "-q"], capture_output=True, text=True, env=env, timeout=600,
                          check=False)


@pytest.mark.parametrize(("stage", "dies_at", "nth"), [
    ("image build", b"/images/slimlab/image:", 1),  # the built image looked up: build_image's first call
    ("timed start", b"/containers/create", 2),  # after the check's container, a timed one (or the floor's)
])
def test_an_engine_that_stops_answering_is_machine_error_and_a_resume_measures_the_variant(
        upstream, tmp_path, stage, dies_at, nth):
    spec, data, path = tmp_path / "spec.toml", tmp_path / "data", tmp_path / "engine.sock"
    spec.write_text(SPEC)
    proxy = EngineProxy(path, upstream, dies_at, nth)
    stopped = sweep_through(path, spec, data)
    assert proxy.dead, f"the {stage} never reached the engine: {stopped.stderr}"
    assert stopped.returncode == MACHINE_EXIT, stopped.stderr
    assert "the engine stopped answering" in stopped.stderr and "--run-id gone" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    (row,) = slimlab.load(data / "runs" / "gone").iter_rows(named=True)
    assert row["status"] == "machine_error", row["reason"]
    assert row["reason"].startswith("the engine stopped answering") and "Connection refused" in row["reason"]

    if stage == "image build":  # once is enough: the resume path is the same for every stage
        EngineProxy(path, upstream)  # the engine back, at the same socket
        resumed = sweep_through(path, spec, data)
        assert resumed.returncode == 0, resumed.stderr
        (row,) = slimlab.load(data / "runs" / "gone").iter_rows(named=True)
        assert row["status"] == "ok", row["reason"]
        assert row["startup_n"] == 2
