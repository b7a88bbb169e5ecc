"""workload.toml values are type-checked, and unknown keys get a did-you-mean."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from slimlab import toolchains, workloads
from slimlab.build import build
from slimlab.errors import SpecError
from slimlab.measure import CheckFailure, check_and_sample, runner_for
from slimlab.model import BUILTIN_PROFILES
from slimlab.model import TARGETS

AMD64 = TARGETS["linux/amd64"]
PROGRAM = '''package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Println(os.Getenv("GREETING"), len(os.Args)-1)
	os.Exit(3)
}
'''


def user_workload(directory: Path, manifest: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "go.mod").write_text("module example.com/exit3\n\ngo 1.21\n")
    (directory / "main.go").write_text(PROGRAM)
    (directory / "workload.toml").write_text(manifest)
    return directory


@pytest.mark.parametrize("manifest, message", [
    ('args = "-v"', 'args must be a list of strings, e.g. ["-addr", "{addr}"], not \'-v\''),
    ('args = ["-n", 3]', "args must be a list of strings"),
    ("env = { GREETING = 1 }", 'env must be a table of strings, e.g. { GOMAXPROCS = "1" }, not {\'GREETING\': 1}'),
    ('env = ["GREETING=hi"]', "env must be a table of strings"),
    ('expect_exit = "3"', "expect_exit must be an integer from 0 to 255, not '3'"),
    ("expect_exit = 256", "expect_exit must be an integer from 0 to 255, not 256"),
    ("expect_exit = -1", "expect_exit must be an integer from 0 to 255"),
    ("expect_exit = true", "expect_exit must be an integer from 0 to 255, not True"),
    ("expect_exit = 3.0", "expect_exit must be an integer from 0 to 255"),
    ("expect_stdout = 3", "expect_stdout must be a string"),
    ('kind = "server"\nexpect_body = ["ok"]', "expect_body must be a string"),
    ('kind = "server"\nhealth_path = "healthz"', 'health_path must be a string starting with "/", e.g. "/healthz"'),
    ('kind = "sever"', "kind must be one of 'cli', 'server', not 'sever' (did you mean 'server'?)"),
    ("expect_exti = 3", "unknown keys 'expect_exti' (did you mean 'expect_exit'?); valid keys: kind, args, env"),
    ("argz = []\nfoo = 1", "unknown keys 'argz' (did you mean 'args'?), 'foo'; valid keys:"),
    ("expect_exit = ", "not valid TOML"),
])
def test_bad_values_are_spec_errors_naming_what_is_valid(tmp_path, manifest, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        workloads.resolve(str(user_workload(tmp_path / "w", manifest + "\n")))


def test_checked_fields_drive_a_real_run(tmp_path):
    """expect_exit, args, env and expect_stdout as typed in workload.toml decide the real check."""
    good = workloads.resolve(str(user_workload(
        tmp_path / "good", 'args = ["a", "b"]\nenv = { GREETING = "hi" }\nexpect_exit = 3\n'
                           'expect_stdout = "hi 2\\n"\n')))
    assert good.expect_exit == 3 and good.args == ("a", "b") and good.run_env() == {"GREETING": "hi"}
    adapter = toolchains.get("go")
    built = build(good, adapter, adapter.detect(), BUILTIN_PROFILES["default"], AMD64, tmp_path / "cache", 600)
    assert built.ok, built.reason
    assert check_and_sample(good, runner_for(AMD64), built.binary, 20).exit_code == 3
    wrong = workloads.resolve(str(user_workload(tmp_path / "wrong", "expect_exit = 0\n")))
    with pytest.raises(CheckFailure):
        check_and_sample(wrong, runner_for(AMD64), built.binary, 20)


def test_every_builtin_manifest_passes_the_checks():
    for name in workloads.builtin_names():
        assert workloads.resolve(name).builtin
