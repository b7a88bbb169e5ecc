"""The shell lines that rebuild a result row's shipped binary, pasted into any shell.

A line a reader copies must build that exact binary, not the host's default: so it names
every input the go command reads from its environment (GOOS, GOARCH, GOARM, the GOAMD64-style
level, CGO_ENABLED, the C compilers of a cgo or gccgo cross build), the Go release
(``GOTOOLCHAIN=go1.X.Y``: any Go since 1.21 runs that release, fetching it from the module
proxy when it is not the local one), the compiler (``-compiler gccgo`` and its GCCGO driver)
and the post-link steps as slimlab ran them. ``env -i`` in front keeps the reader's own GOFLAGS,
CC or GOAMD64 out of it. What the row's binary recorded of its own build (``build_settings``,
from its Go build info) wins over what the profile implies: it is what made those bytes.

Values come from results files, which travel between people: a value with a control
character is refused (SlimlabError) rather than written into a line that a newline would split.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from .errors import SlimlabError, plain_text
from .model.axes import GO_RELEASE
from .model.chain import OBJCOPY_KEEP, OBJCOPY_REMOVE, STEPS
from .model.target import TARGETS

# Build settings that are environment variables of the go command (go version -m lists them)
_ENV_SETTINGS = ("CGO_", "GO")
_GO_VERSION = re.compile(r"\bgo(\d+\.\d+(?:\.\d+)?(?:(?:rc|beta)\d+)?)\b")
# Programs a clean shell still needs to find; what the reader has on PATH decides which go runs
# first, and GOTOOLCHAIN then hands the build to the release named.
CLEAN_PATH = "PATH=$PATH"


@dataclass(frozen=True)
class BuildLine:
    """How to rebuild one row's shipped binary: the build, then each post-link step."""

    env: tuple[tuple[str, str], ...]  # what the build runs with, in the order written
    build: tuple[str, ...]  # go build -o NAME ... .
    postlink: tuple[tuple[str, ...], ...]  # argv of each post-link step, in order
    output: str  # the file the last command writes: the shipped binary
    workdir: str | None  # the workload's source directory, when known here
    release: str | None  # "go1.26.8": the Go release that built it (None: not a gc build)

    def build_shell(self) -> str:
        """The build alone, e.g. ``env -i PATH="$PATH" HOME="$HOME" GOTOOLCHAIN=go1.26.8 GOOS=linux ... go build ...``."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env)
        return f'env -i PATH="$PATH" HOME="$HOME" {env} {shlex.join(self.build)}'

    def postlink_shell(self) -> list[str]:
        return [shlex.join(step) for step in self.postlink]

    def shell(self) -> str:
        """Every command joined with ``&&``, from the source directory when it is known."""
        lines = [self.build_shell(), *self.postlink_shell()]
        if self.workdir:
            lines.insert(0, f"cd {shlex.quote(self.workdir)}")
        return " && ".join(lines)


def _clean(field: str, value: object) -> str:
    return plain_text(f"the results file's {field}", value, "the shell a reader pastes the build line into")


def go_release(row: dict) -> str | None:
    """The Go release of a gc row ("go1.26.8"): its binary's go_version, else its toolchain's
    version line, else a release-named toolchain ("go1.22.10"); None when none says."""
    for field in ("go_version", "toolchain_version"):
        found = _GO_VERSION.search(str(row.get(field) or ""))
        if found:
            return f"go{found.group(1)}"
    toolchain = str(row.get("toolchain") or "")
    return toolchain if GO_RELEASE.match(toolchain) else None


def is_gc(row: dict) -> bool:
    toolchain = str(row.get("toolchain") or "")
    return toolchain == "go" or bool(GO_RELEASE.match(toolchain))


def _pairs(items) -> dict[str, str]:
    found = {}
    for item in items or []:
        name, sep, value = str(item).partition("=")
        if sep:
            found[name] = value
    return found


def settings_for(frame_rows: list[dict], row: dict) -> dict[str, str] | None:
    """The build settings of ``row``'s build: its own, or (a UPX-packed binary records none)
    another row's of the same build (workload, toolchain, profile, target), whatever its chain."""
    if row.get("build_settings"):
        return _pairs(row["build_settings"])
    for other in frame_rows:
        if other.get("build_settings") and all(other.get(c) == row.get(c)
                                               for c in ("workload", "toolchain", "profile", "target")):
            return _pairs(other["build_settings"])
    return None


