"""Post-link chains applied to a built binary: strip, objcopy, UPX, each step recorded.

A chain is ``none`` or step names joined with ``+`` in pipeline order: at most one of
``strip`` / ``strip-debug``, then optionally ``objcopy``, then optionally one UPX step
(``upx-1`` … ``upx-9``, ``upx-best``, ``upx-lzma``, ``upx-brute``). For example
``strip+upx-9``. Every valid chain is listed in :data:`CHAINS`.

The input (the cached build artifact) is never modified: each step writes a new file.
Outputs are cached content-addressed under ``<cache>/postlink/``, keyed by the input's
bytes and file name, the chain and the exact versions of the tools run for the input's
CPU (``aarch64-linux-gnu-strip`` for an arm64 binary), so a resumed or repeated
sweep never packs the same binary twice (``upx --brute`` on a 6 MB Go binary takes
minutes). Failures are not cached.

A step that a tool refuses (UPX cannot pack a Go ``-buildmode=pie`` binary, for
example) ends the chain with ``ok=False`` and the tool's own message: the sweep records
it as a ``postlink_failed`` row. Whether the result still *works* is not decided here:
the sweep runs the workload's functional check on the output.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import cache, proc
from .errors import ToolError
from .model import TARGETS, Target, target_for_elf_machine
from .model.chain import (  # noqa: F401 - the grammar and the objcopy step's sections, re-exported
    CHAINS, OBJCOPY_DELIBERATELY_KEPT, OBJCOPY_KEEP, OBJCOPY_REMOVE, STEPS, UPX_STEPS, Chain, Step, get_chain,
)

UPX_INSTALL_HINT = (
    "run `make setup` (it installs upx-ucl from Debian bookworm-backports), or by hand: "
    "echo 'deb http://deb.debian.org/debian bookworm-backports main' "
    "> /etc/apt/sources.list.d/backports.list && apt-get update && "
    "apt-get install -t bookworm-backports upx-ucl"
)
BINUTILS_INSTALL_HINT = "apt-get install binutils"

# -- tools -----------------------------------------------------------------------------
def _install_hint(tool: str) -> str:
    return UPX_INSTALL_HINT if tool == "upx" else BINUTILS_INSTALL_HINT


# Host binutils read only the host's ELF machine: a binary for another CPU needs the
# cross binutils Debian ships as binutils-<triplet> (the gccgo cross compilers pull them in).
# UPX packs every CPU it knows itself.
def target_of(binary: Path) -> Target | None:
    """The target of ``binary``'s CPU (its ELF ``e_machine``); None for another CPU or no ELF."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        with open(binary, "rb") as fh:
            return target_for_elf_machine(ELFFile(fh)["e_machine"])
    except (ELFError, OSError):
        return None


def tool_for(tool: str, target: Target | None) -> str:
    """The program that does ``tool``'s step on binaries of ``target`` (None: the host's CPU)."""
    if tool == "upx" or target is None:
        return tool
    return target.cross_tool(tool)


def _missing(tool: str, target: Target | None) -> str | None:
    """"<program>, which is not installed; <how to install it>", or None when it is there."""
    program = tool_for(tool, target)
    if shutil.which(program) is not None:
        return None
    hint = _install_hint(tool) if program == tool else f"apt-get install binutils-{target.triplet}"
    return f"{program}, which is not installed; {hint}"


def unsupported_reason(chain: Chain, target: Target | None = None) -> str | None:
    """Why ``chain`` cannot run on binaries of ``target`` (None: the host's CPU) on this
    machine: the tool that is missing, and how to install it."""
    for tool in chain.tools:
        missing = _missing(tool, target)
        if missing:
            return f"postlink chain {chain.name!r} needs {missing}"
    return None


@functools.lru_cache(maxsize=None)
def _tool_version(path: str) -> str:
    done = proc.run([path, "--version"], timeout=60)
    return (done.stdout.strip().splitlines() or ["unknown"])[0].strip()


