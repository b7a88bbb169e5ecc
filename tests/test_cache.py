"""The one content-addressed cache (slimlab.cache), and the three stages that use it."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from slimlab import cache, postlink, toolchains, workloads
from slimlab.build import build
from slimlab.model import BUILTIN_PROFILES
from slimlab.model import TARGETS


def staged(path: Path, name: str, data: bytes, meta: dict) -> Path:
    with cache.store(path) as staging:
        (staging.path / name).write_bytes(data)
        return staging.publish(meta, name)


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*")]


def test_an_entry_appears_whole_and_the_loser_of_a_race_keeps_the_winner(tmp_path):
    path = cache.entry(tmp_path, "things", "ab" * 32)
    assert path == tmp_path / "things" / "ab" / ("ab" * 32)
    assert cache.lookup(path, "x") is None
    assert staged(path, "x", b"first", {"n": 1}) == path
    assert staged(path, "x", b"second", {"n": 2}) == path  # same key: the first writer's copy stays
    assert (path / "x").read_bytes() == b"first" and cache.lookup(path, "x") == {"n": 1}
    assert not leftovers(tmp_path)


def test_a_failure_publishes_nothing(tmp_path):
    path = cache.entry(tmp_path, "things", "cd" * 32)
    with pytest.raises(RuntimeError), cache.store(path) as staging:
        (staging.path / "x").write_bytes(b"half")
        raise RuntimeError("the tool crashed")
    with cache.store(path) as staging:  # a tool that fails without raising: not published either
        (staging.path / "x").write_bytes(b"half")
    assert not path.exists() and not leftovers(tmp_path)


def test_a_damaged_entry_is_replaced_not_trusted(tmp_path):
    path = cache.entry(tmp_path, "things", "ef" * 32)
    staged(path, "x", b"old", {"n": 1})
    (path / "x").unlink()  # e.g. a user cleaned up by hand
    assert cache.lookup(path, "x") is None
    staged(path, "x", b"new", {"n": 2})
    assert (path / "x").read_bytes() == b"new" and cache.lookup(path, "x") == {"n": 2}
    assert not leftovers(tmp_path)


def test_concurrent_real_builds_of_one_variant_share_one_entry(tmp_path):
    adapter = toolchains.get("go")
    info = adapter.detect()
    hello = workloads.resolve("hello")

    def one(_):
        return build(hello, adapter, info, BUILTIN_PROFILES["default"], TARGETS["linux/amd64"], tmp_path, 600)

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(one, range(2)))
    assert all(o.ok for o in outcomes), [o.reason for o in outcomes]
    assert outcomes[0].binary == outcomes[1].binary
    assert len(list((tmp_path / "artifacts").glob("*/*"))) == 1
    assert not leftovers(tmp_path)
    assert one(0).cached


def test_postlink_outputs_live_in_the_same_kind_of_entry(tmp_path):
    adapter = toolchains.get("go")
    hello = workloads.resolve("hello")
    built = build(hello, adapter, adapter.detect(), BUILTIN_PROFILES["default"], TARGETS["linux/amd64"],
                  tmp_path, 600)
    out = postlink.apply(postlink.get_chain("strip"), built.binary, tmp_path, cache_dir=tmp_path)
    assert out.ok and not out.cached
    entry = out.binary.parent
    assert entry.parent.parent == tmp_path / "postlink"
    assert cache.lookup(entry, out.binary.name)["chain"] == "strip"
    digest = hashlib.sha256(out.binary.read_bytes()).hexdigest()
    again = postlink.apply(postlink.get_chain("strip"), built.binary, tmp_path, cache_dir=tmp_path)
    assert again.cached and hashlib.sha256(again.binary.read_bytes()).hexdigest() == digest
    assert not leftovers(tmp_path)
