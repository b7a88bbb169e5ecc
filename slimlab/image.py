"""The image stage: a variant's binary packed onto a base, built and checked on a real engine.

Each image is ``FROM <base>`` plus one layer holding the binary at ``/app/<name>``, run as
the ``nonroot`` user (65532) with the binary as its entrypoint. Bases come from
``slimlab.bases`` (assembled from Debian packages, never pulled) and are imported into
the engine once, tagged by their content digest. Images are tagged by what decides
their content (base digest, binary hash, Dockerfile), so an unchanged variant is not
built again.

The figures are the engine's own: ``Size`` as ``docker image inspect`` reports it, each
layer's size as ``docker history`` does, the size a registry would transfer (each
layer tar gzip-compressed, as ``docker push`` sends it) and the layer efficiency and
wasted bytes by dive's definitions (``slimlab.layerfs``), the last two from one
``docker save`` of the image. Every container is removed, whatever happens.

Every container slimlab starts, the functional check's as every timed start's, is confined
the same way (``Confinement``): user 65532, a read-only root with a private tmpfs on /tmp,
no capabilities, no privilege gain, and the spec's ``memory_limit_mb`` and ``pids_limit``. A
CLI gets no network; a server its own network namespace on slimlab's bridge network
(``SERVER_NETWORK``) with its ports published on the host's 127.0.0.1 only. So the functional
check is one run, hardened: there is no plain run left whose result could differ from what
is timed. A program that hits a limit is a failure naming the limit (``limit_hit``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import socket
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import cache, layerfs
from .model.spec import SETTINGS
from .proc import tail
from .workloads import Workload

NONROOT = "65532:65532"
# Servers' network: a user-defined bridge, made on first use (server_network). slimlab's own
# engine runs with --bridge=none --iptables=false (engine.DOCKERD_FLAGS), so there is no default
# bridge; a user-defined one works there all the same, its published ports served by the
# engine's userland proxy (docker-proxy) on the host's loopback. Not the host's network, although
# a server starts faster there (README, "Images"): making the namespace is a cost a server on its
# own network pays in production too, and the floor, timed on this network too, states it.
SERVER_NETWORK = "slimlab-servers"
# The network's own label: shared by every sweep, it has no owner, so no clean-up of LABEL's
# dead owners ("host:pid") may take it for one of theirs.
NETWORK_LABELS = {"slimlab.network": "servers"}
_NETWORKS_MADE: set[tuple[str, str]] = set()  # (engine URL, network) known to be there
# The lines a program prints when the kernel refuses it a process or thread (EAGAIN from
# clone, errno 11): Go's runtime, glibc's pthread_create under cgo, os/exec's fork. The same
# lines with another errno (ENOMEM, 12: out of memory) are not the pids limit.
_PIDS_REFUSED = re.compile(r"failed to create new OS thread \(.*errno=11\).*|"
                           r"pthread_create failed: resource temporarily unavailable.*|"
                           r"fork/exec .*resource temporarily unavailable.*", re.IGNORECASE)


@dataclass(frozen=True)
class Confinement:
    """How every container slimlab starts runs, as a hardened pod would: not root, a read-only
    root with /tmp a private tmpfs (an emptyDir), no capabilities, no privilege gain, and
    limits on memory (swap included: none beyond it) and on processes and threads."""

    memory_limit_mb: int = SETTINGS["memory_limit_mb"].default
    pids_limit: int = SETTINGS["pids_limit"].default

    @classmethod
    def of(cls, spec) -> Confinement:
        return cls(spec.memory_limit_mb, spec.pids_limit)

    def options(self, network: str = "none") -> dict[str, Any]:
        """The docker SDK's ``containers.create`` arguments; ``network``: "none" or SERVER_NETWORK."""
        memory = f"{self.memory_limit_mb}m"
        return {"user": NONROOT, "read_only": True, "tmpfs": {"/tmp": ""}, "cap_drop": ["ALL"],
                "security_opt": ["no-new-privileges"], "mem_limit": memory, "memswap_limit": memory,
                "pids_limit": self.pids_limit, "network_mode": network}

    def record(self) -> dict[str, Any]:
        """What a run's manifest says of its containers."""
        return {**{k: v for k, v in self.options().items() if k != "network_mode"},
                "memory_limit_mb": self.memory_limit_mb,
                "network": {"cli": "none",
                            "server": f"{SERVER_NETWORK} (bridge), ports published on 127.0.0.1"}}

    def limit_hit(self, container, stderr: str) -> str | None:
        """Which limit a container that failed ran into: the engine's OOMKilled (set when the
        kernel killed any of its processes for memory, also a child of the launcher), else the
        program's own word that it was refused a process or thread; None for neither."""
        try:
            container.reload()
            oom = bool(container.attrs["State"].get("OOMKilled"))
        except Exception:  # noqa: BLE001 - gone already: its stderr may still say
            oom = False
        if oom:
            return f"killed by the memory limit (memory_limit_mb = {self.memory_limit_mb}; OOMKilled)"
        refused = _PIDS_REFUSED.search(stderr)
        if refused:
            return f"refused a process or thread by the pids limit (pids_limit = {self.pids_limit}): " \
                   f"{refused.group(0).strip()[:200]}"
        return None


