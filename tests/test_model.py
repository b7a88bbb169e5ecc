"""The declared model: axes once, a pure plan, schema columns that describe themselves."""

from __future__ import annotations

import pickle
import subprocess

import polars as pl
import pytest

import slimlab
from slimlab import SpecError, SweepSpec
from slimlab.model import AXES, COLUMNS, Variant, expand, plan
from slimlab.results import SAMPLES, migrate, split_v2_flags
from slimlab.results_schema import DESCRIPTIONS, RESULT_SCHEMA, SCHEMA_VERSION
from slimlab.rows import Row

pytestmark = pytest.mark.unit


def test_every_axis_is_a_spec_key_a_variant_field_and_a_described_column():
    spec = SweepSpec.from_dict({"workloads": ["hello"]})
    (variant,) = expand(spec)
    for axis in AXES:
        assert spec.values(axis.key) == getattr(spec, axis.key) == (axis.default or ("hello",))
        assert getattr(variant, axis.column) == spec.values(axis.key)[0]
        assert RESULT_SCHEMA[axis.column] == pl.String and axis.description in DESCRIPTIONS[axis.column]
    assert variant.key == "|".join(variant.values) and tuple(variant.axes()) == COLUMNS


def test_base_axis_is_declared_and_checked():
    spec = SweepSpec.from_dict({"workloads": ["hello"], "bases": ["none"]})
    assert spec.bases == ("none",) and expand(spec)[0].base == "none"
    with pytest.raises(SpecError, match=r"unknown base 'scrach' \(did you mean 'scratch'\?\); valid: none, scratch"):
        SweepSpec.from_dict({"workloads": ["hello"], "bases": ["scrach"]})
    with pytest.raises(SpecError, match=r"unknown spec key 'base' \(did you mean 'bases'\?\)"):
        SweepSpec.from_dict({"workloads": ["hello"], "base": ["none"]})


def test_plan_is_pure_data_that_pickles(monkeypatch):
    # Planning must run no tool: any process start is a failure here (a fault the test
    # causes on purpose, since "nothing ran" cannot be observed otherwise).
    def no_process(*args, **kwargs):
        raise AssertionError(f"planning started a process: {args[0]!r}")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    monkeypatch.setenv("PATH", "/nonexistent")
    spec = {"workloads": ["hello", "httpd"], "toolchains": ["go", "go1.99.0", "gccgo", "tinygo"],
            "profiles": ["default", "static"], "targets": ["linux/amd64", "linux/arm64"],
            "postlink": ["none", "strip+upx-9"], "excludes": [{"toolchain": "tinygo", "target": "linux/arm64"}]}
    the_plan = plan(spec)
    assert len(the_plan.variants) == 2 * 4 * 2 * 2 * 2 - 2 * 2 * 2
    assert pickle.loads(pickle.dumps(the_plan)) == the_plan
    assert slimlab.plan(spec) == the_plan


@pytest.mark.parametrize("excludes, message", [
    ([{"profile": "stripd"}], "exclude {'profile': 'stripd'}: profile 'stripd' is not in this spec's profiles "
                              "(did you mean 'stripped'?)"),
    ([{"target": "linux/arm64"}], "target 'linux/arm64' is not in this spec's targets"),
    ([{"workload": 3}], "the value must be a name"),
])
def test_exclude_values_are_checked_against_their_axes(excludes, message):
    with pytest.raises(SpecError) as err:
        SweepSpec.from_dict({"workloads": ["hello"], "profiles": ["default", "stripped"], "excludes": excludes})
    assert message in str(err.value)


@pytest.mark.parametrize("variable", ["GOOS", "GOARCH", "GOARM"])
def test_a_custom_profile_cannot_choose_the_platform(variable):
    with pytest.raises(SpecError, match=f"sets {variable}, which the targets axis decides"):
        SweepSpec.from_dict({"workloads": ["hello"], "profiles": ["x"],
                             "custom_profiles": {"x": {"env": {variable: "arm64"}}}})
    # A microarchitecture level is a build knob, not a platform.
    SweepSpec.from_dict({"workloads": ["hello"], "profiles": ["x"], "custom_profiles": {"x": {"env": {"GOAMD64": "v3"}}}})


def test_spec_from_notebook_parameters_takes_every_declared_key():
    namespace = {"workloads": ["httpd"], "bases": ["none"], "repeats": 3, "pin_cpu": 1, "title": "not a spec key",
                 "profiles": None}
    spec = SweepSpec.from_parameters(namespace, "default")
    assert spec.workloads == ("httpd",) and spec.repeats == 3 and spec.pin_cpu == 1
    assert spec.profiles == SweepSpec.from_toml("default").profiles  # None: the spec file's value


def test_variant_needs_a_value_per_axis():
    with pytest.raises(ValueError):
        Variant(("hello", "go"))
    assert Variant.of(workload="hello").key == "hello|go|default|linux/amd64|none|none"


