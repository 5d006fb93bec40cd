"""The training loop on real Fashion-MNIST subsets: it learns, it is deterministic."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from convscope.data.datasets import load_dataset
from convscope.data.sampling import stratified_indices
from convscope.errors import ConvscopeError
from convscope.models.loading import load_model
from convscope.train.loop import TrainConfig
from convscope.train.trainer import fit


@pytest.fixture(scope="module")
def small_fashion():
    train = load_dataset("fashion-mnist", "train")
    keep = stratified_indices(train.labels, 100, seed=0)
    test = load_dataset("fashion-mnist", "test")
    return (
        replace(train, images=train.images[keep], labels=train.labels[keep]),
        replace(test, images=test.images[:500], labels=test.labels[:500]),
    )


def _weights(module: torch.nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in module.state_dict().values()]


def test_same_seed_same_metrics_and_weights(small_fashion) -> None:
    train, test = small_fashion
    config = TrainConfig(epochs=2, batch_size=50, seed=7)
    runs = []
    for _ in range(2):
        model = load_model("residual", seed=3)  # batch norm + dropout: both must be reproducible
        runs.append((fit(model, train, test, config), _weights(model.module)))
    (first, w1), (second, w2) = runs
    assert [e.train_loss for e in first.epochs] == [e.train_loss for e in second.epochs]
    assert [e.val_acc for e in first.epochs] == [e.val_acc for e in second.epochs]
    assert first.test_acc == second.test_acc
    assert all(torch.equal(a, b) for a, b in zip(w1, w2, strict=True))


def test_seeded_initialisation_is_reproducible() -> None:
    first, second = load_model("inception", seed=5), load_model("inception", seed=5)
    other = load_model("inception", seed=6)
    assert all(
        torch.equal(a, b)
        for a, b in zip(_weights(first.module), _weights(second.module), strict=True)
    )
    assert not torch.equal(first.module.conv2D_1.weight, other.module.conv2D_1.weight)


def test_it_learns_and_leaves_callers_rng_alone(small_fashion) -> None:
    train, test = small_fashion
    model = load_model("lenet5")
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    result = fit(model, train, test, TrainConfig(epochs=3, batch_size=32, seed=0))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert result.epochs[0].epoch == 0 and result.epochs[0].train_loss is None
    assert result.epochs[-1].train_loss < result.epochs[1].train_loss
    assert result.epochs[-1].val_loss < result.epochs[0].val_loss
    assert result.test_acc > 0.5  # chance is 0.1
    assert not model.module.training
    assert model.module.conv2d_1.weight.is_contiguous()


def test_validation_split_is_stratified(small_fashion) -> None:
    from convscope.train.loop import split_train_val

    train, _ = small_fashion
    fit_idx, val_idx = split_train_val(train, TrainConfig(val_split=0.2))
    assert np.bincount(train.labels[val_idx]).tolist() == [20] * 10
    assert len(np.intersect1d(fit_idx, val_idx)) == 0


def test_classic_lenet_trains_on_padded_digits(small_fashion) -> None:
    train, test = small_fashion
    result = fit(load_model("lenet5-classic"), train, test, TrainConfig(epochs=1, val_split=0))
    assert [e.epoch for e in result.epochs] == [0, 1]
    assert result.epochs[1].val_acc is None and result.test_acc is not None
    assert result.confusion.sum() == 500


@pytest.mark.parametrize(
    "bad",
    [{"epochs": 0}, {"lr": -1.0}, {"optimizer": "lion"}, {"val_split": 1.0}, {"batch_size": 0}],
)
def test_bad_settings_are_user_errors(bad: dict) -> None:
    with pytest.raises(ConvscopeError):
        TrainConfig(**bad)


def test_explicit_validation_set(small_fashion) -> None:
    from convscope.train.loop import Batches, evaluate
    from convscope.train.trainer import Trainer

    train, test = small_fashion
    model = load_model("lenet5", seed=0)
    trainer = Trainer(model, train, TrainConfig(epochs=1, batch_size=50), validation=test)
    assert len(trainer.train_idx) == len(train) and len(trainer.val_idx) == len(test)
    result = trainer.run()
    pixels = torch.from_numpy(test.images)
    labels = torch.from_numpy(test.labels.astype(np.int64))
    expected = evaluate(model.module, Batches(pixels, labels, model.input_spec, True))
    assert result.epochs[-1].val_loss == pytest.approx(expected[0], rel=1e-6)
    assert result.epochs[-1].val_acc == pytest.approx(expected[1])


def test_cosine_schedule_lowers_the_learning_rate_each_epoch(small_fashion) -> None:
    train, _ = small_fashion
    result = fit(
        load_model("lenet5", seed=0),
        train,
        None,
        TrainConfig(epochs=3, lr=0.01, lr_schedule="cosine"),
    )
    lrs = [e.lr for e in result.epochs[1:]]
    assert lrs[0] == pytest.approx(0.01)  # the rate each epoch trained with
    assert lrs[0] > lrs[1] > lrs[2] > 0
    assert lrs[1] == pytest.approx(0.01 * (1 + np.cos(np.pi / 3)) / 2)


def test_early_stopping_after_patience_epochs_without_improvement(small_fashion) -> None:
    train, _ = small_fashion
    # A learning rate this large makes the validation loss stop improving at once.
    result = fit(
        load_model("lenet5", seed=0),
        train,
        None,
        TrainConfig(epochs=20, lr=5.0, optimizer="sgd", patience=2),
    )
    assert result.stopped_early
    losses = [e.val_loss for e in result.epochs[1:]]
    best = losses.index(min(losses))
    assert len(losses) == best + 1 + 2  # stopped exactly `patience` epochs after the best


def test_a_diverged_result_names_its_epoch() -> None:
    from convscope.train.loop import EpochMetrics, TrainResult

    fields = EpochMetrics.__dataclass_fields__
    base = {name: None for name in fields if name not in ("epoch", "train_loss")}
    healthy = EpochMetrics(epoch=1, train_loss=0.5, **base)  # type: ignore[arg-type]
    broken = EpochMetrics(epoch=2, train_loss=float("nan"), **base)  # type: ignore[arg-type]
    assert TrainResult(epochs=[healthy]).warning is None
    result = TrainResult(epochs=[healthy, broken])
    assert result.diverged_epoch == 2
    assert "became NaN or infinite in epoch 2" in result.warning