def server_network(api, name: str = SERVER_NETWORK, remake: bool = False) -> str:
    """The bridge network ``name`` on this engine, made when it is not there (as another sweep may
    at the same moment: the engine refuses a second of the same name, and the first is used).
    ``remake``: it was removed since (network_gone), so it is looked for again, not taken as known."""
    known = (getattr(api.api, "base_url", ""), name)
    if remake:
        _NETWORKS_MADE.discard(known)
    if known not in _NETWORKS_MADE:
        try:
            api.networks.get(name)
        except Exception:  # noqa: BLE001 - docker.errors.NotFound: not made yet
            try:
                api.networks.create(name, driver="bridge", check_duplicate=True, labels=NETWORK_LABELS)
            except Exception:  # noqa: BLE001 - made meanwhile by another sweep; else the get says why
                pass
            api.networks.get(name)
        _NETWORKS_MADE.add(known)
    return name


def network_gone(exc: Exception, network: str) -> bool:
    """Did the engine refuse a container's start because its network ``network`` is not there
    (removed after it was made, by someone's clean-up)?"""
    said = str(getattr(exc, "explanation", None) or exc)
    return getattr(getattr(exc, "response", None), "status_code", None) == 404 and \
        f"network {network} not found" in said


# Every container slimlab creates carries this label, its value naming the process that owns it
# ("host:pid"), so leftovers of a killed sweep can be found and removed (remove_leftovers)
# without touching anyone else's -- nor those of another sweep running on the same engine.
LABEL = "slimlab.container"


def owner_label() -> dict[str, str]:
    return {LABEL: f"{socket.gethostname()}:{os.getpid()}"}


def _owner_gone(value: str) -> bool:
    host, _, pid = value.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return host == ""  # another host's: not ours to judge; no owner at all: a leftover
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass(frozen=True)
class ContainerCheck:
    ok: bool
    reason: str | None = None
    status: str = "broken"  # when not ok: "timeout" for a container that hung and was killed


@dataclass(frozen=True)
class ImageOutcome:
    ok: bool
    base: str
    tag: str | None = None
    size_bytes: int | None = None  # the engine's Size (docker image inspect)
    compressed_bytes: int | None = None  # the layers gzip-compressed, as a registry receives them
    layer_bytes: tuple[int, ...] = ()  # each layer's size, base first (docker history)
    seconds: float = 0.0  # building (0 when the image was there already)
    cached: bool = False
    base_packages: tuple[str, ...] = ()  # "package=version" of the base
    reason: str | None = None  # why it failed to build
    base_bytes_by_kind: dict[str, int] = field(default_factory=dict)
    binary_bytes: int | None = None  # the binary's file, the one layer the image adds
    layer_waste: layerfs.LayerEfficiency | None = None  # efficiency and wasted bytes, by dive's definitions

    def bytes_by_kind(self) -> dict[str, int]:
        """What the image's bytes are, every kind of KINDS: the base's files by kind plus the binary."""
        kinds = dict.fromkeys(KINDS, 0)
        kinds["binary"] = self.binary_bytes or 0
        for kind, size in self.base_bytes_by_kind.items():
            kinds[BASE_KINDS.get(kind, "rest")] += size
        return kinds


# The breakdown of an image's bytes, for a stacked report: the program and the libraries it
# loads beyond glibc (a layer of their own on the libc base), what a Go program may need from its base (roots for TLS, time zones, glibc for cgo), and the rest (users,
# configuration, licences, a debugging shell). The base's kinds (slimlab.bases) map onto it.
KINDS = ("binary", "libs", "ca_bundle", "zoneinfo", "libc", "rest")
BASE_KINDS = {"ca-certificates": "ca_bundle", "zoneinfo": "zoneinfo", "libc": "libc", "libs": "libs"}


def dockerfile(base_ref: str, name: str, files: bool = False) -> str:
    # Files besides the binary (its own libraries on the libc base, a probe's CA bundle) are
    # a layer of their own, below the binary's.
    return (f"FROM {base_ref}\n"
            + ("COPY files/ /\n" if files else "")
            + f"COPY {name} /app/{name}\n"
            f"USER {NONROOT}\n"
            f'ENTRYPOINT ["/app/{name}"]\n')


