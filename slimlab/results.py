"""The results store: a run directory with a manifest, a journal and Parquet tables.

    DATA/runs/<run-id>/manifest.json    spec, schema version, tools, host, times
    DATA/runs/<run-id>/journal.jsonl    every finished variant row and every sample, appended
    DATA/runs/<run-id>/results.parquet  one row per variant (RESULT_SCHEMA)
    DATA/runs/<run-id>/samples.parquet  one row per timed start (SAMPLE_SCHEMA)
    DATA/runs/<run-id>/packages.parquet one row per (variant, Go package) (PACKAGE_SCHEMA)
    DATA/runs/<run-id>/sbom/*.cdx.json  a CycloneDX SBOM per variant (slimlab.supply; the row's sbom_path)

The journal is the source of truth and is appended as work finishes, so a sweep that is
killed loses nothing it measured; the Parquet files are rewritten from it, atomically,
after each variant. Re-opening a run by its id resumes it.

Run ids name directories, so they are checked (:func:`validate_run_id`). An automatic id
is the start time plus a random suffix and is created exclusively: two sweeps started in
the same second get two runs. Only an id the caller chose resumes an existing run.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import warnings
from datetime import UTC, datetime, timezone
from pathlib import Path

import polars as pl

from .errors import SlimlabError, control_characters
from .results_schema import (MACHINE_ERROR, PACKAGE_SCHEMA, RESULT_SCHEMA, SAMPLE_SCHEMA, SCHEMA_VERSION,
                             ResultsFileError, validate)
from .runlock import RunLock

MANIFEST = "manifest.json"
JOURNAL = "journal.jsonl"
RESULTS = "results.parquet"
SAMPLES = "samples.parquet"
PACKAGES = "packages.parquet"
CAPABILITIES = "capabilities.parquet"  # the probe matrix (slimlab.probe), when the spec asks for it


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def new_run_id() -> str:
    """The start time (sortable, readable) plus 24 random bits: ids of sweeps started in the
    same second differ; RunStore.open still creates an automatic id's directory exclusively."""
    return f"{now_utc().strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


# A run id names a directory and files (DATA/scheduled/<id>.json, reports/<id>.ipynb), and a file
# name holds at most 255 bytes (NAME_MAX) on Linux file systems: 200 leaves room for the suffixes.
MAX_RUN_ID_BYTES = 200
RUN_ID_RULE = (f"a run id is a non-empty name of at most {MAX_RUN_ID_BYTES} bytes without '/', '..' or "
               f"control characters, e.g. 'baseline-2'")


def validate_run_id(run_id: object) -> str:
    """``run_id`` if it can name a directory under ``DATA/runs/``; SlimlabError naming the rule otherwise.

    A ``/`` or ``..`` would put the run outside ``runs/`` (or merge it into another);
    control characters make names that terminals and reports cannot show.
    """
    if not isinstance(run_id, str):
        problem = f"is a {type(run_id).__name__}, not a string"
    elif not run_id:
        problem = "is empty"
    elif "/" in run_id:
        problem = "contains '/'"
    elif ".." in run_id or run_id == ".":
        problem = "contains '..'" if ".." in run_id else "is '.'"
    elif control_characters(run_id):
        problem = "contains a control character"
    elif len(run_id.encode("utf-8", "surrogateescape")) > MAX_RUN_ID_BYTES:
        problem = (f"is {len(run_id.encode('utf-8', 'surrogateescape'))} bytes long, more than a file name "
                   f"can take with the suffixes slimlab adds")
    else:
        return run_id
    raise SlimlabError(f"invalid run id {run_id!r}: it {problem}; {RUN_ID_RULE}")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    tmp.replace(path)


