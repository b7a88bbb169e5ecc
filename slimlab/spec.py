"""SweepSpec: what to sweep, loaded from TOML, a dict or papermill parameters, and validated.

Validation happens here, before any work starts, and names the valid choices for every
mistake (did-you-mean), so a typo never costs a half-finished sweep.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from . import postlink, toolchains, workloads
from .errors import SpecError
from .profiles import BUILTIN_PROFILES, Profile, custom_profile
from .targets import TARGETS

BUILTIN_SPECS_DIR = Path(__file__).parent / "specs"

AXES = ("workloads", "toolchains", "profiles", "targets", "postlink")
AXIS_DEFAULTS: dict[str, list[str]] = {
    "toolchains": ["go"],
    "profiles": ["default"],
    "targets": ["linux/amd64"],
    "postlink": ["none"],
}
# Settings with their defaults and the (inclusive) range a value must fall in.
SETTINGS: dict[str, tuple[Any, type, float, float]] = {
    "repeats": (20, int, 1, 100_000),
    "warmup": (2, int, 0, 1000),
    "build_timeout_s": (900.0, float, 1, 86_400),
    "run_timeout_s": (10.0, float, 0.1, 3600),
}
# all_packages: every build rebuilds all packages (go build -a);
# probe: also run the capability probes (slimlab.probe) with the spec's toolchains.
TOGGLES = ("all_packages", "probe")
TABLES = ("custom_profiles", "excludes")
KNOWN_KEYS = (*AXES, *SETTINGS, *TOGGLES, *TABLES, "name")


def did_you_mean(word: str, choices) -> str:
    """' (did you mean "x"?)' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


@dataclass(frozen=True)
class SweepSpec:
    workloads: tuple[str, ...]
    toolchains: tuple[str, ...] = tuple(AXIS_DEFAULTS["toolchains"])
    profiles: tuple[str, ...] = tuple(AXIS_DEFAULTS["profiles"])
    targets: tuple[str, ...] = tuple(AXIS_DEFAULTS["targets"])
    postlink: tuple[str, ...] = tuple(AXIS_DEFAULTS["postlink"])
    repeats: int = 20
    warmup: int = 2
    build_timeout_s: float = 900.0
    run_timeout_s: float = 10.0
    all_packages: bool = False
    probe: bool = False
    custom_profiles: dict[str, Profile] = field(default_factory=dict)
    excludes: tuple[dict[str, str], ...] = ()
    name: str = "sweep"
    base_dir: Path | None = field(default=None, compare=False)  # where relative workload paths start

    # -- loading ---------------------------------------------------------------------
    @classmethod
    def load(cls, source: SweepSpec | dict | str | Path) -> SweepSpec:
        """A spec from a SweepSpec, a dict, a TOML path, or a built-in spec name."""
        if isinstance(source, SweepSpec):
            return source
        if isinstance(source, dict):
            return cls.from_dict(source)
        return cls.from_toml(source)

    @classmethod
    def from_toml(cls, path: str | Path) -> SweepSpec:
        path = Path(path)
        if not path.exists() and (BUILTIN_SPECS_DIR / f"{path.name}.toml").exists():
            path = BUILTIN_SPECS_DIR / f"{path.name}.toml"  # "default" names the built-in spec
        if not path.is_file():
            builtin = sorted(p.stem for p in BUILTIN_SPECS_DIR.glob("*.toml"))
            raise SpecError(f"spec file {str(path)!r} not found; built-in specs: {', '.join(builtin)}")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise SpecError(f"{path}: not valid TOML: {exc}") from exc
        return cls.from_dict(data, base_dir=path.parent.resolve())

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: Path | None = None) -> SweepSpec:
        """Validate ``data`` (TOML tables, papermill parameters) into a spec."""
        if not isinstance(data, dict):
            raise SpecError(f"a spec must be a table of settings, not {type(data).__name__}")
        for key in data:
            if key not in KNOWN_KEYS:
                raise SpecError(
                    f"unknown spec key {key!r}{did_you_mean(key, KNOWN_KEYS)}; "
                    f"valid keys: {', '.join(KNOWN_KEYS)}"
                )
        if "workloads" not in data:
            raise SpecError(f"the spec needs a 'workloads' axis, e.g. workloads = {workloads.builtin_names()!r}")
        axes = {axis: _axis(data, axis) for axis in AXES}
        settings = {name: _setting(data, name) for name in SETTINGS}
        for name in TOGGLES:
            if not isinstance(data.get(name, False), bool):
                raise SpecError(f"{name} must be true or false, got {data[name]!r}")
            settings[name] = data.get(name, False)
        custom = {
            name: custom_profile(name, table) for name, table in _table(data, "custom_profiles").items()
        }
        clash = set(custom) & set(BUILTIN_PROFILES)
        if clash:
            raise SpecError(f"custom profile names clash with built-in profiles: {sorted(clash)}")
        spec = cls(
            **{axis: tuple(values) for axis, values in axes.items()},
            **settings,
            custom_profiles=custom,
            excludes=tuple(_excludes(data.get("excludes", []))),
            name=str(data.get("name", "sweep")),
            base_dir=base_dir,
        )
        spec._check_names()
        return spec

    # -- validation ------------------------------------------------------------------
    def all_profiles(self) -> dict[str, Profile]:
        profiles = {**BUILTIN_PROFILES, **self.custom_profiles}
        if self.all_packages:
            profiles = {name: replace(p, all_packages=True) for name, p in profiles.items()}
        return profiles

    def _check_names(self) -> None:
        for name in self.workloads:
            workloads.resolve(name, self.base_dir)  # raises with the valid choices
        for name in self.toolchains:
            toolchains.get(name)
        _check_choices("profile", self.profiles, self.all_profiles())
        _check_choices("target", self.targets, TARGETS)
        for name in self.postlink:
            postlink.get_chain(name)

    def to_dict(self) -> dict[str, Any]:
        """A plain, TOML-shaped dict: stored in the manifest and compared on resume."""
        out = {axis: list(getattr(self, axis)) for axis in AXES}
        out.update({name: getattr(self, name) for name in (*SETTINGS, *TOGGLES)})
        out["custom_profiles"] = {
            name: {k: v for k, v in asdict(p).items() if k != "name"} for name, p in self.custom_profiles.items()
        }
        for table in out["custom_profiles"].values():
            table["flags"] = list(table["flags"])
            table["env"] = dict(table["env"])
        out["excludes"] = [dict(e) for e in self.excludes]
        out["name"] = self.name
        return out


