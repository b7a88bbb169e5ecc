"""SweepSpec: what to sweep, loaded from TOML, a dict or papermill parameters, and validated.

Validation happens here, before any work starts, and names the valid choices for every
mistake (did-you-mean), so a typo never costs a half-finished sweep. It is pure: the
axes' checks (model.axes) read the spec and the package's own files, never PATH, tools
or the network.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import SpecError, control_characters, did_you_mean
from .axes import AXES, BY_COLUMN
from .profile import BUILTIN_PROFILES, Profile, custom_profile

BUILTIN_SPECS_DIR = Path(__file__).resolve().parent.parent / "specs"


@dataclass(frozen=True)
class Setting:
    default: Any
    kind: type
    low: float
    high: float
    description: str
    optional: bool = False  # may be left unset (None)


# How many timed starts a variant gets: adaptive sampling by default. Every variant gets
# min_repeats; after each round, those whose median start-up is not yet known to within
# ±precision (the 95% bootstrap interval's wider half over the median) get another burst,
# up to max_repeats or until their starts took variant_budget_s. Why these defaults: a verdict
# at analysis.FACTOR 1.05 needs each median within about ±2.5%; 10 starts are two bursts, the
# least an A/A split of alternate bursts and a bootstrap need; 60 (3x the old fixed 20) bounds a
# noisy variant; 5 s stops a container (0.1-0.4 s a start) at 15-50 starts. On the default spec
# on a 2-core host at load 6-15, no variant reached ±2.5% (median ±26% after up to 60 starts,
# against ±35% for the old fixed 20): there the rule spends max_repeats and the rows say
# precision_reached false (README, "Start-up and memory").
# The budget is per variant, not for the whole measurement: a slow variant (a container, an
# emulated server) then cannot take the time of the others, and the cost of a sweep stays
# proportional to its variants. ``repeats`` is the old fixed count (min = max = repeats), and
# ``image_repeats`` the same for container variants only.
SETTINGS: dict[str, Setting] = {
    "repeats": Setting(None, int, 1, 100_000, "a fixed number of timed starts per variant "
                                              "(min_repeats = max_repeats = repeats); unset: adaptive",
                       optional=True),
    "precision": Setting(0.025, float, 0.001, 1.0, "the target: the 95% bootstrap interval of each variant's "
                                                   "median start-up within ±precision of the median "
                                                   "(0.025: ±2.5%)"),
    "min_repeats": Setting(10, int, 3, 100_000, "timed starts every variant gets, whatever its interval"),
    "max_repeats": Setting(60, int, 3, 100_000, "timed starts no variant goes beyond, reached or not"),
    "variant_budget_s": Setting(5.0, float, 0.1, 86_400, "a variant takes no more starts past min_repeats "
                                                          "once its timed starts took this long in all"),
    "warmup": Setting(2, int, 0, 1000, "untimed starts before them"),
    "build_timeout_s": Setting(900.0, float, 1, 86_400, "a build (or post-link step) that takes longer fails"),
    "run_timeout_s": Setting(10.0, float, 0.1, 3600, "a start that takes longer is killed: status timeout"),
    "image_repeats": Setting(None, int, 1, 100_000, "a fixed number of timed container starts per image "
                                                    "variant (default: as the other variants); each costs "
                                                    "hundreds of ms",
                             optional=True),
    "memory_limit_mb": Setting(1024, int, 16, 1_048_576, "memory limit of every measured program, bare "
                                                         "(its cgroup) or in a container: past it the "
                                                         "kernel kills it and the row says so"),
    "pids_limit": Setting(512, int, 8, 4_194_304, "most processes and threads a measured program (bare or in "
                                                  "a container) may have at once"),
    "pin_cpu": Setting(None, int, 0, 4095, "run the launcher and the measured program on this CPU only, "
                                           "and the sweep on the others", optional=True),
    "max_variants": Setting(2000, int, 1, 100_000_000, "a spec that expands to more variants is refused "
                                                        "before any work (with their count and the time "
                                                        "they would take) unless the sweep is given --yes"),
    "workers": Setting(None, int, 1, 4096, "variants prepared at once by the local executor (default: sized "
                                          "to the machine, see slimlab.executor)", optional=True),
}
ADAPTIVE_KEYS = ("min_repeats", "max_repeats", "variant_budget_s")  # what a fixed ``repeats`` sets aside
# all_packages: every build rebuilds all packages (go build -a);
# probe: also run the capability probes (slimlab.probe) with the spec's toolchains.
TOGGLES = ("all_packages", "probe")
TABLES = ("custom_profiles", "excludes")
AXIS_KEYS = tuple(a.key for a in AXES)
# vulndb: a Go vulnerability database directory (the v1 layout of vuln.go.dev) that
# govulncheck scans every binary against; none can be downloaded here, so the user names one.
# runner: how a foreign target's programs run: "qemu-user" (QEMU user mode: quick, but its
# peak RSS is QEMU's own plus the program's) or "qemu-system" (a full-system guest of that
# CPU: the program's own memory, see slimlab.guest); one name for every foreign target, or
# a table by target, e.g. { "linux/arm64" = "qemu-system" }. A native target runs natively.
RUNNERS = ("qemu-user", "qemu-system")
DEFAULT_RUNNER = "qemu-system"
# executor: where the preparation stages (build, post-link, inspect, image, check) run:
# "local" (a process pool on this machine), "sequential" (one variant at a time, in this
# process), "dask" (an existing Dask cluster at ``scheduler``, tcp://HOST:PORT) or
# "dask-local" (a Dask LocalCluster started for the sweep). Measurement runs after all
# preparation, alone on its host. measure_on: where: "client" (this machine, every timed
# start on one host, so figures compare) or, with Dask, "workers" (each worker times what it
# prepared; each row carries its host's fingerprint). How a sweep runs is not what it
# sweeps: these stay out of to_dict(), so a run resumes under another executor.
EXECUTORS = ("local", "sequential", "dask", "dask-local")
MEASURE_ON = ("client", "workers")
EXECUTION_KEYS = ("executor", "workers", "scheduler", "measure_on")
# How many variants a sweep may have guards against a typo'd axis; it is not what the sweep
# measures, so it is no part of the spec's identity either: raising it does not block a resume.
GUARD_KEYS = ("max_variants",)
KNOWN_KEYS = (*AXIS_KEYS, *SETTINGS, *TOGGLES, *TABLES, "name", "vulndb", "runner", "executor", "scheduler",
              "measure_on")
# What marks a directory as a Go vulnerability database (https://go.dev/security/vuln/database#api).
VULNDB_INDEX = ("index/db.json", "index/modules.json")


@dataclass(frozen=True)
class SamplingRule:
    """How many timed starts one variant gets: at least ``min_repeats``; more, a burst at a time,
    while its median's interval is wider than ±``precision`` (relative), up to ``max_repeats`` or
    until its starts took ``budget_s`` (None: no budget; min == max: a fixed count)."""

    min_repeats: int
    max_repeats: int
    precision: float
    budget_s: float | None


@dataclass(frozen=True)
class SweepSpec:
    axes: tuple[tuple[str, tuple[str, ...]], ...]  # (axis key, its values), in AXES order
    repeats: int | None = None
    precision: float = 0.025
    min_repeats: int = 10
    max_repeats: int = 60
    variant_budget_s: float = 5.0
    warmup: int = 2
    build_timeout_s: float = 900.0
    run_timeout_s: float = 10.0
    memory_limit_mb: int = 1024
    pids_limit: int = 512
    pin_cpu: int | None = None
    image_repeats: int | None = None
    all_packages: bool = False
    probe: bool = False
    custom_profiles: dict[str, Profile] = field(default_factory=dict)
    excludes: tuple[tuple[tuple[str, str], ...], ...] = ()
    name: str = "sweep"
    vulndb: str | None = None  # absolute path of a Go vulnerability database, checked on load
    runners: tuple[tuple[str, str], ...] = ()  # (target, runner) where not DEFAULT_RUNNER
    # How, not what (EXECUTION_KEYS): not compared, not in to_dict().
    workers: int | None = field(default=None, compare=False)
    executor: str = field(default="local", compare=False)
    scheduler: str | None = field(default=None, compare=False)
    measure_on: str = field(default="client", compare=False)
    max_variants: int = field(default=2000, compare=False)  # GUARD_KEYS: not in to_dict() either
    base_dir: Path | None = field(default=None, compare=False)  # where relative workload paths start

    # -- reading -----------------------------------------------------------------------
    def values(self, axis: str) -> tuple[str, ...]:
        """The values of an axis, by its spec key ("profiles") or column ("profile")."""
        key = BY_COLUMN[axis].key if axis in BY_COLUMN else axis
        return dict(self.axes)[key]

    def __getattr__(self, name: str):
        # spec.workloads, spec.profiles, spec.bases, ...: every declared axis, by its key.
        if name in AXIS_KEYS:
            return self.values(name)
        raise AttributeError(name)

    def all_profiles(self) -> dict[str, Profile]:
        profiles = {**BUILTIN_PROFILES, **self.custom_profiles}
        if self.all_packages:
            profiles = {name: replace(p, all_packages=True) for name, p in profiles.items()}
        return profiles

    def sampling(self, container: bool = False) -> SamplingRule:
        """How many timed starts a variant gets (``container``: one timed in a container)."""
        fixed = self.image_repeats if container and self.image_repeats is not None else self.repeats
        if fixed is not None:
            return SamplingRule(fixed, fixed, self.precision, None)
        return SamplingRule(self.min_repeats, self.max_repeats, self.precision, self.variant_budget_s)

    def runner_of(self, target: str) -> str:
        """The runner the spec names for a foreign ``target`` (RUNNERS)."""
        return dict(self.runners).get(target, DEFAULT_RUNNER)

    def with_execution(self, executor: str | None = None, workers: int | None = None,
                       scheduler: str | None = None, measure_on: str | None = None) -> SweepSpec:
        """This spec run another way (the CLI's --executor, --workers, --scheduler, --measure-on),
        validated alike."""
        if executor is None and workers is None and scheduler is None and measure_on is None:
            return self
        if workers is not None:
            workers = _setting({"workers": workers}, "workers")
        if executor is None:  # a --scheduler alone means that cluster
            executor = "dask" if scheduler is not None else self.executor
        if scheduler is None and executor == self.executor:
            scheduler = self.scheduler
        return replace(self, **_execution(executor, scheduler, measure_on or self.measure_on),
                       workers=workers if workers else self.workers)

    def exclude_rules(self) -> list[dict[str, str]]:
        return [dict(rule) for rule in self.excludes]

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def load(cls, source: SweepSpec | Mapping | str | Path) -> SweepSpec:
        """A spec from a SweepSpec, a dict, a TOML path, or a built-in spec name."""
        if isinstance(source, SweepSpec):
            return source
        if isinstance(source, Mapping):
            return cls.from_dict(dict(source))
        return cls.from_toml(source)

    @classmethod
    def from_toml(cls, path: str | Path) -> SweepSpec:
        data, base_dir = read_toml(path)
        return cls.from_dict(data, base_dir=base_dir)

    @classmethod
    def from_parameters(cls, namespace: Mapping[str, Any], spec: str | Path | None = None) -> SweepSpec:
        """A spec from a notebook's variables: every spec key defined (and not None) in
        ``namespace``, over the TOML spec ``spec`` when given. Papermill injects any ``-p``
        name, so every axis and setting can be overridden without listing it in the notebook."""
        data, base_dir = read_toml(spec) if spec else ({}, None)
        given = {k: namespace[k] for k in KNOWN_KEYS if namespace.get(k) is not None}
        if "excludes" not in given and isinstance(data.get("excludes"), list):
            # The file's excludes were written for its own axes: a rule naming a value that an
            # overriding axis no longer lists excludes nothing, and would read as a typo.
            data["excludes"] = [rule for rule in data["excludes"] if not _drops(rule, given)]
        if "runner" not in given and "targets" in given and isinstance(data.get("runner"), dict):
            # Likewise the file's runner table, for targets the override no longer lists.
            kept = _axis(given, "targets", ())
            data["runner"] = {t: r for t, r in data["runner"].items() if t in kept}
        # A fixed count given over the file's adaptive bounds (or the other way round) replaces them.
        if "repeats" in given:
            for name in ADAPTIVE_KEYS[:2]:
                if name not in given:
                    data.pop(name, None)
        elif any(name in given for name in ADAPTIVE_KEYS[:2]):
            data.pop("repeats", None)
        data.update(given)
        return cls.from_dict(data, base_dir=base_dir)

    @classmethod
    def from_dict(cls, data: dict[str, Any], base_dir: Path | None = None) -> SweepSpec:
        """Validate ``data`` (TOML tables, papermill parameters) into a spec."""
        if not isinstance(data, dict):
            raise SpecError(f"a spec must be a table of settings, not {type(data).__name__}")
        for key in data:
            if key not in KNOWN_KEYS:
                raise SpecError(f"unknown spec key {key!r}{did_you_mean(key, KNOWN_KEYS)}; "
                                f"valid keys: {', '.join(KNOWN_KEYS)}")
        axes = []
        for ax in AXES:
            if ax.default is None and ax.key not in data:
                raise SpecError(f"the spec needs a '{ax.key}' axis ({ax.description}), "
                                f"e.g. {ax.key} = [\"hello\"]")
            axes.append((ax.key, tuple(_axis(data, ax.key, ax.default))))
        settings = {name: _setting(data, name) for name in SETTINGS}
        _check_sampling(data, settings)
        for name in TOGGLES:
            if not isinstance(data.get(name, False), bool):
                raise SpecError(f"{name} must be true or false, got {data[name]!r}")
            settings[name] = data.get(name, False)
        custom = {name: custom_profile(name, table) for name, table in _table(data, "custom_profiles").items()}
        clash = set(custom) & set(BUILTIN_PROFILES)
        if clash:
            raise SpecError(f"custom profile names clash with built-in profiles: {sorted(clash)}")
        spec = cls(
            axes=tuple(axes),
            **settings,
            custom_profiles=dict(sorted(custom.items())),
            excludes=tuple(tuple(sorted(rule.items())) for rule in _excludes(data.get("excludes", []))),
            name=str(data.get("name", "sweep")),
            vulndb=_vulndb(data.get("vulndb"), base_dir),
            runners=_runners(data.get("runner"), _axis(data, "targets", dict(axes)["targets"])),
            base_dir=base_dir,
            **_execution(data.get("executor", "local"), data.get("scheduler"), data.get("measure_on", "client")),
        )
        spec._check_values()
        return spec

    # -- validation ----------------------------------------------------------------------
    def _check_values(self) -> None:
        for ax in AXES:
            for value in self.values(ax.key):
                # '|' joins a variant's key (Variant.key); a control character would reach file names,
                # shell lines and reports: results files with either are refused on load.
                if "|" in value or control_characters(value):
                    what = "'|'" if "|" in value else "a control character"
                    raise SpecError(f"{ax.key}: {value!r} holds {what}: a {ax.column} name holds neither '|' "
                                    "nor control characters")
                ax.check(value, self)
        # An exclude that names a value the spec does not sweep excludes nothing: a typo.
        for rule in self.exclude_rules():
            for column, value in rule.items():
                listed = self.values(column)
                if value not in listed:
                    raise SpecError(f"exclude {rule!r}: {column} {value!r} is not in this spec's "
                                    f"{BY_COLUMN[column].key}{did_you_mean(value, listed)}; "
                                    f"listed: {', '.join(listed)}")

    def to_dict(self) -> dict[str, Any]:
        """A plain, TOML-shaped dict: stored in the manifest and compared on resume."""
        out: dict[str, Any] = {key: list(values) for key, values in self.axes}
        out.update({name: getattr(self, name) for name in (*SETTINGS, *TOGGLES)
                    if getattr(self, name) is not None and name not in (*EXECUTION_KEYS, *GUARD_KEYS)})
        if self.repeats is not None:  # a fixed count: the adaptive bounds do not apply
            for name in ADAPTIVE_KEYS:
                out.pop(name)
        out["custom_profiles"] = {
            name: {k: v for k, v in asdict(p).items() if k != "name"} for name, p in self.custom_profiles.items()
        }
        for table in out["custom_profiles"].values():
            table["flags"] = list(table["flags"])
            table["env"] = dict(table["env"])
        out["excludes"] = self.exclude_rules()
        out["name"] = self.name
        if self.vulndb is not None:
            out["vulndb"] = self.vulndb
        if self.runners:
            out["runner"] = dict(self.runners)
        return out


def read_toml(path: str | Path) -> tuple[dict[str, Any], Path]:
    """The table in a spec file (or a built-in spec, by name) and the directory it is in."""
    path = Path(path)
    if not path.exists() and (BUILTIN_SPECS_DIR / f"{path.name}.toml").exists():
        path = BUILTIN_SPECS_DIR / f"{path.name}.toml"  # "default" names the built-in spec
    if not path.is_file():
        builtin = sorted(p.stem for p in BUILTIN_SPECS_DIR.glob("*.toml"))
        raise SpecError(f"spec file {str(path)!r} not found; built-in specs: {', '.join(builtin)}")
    try:
        return tomllib.loads(path.read_text()), path.parent.resolve()
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from exc


def _axis(data: dict, key: str, default: tuple[str, ...] | None) -> list[str]:
    if key not in data:
        return list(default or ())
    values = data[key]
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
        raise SpecError(f"axis {key!r} must be a list of names, got {values!r}")
    if not values:
        raise SpecError(f"axis {key!r} is empty: give at least one value or leave the key out")
    dupes = sorted({v for v in values if list(values).count(v) > 1})
    if dupes:
        raise SpecError(f"axis {key!r} lists {dupes} more than once")
    return list(values)


def _setting(data: dict, name: str):
    setting = SETTINGS[name]
    value = data.get(name, setting.default)
    if value is None and setting.optional:
        return None
    kind = setting.kind
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or (kind is int and value != int(value))):
        raise SpecError(f"{name} must be a {'whole ' if kind is int else ''}number, got {value!r}")
    if not setting.low <= value <= setting.high:
        raise SpecError(f"{name} must be between {setting.low:g} and {setting.high:g}, got {value!r}")
    return kind(value)


def _check_sampling(data: dict, settings: dict) -> None:
    """``repeats`` is a fixed count: with min_repeats or max_repeats too, which one holds is unclear."""
    both = [name for name in ("min_repeats", "max_repeats") if name in data]
    if settings["repeats"] is not None and both:
        raise SpecError(f"repeats (a fixed count) and {' and '.join(both)} (adaptive sampling) exclude each "
                        f"other: give repeats alone, or min_repeats/max_repeats with precision")
    if settings["min_repeats"] > settings["max_repeats"]:
        raise SpecError(f"min_repeats ({settings['min_repeats']}) must not exceed max_repeats "
                        f"({settings['max_repeats']})")


def _runners(value, targets: list[str]) -> tuple[tuple[str, str], ...]:
    """``runner`` as (target, runner) pairs for the targets that do not take the default."""
    if value is None:
        return ()
    table = {t: value for t in targets} if isinstance(value, str) else value
    if not isinstance(table, Mapping):
        raise SpecError(f"runner must be one of {', '.join(RUNNERS)} or a table of target = runner, got {value!r}")
    for target, runner in table.items():
        if target not in targets:
            raise SpecError(f"runner: target {target!r} is not in this spec's targets{did_you_mean(target, targets)}; "
                            f"listed: {', '.join(targets)}")
        if runner not in RUNNERS:
            raise SpecError(f"runner {runner!r} for {target}{did_you_mean(runner, RUNNERS)}; "
                            f"valid: {', '.join(RUNNERS)}")
    return tuple(sorted((t, r) for t, r in table.items() if r != DEFAULT_RUNNER))


def _execution(executor, scheduler, measure_on="client") -> dict[str, str | None]:
    """``executor`` one of EXECUTORS; ``scheduler`` a Dask scheduler's address, for "dask" only;
    ``measure_on`` one of MEASURE_ON, "workers" with Dask only."""
    if executor not in EXECUTORS:
        raise SpecError(f"executor {executor!r}{did_you_mean(executor, EXECUTORS)}; valid: {', '.join(EXECUTORS)}")
    if measure_on not in MEASURE_ON:
        raise SpecError(f"measure_on {measure_on!r}{did_you_mean(str(measure_on), MEASURE_ON)}; "
                        f"valid: {', '.join(MEASURE_ON)}")
    if measure_on == "workers" and executor not in ("dask", "dask-local"):
        raise SpecError(f"measure_on = \"workers\" is for a Dask cluster (executor = \"dask\" or \"dask-local\"); "
                        f"executor {executor!r} prepares on this machine, which measures: use measure_on = \"client\"")
    if scheduler is not None:
        if not isinstance(scheduler, str) or "://" not in scheduler:
            raise SpecError(f"scheduler must be a Dask scheduler's address such as tcp://HOST:8786, got {scheduler!r}")
        if executor != "dask":
            raise SpecError(f"scheduler {scheduler!r} is for executor = \"dask\", not {executor!r}")
    elif executor == "dask":
        raise SpecError("executor = \"dask\" needs the cluster's scheduler address: scheduler = \"tcp://HOST:8786\" "
                        "(or --scheduler), or executor = \"dask-local\" to start a cluster on this machine")
    return {"executor": executor, "scheduler": scheduler, "measure_on": measure_on}


def _vulndb(value, base_dir: Path | None) -> str | None:
    """The database directory as an absolute path, once it looks like a Go vulnerability
    database: a typo'd path would otherwise cost a whole sweep of "scan failed" rows."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise SpecError(f"vulndb must be the path of a Go vulnerability database directory, got {value!r}")
    path = Path(value).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    path = path.resolve()
    if not path.is_dir():
        raise SpecError(f"vulndb {value!r}: no such directory ({path})")
    missing = [name for name in VULNDB_INDEX if not (path / name).is_file()]
    if missing:
        raise SpecError(f"vulndb {value!r} does not look like a Go vulnerability database: {path} has no "
                        f"{' or '.join(missing)} (the layout of https://go.dev/security/vuln/database#api: "
                        f"index/db.json, index/modules.json, ID/<id>.json)")
    return str(path)


def _table(data: dict, name: str) -> dict:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise SpecError(f"{name} must be a table")
    return table


def _drops(rule, given: Mapping[str, Any]) -> bool:
    """Does exclude ``rule`` name a value of an axis ``given`` overrides without it?"""
    if not isinstance(rule, dict):
        return False  # malformed: from_dict says how
    for column, value in rule.items():
        axis = BY_COLUMN.get(column)
        if axis is not None and axis.key in given and value not in _axis(given, axis.key, ()):
            return True
    return False


def _excludes(items) -> list[dict[str, str]]:
    """Each exclude is a partial variant: {profile = "static", target = "linux/arm64"}."""
    if not isinstance(items, list):
        raise SpecError("excludes must be a list of tables, e.g. excludes = [{profile = \"static\"}]")
    out = []
    for item in items:
        if not isinstance(item, dict) or not item:
            raise SpecError(f"each exclude must be a non-empty table, got {item!r}")
        for key, value in item.items():
            if key not in BY_COLUMN:
                raise SpecError(f"exclude key {key!r}{did_you_mean(key, BY_COLUMN)}; valid: {sorted(BY_COLUMN)}")
            if not isinstance(value, str):
                raise SpecError(f"exclude {key} = {value!r}: the value must be a name (a string)")
        out.append(dict(item))
    return out