def _context(text: str, binary: Path, name: str, files: dict[str, Path] | None = None) -> io.BytesIO:
    """The build context as the engine takes it: a tar with the Dockerfile, the binary and
    the other files under files/, with fixed times and owners so the same inputs give the same layer."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("Dockerfile")
        data = text.encode()
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, io.BytesIO(data))
        for arcname, path, mode in [(name, binary, 0o755),
                                    *((f"files/{p}", f, 0o644) for p, f in sorted((files or {}).items()))]:
            info = tar.gettarinfo(str(path), arcname=arcname)
            info.mtime, info.uid, info.gid, info.uname, info.gname, info.mode = 0, 0, 0, "", "", mode
            with open(path, "rb") as fh:
                tar.addfile(info, fh)
    buffer.seek(0)
    return buffer


def _base_ref(api, layer) -> str:
    """The base's image in the engine (imported once, by digest); "scratch" is no image."""
    if layer.tar is None:
        return "scratch"
    repository, tag = f"slimlab/base-{layer.name}", layer.digest.split(":")[-1][:16]
    ref = f"{repository}:{tag}"
    try:
        api.images.get(ref)
    except Exception:  # noqa: BLE001 - not there yet (docker.errors.ImageNotFound)
        api.api.import_image(src=str(layer.tar), repository=repository, tag=tag)
    return ref


def saved(api, tag: str) -> tarfile.TarFile:
    """The image as ``docker save`` writes it, read once into memory (either archive layout: the
    legacy ``<id>/layer.tar`` or the OCI ``blobs/sha256/...`` of newer engines)."""
    data = io.BytesIO()
    for chunk in api.images.get(tag).save(named=False):
        data.write(chunk)
    data.seek(0)
    return tarfile.open(fileobj=data)


def compressed_size(archive: tarfile.TarFile) -> int:
    """About the bytes a registry would receive: each layer of ``docker save`` once, gzip -6
    compressed (docker push uses Go's gzip at its default level: within a few percent)."""
    layers = dict.fromkeys(layerfs.layer_paths(archive))  # manifest.json's, each once
    return sum(len(gzip.compress(archive.extractfile(path).read(), compresslevel=6)) for path in layers)


def inputs(layer, closure=None, files: dict[str, Path] | None = None
           ) -> tuple[dict[str, Path], tuple[str, ...], dict[str, int]]:
    """What goes on the base besides the binary (path in the image -> file here), the image's
    packages ("package=version": the base's and the closure's) and the base's bytes by kind."""
    libs = dict(closure.files) if closure else {}
    extra = {**libs, **(files or {})}
    packages = tuple(f"{p}={v}" for p, v in sorted({**layer.packages, **(closure.packages if closure else {})}.items()))
    by_kind = {**layer.bytes_by_kind, **({"libs": closure.bytes} if libs else {})}
    return extra, packages, by_kind


def measured(api, image, tag: str, layer, binary: Path, seconds: float, cached: bool, packages: tuple[str, ...],
             by_kind: dict[str, int]) -> ImageOutcome:
    """The engine's figures of an image it holds (``image``: the SDK's Image): history, save."""
    layers = tuple(h["Size"] for h in reversed(image.history()))
    with saved(api, tag) as archive:
        compressed, efficiency = compressed_size(archive), layerfs.analyze(archive)
    return ImageOutcome(True, layer.name, tag, image.attrs["Size"], compressed, layers, seconds, cached, packages,
                        base_bytes_by_kind=by_kind, binary_bytes=binary.stat().st_size, layer_waste=efficiency)


def build_image(api, layer, binary: Path, name: str, timeout_s: float = 600, closure=None,
                files: dict[str, Path] | None = None) -> ImageOutcome:
    """``binary`` as ``/app/<name>`` on the base ``layer`` (a bases.BaseLayer), built in the engine.

    ``closure`` (a bases.Closure): the binary's own libraries, in a layer between the two,
    their packages listed with the base's and their bytes as the kind ``libs``; ``files``
    (path in the image -> file here) go into that layer too."""
    extra, packages, by_kind = inputs(layer, closure, files)
    started = time.perf_counter()
    try:
        base_ref = _base_ref(api, layer)
        text = dockerfile(base_ref, name, bool(extra))
        key = hashlib.sha256(json.dumps([layer.digest, cache.file_sha256(binary), text,
                                         [[p, cache.file_sha256(f)] for p, f in sorted(extra.items())]]).encode()
                             ).hexdigest()
        tag = f"slimlab/image:{key[:32]}"
        try:
            image, cached = api.images.get(tag), True
        except Exception:  # noqa: BLE001 - not built yet
            image, _ = api.images.build(fileobj=_context(text, binary, name, extra), custom_context=True, tag=tag, rm=True,
                                        forcerm=True, timeout=timeout_s)
            cached = False
        return measured(api, image, tag, layer, binary, 0.0 if cached else time.perf_counter() - started, cached,
                        packages, by_kind)
    except Exception as exc:  # noqa: BLE001 - the engine's own message is the row's reason
        return ImageOutcome(False, layer.name, reason=f"image build: {type(exc).__name__}: {tail(str(exc), 600)}",
                            base_packages=packages, seconds=time.perf_counter() - started)