def tool_versions(targets: Iterable[Target] | None = None) -> dict[str, str]:
    """First line of ``--version`` of each post-link tool, for the manifest.

    The host's strip, objcopy and upx ("missing" when absent), and the cross binutils of
    each foreign target in ``targets``: "missing" when absent; without ``targets``, those
    of every known target that are installed.
    """
    out = {}
    for tool in ("strip", "objcopy", "upx"):
        path = shutil.which(tool)
        out[f"postlink:{tool}"] = _tool_version(path) if path else "missing"
    for target in TARGETS.values() if targets is None else targets:
        for tool in ("strip", "objcopy"):
            program = tool_for(tool, target)
            path = shutil.which(program)
            if path or targets is not None:
                out[f"postlink:{program}"] = _tool_version(path) if path else "missing"
    return out


# -- outcome ---------------------------------------------------------------------------
@dataclass(frozen=True)
class StepRecord:
    name: str
    argv: list[str]
    size_before: int
    size_after: int | None  # None when the step failed
    seconds: float
    removed_sections: list[str] = field(default_factory=list)  # objcopy: what -R removed
    upx_test_ok: bool | None = None  # UPX: `upx -t` verdict on the packed file
    message: str | None = None  # the tool's complaint when it failed


@dataclass(frozen=True)
class PostlinkOutcome:
    ok: bool
    binary: Path | None  # the chain's output (the input itself for "none"); None on failure
    reason: str | None = None
    size_before: int | None = None
    steps: tuple[StepRecord, ...] = ()
    cached: bool = False

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps)

    @property
    def upx_step(self) -> StepRecord | None:
        return next((s for s in self.steps if STEPS[s.name].tool == "upx"), None)


# -- running ---------------------------------------------------------------------------
def settle(path: Path) -> None:
    """Write ``path`` to disk and drop its pages from the page cache.

    A file just written with write(2) (strip, objcopy and upx all do) sits in the page
    cache in large folios (ext4, Linux 6.x); a program exec'd from it maps whole folios
    on each fault, so its peak RSS reads several MiB high (grpc-redis: 19.3 MiB instead
    of 13.3 after a mere `strip`). The Go linker writes through mmap and does not show
    this. Dropping the cached pages makes every binary start out alike, read back by
    the kernel's own readahead as on a freshly deployed machine. Pages mapped by a
    running process stay; nothing else changes.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # dirty pages cannot be dropped
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def key_material(chain: Chain, binary: Path) -> dict:
    """What decides a chain's output: the input's bytes and name, the steps, and the exact
    tools run for the input's CPU (a cross strip for an arm64 binary)."""
    programs = [tool_for(t, target_of(binary)) for t in chain.tools]
    return {
        "input": cache.file_sha256(binary),
        # The output keeps the input's file name: two inputs with equal bytes but other names
        # (two workloads, one program) need two entries, each holding its own name.
        "output_name": binary.name,
        "chain": chain.name,
        "steps": [[STEPS[s].tool, *STEPS[s].args] for s in chain.steps],
        "objcopy_remove": sorted(OBJCOPY_REMOVE) if "objcopy" in chain.steps else None,
        "objcopy_keep": sorted(OBJCOPY_KEEP) if "objcopy" in chain.steps else None,
        "tools": {p: _tool_version(shutil.which(p) or p) for p in programs},
    }


def _digest(material: dict) -> str:
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def cache_key(chain: Chain, binary: Path) -> str:
    return _digest(key_material(chain, binary))


def objcopy_removals(binary: Path) -> list[str]:
    """The sections of ``binary`` the objcopy step removes with -R (besides --strip-all)."""
    from .elf import sections  # ELF facts are the elf module's business

    names = [s.name for s in sections(binary)]
    return [n for n in names
            if any(fnmatch.fnmatchcase(n, p) for p in OBJCOPY_REMOVE) and n not in OBJCOPY_KEEP]


def _section_names(binary: Path) -> set[str]:
    from .elf import sections

    try:
        return {s.name for s in sections(binary)}
    except Exception:  # noqa: BLE001 - a packed or odd file: no section view
        return set()


