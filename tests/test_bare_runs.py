"""Bare runs are contained (issue 18, case 6): a cgroup with the spec's limits, or the launcher's tracking.

Real Go programs: one that starts ``sleep`` in its own session (``Setsid``) and exits, one that
allocates past a small ``memory_limit_mb``, and the built-in hello. The sweep runs in its own
process so that its peak memory, with every descendant it waited for, can be read (wait4).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import slimlab
from slimlab.measure import CheckFailure, LauncherRunner, Limits, run_starts, runner_for
from slimlab.measure.contain import Containment, escape_reason, open_containment
from slimlab.model import TARGETS, SweepSpec
from slimlab.workloads import resolve

SLEEP_MARK = "29.9171"  # sleep's argument: names this test's sleeps in /proc, whoever else runs sleep
HOG_MIB = 768  # what the hog touches; its memory limit is far below, the sweep's own peak too
LIMIT_MB = 64

ESCAPER = f"""\
package main

import (
\t"fmt"
\t"os"
\t"os/exec"
\t"syscall"
)

func main() {{
\tcmd := exec.Command("sleep", "{SLEEP_MARK}")
\tcmd.SysProcAttr = &syscall.SysProcAttr{{Setsid: true}}
\tif err := cmd.Start(); err != nil {{
\t\tfmt.Println(err)
\t\tos.Exit(1)
\t}}
\tfmt.Println("started")
}}
"""

HOG = f"""\
package main

import "fmt"

func main() {{
\tvar chunks [][]byte
\tfor i := 0; i < {HOG_MIB}; i++ {{
\t\tchunk := make([]byte, 1<<20)
\t\tfor j := 0; j < len(chunk); j += 4096 {{
\t\t\tchunk[j] = 1
\t\t}}
\t\tchunks = append(chunks, chunk)
\t}}
\tfmt.Println(len(chunks))
}}
"""


def go_workload(root: Path, name: str, source: str, stdout: str) -> Path:
    path = root / name
    path.mkdir()
    (path / "go.mod").write_text(f"module slimlab.example/{name}\n\ngo 1.21\n")
    (path / "main.go").write_text(source)
    (path / "workload.toml").write_text(f'kind = "cli"\nexpect_stdout = {json.dumps(stdout)}\n')
    return path


def marked_sleeps() -> list[int]:
    """This test's sleep processes still alive on the machine."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if SLEEP_MARK.encode() in argv:
                found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def contained_run(tmp_path_factory):
    """One real sweep (its own process) of hello, the escaper and the hog, with a 64 MB limit; its rows,
    manifest, and the peak RSS of the sweep and all it waited for (wait4)."""
    root = tmp_path_factory.mktemp("bare-workloads")
    escaper = go_workload(root, "escaper", ESCAPER, "started\n")
    hog = go_workload(root, "hog", HOG, f"{HOG_MIB}\n")
    spec = {"workloads": ["hello", str(escaper), str(hog)], "repeats": 3, "warmup": 0,
            "memory_limit_mb": LIMIT_MB}
    data = tmp_path_factory.mktemp("bare-data")
    script = textwrap.dedent(f"""
        import slimlab
        print(slimlab.sweep({spec!r}, data_dir={str(data)!r}, run_id="bare", progress=False))
    """)
    said = root / "out.txt", root / "err.txt"  # files, not pipes: wait4 reaps it before they are read
    with said[0].open("w") as out, said[1].open("w") as err:
        child = subprocess.Popen([sys.executable, "-c", script], stdout=out, stderr=err, env=os.environ.copy())
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    out, err = said[0].read_text(), said[1].read_text()
    assert os.waitstatus_to_exitcode(status) == 0, err[-3000:]
    run = Path(out.strip().splitlines()[-1])
    rows = {Path(r["workload"]).name: r for r in slimlab.load(run).iter_rows(named=True)}
    manifest = json.loads((run / "manifest.json").read_text())
    return rows, manifest, usage.ru_maxrss


def test_a_program_that_leaves_a_setsid_child_is_broken_and_the_child_is_killed(contained_run):
    rows, manifest, _ = contained_run
    row = rows["escaper"]
    assert row["status"] == "broken", row
    assert row["escaped_processes"] >= 1
    assert row["reason"] == escape_reason(row["escaped_processes"], "sleep")
    assert not marked_sleeps(), "the escaped sleep is still running"
    containment = manifest["sessions"][-1]["containment"]
    if os.geteuid() == 0:  # root on a cgroup host (v1 here): a real cgroup with the spec's limits
        assert containment["kind"] in ("cgroup-v1", "cgroup-v2"), containment
        assert containment["memory_limit_mb"] == LIMIT_MB and containment["pids_limit"] == 512


