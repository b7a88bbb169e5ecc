"""Build profiles: named build intents ("strip symbols", "static", ...).

A profile says what the user wants, not how a compiler spells it: each toolchain
adapter maps the intent to its own flags (see ``slimlab.toolchains``). A custom profile
from a spec may also carry explicit flags and environment, passed through verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import SpecError, control_characters, did_you_mean

_INTENT_KEYS = ("strip", "trimpath", "empty_buildid", "cgo", "pie", "external_static", "all_packages")
CUSTOM_KEYS = (*_INTENT_KEYS, "flags", "env", "description")
# Environment the target decides (model.target.Target.go_env), never a profile.
# (GOAMD64 and friends stay allowed: a microarchitecture level is a build knob worth sweeping.)
TARGET_ENV = frozenset({"GOOS", "GOARCH", "GOARM"})


@dataclass(frozen=True)
class Profile:
    name: str
    description: str = ""
    strip: bool = False  # drop symbol table and DWARF (-ldflags=-s -w)
    trimpath: bool = False  # remove file-system paths from the binary
    empty_buildid: bool = False  # -ldflags=-buildid= : reproducible, no build ID note
    cgo: bool | None = None  # None: the toolchain's default; False forces CGO_ENABLED=0
    pie: bool = False  # position-independent executable
    external_static: bool = False  # external linker, fully static
    all_packages: bool = False  # rebuild every package (-a)
    flags: tuple[str, ...] = ()  # extra flags, verbatim, after the ones the intent maps to
    env: tuple[tuple[str, str], ...] = ()  # extra environment, verbatim


BUILTIN_PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("default", "plain go build"),
        Profile("stripped", "-ldflags='-s -w'", strip=True),
        Profile("trimmed", "-trimpath -ldflags='-s -w -buildid='", strip=True, trimpath=True, empty_buildid=True),
        Profile(
            "static",
            "CGO_ENABLED=0 -trimpath -ldflags='-s -w -buildid='",
            strip=True,
            trimpath=True,
            empty_buildid=True,
            cgo=False,
        ),
        Profile("pie", "-buildmode=pie", pie=True),
        Profile("external-static", "-ldflags='-linkmode external -extldflags -static'", external_static=True),
    )
}


def custom_profile(name: str, table: dict) -> Profile:
    """A profile defined in a spec's ``[custom_profiles.NAME]`` table."""
    if not isinstance(table, dict):
        raise SpecError(f"custom_profiles.{name} must be a table, not {type(table).__name__}")
    for key in table:
        if key not in CUSTOM_KEYS:
            raise SpecError(
                f"custom_profiles.{name}: unknown key {key!r}{did_you_mean(key, CUSTOM_KEYS)}; "
                f"allowed: {', '.join(CUSTOM_KEYS)}"
            )
    flags = table.get("flags", [])
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        raise SpecError(f"custom_profiles.{name}.flags must be a list of strings")
    env = table.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise SpecError(f"custom_profiles.{name}.env must be a table of NAME = \"value\" (strings)")
    # The target axis owns the platform: a profile that set these would build for another CPU
    # than the row says.
    for item in [*flags, *env, *env.values()]:
        if control_characters(item):  # they reach shell lines and Dockerfiles, and the results file
            raise SpecError(f"custom_profiles.{name}: {item!r} holds a control character")
    bad_names = [key for key in env if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key)]
    if bad_names:
        raise SpecError(f"custom_profiles.{name}.env: {bad_names[0]!r} is not an environment variable name")
    owned = sorted(set(env) & TARGET_ENV)
    if owned:
        raise SpecError(f"custom_profiles.{name}.env sets {', '.join(owned)}, which the targets axis decides; "
                        f"choose the platform with targets = [...] instead")
    intents = {}
    for key in _INTENT_KEYS:
        if key in table:
            value = table[key]
            if not isinstance(value, bool):
                raise SpecError(f"custom_profiles.{name}.{key} must be true or false")
            intents[key] = value
    return Profile(
        name=name,
        description=str(table.get("description", "custom: " + " ".join(flags))),
        flags=tuple(flags),
        env=tuple(sorted((str(k), str(v)) for k, v in env.items())),
        **intents,
    )