@dataclass(frozen=True)
class ContainerRun:
    exit_code: int | None  # None: it did not run to an exit (see problem)
    stdout: str
    stderr: str
    problem: str | None = None  # could not create or start it, or it hung
    hung: bool = False  # no exit within the timeout: killed and removed
    limit: str | None = None  # the limit it hit (Confinement.limit_hit), when it failed


def run_container(api, tag: str, command: list[str], environment: dict[str, str], timeout_s: float,
                  confinement: Confinement = Confinement()) -> ContainerRun:
    """Run the image once to its exit, confined and with no network, and collect what it said;
    the container is removed."""
    options = confinement.options("none")
    # The SDK raises DockerException, requests' errors or timeouts: each is this run's failure,
    # never the sweep's. (Its exception types are not imported here: the SDK loads lazily.)
    try:
        container = api.containers.create(tag, command=command, environment=environment, labels=owner_label(),
                                          **options)
    except Exception as exc:  # noqa: BLE001 - the engine's word is the reason
        return ContainerRun(None, "", "", f"could not create: {_explain(exc)}")
    try:
        try:
            container.start()
        except Exception as exc:  # noqa: BLE001 - the runtime refused to start it
            return ContainerRun(None, "", "", f"could not start: {_explain(exc)}")
        try:
            result = container.wait(timeout=timeout_s)
        except Exception as exc:  # noqa: BLE001 - a ReadTimeout: it hangs; or the engine went away
            return ContainerRun(None, "", "", f"no exit within {timeout_s:g}s, killed: {_explain(exc)}", hung=True)
        try:
            out = container.logs(stdout=True, stderr=False).decode(errors="replace")
            err = container.logs(stdout=False, stderr=True).decode(errors="replace")
        except Exception as exc:  # noqa: BLE001
            return ContainerRun(result.get("StatusCode"), "", "", f"could not read its output: {_explain(exc)}")
        limit = confinement.limit_hit(container, err) if result.get("StatusCode") != 0 else None
        return ContainerRun(result.get("StatusCode"), out, err, limit=limit)
    finally:
        discard(container)


def discard(container) -> None:
    """Remove a container, killing it first if it still runs; a failure here is not the run's."""
    try:
        container.remove(force=True)
    except Exception:  # noqa: BLE001 - already gone, or the engine is busy: remove_leftovers retries
        pass


def remove_leftovers(api) -> int:
    """Remove containers slimlab left behind (a killed sweep, whose process is gone); the number
    removed. Containers of a sweep still running, here or on another host, are left alone."""
    removed = 0
    for container in api.containers.list(all=True, filters={"label": LABEL}):
        if not _owner_gone(container.labels.get(LABEL, "")):
            continue
        discard(container)
        removed += 1
    return removed


def _explain(exc: Exception) -> str:
    return tail(getattr(exc, "explanation", None) or str(exc), 400)


def check_in_container(api, tag: str, workload: Workload, timeout_s: float,
                       confinement: Confinement = Confinement()) -> ContainerCheck:
    """Run a CLI's image once, confined: it must print what it should and exit as it should."""
    ran = run_container(api, tag, workload.run_args(), workload.run_env(), timeout_s, confinement)
    if ran.problem:
        return ContainerCheck(False, ran.problem, "timeout" if ran.hung else "broken")
    if ran.limit and ran.exit_code != workload.expect_exit:
        return ContainerCheck(False, f"exit {ran.exit_code}: {ran.limit}")
    if ran.exit_code != workload.expect_exit:
        said = tail(ran.stderr, 400)
        return ContainerCheck(False, f"exit {ran.exit_code}, expected {workload.expect_exit}" + (f"; {said}" if said else ""))
    if workload.expect_stdout is not None and ran.stdout != workload.expect_stdout:
        return ContainerCheck(False, f"wrong output: expected {workload.expect_stdout!r}, got {ran.stdout[-300:]!r}")
    return ContainerCheck(True)
