"""Workloads: the Go programs slimlab builds, how to run them and how to tell they work.

Built-in workloads are directories of Go source shipped inside this package. A user
workload is a path to a Go main package; an optional ``workload.toml`` beside its
sources says how to run and check it (without one it is a CLI that must exit 0).

Placeholders in ``args`` and ``env`` values, filled in for each start of a server:
``{addr}`` (a free loopback address for HTTP) and ``{grpc_addr}`` (another one, for
gRPC). ``grpc_health = true`` makes the functional check also call the standard gRPC
health service (``grpc.health.v1.Health/Check``) at ``{grpc_addr}`` and require SERVING.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpecError

BUILTIN_DIR = Path(__file__).parent
MANIFEST = "workload.toml"
KINDS = ("cli", "server")
ADDR = "{addr}"
GRPC_ADDR = "{grpc_addr}"


def _is_str(value) -> bool:
    return isinstance(value, str)


# Every key of workload.toml: what its value must be (said in errors) and the test of it.
# TOML has types, so nothing is coerced: `expect_exit = "1"` or `args = [1]` is an error,
# not a guess.
MANIFEST_FIELDS: dict[str, tuple[str, object]] = {
    "kind": (f"one of {', '.join(repr(k) for k in KINDS)}", lambda v: v in KINDS),
    "args": ('a list of strings, e.g. ["-addr", "{addr}"]',
             lambda v: isinstance(v, list) and all(map(_is_str, v))),
    "env": ('a table of strings, e.g. { GOMAXPROCS = "1" }',
            lambda v: isinstance(v, dict) and all(map(_is_str, v.values()))),
    "expect_stdout": ("a string (the exact stdout of a working run)", _is_str),
    "expect_exit": ("an integer from 0 to 255", lambda v: type(v) is int and 0 <= v <= 255),
    "health_path": ('a string starting with "/", e.g. "/healthz"', lambda v: _is_str(v) and v.startswith("/")),
    "expect_body": ("a string (the exact body of the health answer)", _is_str),
    "grpc_health": ("true or false", lambda v: isinstance(v, bool)),
    "grpc_service": ('a string ("" asks about the whole server)', _is_str),
}


@dataclass(frozen=True)
class Workload:
    name: str
    source_dir: Path
    kind: str = "cli"
    args: tuple[str, ...] = ()  # "{addr}" / "{grpc_addr}" become the addresses a server must listen on
    env: tuple[tuple[str, str], ...] = ()  # values may hold the same placeholders
    expect_stdout: str | None = None  # CLI: exact stdout of a working program
    expect_exit: int = 0
    health_path: str = "/healthz"  # server: GET here must answer 200 once ready
    expect_body: str | None = None  # server: exact body of the health answer
    grpc_health: bool = False  # server: the check also asks grpc.health.v1.Health at {grpc_addr}: SERVING?
    grpc_service: str = ""  # the service name that health check asks about ("": the whole server)
    builtin: bool = field(default=False, compare=False)

    def source_digest(self) -> str:
        """A hash of every source file (not the run manifest): the build's input identity."""
        digest = hashlib.sha256()
        for path in sorted(self.source_dir.rglob("*")):
            if not path.is_file() or path.name == MANIFEST or "__pycache__" in path.parts:
                continue
            digest.update(path.relative_to(self.source_dir).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
        return digest.hexdigest()

    @property
    def uses_grpc_addr(self) -> bool:
        return any(GRPC_ADDR in v for v in (*self.args, *(value for _, value in self.env)))

    def run_args(self, addr: str | None = None, grpc_addr: str | None = None) -> list[str]:
        return [_fill(a, addr, grpc_addr) for a in self.args]

    def run_env(self, addr: str | None = None, grpc_addr: str | None = None) -> dict[str, str]:
        return {k: _fill(v, addr, grpc_addr) for k, v in self.env}


def _fill(text: str, addr: str | None, grpc_addr: str | None) -> str:
    return text.replace(ADDR, addr or "").replace(GRPC_ADDR, grpc_addr or "")


def builtin_names() -> list[str]:
    return sorted(p.name for p in BUILTIN_DIR.iterdir() if (p / MANIFEST).is_file())


def resolve(name: str, base_dir: Path | None = None) -> Workload:
    """A built-in workload by name, or a user workload by path (relative to ``base_dir``)."""
    if name in builtin_names():
        return _load(name, BUILTIN_DIR / name, builtin=True)
    looks_like_path = "/" in name or name.startswith(".")
    path = Path(name).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if looks_like_path or path.is_dir():
        if not path.is_dir():
            raise SpecError(f"workload {name!r}: no such directory {path}")
        if not any(path.glob("*.go")):
            raise SpecError(f"workload {name!r}: {path} holds no .go files (expected a Go main package)")
        return _load(name, path.resolve(), builtin=False)
    from ..errors import did_you_mean

    raise SpecError(
        f"unknown workload {name!r}{did_you_mean(name, builtin_names())}; "
        f"built-in workloads: {', '.join(builtin_names())}; or give a path to a Go main package"
    )


def _read_manifest(path: Path) -> dict:
    """The checked contents of a workload.toml ({} when there is none); SpecError otherwise."""
    from ..errors import did_you_mean

    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    unknown = [key for key in data if key not in MANIFEST_FIELDS]
    if unknown:
        named = ", ".join(f"{key!r}{did_you_mean(key, MANIFEST_FIELDS)}" for key in unknown)
        raise SpecError(f"{path}: unknown keys {named}; valid keys: {', '.join(MANIFEST_FIELDS)}")
    for key, value in data.items():
        expected, valid = MANIFEST_FIELDS[key]
        if not valid(value):
            hint = did_you_mean(value, KINDS) if key == "kind" else ""
            raise SpecError(f"{path}: {key} must be {expected}, not {value!r}{hint}")
    return data


def _load(name: str, source_dir: Path, builtin: bool) -> Workload:
    manifest_path = source_dir / MANIFEST
    data = _read_manifest(manifest_path)
    kind = data.get("kind", "cli")
    grpc_health = data.get("grpc_health", False)
    grpc_service = data.get("grpc_service", "")
    args = tuple(data.get("args", ()))
    env = tuple(sorted(data.get("env", {}).items()))
    if grpc_health:
        if kind != "server":
            raise SpecError(f"{manifest_path}: grpc_health = true needs kind = \"server\"")
        if not any(GRPC_ADDR in v for v in (*args, *(value for _, value in env))):
            raise SpecError(f"{manifest_path}: grpc_health = true needs {GRPC_ADDR} in args or env, so the "
                            f"program listens where the check calls it, e.g. args = [\"-grpc-addr\", \"{GRPC_ADDR}\"]")
    elif "grpc_service" in data:
        raise SpecError(f"{manifest_path}: grpc_service is only used with grpc_health = true")
    return Workload(
        name=name,
        source_dir=source_dir,
        kind=kind,
        args=args,
        env=env,
        expect_stdout=data.get("expect_stdout"),
        expect_exit=data.get("expect_exit", 0),
        health_path=data.get("health_path", "/healthz"),
        expect_body=data.get("expect_body"),
        grpc_health=grpc_health,
        grpc_service=grpc_service,
        builtin=builtin,
    )
