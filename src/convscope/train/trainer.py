"""The training run: epochs with callbacks, from epoch 0 (before any update) on.

:class:`Trainer` owns the optimizer, schedule, shuffling generator and early-stopping
counters, and can hand all of it out as a :class:`TrainerState` (saved in each
epoch's checkpoint) and take it back, so a killed run resumes where its last
committed epoch ended with the same numbers an uninterrupted run would have had.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from convscope.data.arrays import ArrayDataset
from convscope.models.loaded import LoadedModel
from convscope.train.distributed import DistInfo, decided_by_main, sum_across
from convscope.train.loop import (
    Batches,
    EpochMetrics,
    ProgressFn,
    TrainConfig,
    TrainResult,
    dataset_pixels,
    evaluate,
    evaluate_with_confusion,
    make_optimizer,
    make_scheduler,
    split_train_val,
    train_epoch,
)


class Callback(Protocol):
    """Told about every finished epoch (epoch 0 included) and the end of training."""

    def on_epoch_end(self, trainer: Trainer, metrics: EpochMetrics) -> None: ...

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None: ...


@dataclass
class TrainerState:
    """Everything beyond the weights that a resumed run needs."""

    epoch: int
    optimizer: dict[str, Any]
    scheduler: dict[str, Any] | None
    generator: torch.Tensor
    rng: torch.Tensor
    best_val_loss: float | None = None
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "optimizer": self.optimizer,
            "scheduler": self.scheduler,
            "generator": self.generator,
            "rng": self.rng,
            "best_val_loss": self.best_val_loss,
            "bad_epochs": self.bad_epochs,
            "history": self.history,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainerState:
        return cls(**data)


class Trainer:
    """Trains a :class:`LoadedModel` on an in-memory dataset, epoch by epoch."""

    def __init__(
        self,
        model: LoadedModel,
        train: ArrayDataset,
        config: TrainConfig,
        *,
        test: ArrayDataset | None = None,
        validation: ArrayDataset | None = None,
        callbacks: Sequence[Callback] = (),
        progress: ProgressFn | None = None,
        record_batch_loss: bool = False,
        dist: DistInfo | None = None,
    ) -> None:
        self.model, self.config, self.callbacks, self.progress = model, config, callbacks, progress
        self.dist = dist or DistInfo()
        self.record_batch_loss = record_batch_loss
        self.class_names = train.class_names
        memory = torch.channels_last if config.channels_last else torch.contiguous_format
        self.memory_format = memory
        spec = model.input_spec
        self.pixels = dataset_pixels(train, spec)
        self.labels = torch.from_numpy(train.labels.astype(np.int64))
        if validation is None:
            self.train_idx, self.val_idx = split_train_val(train, config)
        else:  # an explicit validation set sits after the training images
            n_train = len(self.labels)
            self.pixels = torch.cat([self.pixels, dataset_pixels(validation, spec)])
            self.labels = torch.cat(
                [self.labels, torch.from_numpy(validation.labels.astype(np.int64))]
            )
            self.train_idx = np.arange(n_train)
            self.val_idx = np.arange(n_train, len(self.labels))
        self.fit_set = self._batches(self.train_idx)
        self.val_set = self._batches(self.val_idx)
        self.test_set = (
            Batches(
                dataset_pixels(test, spec),
                torch.from_numpy(test.labels.astype(np.int64)),
                spec,
                config.channels_last,
            )
            if test is not None
            else None
        )
        self.optimizer = make_optimizer(model.module, config)
        self.scheduler = make_scheduler(self.optimizer, config)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.rng_state = _seeded_rng_state(config.seed)
        self.epoch = 0
        self.best_val_loss: float | None = None
        self.bad_epochs = 0
        self.result = TrainResult()

    def _batches(self, index: np.ndarray) -> Batches:
        return Batches(
            self.pixels[index], self.labels[index], self.model.input_spec, self.config.channels_last
        )

    @property
    def module(self) -> nn.Module:
        return self.model.module

    def state(self) -> TrainerState:
        """The trainer's state after the current epoch (for checkpoints)."""
        return TrainerState(
            epoch=self.epoch,
            optimizer=self.optimizer.state_dict(),
            scheduler=self.scheduler.state_dict() if self.scheduler else None,
            generator=self.generator.get_state(),
            rng=self.rng_state,
            best_val_loss=self.best_val_loss,
            bad_epochs=self.bad_epochs,
            history=[m.values() | {"epoch": m.epoch} for m in self.result.epochs],
        )

    def restore(self, state: TrainerState) -> None:
        """Continue after ``state.epoch`` as if the run had never stopped."""
        self.optimizer.load_state_dict(state.optimizer)
        if self.scheduler and state.scheduler:
            self.scheduler.load_state_dict(state.scheduler)
        self.generator.set_state(state.generator)
        self.rng_state = state.rng
        self.epoch, self.best_val_loss, self.bad_epochs = (
            state.epoch,
            state.best_val_loss,
            state.bad_epochs,
        )
        self.result.epochs = [metrics_from_values(values) for values in state.history]

    def _training_module(self) -> nn.Module:
        """The module to train: wrapped in DistributedDataParallel under torchrun."""
        if not self.dist.active:
            return self.module
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(self.module)

    def run(self) -> TrainResult:
        """Train the remaining epochs (recording epoch 0 first on a fresh run)."""
        with torch.random.fork_rng(devices=[]):
            torch.random.set_rng_state(self.rng_state)
            self.module.to(memory_format=self.memory_format)
            self.train_module = self._training_module()
            try:
                if self.epoch == 0 and not self.result.epochs:
                    self._finish_epoch(self._evaluate_epoch(0, None, None, 0.0, ()))
                while self.epoch < self.config.epochs and not self.result.stopped_early:
                    self._train_one_epoch()
                self._test()
            finally:
                self.module.to(memory_format=torch.contiguous_format)
                self.module.eval()
        if self.dist.is_main:
            for callback in self.callbacks:
                callback.on_train_end(self, self.result)
        return self.result

    def _train_one_epoch(self) -> None:
        started = time.perf_counter()
        lr = self.optimizer.param_groups[0]["lr"]  # the rate this epoch trains with
        batch_losses: list[float] | None = [] if self.record_batch_loss else None
        shard = (self.dist.rank, self.dist.world)
        progress = self.progress if self.dist.is_main else None
        sums = train_epoch(
            self.train_module,
            self.optimizer,
            self.fit_set,
            self.config.batch_size,
            self.generator,
            progress,
            batch_losses,
            shard,
        )
        total_loss, correct, seen = sum_across([float(v) for v in sums], self.dist)
        loss, acc = total_loss / seen, correct / seen
        if self.scheduler:
            self.scheduler.step()
        seconds = time.perf_counter() - started
        metrics = self._evaluate_epoch(
            self.epoch + 1, loss, acc, seconds, tuple(batch_losses or ()), lr
        )
        self.result.epochs.append(metrics)
        self.epoch += 1
        self._update_early_stopping(metrics)
        self.result.stopped_early = decided_by_main(self.result.stopped_early, self.dist)
        self.rng_state = torch.random.get_rng_state()
        self._notify(metrics)

    def _finish_epoch(self, metrics: EpochMetrics) -> None:
        self.result.epochs.append(metrics)
        self._notify(metrics)

    def _notify(self, metrics: EpochMetrics) -> None:
        if not self.dist.is_main:
            return
        for callback in self.callbacks:
            callback.on_epoch_end(self, metrics)

    def _evaluate_epoch(
        self,
        epoch: int,
        loss: float | None,
        acc: float | None,
        seconds: float,
        batch_losses: tuple[float, ...],
        lr: float | None = None,
    ) -> EpochMetrics:
        evaluated = len(self.val_set) and self.dist.is_main
        val_loss, val_acc = evaluate(self.module, self.val_set) if evaluated else (None, None)
        return EpochMetrics(epoch, loss, acc, val_loss, val_acc, seconds, lr, batch_losses)

    def _update_early_stopping(self, metrics: EpochMetrics) -> None:
        if self.config.patience is None or metrics.val_loss is None:
            return
        if self.best_val_loss is None or metrics.val_loss < self.best_val_loss:
            self.best_val_loss, self.bad_epochs = metrics.val_loss, 0
        else:
            self.bad_epochs += 1
            self.result.stopped_early = self.bad_epochs >= self.config.patience

    def _test(self) -> None:
        if self.test_set is None or not self.dist.is_main:
            return
        self.result.test_loss, self.result.test_acc, self.result.confusion = (
            evaluate_with_confusion(self.module, self.test_set, len(self.class_names))
        )


def _seeded_rng_state(seed: int) -> torch.Tensor:
    """The global CPU RNG state after ``manual_seed(seed)``, without touching the caller's."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.random.get_rng_state()


def metrics_from_values(values: dict[str, Any]) -> EpochMetrics:
    """An epoch's metrics from their stored values (a checkpoint's history or a store row)."""
    return EpochMetrics(
        epoch=int(values["epoch"]),
        train_loss=values.get("train_loss"),
        train_acc=values.get("train_acc"),
        val_loss=values.get("val_loss"),
        val_acc=values.get("val_acc"),
        seconds=values.get("seconds") or 0.0,
        lr=values.get("lr"),
    )


def fit(
    model: LoadedModel,
    train: ArrayDataset,
    test: ArrayDataset | None,
    config: TrainConfig,
    progress: ProgressFn | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Train ``model`` in place and return per-epoch metrics (epoch 0 first) and test numbers."""
    return Trainer(model, train, config, test=test, callbacks=callbacks, progress=progress).run()
