"""Images on a real engine: sizes the engine and the docker CLI agree on, checks in containers."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import polars as pl
import pytest
from conftest import require

import slimlab
from artifacts import go_program
from slimlab import engine, image


def docker_cli(url: str, *args: str) -> str:
    done = subprocess.run(["docker", *args], env={**os.environ, "DOCKER_HOST": url}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def image_run(docker_engine, tmp_path_factory):
    api = engine.client()
    ours = {"label": "{}={}".format(*next(iter(image.owner_label().items())))}  # not other sweeps' on this engine
    before = {c.id for c in api.containers.list(all=True, filters=ours)}
    spec = {"workloads": ["hello", "cobra-cli"], "profiles": ["default", "static"],
            "bases": ["none", "scratch", "static"], "repeats": 2, "warmup": 0, "probe": True}
    run = slimlab.sweep(spec, data_dir=tmp_path_factory.mktemp("images"), run_id="i", progress=False)
    after = {c.id for c in api.containers.list(all=True, filters=ours)}
    api.close()
    return slimlab.load(run), before, after, run


def test_image_sizes_agree_with_docker_image_inspect_and_history(image_run, docker_engine):
    df, _, _, _ = image_run
    images = df.filter(pl.col("base") != "none", pl.col("image_tag").is_not_null())
    assert images.height >= 6
    for row in images.iter_rows(named=True):
        assert int(docker_cli(docker_engine.url, "image", "inspect", "-f", "{{.Size}}", row["image_tag"])) \
            == row["image_size_bytes"]
        history = docker_cli(docker_engine.url, "history", "--no-trunc", "--human=false", "--format", "{{.Size}}",
                             row["image_tag"]).splitlines()
        assert [int(s) for s in reversed(history)] == row["image_layer_bytes"]
        assert 0 < row["image_compressed_bytes"] < row["image_size_bytes"]


def test_scratch_holds_the_binary_alone_and_static_adds_its_base(image_run):
    df, _, _, _ = image_run
    ok = df.filter(pl.col("workload") == "hello", pl.col("profile") == "static")
    by_base = {r["base"]: r for r in ok.iter_rows(named=True)}
    assert by_base["scratch"]["status"] == "ok" and by_base["static"]["status"] == "ok"
    assert by_base["scratch"]["image_size_bytes"] == by_base["none"]["size_bytes"]
    assert by_base["static"]["image_size_bytes"] > by_base["scratch"]["image_size_bytes"]
    packages = " ".join(by_base["static"]["base_packages"])
    assert "ca-certificates=" in packages and "tzdata=" in packages
    for base in ("scratch", "static"):
        assert by_base[base]["container_ok"] and by_base[base]["container_hardened_ok"], by_base[base]


def test_a_dynamic_binary_on_scratch_is_broken_with_the_reason(image_run):
    df, _, _, _ = image_run
    (row,) = df.filter(pl.col("workload") == "cobra-cli", pl.col("profile") == "default",
                       pl.col("base") == "scratch").iter_rows(named=True)
    assert row["is_static"] is False  # cgo on: it needs libc's loader, which scratch has not
    assert row["status"] == "broken", row
    # The kernel finds no ELF interpreter (ld-linux) in the image: exec fails with ENOENT.
    assert row["reason"].startswith("container: ") and "no such file or directory" in row["reason"], row["reason"]
    (static,) = df.filter(pl.col("workload") == "cobra-cli", pl.col("profile") == "static",
                          pl.col("base") == "scratch").iter_rows(named=True)
    assert static["status"] == "ok"  # the same program, built static, runs there


def test_no_container_is_left_behind(image_run):
    _, before, after, _ = image_run
    assert after == before


def test_a_program_that_writes_outside_tmp_is_broken_in_a_container_and_says_why(docker_engine, tmp_path):
    """Every container is hardened: the root is read-only and /tmp a tmpfs, so writing /tmp works and
    writing home does not."""
    src = go_program(tmp_path, "writer", """\
        package main

        import (
            "fmt"
            "os"
        )

        func main() {
            home, _ := os.UserHomeDir() // in the image: /home/nonroot, from its /etc/passwd
            if os.Getuid() != 65532 { // the sweep's bare check: leave this machine's home alone
                fmt.Println("written")
                return
            }
            for _, path := range []string{"/tmp/scratch", home + "/state"} {
                if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
                    fmt.Fprintln(os.Stderr, err)
                    os.Exit(1)
                }
            }
            fmt.Println("written")
        }
        """, 'kind = "cli"\nexpect_stdout = "written\\n"\n')
    run = slimlab.sweep({"workloads": [src], "profiles": ["static"], "bases": ["static"], "repeats": 1,
                         "warmup": 0}, data_dir=tmp_path / "d", progress=False)
    (row,) = slimlab.load(run).iter_rows(named=True)
    assert row["status"] == "broken" and row["container_ok"] is False and row["container_hardened_ok"] is False
    assert "/home/nonroot/state" in row["container_reason"] and "read-only file system" in row["container_reason"]


def test_without_an_engine_image_rows_are_unsupported_and_say_how_to_start_one(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    monkeypatch.setattr(engine, "SOCKET", tmp_path / "nor-this.sock")
    monkeypatch.setattr(engine, "DEFAULT_SOCKET", tmp_path / "nor-that.sock")
    run = slimlab.sweep({"workloads": ["hello"], "bases": ["none", "scratch"], "repeats": 1, "warmup": 0},
                        data_dir=tmp_path / "d", progress=False)
    rows = {r["base"]: r for r in slimlab.load(run).iter_rows(named=True)}
    assert rows["none"]["status"] == "ok"
    assert rows["scratch"]["status"] == "unsupported" and "slimlab engine start" in rows["scratch"]["reason"]


def test_a_cli_image_is_timed_with_docker_run_and_its_program_memory_read_inside(image_run):
    df, _, _, _ = image_run
    rows = {r["base"]: r for r in df.filter(pl.col("workload") == "hello", pl.col("profile") == "static")
            .iter_rows(named=True)}
    bare, boxed = rows["none"], rows["scratch"]
    assert boxed["runner"] == "container" and boxed["startup_n"] == 2
    # docker run adds the runtime's setup: namespaces, rootfs, cgroup (hundreds of ms on vfs).
    assert boxed["startup_ms_median"] > 5 * bare["startup_ms_median"]
    # The program's own peak RSS, read by the same launcher inside the container: the same
    # figure as bare, not the container's (which would add the runtime and page cache).
    assert 0.8 <= boxed["peak_rss_kib_median"] / bare["peak_rss_kib_median"] <= 1.25
    assert boxed["crosscheck_n"] is None  # hyperfine times the bare binary: no like-for-like figure


def test_the_report_draws_the_images_in_a_browser(image_run, tmp_path):
    import browser

    from slimlab.report import figures

    df, _, _, _ = image_run
    html = tmp_path / "images.html"
    slimlab.report.write_report(df, html, "images")
    n_figures = len(figures.report_figures(df))
    dom = browser.dump_dom(html)
    assert browser.count_rendered_plots(dom) == n_figures
    assert "Image size per variant and base" in dom and "No images in these runs" not in dom
    shot = browser.screenshot(html, tmp_path / "images.png")
    assert shot.stat().st_size > 10_000


def test_the_base_capability_matrix_is_measured_in_containers(image_run):
    _, _, _, run = image_run
    matrix = slimlab.load_capabilities(run)
    cells = {(r["toolchain"], r["probe"]): r for r in matrix.iter_rows(named=True)
             if r["toolchain"].startswith("base ")}
    assert set(cells) == {(f"base {b}", p) for b in ("scratch", "static")
                          for p in ("system-roots", "tzdata", "tzdata-embedded")}
    # scratch has neither a CA bundle nor zoneinfo; time/tzdata compiled in needs none.
    assert not cells["base scratch", "system-roots"]["passed"]
    assert not cells["base scratch", "tzdata"]["passed"]
    assert "unknown time zone Europe/Berlin" in cells["base scratch", "tzdata"]["error"]
    assert cells["base scratch", "tzdata-embedded"]["passed"]
    assert all(cells["base static", p]["passed"] for p in ("system-roots", "tzdata", "tzdata-embedded"))
    assert "ca-certificates=" in cells["base static", "tzdata"]["toolchain_version"]


def test_killed_during_image_work_and_resumed_no_variant_twice_no_container_left(docker_engine, tmp_path):
    import signal
    import sys
    import time

    spec = tmp_path / "spec.toml"
    spec.write_text('workloads = ["hello"]\nprofiles = ["static", "trimmed"]\nbases = ["none", "scratch"]\n'
                    "repeats = 6\nwarmup = 0\n")
    data, run_dir = tmp_path / "data", tmp_path / "data" / "runs" / "k"
    argv = [sys.executable, "-m", "slimlab.cli", "sweep", str(spec), "--data", str(data), "--run-id", "k", "-q"]
    api = engine.client()
    sweep = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    labelled = {"label": f"{image.LABEL}={socket.gethostname()}:{sweep.pid}"}  # the killed sweep's containers
    deadline = time.monotonic() + 300
    while not api.containers.list(all=True, filters=labelled):  # kill it while a container of its runs
        assert sweep.poll() is None, "the sweep ended before it could be killed: " + sweep.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    sweep.send_signal(signal.SIGKILL)
    sweep.wait()

    subprocess.run(argv, check=True, capture_output=True, timeout=600)
    df = slimlab.load(run_dir)
    assert df.height == 4 and df["variant_key"].n_unique() == 4
    assert df["status"].to_list() == ["ok"] * 4, df.select("variant_key", "reason")
    samples = slimlab.load_samples(run_dir)
    per_variant = samples.group_by("variant_key").agg(pl.len(), pl.col("sample_index").n_unique().alias("unique"))
    assert per_variant["len"].to_list() == [6] * 4 and per_variant["unique"].to_list() == [6] * 4
    # What the killed sweep left running or stopped was removed by the resumed one.
    assert api.containers.list(all=True, filters=labelled) == []
    assert api.containers.list(all=True, filters={"label": f"{image.LABEL}={socket.gethostname()}:{os.getpid()}"}) == []
    api.close()


def test_leftovers_are_removed_only_when_their_sweep_is_gone(docker_engine, tmp_path):
    """A second sweep on the same engine must not remove the containers of one still running."""
    api = engine.client()
    from slimlab import bases
    from slimlab.model.target import TARGETS

    scratch = image.build_image(api, bases.base_layer("scratch", TARGETS["linux/amd64"], tmp_path),
                                Path("/bin/true"), "true")  # never started: any file will do
    assert scratch.ok, scratch.reason
    gone = subprocess.Popen(["true"])
    gone.wait()
    owners = {"alive": f"{socket.gethostname()}:{os.getpid()}", "gone": f"{socket.gethostname()}:{gone.pid}"}
    made = {name: api.containers.create(scratch.tag, labels={image.LABEL: value}) for name, value in owners.items()}
    try:
        image.remove_leftovers(api)
        left = {c.id for c in api.containers.list(all=True, filters={"label": image.LABEL})}
        assert made["alive"].id in left and made["gone"].id not in left
    finally:
        for container in made.values():
            image.discard(container)
        api.close()


def test_a_server_image_is_checked_and_timed_in_containers_on_its_own_network(docker_engine, tmp_path):
    """A server in a container: polled on its port published on loopback, stopped with SIGTERM passed
    on by the launcher (PID 1), its own memory the same kind as bare, and the container cgroup's peak."""
    run = slimlab.sweep({"workloads": ["httpd"], "profiles": ["static"], "bases": ["none", "scratch"],
                         "repeats": 3, "warmup": 0}, data_dir=tmp_path, progress=False)
    rows = {r["base"]: r for r in slimlab.load(run).iter_rows(named=True)}
    bare, boxed = rows["none"], rows["scratch"]
    assert boxed["status"] == "ok" and boxed["runner"] == "container", boxed["reason"]
    assert boxed["container_ok"] and boxed["container_hardened_ok"], boxed["container_reason"]
    assert boxed["startup_n"] == 3 and boxed["startup_ms_median"] > bare["startup_ms_median"]
    # VmRSS at the first answer and the peak, read from the host's /proc as bare: same figures.
    assert 0.8 <= boxed["ready_rss_kib_median"] / bare["ready_rss_kib_median"] <= 1.25
    assert 0.8 <= boxed["peak_rss_kib_median"] / bare["peak_rss_kib_median"] <= 1.25
    assert boxed["cgroup_peak_kib_median"] > 0 and bare["cgroup_peak_kib_median"] is None
    samples = slimlab.load_samples(run).filter(pl.col("variant_key") == boxed["variant_key"])
    # Each stop was a clean exit 0 on SIGTERM: the launcher passed the signal on.
    assert samples["exit_code"].to_list() == [0, 0, 0]


