"""The runs index of a data directory: ``DATA/runs.parquet``, one row per run.

What a history needs to line runs up and say what changed between them: the spec's hash,
the host's fingerprint, the tools' versions, start and end, how the run ended and how many
variants ended in each status. Every sweep records its run when it closes, interrupted or
not; a scheduled notebook (slimlab.schedule) records its run too, failed or not.

The index is derived data: the run directories (and the scheduled runs' records under
``DATA/scheduled/``) are the truth, and :func:`rebuild_index` makes it again from them.
:func:`load_index` does so when the file is missing, unreadable or older than a run.
Writers take an ``fcntl`` lock (``DATA/.runs.lock``) around read-modify-write and replace the
file atomically, so two sweeps closing at once both land and a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import sys
from datetime import datetime
from pathlib import Path

import polars as pl

from .environment import host_fingerprint  # one definition for the index and the rows
from .errors import SlimlabError
from .results import MANIFEST, RESULTS, atomic_write_parquet, run_dirs
from .results_schema import STATUSES

INDEX = "runs.parquet"
LOCK = ".runs.lock"
SCHEDULED = "scheduled"  # DATA/scheduled/<run-id>.json: what a scheduled run did (slimlab.schedule)

RUN_STATUSES = ("complete", "interrupted", "failed")
SOURCES = ("sweep", "schedule")

TOOL = pl.Struct({"name": pl.String, "version": pl.String})
UTC = pl.Datetime("us", "UTC")
INDEX_SCHEMA = {
    "run_id": pl.String,
    "spec_hash": pl.String,  # sha256 of the canonical (sorted-key JSON) spec dict
    "spec_name": pl.String,
    "host_fingerprint": pl.String,  # environment.host_fingerprint: short sha256 of HOST_FACTS
    "hostname": pl.String,
    "tools": pl.List(TOOL),  # the manifest's tool versions (python, polars, toolchain:go, postlink:upx, ...)
    "started_at": UTC,
    "ended_at": UTC,
    # The sum of its sessions' durations (a resumed run's days between them left out); null when a
    # session never ended (killed) or the index predates the column.
    "sweep_seconds": pl.Float64,
    "status": pl.String,  # one of RUN_STATUSES
    "variants": pl.Int64,  # rows in results.parquet
    **{f"n_{s}": pl.Int64 for s in STATUSES},
    "builds_cached": pl.Int64,  # variants whose binary came from the artifact cache
    "source": pl.String,  # one of SOURCES
    "notebook": pl.String,  # scheduled runs: the notebook, its executed copy and its HTML
    "executed_notebook": pl.String,
    "report": pl.String,
    "error": pl.String,  # failed runs: why
    "run_dir": pl.String,
}


def spec_hash(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def run_row(run_dir: Path) -> dict:
    """The index row of one run directory, from its manifest and results.parquet."""
    manifest = json.loads((run_dir / MANIFEST).read_text())
    last = manifest["sessions"][-1] if manifest.get("sessions") else {}
    host = last.get("host") or manifest.get("host") or {}
    tools = last.get("tools") or manifest.get("tools") or {}  # what the last session ran with
    # A session that raised (sweep() says why in it) failed; one stopped by Ctrl-C or a kill
    # was interrupted; a run whose sessions got to the end is complete.
    error = None if manifest.get("ended_at") else last.get("error")
    status = "complete" if manifest.get("ended_at") else "failed" if error else "interrupted"
    row = {
        "run_id": manifest["run_id"], "spec_hash": spec_hash(manifest["spec"]),
        "spec_name": manifest["spec"].get("name"), "host_fingerprint": host_fingerprint(host),
        "hostname": host.get("hostname"), "tools": [{"name": k, "version": str(v)} for k, v in tools.items()],
        "started_at": _time(manifest.get("started_at")),
        "ended_at": _time(manifest.get("ended_at") or last.get("ended_at")),
        "status": status, "error": error, "run_dir": str(run_dir.resolve()),
        "sweep_seconds": _sweep_seconds(manifest.get("sessions") or []),
    }
    try:
        results = pl.read_parquet(run_dir / RESULTS, columns=["status", "build_cached"])
    except (OSError, pl.exceptions.PolarsError):  # none yet, or corrupt: the counts stay unknown
        return row
    counts = dict(results["status"].value_counts().iter_rows())
    row.update({f"n_{s}": counts.get(s, 0) for s in STATUSES}, variants=results.height,
               builds_cached=int(results["build_cached"].fill_null(False).sum()))
    return row


def _sweep_seconds(sessions: list[dict]) -> float | None:
    """The seconds a run's sessions took together, or None when one of them never ended."""
    spans = [(_time(s.get("started_at")), _time(s.get("ended_at"))) for s in sessions]
    if not spans or any(start is None or end is None for start, end in spans):
        return None
    return sum((end - start).total_seconds() for start, end in spans)


def _frame(rows: list[dict]) -> pl.DataFrame:
    frame = pl.DataFrame(rows, schema=INDEX_SCHEMA).with_columns(pl.col("source").fill_null("sweep"))
    return frame.sort("started_at", "run_id", nulls_last=True)


@contextlib.contextmanager
def _locked(data_dir: Path):
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if we are killed
        yield


def _read(data_dir: Path) -> pl.DataFrame:
    # One open, then parse: polars opens a path more than once, and a writer's rename between
    # two opens gives it the footer of one file and the pages of another.
    frame = pl.read_parquet(io.BytesIO((data_dir / INDEX).read_bytes()))
    # An index written before a column existed (n_machine_error, for one) has it as unknown.
    missing = [pl.lit(None, dtype).alias(name) for name, dtype in INDEX_SCHEMA.items()
               if name not in frame.columns]
    if not missing:
        return frame
    extra = [c for c in frame.columns if c not in INDEX_SCHEMA]
    return frame.with_columns(missing).select(*INDEX_SCHEMA, *extra)