def atomic_write_parquet(frame: pl.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    frame.write_parquet(tmp)
    tmp.replace(path)


def check_resumable(data_dir: Path, run_id: str | None, spec_dict: dict) -> dict | None:
    """The manifest of run ``run_id`` if it exists and can be resumed with ``spec_dict``; None
    when there is no such run yet. SlimlabError when it cannot be resumed: asked before any
    work (tool discovery installs Go releases), so a wrong run id costs nothing."""
    if run_id is None:
        return None
    run_dir = Path(data_dir) / "runs" / validate_run_id(run_id)
    manifest_path = run_dir / MANIFEST
    if not manifest_path.is_file():
        return None
    manifest = _manifest(run_dir)
    if isinstance(manifest, str):
        raise SlimlabError(f"cannot resume run {run_id}: {manifest}. Its measurements are safe in {JOURNAL}; "
                           f"restore {MANIFEST} from a copy to resume it, or start a new run id")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise SlimlabError(
            f"run {run_id} was written with results schema {manifest.get('schema_version')}, "
            f"this slimlab writes {SCHEMA_VERSION}; start a new run id (the old run still loads, migrated)"
        )
    if manifest.get("spec") != spec_dict:
        raise SlimlabError(f"run {run_id} in {run_dir} was made with a different spec: "
                           f"{spec_difference(manifest.get('spec'), spec_dict)}")
    return manifest


def spec_difference(old: object, new: dict) -> str:
    """Which settings of the spec ``new`` differ from those a run was made with (``old``), and
    what to do: a setting the old run lacks was added to slimlab after it, so it was measured without
    it and cannot be continued under it."""
    old = old if isinstance(old, dict) else {}
    added = sorted(k for k in new if k not in old)
    changed = sorted(k for k in new if k in old and old[k] != new[k])
    dropped = sorted(k for k in old if k not in new)
    said = []
    if changed:
        said.append("it differs in " + ", ".join(f"{k} ({old[k]!r} then, {new[k]!r} now)" for k in changed))
    if dropped:
        said.append(f"it had {', '.join(dropped)}, which this spec has not")
    if added:
        one = len(added) == 1
        it = "it" if one else "them"
        said.append(f"{', '.join(added)} {'is a setting' if one else 'are settings'} this slimlab added after "
                    f"the run was made: its rows were measured without {it}, so they cannot be continued "
                    f"under {it}; start a new run id (the old run still loads)")
    if changed or dropped:
        said.append("resume it with the same spec, or start a new run id")
    return "; ".join(said)


class RunStore:
    """One run directory, open for appending results."""

    def __init__(self, run_dir: Path, manifest: dict, lock: RunLock | None = None) -> None:
        self.run_dir = run_dir
        self.manifest = manifest
        self._lock = lock  # the run's lock when the store took it itself: close() releases it
        self.rows: dict[str, dict] = {}
        self.samples: dict[str, list[dict]] = {}
        self.packages: dict[str, list[dict]] = {}  # variant key -> its package rows
        self._read_journal()
        self._journal = open(run_dir / JOURNAL, "a", encoding="utf-8")

    # -- opening -----------------------------------------------------------------------
    @classmethod
    def open(cls, data_dir: Path, run_id: str | None, spec_dict: dict, context: dict,
             lock: RunLock | None = None) -> RunStore:
        """Create the run, or resume it when ``run_id`` names an existing run with the same spec.

        ``run_id=None`` always creates a new run under a fresh automatic id. ``lock``: the run's
        lock when the caller took it already (before any work), who releases it; else it is taken
        here (RunLocked when another process writes the run) and close() releases it.
        """
        if run_id is None:
            run_id, run_dir = _create_fresh(Path(data_dir) / "runs")
        else:
            run_dir = Path(data_dir) / "runs" / validate_run_id(run_id)
        owns_lock = lock is None
        lock = lock if lock is not None else RunLock.acquire(run_dir)
        try:
            _remove_leftover_tmp(run_dir)  # the lock is ours: no other writer's file is in flight
            # Each session keeps what it found: a resumed run may meet other tools or another host.
            session = {"started_at": now_utc().isoformat(), **context}
            manifest = check_resumable(data_dir, run_id, spec_dict)
            if manifest is not None:
                manifest["sessions"].append(session)
            else:
                run_dir.mkdir(parents=True, exist_ok=True)
                manifest = {
                    "schema_version": SCHEMA_VERSION,
                    "run_id": run_id,
                    "spec": spec_dict,
                    "started_at": session["started_at"],
                    "ended_at": None,
                    "sessions": [session],
                    **{k: v for k, v in context.items() if k != "host"},
                    "host": context["host"],
                }
            store = cls(run_dir, manifest, lock if owns_lock else None)
            store.write_manifest()
            return store
        except BaseException:
            if owns_lock:
                lock.release()
            raise

    def _read_journal(self) -> None:
        path = self.run_dir / JOURNAL
        if not path.exists():
            return
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            # The last line was cut by a kill mid-write: drop it (that record is taken again),
            # so the next append starts a clean line and no torn line is ever left inside.
            data = data[: data.rfind(b"\n") + 1]
            with open(path, "r+b") as fh:
                fh.truncate(len(data))
        for number, line in enumerate(data.split(b"\n")[:-1] if data else [], 1):
            if not line.strip():  # as repair: a blank line holds no record
                continue
            record = journal_record(line)
            if isinstance(record, str):
                raise SlimlabError(f"{path}:{number} is corrupt ({record}); `slimlab repair {self.run_dir}` "
                                   f"keeps the good records, moves the bad lines aside and rebuilds the "
                                   f"tables; a resume then measures what was lost")
            if record["kind"] == "row":
                self.rows[record["data"]["variant_key"]] = record["data"]
            elif record["kind"] == "sample":
                self.samples.setdefault(record["data"]["variant_key"], []).append(record["data"])
            elif record["kind"] == "packages":
                self.packages[record["data"]["variant_key"]] = record["data"]["rows"]
        check_unique_samples([s for samples in self.samples.values() for s in samples], self.run_dir)

    # -- appending -----------------------------------------------------------------------
    def done(self, key: str) -> bool:
        """Whether the variant has its row: a machine_error row does not count (a resume retries it)."""
        return key in self.rows and self.rows[key].get("status") != MACHINE_ERROR

    def sample_count(self, key: str) -> int:
        return len(self.samples.get(key, []))

    def add_sample(self, sample: dict) -> None:
        self.samples.setdefault(sample["variant_key"], []).append(sample)
        self._append("sample", sample, sync=False)

    def add_packages(self, key: str, rows: list[dict]) -> None:
        """The package sizes of a variant (written to packages.parquet once its row is done)."""
        run_id = self.manifest["run_id"]
        self.packages[key] = [{"run_id": run_id, "variant_key": key, **r} for r in rows]
        self._append("packages", {"variant_key": key, "rows": self.packages[key]}, sync=False)

    def add_row(self, row: dict) -> None:
        """A variant is finished: journal it and refresh the Parquet tables."""
        self.rows[row["variant_key"]] = row
        self._append("row", row, sync=True)
        self.write_tables()

    def _append(self, kind: str, data: dict, sync: bool) -> None:
        self._journal.write(json.dumps({"kind": kind, "data": data}, default=str) + "\n")
        self._journal.flush()  # in the kernel now: survives a killed sweep
        if sync:
            os.fsync(self._journal.fileno())  # and the disk: survives a crashed machine

    def write_tables(self) -> None:
        atomic_write_parquet(results_frame(self.rows.values()), self.run_dir / RESULTS)
        kept = [s for key in self.rows for s in self.samples.get(key, [])]
        check_unique_samples(kept, self.run_dir)
        atomic_write_parquet(pl.DataFrame(kept, schema=SAMPLE_SCHEMA), self.run_dir / SAMPLES)
        packages = [p for key in self.rows for p in self.packages.get(key, [])]
        atomic_write_parquet(pl.DataFrame(packages, schema=PACKAGE_SCHEMA), self.run_dir / PACKAGES)

    @classmethod
    def rebuild_tables(cls, run_dir: Path) -> RunStore:
        """The run's Parquet tables written again from its journal (slimlab repair): the store as
        read, closed. The caller holds the run's lock."""
        store = cls(run_dir, {})
        try:
            store.write_tables()
        finally:
            store._journal.close()
        return store

    def write_manifest(self) -> None:
        atomic_write_bytes(self.run_dir / MANIFEST, json.dumps(self.manifest, indent=2, default=str).encode())

    def close(self, ended: bool) -> None:
        """The manifest and the tables written a last time; the journal and a lock the store took
        are let go however that went (a full disk: the journal has every record already)."""
        try:
            self.manifest["sessions"][-1]["ended_at"] = now_utc().isoformat()
            if ended:
                self.manifest["ended_at"] = now_utc().isoformat()
            self.write_manifest()
            self.write_tables()
        finally:
            try:
                self._journal.close()
            finally:
                if self._lock is not None:
                    self._lock.release()


JOURNAL_KINDS = ("row", "sample", "packages")


def journal_record(line: bytes) -> dict | str:
    """The record a journal line holds, or what is wrong with it (a resume and slimlab.repair judge
    lines alike: what one refuses the other sets aside)."""
    try:
        record = json.loads(line)
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except json.JSONDecodeError:
        return "not a JSON record"
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not a record"
    if record.get("kind") not in JOURNAL_KINDS:
        return f"a record of kind {record.get('kind')!r}, not one of {', '.join(JOURNAL_KINDS)}"
    data = record.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("variant_key"), str):
        return "a record without its data's variant_key"
    if record["kind"] == "sample" and not isinstance(data.get("sample_index"), int):
        return "a sample without its sample_index"
    if record["kind"] == "packages" and not isinstance(data.get("rows"), list):
        return "a packages record without its rows"
    return record


