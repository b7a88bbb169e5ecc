"""Full-system guests: a Debian kernel for a foreign CPU booted under qemu-system with an initramfs.

Under QEMU user mode (qemu-aarch64) the program runs inside QEMU's own process, so the
kernel's peak RSS of it is QEMU's, and the guest cannot read its own either (QEMU passes
the host's /proc through). A real kernel for that CPU, booted under qemu-system, counts
the guest program's pages itself: wait4's peak RSS inside the guest is the program's own,
as on the host. This module provides the pieces; measure.qemu_system decides what runs.

- ``kit``: Debian's kernel (the ``linux-image-<flavour>`` metapackage names the current one)
  and ``busybox-static`` for the CPU, fetched from Debian's packages through the target's
  private apt state (bases.fetch_debs: the host's dpkg architecture list is left alone),
  cached by version (``guest-kernel``), and slimlab's launcher cross-compiled static
  (``guest-launcher``, keyed by the source and the compiler).
- ``initramfs``: an uncompressed newc cpio (what the kernel unpacks into its root).
- ``boot``: runs QEMU and yields the console's lines as they come, within a deadline.
"""

from __future__ import annotations

import hashlib
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import bases, cache, proc
from .errors import ToolError
from .model.target import Target
from .paths import default_cache_dir

INSTALL_QEMU = "apt-get install qemu-system-arm   (scripts/setup.sh installs it; it has qemu-system-aarch64 too)"


@dataclass(frozen=True)
class Machine:
    """How one CPU's guest boots: QEMU's system emulator, its board and CPU, Debian's kernel flavour."""

    qemu: str
    args: tuple[str, ...]
    kernel_meta: str  # Debian's metapackage that depends on the current kernel of the flavour
    console: str


# -M virt: QEMU makes the device tree itself; -net none: without it the default NIC needs
# efi-virtio.rom (not in qemu-system-arm) and QEMU stops before booting.
MACHINES = {
    "arm64": Machine("qemu-system-aarch64", ("-M", "virt", "-cpu", "cortex-a57"), "linux-image-arm64", "ttyAMA0"),
    # LPAE: the armmp-lpae flavour needs a Cortex-A15 (or A7); virt's highmem needs LPAE anyway.
    "arm": Machine("qemu-system-arm", ("-M", "virt,highmem=off", "-cpu", "cortex-a15"), "linux-image-armmp-lpae",
                   "ttyAMA0"),
}
BOOT_BUDGET_S = 90.0  # kernel + init on a loaded 2-core host (about 2 s when quiet)


@dataclass(frozen=True)
class Kit:
    """Everything a guest of one CPU needs besides the programs and their plan."""

    target: str
    machine: Machine
    qemu_path: str
    vmlinuz: Path
    busybox: Path
    launcher: Path
    versions: dict  # kernel package and version, busybox version, QEMU's version: for the manifest


def machine_for(target: Target) -> Machine | None:
    return MACHINES.get(target.goarch)


def unsupported_reason(target: Target) -> str | None:
    """Why no guest of ``target`` can boot here (with the install command), or None."""
    machine = machine_for(target)
    if machine is None:
        return f"no full-system guest for {target.name}; there is one for GOARCH {', '.join(MACHINES)}"
    if shutil.which(machine.qemu) is None:
        return f"{target.name} guests need {machine.qemu}; install it with: {INSTALL_QEMU}"
    cc = target.cross_tool("gcc")
    if shutil.which(cc) is None:
        return f"{target.name} guests need {cc} for the launcher; install it with: apt-get install gcc-{target.triplet}"
    return None


def kit(target: Target, launcher_source: Path, cache_dir: Path | None = None) -> Kit:
    """The kernel, busybox and launcher for ``target``'s guest (cached); ToolError when not to be had."""
    why = unsupported_reason(target)
    if why:
        raise ToolError(why)
    machine = MACHINES[target.goarch]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    kernel = _kernel(target, machine, root)
    launcher = _cross_compiled(launcher_source, target, root)
    qemu = shutil.which(machine.qemu)
    version = proc.run([qemu, "--version"], timeout=30)
    versions = {**kernel[2], "qemu": version.stdout.splitlines()[0] if version.ok and version.stdout else None}
    return Kit(target.name, machine, qemu, kernel[0], kernel[1], launcher, versions)


