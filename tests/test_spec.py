"""Bad input gets one clear error before any work starts."""

from __future__ import annotations

import pytest

from slimlab import SweepSpec, SpecError, expand
from slimlab.model import BUILTIN_PROFILES

pytestmark = pytest.mark.unit  # pure logic: the `make test-fast` tier

BASE = {"workloads": ["hello"], "profiles": ["default"]}


def spec(**changes):
    return SweepSpec.from_dict({**BASE, **changes})


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"workloads": ["helo"]}, "unknown workload 'helo' (did you mean 'hello'?)"),
        ({"toolchains": ["gcc"]}, "unknown toolchain 'gcc'"),
        ({"profiles": ["strippd"]}, "unknown profile 'strippd' (did you mean 'stripped'?)"),
        ({"targets": ["linux/amd46"]}, "unknown target 'linux/amd46' (did you mean 'linux/amd64'?)"),
        ({"profile": ["default"]}, "unknown spec key 'profile' (did you mean 'profiles'?)"),
        ({"targets": []}, "axis 'targets' is empty"),
        ({"repeats": 0}, "repeats must be between 1"),
        ({"repeats": "many"}, "repeats must be a whole number"),
        ({"postlink": ["upx-99"]}, "unknown postlink chain 'upx-99'"),
        ({"profiles": ["default", "default"]}, "lists ['default'] more than once"),
        ({"workloads": ["./no/such/dir"]}, "no such directory"),
        ({"custom_profiles": {"tiny": {"flag": ["-trimpath"]}}}, "unknown key 'flag' (did you mean 'flags'?)"),
        ({"excludes": [{"profiles": "default"}]}, "exclude key 'profiles' (did you mean 'profile'?)"),
    ],
)
def test_bad_spec_names_the_problem(changes, message):
    with pytest.raises(SpecError) as err:
        spec(**changes)
    assert message in str(err.value)


def test_unknown_workload_lists_the_builtins():
    with pytest.raises(SpecError, match="built-in workloads: cobra-cli, grpc-redis, grpc-redis-legacy, hello, httpd;"):
        spec(workloads=["nope"])


def test_missing_workloads_axis():
    with pytest.raises(SpecError, match="needs a 'workloads' axis"):
        SweepSpec.from_dict({"profiles": ["default"]})


def test_toml_spec_and_builtin_name(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('workloads = ["hello"]\nprofiles = ["stripped", "mine"]\nrepeats = 3\n'
                    '[custom_profiles.mine]\nflags = ["-trimpath"]\nenv = { CGO_ENABLED = "0" }\n')
    loaded = SweepSpec.from_toml(path)
    assert loaded.repeats == 3
    assert loaded.custom_profiles["mine"].flags == ("-trimpath",)
    assert dict(loaded.custom_profiles["mine"].env) == {"CGO_ENABLED": "0"}
    default = SweepSpec.from_toml("default")
    assert default.profiles == ("default", "stripped", "trimmed", "static")
    assert SweepSpec.from_toml("baseline").profiles == default.profiles
    assert set(default.profiles) <= set(BUILTIN_PROFILES)
    assert default.to_dict() == SweepSpec.from_dict(default.to_dict()).to_dict()


def test_bad_toml_is_reported(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("workloads = [hello]\n")
    with pytest.raises(SpecError, match="not valid TOML"):
        SweepSpec.from_toml(path)


def test_expand_is_the_product_minus_excludes():
    s = spec(workloads=["hello", "httpd"], profiles=["default", "stripped", "static"],
             excludes=[{"workload": "httpd", "profile": "static"}])
    variants = expand(s)
    assert len(variants) == 2 * 3 - 1
    assert len({v.key for v in variants}) == len(variants)
    assert not any(v.workload == "httpd" and v.profile == "static" for v in variants)
