"""End to end: SIGKILL mid-epoch then --resume; two-process DistributedDataParallel."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from convscope.store import open_store

BIN = Path(sys.executable).parent


def _completed(store_dir: Path) -> int:
    if not (store_dir / "convscope.db").exists():
        return -1
    with open_store(store_dir, create=False) as store:
        runs = store.runs()
        return runs[0].epochs_completed if runs else -1


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume(tmp_path: Path) -> None:
    store_dir = tmp_path / "runs"
    command = [
        str(BIN / "convscope"),
        "train",
        "lenet5",
        "--data",
        "fashion-mnist",
        "--subset",
        "12000",
        "--epochs",
        "3",
        "--batch-size",
        "16",
        "--record",
        "dense_1",
        "--store",
        str(store_dir),
        "--json",
    ]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while _completed(store_dir) < 1:
        assert child.poll() is None, child.stderr.read().decode()
        assert time.monotonic() < deadline, "the run never committed epoch 1"
        time.sleep(0.2)
    time.sleep(1.5)  # well inside epoch 2
    child.send_signal(signal.SIGKILL)
    child.wait()
    with open_store(store_dir, create=False) as store:
        (run,) = store.runs()
        assert run.status == "interrupted"
        assert 1 <= run.epochs_completed < 3
        report = store.check()
        assert all("orphan" in problem for problem in report.problems), report.problems
    resumed = subprocess.run(
        [str(BIN / "convscope"), "train", "--resume", run.id, "--store", str(store_dir), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["run_id"] == run.id
    with open_store(store_dir, create=False) as store:
        assert store.check().ok, store.check().problems
        run = store.run(run.id)
        assert run.status == "finished" and run.epochs_completed == 3
        assert store.metrics(run.id)["epoch"].tolist() == [0, 1, 2, 3]
        for artifact in store.artifacts(run.id):
            store.load_array(artifact) if artifact.kind != "checkpoint" else None
        assert sorted(store.snapshots(run.id, "dense_1")) == [0, 1, 2, 3]
    checked = subprocess.run(
        [str(BIN / "convscope"), "runs", "check", "--store", str(store_dir), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0 and json.loads(checked.stdout) == {"ok": True, "problems": []}


def _artifact_keys(store, run_id: str) -> set[tuple]:
    return {(a.epoch, a.kind, a.name) for a in store.artifacts(run_id)}


@pytest.mark.slow
def test_two_process_ddp_records_like_a_single_process(tmp_path: Path) -> None:
    common = [
        "lenet5",
        "--data",
        "fashion-mnist",
        "--subset",
        "1000",
        "--epochs",
        "2",
        "--batch-size",
        "50",
        "--record",
        "dense_1",
        "--probe-per-class",
        "5",
        "--json",
    ]
    single = subprocess.run(
        [str(BIN / "convscope"), "train", *common, "--store", str(tmp_path / "single")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert single.returncode == 0, single.stderr
    # faulthandler: a rank that aborts in C++ shows its Python stack in the assertion below
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}
    ddp = subprocess.run(
        [
            str(BIN / "torchrun"),
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "convscope",
            "train",
            *common,
            "--store",
            str(tmp_path / "ddp"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    with (
        open_store(tmp_path / "single", create=False) as one,
        open_store(tmp_path / "ddp", create=False) as two,
    ):
        (run_one,), (run_two,) = one.runs(), two.runs()
        assert _artifact_keys(one, run_one.id) == _artifact_keys(two, run_two.id)
        m1, m2 = one.metrics(run_one.id), two.metrics(run_two.id)
        assert m1["epoch"].tolist() == m2["epoch"].tolist() == [0, 1, 2]
        # lenet5 has no batch norm or dropout: sharded batches with averaged gradients
        # make the same updates up to float summation order.
        np.testing.assert_allclose(m2["val_loss"], m1["val_loss"], rtol=1e-3)
        np.testing.assert_allclose(m2["train_loss"][1:], m1["train_loss"][1:], rtol=1e-3)
        assert two.check().ok


@pytest.mark.slow
def test_killed_inside_the_finishing_transaction_resumes_and_finishes_once(tmp_path: Path) -> None:
    # commits of a fresh one-epoch run: 1 create, 2 running, 3 probe set, 4 epoch 0,
    # 5 epoch 1, 6 test metrics + confusion + finished (once a separate commit each:
    # killed between them, the resume failed with "already has confusion 'test'")
    store_dir = tmp_path / "runs"
    train = [str(BIN / "convscope"), "train", "lenet5", "--data", "fashion-mnist"]
    train += ["--subset", "200", "--epochs", "1", "--store", str(store_dir), "--json"]
    env = {**os.environ, "CONVSCOPE_CRASH_AT": "store.before-commit:6"}
    killed = subprocess.run(train, capture_output=True, env=env, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with open_store(store_dir, create=False) as store:
        (run,) = store.runs()
        assert run.status == "interrupted" and run.epochs_completed == 1
        assert "test_acc" not in store.metrics(run.id) and not store.artifacts(
            run.id, kind="confusion"
        )
    resumed = subprocess.run(
        [str(BIN / "convscope"), "train", "--resume", run.id, "--store", str(store_dir), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    with open_store(store_dir, create=False) as store:
        run = store.run(run.id)
        assert run.status == "finished"
        assert store.metrics(run.id)["test_acc"][-1] == json.loads(resumed.stdout)["test_acc"]
        assert len(store.artifacts(run.id, kind="confusion")) == 1
        assert store.check().ok