def test_a_program_past_the_memory_limit_is_a_row_naming_it_and_the_sweep_stays_small(contained_run):
    rows, manifest, sweep_peak_kib = contained_run
    row = rows["hog"]
    assert row["status"] == "broken", row
    assert "memory limit" in row["reason"] and f"memory_limit_mb = {LIMIT_MB}" in row["reason"], row["reason"]
    # wait4's figure is the largest of the sweep and every process it (or its launcher) reaped:
    # the hog would have been HOG_MIB, stopped at the limit it is far below.
    assert sweep_peak_kib < HOG_MIB * 1024 * 0.6, sweep_peak_kib


def test_hello_leaves_nothing_and_is_ok(contained_run):
    rows, _, _ = contained_run
    assert rows["hello"]["status"] == "ok", rows["hello"]["reason"]
    assert rows["hello"]["escaped_processes"] == 0
    assert rows["hello"]["startup_n"] == 3


def test_without_a_cgroup_the_subreaper_still_finds_a_setsid_child(tmp_path):
    """The fallback where no cgroup can be made (not root): the launcher, a child subreaper, gets
    the orphaned ``setsid`` child back and kills it; every start counts its own."""
    escaper = go_workload(tmp_path, "escaper", ESCAPER, "started\n")
    subprocess.run(["go", "build", "-o", "escaper", "."], cwd=escaper, check=True, capture_output=True,
                   timeout=300, env={**os.environ, "CGO_ENABLED": "0"})
    fallback = Containment("subreaper", Limits(), reason="no cgroup for this test")
    exits = run_starts([str(escaper / "escaper")], runs=2, timeout_s=10, stdout=None, stderr=None,
                       containment=fallback)
    assert [e.escaped for e in exits] == [1, 1]
    assert exits[0].escaped_comm == "sleep"
    assert not marked_sleeps()


def test_under_qemu_user_mode_the_escaped_child_is_found_too(tmp_path):
    """A foreign program under QEMU user mode is contained as a native one (QEMU in its cgroup)."""
    escaper = go_workload(tmp_path, "escaper", ESCAPER, "started\n")
    subprocess.run(["go", "build", "-o", "escaper", "."], cwd=escaper, check=True, capture_output=True,
                   timeout=300, env={**os.environ, "CGO_ENABLED": "0", "GOARCH": "arm64"})
    runner = runner_for(TARGETS["linux/arm64"], runner="qemu-user", limits=Limits(256, 64))
    assert isinstance(runner, LauncherRunner), runner
    with pytest.raises(CheckFailure) as failed:
        runner.check(resolve(str(escaper)), escaper / "escaper", 10)
    assert failed.value.status == "broken" and failed.value.escaped == 1
    assert failed.value.reason == escape_reason(1, "sleep")
    assert not marked_sleeps()


@pytest.mark.unit
def test_escape_and_limit_wording():
    assert escape_reason(1, "sleep") == "left 1 process running after exit, e.g. sleep"
    assert escape_reason(3, None) == "left 3 processes running after exit"
    assert Limits.of(type("S", (), {"memory_limit_mb": 64, "pids_limit": 32})()) == Limits(64, 32)
    box = Containment("subreaper", Limits(64, 32), reason="no cgroup")
    assert box.launcher_options() == ("--contain",)
    assert box.limit_reasons() == [] and box.describe()["memory_limit_mb"] is None
    assert LauncherRunner("native", (), False).limits == Limits()
    defaults = {f.name: f.default for f in dataclasses.fields(SweepSpec)}
    assert Limits() == Limits(defaults["memory_limit_mb"], defaults["pids_limit"])  # the spec's defaults


KILLS_ITS_LAUNCHER = f"""#!/bin/sh
setsid sleep {SLEEP_MARK} &
sleep {SLEEP_MARK} &
kill -9 $PPID
wait
"""


def test_what_a_killed_launcher_left_in_its_cgroup_is_counted(tmp_path):
    """A program that kills its launcher before the launcher could sweep up: the batch's cgroup
    still holds its two sleeps, which closing the cgroup kills and the failure counts."""
    box = open_containment(Limits())
    box.close()
    if box.kind == "subreaper":
        pytest.skip(f"no cgroup can be made here ({box.reason}): nothing outlives the launcher to count")
    workload = tmp_path / "killer"
    workload.mkdir()
    (workload / "workload.toml").write_text('kind = "cli"\nexpect_stdout = ""\n')
    (workload / "main.go").write_text("package main\n\nfunc main() {}\n")  # a workload's shape; not run
    program = workload / "killer.sh"
    program.write_text(KILLS_ITS_LAUNCHER)
    program.chmod(0o755)
    runner = LauncherRunner("native", (), False, limits=Limits(256, 64))
    with pytest.raises(CheckFailure) as failed:
        runner.check(resolve(str(workload)), program, 10)
    # the two sleeps, and the shell when its death signal had not yet landed
    assert failed.value.status == "broken" and failed.value.escaped in (2, 3), failed.value.reason
    assert escape_reason(failed.value.escaped, None) in failed.value.reason
    assert not marked_sleeps()