def test_a_container_that_hangs_is_killed_at_the_timeout_and_removed(docker_engine, tmp_path):
    """A program that works bare but hangs in a container (it runs there as user 65532): a timeout row,
    and no container of the sweep left in the engine."""
    src = go_program(tmp_path, "hangs-boxed", """\
        package main

        import (
            "fmt"
            "os"
            "time"
        )

        func main() {
            if os.Getuid() == 65532 { // the image's user
                time.Sleep(time.Hour)
            }
            fmt.Println("done")
        }
        """, 'kind = "cli"\nexpect_stdout = "done\\n"\n')
    run = slimlab.sweep({"workloads": [src], "profiles": ["static"], "bases": ["none", "scratch"],
                         "repeats": 1, "warmup": 0, "run_timeout_s": 3}, data_dir=tmp_path / "d", progress=False)
    rows = {r["base"]: r for r in slimlab.load(run).iter_rows(named=True)}
    assert rows["none"]["status"] == "ok"
    assert rows["scratch"]["status"] == "timeout" and "no exit within 3s" in rows["scratch"]["reason"]
    api = engine.client()
    ours = {"label": "{}={}".format(*next(iter(image.owner_label().items())))}  # this process's sweeps
    assert api.containers.list(all=True, filters=ours) == []
    api.close()


