"""The run store: runs, epochs, metrics and artifacts in one directory (SQLite + files).

One writer process and any number of reader processes may use a store at once: the
database is in WAL mode, write transactions take the lock up front (``BEGIN
IMMEDIATE``), and every file is complete, fsynced and renamed to its final name before
the transaction that references it commits. A crash at any moment leaves at worst
orphan files, which :meth:`RunStore.check` reports and can remove. Each RunStore owns
one connection; open one per process (or thread).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import socket
import sqlite3
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from convscope.crashpoints import crash_point
from convscope.errors import ConvscopeError, LayerError
from convscope.files import ensure_folder
from convscope.naming import close_matches
from convscope.paths import DEFAULT_STORE_DIR
from convscope.store import files, validate
from convscope.store.errors import StoreError
from convscope.store.lookup import refresh_stale, resolve, select_runs
from convscope.store.records import (
    ARTIFACT_SELECT,
    CANONICAL_METRICS,
    ArtifactRecord,
    CheckReport,
    EpochRecord,
    RunRecord,
    RunStatus,
    artifact_from_row,
    json_number,
    metric_order,
)
from convscope.store.schema import connect, migrate, now_iso


def open_store(
    path: str | os.PathLike[str] = DEFAULT_STORE_DIR, *, create: bool = True
) -> RunStore:
    """Open the run store in directory ``path`` (created when ``create``), migrating it forward."""
    root = Path(path).expanduser()
    db_path = root / files.DB_NAME
    if not db_path.is_file():
        if root.exists() and not root.is_dir():
            raise StoreError(f"{root} is a file, not a run store directory; pass another --store")
        if not create:
            raise StoreError(
                f"no run store at {root}: train a model first "
                f"(`convscope train MODEL --data NAME --store {root}`) or pass --store DIR"
            )
        try:
            ensure_folder(root)
        except ConvscopeError as exc:
            raise StoreError(f"{exc}; pass another --store") from None
    conn = connect(db_path)
    try:
        migrate(conn, str(db_path))
    except BaseException:
        conn.close()
        raise
    return RunStore(root, conn)


def _torch_version() -> str | None:
    """torch's version without importing torch when it is not loaded yet."""
    torch = sys.modules.get("torch")
    if torch is not None:
        return str(torch.__version__)
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


