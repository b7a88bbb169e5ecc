"""Images on an engine named by DOCKER_HOST=ssh://, through a real sshd of the test's own.

The sshd listens on a free loopback port, with its own host key and config; its one
authorized key may run nothing but ``docker system dial-stdio`` against the tests' engine,
as a remote machine's docker would. The client's ~/.ssh (the key, the sshd's host key in
known_hosts: nothing prompts) is a HOME under tmp_path: /root/.ssh is never touched.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import require, wait_for_port

import slimlab
from slimlab import engine
from slimlab.errors import ToolError
from slimlab.report.html import _engine_html, render_report_html

SSHD = "/usr/sbin/sshd"  # Debian's openssh-server (make setup installs it); not on a non-root PATH
SPEC = {"workloads": ["hello"], "toolchains": ["go"], "profiles": ["default"], "bases": ["scratch"],
        "repeats": 3, "warmup": 0}


def docker_cli(url: str, *args: str) -> str:
    done = subprocess.run(["docker", *args], check=False, env={**os.environ, "DOCKER_HOST": url},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _keygen(path: Path) -> str:
    subprocess.run([require("ssh-keygen", "apt-get install openssh-client"), "-q", "-t", "ed25519", "-N", "",
                    "-f", str(path)], check=True, timeout=30)
    return path.with_suffix(".pub").read_text().strip()


@pytest.fixture
def ssh_url(docker_engine, tmp_path, monkeypatch):
    """ssh://root@127.0.0.1:PORT of an sshd started here, reaching the tests' engine; HOME is
    the client's, with its key and the sshd's host key. The sshd is stopped after the test."""
    if not Path(SSHD).is_file():
        pytest.fail(f"{SSHD} is missing: apt-get install openssh-server (`make setup` installs it)", pytrace=False)
    server = tmp_path / "sshd"
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    server.mkdir()
    host_key = _keygen(server / "host_key")
    client_key = _keygen(home / ".ssh" / "id_ed25519")  # one of the names paramiko looks for
    port = _free_port()
    (server / "authorized_keys").write_text(
        f'command="DOCKER_HOST={docker_engine.url} docker system dial-stdio",restrict {client_key}\n')
    (server / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {server / 'host_key'}\nPidFile none\n"
        f"AuthorizedKeysFile {server / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n")
    # A host key known beforehand, as after a first `ssh` by hand: paramiko refuses an unknown one.
    (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{port} {' '.join(host_key.split()[:2])}\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # its privilege separation directory, which Debian's service makes
    log = open(tmp_path / "sshd.log", "wb")  # noqa: SIM115 - closed after the sshd stopped
    sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", str(server / "sshd_config")], stdout=log, stderr=log)
    try:
        wait_for_port(port, sshd, lambda: f"sshd did not come up: {(tmp_path / 'sshd.log').read_text()}")
        # Go keeps its caches where they are: only ssh's files move to the new HOME.
        for name in ("GOCACHE", "GOMODCACHE", "GOPATH"):
            monkeypatch.setenv(name, subprocess.run(["go", "env", name], capture_output=True, text=True,
                                                    check=True).stdout.strip())
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)  # the key in HOME, not a user's agent
        yield f"ssh://root@127.0.0.1:{port}"
    finally:
        sshd.terminate()
        sshd.wait(timeout=10)
        log.close()


def test_a_sweep_builds_checks_and_times_its_image_on_the_engine_ssh_reaches(ssh_url, docker_engine, tmp_path,
                                                                            monkeypatch):
    # The same sweep through the local socket first: the figures to hold the ssh ones against.
    local_run = slimlab.sweep(SPEC, data_dir=tmp_path / "local", progress=False)
    (local,) = slimlab.load(local_run).iter_rows(named=True)
    monkeypatch.setenv("DOCKER_HOST", ssh_url)
    run = slimlab.sweep(SPEC, data_dir=tmp_path / "ssh", progress=False)
    (row,) = slimlab.load(run).iter_rows(named=True)
    assert row["status"] == "ok", row["reason"]
    assert row["runner"] == "container" and row["container_ok"] and row["container_hardened_ok"]
    assert row["startup_n"] == SPEC["repeats"]
    # Built in the engine behind the sshd: the docker CLI finds it there, through the socket.
    assert row["image_tag"] == local["image_tag"]
    assert docker_cli(docker_engine.url, "image", "inspect", "-f", "{{.Size}}", row["image_tag"]) \
        == str(row["image_size_bytes"])
    record = slimlab.load_manifests(run)[0]["sessions"][-1]["engine"]
    assert record["scheme"] == "ssh" and record["docker_host"] == ssh_url and record["url"] == ssh_url
    assert record["id"] == docker_cli(docker_engine.url, "info", "--format", "{{.ID}}")
    assert record["name"] == docker_cli(docker_engine.url, "info", "--format", "{{.Name}}")
    # The same engine ID answers at this machine's socket: ssh to 127.0.0.1 is this machine.
    assert record["this_machine"] is True and record["binfmt"] is not None
    page = render_report_html(slimlab.load(run), "remote", manifest=slimlab.load_manifests(run))
    assert f"at {ssh_url} (this machine; container start-up includes API round trips over ssh), " \
           f"DOCKER_HOST={ssh_url}" in page and record["id"] in page
    print(f"\ncontainer start-up of hello on scratch, median of {SPEC['repeats']}: "
          f"{local['startup_ms_median']:.1f} ms through {docker_engine.url}, "
          f"{row['startup_ms_median']:.1f} ms through {ssh_url}")


def test_an_engine_on_another_machine_builds_and_checks_but_does_not_time(ssh_url, tmp_path, monkeypatch):
    # This machine's sockets hidden: the engine's ID answers at none of them, as another machine's would.
    monkeypatch.setattr(engine, "SOCKET", tmp_path / "no.sock")
    monkeypatch.setattr(engine, "DEFAULT_SOCKET", tmp_path / "nor.sock")
    monkeypatch.setenv("DOCKER_HOST", ssh_url)
    found = engine.status()
    assert found.reachable and found.local is False and found.binfmt == ()
    assert "on another machine" in found.describe() and "unknown" in found.describe()
    run = slimlab.sweep(SPEC, data_dir=tmp_path / "d", progress=False)
    (row,) = slimlab.load(run).iter_rows(named=True)
    # Built and checked there (a CLI's check needs nothing of this machine), not timed: no wrong figures.
    assert row["status"] == "unsupported" and row["container_ok"] and row["image_size_bytes"] > 0
    assert "only on an engine on this machine" in row["reason"] and ssh_url in row["reason"]
    assert row["startup_ms_median"] is None
    record = slimlab.load_manifests(run)[0]["sessions"][-1]["engine"]
    assert record["this_machine"] is False and record["binfmt"] is None and record["scheme"] == "ssh"


def test_an_ssh_engine_that_does_not_answer_makes_image_rows_unsupported_naming_it(tmp_path, monkeypatch):
    url = f"ssh://root@127.0.0.1:{_free_port()}"  # nothing listens there
    monkeypatch.setenv("DOCKER_HOST", url)
    found = engine.status()
    assert not found.reachable and f"DOCKER_HOST={url} does not answer" in found.reason
    with pytest.raises(ToolError, match="unset DOCKER_HOST"):  # no engine of this machine's started instead
        engine.start()
    run = slimlab.sweep({**SPEC, "bases": ["none", "scratch"]}, data_dir=tmp_path / "d", progress=False)
    rows = {r["base"]: r for r in slimlab.load(run).iter_rows(named=True)}
    assert rows["none"]["status"] == "ok"  # the bare binary needs no engine
    assert rows["scratch"]["status"] == "unsupported" and url in rows["scratch"]["reason"]
    # Never a quiet fall back to this machine's engine, whose socket answers all along.
    assert rows["scratch"]["image_tag"] is None


def test_an_unknown_host_key_is_refused_and_says_how_to_accept_it(ssh_url, monkeypatch):
    (Path(os.environ["HOME"]) / ".ssh" / "known_hosts").write_text("")
    monkeypatch.setenv("DOCKER_HOST", ssh_url)
    found = engine.status()
    assert not found.reachable and "not found in known_hosts" in found.reason and "ssh -p" in found.reason


def test_a_password_in_docker_host_is_never_shown(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "ssh://root:hunter2@127.0.0.1:1")
    found = engine.status()  # the SDK refuses the URL itself, quoting it
    assert not found.reachable and "DOCKER_HOST=ssh://root@127.0.0.1:1 " in found.reason
    assert "hunter2" not in found.reason
    assert engine.shown("tcp://u:p%40ss@host:2376") == "tcp://u@host:2376"
    assert engine.shown("unix:///run/slimlab/docker.sock") == "unix:///run/slimlab/docker.sock"


@pytest.mark.unit
def test_the_report_names_the_engine_as_text():
    hostile = "<script>alert(1)</script>"
    manifest = {"run_id": "r", "sessions": [{"engine": {
        "url": "ssh://u@h", "docker_host": f"ssh://u@{hostile}", "scheme": "ssh", "id": "A:B", "name": hostile,
        "this_machine": False, "version": "20.10", "storage_driver": "vfs"}}]}
    text = _engine_html([manifest])
    assert "&lt;script&gt;alert(1)&lt;/script&gt; (ID A:B)" in text and "<script>" not in text
    assert "another machine: containers not timed" in text
