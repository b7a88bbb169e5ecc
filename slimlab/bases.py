"""Image bases assembled from Debian packages: built here, never pulled.

No registry is reachable, so a base is a declaration (the Debian packages it takes files
from, the files it keeps of each, the files it writes itself) that this module turns into
a root file system tar: ``apt-get download`` fetches the packages of the target's CPU,
``dpkg-deb -x`` unpacks them, and only the declared paths go into a reproducible tar
(sorted, mtime 0, owners as declared, no pax headers), so the same packages give the same
bytes and digest. The packages' versions are read from the .debs themselves.

Two cache entries make a second call do no apt work at all:

- ``bases-resolved``: which .deb (name, sha256) each package is, keyed by the state of
  the apt index (its list files' names, sizes and times) — it changes only when the index
  does, so an unchanged index needs no ``apt-get``;
- ``bases``: the tar, keyed by the declaration, the target and those .debs' hashes.

An arch:all package (ca-certificates, tzdata) is the same .deb for every CPU and comes from
the host's apt, so every CPU's base takes the same version of it. A per-CPU package of a
foreign CPU (busybox-static for arm64) comes from a private apt state under the cache
(``<cache>/apt/<arch>``: the host's sources and settings, that architecture's package
lists only, an empty dpkg status), refreshed when missing or older than the host's lists:
``apt-get download busybox-static:arm64`` alone fails until the architecture is added to
the host's dpkg (``dpkg --add-architecture``), which would change the machine for every
other apt user.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import platform
import shlex
import shutil
import stat
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import cache, libs, proc
from .errors import SlimlabError, ToolError, unknown
from .model.target import Target
from .paths import default_cache_dir

# Bumped when the assembly (not the declaration) changes what a tar holds: it is in the key.
ASSEMBLY = 1
TAR = "base.tar"
DEB_ARCH = {"amd64": "amd64", "arm64": "arm64", "arm": "armhf"}  # GOARCH -> Debian's name (GOARM 7: armhf)
HOST_LISTS = Path("/var/lib/apt/lists")
# Besides the lists, what decides which version apt picks: sources, pinning, settings.
HOST_APT_CONFIG = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"), Path("/etc/apt/preferences"),
                   Path("/etc/apt/preferences.d"), Path("/etc/apt/apt.conf"), Path("/etc/apt/apt.conf.d"))
TOOLS = {
    "apt-get": "apt-get is part of Debian's apt (bases are assembled from Debian packages: a Debian or Ubuntu host)",
    "dpkg-deb": "apt-get install dpkg",
    "openssl": "apt-get install openssl   (update-ca-certificates needs it to build the CA bundle)",
    "mmdebstrap": "apt-get install mmdebstrap   (scripts/setup.sh installs it; it builds the debian-slim root)",
}
APT_TIMEOUT = 600


@dataclass(frozen=True)
class Take:
    """Paths kept from a package's unpacked tree; a directory keeps its whole tree."""

    package: str
    paths: tuple[str, ...]
    kind: str  # what the bytes are, for a stacked report: "zoneinfo"
    # Run on the unpacked tree before keeping: for files a package's maintainer script makes.
    prepare: Callable[[Path, Path], None] | None = None


@dataclass(frozen=True)
class Entry:
    """A file, directory or symlink the base writes itself."""

    path: str
    kind: str
    mode: int
    data: bytes | None = None  # a file's contents; None for a directory or symlink
    link: str | None = None  # a symlink's target
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class Bootstrap:
    """A whole Debian root made by ``mmdebstrap`` instead of files taken from packages."""

    variant: str  # mmdebstrap's --variant: minbase is Essential:yes + Priority:required + apt
    dpkg_options: tuple[str, ...] = ()  # --dpkgopt: what dpkg leaves out while installing
    hooks: tuple[str, ...] = ()  # mmdebstrap's own hook directories (/usr/share/mmdebstrap/hooks/NAME)


@dataclass(frozen=True)
class Base:
    name: str
    takes: tuple[Take, ...] = ()
    entries: tuple[Entry, ...] = ()
    # The image adds the binary's own needed libraries that the base lacks (see closure()).
    closure: bool = False
    bootstrap: Bootstrap | None = None

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.package for t in self.takes))

    def plus(self, name: str, takes: tuple[Take, ...] = (), entries: tuple[Entry, ...] = (),
             closure: bool = False) -> Base:
        """This base with more: ``busybox`` is ``static`` plus a shell."""
        return Base(name, self.takes + takes, self.entries + entries, closure or self.closure)

    def material(self) -> dict:
        """The declaration as the cache key sees it."""
        return {
            "name": self.name,
            "takes": [[t.package, list(t.paths), t.kind, t.prepare.__name__ if t.prepare else None]
                      for t in self.takes],
            "entries": [[e.path, e.kind, e.mode, hashlib.sha256(e.data).hexdigest() if e.data is not None else None,
                         e.link, e.uid, e.gid] for e in self.entries],
            "closure": self.closure,
            "bootstrap": [self.bootstrap.variant, list(self.bootstrap.dpkg_options), list(self.bootstrap.hooks)]
            if self.bootstrap else None,
        }