class RunStore:
    """A directory of training runs; see :func:`open_store`."""

    def __init__(self, root: Path, conn: sqlite3.Connection) -> None:
        self.root = root
        self._conn = conn

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    def __enter__(self) -> RunStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection."""
        self._conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding the write lock from its start."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            crash_point("store.before-commit")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        crash_point("store.after-commit")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: several queries see the same snapshot."""
        conn = self._conn
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    def _require(self, run_id: str) -> None:
        """Fail unless a run with exactly this id exists."""
        if not self._conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone():
            ids = [row[0] for row in self._conn.execute("SELECT id FROM runs")]
            raise StoreError(
                f"no run with id {run_id!r} in {self.root}{close_matches(str(run_id), ids)}"
            )

    def _get(self, run_id: str) -> RunRecord:
        """The run with exactly this id."""
        self._require(run_id)
        return select_runs(self._conn, "WHERE id = ?", (run_id,))[0]

    # --- runs -------------------------------------------------------------------------

    def create_run(
        self,
        *,
        name: str,
        model: str,
        dataset: str,
        config: Mapping[str, Any],
        study: str | None = None,
    ) -> RunRecord:
        """Record a new run (status running, this process's pid and host) and return it."""
        from convscope import __version__

        for label, value in (("name", name), ("model", model), ("dataset", dataset)):
            if not isinstance(value, str) or not value:
                raise StoreError(f"a run needs a non-empty {label}, not {value!r}")
        if study is not None and (not isinstance(study, str) or not study):
            raise StoreError(f"a study name must be a non-empty string, not {study!r}")
        text = validate.config_json(config)
        for _ in range(16):
            run_id, now = secrets.token_hex(4), now_iso()
            row = (run_id, name, study, model, dataset, text, RunStatus.RUNNING, now, now)
            row += (__version__, _torch_version(), os.getpid(), socket.gethostname())
            try:
                with self._write() as conn:
                    conn.execute(
                        "INSERT INTO runs (id, name, study, model, dataset, config, status, "
                        "created, updated, convscope_version, torch_version, pid, host) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        row,
                    )
            except sqlite3.IntegrityError:
                continue  # the random id is taken: draw another
            return self._get(run_id)
        raise StoreError(
            "could not draw a fresh run id; the store may be damaged (`convscope runs check`)"
        )

    def set_status(self, run_id: str, status: str) -> None:
        """Set a run's status; ``running`` also takes over the run for this process (resume)."""
        try:
            status = RunStatus(status)
        except ValueError:
            raise StoreError(
                f"unknown run status {status!r}; use one of {', '.join(RunStatus)}"
            ) from None
        self._require(run_id)
        now = now_iso()
        with self._write() as conn:
            if status is RunStatus.RUNNING:
                conn.execute(
                    "UPDATE runs SET status = ?, updated = ?, finished = NULL, pid = ?, host = ? "
                    "WHERE id = ?",
                    (status, now, os.getpid(), socket.gethostname(), run_id),
                )
            else:
                conn.execute(
                    "UPDATE runs SET status = ?, updated = ?, finished = ? WHERE id = ?",
                    (status, now, now, run_id),
                )

    def runs(self, study: str | None = None) -> list[RunRecord]:
        """Every run (or those of ``study``), oldest first."""
        where, params = ("WHERE study = ?", (study,)) if study is not None else ("", ())
        return refresh_stale(self._conn, select_runs(self._conn, where, params))

    def run_document(self, ref: str) -> dict[str, Any]:
        """What ``convscope runs show RUN --json`` prints: the run, its metrics and files."""
        record = self.run(ref)
        return record.to_dict() | {
            "metrics": self.metric_rows(record.id),
            "artifacts": [a.to_dict() for a in self.artifacts(record.id)],
        }

    def run(self, ref: str) -> RunRecord:
        """The run named by ``ref``: its id, a unique start of its id, or its unique name."""
        return refresh_stale(self._conn, [resolve(self._conn, ref, where=str(self.root))])[0]

    def studies(self) -> list[str]:
        """The names of the studies that have runs, sorted."""
        rows = self._conn.execute(
            "SELECT DISTINCT study FROM runs WHERE study IS NOT NULL ORDER BY study"
        )
        return [row[0] for row in rows]

    def runs_of_study(self, name: str) -> list[RunRecord]:
        """The runs of one study; an unknown study is an error listing close names."""
        studies = self.studies()
        if name not in studies:
            raise StoreError(f"no study {name!r} in {self.root}{close_matches(name, studies)}")
        return self.runs(study=name)

    def delete_run(self, ref: str, *, force: bool = False) -> RunRecord:
        """Delete a run given by exact id or name: its rows (one transaction), then its files."""
        record = refresh_stale(
            self._conn, [resolve(self._conn, ref, exact=True, where=str(self.root))]
        )[0]
        if record.status == RunStatus.RUNNING and not force:
            raise StoreError(
                f"run {record.id} ({record.name}) is running (pid {record.pid} on {record.host}); "
                "stop it first, or force the deletion"
            )
        with files.store_lock(self.root, exclusive=False):
            with self._write() as conn:
                conn.execute("DELETE FROM runs WHERE id = ?", (record.id,))
            files.remove_tree(self.root / files.run_dir(record.id))
        return record

    # --- writing epochs and arrays --------------------------------------------------

    def epochs(self, run_id: str) -> list[EpochRecord]:
        """The committed epochs of a run, in order."""
        self._require(run_id)
        rows = self._conn.execute(
            "SELECT run_id, epoch, seconds, committed FROM epochs WHERE run_id = ? ORDER BY epoch",
            (run_id,),
        )
        return [EpochRecord(*row) for row in rows]

    def commit_epoch(
        self,
        run_id: str,
        epoch: int,
        *,
        metrics: Mapping[str, float],
        arrays: Mapping[validate.ArrayKey, np.ndarray] | None = None,
        checkpoint: Callable[[Path], None] | None = None,
        seconds: float | None = None,
    ) -> None:
        """Record one epoch crash-safely: every file first, then one SQL transaction.

        Each file is written under a temporary name in its final directory, fsynced and
        renamed before the transaction that references it.

        ``arrays`` maps ``(kind, name)`` (e.g. ``("snapshot", "hidden")``) to arrays saved
        as ``.npy``; ``checkpoint(path)`` must write the checkpoint file at ``path``.
        If anything fails before the commit, the files written so far are removed and the
        error is raised again. An epoch is committed once.
        """
        epoch = validate.check_epoch(epoch)
        values = validate.check_metrics(metrics)
        items = validate.check_arrays(arrays)
        self._require(run_id)
        done = [e.epoch for e in self.epochs(run_id)]
        if epoch in done:
            raise StoreError(
                f"run {run_id} already has epoch {epoch}; an epoch is committed once "
                f"(the next one is {max(done) + 1})"
            )
        with files.store_lock(self.root, exclusive=False), files.FileBatch(self.root) as batch:
            for kind, name, array in items:
                batch.add_array(kind, name, files.array_path(run_id, epoch, kind, name), array)
            if checkpoint is not None:
                path = files.checkpoint_path(run_id, epoch)
                batch.add_file(files.CHECKPOINT_KIND, files.CHECKPOINT_NAME, path, checkpoint)
            batch.sync()
            now = now_iso()
            with self._write() as conn:
                try:
                    conn.execute(
                        "INSERT INTO epochs (run_id, epoch, seconds, committed) "
                        "VALUES (?, ?, ?, ?)",
                        (run_id, epoch, None if seconds is None else float(seconds), now),
                    )
                except sqlite3.IntegrityError as exc:
                    raise StoreError(
                        f"run {run_id}: epoch {epoch} was committed meanwhile"
                    ) from exc
                conn.executemany(
                    "INSERT INTO metrics (run_id, epoch, name, value) VALUES (?, ?, ?, ?)",
                    [(run_id, epoch, name, value) for name, value in values],
                )
                self._insert_files(run_id, epoch, batch.files, now)
                # From here on the files belong to the database: should COMMIT itself fail,
                # they stay as orphans rather than risk a row without its file.
                batch.keep()

    def _insert_files(
        self, run_id: str, epoch: int | None, written: list[files.WrittenFile], now: str
    ) -> None:
        """Insert artifact rows for written files (inside the caller's transaction)."""
        self._conn.executemany(
            "INSERT INTO artifacts (run_id, epoch, kind, name, path, sha256, bytes, dtype, shape, "
            "created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id,
                    epoch,
                    f.kind,
                    f.name,
                    str(f.path),
                    f.sha256,
                    f.bytes,
                    f.dtype,
                    None if f.shape is None else json.dumps(list(f.shape)),
                    now,
                )
                for f in written
            ],
        )
        self._conn.execute("UPDATE runs SET updated = ? WHERE id = ?", (now, run_id))

    def add_epoch_metrics(self, run_id: str, epoch: int, metrics: Mapping[str, float]) -> None:
        """Add (or overwrite) metrics of an epoch already committed, e.g. test_loss at the end."""
        epoch = validate.check_epoch(epoch)
        values = validate.check_metrics(metrics)
        self._require(run_id)
        with self._write() as conn:
            self._require_epoch(run_id, epoch)
            conn.executemany(
                "INSERT INTO metrics (run_id, epoch, name, value) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (run_id, epoch, name) DO UPDATE SET value = excluded.value",
                [(run_id, epoch, name, value) for name, value in values],
            )
            conn.execute("UPDATE runs SET updated = ? WHERE id = ?", (now_iso(), run_id))

    def _require_epoch(self, run_id: str, epoch: int) -> None:
        """Fail unless the epoch is committed."""
        row = self._conn.execute(
            "SELECT 1 FROM epochs WHERE run_id = ? AND epoch = ?", (run_id, epoch)
        ).fetchone()
        if not row:
            raise StoreError(f"run {run_id} has no committed epoch {epoch}; commit it first")

    def add_run_array(
        self, run_id: str, kind: str, name: str, array: np.ndarray, *, epoch: int | None = None
    ) -> ArtifactRecord:
        """Store one array atomically: run-level (e.g. probe labels) or of a committed epoch."""
        return self.add_run_arrays(run_id, {(kind, name): array}, epoch=epoch)[0]

    def add_run_arrays(
        self,
        run_id: str,
        arrays: Mapping[validate.ArrayKey, np.ndarray],
        *,
        epoch: int | None = None,
    ) -> list[ArtifactRecord]:
        """Store several arrays in one transaction: after a crash all of them are there or none.

        ``arrays`` maps ``(kind, name)`` to arrays, run-level or of the committed ``epoch``;
        each (kind, name) is written once.
        """
        items = validate.check_arrays(arrays)
        self._require(run_id)
        epoch = self._check_new_arrays(run_id, epoch, items)
        self._store_arrays(run_id, epoch, items)
        return [self._find(run_id, epoch, kind, name)[0] for kind, name, _ in items]

    def finish_run(
        self,
        run_id: str,
        epoch: int,
        *,
        metrics: Mapping[str, float] | None = None,
        arrays: Mapping[validate.ArrayKey, np.ndarray] | None = None,
    ) -> None:
        """Record what a run ends with and mark it finished, in one transaction.

        ``metrics`` (e.g. test_loss, test_acc) are added to the committed ``epoch``;
        ``arrays`` are run-level (e.g. the test confusion). A crash leaves all of it or
        none, so resuming the run finishes it once.
        """
        epoch = validate.check_epoch(epoch)
        values = validate.check_metrics(metrics or {})
        items = validate.check_arrays(arrays)
        self._require(run_id)
        self._require_epoch(run_id, epoch)
        items = self._not_yet_stored(run_id, items)
        self._check_new_arrays(run_id, None, items)

        def finish(conn: sqlite3.Connection, now: str) -> None:
            conn.executemany(
                "INSERT INTO metrics (run_id, epoch, name, value) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (run_id, epoch, name) DO UPDATE SET value = excluded.value",
                [(run_id, epoch, name, value) for name, value in values],
            )
            conn.execute(
                "UPDATE runs SET status = ?, updated = ?, finished = ? WHERE id = ?",
                (RunStatus.FINISHED, now, now, run_id),
            )

        self._store_arrays(run_id, None, items, also=finish)

    def _not_yet_stored(
        self, run_id: str, items: list[tuple[str, str, np.ndarray]]
    ) -> list[tuple[str, str, np.ndarray]]:
        """``items`` less the run-level arrays stored already with exactly these values.

        A run killed between the separate commits of older versions has its confusion
        stored but is not finished; finishing it again must not fail on that array.
        """
        left = []
        for kind, name, value in items:
            found = self._find(run_id, None, kind, name)
            if found and np.array_equal(self.load_array(found[0]), value, equal_nan=True):
                continue
            left.append((kind, name, value))
        return left

    def _check_new_arrays(
        self, run_id: str, epoch: int | None, items: list[tuple[str, str, np.ndarray]]
    ) -> int | None:
        """The checked epoch; fails if it is not committed or an array is there already."""
        if epoch is not None:
            epoch = validate.check_epoch(epoch)
            self._require_epoch(run_id, epoch)
        for kind, name, _ in items:
            if self._find(run_id, epoch, kind, name):
                where = "the run" if epoch is None else f"epoch {epoch}"
                raise StoreError(
                    f"run {run_id} already has {kind} {name!r} for {where}; arrays are written once"
                )
        return epoch

    def _store_arrays(
        self,
        run_id: str,
        epoch: int | None,
        items: list[tuple[str, str, np.ndarray]],
        *,
        also: Callable[[sqlite3.Connection, str], None] | None = None,
    ) -> None:
        """Write the arrays' files, then record them (and ``also``'s statements) in one transaction."""
        with files.store_lock(self.root, exclusive=False), files.FileBatch(self.root) as batch:
            for kind, name, value in items:
                batch.add_array(kind, name, files.array_path(run_id, epoch, kind, name), value)
            batch.sync()
            now = now_iso()
            with self._write() as conn:
                self._insert_files(run_id, epoch, batch.files, now)
                if also is not None:
                    also(conn, now)
                batch.keep()

    def _find(self, run_id: str, epoch: int | None, kind: str, name: str) -> list[ArtifactRecord]:
        """The artifact (kind, name) of an epoch, or of the run when ``epoch`` is None."""
        rows = self._conn.execute(
            f"{ARTIFACT_SELECT} WHERE run_id = ? AND coalesce(epoch, -1) = ? "
            "AND kind = ? AND name = ?",
            (run_id, -1 if epoch is None else epoch, kind, name),
        )
        return [artifact_from_row(row) for row in rows]

    # --- reading ------------------------------------------------------------------------

    def metrics(self, run_id: str) -> dict[str, np.ndarray]:
        """``"epoch"`` (int) plus one float array per metric, aligned, NaN where missing."""
        self._require(run_id)
        with self._read() as conn:
            epochs = [
                row[0]
                for row in conn.execute(
                    "SELECT epoch FROM epochs WHERE run_id = ? ORDER BY epoch", (run_id,)
                )
            ]
            rows = conn.execute(
                "SELECT epoch, name, value FROM metrics WHERE run_id = ?", (run_id,)
            ).fetchall()
        index = {epoch: i for i, epoch in enumerate(epochs)}
        result = {"epoch": np.array(epochs, dtype=np.int64)}
        for name in metric_order({row[1] for row in rows}):
            result[name] = np.full(len(epochs), np.nan)
        for epoch, name, value in rows:
            if value is not None and epoch in index:
                result[name][index[epoch]] = value
        return result

    def metric_rows(self, run_id: str) -> list[dict[str, int | float | None]]:
        """One JSON-ready dict per epoch: epoch, the four canonical metrics (None if missing), others."""
        data = self.metrics(run_id)
        names = [n for n in data if n != "epoch"]
        rows = []
        for i, epoch in enumerate(data["epoch"]):
            row: dict[str, int | float | None] = {"epoch": int(epoch)}
            row |= dict.fromkeys(CANONICAL_METRICS)
            row |= {name: json_number(data[name][i]) for name in names}
            rows.append(row)
        return rows

    def metrics_frame(self, run_id: str) -> Any:
        """The metrics as a pandas DataFrame indexed by epoch (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as exc:
            raise StoreError(
                "metrics_frame needs pandas: pip install pandas (metrics() gives numpy arrays)"
            ) from exc
        return pd.DataFrame(self.metrics(run_id)).set_index("epoch")

    def artifacts(
        self,
        run_id: str,
        *,
        kind: str | None = None,
        name: str | None = None,
        epoch: int | None = None,
    ) -> list[ArtifactRecord]:
        """A run's files, filtered by kind, name and epoch (None: any), run-level ones first."""
        self._require(run_id)
        clauses, params = ["run_id = ?"], [run_id]
        for column, value in (("kind", kind), ("name", name), ("epoch", epoch)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        sql = f"{ARTIFACT_SELECT} WHERE {' AND '.join(clauses)} ORDER BY epoch, kind, name, id"
        return [artifact_from_row(row) for row in self._conn.execute(sql, params)]

    def path_of(self, artifact: ArtifactRecord) -> Path:
        """The absolute path of an artifact's file."""
        return self.root / artifact.path

    def load_array(self, artifact: ArtifactRecord, *, verify: bool = True) -> np.ndarray:
        """Read an array artifact, checking its sha256 first unless ``verify`` is False."""
        path = self.path_of(artifact)
        if path.suffix != ".npy":
            raise StoreError(
                f"{path} is a {artifact.kind} file, not an array; use path_of() to read it"
            )
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(
                f"{path} is missing ({artifact.describe()}); `convscope runs check` lists damage"
            ) from None
        if verify and hashlib.sha256(data).hexdigest() != artifact.sha256:
            raise StoreError(
                f"{path} does not match its recorded sha256 ({artifact.describe()}): the file "
                "changed after it was written; `convscope runs check` lists damage"
            )
        return np.load(io.BytesIO(data), allow_pickle=False)

    def run_array(self, run_id: str, kind: str, name: str) -> np.ndarray:
        """Load a run-level array stored with :meth:`add_run_array`."""
        found = self._find(run_id, None, kind, name)
        if not found:
            self._require(run_id)
            have = [f"{a.kind}/{a.name}" for a in self.artifacts(run_id) if a.epoch is None]
            raise StoreError(
                f"run {run_id} has no run-level {kind} {name!r}"
                f"{close_matches(f'{kind}/{name}', have)}"
            )
        return self.load_array(found[0])

    def snapshots(self, run_id: str, layer: str) -> dict[int, np.ndarray]:
        """Epoch → the snapshot of ``layer`` (e.g. the probe set through ``hidden``)."""
        found = [
            a for a in self.artifacts(run_id, kind="snapshot", name=layer) if a.epoch is not None
        ]
        if not found:
            layers = sorted({a.name for a in self.artifacts(run_id, kind="snapshot")})
            if not layers:
                raise StoreError(
                    f"run {run_id} recorded no snapshots; train with --record LAYER to record some"
                )
            raise LayerError(
                f"run {run_id} has no snapshots of layer {layer!r}{close_matches(layer, layers)} "
                f"(recorded: {', '.join(layers)})"
            )
        return {a.epoch: self.load_array(a) for a in found}

    def latest_checkpoint(self, run_id: str) -> tuple[int, Path] | None:
        """``(epoch, path)`` of the run's newest checkpoint, or None when it has none."""
        found = self.checkpoints(run_id)
        if not found:
            return None
        newest = max(found)
        return newest, found[newest]

    def checkpoints(self, run_id: str) -> dict[int, Path]:
        """Epoch → the path of that epoch's checkpoint (epoch 0 is before the first update)."""
        found = self.artifacts(run_id, kind=files.CHECKPOINT_KIND)
        return {a.epoch: self.path_of(a) for a in found if a.epoch is not None}

    # --- maintenance --------------------------------------------------------------------

    def check(self, *, fix_orphans: bool = False, verify_checksums: bool = True) -> CheckReport:
        """Check the database and every file (missing, changed, orphaned); can remove orphans."""
        from convscope.store.check import check_store

        return check_store(
            self._conn, self.root, fix_orphans=fix_orphans, verify_checksums=verify_checksums
        )

    def export_run(self, ref: str, to_dir: str | os.PathLike[str]) -> Path:
        """Copy a run's files plus a ``run.json`` into ``to_dir/<run_id>/``; returns that path."""
        from convscope.store.export import export_run

        return export_run(self, ref, Path(to_dir))