def check_unique_samples(samples: list[dict], run_dir: Path) -> None:
    """SlimlabError when two samples share (variant_key, sample_index): two sweeps wrote the run at
    once (before runs were locked), and which start is which variant's can no longer be told."""
    seen, twice = set(), []
    for sample in samples:
        pair = (sample["variant_key"], sample["sample_index"])
        if pair in seen:
            twice.append(pair)
        seen.add(pair)
    if twice:
        shown = ", ".join(f"{key} #{index}" for key, index in twice[:3])
        more = ", ..." if len(twice) > 3 else ""
        raise SlimlabError(f"{run_dir}: {len(twice)} samples repeat a (variant_key, sample_index) pair "
                           f"({shown}{more}): two sweeps wrote this run at once. `slimlab repair {run_dir}` "
                           f"moves those variants' records aside so a resume measures them again, or start "
                           f"a new run id")


def _remove_leftover_tmp(run_dir: Path) -> None:
    """The temporary files of atomic writes a killed sweep left (``.NAME.tmpPID``)."""
    for leftover in run_dir.glob(".*.tmp*"):
        leftover.unlink(missing_ok=True)


def _create_fresh(runs: Path) -> tuple[str, Path]:
    """A new automatic run id and its directory, made with mkdir's O_EXCL semantics."""
    runs.mkdir(parents=True, exist_ok=True)
    while True:
        run_id = new_run_id()
        try:
            (runs / run_id).mkdir()
        except FileExistsError:  # another sweep drew the same id in the same second: draw again
            continue
        return run_id, runs / run_id


