"""`slimlab doctor`: every tool slimlab can use, its version or "missing", and how to install it."""

from __future__ import annotations

from dataclasses import dataclass

from . import engine, guest, proc, supply
from .model import TARGETS
from .paths import find_tool
from .toolchains.base import first_line
from .toolchains.gobin import installed_releases, releases_dir

UPX_INSTALL = ("make setup   (adds bookworm-backports, then: apt-get install -t bookworm-backports upx-ucl)")


@dataclass(frozen=True)
class Tool:
    name: str
    argv: tuple[str, ...]  # prints the version
    purpose: str
    install: str
    required: bool = False  # the default sweep cannot run without it
    line: str = ""  # the version is the first output line holding this ("" : the first line)


def _per_foreign_cpu() -> list[Tool]:
    """The cross tools and the emulator of each foreign CPU of the model's target table."""
    tools = []
    for target in TARGETS.values():
        if target.is_native:
            continue
        t = target.triplet
        tools += [
            Tool(f"{t}-gccgo", (f"{t}-gccgo", "--version"), f"gccgo for {target.name}", f"apt-get install gccgo-{t}"),
            Tool(f"{t}-gcc", (f"{t}-gcc", "--version"), f"cgo for {target.name}", f"apt-get install gcc-{t}"),
            Tool(f"{t}-strip", (f"{t}-strip", "--version"), f"post-link strip for {target.name}",
                 f"apt-get install binutils-{t}"),
            Tool(target.qemu, (target.qemu, "--version"), f"runs {target.name} variants",
                 "apt-get install qemu-user-static"),
        ]
        machine = guest.machine_for(target)
        if machine is not None:
            tools.append(Tool(machine.qemu, (machine.qemu, "--version"),
                              f"guest-exact memory of {target.name} (spec: runner = \"qemu-system\")",
                              guest.INSTALL_QEMU))
    return tools


TOOLS = (
    Tool("go", ("go", "version"), "host Go toolchain (default sweep)", "apt-get install golang-go", True),
    Tool("cc", ("cc", "--version"), "builds the measurement launcher", "apt-get install gcc libc6-dev", True),
    Tool("gccgo", ("gccgo", "--version"), "toolchain gccgo", "apt-get install gccgo"),
    *_per_foreign_cpu(),
    Tool("tinygo", ("tinygo", "version"), "toolchain tinygo", "not in Debian 12: dpkg -i tinygo_<version>_amd64.deb"),
    Tool("llvm-goc", ("llvm-goc", "--version"), "toolchain gollvm", "no package: build gollvm and put llvm-goc on PATH"),
    Tool("upx", ("upx", "--version"), "post-link UPX chains", UPX_INSTALL),
    Tool("strip", ("strip", "--version"), "post-link strip", "apt-get install binutils"),
    Tool("objcopy", ("objcopy", "--version"), "post-link objcopy", "apt-get install binutils"),
    Tool("readelf", ("readelf", "--version"), "cross-checks in tests", "apt-get install binutils"),
    Tool("hyperfine", ("hyperfine", "--version"), "cross-checks start-up in tests", "apt-get install hyperfine"),
    Tool("chromium", ("chromium", "--version"), "renders reports in tests, image export", "apt-get install chromium"),
    Tool(supply.GOVULNCHECK, (supply.GOVULNCHECK, "-version"), "vulnerability scans (spec: vulndb)",
         supply.GOVULNCHECK_INSTALL, line="Scanner:"),
)


@dataclass(frozen=True)
class Finding:
    name: str
    version: str | None  # None: missing
    purpose: str
    install: str
    required: bool


def _version(argv: tuple[str, ...], line: str = "") -> str | None:
    path = find_tool(argv[0])
    if path is None:
        return None
    done = proc.run([path, *argv[1:]], timeout=30)
    text = done.stdout or done.stderr
    if line:
        text = next((t for t in text.splitlines() if line in t), "")
    return first_line(text) if done.ok and text.strip() else None


def _docker() -> str | None:
    found = engine.status()
    return found.describe() if found.reachable else None


def check() -> list[Finding]:
    findings = [Finding(t.name, _version(t.argv, t.line), t.purpose, t.install, t.required) for t in TOOLS]
    for release in installed_releases():
        go = releases_dir() / f"go-{release}" / "go" / "bin" / "go"
        findings.append(Finding(f"go{release}", _version((str(go), "version")), "cached Go release",
                                f"slimlab toolchain install go{release}", False))
    findings.append(Finding("docker engine", _docker(), "images and containers",
                            f"{engine.INSTALL_HINT}; then: {engine.START_COMMAND}", False))
    return findings


def render(findings: list[Finding]) -> str:
    width = max(len(f.name) for f in findings)
    lines = []
    for f in findings:
        state = f.version if f.version else "missing"
        lines.append(f"{'!' if f.required and not f.version else ' '} {f.name:<{width}}  {state}")
        lines.append(f"  {'':<{width}}  for: {f.purpose}" + ("" if f.version else f"; install: {f.install}"))
    return "\n".join(lines)


def ready(findings: list[Finding]) -> bool:
    """True when the default sweep can run."""
    return all(f.version for f in findings if f.required)
