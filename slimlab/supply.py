"""Supply chain: a CycloneDX SBOM per variant and a govulncheck scan of each binary.

The SBOM lists what a scanner would find in what ships: the Go modules from the binary's
build info (``go version -m``), the standard library as the component ``stdlib`` at the
Go version (named as Syft and govulncheck name it), and, for an image, the Debian
packages of its base with their versions. It is written with ``cyclonedx-python-lib``
and validated by tests against the library's own JSON schema.

The scan is ``govulncheck -mode binary`` against a vulnerability database directory the
spec names (``vulndb``), since none can be downloaded here. In binary mode govulncheck
reports at symbol level when the binary keeps its symbol table (.symtab): a vulnerable
function counts only if it is in the binary, inlined or not. Without .symtab (``-s``,
``strip``) it cannot tell which functions are there and reports every vulnerable symbol
of each affected module version, the precision of go.mod: the row says which
(``vuln_scan_level``). A UPX-packed binary is unreadable to it: that is the row's
``vuln_reason``. Scans are cached by the binary's sha256, the database's digest and
govulncheck's version, so a resumed or repeated sweep does not scan again.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from . import cache, proc
from .buildinfo import BuildInfo
from .paths import find_tool

GOVULNCHECK = "govulncheck"
# Pinned: findings depend on the scanner, so its version is part of every scan's cache key.
GOVULNCHECK_MODULE = "golang.org/x/vuln/cmd/govulncheck"
GOVULNCHECK_VERSION = "v1.9.0"
GOVULNCHECK_INSTALL = (f"make setup   (or: GOBIN=<slimlab's venv>/bin go install "
                       f"{GOVULNCHECK_MODULE}@{GOVULNCHECK_VERSION})")
SCAN_OUTPUT = "govulncheck.json"
NO_DB_REASON = "not run: the spec names no vulnerability database (vulndb = \"/path/to/go-vulndb\")"


def find_govulncheck() -> str | None:
    """govulncheck on PATH, else in slimlab's venv, where setup installs it."""
    return find_tool(GOVULNCHECK)


def govulncheck_version(govulncheck: str) -> str:
    """'govulncheck@v1.9.0', as ``govulncheck -version`` names the scanner."""
    done = proc.run([govulncheck, "-version"], timeout=60)
    if not done.ok:
        raise done.error("govulncheck -version")
    found = re.search(r"Scanner:\s*(\S+)", done.stdout)
    return found.group(1) if found else proc.tail(done.stdout, 200)


def db_digest(db: Path) -> str:
    """The sha256 of every file of a vulnerability database (paths and contents): a scan is
    cached against what the database says, not where it is."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(db).rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(db).as_posix()}\0{cache.file_sha256(path)}\n".encode())
    return digest.hexdigest()


# -- the scan ----------------------------------------------------------------------------
@dataclass(frozen=True)
class VulnScan:
    ran: bool
    ids: tuple[str, ...] = ()  # OSV ids govulncheck reports as affecting the binary (symbol findings)
    level: str | None = None  # "symbol", or "module" when the binary has no symbol table
    seconds: float | None = None  # the scan's wall time (of the original scan when cached)
    cached: bool = False
    reason: str | None = None  # why it did not run, or failed


def json_stream(text: str) -> Iterator[dict]:
    """The objects of govulncheck's -json output: indented JSON objects one after another."""
    decoder = json.JSONDecoder()
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return
        message, at = decoder.raw_decode(text, at)
        yield message


def affecting_ids(messages: Sequence[dict]) -> tuple[str, ...]:
    """The OSV ids with a finding at a function: what govulncheck's summary counts as
    vulnerabilities affecting the code. Findings at module or package level alone mean the
    binary holds a vulnerable module version or package but not the vulnerable code."""
    return tuple(sorted({m["finding"]["osv"] for m in messages
                         if "finding" in m and any(f.get("function") for f in m["finding"].get("trace", []))}))


def scan_level(binary: Path, requested: str | None) -> str | None:
    """The precision govulncheck scanned ``binary`` at: it asks for a symbol level, but
    without .symtab (its lookup of Go's function symbol fails) it falls back to every known
    vulnerable symbol of each affected module (vulncheck.binary: "go.mod-level precision")."""
    if requested != "symbol":
        return requested
    try:
        with open(binary, "rb") as fh:
            has_symtab = any(s["sh_type"] == "SHT_SYMTAB" for s in ELFFile(fh).iter_sections())
    except ELFError:
        return None
    return "symbol" if has_symtab else "module"


