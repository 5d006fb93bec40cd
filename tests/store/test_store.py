"""The run store on real SQLite files: round trips, crash safety, checks, concurrency, SIGKILL."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from convscope.errors import ConvscopeError, LayerError
from convscope.store import RunStatus, RunStore, StoreError, open_store, schema
from convscope.store import files as store_files

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    with open_store(tmp_path / "store") as opened:
        yield opened


def new_run(store: RunStore, name: str = "lenet-mnist", **extra) -> str:
    return store.create_run(
        name=name, model="lenet", dataset="mnist", config={"lr": 0.001, "seed": 0}, **extra
    ).id


def write_bytes(data: bytes):
    def writer(path: Path) -> None:
        path.write_bytes(data)

    return writer


def files_under_runs(store: RunStore) -> list[str]:
    return sorted(str(p) for p in store_files.walk_files(store.root))


def db_rows(store: RunStore, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(store.root / "convscope.db") as conn:
        return conn.execute(sql, params).fetchall()


def commit(store: RunStore, run_id: str, epoch: int, **kwargs) -> None:
    arrays = {("snapshot", "hidden"): np.full((4, 3), epoch, dtype=np.float32)}
    store.commit_epoch(run_id, epoch, metrics={"val_acc": 0.1 * epoch}, arrays=arrays, **kwargs)


# --- round trip -------------------------------------------------------------------------


def test_round_trip(store: RunStore) -> None:
    run_id = new_run(store, study="fashion")
    record = store.run(run_id)
    assert record.status == "running" and record.epochs_completed == -1
    assert record.pid == os.getpid() and record.config == {"lr": 0.001, "seed": 0}
    assert record.convscope_version and record.torch_version
    store.add_run_array(run_id, "probe", "labels", np.arange(6) % 3)
    for epoch in range(3):
        metrics = {"val_loss": 2.0 - epoch, "val_acc": 0.3 * epoch}
        if epoch:  # no training loss before the first update
            metrics |= {"train_loss": 2.5 - epoch, "train_acc": 0.25 * epoch}
        store.commit_epoch(
            run_id,
            epoch,
            metrics=metrics,
            arrays={
                ("snapshot", "hidden"): np.full((6, 4), epoch, dtype=np.float32),
                ("kernels", "conv2D_1"): np.ones((2, 1, 3, 3)) * epoch,
            },
            checkpoint=write_bytes(b"ckpt %d" % epoch),
            seconds=1.5,
        )
    store.add_epoch_metrics(run_id, 2, {"test_acc": 0.875, "test_loss": 0.5})

    data = store.metrics(run_id)
    assert list(data)[:5] == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc"]
    assert data["epoch"].tolist() == [0, 1, 2] and data["epoch"].dtype.kind == "i"
    assert np.isnan(data["train_loss"][0]) and data["train_loss"][1:].tolist() == [1.5, 0.5]
    assert np.isnan(data["test_acc"][:2]).all() and data["test_acc"][2] == 0.875
    rows = store.metric_rows(run_id)
    assert rows[0]["train_loss"] is None and rows[0]["val_acc"] == 0.0
    assert rows[2]["test_loss"] == 0.5

    snapshots = store.snapshots(run_id, "hidden")
    assert sorted(snapshots) == [0, 1, 2]
    assert snapshots[2].dtype == np.float32 and (snapshots[2] == 2).all()
    epoch, path = store.latest_checkpoint(run_id)
    assert epoch == 2 and path.read_bytes() == b"ckpt 2"
    assert path == store.root / "runs" / run_id / "epoch_0002" / "checkpoint.ckpt"
    assert store.run_array(run_id, "probe", "labels").tolist() == [0, 1, 2, 0, 1, 2]

    kernels = store.artifacts(run_id, kind="kernels", epoch=1)
    assert len(kernels) == 1 and kernels[0].shape == (2, 1, 3, 3)
    assert kernels[0].path == f"runs/{run_id}/epoch_0001/kernels/conv2D_1.npy"
    assert (
        kernels[0].dtype == "float64"
        and kernels[0].bytes == store.path_of(kernels[0]).stat().st_size
    )
    assert (store.load_array(kernels[0]) == 1).all()
    assert [e.seconds for e in store.epochs(run_id)] == [1.5, 1.5, 1.5]
    assert store.run(run_id).epochs_completed == 2
    assert store.studies() == ["fashion"] and [r.id for r in store.runs_of_study("fashion")] == [
        run_id
    ]
    assert store.check().ok


def test_reopened_store_sees_the_same(tmp_path: Path) -> None:
    with open_store(tmp_path / "s") as first:
        run_id = new_run(first)
        commit(first, run_id, 0)
    with open_store(tmp_path / "s", create=False) as second:
        assert second.run(run_id).epochs_completed == 0
        assert second.snapshots(run_id, "hidden")[0].shape == (4, 3)


def test_empty_run(store: RunStore) -> None:
    run_id = new_run(store)
    assert store.latest_checkpoint(run_id) is None
    assert store.metrics(run_id)["epoch"].tolist() == []
    with pytest.raises(StoreError, match="recorded no snapshots"):
        store.snapshots(run_id, "hidden")
    commit(store, run_id, 0)
    with pytest.raises(LayerError, match="did you mean hidden"):
        store.snapshots(run_id, "hiden")


def test_unusual_artifact_names_get_safe_files(store: RunStore) -> None:
    run_id = new_run(store)
    arrays = {("kernels", "layer4/1.conv"): np.ones(2), ("kernels", "layer4_1.conv"): np.zeros(2)}
    store.commit_epoch(run_id, 0, metrics={}, arrays=arrays)
    found = {a.name: a for a in store.artifacts(run_id)}
    assert found["layer4_1.conv"].path.endswith("/layer4_1.conv.npy")
    assert found["layer4/1.conv"].path != found["layer4_1.conv"].path
    assert "/" not in found["layer4/1.conv"].path.rsplit("kernels/", 1)[1]
    assert store.load_array(found["layer4/1.conv"]).tolist() == [1.0, 1.0]


# --- atomicity ----------------------------------------------------------------------------


def test_failing_checkpoint_leaves_no_epoch_and_no_files(store: RunStore) -> None:
    run_id = new_run(store)
    commit(store, run_id, 0)
    before = files_under_runs(store)

    def broken(path: Path) -> None:
        path.write_bytes(b"half a checkpoint")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        commit(store, run_id, 1, checkpoint=broken)
    assert [e.epoch for e in store.epochs(run_id)] == [0]
    assert files_under_runs(store) == before
    assert not (store.root / "runs" / run_id / "epoch_0001").exists()
    assert db_rows(store, "SELECT COUNT(*) FROM metrics WHERE epoch = 1") == [(0,)]
    commit(store, run_id, 1, checkpoint=write_bytes(b"ok"))  # retrying the epoch works
    assert store.check().ok


def test_array_write_failing_midway_leaves_nothing(store: RunStore, monkeypatch) -> None:
    run_id = new_run(store)
    real_save = np.save
    calls = []

    def flaky_save(handle, array, **kwargs) -> None:
        calls.append(1)
        if len(calls) == 2:
            handle.write(b"\x93NUMPY partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(handle, array, **kwargs)

    monkeypatch.setattr(store_files.np, "save", flaky_save)
    arrays = {
        ("snapshot", "a"): np.ones(10),
        ("snapshot", "b"): np.ones(10),
        ("x", "c"): np.ones(1),
    }
    with pytest.raises(StoreError, match="No space left"):
        store.commit_epoch(run_id, 0, metrics={"val_acc": 0.5}, arrays=arrays)
    assert len(calls) == 2
    assert store.epochs(run_id) == [] and files_under_runs(store) == []
    assert db_rows(store, "SELECT COUNT(*) FROM artifacts") == [(0,)]
    monkeypatch.setattr(store_files.np, "save", real_save)
    store.commit_epoch(run_id, 0, metrics={"val_acc": 0.5}, arrays=arrays)
    assert store.check().ok


def test_epoch_is_committed_once(store: RunStore) -> None:
    run_id = new_run(store)
    commit(store, run_id, 0, checkpoint=write_bytes(b"first"))
    with pytest.raises(StoreError, match=r"already has epoch 0.*next one is 1"):
        commit(store, run_id, 0, checkpoint=write_bytes(b"second"))
    assert store.latest_checkpoint(run_id)[1].read_bytes() == b"first"
    assert store.check().ok


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s, r: s.commit_epoch(r, -1, metrics={}), "integer ≥ 0"),
        (lambda s, r: s.commit_epoch(r, 0, metrics={"epoch": 1.0}), "other than 'epoch'"),
        (lambda s, r: s.commit_epoch(r, 0, metrics={"acc": "high"}), "must be a number"),
        (
            lambda s, r: s.commit_epoch(r, 0, metrics={}, arrays={("a", "b"): [object()]}),
            "dtype object",
        ),
        (lambda s, r: s.commit_epoch(r, 0, metrics={}, arrays={("Bad Kind", "b"): [1]}), "kind"),
        (
            lambda s, r: s.commit_epoch(r, 0, metrics={}, arrays={("checkpoint", "m"): [1]}),
            "reserved",
        ),
        (lambda s, r: s.commit_epoch("nope", 0, metrics={}), "no run with id 'nope'"),
        (lambda s, r: s.add_epoch_metrics(r, 5, {"test_acc": 1.0}), "no committed epoch 5"),
        (lambda s, r: s.set_status(r, "paused"), "unknown run status"),
        (
            lambda s, r: s.create_run(name="x", model="m", dataset="d", config={"p": Path()}),
            "plain JSON",
        ),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(store: RunStore, call, message) -> None:
    run_id = new_run(store)
    with pytest.raises(ConvscopeError, match=message):
        call(store, run_id)
    assert files_under_runs(store) == [] and store.epochs(run_id) == []


def test_run_arrays_are_written_once(store: RunStore) -> None:
    run_id = new_run(store)
    store.add_run_array(run_id, "probe", "indices", np.arange(3))
    with pytest.raises(StoreError, match="already has probe 'indices'"):
        store.add_run_array(run_id, "probe", "indices", np.arange(4))
    commit(store, run_id, 0)
    record = store.add_run_array(run_id, "confusion", "val", np.eye(2), epoch=0)
    assert record.epoch == 0 and record.path.endswith("epoch_0000/confusion/val.npy")
    with pytest.raises(StoreError, match="no run-level probe 'label'"):
        store.run_array(run_id, "probe", "label")


def test_run_arrays_of_one_call_are_stored_all_or_none(store: RunStore, monkeypatch) -> None:
    run_id = new_run(store)
    real_save = np.save
    calls = []

    def failing_second(handle, array, **kwargs) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(handle, array, **kwargs)

    monkeypatch.setattr(store_files.np, "save", failing_second)
    both = {("probe", "indices"): np.arange(3), ("probe", "labels"): np.array([0, 1, 1])}
    with pytest.raises(StoreError, match="No space left"):
        store.add_run_arrays(run_id, both)
    assert store.artifacts(run_id) == [] and files_under_runs(store) == []
    monkeypatch.setattr(store_files.np, "save", real_save)
    records = store.add_run_arrays(run_id, both)
    assert [(r.kind, r.name) for r in records] == [("probe", "indices"), ("probe", "labels")]
    assert store.run_array(run_id, "probe", "labels").tolist() == [0, 1, 1]
    with pytest.raises(StoreError, match="already has probe 'labels'"):
        store.add_run_arrays(run_id, {("probe", "labels"): np.arange(2)})
    assert store.check().ok


def test_finish_run_records_test_metrics_confusion_and_status_together(store: RunStore) -> None:
    run_id = new_run(store)
    commit(store, run_id, 0)
    commit(store, run_id, 1)
    store.set_status(run_id, "running")
    confusion = np.array([[3, 1], [0, 4]])
    store.finish_run(
        run_id, 1, metrics={"test_acc": 0.875}, arrays={("confusion", "test"): confusion}
    )
    run = store.run(run_id)
    assert run.status == "finished" and run.finished is not None
    assert store.metrics(run_id)["test_acc"][1] == 0.875
    assert store.run_array(run_id, "confusion", "test").tolist() == confusion.tolist()
    assert store.check().ok


def test_a_finish_after_an_old_partial_finish_keeps_the_same_array(store: RunStore) -> None:
    # older versions stored the confusion, then (a separate commit) the status
    run_id = new_run(store)
    commit(store, run_id, 0)
    store.add_run_array(run_id, "confusion", "test", np.eye(2))
    store.set_status(run_id, "interrupted")
    store.finish_run(
        run_id, 0, metrics={"test_acc": 0.5}, arrays={("confusion", "test"): np.eye(2)}
    )
    assert store.run(run_id).status == "finished"
    assert len(store.artifacts(run_id, kind="confusion")) == 1 and store.check().ok


def test_a_refused_finish_changes_nothing(store: RunStore) -> None:
    run_id = new_run(store)
    commit(store, run_id, 0)
    store.add_run_array(run_id, "confusion", "test", np.eye(2))
    store.set_status(run_id, "running")
    with pytest.raises(StoreError, match="already has confusion 'test'"):
        store.finish_run(
            run_id, 0, metrics={"test_acc": 0.5}, arrays={("confusion", "test"): 2 * np.eye(2)}
        )
    with pytest.raises(StoreError, match="no committed epoch 3"):
        store.finish_run(run_id, 3, metrics={"test_acc": 0.5})
    assert store.run(run_id).status == "running"
    assert np.isnan(store.metrics(run_id).get("test_acc", np.array([np.nan]))[0])
    assert store.check().ok


# --- status and lookup ----------------------------------------------------------------------


def test_status_transitions(store: RunStore) -> None:
    run_id = new_run(store)
    store.set_status(run_id, "finished")
    record = store.run(run_id)
    assert record.status == RunStatus.FINISHED and record.finished is not None
    store.set_status(run_id, RunStatus.RUNNING)  # a resumed run
    assert store.run(run_id).finished is None and store.run(run_id).pid == os.getpid()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_dead_running_run_becomes_interrupted(store: RunStore) -> None:
    dead, elsewhere = new_run(store, "dead"), new_run(store, "elsewhere")
    pid = _dead_pid()
    db_rows(store, "UPDATE runs SET pid = ? WHERE id IN (?, ?)", (pid, dead, elsewhere))
    db_rows(store, "UPDATE runs SET host = 'another-host' WHERE id = ?", (elsewhere,))
    statuses = {r.name: r.status for r in store.runs()}
    assert statuses == {"dead": "interrupted", "elsewhere": "running"}
    assert db_rows(store, "SELECT status FROM runs WHERE id = ?", (dead,)) == [("interrupted",)]
    assert store.run(dead).finished is not None


def test_lookup_by_id_prefix_and_name(store: RunStore) -> None:
    first, second = new_run(store, "lenet-mnist"), new_run(store, "residual-fashion")
    db_rows(store, "UPDATE runs SET id = 'abc12345' WHERE id = ?", (first,))
    db_rows(store, "UPDATE runs SET id = 'abd67890' WHERE id = ?", (second,))
    assert store.run("abc12345").name == "lenet-mnist"
    assert store.run("abc").name == "lenet-mnist"
    assert store.run("residual-fashion").id == "abd67890"
    with pytest.raises(StoreError, match=r"start of several run ids: abc12345 .*abd67890"):
        store.run("ab")
    with pytest.raises(StoreError, match="did you mean lenet-mnist"):
        store.run("lenet-mnst")
    new_run(store, "lenet-mnist")
    with pytest.raises(StoreError, match="2 runs are named 'lenet-mnist'"):
        store.run("lenet-mnist")
    with pytest.raises(StoreError, match="no study 'fashon'"):
        store.runs_of_study("fashon")


# --- check ------------------------------------------------------------------------------------


def test_check_finds_damage_and_removes_orphans(store: RunStore) -> None:
    run_id = new_run(store)
    commit(store, run_id, 0, checkpoint=write_bytes(b"x" * 64))
    commit(store, run_id, 1, checkpoint=write_bytes(b"y" * 64))
    assert store.check().to_dict() == {"ok": True, "problems": []}

    snapshot = store.path_of(store.artifacts(run_id, kind="snapshot", epoch=1)[0])
    data = bytearray(snapshot.read_bytes())
    data[-1] ^= 0xFF
    snapshot.write_bytes(bytes(data))
    store.latest_checkpoint(run_id)[1].unlink()
    epoch_dir = store.root / "runs" / run_id / "epoch_0000"
    (epoch_dir / "stray.npy").write_bytes(b"junk")
    (epoch_dir / "snapshot" / ".hidden.npy.k2j3.part").write_bytes(b"half")
    (store.root / "runs" / "deadbeef" / "epoch_0000").mkdir(parents=True)
    (store.root / "runs" / "deadbeef" / "epoch_0000" / "checkpoint.ckpt").write_bytes(b"z")

    report = store.check()
    assert set(report.to_dict()) == {"ok", "problems"} and not report.ok
    kinds = sorted(p.split(":")[0] for p in report.problems)
    assert kinds == ["checksum mismatch", "missing file"] + ["orphan file"] * 3
    assert any("epoch_0001/snapshot/hidden.npy" in p for p in report.problems)
    assert report.orphans == sorted(report.orphans) and len(report.orphans) == 3
    with pytest.raises(StoreError, match="does not match its recorded sha256"):
        store.load_array(store.artifacts(run_id, kind="snapshot", epoch=1)[0])
    assert store.load_array(
        store.artifacts(run_id, kind="snapshot", epoch=1)[0], verify=False
    ).shape

    fixed = store.check(fix_orphans=True)
    assert len(fixed.removed) == 3 and not fixed.ok and len(fixed.problems) == 2
    assert not (store.root / "runs" / "deadbeef").exists()
    assert [p.split(":")[0] for p in store.check(verify_checksums=False).problems] == [
        "missing file"
    ]


# --- schema -----------------------------------------------------------------------------------


def test_schema_version_bookkeeping(tmp_path: Path) -> None:
    with open_store(tmp_path / "s"):
        pass
    with sqlite3.connect(tmp_path / "s" / "convscope.db") as conn:
        assert [row[0] for row in conn.execute("SELECT version FROM schema_version")] == [1]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_version_0_database_is_migrated(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    sqlite3.connect(tmp_path / "s" / "convscope.db").close()  # an empty database: version 0
    with open_store(tmp_path / "s", create=False) as store:
        assert store.runs() == []
        new_run(store)


def test_migrations_run_in_order_and_keep_data(tmp_path: Path, monkeypatch) -> None:
    with open_store(tmp_path / "s") as store:
        run_id = new_run(store)
        commit(store, run_id, 0)

    def add_notes(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE runs ADD COLUMN notes TEXT NOT NULL DEFAULT ''")

    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, add_notes))
    with open_store(tmp_path / "s") as store:
        assert store.run(run_id).epochs_completed == 0
    with sqlite3.connect(tmp_path / "s" / "convscope.db") as conn:
        assert [row[0] for row in conn.execute("SELECT version FROM schema_version")] == [1, 2]
        assert conn.execute("SELECT notes FROM runs").fetchall() == [("",)]


def test_newer_or_foreign_database_is_refused(tmp_path: Path) -> None:
    with open_store(tmp_path / "s"):
        pass
    with sqlite3.connect(tmp_path / "s" / "convscope.db") as conn:
        conn.execute("INSERT INTO schema_version VALUES (99, 'later')")
    with pytest.raises(StoreError, match=r"schema version 99 is newer.*upgrade convscope"):
        open_store(tmp_path / "s")
    (tmp_path / "other").mkdir()
    with sqlite3.connect(tmp_path / "other" / "convscope.db") as conn:
        conn.execute("CREATE TABLE photos (id INTEGER)")
    with pytest.raises(StoreError, match="not a convscope run store"):
        open_store(tmp_path / "other")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "convscope.db").write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a SQLite database"):
        open_store(tmp_path / "junk")


def test_missing_store_is_not_created_when_asked_not_to(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no run store at .*train a model first"):
        open_store(tmp_path / "nowhere", create=False)
    assert not (tmp_path / "nowhere").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        open_store(tmp_path / "file")


# --- delete and export ----------------------------------------------------------------------


def test_delete_cascades_and_removes_files(store: RunStore) -> None:
    keep, gone = new_run(store, "keep"), new_run(store, "gone")
    for run_id in (keep, gone):
        store.add_run_array(run_id, "probe", "labels", np.arange(3))
        commit(store, run_id, 0, checkpoint=write_bytes(b"c"))
    store.add_epoch_metrics(gone, 0, {"test_acc": 1.0})
    with pytest.raises(StoreError, match="is running"):
        store.delete_run("gone")
    with pytest.raises(StoreError, match="only the start of a run id"):
        store.delete_run(gone[:4], force=True)
    store.set_status(gone, "finished")
    assert store.delete_run("gone").id == gone
    for table in ("runs", "epochs", "metrics", "artifacts"):
        column = "id" if table == "runs" else "run_id"
        assert db_rows(store, f"SELECT COUNT(*) FROM {table} WHERE {column} = ?", (gone,)) == [(0,)]
    assert not (store.root / "runs" / gone).exists()
    assert [r.id for r in store.runs()] == [keep] and store.check().ok


def test_export_writes_run_json_and_files(store: RunStore, tmp_path: Path) -> None:
    run_id = new_run(store)
    store.add_run_array(run_id, "probe", "labels", np.arange(3))
    commit(store, run_id, 0, checkpoint=write_bytes(b"c0"))
    commit(store, run_id, 1, checkpoint=write_bytes(b"c1"))
    (tmp_path / "out" / run_id).mkdir(parents=True)  # an empty target is fine
    target = store.export_run(run_id[:5], tmp_path / "out")
    assert target == tmp_path / "out" / run_id
    doc = json.loads((target / "run.json").read_text())
    assert doc["format"] == "convscope-run" and doc["run"]["id"] == run_id
    assert [m["epoch"] for m in doc["metrics"]] == [0, 1] and doc["metrics"][1]["val_acc"] == 0.1
    assert len(doc["artifacts"]) == 5
    for entry in doc["artifacts"]:
        assert store_files.sha256_file(target / entry["path"])[0] == entry["sha256"]
    assert (target / "epoch_0001" / "checkpoint.ckpt").read_bytes() == b"c1"
    with pytest.raises(StoreError, match="not empty"):
        store.export_run(run_id, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [run_id]


def test_failed_export_leaves_nothing(store: RunStore, tmp_path: Path) -> None:
    run_id = new_run(store)
    commit(store, run_id, 0)
    commit(store, run_id, 1)
    store.path_of(store.artifacts(run_id, epoch=1)[0]).write_bytes(b"changed")
    with pytest.raises(StoreError, match="does not match its recorded sha256"):
        store.export_run(run_id, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_metrics_frame_needs_pandas(store: RunStore, monkeypatch) -> None:
    run_id = new_run(store)
    commit(store, run_id, 0)
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(StoreError, match="pip install pandas"):
        store.metrics_frame(run_id)


def test_metrics_frame_with_pandas(store: RunStore) -> None:
    pytest.importorskip("pandas")
    run_id = new_run(store)
    commit(store, run_id, 0)
    frame = store.metrics_frame(run_id)
    assert frame.index.tolist() == [0] and frame["val_acc"].tolist() == [0.0]


# --- other processes ----------------------------------------------------------------------------

READER = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from convscope.store import open_store

    root, run_id, last = sys.argv[1], sys.argv[2], int(sys.argv[3])
    seen, errors, reads = [], [], 0
    with open_store(root, create=False) as store:
        print("ready", flush=True)
        end = time.monotonic() + 20
        while time.monotonic() < end:
            try:
                store.runs()
                data = store.metrics(run_id)
                epochs = data["epoch"].tolist()
                assert epochs == list(range(len(epochs))), epochs
                assert not np.isnan(data.get("val_acc", np.zeros(0))).any()
                for artifact in store.artifacts(run_id, kind="snapshot")[-1:]:
                    assert store.load_array(artifact).shape == (64, 32)
                assert store.run(run_id).epochs_completed >= len(epochs) - 1
                reads += 1
                seen.append(len(epochs) - 1)
                if seen[-1] >= last:
                    break
            except Exception as exc:
                errors.append(repr(exc))
    print(json.dumps({"seen": seen, "errors": errors, "reads": reads}))
    """
)