def _deb_field(deb: Path, field: str) -> str:
    done = proc.run(["dpkg-deb", "-f", str(deb), field], timeout=60)
    if not done.ok:
        raise done.error(f"dpkg-deb -f {deb.name} {field}")
    return done.stdout.strip()


def _kernel(target: Target, machine: Machine, root: Path) -> tuple[Path, Path, dict]:
    """(vmlinuz, busybox, versions): the metapackage and busybox-static are small and say
    which versions are current; the kernel's .deb (60 MB) is fetched once per version."""
    with tempfile.TemporaryDirectory(prefix="slimlab-guest-") as tmp:
        small = bases.fetch_debs((machine.kernel_meta, "busybox-static"), target, Path(tmp), root)
        depends = _deb_field(small[machine.kernel_meta], "Depends")
        found = re.match(r"(linux-image-[^\s,(]+)(?:\s*\(=\s*([^)]+)\))?", depends)
        if not found:
            raise ToolError(f"{machine.kernel_meta} does not name a kernel package: Depends: {depends!r}")
        package = found.group(1)
        busybox_version = _deb_field(small["busybox-static"], "Version")
        versions = {"kernel_package": package, "kernel_version": found.group(2), "busybox_version": busybox_version}
        key = hashlib.sha256(f"{target.name} {package} {found.group(2)} {busybox_version}".encode()).hexdigest()
        entry = cache.entry(root, "guest-kernel", key)
        meta = cache.lookup(entry, "vmlinuz", "busybox")
        if meta is None:
            with cache.store(entry) as staging:
                debs = bases.fetch_debs((package,), target, Path(tmp), root)
                _extract(debs[package], "./boot/vmlinuz-*", staging.path / "vmlinuz")
                _extract(small["busybox-static"], "./bin/busybox", staging.path / "busybox")
                staging.publish({**versions, "target": target.name}, "vmlinuz", "busybox")
    return entry / "vmlinuz", entry / "busybox", versions


def _extract(deb: Path, member: str, out: Path) -> None:
    """One file of a .deb's data, by a tar wildcard."""
    with tempfile.TemporaryDirectory(prefix="slimlab-deb-") as tmp:
        done = subprocess.run(f"dpkg-deb --fsys-tarfile {_q(deb)} | tar -x -C {_q(Path(tmp))} --wildcards {_q(member)}",
                              shell=True, capture_output=True, text=True, timeout=300, check=False)
        found = sorted(Path(tmp).glob(member.removeprefix("./")))
        if done.returncode != 0 or not found:
            raise ToolError(f"no {member} in {deb.name}: {proc.tail(done.stderr, 400)}")
        shutil.move(found[-1], out)


def _q(path) -> str:
    import shlex

    return shlex.quote(str(path))


def _cross_compiled(source: Path, target: Target, root: Path) -> Path:
    """``source`` compiled static with the target's cross gcc, into the cache."""
    cc = shutil.which(target.cross_tool("gcc"))
    digest = hashlib.sha256(source.read_bytes() + b"\0" + target.name.encode() + b"\0" + cc.encode()).hexdigest()
    entry = cache.entry(root, "guest-launcher", digest)
    if cache.lookup(entry, "slimlab-launch") is not None:
        return entry / "slimlab-launch"
    with cache.store(entry) as staging:
        done = proc.run([cc, "-O2", "-static", "-o", str(staging.path / "slimlab-launch"), str(source)], timeout=120)
        if not done.ok:
            raise done.error(f"compiling the launcher for {target.name}")
        staging.publish({"source": source.name, "cc": cc, "target": target.name}, "slimlab-launch")
    return entry / "slimlab-launch"