def results_frame(rows) -> pl.DataFrame:
    rows = list(rows)
    for row in rows:
        if isinstance(row.get("measured_at"), str):
            row["measured_at"] = datetime.fromisoformat(row["measured_at"])
    return pl.DataFrame(rows, schema=RESULT_SCHEMA)


# -- reading ---------------------------------------------------------------------------
class DataWarning(UserWarning):
    """A file of a data directory that cannot be read (corrupt, or a run cut short) and was
    skipped: the loaders go on with the rest and say which file it was."""


def _manifest(run_dir: Path) -> dict | str:
    """The run's manifest, or what is wrong with it (a half-written run: missing, cut JSON)."""
    file = run_dir / MANIFEST
    if not file.is_file():
        left = ", ".join(sorted(p.name for p in run_dir.iterdir())) or "nothing"
        return f"{run_dir}: no {MANIFEST} (a run cut short before it was written; it holds {left})"
    try:
        manifest = json.loads(file.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return f"{file}: not valid JSON ({exc}): truncated or overwritten"
    if not isinstance(manifest, dict):
        return f"{file}: a JSON {type(manifest).__name__}, not a manifest object"
    return manifest


DATA_ENV = "SLIMLAB_DATA"  # the data directory when none is given: `slimlab lab` and `slimlab schedule` set it


def data_dir(path: str | Path | None = None) -> Path:
    """``path``, or when None the data directory: $SLIMLAB_DATA, else ``data`` in the working
    directory. Notebooks default to None because their working directory differs: JupyterLab
    runs a kernel in the notebook's folder, papermill in the caller's; `slimlab lab` and
    `slimlab schedule` set SLIMLAB_DATA to the absolute data directory for both."""
    return Path(path) if path is not None else Path(os.environ.get(DATA_ENV) or "data")


def run_dirs(path: str | Path | None = None) -> list[Path]:
    """The run directories under ``path``: the run itself, or every run of a data dir
    (None: :func:`data_dir`).

    In a data directory, a run whose manifest is missing or unreadable is skipped with a
    DataWarning naming it; a run directory given alone must be readable."""
    path = data_dir(path)
    if (path / MANIFEST).is_file():
        manifest = _manifest(path)
        if isinstance(manifest, str):
            raise SlimlabError(manifest)
        return [path]
    runs = path / "runs"
    found, skipped = [], []
    for run_dir in sorted(runs.iterdir()) if runs.is_dir() else []:
        if not run_dir.is_dir() or run_dir.name.startswith("."):
            continue
        manifest = _manifest(run_dir)
        if isinstance(manifest, str):
            warnings.warn(manifest, DataWarning, stacklevel=3)
            skipped.append(run_dir.name)
        else:
            found.append(run_dir)
    if not found:
        unreadable = f" (unreadable runs skipped: {', '.join(skipped)})" if skipped else ""
        raise SlimlabError(f"{path} is neither a run directory (with {MANIFEST}) nor a data directory with "
                           f"runs/{unreadable}")
    return found


def _read(path: Path, name: str, schema: dict | None) -> pl.DataFrame:
    """A table of a run; empty when it is not there yet, and empty with a DataWarning when
    it is not Parquet (a disk filled, a file copied in half): the other runs still load."""
    file = path / name
    if not file.is_file():
        return pl.DataFrame(schema=schema)
    try:
        return pl.read_parquet(file)
    except (pl.exceptions.PolarsError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        warnings.warn(f"{file}: not a readable Parquet file ({reason})", DataWarning, stacklevel=3)
        return pl.DataFrame(schema=schema)


# Flags of the go command (and of tinygo build) that start a new argv word; anything else
# after "-ldflags=-s" (such as "-w") belonged to the previous word. Schema 2 joined argv
# words with spaces.
_GO_FLAG = re.compile(r"^-(a|n|v|x|race|msan|asan|trimpath|work|linkshared|modcacherw|compiler|no-debug|"
                      r"(buildmode|ldflags|gcflags|gccgoflags|asmflags|tags|mod|modfile|pgo|buildvcs|"
                      r"installsuffix|overlay|p|toolexec|o|opt|gc|scheduler|panic|target|size|stack-size)=.*)$")
# "NAME=value" items of schema 2's space-joined build_env (a value may hold spaces).
_ENV_ITEM = re.compile(r"\s+(?=[A-Za-z_][A-Za-z0-9_]*=)")


def split_v2_flags(joined: str | None) -> list[str] | None:
    """Schema 2's space-joined flags back into argv words (``-ldflags=-s -w`` stays one)."""
    if joined is None:
        return None
    words: list[str] = []
    for token in joined.split():
        after_compiler = bool(words) and words[-1] == "-compiler"
        if not words or _GO_FLAG.match(token) or after_compiler:
            words.append(token)
        else:
            words[-1] += " " + token
    return words


def split_v2_env(joined: str | None) -> list[str] | None:
    return None if joined is None else [item for item in _ENV_ITEM.split(joined.strip()) if item]


def v2_variant_key(frame: pl.DataFrame) -> pl.DataFrame:
    """Schema 2's five-axis keys with the base axis schema 3 added ("none": no image)."""
    return frame.with_columns((pl.col("variant_key") + "|none").alias("variant_key"))


# The Go release in `go version`'s line, e.g. 'go version go1.26.8 linux/amd64' -> 'go1.26.8'.
_GO_VERSION_LINE = r"^go version (go\S+) "
SCHEMA_1_PACKAGES = "not recorded: results schema 1 had no package sizes"


def _migrate_1_to_2(frame: pl.DataFrame) -> pl.DataFrame:
    """Schema 2 only added columns. Schema 1 knew one post-link chain, "none", and one compiler,
    gc, so what they imply is filled in: no post-link steps (the size before them is the size),
    no UPX, and the build info's Go version (gc writes its own release, the one `go version`
    printed). The rest needs the binary, which a run does not keep: those columns stay null
    (results_schema.SCHEMA_1_LACKS)."""
    built = pl.col("size_bytes").is_not_null()
    empty = pl.lit([], dtype=pl.List(pl.String))
    return frame.with_columns(
        empty.alias("postlink_steps"),
        pl.when(built).then(pl.col("size_bytes")).alias("size_before_postlink_bytes"),
        pl.when(built).then(pl.lit([], dtype=pl.List(pl.Int64))).alias("postlink_step_bytes"),
        pl.when(built).then(pl.lit([], dtype=pl.List(pl.Float64))).alias("postlink_step_seconds"),
        pl.when(built).then(empty).alias("postlink_removed_sections"),
        pl.when(built).then(pl.lit(False)).alias("upx_packed"),
        pl.when(built).then(pl.col("toolchain_version").str.extract(_GO_VERSION_LINE)).alias("go_version"),
        pl.when(built).then(pl.lit(SCHEMA_1_PACKAGES)).alias("packages_source"),
        pl.lit(2, dtype=pl.Int32).alias("schema_version"),
    )


def _migrate_2_to_3(frame: pl.DataFrame) -> pl.DataFrame:
    return v2_variant_key(frame).with_columns(
        pl.col("flags").map_elements(split_v2_flags, return_dtype=pl.List(pl.String)),
        pl.col("build_env").map_elements(split_v2_env, return_dtype=pl.List(pl.String)),
        pl.lit("none").alias("base"),
        pl.lit(3, dtype=pl.Int32).alias("schema_version"),
    )


# schema version -> the step that brings a frame of that version to the next one.
MIGRATIONS = {1: _migrate_1_to_2, 2: _migrate_2_to_3}


def migrate(frame: pl.DataFrame, source: Path | None = None) -> pl.DataFrame:
    """A results frame of any older schema version, brought up to SCHEMA_VERSION."""
    if frame.is_empty() or "schema_version" not in frame.columns:
        return frame
    where = f" in {source}" if source else ""
    if not frame.schema["schema_version"].is_integer():
        raise ResultsFileError(f"column schema_version{where} is {frame.schema['schema_version']}, not a "
                               "number: the file is damaged or not slimlab's: refused before use")
    version = frame["schema_version"].max()
    if version > SCHEMA_VERSION:
        raise SlimlabError(f"results of schema {version}{where}; this slimlab reads up to {SCHEMA_VERSION}: "
                           "upgrade slimlab (a newer checkout, then `make setup`)")
    while version < SCHEMA_VERSION:
        if version not in MIGRATIONS:
            raise SlimlabError(f"results of schema {version}{where} cannot be migrated: this slimlab migrates "
                               f"schema {min(MIGRATIONS)} to {SCHEMA_VERSION}")
        frame = MIGRATIONS[version](frame)
        version += 1
    # Every column of this schema, typed: those an older run never recorded are null (see
    # results_schema.SCHEMA_1_LACKS), as in a current row whose stage did not run.
    missing = [pl.lit(None, dtype).alias(name) for name, dtype in RESULT_SCHEMA.items() if name not in frame.columns]
    return frame.with_columns(missing) if missing else frame


def _utc(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)  # now_utc() wrote it: UTC


def _session_time(text: object) -> datetime | None:
    try:
        return _utc(datetime.fromisoformat(str(text)))
    except ValueError:
        return None


def fill_host_fingerprints(frame: pl.DataFrame, manifest: dict) -> pl.DataFrame:
    """``frame`` (one run's rows) with every null ``host_fingerprint`` filled from the run's
    manifest: rows written before the column, or by a sweep that measured them where it ran
    (the client), were measured on the host of the session that wrote them. A row's session is
    the last one started before its ``measured_at``; a row without that time gets the manifest's
    own host (the first session's). A manifest without a host record leaves the row null."""
    if "host_fingerprint" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, pl.String).alias("host_fingerprint"))
    if frame.is_empty() or frame["host_fingerprint"].null_count() == 0:
        return frame
    from .environment import host_fingerprint

    def of(host) -> str | None:
        return host_fingerprint(host) if isinstance(host, dict) else None

    default = of(manifest.get("host"))
    sessions = sorted(((when, of(s["host"])) for s in manifest.get("sessions") or []
                       if isinstance(s, dict) and s.get("host") and (when := _session_time(s.get("started_at")))),
                      key=lambda session: session[0])

    def fingerprint(measured_at: datetime | None) -> str | None:
        found = default
        for started, session_fingerprint in sessions:
            if measured_at is not None and started <= _utc(measured_at):
                found = session_fingerprint
        return found

    times = frame["measured_at"].to_list() if "measured_at" in frame.columns else [None] * frame.height
    filled = pl.Series("_fp", [fingerprint(t) for t in times], dtype=pl.String)
    return frame.with_columns(pl.col("host_fingerprint").fill_null(filled))