def test_every_result_column_is_described():
    undescribed = [name for name, text in DESCRIPTIONS.items() if len(text) < 8]
    assert not undescribed
    # Each section group says which ELF sections it adds up.
    assert ".typelink" in DESCRIPTIONS["section_rodata_bytes"] and ".plt" in DESCRIPTIONS["section_text_bytes"]


def test_a_misspelt_column_fails_where_it_is_written():
    row = Row()
    row["size_bytes"] = 1
    with pytest.raises(KeyError, match=r"'size_byte' is not a results column \(did you mean 'size_bytes'\?\)"):
        row["size_byte"] = 1
    with pytest.raises(KeyError):
        row.update(startup_median=1.0)


@pytest.mark.parametrize("joined, words", [
    ("-ldflags=-s -w", ["-ldflags=-s -w"]),
    ("-trimpath -ldflags=-s -w -buildid=", ["-trimpath", "-ldflags=-s -w -buildid="]),
    ("-compiler gccgo -gccgoflags=-s -static", ["-compiler", "gccgo", "-gccgoflags=-s -static"]),
    ("-a -buildmode=pie", ["-a", "-buildmode=pie"]),
    ("-opt=z -no-debug -gc=leaking", ["-opt=z", "-no-debug", "-gc=leaking"]),  # tinygo
    ("", []),
])
def test_schema_2_flags_split_back_into_argv_words(joined, words):
    assert split_v2_flags(joined) == words


def test_a_schema_2_run_is_migrated_on_load(tmp_path):
    run = tmp_path / "runs" / "old"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text('{"schema_version": 2, "run_id": "old"}')
    key = "hello|go|trimmed|linux/amd64|none"
    pl.DataFrame({"schema_version": [2], "run_id": ["old"], "variant_key": [key],
                  "flags": ["-trimpath -ldflags=-s -w -buildid="], "build_env": ["CGO_ENABLED=0 GOFLAGS=-ldflags=-s -w"],
                  "status": ["ok"]},
                 schema_overrides={"schema_version": pl.Int32}).write_parquet(run / "results.parquet")
    pl.DataFrame({"run_id": ["old"], "variant_key": [key], "sample_index": [0], "startup_ms": [1.5]}
                 ).write_parquet(run / SAMPLES)
    df = slimlab.load(run)
    assert df["schema_version"].to_list() == [SCHEMA_VERSION]
    assert df["flags"].to_list() == [["-trimpath", "-ldflags=-s -w -buildid="]]
    assert df["build_env"].to_list() == [["CGO_ENABLED=0", "GOFLAGS=-ldflags=-s -w"]]
    assert df["base"].to_list() == ["none"]
    # The base axis joins the key, in the results and in every per-variant table alike.
    assert df["variant_key"].to_list() == slimlab.load_samples(run)["variant_key"].to_list() == [key + "|none"]


def test_results_of_a_newer_schema_are_refused():
    frame = pl.DataFrame({"schema_version": [SCHEMA_VERSION + 1]}, schema_overrides={"schema_version": pl.Int32})
    with pytest.raises(slimlab.SlimlabError, match="upgrade slimlab"):
        migrate(frame)


def test_the_base_axis_names_exactly_the_bases_slimlab_can_assemble():
    from slimlab import bases
    from slimlab.model.axes import BASES

    assert BASES == ("none", *bases.BASE_NAMES)


@pytest.mark.unit
def test_narrowing_an_axis_drops_the_spec_files_excludes_that_name_what_it_dropped():
    """The default spec excludes images of arm64; a notebook that sweeps no image keeps working,
    and an exclude the override still concerns still applies."""
    spec = SweepSpec.from_parameters({"bases": ["none"], "targets": ["linux/arm64"]}, "default")
    assert spec.bases == ("none",) and spec.exclude_rules() == []
    kept = SweepSpec.from_parameters({"bases": ["none", "scratch"]}, "default")
    assert {"target": "linux/arm64", "base": "scratch"} in kept.exclude_rules()
    assert all("static" not in rule.values() for rule in kept.exclude_rules())
    # One bare name, as papermill's `-p bases scratch` passes it, is that name, not its letters.
    assert SweepSpec.from_parameters({"bases": "scratch"}, "default").exclude_rules() == \
        SweepSpec.from_parameters({"bases": ["scratch"]}, "default").exclude_rules() != []


@pytest.mark.unit
def test_narrowing_the_targets_drops_the_spec_files_runner_for_the_others(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('workloads = ["hello"]\ntargets = ["linux/amd64", "linux/arm64"]\n'
                    'runner = { "linux/arm64" = "qemu-user" }\n')
    assert SweepSpec.from_parameters({}, spec).runner_of("linux/arm64") == "qemu-user"
    assert SweepSpec.from_parameters({"targets": ["linux/amd64"]}, spec).targets == ("linux/amd64",)
