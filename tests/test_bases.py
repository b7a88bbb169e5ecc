"""Image bases from real Debian packages: real apt-get download, real dpkg-deb, real tars.

The expectations come from the packages themselves (fetched here with apt-get, read with
dpkg-deb and tarfile), not from slimlab: the zoneinfo tree a base must hold is the one
tzdata ships, the CA bundle's certificates are the ones ca-certificates ships, and the
versions are what ``dpkg-deb -f`` says.
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
from conftest import require
from elftools.elf.elffile import ELFFile

from slimlab.bases import APPLETS, BASE_NAMES, base_layer
from slimlab.errors import SlimlabError, SpecError, ToolError
from slimlab.model.target import TARGETS

AMD64, ARM64 = TARGETS["linux/amd64"], TARGETS["linux/arm64"]
PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.DOTALL)
# Everything of the static base but the zoneinfo tree, which tzdata decides.
STATIC_PATHS = {
    "etc", "etc/passwd", "etc/group", "etc/nsswitch.conf", "etc/os-release",
    "etc/ssl", "etc/ssl/certs", "etc/ssl/certs/ca-certificates.crt",
    "home", "home/nonroot", "root", "tmp",
    "usr", "usr/share", "usr/share/doc",
    "usr/share/doc/ca-certificates", "usr/share/doc/ca-certificates/copyright",
    "usr/share/doc/tzdata", "usr/share/doc/tzdata/copyright",
}


@pytest.fixture(scope="module")
def debs(tmp_path_factory) -> dict[str, Path]:
    """The host CPU's .debs, fetched by the test itself: what the base must be made of."""
    require("apt-get", "a Debian host")
    require("dpkg-deb", "apt-get install dpkg")
    where = tmp_path_factory.mktemp("debs")
    packages = ("ca-certificates", "tzdata", "busybox-static")
    subprocess.run(["apt-get", "-q", "-o", "APT::Sandbox::User=root", "download", *packages], cwd=where,
                   check=True, capture_output=True)
    return {p: next(where.glob(f"{p}_*.deb")) for p in packages}


def deb_version(deb: Path) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True,
                          text=True).stdout.strip()


def deb_files(deb: Path) -> dict[str, tarfile.TarInfo]:
    """The .deb's data members by path (no leading ./), via dpkg-deb --fsys-tarfile."""
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name.removeprefix("./").rstrip("/"): m for m in tar.getmembers() if m.name not in ("./", ".")}


def deb_read(deb: Path, prefix: str) -> dict[str, bytes]:
    data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()
                if m.isfile() and m.name.removeprefix("./").startswith(prefix)}