@dataclass(frozen=True)
class BaseLayer:
    name: str
    tar: Path | None  # None for scratch
    digest: str  # "sha256:<hex>" of the tar, "" for scratch
    packages: dict[str, str]  # Debian package -> version, from the .deb (dpkg-deb -f)
    bytes_by_kind: dict[str, int]  # regular files' bytes by what they are
    closure: bool = False  # the image adds the binary's needed libraries the base lacks
    target: str = ""  # the target's name: where its libraries live (its multiarch triplet)


def _ca_bundle(root: Path, scratch: Path) -> None:
    """/etc/ssl/certs/ca-certificates.crt as the package's postinst makes it: by running the
    package's own update-ca-certificates on the unpacked tree with every certificate enabled
    (``--default``, what the postinst's debconf default selects), C collation for the order."""
    done = proc.run(
        ["sh", str(root / "usr/sbin/update-ca-certificates"), "--default",
         "--certsconf", str(scratch / "ca-certificates.conf"),
         "--certsdir", str(root / "usr/share/ca-certificates"),
         "--localcertsdir", str(scratch / "no-local-certs"),
         "--etccertsdir", str(root / "etc/ssl/certs"),
         "--hooksdir", str(scratch / "no-hooks")],
        env={"LC_ALL": "C", "TMPDIR": str(scratch)}, timeout=120)
    if not done.ok:
        raise done.error("update-ca-certificates")


def _copyright(package: str) -> Take:
    # distroless keeps each package's licence: Debian's packages ask for it.
    return Take(package, (f"usr/share/doc/{package}/copyright",), "copyright")


def _os_release() -> bytes:
    # ID=debian, as distroless says: scanners read it to know which packages to look for.
    host = platform.freedesktop_os_release() if Path("/etc/os-release").exists() else {}
    version, codename = host.get("VERSION_ID", ""), host.get("VERSION_CODENAME", "")
    return (f'PRETTY_NAME="slimlab base (Debian GNU/Linux {version} packages)"\n'
            f'NAME="Debian GNU/Linux"\nID=debian\nVERSION_ID="{version}"\nVERSION_CODENAME={codename}\n'
            f'HOME_URL="https://www.debian.org/"\n').encode()


