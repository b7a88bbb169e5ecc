"""``slimlab repair RUN_DIR``: a run whose journal was damaged made whole again.

The journal is the run's source of truth (slimlab.results); a line that is not a record (a disk
that filled, a file edited or copied in half) stops every resume and every table rewrite. Repair
keeps every good record, moves the bad lines (and every record of a variant whose samples repeat
an index: two sweeps wrote it at once, before runs were locked) aside into a file beside the
journal, and writes the Parquet tables again. A resume with the same spec and run id then
measures the variants whose records were set aside.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import SlimlabError
from .results import JOURNAL, MANIFEST, RunStore, atomic_write_bytes, journal_record, now_utc
from .runlock import RunLock


@dataclass(frozen=True)
class Repaired:
    run_dir: Path
    kept: int  # records kept in the journal
    set_aside: int  # lines moved aside
    variants_set_aside: tuple[str, ...]  # variants whose records went too (repeated sample indices)
    aside: Path | None  # where they went
    rows: int  # variant rows in the rebuilt tables

    def describe(self) -> str:
        lines = [f"{self.run_dir}: kept {self.kept} records, {self.rows} variant rows in the rebuilt tables"]
        if self.aside is not None:
            lines.append(f"moved {self.set_aside} lines aside into {self.aside}")
        if self.variants_set_aside:
            lines.append(f"set aside every record of {len(self.variants_set_aside)} variants whose samples "
                         f"repeated an index: {', '.join(self.variants_set_aside)}")
        if self.aside is not None:
            lines.append("resume the run (the same spec, --run-id " + self.run_dir.name + ") to measure "
                         "what was set aside")
        else:
            lines.append("the journal was whole: nothing set aside")
        return "\n".join(lines)


def _record(line: bytes) -> dict | None:
    """The journal record a line holds, or None when it holds none."""
    record = journal_record(line)
    return None if isinstance(record, str) else record


def repair(run_dir: str | Path) -> Repaired:
    """Keep the good records of ``run_dir``'s journal, move the rest aside, rebuild the tables."""
    run_dir = Path(run_dir)
    # A wrong path must not become a run: refused before the lock, which would make the directory.
    if not any((run_dir / name).is_file() for name in (MANIFEST, JOURNAL)):
        held = sorted(p.name for p in run_dir.iterdir())[:5] if run_dir.is_dir() else None
        what = "does not exist" if held is None else \
            f"holds no {MANIFEST} and no {JOURNAL} ({', '.join(held) or 'it is empty'})"
        raise SlimlabError(f"{run_dir} {what}: it is not a run directory; give a run's directory, "
                           f"DATA/runs/RUN_ID")
    lock = RunLock.acquire(run_dir, create=False)  # refused while a sweep writes the run
    try:
        path = run_dir / JOURNAL
        lines = path.read_bytes().splitlines(keepends=True) if path.is_file() else []
        good, bad = [], []
        for line in lines:
            if not line.strip():
                continue
            record = _record(line)
            whole = line if line.endswith(b"\n") else line + b"\n"
            (good if record is not None else bad).append((whole, record))
        seen, repeated = set(), set()
        for _line, record in good:
            if record["kind"] == "sample":
                pair = (record["data"]["variant_key"], record["data"].get("sample_index"))
                if pair in seen:
                    repeated.add(pair[0])
                seen.add(pair)
        bad += [(line, record) for line, record in good if record["data"]["variant_key"] in repeated]
        good = [(line, record) for line, record in good if record["data"]["variant_key"] not in repeated]
        aside = None
        if bad:
            aside = run_dir / f"journal-set-aside-{now_utc().strftime('%Y%m%dT%H%M%SZ')}.jsonl"
            with open(aside, "ab") as fh:
                fh.write(b"".join(line for line, _ in bad))
            atomic_write_bytes(path, b"".join(line for line, _ in good))
        store = RunStore.rebuild_tables(run_dir)
    finally:
        lock.release()
    return Repaired(run_dir, len(good), len(bad), tuple(sorted(repeated)), aside, len(store.rows))