def load(path: str | Path | None = None) -> pl.DataFrame:
    """The results of one run directory, or of every run in a data directory, as one frame.

    Runs written by an older schema are migrated on load (see MIGRATIONS), and rows without a
    host fingerprint get their session's (fill_host_fingerprints)."""
    frames = [validate(fill_host_fingerprints(migrate(_read(d, RESULTS, RESULT_SCHEMA), d / RESULTS),
                                              _manifest(d)), RESULT_SCHEMA, d / RESULTS)
              for d in run_dirs(path)]
    return pl.concat(frames, how="diagonal_relaxed")


def _keyed(run_dir: Path, name: str, schema: dict) -> pl.DataFrame:
    """A per-variant table of a run, its variant keys brought up to this schema's
    (schemas 1 and 2 keyed variants by five axes)."""
    frame = _read(run_dir, name, schema)
    version = _manifest(run_dir).get("schema_version")  # run_dirs() has read it once already
    return validate(v2_variant_key(frame) if version in (1, 2) and not frame.is_empty() else frame, schema,
                    run_dir / name)


def load_samples(path: str | Path | None = None) -> pl.DataFrame:
    return pl.concat([_keyed(d, SAMPLES, SAMPLE_SCHEMA) for d in run_dirs(path)], how="diagonal_relaxed")


