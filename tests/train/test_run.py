"""Recorded runs in a real store: what each epoch keeps, resume equivalence, hook hygiene."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from convscope.errors import LayerError
from convscope.models.loading import load_model
from convscope.store import open_store
from convscope.train.loop import TrainConfig
from convscope.train.run import RunSettings, resume_run, train_run
from tests.stores import StopAfter

SETTINGS = RunSettings(
    model="residual",
    data="fashion-mnist",
    config=TrainConfig(epochs=2, batch_size=100, seed=1),
    record=("hidden", "pool1"),
    probe_per_class=5,
    subset=600,
    record_batch_loss=True,
)


def _hooks(module: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())


@pytest.mark.slow
def test_every_epoch_is_recorded_from_epoch_zero(tmp_path: Path) -> None:
    with open_store(tmp_path / "runs") as store:
        outcome = train_run(SETTINGS, store=store)
        run = store.run(outcome.run_id)
        assert run.status == "finished" and run.epochs_completed == 2
        metrics = store.metrics(run.id)
        assert metrics["epoch"].tolist() == [0, 1, 2]
        assert np.isnan(metrics["train_loss"][0]) and not np.isnan(metrics["val_loss"][0])
        assert metrics["test_acc"][-1] == pytest.approx(outcome.result.test_acc)
        hidden = store.snapshots(run.id, "hidden")
        assert sorted(hidden) == [0, 1, 2]
        assert hidden[0].shape == (50, 128) and hidden[0].dtype == np.float32
        assert store.snapshots(run.id, "pool1")[2].shape == (50, 32, 14, 14)
        assert not np.array_equal(hidden[0], hidden[2])  # training changed the representation
        labels = store.load_array(store.artifacts(run.id, kind="probe", name="labels")[0])
        assert np.bincount(labels).tolist() == [5] * 10
        kernels = {a.name for a in store.artifacts(run.id, kind="kernels", epoch=2)}
        assert {"conv2D_1", "conv2D_6"} <= kernels
        final = load_model(f"run:{run.id}", store=tmp_path / "runs").module
        kernel = store.load_array(
            store.artifacts(run.id, kind="kernels", name="conv2D_1", epoch=2)[0]
        )
        np.testing.assert_array_equal(kernel, final.conv2D_1.weight.detach().numpy())
        assert len(store.load_array(store.artifacts(run.id, kind="batch_loss", epoch=1)[0])) == 5
        confusion = store.load_array(store.artifacts(run.id, kind="confusion")[0])
        assert confusion.sum() == 10000
        assert store.check().ok
    assert _hooks(outcome.model.module) == 0


def test_recorded_snapshot_equals_the_layer_output(tmp_path: Path) -> None:
    settings = RunSettings(
        model="lenet5",
        data="fashion-mnist",
        config=TrainConfig(epochs=1),
        record=("dense_1",),
        probe_per_class=3,
        subset=300,
    )
    with open_store(tmp_path / "runs") as store:
        outcome = train_run(settings, store=store)
        run_id = outcome.run_id
        snapshot = store.snapshots(run_id, "dense_1")[1]
        indices = store.load_array(store.artifacts(run_id, kind="probe", name="indices")[0])
    from convscope.train.run import prepare_data

    train, _ = prepare_data(settings)
    module = outcome.model.module.eval()
    x = outcome.model.input_spec.normalize(train.images[indices])
    with torch.no_grad():
        expected = module.dense_1(
            module.flatten_1(
                module.max_pooling2d_2(module.conv2d_2(module.max_pooling2d_1(module.conv2d_1(x))))
            )
        )
    np.testing.assert_allclose(snapshot, expected.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_resumed_run_equals_uninterrupted_run(tmp_path: Path) -> None:
    settings = RunSettings(
        model="residual",
        data="fashion-mnist",
        config=TrainConfig(epochs=3, batch_size=100, seed=4),
        record=("hidden",),
        probe_per_class=2,
        subset=500,
    )
    with open_store(tmp_path / "a") as store:
        straight = train_run(settings, store=store)
        straight_metrics = store.metrics(straight.run_id)
    with open_store(tmp_path / "b") as store:
        with pytest.raises(KeyboardInterrupt):
            train_run(settings, store=store, callbacks=[StopAfter(1)])
        (run,) = store.runs()
        assert run.status == "interrupted" and run.epochs_completed == 1
        resumed = resume_run(run.id, store=store)
        resumed_metrics = store.metrics(run.id)
        assert store.run(run.id).status == "finished"
        assert store.check().ok
    for name in ("epoch", "train_loss", "val_loss", "val_acc", "test_acc"):
        np.testing.assert_array_equal(resumed_metrics[name], straight_metrics[name])
    for a, b in zip(
        resumed.model.module.state_dict().values(),
        straight.model.module.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b)


def test_unknown_record_layer_fails_before_a_run_exists(tmp_path: Path) -> None:
    bad = RunSettings(model="sequential", data="fashion-mnist", record=("hiden",), subset=100)
    with open_store(tmp_path / "runs") as store:
        with pytest.raises(LayerError, match="did you mean hidden"):
            train_run(bad, store=store)
        assert store.runs() == []


def test_failed_run_is_marked_and_leaves_no_hooks(tmp_path: Path) -> None:
    class Boom:
        def on_epoch_end(self, trainer, metrics) -> None:
            self.module = trainer.module
            raise RuntimeError("disk full")

        def on_train_end(self, trainer, result) -> None:
            pass

    boom = Boom()
    settings = RunSettings(
        model="sequential", data="fashion-mnist", record=("hidden",), probe_per_class=2, subset=100
    )
    with open_store(tmp_path / "runs") as store:
        with pytest.raises(RuntimeError, match="disk full"):
            train_run(settings, store=store, callbacks=[boom])
        assert store.runs()[0].status == "failed"
    assert _hooks(boom.module) == 0