def _axis(data: dict, axis: str) -> list[str]:
    if axis not in data:
        return list(AXIS_DEFAULTS[axis])
    values = data[axis]
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
        raise SpecError(f"axis {axis!r} must be a list of names, got {values!r}")
    if not values:
        raise SpecError(f"axis {axis!r} is empty: give at least one value or leave the key out")
    dupes = sorted({v for v in values if list(values).count(v) > 1})
    if dupes:
        raise SpecError(f"axis {axis!r} lists {dupes} more than once")
    return list(values)


def _setting(data: dict, name: str):
    default, kind, low, high = SETTINGS[name]
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
        raise SpecError(f"{name} must be a {'whole ' if kind is int else ''}number, got {value!r}")
    if not low <= value <= high:
        raise SpecError(f"{name} must be between {low:g} and {high:g}, got {value!r}")
    return kind(value)


def _table(data: dict, name: str) -> dict:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise SpecError(f"{name} must be a table")
    return table


def _excludes(items) -> list[dict[str, str]]:
    """Each exclude is a partial variant: {profile = "static", target = "linux/arm64"}."""
    singular = {"workload", "toolchain", "profile", "target", "postlink"}
    if not isinstance(items, list):
        raise SpecError("excludes must be a list of tables, e.g. excludes = [{profile = \"static\"}]")
    out = []
    for item in items:
        if not isinstance(item, dict) or not item:
            raise SpecError(f"each exclude must be a non-empty table, got {item!r}")
        for key in item:
            if key not in singular:
                raise SpecError(f"exclude key {key!r}{did_you_mean(key, singular)}; valid: {sorted(singular)}")
        out.append({k: str(v) for k, v in item.items()})
    return out


def _check_choices(what: str, names, choices) -> None:
    for name in names:
        if name not in choices:
            raise SpecError(f"unknown {what} {name!r}{did_you_mean(name, choices)}; valid: {', '.join(choices)}")
