"""End to end: killed while finishing then --resume; two-process DistributedDataParallel.

SIGKILL at every other kind of moment (during a batch, around a file's rename, inside a
commit) is the quick kill soak, tests/faults/test_soak_kill.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convscope.store import open_store

BIN = Path(sys.executable).parent


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
