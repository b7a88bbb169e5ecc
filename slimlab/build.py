"""Build one variant into an artifact, through a content-addressed cache.

The cache key hashes everything that decides the output bytes: the workload's source,
the compiler's identity, the exact command line, the target, and the environment the
compiler sees: what the command sets, plus what the caller's environment adds that a
Go build reads (``GOFLAGS``, ``GOAMD64``, ``CC``, ``CGO_*``, ...; :data:`CALLER_ENV`). When
the build links libc through a C compiler (cgo on, or gccgo), that compiler's identity
is hashed too. An unchanged variant is therefore never rebuilt, across runs and sweeps,
and a changed one always is. Failed builds are not cached: the next sweep tries again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from . import cache, proc
from .paths import default_cache_dir  # noqa: F401 - re-exported for callers
from .model import Profile, Target
from .toolchains import Toolchain, ToolchainInfo
from .workloads import Workload


@dataclass(frozen=True)
class BuildOutcome:
    ok: bool
    binary: Path | None
    seconds: float  # wall time of the compiler run (of the original run, when cached)
    cached: bool
    flags: list[str]  # argv words the profile chose, as run
    profile_env: list[str]  # "NAME=value" items the profile set
    reason: str | None = None
    timed_out: bool = False
    key: str | None = None  # the artifact cache key
    toolchain_version: str | None = None  # of the compiler that built for this target (a cross gccgo's own)


# Variables a caller may have set that change what the compiler writes although no profile
# sets them: the go command reads them from its environment. GOFLAGS adds flags,
# GOEXPERIMENT changes the runtime, GOTOOLCHAIN may hand the build to another Go, GOROOT,
# GOPATH, GOMODCACHE and GOWORK decide which sources are compiled (and their paths end up
# in untrimmed binaries), CC/CXX/AR/PKG_CONFIG and every CGO_* variable drive cgo, GCCGO
# names gccgo's compiler.
CALLER_ENV = ("GOFLAGS", "GOEXPERIMENT", "GOTOOLCHAIN", "GOFIPS140", "GO111MODULE", "GOROOT", "GOPATH",
              "GOMODCACHE", "GOWORK", "CC", "CXX", "AR", "PKG_CONFIG", "GCCGO")
# The instruction-set level of each GOARCH (GOAMD64=v3 emits AVX2 code, ...): only the
# target's own one is read, so a GOAMD64 in the caller's shell does not rebuild arm64.
ARCH_LEVEL = {"amd64": "GOAMD64", "arm64": "GOARM64", "386": "GO386", "arm": "GOARM"}


def goenv_settings() -> str | None:
    """The go command's own settings file (what `go env -w` writes; $GOENV, by default
    ~/.config/go/env): it sets GOFLAGS, GOAMD64, ... where the environment does not."""
    path = os.environ.get("GOENV") or os.path.join(
        os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "go", "env")
    if path == "off":
        return None
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return None


def build_env(command_env: dict[str, str], target: Target) -> dict[str, str]:
    """What the compiler's output depends on in its environment: the command's own
    variables, and those of the caller's (``os.environ``) that a build reads."""
    merged = {**os.environ, **command_env}
    level = ARCH_LEVEL.get(target.goarch)
    return {k: v for k, v in sorted(merged.items())
            if k in command_env or k in CALLER_ENV or k.startswith("CGO_") or k == level}


@functools.cache
def c_compiler_identity(cc: str) -> str:
    """The C compiler ``cc`` (as CC spells it: a name, a path, maybe with flags): its file
    and the first line of its ``--version``. Asked once per process."""
    words = shlex.split(cc) or ["gcc"]
    path = shutil.which(words[0])
    if path is None:
        return f"{cc}: missing"
    done = proc.run([path, "--version"], timeout=60)
    line = (done.stdout.strip().splitlines() or ["?"])[0].strip() if done.ok else f"exit {done.returncode}"
    return f"{os.path.realpath(path)}: {line}"