def go_env(row: dict, settings: dict[str, str] | None) -> dict[str, str]:
    """What the go command of ``row``'s build reads from its environment, written out: the target,
    the compiler's driver (gccgo), the recorded build settings, the profile's own variables, and
    cgo as the go command decided it. No GOTOOLCHAIN: the caller names the release."""
    target = TARGETS.get(str(row.get("target")))
    if target is None:
        raise SlimlabError(f"unknown target {row.get('target')!r} in the results file")
    flags = [str(f) for f in row.get("flags") or []]
    env = dict(target.go_env())
    gccgo = "-compiler" in flags and "gccgo" in flags
    if gccgo:
        env["GCCGO"] = target.cross_tool("gccgo")
        if not target.is_native:  # the adapter's cross_cgo_env: libgo's C half needs cgo on
            env.update(CGO_ENABLED="1", CC=target.cross_tool("gcc"))
    for key, value in (settings or {}).items():
        # an empty CGO_CFLAGS is recorded when it was unset: the go command's default
        if key.startswith(_ENV_SETTINGS) and value and key not in ("GOOS", "GOARCH"):
            env[_clean("build_settings", key)] = _clean("build_settings", value)
    env.update((_clean("build_env", k), _clean("build_env", v)) for k, v in _pairs(row.get("build_env")).items())
    if "CGO_ENABLED" not in env:
        # Unset, the go command turns cgo on natively when gcc is found and off for another CPU.
        env["CGO_ENABLED"] = "1" if target.is_native else "0"
    if env.get("CGO_ENABLED") == "1" and not target.is_native and not gccgo:
        env.setdefault("CC", target.cross_tool("gcc"))
    return env


# Build settings that are go build flags, added when the row's own flags lack them
_FLAG_SETTINGS = ("-tags", "-ldflags", "-gcflags", "-asmflags", "-buildmode")


def go_flags(row: dict, settings: dict[str, str] | None) -> list[str]:
    """``row``'s go build flags, with what its build info recorded that they lack (a row written by
    an older slimlab), and ``-buildvcs=false`` when the binary carries no version-control stamp."""
    flags = [_clean("flags", f) for f in row.get("flags") or []]
    for key, value in (settings or {}).items():
        value = _clean("build_settings", value)
        if key == "-trimpath" and value == "true" and "-trimpath" not in flags:
            flags.append("-trimpath")
        elif key in _FLAG_SETTINGS and not any(f.startswith(key + "=") for f in flags) \
                and not (key == "-buildmode" and value == "exe"):
            flags.append(f"{key}={value}")
        elif key in ("-race", "-msan", "-asan") and value == "true" and key not in flags:
            flags.append(key)
    if settings and not any(k.startswith("vcs") for k in settings) and not any(f.startswith("-buildvcs") for f in flags):
        # Built without version-control stamping (GOFLAGS=-buildvcs=false, or no repository): a
        # source tree inside a git checkout would otherwise get vcs.* settings, other bytes.
        flags.append("-buildvcs=false")
    return flags


def step_argv(name: str, src: str, dst: str, target) -> tuple[str, ...]:
    """A post-link step as slimlab.postlink runs it on a binary of ``target``: that CPU's binutils
    (``aarch64-linux-gnu-strip``), upx for all. slimlab's objcopy removes each section the file has
    that OBJCOPY_REMOVE matches; objcopy's own patterns (a leading ! keeps) do the same."""
    step = STEPS.get(str(name))
    if step is None:
        raise SlimlabError(f"unknown post-link step {name!r} in the results file")
    tool = step.tool if step.tool == "upx" or target.is_native else target.cross_tool(step.tool)
    if step.tool == "strip":
        return (tool, *step.args, "-o", dst, src)
    if step.tool == "objcopy":
        removes = [f"--remove-section={p}" for p in OBJCOPY_REMOVE] + [f"--remove-section=!{k}" for k in OBJCOPY_KEEP]
        return (tool, *step.args, *removes, src, dst)
    return (tool, *step.args, "--no-progress", "-o", dst, src)


def build_line(row: dict, settings: dict[str, str] | None = None, workdir: str | Path | None = None) -> BuildLine:
    """The line that rebuilds ``row`` (a results row as a dict). ``settings``: its build's
    recorded settings (settings_for), else the row's own; ``workdir``: the workload's source."""
    settings = settings if settings is not None else _pairs(row.get("build_settings"))
    env = go_env(row, settings)
    target = TARGETS[str(row["target"])]
    name = _clean("workload", Path(str(row.get("workload") or "program")).name or "program")
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "program"
    release = go_release(row) if is_gc(row) else None
    if release:
        env = {"GOTOOLCHAIN": release, **env}
    build = ("go", "build", "-o", name, *go_flags(row, settings), ".")
    steps, current = [], name
    for step_name in row.get("postlink_steps") or []:
        out = f"{current}.{step_name}"
        steps.append(step_argv(step_name, current, out, target))
        current = out
    return BuildLine(tuple(env.items()), build, tuple(steps), current,
                     None if workdir is None else str(workdir), release)