def load_packages(path: str | Path | None = None) -> pl.DataFrame:
    """Code bytes per Go package per variant (PACKAGE_SCHEMA), of one run or every run."""
    return pl.concat([_keyed(d, PACKAGES, PACKAGE_SCHEMA) for d in run_dirs(path)], how="diagonal_relaxed")


def write_capabilities(run_dir: Path, frame: pl.DataFrame) -> None:
    atomic_write_parquet(frame, Path(run_dir) / CAPABILITIES)


def load_capabilities(path: str | Path | None = None) -> pl.DataFrame:
    """The capability matrices (slimlab.probe) of one run or every run that probed."""
    frames = [_read(d, CAPABILITIES, None).with_columns(pl.lit(d.name).alias("run_id"))
              for d in run_dirs(path) if (d / CAPABILITIES).is_file()]
    frames = [f for f in frames if f.width > 1]  # a corrupt matrix (warned) left its run id only
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def manifest_hosts(manifests) -> dict[str, dict]:
    """host fingerprint -> host record (environment.host) of every host the ``manifests`` name:
    each run's, each session's, and those a session lists under ``hosts`` (other machines that
    measured for it, e.g. Dask workers). For naming the hosts of rows by their fingerprint."""
    from .environment import host_fingerprint

    found: dict[str, dict] = {}
    for manifest in manifests or []:
        if not isinstance(manifest, dict):
            continue
        sessions = [s for s in manifest.get("sessions") or [] if isinstance(s, dict)]
        records = [manifest.get("host"), *(s.get("host") for s in sessions),
                   *(h for s in sessions for h in s.get("hosts") or [])]
        for record in records:
            if isinstance(record, dict):
                found.setdefault(host_fingerprint(record), record)
    return found