def _python(script: Path, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        **kwargs,
    )


def test_concurrent_reader_sees_monotonic_epochs_and_no_lock_errors(
    store: RunStore, tmp_path: Path
) -> None:
    run_id = new_run(store)
    script = tmp_path / "reader.py"
    script.write_text(READER)
    last = 40
    reader = _python(script, str(store.root), run_id, str(last))
    try:
        assert reader.stdout.readline().strip() == "ready"
        rng = np.random.default_rng(0)
        for epoch in range(last + 1):
            arrays = {("snapshot", "hidden"): rng.standard_normal((64, 32))}
            store.commit_epoch(run_id, epoch, metrics={"val_acc": epoch / last}, arrays=arrays)
            store.add_epoch_metrics(run_id, epoch, {"extra": 1.0})
            time.sleep(0.002)  # let the reader see many intermediate states
        out, _ = reader.communicate(timeout=30)
    finally:
        reader.kill()
    result = json.loads(out.strip().splitlines()[-1])
    assert result["errors"] == []
    assert result["seen"] == sorted(result["seen"]) and result["seen"][-1] == last
    assert result["reads"] >= 5 and len(set(result["seen"])) >= 3


WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from convscope.store import open_store

    root, seed = sys.argv[1], int(sys.argv[2])
    big = np.random.default_rng(seed).standard_normal((512, 1024)).astype(np.float32)

    def checkpoint(path):
        with open(path, "wb") as handle:
            for row in big:
                handle.write(row.tobytes())

    with open_store(root) as store:
        run = store.create_run(name=f"victim-{seed}", model="m", dataset="d", config={})
        store.add_run_array(run.id, "probe", "labels", np.arange(512))
        print(run.id, flush=True)
        for epoch in range(100_000):
            arrays = {("snapshot", "hidden"): big + epoch, ("kernels", "conv"): big[:64] * epoch}
            store.commit_epoch(
                run.id, epoch, metrics={"val_acc": float(epoch)}, arrays=arrays,
                checkpoint=checkpoint, seconds=0.1,
            )
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_at_random_moments_never_leaves_referenced_damage(tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    root = tmp_path / "store"
    delays = random.Random(1234)
    for seed in range(4):
        child = _python(script, str(root), str(seed))
        run_id = child.stdout.readline().strip()
        time.sleep(delays.uniform(0.05, 0.5))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        assert child.returncode == -signal.SIGKILL

        with open_store(root, create=False) as store:
            report = store.check()
            damage = [p for p in report.problems if not p.startswith("orphan file:")]
            assert damage == [], damage
            record = store.run(run_id)
            assert record.status == "interrupted"
            epochs = [e.epoch for e in store.epochs(run_id)]
            assert epochs == list(range(len(epochs)))
            assert store.metrics(run_id)["val_acc"].tolist() == [float(e) for e in epochs]
            for epoch in epochs:  # each epoch is all there or not there at all
                kinds = sorted(a.kind for a in store.artifacts(run_id, epoch=epoch))
                assert kinds == ["checkpoint", "kernels", "snapshot"]
            for artifact in store.artifacts(run_id):
                if artifact.path.endswith(".npy"):
                    store.load_array(artifact)
            # resuming after the crash commits the next epoch over any leftovers
            store.set_status(run_id, "running")
            commit(store, run_id, record.epochs_completed + 1, checkpoint=write_bytes(b"r"))
            store.set_status(run_id, "interrupted")
            store.check(fix_orphans=True)
            assert store.check().ok
