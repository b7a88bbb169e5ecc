"""Build one variant into an artifact, through a content-addressed cache.

The cache key hashes everything that decides the output bytes: the workload's source,
the compiler's identity, the exact command line and environment, and the target. An
unchanged variant is therefore never rebuilt, across runs and sweeps. Failed builds
are not cached: the next sweep tries again.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from . import cache, proc
from .paths import default_cache_dir  # noqa: F401 - re-exported for callers
from .profiles import Profile
from .targets import Target
from .toolchains import Toolchain, ToolchainInfo
from .workloads import Workload


@dataclass(frozen=True)
class BuildOutcome:
    ok: bool
    binary: Path | None
    seconds: float  # wall time of the compiler run (of the original run, when cached)
    cached: bool
    flags: str
    profile_env: str
    reason: str | None = None
    timed_out: bool = False


def cache_key(workload: Workload, info: ToolchainInfo, argv_tail: list[str], env: dict[str, str], target: Target) -> str:
    material = json.dumps(
        {
            "source": workload.source_digest(),
            "toolchain": info.identity,
            "argv": argv_tail,
            "env": sorted(env.items()),
            "target": target.name,
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()


def build(
    workload: Workload,
    toolchain: Toolchain,
    info: ToolchainInfo,
    profile: Profile,
    target: Target,
    cache_dir: Path,
    timeout: float,
) -> BuildOutcome:
    binary_name = Path(workload.name).name or "program"
    placeholder = Path("/OUT") / binary_name  # the output path must not change the key
    command = toolchain.build_command(workload.source_dir, profile, target, placeholder)
    key = cache_key(workload, info, command.argv[1:], command.env, target)
    entry = cache.entry(cache_dir, "artifacts", key)
    meta = cache.lookup(entry, binary_name)
    if meta is not None:
        return BuildOutcome(True, entry / binary_name, meta["seconds"], True, command.flags, command.profile_env)

    with cache.store(entry) as staging:
        out = staging.path / binary_name
        argv = [out.as_posix() if a == placeholder.as_posix() else a for a in command.argv]
        done = proc.run(argv, cwd=command.cwd, env=command.env, timeout=timeout)
        if not done.ok or not out.is_file():
            return BuildOutcome(
                False, None, done.seconds, False, command.flags, command.profile_env,
                reason=done.error("build").args[0] if not done.ok else "the compiler wrote no binary",
                timed_out=done.timed_out,
            )
        wrong = toolchain.verify(out, info)
        if wrong:
            return BuildOutcome(False, None, done.seconds, False, command.flags, command.profile_env, reason=wrong)
        staging.publish({"seconds": done.seconds, "argv": argv, "env": command.env, "built_at": time.time()},
                        binary_name)
        return BuildOutcome(True, entry / binary_name, done.seconds, False, command.flags, command.profile_env)