def _run_step(step: Step, src: Path, dst: Path, timeout: float) -> StepRecord:
    tool = shutil.which(tool_for(step.tool, target_of(src)))
    if tool is None:
        raise ToolError(f"post-link step {step.name!r} needs {_missing(step.tool, target_of(src))}", [step.tool])
    size_before = src.stat().st_size
    removed: list[str] = []
    if step.tool == "strip":
        argv = [tool, *step.args, "-o", str(dst), str(src)]
    elif step.tool == "objcopy":
        removed = objcopy_removals(src)
        argv = [tool, *step.args, *[f"--remove-section={n}" for n in removed], str(src), str(dst)]
    else:  # upx; -o must name a file that does not exist yet
        argv = [tool, *step.args, "--no-progress", "-o", str(dst), str(src)]
    done = proc.run(argv, timeout=timeout)
    if not done.ok or not dst.is_file():
        message = done.error(f"{step.name} ({' '.join([step.tool, *step.args])})").args[0]
        return StepRecord(step.name, argv, size_before, None, done.seconds, message=message)
    if step.tool != "upx":
        # What --strip-all took away too: the record lists every section that is gone.
        before, after = _section_names(src), _section_names(dst)
        removed = sorted(before - after)
    os.chmod(dst, src.stat().st_mode & 0o7777)
    upx_ok = None
    if step.tool == "upx":
        test = proc.run([tool, "-t", str(dst)], timeout=timeout)
        upx_ok = test.ok and "[OK]" in test.stdout
    return StepRecord(step.name, argv, size_before, dst.stat().st_size, done.seconds, removed, upx_ok)


def cached(chain: Chain, binary: Path, cache_dir: Path) -> bool:
    """Whether :func:`apply` would find ``chain``'s output for ``binary`` in ``cache_dir``'s cache."""
    if not chain.steps:
        return True
    if unsupported_reason(chain, target_of(binary)):
        return False
    return cache.lookup(cache.entry(Path(cache_dir), "postlink", _digest(key_material(chain, binary))),
                        Path(binary).name) is not None


def apply(chain: Chain, binary: Path, workdir: Path, cache_dir: Path | None = None,
          timeout: float = 900.0) -> PostlinkOutcome:
    """Run ``chain`` on ``binary``; the result is a new file, the input is left alone.

    With ``cache_dir`` the output is cached (and looked up) under ``cache_dir/postlink``;
    without, it is written under ``workdir``. Raises ToolError only when a tool the chain
    needs for ``binary``'s CPU is missing (check :func:`unsupported_reason` with the
    variant's target first); a tool that refuses or
    fails gives ``ok=False`` with its message.
    """
    binary = Path(binary)
    size_before = binary.stat().st_size
    if not chain.steps:
        settle(binary)  # the build as it is, but in the same page-cache state as chain outputs
        return PostlinkOutcome(True, binary, size_before=size_before)
    missing = unsupported_reason(chain, target_of(binary))
    if missing:
        raise ToolError(missing, [chain.name])
    material = key_material(chain, binary)
    key = _digest(material)
    entry = cache.entry(Path(cache_dir) if cache_dir else Path(workdir), "postlink", key)
    out_name = binary.name
    meta = cache.lookup(entry, out_name)
    if meta is not None:
        steps = tuple(StepRecord(**s) for s in meta["steps"])
        settle(entry / out_name)
        return PostlinkOutcome(True, entry / out_name, size_before=size_before, steps=steps, cached=True)

    with cache.store(entry) as staging:
        records: list[StepRecord] = []
        current = binary
        for index, name in enumerate(chain.steps):
            step = STEPS[name]
            last = index == len(chain.steps) - 1
            out = staging.path / (out_name if last else f"{out_name}.{index}.{name}")
            record = _run_step(step, current, out, timeout)
            records.append(record)
            if record.size_after is None:
                return PostlinkOutcome(False, None, record.message, size_before, tuple(records))
            current = out
        for leftover in staging.path.iterdir():  # intermediate files are not kept
            if leftover.name != out_name:
                leftover.unlink()
        staging.publish({"chain": chain.name, "input": str(binary), "tools": material["tools"],
                         "steps": [asdict(r) for r in records]}, out_name)
        settle(entry / out_name)
        return PostlinkOutcome(True, entry / out_name, size_before=size_before, steps=tuple(records))