def members(path: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return {m.name: m for m in tar.getmembers()}


def read(path: Path, name: str) -> bytes:
    with tarfile.open(path) as tar:
        return tar.extractfile(name).read()


@pytest.fixture(scope="module")
def static(tmp_path_factory):
    return base_layer("static", AMD64, tmp_path_factory.mktemp("bases-cache"))


@pytest.mark.unit
def test_unknown_base_names_the_valid_ones():
    with pytest.raises(SpecError) as err:
        base_layer("statik", AMD64)
    assert "did you mean 'static'" in str(err.value)
    assert ", ".join(BASE_NAMES) in str(err.value)


@pytest.mark.unit
def test_scratch_is_empty_and_needs_nothing(tmp_path):
    layer = base_layer("scratch", AMD64, tmp_path)
    assert (layer.tar, layer.digest, layer.packages, layer.bytes_by_kind) == (None, "", {}, {})
    assert not any(tmp_path.iterdir())


def test_static_holds_exactly_the_declared_paths(static, debs):
    zoneinfo = {p for p in deb_files(debs["tzdata"]) if p == "usr/share/zoneinfo" or p.startswith("usr/share/zoneinfo/")}
    assert len(zoneinfo) > 1000
    assert set(members(static.tar)) == STATIC_PATHS | zoneinfo
    # Symlinks in zoneinfo are kept as the package has them.
    shipped = deb_files(debs["tzdata"])
    ours = members(static.tar)
    assert {p: ours[p].linkname for p in zoneinfo if ours[p].issym()} == \
           {p: shipped[p].linkname for p in zoneinfo if shipped[p].issym()}


def test_static_accounts_modes_and_owners(static):
    tar = members(static.tar)
    passwd = read(static.tar, "etc/passwd").decode().splitlines()
    assert "root:x:0:0:root:/root:/sbin/nologin" in passwd
    assert "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin" in passwd
    assert "nonroot:x:65532:" in read(static.tar, "etc/group").decode().splitlines()
    assert "hosts:          files dns" in read(static.tar, "etc/nsswitch.conf").decode().splitlines()
    assert b"ID=debian" in read(static.tar, "etc/os-release")
    assert tar["tmp"].isdir() and tar["tmp"].mode == 0o1777
    assert tar["home/nonroot"].isdir() and (tar["home/nonroot"].uid, tar["home/nonroot"].gid) == (65532, 65532)
    assert {(m.uid, m.gid) for name, m in tar.items() if name != "home/nonroot"} == {(0, 0)}
    assert {m.mtime for m in tar.values()} == {0}
    assert not any(m.pax_headers for m in tar.values())


def test_ca_bundle_is_every_certificate_debian_ships(static, debs):
    # What the package's postinst makes on a fresh install: each certificate it ships, a
    # newline added where one is missing (update-ca-certificates' `sed '$a\'`).
    shipped = deb_read(debs["ca-certificates"], "usr/share/ca-certificates/")
    assert len(shipped) > 100
    bundle = read(static.tar, "etc/ssl/certs/ca-certificates.crt")
    assert len(bundle) == sum(len(c) + (not c.endswith(b"\n")) for c in shipped.values())
    assert sorted(PEM.findall(bundle)) == sorted(p for c in shipped.values() for p in PEM.findall(c))
    assert static.bytes_by_kind["ca-certificates"] == len(bundle)


def test_packages_are_the_debs_versions_and_bytes_add_up(static, debs):
    assert static.packages == {p: deb_version(debs[p]) for p in ("ca-certificates", "tzdata")}
    assert static.digest == "sha256:" + hashlib.sha256(static.tar.read_bytes()).hexdigest()
    tar = members(static.tar)
    files = {n: m.size for n, m in tar.items() if m.isfile()}
    assert sum(static.bytes_by_kind.values()) == sum(files.values())
    assert static.bytes_by_kind["zoneinfo"] == sum(s for n, s in files.items() if n.startswith("usr/share/zoneinfo/"))
    assert static.bytes_by_kind["passwd"] == files["etc/passwd"] + files["etc/group"]


def test_same_packages_same_digest_and_no_apt_work_when_cached(static, tmp_path, hide_tools):
    again = base_layer("static", AMD64, tmp_path / "fresh-cache")
    assert again.tar != static.tar
    assert again.digest == static.digest and again.tar.read_bytes() == static.tar.read_bytes()
    hide_tools("apt-get", "dpkg-deb")  # a cached base must not need them
    cached = base_layer("static", AMD64, tmp_path / "fresh-cache")
    assert (cached.tar, cached.digest, cached.packages) == (again.tar, again.digest, again.packages)


def test_missing_dpkg_deb_names_the_install_command(tmp_path, hide_tools):
    hide_tools("dpkg-deb")
    with pytest.raises(ToolError, match=r"dpkg-deb not found: apt-get install dpkg"):
        base_layer("static", AMD64, tmp_path)


def test_arm64_busybox_holds_an_aarch64_busybox_with_its_applets(tmp_path, static):
    qemu = require("qemu-aarch64-static", "apt-get install qemu-user-static")
    layer = base_layer("busybox", ARM64, tmp_path)
    tar = members(layer.tar)
    binary = read(layer.tar, "bin/busybox")
    assert ELFFile(io.BytesIO(binary)).header["e_machine"] == "EM_AARCH64"
    assert {a: tar[f"bin/{a}"].linkname for a in APPLETS} == {a: "busybox" for a in APPLETS}
    # The static part is the same packages as on amd64: arch:all .debs are the same for every CPU.
    assert {p: v for p, v in layer.packages.items() if p != "busybox-static"} == static.packages
    assert layer.bytes_by_kind["busybox"] == len(binary)
    # The binary says which Debian build it is, and which applets it has: run it under QEMU.
    path = tmp_path / "busybox"
    path.write_bytes(binary)
    path.chmod(0o755)
    # Without an applet busybox prints its banner and usage; its exit status says nothing here.
    banner = subprocess.run([qemu, str(path)], check=False, capture_output=True, text=True).stdout
    assert f"(Debian {layer.packages['busybox-static']})" in banner
    listed = set(subprocess.run([qemu, str(path), "--list"], capture_output=True, text=True, check=True).stdout.split())
    assert set(APPLETS) <= listed


@pytest.fixture(scope="module")
def libc(tmp_path_factory):
    return base_layer("libc", AMD64, tmp_path_factory.mktemp("libc-cache"))


@pytest.fixture(scope="module")
def slim_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("slim-cache")


@pytest.fixture(scope="module")
def slim(slim_cache):
    require("mmdebstrap", "apt-get install mmdebstrap")
    return base_layer("debian-slim", AMD64, slim_cache)


def test_libc_is_static_plus_every_file_of_libc6_and_the_loader(libc, static, tmp_path):
    require("apt-get", "a Debian host")
    subprocess.run(["apt-get", "-q", "-o", "APT::Sandbox::User=root", "download", "libc6"], cwd=tmp_path, check=True,
                   capture_output=True)
    deb = next(tmp_path.glob("libc6_*.deb"))
    shipped = {p: m for p, m in deb_files(deb).items() if p.split("/")[0] in ("lib", "lib64", "usr")
               and not p.startswith("usr/share")}
    ours = members(libc.tar)
    assert set(members(static.tar)) | set(shipped) | {"usr/share/doc/libc6", "usr/share/doc/libc6/copyright"} \
        == set(ours)
    # The loader the kernel asks for (PT_INTERP) is there, a link as libc6 ships it.
    assert ours["lib64/ld-linux-x86-64.so.2"].linkname == shipped["lib64/ld-linux-x86-64.so.2"].linkname
    assert ours["lib/x86_64-linux-gnu/libc.so.6"].size == shipped["lib/x86_64-linux-gnu/libc.so.6"].size
    assert libc.bytes_by_kind["libc"] == sum(m.size for m in shipped.values() if m.isfile())
    assert libc.packages == {**static.packages, "libc6": deb_version(deb)}
    assert libc.closure and not static.closure


def test_debian_slim_is_a_minbase_root_with_nonroot_and_its_package_list(slim, static):
    tar = members(slim.tar)
    names = {n.removeprefix("./") for n in tar}
    assert "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin" in \
        read(slim.tar, "./etc/passwd").decode().splitlines()
    assert "nonroot:x:65532:" in read(slim.tar, "./etc/group").decode().splitlines()
    home = tar["./home/nonroot"]
    assert (home.uid, home.gid, home.mode) == (65532, 65532, 0o700)
    assert not any(n.startswith("dev/") for n in names)  # the engine gives each container its /dev
    assert {"usr/bin/dpkg", "usr/bin/apt-get", "usr/bin/bash"} <= names
    assert not any(n.startswith("usr/share/man/") for n in names)  # the slim excludes
    # The package list is what dpkg itself says is installed in that root.
    root = slim.tar.parent / "check"
    (root / "var/lib/dpkg").mkdir(parents=True, exist_ok=True)
    (root / "var/lib/dpkg/status").write_bytes(read(slim.tar, "./var/lib/dpkg/status"))
    listed = subprocess.run(["dpkg-query", f"--admindir={root / 'var/lib/dpkg'}", "-W", "-f=${Package}=${Version}\\n"],
                            check=True, capture_output=True, text=True).stdout.split()
    assert sorted(f"{p}={v}" for p, v in slim.packages.items()) == sorted(listed)
    assert {"libc6", "dpkg", "apt", "tzdata", "usr-is-merged"} <= set(slim.packages)
    assert "perl" not in slim.packages and "usrmerge" not in slim.packages
    # minbase has no ca-certificates: measured, not forced.
    assert "ca-certificates" not in slim.packages and "etc/ssl/certs/ca-certificates.crt" not in names
    assert sum(slim.bytes_by_kind.values()) == sum(m.size for m in tar.values() if m.isfile())
    assert slim.bytes_by_kind["libc"] > 5_000_000 and slim.bytes_by_kind["debian"] > slim.bytes_by_kind["libc"]
    assert slim.tar.stat().st_size > 3 * static.tar.stat().st_size


def test_debian_slim_is_reproducible_and_cached_without_apt_work(slim, slim_cache, tmp_path, hide_tools):
    again = base_layer("debian-slim", AMD64, tmp_path / "fresh")
    assert again.tar != slim.tar and again.digest == slim.digest
    hide_tools("apt-get", "dpkg-deb", "dpkg")
    cached = base_layer("debian-slim", AMD64, slim_cache)
    assert (cached.tar, cached.digest, cached.packages) == (slim.tar, slim.digest, slim.packages)


def test_missing_mmdebstrap_names_the_install_command(tmp_path, hide_tools):
    hide_tools("mmdebstrap")
    with pytest.raises(ToolError, match=r"mmdebstrap not found: apt-get install mmdebstrap"):
        base_layer("debian-slim", AMD64, tmp_path)


@pytest.mark.unit
def test_debian_slim_of_another_cpu_is_a_clear_error(tmp_path):
    with pytest.raises(SlimlabError, match=r"linux/amd64 .* only so far, not linux/arm64"):
        base_layer("debian-slim", ARM64, tmp_path)


def test_the_base_capability_matrix_over_every_base(docker_engine, slim):
    from slimlab import baseprobe, engine

    api = engine.client()
    try:
        matrix = baseprobe.run_base_probes(list(BASE_NAMES), api)
    finally:
        api.close()
    passed = {(r["toolchain"].removeprefix("base "), r["probe"]): r["passed"] for r in matrix.iter_rows(named=True)}
    errors = {(r["toolchain"].removeprefix("base "), r["probe"]): r["error"] for r in matrix.iter_rows(named=True)}
    # scratch has no CA bundle and no zoneinfo; time/tzdata compiled in needs none. debian-slim
    # (minbase) has tzdata but not ca-certificates: no bundle to append the CA to.
    expected = {("scratch", "system-roots"): False, ("scratch", "tzdata"): False,
                ("debian-slim", "system-roots"): False}
    assert passed == {(b, p): expected.get((b, p), True) for b in BASE_NAMES
                      for p in ("system-roots", "tzdata", "tzdata-embedded")}, errors
    for base in ("scratch", "debian-slim"):
        assert "(0 certificates)" in errors[base, "system-roots"]
        assert "certificate signed by unknown authority" in errors[base, "system-roots"]
    assert "unknown time zone Europe/Berlin" in errors["scratch", "tzdata"]


def test_the_tls_probe_fails_on_a_bundle_without_the_local_ca(docker_engine, static, tmp_path):
    """The control: static's own bundle (Debian's public roots) does not vouch for a CA made
    here, so the probe passes above only because the CA was appended to that bundle."""
    from slimlab import baseprobe, engine, image, toolchains
    from slimlab.build import build
    from slimlab.probe import PROBES_DIR
    from slimlab.workloads import Workload

    probe = next(p for p in baseprobe.BASE_PROBES if p.name == "system-roots")
    pki = baseprobe.local_ca(tmp_path)
    workload = Workload(probe.name, PROBES_DIR / probe.source, expect_stdout=probe.expect,
                        env=(("PROBE_LEAF_CERT", pki["leaf"].read_text()), ("PROBE_LEAF_KEY", pki["key"].read_text()),
                             ("PROBE_SERVER_NAME", baseprobe.SERVER_NAME)))
    go = toolchains.get("go")
    built = build(workload, go, go.detect(), probe.profile, AMD64, tmp_path / "cache", 600)
    assert built.ok, built.reason
    api = engine.client()
    try:
        made = image.build_image(api, static, built.binary, probe.name)
        assert made.ok, made.reason
        checked = image.check_in_container(api, made.tag, workload, 60)
    finally:
        api.close()
    assert not checked.ok
    assert "certificate signed by unknown authority" in checked.reason
    n = int(re.search(r"\((\d+) certificates\)", checked.reason).group(1))
    assert n == len(PEM.findall(read(static.tar, "etc/ssl/certs/ca-certificates.crt"))) > 100
