"""The one content-addressed cache: entries that appear whole or not at all.

An entry is a directory ``<root>/<kind>/<key[:2]>/<key>/`` holding the cached files and
a ``meta.json`` that describes them. It is written in a staging directory beside it (same
parent, so the same file system) and renamed into place: rename(2) is atomic, so a
reader sees a complete entry or none, and a sweep killed mid-build leaves only a
dot-named staging directory. Two processes that make the same entry at once both write
it; the second rename fails and its copy is dropped, which is harmless because the key
says the contents are the same. Failures are never published: the next sweep retries.

Used by builds (``artifacts``), post-link outputs (``postlink``) and Go releases from
PyPI (``toolchains/go-X.Y.Z``, a named entry rather than a hashed one).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

META = "meta.json"


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, read in blocks: how the cache names content."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def entry(root: Path, kind: str, key: str) -> Path:
    """Where the entry ``key`` of ``kind`` lives (two-character fan-out keeps directories small)."""
    return Path(root) / kind / key[:2] / key


def lookup(path: Path, *files: str) -> dict | None:
    """The entry's meta when it is complete (meta.json and every one of ``files``), else None."""
    meta = path / META
    if not meta.is_file() or not all((path / name).is_file() for name in files):
        return None
    return json.loads(meta.read_text())


class Staging:
    """A private directory whose contents become the entry at :meth:`publish`."""

    def __init__(self, path: Path, target: Path) -> None:
        self.path = path
        self.target = target

    def publish(self, meta: dict, *files: str) -> Path:
        """Write ``meta`` and move the staged files into place; returns the entry.

        ``files`` are those a complete entry must hold: when the entry exists already but
        lacks one (a stale or damaged entry), it is replaced rather than trusted.
        """
        (self.path / META).write_text(json.dumps(meta, default=str))
        try:
            self.path.rename(self.target)
        except OSError:
            if lookup(self.target, *files) is None:  # not a lost race: a broken entry is in the way
                stale = Path(tempfile.mkdtemp(prefix=f".{self.target.name[:12]}-stale-", dir=self.target.parent))
                try:
                    self.target.rename(stale / "entry")
                    self.path.rename(self.target)
                except OSError:
                    # Another writer replaced it first: fine if what is there now is whole.
                    if lookup(self.target, *files) is None:
                        raise
                finally:
                    shutil.rmtree(stale, ignore_errors=True)
            # else: lost a race to an identical writer; theirs is as good
        return self.target


@contextmanager
def store(path: Path) -> Iterator[Staging]:
    """A staging directory for the entry at ``path``; removed on exit unless published."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name[:12]}-", dir=path.parent))
    try:
        yield Staging(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