def scan(govulncheck: str, scanner: str, binary: Path, db: Path, digest: str, cache_dir: Path,
         timeout: float) -> VulnScan:
    """``govulncheck -mode binary -db file://DB -json BINARY``, or its cached result."""
    key = hashlib.sha256(json.dumps({"binary": cache.file_sha256(binary), "db": digest, "scanner": scanner},
                                    sort_keys=True).encode()).hexdigest()
    entry = cache.entry(cache_dir, "vulnscan", key)
    meta = cache.lookup(entry, SCAN_OUTPUT)
    if meta is not None:
        return VulnScan(True, tuple(meta["ids"]), meta["level"], meta["seconds"], cached=True)
    done = proc.run([govulncheck, "-mode", "binary", "-db", Path(db).resolve().as_uri(), "-json", str(binary)],
                    timeout=timeout)
    if not done.ok:  # e.g. "unrecognized binary format" for a UPX-packed file; not cached: retried next time
        return VulnScan(False, seconds=done.seconds, reason=f"govulncheck: {done.error('scan')}")
    messages = list(json_stream(done.stdout))
    read = next((m["SBOM"] for m in messages if "SBOM" in m), {})
    if not str(read.get("go_version", "")).startswith("go"):
        # No Go build info (a gccgo binary): govulncheck exits 0 having matched nothing, so
        # "no findings" would be a false all-clear. Not cached: it costs milliseconds.
        return VulnScan(False, seconds=done.seconds,
                        reason=f"govulncheck found no Go build info in the binary (Go version: "
                               f"{read.get('go_version')!r}), so it checked nothing")
    config = next((m["config"] for m in messages if "config" in m), {})
    found = VulnScan(True, affecting_ids(messages), scan_level(binary, config.get("scan_level")), done.seconds)
    with cache.store(entry) as staging:
        (staging.path / SCAN_OUTPUT).write_text(done.stdout)
        staging.publish({"ids": list(found.ids), "level": found.level, "seconds": found.seconds,
                         "scanner": scanner, "db": digest}, SCAN_OUTPUT)
    return found


# -- the SBOM ----------------------------------------------------------------------------
@dataclass(frozen=True)
class DebPackage:
    name: str
    version: str
    arch: str  # Debian's architecture, "all" for an arch-independent package


@dataclass(frozen=True)
class SbomOutcome:
    path: Path
    components: int  # entries in the BOM's components (the image's own subject is in metadata)


def host_distro() -> str | None:
    """'debian-12': the distro the bases' packages come from (the host's apt), as purls name it."""
    try:
        release = platform.freedesktop_os_release()
    except OSError:
        return None
    return f"{release['ID']}-{release['VERSION_ID']}" if release.get("ID") and release.get("VERSION_ID") else None


def file_name(variant_key: str) -> str:
    """A file name for a variant's SBOM: its key made safe (it holds '|' and '/'), plus a
    short hash of the key, so two keys that read alike never share a file."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", variant_key).strip("_.")
    return f"{slug}-{hashlib.sha256(variant_key.encode()).hexdigest()[:8]}.cdx.json"


def write_sbom(path: Path, *, binary: Path, info: BuildInfo | None, name: str, image: str | None = None,
               packages: Sequence[DebPackage] = (), distro: str | None = None) -> SbomOutcome:
    """A CycloneDX 1.6 JSON SBOM of ``binary`` (and of ``image``, with its base's ``packages``)."""
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output import make_outputter
    from cyclonedx.schema import OutputFormat, SchemaVersion
    from packageurl import PackageURL

    def golang(module_path: str, version: str | None) -> PackageURL:
        # pkg:golang/<module path>@<version>, the module path whole as its name (as govulncheck's
        # openvex output and Syft write it).
        return PackageURL(type="golang", name=module_path, version=version or None)

    main = info.main if info else None
    app = Component(
        type=ComponentType.APPLICATION, name=main.path if main else name, bom_ref="application",
        version=main.version if main else None, purl=golang(main.path, main.version) if main else None,
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=cache.file_sha256(binary))],
        properties=[Property(name="slimlab:file", value=binary.name),
                    *(Property(name=f"golang:build:{k}", value=v) for k, v in (info.settings if info else ()))],
    )
    modules = []
    if info is not None:
        # The standard library is what most Go advisories are against: Syft's naming, version
        # "go1.26.8", purl version without "go".
        modules.append(Component(name="stdlib", version=info.go_version, bom_ref="golang:stdlib",
                                 purl=golang("stdlib", info.go_version.removeprefix("go"))))
        for dep in info.deps:
            used = dep.replace if dep.replace is not None and dep.replace.version else dep  # the code in the binary
            props = [Property(name="golang:sum", value=used.sum)] if used.sum else []
            if dep.replace is not None:
                props.append(Property(name="golang:replaces" if used is not dep else "golang:replaced-by",
                                      value=str(dep) if used is not dep else str(dep.replace)))
            modules.append(Component(name=used.path, version=used.version, bom_ref=f"golang:{used.path}@{used.version}",
                                     purl=golang(used.path, used.version), properties=props))
    debs = [Component(name=p.name, version=p.version, bom_ref=f"deb:{p.name}",
                      purl=PackageURL(type="deb", namespace="debian", name=p.name, version=p.version,
                                      qualifiers={"arch": p.arch, **({"distro": distro} if distro else {})}))
            for p in packages]

    bom = Bom()
    if image is None:
        bom.metadata.component = app
        bom.components.update(modules)
    else:
        bom.metadata.component = Component(type=ComponentType.CONTAINER, name=image, bom_ref="image")
        bom.components.update([app, *modules, *debs])
        bom.register_dependency(bom.metadata.component, [app, *debs])
        for deb in debs:
            bom.register_dependency(deb)
    bom.register_dependency(app, modules)
    for module in modules:  # build info lists modules, not who requires whom
        bom.register_dependency(module)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = make_outputter(bom, OutputFormat.JSON, SchemaVersion.V1_6).output_as_string(indent=2)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return SbomOutcome(path, len(bom.components))