def busy_run_ids(manifests) -> set[str]:
    """The runs whose measurement ran on a busy host: a session of theirs (or a worker that
    measured for it) carries a busy-host warning (environment.busy_host_warnings)."""
    found = set()
    for manifest in manifests or []:
        if not isinstance(manifest, dict):
            continue
        for session in manifest.get("sessions") or []:
            if not isinstance(session, dict):
                continue
            measured = session.get("measurement") or {}
            workers = [h for h in session.get("hosts") or [] if isinstance(h, dict)]
            if (isinstance(measured, dict) and measured.get("warnings")) or any(h.get("warnings") for h in workers):
                found.add(str(manifest.get("run_id") or ""))
    return found


def vfs_run_ids(manifests) -> set[str]:
    """The runs whose containers ran on an engine with vfs storage (a session's ``engine``
    record): vfs copies an image's whole file system per container, so their container start-up
    grows with the base and is not what a production (overlay2) engine shows."""
    found = set()
    for manifest in manifests or []:
        if not isinstance(manifest, dict):
            continue
        for session in manifest.get("sessions") or []:
            engine = session.get("engine") if isinstance(session, dict) else None
            if isinstance(engine, dict) and engine.get("storage_driver") == "vfs":
                found.add(str(manifest.get("run_id") or ""))
    return found


