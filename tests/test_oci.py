"""Multi-arch images on a real engine: QEMU in binfmt_misc, OCI image layouts checked with skopeo.

skopeo (Debian's, installed by scripts/setup.sh) is the independent reader: it must see the
index with every platform, and its copy of each platform into the engine must be the very
image slimlab loaded (same id) and run.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile

import polars as pl
import pytest
from artifacts import built
from conftest import require

from slimlab import bases, engine, oci
from slimlab.image import run_container
from slimlab.model import TARGETS
from slimlab.sweep import sweep

FOREIGN = ("linux/arm64", "linux/arm/v7")
PLATFORMS = ("linux/amd64", *FOREIGN)
HELLO = "hello from slimlab\n"


def skopeo(*args: str) -> str:
    done = subprocess.run([require("skopeo", "apt-get install skopeo"), *args], capture_output=True, text=True, check=False,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_engine_start_registers_qemu_with_the_fix_binary_flag(docker_engine):
    found = engine.start()
    assert dict(found.binfmt).keys() == {"qemu-aarch64", "qemu-arm"}
    assert all("F" in flags for _, flags in found.binfmt), found.binfmt
    assert "qemu-aarch64 (" in found.describe() and engine.status() == found
    assert engine.start() == found  # idempotent: nothing registered twice
    for name in ("qemu-aarch64", "qemu-arm"):
        assert (engine.BINFMT / name).read_text().startswith("enabled")


def _scratch_context(binary) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        text = b'FROM scratch\nCOPY hello /hello\nENTRYPOINT ["/hello"]\n'
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))
        tar.add(binary, arcname="hello")
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize("target", FOREIGN)
def test_a_foreign_scratch_container_prints_its_output(docker_engine, target):
    # Built by the engine itself (not slimlab.oci): binfmt alone makes it run.
    api = engine.client()
    tag = f"slimlab-test/foreign:{os.getpid()}-{TARGETS[target].goarch}"
    api.images.build(fileobj=_scratch_context(built("hello", "static", target)), custom_context=True, tag=tag,
                     platform=target, rm=True)
    try:
        assert api.images.get(tag).attrs["Architecture"] == TARGETS[target].goarch
        ran = run_container(api, tag, [], {}, 120)
        assert (ran.exit_code, ran.stdout, ran.problem) == (0, HELLO, None), ran.stderr
    finally:
        api.images.remove(tag, force=True)


def test_an_entry_without_f_is_replaced_only_when_it_runs_debians_emulator(docker_engine, tmp_path, monkeypatch):
    # A private entry with a magic no file has, so the host's own entries are never touched.
    name = f"slimlab-test-{os.getpid()}"
    interpreter = "/usr/libexec/qemu-binfmt/aarch64-binfmt-P"
    (tmp_path / f"{name}.conf").write_text(f"# test\n:{name}:M::\\x00slimlab-test::{interpreter}:OP\n")
    monkeypatch.setattr(engine, "BINFMT_CONF", tmp_path)
    monkeypatch.setattr(engine, "qemu_entries", lambda: (name,))
    register = engine.BINFMT / "register"
    try:
        register.write_text(f":{name}:M::\\x00slimlab-test::{interpreter}:P")  # as systemd-binfmt would, no F
        assert set(dict(engine.register_qemu())[name]) == set("OPF")
        assert set(dict(engine.register_qemu())[name]) == set("OPF")  # idempotent
        (engine.BINFMT / name).write_text("-1")
        register.write_text(f":{name}:M::\\x00slimlab-test::/usr/bin/true:P")  # someone else's emulator
        assert engine.register_qemu() == ((name, "P"),)  # left alone
        (engine.BINFMT / name).write_text("-1")
        register.write_text(f":{name}:M::\\x00slimlab-test::{interpreter}:P")
        (engine.BINFMT / name).write_text("0")  # disabled on purpose: left so
        assert engine.register_qemu() == ((name, ""),)
        assert (engine.BINFMT / name).read_text().startswith("disabled")
        assert engine.start().binfmt == engine.binfmt_state()
    finally:
        if (engine.BINFMT / name).exists():
            (engine.BINFMT / name).write_text("-1")


def test_the_index_is_the_same_whatever_order_the_platforms_come_in(tmp_path):
    binaries = {t: built("hello", "static", t) for t in PLATFORMS[:2]}
    scratch = bases.base_layer("scratch", TARGETS["linux/amd64"])
    digests = []
    for order, into in ((PLATFORMS[:2], tmp_path / "a"), (PLATFORMS[1::-1], tmp_path / "b")):
        layout = oci.Layout(into)
        for target in order:
            oci.write_platform(layout, "hello", scratch, binaries[target], "hello", TARGETS[target])
        digests.append(oci.index_of(layout, "hello"))
    assert digests[0] == digests[1] and digests[0][1] == list(PLATFORMS[:2])
    # Same bytes, blob for blob: nothing in them depends on the time or the order.
    assert sorted(p.name for p in (tmp_path / "a/blobs/sha256").iterdir()) == \
        sorted(p.name for p in (tmp_path / "b/blobs/sha256").iterdir())


@pytest.fixture(scope="module")
def multiarch_run(tmp_path_factory, docker_engine):
    spec = {"workloads": ["hello"], "profiles": ["static"], "targets": list(PLATFORMS),
            "bases": ["scratch", "static"], "repeats": 1, "warmup": 0}
    return sweep(spec, data_dir=tmp_path_factory.mktemp("multiarch"), run_id="multiarch", progress=False)


def test_every_platform_gets_an_image_and_one_index_per_base(multiarch_run):
    rows = pl.read_parquet(multiarch_run / "results.parquet")
    assert rows.height == 6 and rows["status"].to_list() == ["ok"] * 6, rows.select("target", "base", "reason")
    for row in rows.iter_rows(named=True):
        assert row["image_platform"] == row["target"]
        assert row["emulated"] == (row["target"] != "linux/amd64")
        assert row["runner"] == ("container" if row["target"] == "linux/amd64"
                                 else f"container+{TARGETS[row['target']].qemu}")
        assert row["oci_index_platforms"] == list(PLATFORMS)
        assert row["oci_image_bytes"] > 0 and row["image_size_bytes"] > 0
    per_base = rows.group_by("base").agg(pl.col("oci_layout").n_unique(), pl.col("oci_index_digest").n_unique(),
                                         pl.col("oci_manifest_digest").n_unique())
    assert per_base.select(pl.exclude("base")).to_numpy().tolist() == [[1, 1, 3]] * 2
    assert rows["oci_index_digest"].n_unique() == 2


def test_skopeo_sees_the_index_with_every_platform(multiarch_run):
    rows = pl.read_parquet(multiarch_run / "results.parquet")
    for (layout,), group in rows.group_by("oci_layout"):
        path, ref = layout.split(":")
        reference = f"oci:{multiarch_run / path}:{ref}"
        index = json.loads(skopeo("inspect", "--raw", reference))
        assert index["mediaType"] == oci.INDEX
        by_platform = {"/".join(filter(None, (m["platform"]["os"], m["platform"]["architecture"],
                                              m["platform"].get("variant")))): m["digest"] for m in index["manifests"]}
        assert by_platform == dict(zip(group["image_platform"], group["oci_manifest_digest"]))
        for row in group.iter_rows(named=True):
            target = TARGETS[row["target"]]
            config = json.loads(skopeo("inspect", "--config", "--raw", f"{reference}.{oci.platform_slug(target)}"))
            assert (config["architecture"], config.get("variant")) == \
                (target.goarch, f"v{target.goarm}" if target.goarm else None)


def test_skopeo_copies_each_platform_into_the_engine_as_the_image_slimlab_measured(multiarch_run):
    api = engine.client()
    rows = pl.read_parquet(multiarch_run / "results.parquet").filter(pl.col("base") == "static")
    for row in rows.iter_rows(named=True):
        target = TARGETS[row["target"]]
        path, ref = row["oci_layout"].split(":")
        tag = f"slimlab-test/oci-copy:{os.getpid()}-{oci.platform_slug(target)}"
        skopeo("copy", "--dest-daemon-host", engine.status().url,
               "--override-arch", target.goarch, *(["--override-variant", f"v{target.goarm}"] if target.goarm else []),
               f"oci:{multiarch_run / path}:{ref}", f"docker-daemon:{tag}")
        try:
            copied = api.images.get(tag)
            assert copied.id == api.images.get(row["image_tag"]).id  # what the row's sizes and runs used
            assert copied.attrs["Architecture"] == target.goarch and copied.attrs["Size"] == row["image_size_bytes"]
            ran = run_container(api, tag, [], {}, 120)
            assert (ran.exit_code, ran.stdout) == (0, HELLO), (ran.problem, ran.stderr)
        finally:
            api.images.remove(tag)


def test_a_second_build_gives_the_same_digests(multiarch_run, tmp_path):
    rows = pl.read_parquet(multiarch_run / "results.parquet")
    api = engine.client()
    for row in rows.iter_rows(named=True):
        target = TARGETS[row["target"]]
        again = oci.build_platform_image(api, tmp_path, row["oci_layout"].split(":")[1],
                                         bases.base_layer(row["base"], target), built("hello", "static", row["target"]),
                                         "hello", target)
        assert again.image.ok, again.image.reason
        assert again.platform.manifest["digest"] == row["oci_manifest_digest"]
        assert again.image.tag == row["image_tag"] and again.image.cached
    for (layout, digest), _ in rows.group_by("oci_layout", "oci_index_digest"):
        assert oci.index_of(oci.Layout(tmp_path / "oci"), layout.split(":")[1])[0] == digest


def test_foreign_container_timings_are_marked_emulated(multiarch_run):
    samples = pl.read_parquet(multiarch_run / "samples.parquet")
    rows = pl.read_parquet(multiarch_run / "results.parquet").join(samples, on="variant_key")
    native = rows.filter(~pl.col("emulated"))["peak_rss_kib"].max()
    # QEMU's own memory is in the foreign figure (its peak RSS is QEMU's with the program's).
    assert rows.filter(pl.col("emulated"))["peak_rss_kib"].min() > native
    # ... so the row names it the emulator's, and never shows it as the program's memory.
    summary = pl.read_parquet(multiarch_run / "results.parquet")
    foreign = summary.filter(pl.col("emulated"))
    assert foreign["memory_scope"].unique().to_list() == ["emulator+program"]
    assert foreign["peak_rss_kib_median"].is_null().all() and foreign["emulator_peak_rss_kib_median"].min() > native
    assert summary.filter(~pl.col("emulated"))["peak_rss_kib_median"].is_not_null().all()


def test_a_resumed_sweep_ends_with_a_complete_index(tmp_path, docker_engine):
    spec = {"workloads": ["hello"], "profiles": ["static"], "targets": list(PLATFORMS[:2]), "bases": ["scratch"],
            "repeats": 1, "warmup": 0}
    run_dir = sweep(spec, data_dir=tmp_path, run_id="r", progress=False)
    first = pl.read_parquet(run_dir / "results.parquet")
    # As a kill before arm64's image was written leaves the run: no arm64 row or sample in the
    # journal, and the layout's index over amd64 alone.
    journal = run_dir / "journal.jsonl"
    journal.write_text("".join(line for line in journal.open() if "linux/arm64" not in line))
    layout = oci.Layout(run_dir / oci.LAYOUT_DIR)
    ref = first["oci_layout"][0].split(":")[1]
    index = json.loads((layout.path / "index.json").read_text())
    index["manifests"] = [m for m in index["manifests"] if not m["annotations"][oci.REF_NAME].endswith("arm64")]
    (layout.path / "index.json").write_text(json.dumps(index))
    oci.update_index(layout, ref)
    assert oci.index_of(layout, ref)[1] == ["linux/amd64"]
    sweep(spec, data_dir=tmp_path, run_id="r", progress=False)
    again = pl.read_parquet(run_dir / "results.parquet")
    assert again["status"].to_list() == ["ok", "ok"]
    assert oci.index_of(layout, ref) == (first["oci_index_digest"][0], list(PLATFORMS[:2]))
    resumed = again.filter(pl.col("target") == "linux/arm64").row(0, named=True)
    assert (resumed["oci_index_digest"], resumed["oci_index_platforms"]) == oci.index_of(layout, ref)
    # Nothing the layout no longer reaches is left in it (the amd64-only index is gone).
    assert {p.name for p in (layout.path / "blobs/sha256").iterdir()} == \
        {d.split(":")[1] for d in _reachable(layout)}


def _reachable(layout: oci.Layout) -> set[str]:
    """Every blob index.json reaches, through indexes and manifests."""
    todo, seen = list(layout.refs().values()), set()
    while todo:
        descriptor = todo.pop()
        seen.add(descriptor["digest"])
        if descriptor["mediaType"] in (oci.INDEX, oci.MANIFEST):
            blob = json.loads(layout.blob(descriptor["digest"]))
            todo += blob.get("manifests", []) + blob.get("layers", []) + ([blob["config"]] if "config" in blob else [])
    return seen