def initramfs(files: dict[str, tuple[int, bytes | Path]], out: Path) -> int:
    """Write an uncompressed newc cpio of ``files`` (path in the guest -> (mode, bytes or a
    host file)); parent directories are added. Uncompressed: nothing to unpack under
    emulation, and the kernel takes it as it is. Returns its size in bytes."""
    dirs = sorted({str(parent) for name in files for parent in Path(name).parents if str(parent) != "."})
    entries = [(d, 0o40755, b"") for d in dirs]
    entries += [(name, 0o100000 | mode, data.read_bytes() if isinstance(data, Path) else data)
                for name, (mode, data) in sorted(files.items())]
    with open(out, "wb") as fh:
        for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
            encoded = name.encode() + b"\0"
            # newc: magic, then 13 eight-digit hex fields; header+name and data each padded to 4 bytes.
            fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
            header = b"070701" + "".join(f"{v:08x}" for v in fields).encode() + encoded
            fh.write(header + b"\0" * (-len(header) % 4))
            fh.write(data + b"\0" * (-len(data) % 4))
        return fh.tell()


def _die_with_parent() -> None:
    """In the child before exec: a killed sweep takes its guest with it (PR_SET_PDEATHSIG), as
    the launcher takes the program it measures; a resumed sweep then boots a fresh one."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG


@dataclass
class Console:
    """What a boot printed and how it ended."""

    lines: list[str]
    exit_code: int | None  # None: killed at the deadline, or for its silence
    boot_s: float | None = None  # host wall time from QEMU's start to init's first line
    elapsed_s: float = 0.0
    silent_s: float | None = None  # killed after printing nothing for this long

    def tail(self, lines: int = 25) -> str:
        """The console's last lines, after the panic's own line when there is one (a call
        trace and register dump follow it and would push it out)."""
        last = self.lines[-lines:]
        panic = [line for line in self.lines if "Kernel panic" in line and line not in last][:1]
        return proc.tail("\n".join([*panic, *last]), 1500)


def boot(kit: Kit, initrd: Path, deadline_s: float, memory_mib: int = 512, append: str = "", cpus: int = 1,
         ready_marker: str = "@@ boot", silence_s: float | None = None) -> Iterator[str]:
    """Boot the guest and yield its console's lines as they come; the generator's return value
    (StopIteration.value, or ``yield from``) is the Console. QEMU is killed at the deadline, or
    once it has printed nothing for ``silence_s`` (the caller sizes it to its longest silent
    step: a plan's step reports within its starts' timeouts), so a hung guest does not keep
    the sweep waiting for the whole plan's deadline (hundreds of starts' timeouts)."""
    m = kit.machine
    # quiet loglevel=1: kernel messages would interleave with the results' lines; a panic
    # still prints. panic=-1 with -no-reboot: a panicking guest ends QEMU at once.
    command = [kit.qemu_path, *m.args, "-m", str(memory_mib), "-smp", str(cpus), "-nographic", "-net", "none",
               "-no-reboot", "-kernel", str(kit.vmlinuz), "-initrd", str(initrd),
               "-append", f"console={m.console} quiet loglevel=1 panic=-1 {append}".strip()]
    started = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True,
                             preexec_fn=_die_with_parent)  # noqa: PLW1509 - one prctl, no locks taken
    console = Console([], None)
    pending = b""
    heard = started
    try:
        while True:
            now = time.monotonic()
            left = started + deadline_s - now
            if left <= 0:
                break
            if silence_s is not None and now - heard > silence_s:
                console.silent_s = now - heard
                break
            readable, _, _ = select.select([child.stdout], [], [], min(left, 5))
            if not readable:
                continue
            heard = time.monotonic()
            chunk = os.read(child.stdout.fileno(), 65536)
            if not chunk:
                console.exit_code = child.wait()
                break
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                line = raw.decode(errors="replace").rstrip("\r")
                console.lines.append(line)
                if console.boot_s is None and line.startswith(ready_marker):
                    console.boot_s = time.monotonic() - started
                yield line
        if pending:
            console.lines.append(pending.decode(errors="replace"))
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        console.elapsed_s = time.monotonic() - started
    return console