def load_manifests(path: str | Path | None = None) -> list[dict]:
    """The manifests of one run or every readable run of a data directory."""
    return [_manifest(d) for d in run_dirs(path)]


def manifest_noise_floors(manifests) -> dict[str, dict]:
    """run id -> the A/A noise floor its measurement observed (the latest session that measured):
    ``pairs`` (binaries whose samples were split in two halves of alternate bursts), the median
    and the 95th percentile of |ratio - 1| between the halves (``abs_change_median``,
    ``abs_change_p95``), and ``false_verdicts``, the halves a faster/slower verdict called apart
    (slimlab.sampling.noise_floor). Runs measured before it was recorded are left out."""
    found: dict[str, dict] = {}
    for manifest in manifests or []:
        if not isinstance(manifest, dict):
            continue
        for session in manifest.get("sessions") or []:
            measured = session.get("measurement") if isinstance(session, dict) else None
            floor = measured.get("noise_floor") if isinstance(measured, dict) else None
            if isinstance(floor, dict) and floor.get("pairs"):
                found[str(manifest.get("run_id"))] = floor
    return found


def container_floors(manifests) -> dict[str, dict]:
    """run id -> the engine's floor its latest measuring session recorded (``measurement.container_floor``,
    for the runs that timed containers): a static no-op on scratch timed among the images: ``error``
    (it could not be had), and per kind of image timed (``kinds``: "cli", "server") its ``image`` and
    ``network``, median_ms, ci_low_ms, ci_high_ms, n, cpu_ms_median, samples_ms and error."""
    found: dict[str, dict] = {}
    for manifest in manifests or []:
        if not isinstance(manifest, dict) or not manifest.get("run_id"):
            continue
        for session in manifest.get("sessions") or []:
            measured = (session.get("measurement") or {}) if isinstance(session, dict) else {}
            floor = measured.get("container_floor")
            if isinstance(floor, dict):
                found[str(manifest["run_id"])] = floor
    return found