def test_a_sweep_without_a_cgroup_warns_that_bare_runs_are_not_limited(tmp_path):
    """Where no cgroup can be made (here: none mounted, in a mount namespace of the sweep's own)
    the sweep says on stderr that memory_limit_mb and pids_limit do not apply, and what would."""
    if os.geteuid() != 0:
        pytest.skip("unmounting the cgroup file systems in a namespace of its own needs root")
    spec = {"workloads": ["hello"], "profiles": ["static"], "repeats": 1, "warmup": 0}
    script = (f"import slimlab; print(slimlab.sweep({spec!r}, data_dir={str(tmp_path)!r}, run_id='bare', "
              "progress=False))")
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           'umount -R /sys/fs/cgroup && exec "$0" -c "$1"', sys.executable, script],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = json.loads((tmp_path / "runs" / "bare" / "manifest.json").read_text())
    assert manifest["sessions"][-1]["containment"]["kind"] == "subreaper"
    assert "Warning: bare runs have no memory or pids limit here" in done.stderr, done.stderr
    assert "no cgroup v1 memory controller mounted" in done.stderr
    assert "systemd-run --scope -p Delegate=yes slimlab sweep" in done.stderr
    assert slimlab.load(tmp_path / "runs" / "bare")["status"].to_list() == ["ok"]


def test_v2_moves_only_its_own_processes_and_only_in_a_delegated_cgroup(tmp_path):
    """The parts of the delegated-v2 path that can run on this v1 host: the sweep's own process
    tree is what /proc says, and a cgroup without systemd's delegation mark is never rearranged."""
    from slimlab.measure import contain

    child = subprocess.Popen(["sleep", SLEEP_MARK])
    try:
        tree = contain._own_tree()
        assert {os.getpid(), child.pid} <= tree and 1 not in tree
    finally:
        child.kill()
        child.wait()
    (tmp_path / "cgroup.procs").write_text(f"{os.getpid()}\n")
    with pytest.raises(OSError, match="not a delegated cgroup"):
        contain._leave_for_leaf(tmp_path)
    assert not list(tmp_path.glob("slimlab-*"))  # nothing made, nothing moved


FORKER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) { /* N children that wait to be killed, then "ready" */
    for (int n = atoi(argv[1]); n > 0; n--) {
        pid_t pid = fork();
        if (pid == 0) { pause(); _exit(0); }
        if (pid < 0) { perror("fork"); return 1; }
    }
    puts("ready");
    fflush(stdout);
    pause();
    return 0;
}
"""
CROWD = 4200  # more processes than the launcher's old scan of /proc read (4,096)


def test_on_a_crowded_host_the_subreaper_still_finds_a_setsid_child(tmp_path):
    """With more than 4,096 other processes on the host, the newest (highest pid), the escaped
    child among them, is still found without a cgroup: the scan of /proc has no cap."""
    escaper = go_workload(tmp_path, "escaper", ESCAPER, "started\n")
    subprocess.run(["go", "build", "-o", "escaper", "."], cwd=escaper, check=True, capture_output=True,
                   timeout=300, env={**os.environ, "CGO_ENABLED": "0"})
    (tmp_path / "forker.c").write_text(FORKER)
    subprocess.run(["cc", "-O2", "-o", str(tmp_path / "forker"), str(tmp_path / "forker.c")], check=True,
                   timeout=120)
    # The escaped child must come after the crowd in /proc (pids ascending): pids must not wrap
    # around pid_max meanwhile, so they start low when they would.
    last, highest = Path("/proc/sys/kernel/ns_last_pid"), int(Path("/proc/sys/kernel/pid_max").read_text())
    if int(last.read_text()) + CROWD + 1000 > highest:
        with contextlib.suppress(OSError):
            last.write_text("300")
    crowd = subprocess.Popen([str(tmp_path / "forker"), str(CROWD)], stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        assert crowd.stdout.readline() == "ready\n"
        newest = int(last.read_text())  # the escaper and its child come after this pid
        below = sum(1 for p in Path("/proc").iterdir() if p.name.isdigit() and int(p.name) <= newest)
        assert below > 4096, below
        fallback = Containment("subreaper", Limits(), reason="no cgroup for this test")
        exits = run_starts([str(escaper / "escaper")], runs=1, timeout_s=10, stdout=None, stderr=None,
                           containment=fallback)
        assert exits[0].escaped == 1 and exits[0].escaped_comm == "sleep", exits[0]
        assert not marked_sleeps()
    finally:
        os.killpg(crowd.pid, signal.SIGKILL)
        crowd.wait()