PASSWD = (b"root:x:0:0:root:/root:/sbin/nologin\n"
          b"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
          b"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
GROUP = b"root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"
NSSWITCH = (b"passwd:         files\ngroup:          files\nshadow:         files\ngshadow:        files\n\n"
            b"hosts:          files dns\nnetworks:       files\n\n"
            b"protocols:      db files\nservices:       db files\nethers:         db files\nrpc:            db files\n")
# A debugging shell's tools, each a symlink to busybox in /bin (Debian's busybox-static has them all).
APPLETS = ("sh", "ash", "ls", "cat", "env", "ps", "top", "free", "df", "du", "mount", "id", "whoami", "hostname",
           "uname", "wget", "nc", "nslookup", "ping", "netstat", "ip", "ifconfig", "grep", "sed", "awk", "find",
           "head", "tail", "less", "vi", "wc", "sort", "uniq", "cut", "tr", "xargs", "echo", "printf", "sleep",
           "kill", "date", "cp", "mv", "rm", "mkdir", "ln", "chmod", "touch", "stat", "tar", "gzip", "which",
           "test", "[", "true", "false")

SCRATCH = Base("scratch")
STATIC = Base(
    "static",
    takes=(
        Take("ca-certificates", ("etc/ssl/certs/ca-certificates.crt",), "ca-certificates", prepare=_ca_bundle),
        _copyright("ca-certificates"),
        Take("tzdata", ("usr/share/zoneinfo",), "zoneinfo"),
        _copyright("tzdata"),
    ),
    entries=(
        Entry("etc/passwd", "passwd", 0o644, PASSWD),
        Entry("etc/group", "passwd", 0o644, GROUP),
        Entry("etc/nsswitch.conf", "config", 0o644, NSSWITCH),
        Entry("etc/os-release", "config", 0o644, _os_release()),
        Entry("tmp", "layout", 0o1777),
        Entry("root", "layout", 0o700),
        Entry("home/nonroot", "layout", 0o700, uid=65532, gid=65532),
    ),
)
BUSYBOX = STATIC.plus(
    "busybox",
    takes=(Take("busybox-static", ("bin/busybox",), "busybox"), _copyright("busybox-static")),
    entries=tuple(Entry(f"bin/{a}", "busybox", 0o777, link="busybox") for a in APPLETS),
)
# glibc as distroless's base has it: the loader (lib64/ld-linux-x86-64.so.2, a link to the
# one in lib/<triplet>), its libraries and gconv's modules: every file of libc6 but its docs.
# A cgo build needs no more. What else a binary needs (a gccgo default build: libgo, libgcc_s)
# is its own, so the image adds it as a layer of its own on top (closure()), as a user's
# Dockerfile on distroless/base copies it: the base stays one layer, the same bytes under
# every variant (one blob in a registry), and the row still shows what the binary drags in.
# A base of libc6 alone with a missing library a `broken` row would only repeat what the
# bare run's needed_libs already says, and would measure no image a user could ship.
LIBC = STATIC.plus("libc", takes=(Take("libc6", ("lib", "lib64", "usr/lib"), "libc"), _copyright("libc6")),
                   closure=True)
# Left out as the "slim" variant of Debian's own docker images leaves them out (debuerreotype
# --slimify): documentation but each package's copyright, info and man pages, translations.
SLIM_EXCLUDES = (*(f"path-exclude=/usr/share/{d}/*" for d in ("doc", "groff", "info", "linda", "lintian/overrides",
                                                              "locale", "man")),
                 "path-include=/usr/share/doc/*/copyright")
# The fat baseline people start FROM: a whole Debian system (dpkg, apt, a shell, coreutils), by
# mmdebstrap from the host's apt index. Not a declaration of files, so not taken apart here:
# what it holds is what Debian's minbase is, and its package list says so.
# merged-usr: /bin, /lib... as links into /usr, set up by mmdebstrap's hook with the
# usr-is-merged package, as Debian's images are; else apt satisfies init-system-helpers'
# "usrmerge | usr-is-merged" with usrmerge, which pulls in perl (some 45 MB).
DEBIAN_SLIM = Base("debian-slim", bootstrap=Bootstrap("minbase", SLIM_EXCLUDES, hooks=("merged-usr",)))
BASES: dict[str, Base] = {b.name: b for b in (SCRATCH, STATIC, LIBC, BUSYBOX, DEBIAN_SLIM)}
BASE_NAMES = tuple(BASES)


def base_layer(name: str, target: Target, cache_dir: Path | None = None) -> BaseLayer:
    """The base ``name`` for ``target``'s CPU: built once, then read from the cache."""
    base = BASES.get(name)
    if base is None:
        raise unknown("base", name, BASE_NAMES)
    if target.goarch not in DEB_ARCH:
        raise SlimlabError(f"no Debian architecture for {target.name}; bases exist for GOARCH "
                           f"{', '.join(DEB_ARCH)}")
    if base.bootstrap is None and not base.takes and not base.entries:
        return BaseLayer(name, None, "", {}, {})
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if base.bootstrap is not None:
        return _bootstrapped(base, target, root)
    debs, apts = _resolve(base.packages, target, root)
    key = _digest({"assembly": ASSEMBLY, "base": base.material(), "target": target.name,
                   "debs": {p: d["sha256"] for p, d in sorted(debs.items())}})
    return _cached(base, target, root, key, lambda out: _assemble(base, apts, debs, out))


def deb_architectures(name: str, target: Target, cache_dir: Path | None = None) -> dict[str, str]:
    """Package -> the Debian architecture of the .deb the base ``name`` takes for ``target``
    ("all" for ca-certificates and tzdata): from the file names apt resolved (cached), for
    SBOMs (slimlab.supply), whose package URLs carry it."""
    base = BASES.get(name)
    if base is None:
        raise unknown("base", name, BASE_NAMES)
    if not base.packages:
        return {}
    debs, _ = _resolve(base.packages, target, Path(cache_dir) if cache_dir is not None else default_cache_dir())
    return {p: d["file"].removesuffix(".deb").rsplit("_", 1)[-1] for p, d in debs.items()}


def _cached(base: Base, target: Target, root: Path, key: str, assemble) -> BaseLayer:
    """The base's layer from the cache entry ``key``, made by ``assemble(directory) -> meta`` once."""
    entry = cache.entry(root, "bases", key)
    meta = cache.lookup(entry, TAR)
    if meta is None:
        with cache.store(entry) as staging:
            meta = assemble(staging.path)
            staging.publish(meta, TAR)
    return BaseLayer(base.name, entry / TAR, meta["digest"], meta["packages"], meta["bytes_by_kind"], base.closure,
                     target.name)


def _resolve(packages: tuple[str, ...], target: Target, root: Path) -> tuple[dict[str, dict], dict[str, _Apt]]:
    """Package -> its .deb ({"file", "sha256", "apt"}), and the apts by name that fetch them.

    An arch:all package (its file ends in ``_all.deb``: ca-certificates, tzdata) is the
    same .deb for every CPU, so it comes from the host's apt: every CPU's base takes the
    same version, and a foreign CPU needs its own package lists only for what is per CPU.
    """
    host = _Apt("host", root, None)
    debs = {p: {**d, "apt": "host"} for p, d in host.resolve(packages).items()}
    per_cpu = tuple(p for p, d in debs.items() if not d["file"].endswith("_all.deb"))
    if target.is_native or not per_cpu:
        return debs, {"host": host}
    arch = DEB_ARCH[target.goarch]
    foreign = _Apt(arch, root, root / "apt" / arch)
    debs.update({p: {**d, "apt": arch} for p, d in foreign.resolve(per_cpu).items()})
    return debs, {"host": host, arch: foreign}


def fetch_debs(packages: tuple[str, ...], target: Target, into: Path,
               cache_dir: Path | None = None) -> dict[str, Path]:
    """Package -> its .deb for ``target``'s CPU, downloaded into ``into`` and checked against the
    index's hash. Per-CPU packages only (a kernel, busybox-static): a foreign CPU's come from
    its private apt state, so the host's dpkg architecture list stays as it is."""
    if target.goarch not in DEB_ARCH:
        raise SlimlabError(f"no Debian architecture for {target.name}; there is one for GOARCH {', '.join(DEB_ARCH)}")
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    arch = DEB_ARCH[target.goarch]
    apt = _Apt("host", root, None) if target.is_native else _Apt(arch, root, root / "apt" / arch)
    return apt.download(apt.resolve(packages), into)


def _digest(material: dict) -> str:
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _require(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            raise ToolError(f"{tool} not found: {TOOLS[tool]}", [tool])


class _Apt:
    """apt for one Debian architecture: the host's own, or a private state for a foreign CPU."""

    def __init__(self, arch: str, cache_root: Path, private: Path | None) -> None:
        self.arch = arch  # Debian's name, or "host" for the host's own apt
        self.cache_root = cache_root
        self.private = private  # None: the host's apt state

    @property
    def lists(self) -> Path:
        return self.private / "lists" if self.private else HOST_LISTS

    def options(self) -> list[str]:
        opts = ["-q"]
        if os.geteuid() == 0:
            # apt would hand the download to its _apt user, who cannot enter a private temp
            # directory; it then falls back to root anyway, with a warning.
            opts += ["-o", "APT::Sandbox::User=root"]
        if self.private is None:
            return opts
        p = self.private
        # The host's sources and settings (proxies, validity checks); this architecture's
        # Packages only (no DEP-11 metadata, no translations); no dpkg status: nothing is installed.
        return opts + [f"-o{o}" for o in (
            f"APT::Architecture={self.arch}", f"APT::Architectures={self.arch}",
            f"Dir::State::Lists={p / 'lists'}", f"Dir::State::status={p / 'status'}",
            f"Dir::Cache={p / 'cache'}", f"Dir::Cache::pkgcache={p / 'cache' / 'pkgcache.bin'}",
            "Dir::Cache::srcpkgcache=", "Acquire::Languages=none",
            "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false")]

    @contextmanager
    def locked(self):
        """One process at a time updates and reads a private state (the host's needs no lock to read)."""
        if self.private is None:
            yield
            return
        self.private.mkdir(parents=True, exist_ok=True)
        with open(self.private / "slimlab.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def stale(self) -> bool:
        """A private index is refreshed when it is missing or older than the host's, so that
        every CPU's base takes the versions the host's index offers (arch:all packages alike)."""
        stamp = self.private / "updated"
        if not stamp.exists() or not any(self.lists.glob("*_Packages*")):
            return True
        return HOST_LISTS.is_dir() and HOST_LISTS.stat().st_mtime > stamp.stat().st_mtime

    def update(self) -> None:
        _require("apt-get")
        for sub in ("lists/partial", "cache/archives/partial"):
            (self.private / sub).mkdir(parents=True, exist_ok=True)
        (self.private / "status").touch()
        done = proc.run(["apt-get", *self.options(), "update"], timeout=APT_TIMEOUT)
        if not done.ok:
            if not any(self.lists.glob("*_Packages*")):
                raise done.error(f"apt-get update ({self.arch} package lists in {self.private})")
            # One list failed, others came (seen here: a mirror's bookworm-security armhf
            # Packages.xz of another size than its Release file says, on every try). The
            # packages resolve from the lists that came; a package only the failed list
            # has is then "offers no .deb", said by resolve().
            print(f"slimlab: warning: apt-get update ({self.arch}) failed in part, using the lists it fetched: "
                  f"{proc.tail(done.stderr or done.stdout, 300)}", file=sys.stderr)
        (self.private / "updated").touch()

    def fingerprint(self) -> list:
        """The apt index's state: what decides which .deb a package name means."""
        files = sorted(p for p in self.lists.glob("*") if p.is_file() and p.name not in ("lock", "slimlab.lock"))
        config = [] if self.private else sorted(
            f for c in HOST_APT_CONFIG for f in ([c] if c.is_file() else sorted(c.glob("*")) if c.is_dir() else []))
        return [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in [*files, *config]]

    def resolve(self, packages: tuple[str, ...]) -> dict[str, dict]:
        """Package -> {"file", "sha256"} of the .deb apt would download, cached by the index's state."""
        with self.locked():
            if self.private is not None and self.stale():
                self.update()
            key = _digest({"arch": self.arch, "packages": sorted(packages), "index": self.fingerprint()})
            entry = cache.entry(self.cache_root, "bases-resolved", key)
            meta = cache.lookup(entry)
            if meta is not None:
                return meta["debs"]
            _require("apt-get")
            with tempfile.TemporaryDirectory() as empty:  # apt prints nothing for a .deb already in the cwd
                done = proc.run(["apt-get", *self.options(), "download", "--print-uris", *packages], cwd=empty,
                                timeout=APT_TIMEOUT)
            if not done.ok:
                raise done.error(f"apt-get download --print-uris ({self.arch})")
            debs = {}
            for line in done.stdout.splitlines():  # 'URI' FILE SIZE SHA256:HEX
                words = line.split()
                if len(words) == 4 and words[3].startswith("SHA256:"):
                    debs[words[1].split("_")[0]] = {"file": words[1], "sha256": words[3].split(":", 1)[1]}
            missing = [p for p in packages if p not in debs]
            if missing:
                raise ToolError(f"apt-get offers no .deb for {', '.join(missing)} ({self.arch}): {done.stdout.strip()}",
                                done.argv)
            with cache.store(entry) as staging:
                staging.publish({"debs": debs, "arch": self.arch, "resolved_at": time.time()})
            return debs

    def download(self, debs: dict[str, dict], into: Path) -> dict[str, Path]:
        """The .debs, checked against the hashes the key was made of."""
        if not debs:
            return {}
        _require("apt-get")
        with self.locked():
            done = proc.run(["apt-get", *self.options(), "download", *debs], cwd=into, timeout=APT_TIMEOUT)
        if not done.ok:
            hint = ("run `apt-get update`" if self.private is None
                    else f"remove {self.private / 'updated'} to refresh the {self.arch} package lists")
            raise ToolError(f"apt-get download failed ({hint}): {proc.tail(done.stderr or done.stdout, 800)}",
                            done.argv, done.returncode)
        paths = {}
        for package, want in debs.items():
            found = sorted(into.glob(f"{package}_*.deb"))
            got = cache.file_sha256(found[0]) if found else None
            if got != want["sha256"]:
                raise ToolError(f"apt-get download of {package} gave {got or 'no file'}, not the .deb the apt index "
                                f"names ({want['file']}, sha256 {want['sha256']}): the index changed; run again")
            paths[package] = found[0]
        return paths


def _assemble(base: Base, apts: dict[str, _Apt], debs: dict[str, dict], out: Path) -> dict:
    """Fetch, unpack and keep ``base``'s files; write the tar into ``out``; return the entry's meta."""
    _require("dpkg-deb", *(["openssl"] if any(t.prepare is _ca_bundle for t in base.takes) else []))
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="slimlab-base-") as tmp:
        tmp = Path(tmp)
        (tmp / "debs").mkdir()
        paths = {}
        for name, apt in apts.items():
            paths.update(apt.download({p: d for p, d in debs.items() if d["apt"] == name}, tmp / "debs"))
        packages = {}
        (tmp / "root").mkdir()
        for package, deb in paths.items():
            done = proc.run(["dpkg-deb", "-f", str(deb), "Version"], timeout=60)
            if not done.ok:
                raise done.error(f"dpkg-deb -f {deb.name}")
            packages[package] = done.stdout.strip()
            done = proc.run(["dpkg-deb", "-x", str(deb), str(tmp / "root" / package)], timeout=APT_TIMEOUT)
            if not done.ok:
                raise done.error(f"dpkg-deb -x {deb.name}")
        members = _members(base, tmp)
        tar_path = out / TAR
        bytes_by_kind = _write_tar(members, tar_path)
    return {"name": base.name, "digest": "sha256:" + cache.file_sha256(tar_path), "packages": dict(sorted(packages.items())),
            "bytes_by_kind": bytes_by_kind, "debs": debs, "seconds": time.perf_counter() - start,
            "built_at": time.time()}


# Every time in a bootstrapped root is 1970, as in the other bases' tars: with it set,
# mmdebstrap clamps file times and removes what differs from run to run (logs, caches).
SOURCE_DATE_EPOCH = "0"
HOST_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
MMDEBSTRAP_HOOKS = Path("/usr/share/mmdebstrap/hooks")


def _bootstrapped(base: Base, target: Target, root: Path) -> BaseLayer:
    """``base`` made by mmdebstrap from the host's apt index, cached by that index's state.

    mmdebstrap gets the host's own sources and package lists (``--skip=update``: it fetches no
    index of its own), so the packages and versions it installs are decided by the host's
    index, as for the other bases; an unchanged index (the key) resolves to the same package
    list and needs no mmdebstrap at all. Only the .debs come from the mirror apt already uses.
    """
    if target.goarch != "amd64" or not target.is_native:
        raise SlimlabError(f"base {base.name!r} is built for linux/amd64 on an amd64 host only so far, not "
                           f"{target.name} (mmdebstrap would run another CPU's maintainer scripts under QEMU)")
    _require("mmdebstrap")
    host = _Apt("host", root, None)
    sources = [f for d in HOST_SOURCES for f in ([d] if d.is_file() else sorted(d.glob("*")) if d.is_dir() else [])
               if f.suffix in (".list", ".sources") and f.stat().st_size]
    key = _digest({"assembly": ASSEMBLY, "base": base.material(), "target": target.name,
                   "mmdebstrap": cache.file_sha256(Path(shutil.which("mmdebstrap"))), "index": host.fingerprint(),
                   "sources": [[str(f), cache.file_sha256(f)] for f in sources]})
    return _cached(base, target, root, key, lambda out: _mmdebstrap(base, host, sources, out))


def _mmdebstrap(base: Base, host: _Apt, sources: list[Path], out: Path) -> dict:
    start = time.perf_counter()
    codename = platform.freedesktop_os_release().get("VERSION_CODENAME", "") if Path("/etc/os-release").exists() else ""
    lists = sorted(p for p in host.lists.glob("*") if p.is_file() and p.name != "lock")
    if not codename or not lists:
        raise SlimlabError(f"base {base.name!r} needs a Debian host with apt's package lists "
                           f"(VERSION_CODENAME in /etc/os-release, files in {host.lists}: run `apt-get update`)")
    nonroot = PASSWD.decode().splitlines()[-1], GROUP.decode().splitlines()[-1]
    customize = (  # nonroot (65532), as in every base; no file that names this host
        'rm -f "$1/etc/resolv.conf" "$1/etc/hostname" && '
        f'echo {shlex.quote(nonroot[0])} >> "$1/etc/passwd" && echo {shlex.quote(nonroot[1])} >> "$1/etc/group" && '
        'mkdir -m 0700 "$1/home/nonroot" && chown 65532:65532 "$1/home/nonroot"')
    copy_lists = 'cp ' + " ".join(shlex.quote(str(p)) for p in lists) + ' "$1/var/lib/apt/lists/"'
    with tempfile.TemporaryDirectory(prefix="slimlab-base-") as tmp:
        made = Path(tmp) / "root.tar"
        done = proc.run(["mmdebstrap", f"--variant={base.bootstrap.variant}", "--format=tar", "--skip=update",
                         *(f"--dpkgopt={o}" for o in base.bootstrap.dpkg_options),
                         *(f"--hook-dir={MMDEBSTRAP_HOOKS / h}" for h in base.bootstrap.hooks),
                         f"--setup-hook={copy_lists}", f"--customize-hook={customize}",
                         codename, str(made), *map(str, sources)],
                        env={"SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH, "LC_ALL": "C.UTF-8", "TMPDIR": tmp},
                        timeout=APT_TIMEOUT)
        if not done.ok:
            raise ToolError(f"mmdebstrap failed: {proc.tail(done.stderr or done.stdout, 1200)}", done.argv,
                            done.returncode)
        packages, bytes_by_kind = _copy_root(made, out / TAR)
    return {"name": base.name, "digest": "sha256:" + cache.file_sha256(out / TAR), "packages": packages,
            "bytes_by_kind": bytes_by_kind, "seconds": time.perf_counter() - start, "built_at": time.time(),
            "codename": codename}


def _copy_root(made: Path, out: Path) -> tuple[dict[str, str], dict[str, int]]:
    """mmdebstrap's tar without the device nodes of /dev (an engine gives every container
    its own /dev: no image from a registry has them); the installed packages from its dpkg
    status; regular files' bytes by what they are (libc6's files are ``libc``)."""
    with tarfile.open(made) as tar:
        status = tar.extractfile("./var/lib/dpkg/status").read().decode()
        libc = set()
        for name in tar.getnames():
            if name.startswith("./var/lib/dpkg/info/libc6") and name.endswith(".list"):
                libc |= {line.lstrip("/") for line in tar.extractfile(name).read().decode().splitlines()}
    packages = {}
    for stanza in status.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line[0].isspace())
        if fields.get("Status", "").endswith(" installed"):
            packages[fields["Package"]] = fields["Version"]

    def kind(path: str) -> str:
        if path in libc or path.removeprefix("usr/") in libc:  # dpkg lists /lib/..., the root may merge /usr
            return "libc"
        if path.startswith("usr/share/zoneinfo/"):
            return "zoneinfo"
        if path == "etc/ssl/certs/ca-certificates.crt":
            return "ca-certificates"
        if path in ("etc/passwd", "etc/group"):
            return "passwd"
        if path.startswith("usr/share/doc/") and path.endswith("/copyright"):
            return "copyright"
        return "debian"  # the rest of the system: dpkg, apt, the shell, coreutils, their data

    bytes_by_kind: dict[str, int] = {}
    with tarfile.open(made) as source, tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
        for member in source:
            if member.name.startswith("./dev/"):
                continue
            tar.addfile(member, source.extractfile(member) if member.isfile() else None)
            if member.isfile():
                k = kind(member.name.removeprefix("./"))
                bytes_by_kind[k] = bytes_by_kind.get(k, 0) + member.size
    return dict(sorted(packages.items())), dict(sorted(bytes_by_kind.items()))


def read_file(layer: BaseLayer, path: str) -> bytes | None:
    """A regular file of the base (``etc/ssl/certs/ca-certificates.crt``), None if it has none."""
    if layer.tar is None:
        return None
    with tarfile.open(layer.tar) as tar:
        for name in (path, f"./{path}"):
            try:
                member = tar.getmember(name)
            except KeyError:
                continue
            return tar.extractfile(member).read() if member.isfile() else None
    return None


@dataclass(frozen=True)
class Closure:
    """What a binary needs beyond its base, for a base that carries it (``libc``)."""

    files: dict[str, Path]  # path in the image -> this host's file
    packages: dict[str, str]  # the Debian package that installed each file -> its version
    missing: tuple[str, ...] = ()  # needed, on this host nowhere: the loader in the container will say so

    @property
    def bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files.values())


NO_CLOSURE = Closure({}, {})


def closure(layer: BaseLayer, needed: list[str] | tuple[str, ...], target: Target) -> Closure:
    """The libraries ``needed`` (DT_NEEDED) pulls in, theirs in turn, that ``layer`` does not hold.

    Each is this host's file, the one its loader found when the binary's check ran bare
    (libs.closure), put under ``usr/lib/<triplet>`` by its soname, where the loader in the
    image looks; its package and version are read from dpkg's database."""
    if not layer.closure or not needed or layer.tar is None:
        return NO_CLOSURE
    folders = {"lib", "lib64", "usr/lib", f"lib/{target.triplet}", f"usr/lib/{target.triplet}"}
    with tarfile.open(layer.tar) as tar:  # where the loader looks (no ld.so.cache in a base)
        held = {name.rpartition("/")[2] for name in tar.getnames()
                if name.removeprefix("./").rpartition("/")[0] in folders}
    files, missing = {}, []
    for soname, path in sorted(libs.closure(list(needed), target).items()):
        if soname in held:
            continue
        if path is None:
            missing.append(soname)
        else:
            files[f"usr/lib/{target.triplet}/{soname}"] = path
    return Closure(files, _owners(list(files.values())), tuple(missing))


def _owners(paths: list[Path]) -> dict[str, str]:
    """Debian package -> version of the packages that installed ``paths``. dpkg knows a file by
    the path its package ships (/lib/... on a merged-/usr host whose files live in /usr/lib)."""
    owners = {}
    for path in paths:
        for alias in (str(path), str(path).replace("/usr/lib/", "/lib/", 1)):
            found = proc.run(["dpkg-query", "-S", alias], timeout=60)
            if found.ok:
                package = found.stdout.split(":", 1)[0].split(",")[0].strip()
                version = proc.run(["dpkg-query", "-W", "-f=${Version}", package], timeout=60)
                owners[package] = version.stdout.strip() if version.ok else "?"
                break
    return dict(sorted(owners.items()))


@dataclass(frozen=True)
class _Member:
    kind: str
    type: bytes  # tarfile.REGTYPE, DIRTYPE, SYMTYPE
    mode: int
    uid: int = 0
    gid: int = 0
    source: Path | None = None  # a regular file's contents on disk
    data: bytes | None = None  # or in memory
    link: str = ""


def _members(base: Base, tmp: Path) -> dict[str, _Member]:
    """Every path of the tar (relative, no leading slash) and what it is."""
    members: dict[str, _Member] = {}

    def add(path: str, member: _Member) -> None:
        if path in members:
            raise SlimlabError(f"base {base.name!r} declares {path} twice")
        members[path] = member

    for take in base.takes:
        root = tmp / "root" / take.package
        if take.prepare is not None:
            scratch = tmp / "prepare" / take.package
            scratch.mkdir(parents=True, exist_ok=True)
            take.prepare(root, scratch)
        for kept in take.paths:
            top = root / kept
            if not top.exists() and not top.is_symlink():
                raise SlimlabError(f"base {base.name!r}: package {take.package} has no {kept}")
            walked = [top] + (sorted(top.rglob("*")) if top.is_dir() and not top.is_symlink() else [])
            for path in walked:
                st = path.lstat()
                # Package files belong to root whoever unpacked them (dpkg-deb -x keeps the
                # .deb's owners only when run as root).
                if stat.S_ISLNK(st.st_mode):
                    member = _Member(take.kind, tarfile.SYMTYPE, 0o777, link=os.readlink(path))
                elif stat.S_ISDIR(st.st_mode):
                    member = _Member(take.kind, tarfile.DIRTYPE, stat.S_IMODE(st.st_mode))
                elif stat.S_ISREG(st.st_mode):
                    member = _Member(take.kind, tarfile.REGTYPE, stat.S_IMODE(st.st_mode), source=path)
                else:
                    raise SlimlabError(f"base {base.name!r}: {path.relative_to(root)} in {take.package} "
                                       f"is neither a file, a directory nor a symlink")
                add(path.relative_to(root).as_posix(), member)
    for e in base.entries:
        kind = tarfile.SYMTYPE if e.link is not None else tarfile.DIRTYPE if e.data is None else tarfile.REGTYPE
        add(e.path, _Member(e.kind, kind, e.mode, e.uid, e.gid, data=e.data, link=e.link or ""))
    # Parents nobody declared: root's, 0755, as in any Debian root.
    for path in list(members):
        parent = Path(path).parent
        while parent != Path("."):
            members.setdefault(parent.as_posix(), _Member("layout", tarfile.DIRTYPE, 0o755))
            parent = parent.parent
    return members


def _write_tar(members: dict[str, _Member], path: Path) -> dict[str, int]:
    """A tar that depends only on ``members``: sorted, mtime 0, numeric owners, GNU headers
    (no pax records, which would carry times). Returns regular files' bytes by kind."""
    bytes_by_kind: dict[str, int] = {}
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(members, key=lambda p: p.split("/")):  # a directory before what it holds
            m = members[name]
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid, info.mtime = m.type, m.mode, m.uid, m.gid, 0
            info.uname = info.gname = ""
            info.linkname = m.link
            if m.type != tarfile.REGTYPE:
                tar.addfile(info)
                continue
            if m.data is not None:
                info.size = len(m.data)
                tar.addfile(info, io.BytesIO(m.data))
            else:
                info.size = m.source.stat().st_size
                with open(m.source, "rb") as fh:
                    tar.addfile(info, fh)
            bytes_by_kind[m.kind] = bytes_by_kind.get(m.kind, 0) + info.size
    return dict(sorted(bytes_by_kind.items()))


__all__ = ["BASES", "BASE_NAMES", "DEB_ARCH", "NO_CLOSURE", "Base", "BaseLayer", "Bootstrap", "Closure", "Entry", "Take",
           "base_layer", "closure", "read_file"]