def cache_key(workload: Workload, info: ToolchainInfo, argv_tail: list[str], env: dict[str, str], target: Target,
              c_compiler: str | None = None) -> str:
    """``env``: the full build environment of :func:`build_env`; ``c_compiler``: the
    identity of the C compiler that links libc into the binary, when one does."""
    material = json.dumps(
        {
            "source": workload.source_digest(),
            "toolchain": info.identity,
            "argv": argv_tail,
            "env": sorted(env.items()),
            "target": target.name,
            "c_compiler": c_compiler,
            "goenv": goenv_settings(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()


def _planned(workload: Workload, toolchain: Toolchain, info: ToolchainInfo, profile: Profile, target: Target):
    """The build's binary name, output placeholder, command, environment, C compiler and cache key."""
    binary_name = Path(workload.name).name or "program"
    placeholder = Path("/OUT") / binary_name  # the output path must not change the key
    command = toolchain.build_command(workload.source_dir, profile, target, placeholder)
    env = build_env(command.env, target)
    # Go's default C compiler is gcc (`go env CC`); gccgo's cgo code is compiled by it too.
    c_compiler = c_compiler_identity(env.get("CC") or "gcc") if toolchain.links_libc(env, target) else None
    return binary_name, placeholder, command, env, c_compiler, cache_key(workload, info, command.argv[1:], env,
                                                                         target, c_compiler)


def cached(workload: Workload, toolchain: Toolchain, info: ToolchainInfo, profile: Profile, target: Target,
           cache_dir: Path) -> Path | None:
    """The binary :func:`build` would give from the cache, without building; None when it would build."""
    info = toolchain.info_for(info, target)
    if info is None:
        return None
    binary_name, *_, key = _planned(workload, toolchain, info, profile, target)
    entry = cache.entry(cache_dir, "artifacts", key)
    return entry / binary_name if cache.lookup(entry, binary_name) is not None else None


def build(
    workload: Workload,
    toolchain: Toolchain,
    info: ToolchainInfo,
    profile: Profile,
    target: Target,
    cache_dir: Path,
    timeout: float,
) -> BuildOutcome:
    """Build (or find in the cache) ``workload`` for ``profile`` and ``target``.

    ``info`` is the toolchain as ``detect()`` found it; the compiler that builds for
    ``target`` (``info_for``: a cross gccgo is its own program) is what the key hashes and
    what ``toolchain_version`` reports.
    """
    info = toolchain.info_for(info, target)
    if info is None:  # unsupported_reason says so first; this keeps a direct call honest
        reason = toolchain.unsupported_reason(profile, target) or f"{toolchain.name} cannot build for {target.name}"
        return BuildOutcome(False, None, 0.0, False, [], [], reason=reason)
    binary_name, placeholder, command, env, c_compiler, key = _planned(workload, toolchain, info, profile, target)
    entry = cache.entry(cache_dir, "artifacts", key)
    meta = cache.lookup(entry, binary_name)
    if meta is not None:
        return BuildOutcome(True, entry / binary_name, meta["seconds"], True, command.flags, command.profile_env,
                            key=key, toolchain_version=info.version)

    with cache.store(entry) as staging:
        out = staging.path / binary_name
        argv = [out.as_posix() if a == placeholder.as_posix() else a for a in command.argv]
        done = proc.run(argv, cwd=command.cwd, env=command.env, timeout=timeout)
        if not done.ok or not out.is_file():
            return BuildOutcome(
                False, None, done.seconds, False, command.flags, command.profile_env,
                reason=done.error("build").args[0] if not done.ok else "the compiler wrote no binary",
                timed_out=done.timed_out, key=key, toolchain_version=info.version,
            )
        wrong = toolchain.verify(out, info)
        if wrong:
            return BuildOutcome(False, None, done.seconds, False, command.flags, command.profile_env, reason=wrong,
                                key=key, toolchain_version=info.version)
        staging.publish({"seconds": done.seconds, "argv": argv, "env": env, "c_compiler": c_compiler,
                         "built_at": time.time()}, binary_name)
        return BuildOutcome(True, entry / binary_name, done.seconds, False, command.flags, command.profile_env,
                            key=key, toolchain_version=info.version)