def test_each_row_names_the_sha256_of_the_binary_its_image_holds(image_run, docker_engine):
    """binary_sha256 is the file that ships: the one inside the image, read back from the engine."""
    import hashlib

    from slimlab import dockerfile

    df, _, _, _ = image_run
    api = engine.client()
    for row in df.filter(pl.col("status") == "ok", pl.col("base") != "none").iter_rows(named=True):
        inside = dockerfile.file_in_image(api, row["image_tag"], f"/app/{row['workload']}")
        assert hashlib.sha256(inside).hexdigest() == row["binary_sha256"], row["variant_key"]
    api.close()


@pytest.fixture(scope="module")
def bases_run(docker_engine, tmp_path_factory):
    """A cgo build (cobra-cli default), a static one (hello) and a gccgo one (libgo: dynamic) on
    static, libc and debian-slim; one start each."""
    require("gccgo", "apt-get install gccgo")
    spec = {"workloads": ["hello", "cobra-cli"], "toolchains": ["go", "gccgo"], "profiles": ["default"],
            "bases": ["none", "static", "libc", "debian-slim"],
            "excludes": [{"workload": "cobra-cli", "toolchain": "gccgo"}], "repeats": 1, "warmup": 0}
    run = slimlab.sweep(spec, data_dir=tmp_path_factory.mktemp("bases"), run_id="b", progress=False)
    return {(r["workload"], r["toolchain"], r["base"]): r for r in slimlab.load(run).iter_rows(named=True)}


