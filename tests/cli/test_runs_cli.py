"""``convscope runs``: JSON keys per the CLI contract, exit statuses, export and delete."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from convscope.store import open_store
from tests.cli import assert_user_error, run

LIST_KEYS = {"id", "name", "model", "dataset", "status", "epochs_completed"}
SHOW_KEYS = LIST_KEYS | {"config", "metrics", "artifacts"}
METRIC_KEYS = {"epoch", "train_loss", "train_acc", "val_loss", "val_acc"}


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """A store with a finished two-epoch run and a run with no epoch yet."""
    root = tmp_path / "runs"
    with open_store(root) as store:
        run_id = store.create_run(
            name="lenet-mnist", model="lenet", dataset="mnist", config={"epochs": 1}, study="demo"
        ).id
        store.add_run_array(run_id, "probe", "labels", np.arange(4))
        store.commit_epoch(
            run_id,
            0,
            metrics={"val_loss": 2.3, "val_acc": 0.1},
            arrays={("snapshot", "hidden"): np.zeros((4, 2))},
        )
        store.commit_epoch(
            run_id,
            1,
            metrics={"train_loss": 0.5, "train_acc": 0.8, "val_loss": 0.4, "val_acc": 0.9},
            arrays={("snapshot", "hidden"): np.ones((4, 2))},
            checkpoint=lambda path: path.write_bytes(b"weights"),
        )
        store.set_status(run_id, "finished")
        store.create_run(name="empty", model="residual", dataset="fashion-mnist", config={})
    return root


def _id_of(store_dir: Path, name: str) -> str:
    with open_store(store_dir, create=False) as store:
        return store.run(name).id


def test_list_json(capsys, store_dir: Path) -> None:
    status, out, _ = run(capsys, "runs", "list", "--store", str(store_dir), "--json")
    runs = json.loads(out)
    assert status == 0 and [r["name"] for r in runs] == ["lenet-mnist", "empty"]
    assert all(set(r) >= LIST_KEYS for r in runs)
    assert runs[0]["epochs_completed"] == 1 and runs[0]["status"] == "finished"
    assert runs[1]["epochs_completed"] == -1 and runs[1]["status"] == "running"
    argv = ("runs", "list", "--store", str(store_dir), "--study", "demo", "--json")
    status, out, _ = run(capsys, *argv)
    assert status == 0 and [r["study"] for r in json.loads(out)] == ["demo"]
    status, out, _ = run(capsys, "runs", "list", "--store", str(store_dir))
    assert status == 0 and "Runs in" in out and _id_of(store_dir, "empty") in out


def test_show_json(capsys, store_dir: Path) -> None:
    run_id = _id_of(store_dir, "lenet-mnist")
    status, out, _ = run(capsys, "runs", "show", run_id[:4], "--store", str(store_dir), "--json")
    data = json.loads(out)
    assert status == 0 and set(data) >= SHOW_KEYS and data["id"] == run_id
    assert data["config"] == {"epochs": 1}
    assert [m["epoch"] for m in data["metrics"]] == [0, 1]
    assert all(set(m) >= METRIC_KEYS for m in data["metrics"])
    assert data["metrics"][0]["train_loss"] is None and data["metrics"][1]["val_acc"] == 0.9
    kinds = sorted((a["kind"], a["epoch"]) for a in data["artifacts"] if a["epoch"] is not None)
    assert kinds == [("checkpoint", 1), ("snapshot", 0), ("snapshot", 1)]
    assert all({"kind", "name", "path", "sha256", "bytes"} <= set(a) for a in data["artifacts"])


def test_show_for_people(capsys, store_dir: Path) -> None:
    status, out, _ = run(capsys, "runs", "show", "lenet-mnist", "--store", str(store_dir))
    assert status == 0 and "Metrics" in out and "0.9000" in out and "snapshot" in out


def test_unknown_run_and_missing_store_are_one_line_errors(capsys, store_dir: Path) -> None:
    result = run(capsys, "runs", "show", "lenet-mnst", "--store", str(store_dir))
    assert_user_error(result, "no run 'lenet-mnst'", "did you mean lenet-mnist")
    missing = store_dir.parent / "nowhere"
    for command in ("list", "check"):
        result = run(capsys, "runs", command, "--store", str(missing), "--json")
        assert_user_error(result, "no run store at", "--store")
    assert not missing.exists()


def test_check_exit_status(capsys, store_dir: Path) -> None:
    status, out, _ = run(capsys, "runs", "check", "--store", str(store_dir), "--json")
    assert status == 0 and json.loads(out) == {"ok": True, "problems": []}
    run_id = _id_of(store_dir, "lenet-mnist")
    snapshot = store_dir / "runs" / run_id / "epoch_0001" / "snapshot" / "hidden.npy"
    snapshot.write_bytes(snapshot.read_bytes()[:-1] + b"\x01")
    (store_dir / "runs" / run_id / "leftover.npy").write_bytes(b"x")
    status, out, _ = run(capsys, "runs", "check", "--store", str(store_dir), "--json")
    report = json.loads(out)
    assert status == 1 and set(report) == {"ok", "problems"} and report["ok"] is False
    assert len(report["problems"]) == 2
    status, out, _ = run(capsys, "runs", "check", "--store", str(store_dir), "--fix")
    assert status == 1 and "removed orphan file" in out and "checksum mismatch" in out
    status, out, _ = run(capsys, "runs", "check", "--store", str(store_dir), "--json")
    assert json.loads(out)["problems"][0].startswith("checksum mismatch:")


def test_export_prints_the_path(capsys, store_dir: Path, tmp_path: Path) -> None:
    run_id = _id_of(store_dir, "lenet-mnist")
    argv = (
        "runs",
        "export",
        "lenet-mnist",
        "--to",
        str(tmp_path / "out"),
        "--store",
        str(store_dir),
    )
    status, out, _ = run(capsys, *argv)
    target = tmp_path / "out" / run_id
    assert status == 0 and out.strip() == str(target)
    assert json.loads((target / "run.json").read_text())["run"]["name"] == "lenet-mnist"
    assert (target / "epoch_0001" / "checkpoint.ckpt").read_bytes() == b"weights"
    assert_user_error(run(capsys, *argv), "not empty")


def test_delete_needs_an_exact_reference(capsys, store_dir: Path) -> None:
    run_id = _id_of(store_dir, "lenet-mnist")
    store = ("--store", str(store_dir))
    assert_user_error(run(capsys, "runs", "delete", run_id[:4], *store), "give the full id")
    assert_user_error(run(capsys, "runs", "delete", "empty", *store), "is running")
    status, out, _ = run(capsys, "runs", "delete", run_id, *store, "--json")
    assert status == 0 and json.loads(out) == {"deleted": {"id": run_id, "name": "lenet-mnist"}}
    assert not (store_dir / "runs" / run_id).exists()
    status, out, _ = run(capsys, "runs", "delete", "empty", *store, "--force")
    assert status == 0 and "deleted run" in out
    status, out, _ = run(capsys, "runs", "list", *store, "--json")
    assert json.loads(out) == []


def test_a_store_that_is_a_file_is_named_as_such(capsys, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    result = run(capsys, "runs", "list", "--store", str(tmp_path / "afile"))
    assert_user_error(result, "is a file, not a run store directory")