def _write(frame: pl.DataFrame, data_dir: Path) -> None:
    atomic_write_parquet(frame, data_dir / INDEX)


def _scheduled_records(data_dir: Path) -> list[dict]:
    folder = data_dir / SCHEDULED
    records = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # half-written by a killed run: its run directory (if any) still counts
        records.append({**record, "started_at": _time(record.get("started_at")),
                        "ended_at": _time(record.get("ended_at"))})
    return records


def _merge(rows: dict[str, dict], new: dict) -> None:
    """``new`` over the row of its run id: its known values win, the rest is kept."""
    old = rows.get(new["run_id"], {})
    merged = {**old, **{k: v for k, v in new.items() if v is not None}}
    if new.get("status") == "complete" and new.get("source") != "schedule":
        merged["error"] = None  # a failed run resumed to its end
    rows[new["run_id"]] = merged


def _collect(data_dir: Path) -> pl.DataFrame:
    rows: dict[str, dict] = {}
    try:
        found = run_dirs(data_dir)
    except SlimlabError:  # no runs yet (scheduled records may still exist)
        found = []
    for run_dir in found:
        try:
            _merge(rows, run_row(run_dir))
        except (OSError, ValueError, KeyError) as exc:  # a corrupt manifest: named, the rest still indexed
            print(f"slimlab: runs index: skipped {run_dir}: {type(exc).__name__}: {exc}", file=sys.stderr)
    for record in _scheduled_records(data_dir):
        _merge(rows, record)
    return _frame(list(rows.values()))


def rebuild_index(data_dir: str | Path) -> pl.DataFrame:
    """Make ``DATA/runs.parquet`` again from the run directories and scheduled runs' records."""
    data_dir = Path(data_dir)
    with _locked(data_dir):
        frame = _collect(data_dir)
        _write(frame, data_dir)
    return frame


def _stale(data_dir: Path, index: pl.DataFrame) -> bool:
    """Whether a run is newer than the index or missing from it (a sweep killed with SIGKILL
    never closed, so never recorded itself)."""
    built = (data_dir / INDEX).stat().st_mtime
    runs = data_dir / "runs"
    manifests = list(runs.glob(f"*/{MANIFEST}")) if runs.is_dir() else []
    records = list((data_dir / SCHEDULED).glob("*.json")) if (data_dir / SCHEDULED).is_dir() else []
    known = set(index["run_id"].to_list())
    return any(p.stat().st_mtime > built for p in manifests + records) or any(
        p.parent.name not in known for p in manifests) or any(p.stem not in known for p in records)


def load_index(data_dir: str | Path = "data") -> pl.DataFrame:
    """The runs index (INDEX_SCHEMA), rebuilt first when missing, unreadable or stale."""
    data_dir = Path(data_dir)
    try:
        index = _read(data_dir)
        if not _stale(data_dir, index):
            return index
    except FileNotFoundError:
        pass
    except (OSError, pl.exceptions.PolarsError) as exc:
        print(f"slimlab: {data_dir / INDEX} is unreadable ({type(exc).__name__}); rebuilding it", file=sys.stderr)
    return rebuild_index(data_dir)


def record(data_dir: str | Path, row: dict) -> None:
    """Put ``row`` (a dict with ``run_id`` and any INDEX_SCHEMA columns) into the index, merged
    with what it has for that run. Never raises: a sweep's results stand without the index,
    and load_index makes it again from the run directories."""
    data_dir = Path(data_dir)
    try:
        with _locked(data_dir):
            try:
                current = _read(data_dir)
            except (OSError, pl.exceptions.PolarsError):  # missing or torn: start again from the runs
                current = _collect(data_dir)
            rows = {r["run_id"]: r for r in current.iter_rows(named=True)}
            _merge(rows, row)
            _write(_frame(list(rows.values())), data_dir)
    except (OSError, pl.exceptions.PolarsError) as exc:
        print(f"slimlab: runs index not updated ({type(exc).__name__}: {exc}); "
              f"slimlab.history.rebuild_index({str(data_dir)!r}) makes it again", file=sys.stderr)


def seconds_per_variant(data_dir: str | Path) -> float | None:
    """The wall time a variant takes, as the finished sweeps the index of ``data_dir`` lists took: the
    median over those runs of their sessions' seconds per variant; or None when it lists none. A run
    resumed days later counts only the time its sessions ran. Reads the index as it is: no rebuild
    (runs indexed before sessions were timed count by their span, when no run has sessions timed)."""
    try:
        index = _read(Path(data_dir))
    except (OSError, pl.exceptions.PolarsError):
        return None
    done = index.filter((pl.col("status") == "complete") & (pl.col("source") != "schedule")
                        & (pl.col("variants") > 0))
    timed = done.drop_nulls("sweep_seconds")
    if not timed.is_empty():
        seconds = timed["sweep_seconds"]
    else:
        done = done.drop_nulls(["started_at", "ended_at"])
        seconds = (done["ended_at"] - done["started_at"]).dt.total_seconds()
        timed = done
    if timed.is_empty():
        return None
    return float((seconds / timed["variants"]).median())


def record_run(data_dir: str | Path, run_dir: Path) -> None:
    """A sweep closed: its run directory's row into the index."""
    try:
        row = run_row(Path(run_dir))
    except (OSError, ValueError, KeyError) as exc:
        print(f"slimlab: runs index not updated for {run_dir}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return
    record(data_dir, row)