def test_a_cgo_build_is_broken_on_static_and_ok_on_libc(bases_run):
    on_static, on_libc = bases_run["cobra-cli", "go", "static"], bases_run["cobra-cli", "go", "libc"]
    assert on_libc["is_static"] is False
    assert on_static["status"] == "broken" and "no such file or directory" in on_static["reason"]
    assert on_libc["status"] == "ok", on_libc
    assert on_libc["container_ok"] and on_libc["container_hardened_ok"]
    assert any(p.startswith("libc6=") for p in on_libc["base_packages"])
    # A cgo build needs libc alone: no layer of its own libraries.
    assert len(on_libc["image_layer_bytes"]) == len(on_static["image_layer_bytes"])


def test_a_gccgo_build_runs_on_libc_with_its_own_libraries_as_a_layer(bases_run, tmp_path):
    row = bases_run["hello", "gccgo", "libc"]
    assert row["status"] == "ok", row
    assert row["container_ok"] and row["container_hardened_ok"]
    # What ldd finds for a gccgo build on this host, less what libc6 ships, is the closure layer.
    source = tmp_path / "main.go"
    source.write_text('package main\nimport "fmt"\nfunc main() { fmt.Println("hi") }\n')
    subprocess.run(["gccgo", "-o", str(tmp_path / "hi"), str(source)], check=True)
    ldd = subprocess.run(["ldd", str(tmp_path / "hi")], check=True, capture_output=True, text=True).stdout
    found = dict(line.split()[0:3:2] for line in ldd.splitlines() if "=>" in line)
    libc6 = {Path(p).name for p in subprocess.run(["dpkg", "-L", "libc6"], check=True, capture_output=True,
                                                  text=True).stdout.split()}
    extra = {name: Path(path).resolve() for name, path in found.items() if name not in libc6}
    assert "libgo.so.21" in extra
    base, closure, binary = row["image_layer_bytes"][:3]
    assert closure == sum(p.stat().st_size for p in extra.values())
    owners = [subprocess.run(["dpkg-query", "-W", "-f=${Package}=${Version}", p], check=True, capture_output=True,
                             text=True).stdout for p in ("libgo21", "libgcc-s1")]
    assert set(owners) <= set(row["base_packages"])
    # debian-slim has libc but not libgo: the loader says so.
    slim = bases_run["hello", "gccgo", "debian-slim"]
    assert slim["status"] == "broken"
    assert "libgo.so.21: cannot open shared object file" in slim["reason"], slim["reason"]


def test_debian_slim_images_run_hardened_and_are_larger_than_static(bases_run):
    for workload in ("hello", "cobra-cli"):
        slim, static = bases_run[workload, "go", "debian-slim"], bases_run[workload, "go", "static"]
        assert slim["status"] == "ok", slim
        assert slim["container_ok"] and slim["container_hardened_ok"]  # nonroot (65532) exists there
        # The same binary layer on a bigger base: the images differ by the bases alone.
        assert slim["image_layer_bytes"][1:] == static["image_layer_bytes"][1:]
        assert slim["image_size_bytes"] - static["image_size_bytes"] \
            == slim["image_layer_bytes"][0] - static["image_layer_bytes"][0] > 50_000_000
        assert slim["image_compressed_bytes"] > static["image_compressed_bytes"]
        assert {"dpkg", "apt", "libc6"} <= {p.split("=")[0] for p in slim["base_packages"]}
