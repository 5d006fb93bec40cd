"""A training run kept in the run store: record every epoch, resume after a crash.

Each epoch (epoch 0 = before any update) commits its metrics, the recorded layer
snapshots on the probe set, every conv layer's kernels and a checkpoint carrying
the trainer state, all in one store transaction. ``resume_run`` restarts from the
last committed epoch; the epoch that was in progress is trained again.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from convscope.data.arrays import ArrayDataset
from convscope.data.datasets import load_dataset
from convscope.data.sampling import stratified_indices
from convscope.errors import ConvscopeError
from convscope.models.checkpoint import checkpoint_payload, read_torch_file
from convscope.models.loaded import LoadedModel
from convscope.models.loading import load_model
from convscope.models.provenance import run_epoch_label
from convscope.probe.activations import resolve_layers
from convscope.train.distributed import DistInfo
from convscope.train.loop import EpochMetrics, ProgressFn, TrainConfig, TrainResult
from convscope.train.recording import ProbeSet, conv_kernels, make_probe_set, record_probe
from convscope.train.trainer import Trainer, TrainerState

if TYPE_CHECKING:
    from convscope.store import RunRecord, RunStore


@dataclass(frozen=True)
class RunSettings:
    """What to train and record; stored as the run's config."""

    model: str
    data: str
    config: TrainConfig = field(default_factory=TrainConfig)
    record: tuple[str, ...] = ()
    probe_per_class: int = 100
    subset: int | None = None
    record_kernels: bool = True
    record_batch_loss: bool = False
    validation: str | None = None
    name: str | None = None
    study: str | None = None
    study_plan: dict[str, Any] | None = None
    """The whole study this run belongs to (its models, seed count and first seed), so
    ``convscope study --resume`` can finish a study from its runs in the store."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["record"] = list(self.record)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSettings:
        values = dict(data)
        values["config"] = TrainConfig(**values["config"])
        values["record"] = tuple(values.get("record", ()))
        return cls(**values)


@dataclass
class RunOutcome:
    """The run's id, its training result and the trained model."""

    run_id: str
    result: TrainResult
    model: LoadedModel


class StoreRecorder:
    """Commits each epoch to the store: metrics, snapshots, kernels and a checkpoint."""

    def __init__(self, store: Any, run_id: str, probe: ProbeSet, settings: RunSettings) -> None:
        self.store, self.run_id, self.probe, self.settings = store, run_id, probe, settings

    def arrays(self, trainer: Trainer, metrics: EpochMetrics) -> dict[tuple[str, str], np.ndarray]:
        """What this epoch records, keyed by (kind, name)."""
        module, spec = trainer.module, trainer.model.input_spec
        layers = list(self.settings.record)
        found, probabilities = record_probe(
            module,
            self.probe,
            spec,
            layers,
            outputs_probabilities=trainer.model.outputs_probabilities,
        )
        arrays = {("snapshot", name): value for name, value in found.items()}
        arrays[("predictions", "probe")] = probabilities
        if self.settings.record_kernels:
            arrays |= {("kernels", name): value for name, value in conv_kernels(module).items()}
        if metrics.batch_losses:
            arrays[("batch_loss", "train")] = np.asarray(metrics.batch_losses, dtype=np.float32)
        return arrays

    def on_epoch_end(self, trainer: Trainer, metrics: EpochMetrics) -> None:
        state = trainer.state().to_dict()
        trainer.model.weights = run_epoch_label(self.run_id, metrics.epoch)

        def write_checkpoint(path: Path) -> None:  # the store renames it, once fsynced
            extra = {"trainer_state": state, "run_id": self.run_id}
            torch.save(checkpoint_payload(trainer.model, extra=extra), path)

        self.store.commit_epoch(
            self.run_id,
            metrics.epoch,
            metrics=metrics.values(),
            arrays=self.arrays(trainer, metrics),
            checkpoint=write_checkpoint,
            seconds=metrics.seconds if metrics.epoch else None,
        )

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        # one transaction: a run killed here is resumed and finished once, never twice
        metrics = {}
        if result.test_acc is not None:
            metrics = {"test_loss": result.test_loss, "test_acc": result.test_acc}
        arrays = {}
        if result.confusion is not None:
            arrays[("confusion", "test")] = result.confusion
        self.store.finish_run(self.run_id, trainer.epoch, metrics=metrics, arrays=arrays)


def validation_data(settings: RunSettings) -> ArrayDataset | None:
    """The explicit validation set (a split of the run's dataset), if the run names one."""
    return load_dataset(settings.data, settings.validation) if settings.validation else None


def prepare_data(settings: RunSettings) -> tuple[ArrayDataset, ArrayDataset]:
    """Train (optionally a stratified subset) and test splits of the run's dataset."""
    train, test = load_dataset(settings.data, "train"), load_dataset(settings.data, "test")
    if settings.subset is not None:
        n_classes = len(train.class_names)
        if settings.subset < 2 * n_classes:
            raise ConvscopeError(f"--subset must be at least {2 * n_classes} (2 per class)")
        keep = stratified_indices(
            train.labels, settings.subset // n_classes, seed=settings.config.seed
        )
        train = replace(train, images=train.images[keep], labels=train.labels[keep])
    return train, test


def _check_classes(model: LoadedModel, train: ArrayDataset) -> None:
    if model.class_names and len(model.class_names) != len(train.class_names):
        raise ConvscopeError(
            f"{model.name} predicts {len(model.class_names)} classes but {train.name} has "
            f"{len(train.class_names)}"
        )


def _probe_for(trainer: Trainer, settings: RunSettings, train: ArrayDataset) -> ProbeSet:
    pool = trainer.val_idx if len(trainer.val_idx) else trainer.train_idx
    return make_probe_set(
        trainer.pixels, trainer.labels.numpy(), pool, settings.probe_per_class, settings.config.seed
    )


def _build_trainer(
    model: LoadedModel,
    settings: RunSettings,
    state: TrainerState | None,
    progress: ProgressFn | None,
    dist: DistInfo | None,
) -> tuple[Trainer, ArrayDataset]:
    """Load the data and build the trainer: every check on the settings happens here."""
    train, test = prepare_data(settings)
    _check_classes(model, train)
    model.class_names, model.dataset = train.class_names, settings.data
    resolve_layers(model.module, settings.record)
    trainer = Trainer(
        model,
        train,
        settings.config,
        test=test,
        validation=validation_data(settings),
        progress=progress,
        record_batch_loss=settings.record_batch_loss,
        dist=dist,
    )
    if state is not None:
        trainer.restore(state)
    return trainer, train


def _execute(
    store: Any,
    run_id: str,
    model: LoadedModel,
    settings: RunSettings,
    built: tuple[Trainer, ArrayDataset],
    callbacks: Sequence[Any],
) -> RunOutcome:
    trainer, train = built
    store.set_status(run_id, "running")
    probe = _probe_for(trainer, settings, train)
    if not store.artifacts(run_id, kind="probe"):  # both or neither, even after a crash
        store.add_run_arrays(
            run_id, {("probe", "indices"): probe.indices, ("probe", "labels"): probe.labels}
        )
    trainer.callbacks = [StoreRecorder(store, run_id, probe, settings), *callbacks]
    try:
        result = trainer.run()
    except KeyboardInterrupt:
        store.set_status(run_id, "interrupted")
        raise
    except BaseException:
        store.set_status(run_id, "failed")
        raise
    return RunOutcome(run_id, result, model)


def run_settings(record: RunRecord) -> RunSettings:
    """The settings a stored run was trained with (its config, read back)."""
    fields = RunSettings.__dataclass_fields__
    return RunSettings.from_dict({k: v for k, v in record.config.items() if k in fields})


def train_distributed(
    settings: RunSettings, store_path: str | Path, progress: Callable[[], Any]
) -> RunOutcome | None:
    """Train under torchrun when it launched this process, else as one process.

    Rank 0 (or the only process) records into the store at ``store_path``, with
    ``progress()`` the context manager of its progress callback; the other ranks only
    train and get None back: they have nothing to report.
    """
    from convscope.store import open_store
    from convscope.train.distributed import process_group_from_environment

    with process_group_from_environment() as dist:
        if not dist.is_main:
            train_run(settings, store=None, dist=dist)
            return None
        with open_store(store_path) as store, progress() as callback:
            return train_run(settings, store=store, progress=callback, dist=dist)


def train_run(
    settings: RunSettings,
    *,
    store: Any,
    progress: ProgressFn | None = None,
    callbacks: Sequence[Any] = (),
    dist: DistInfo | None = None,
    on_created: Callable[[str], None] | None = None,
) -> RunOutcome:
    """Create a run in ``store`` and train it, recording every epoch from epoch 0.

    Every check on the settings and data happens before the run is created, so a
    mistake leaves no run behind; ``on_created(run_id)`` hears the new run's id before
    training starts. Under torchrun, ranks other than 0 pass ``store=None``: they only
    train.
    """
    model = load_model(settings.model, seed=settings.config.seed)
    built = _build_trainer(model, settings, None, progress, dist)
    if store is None:  # a non-zero rank under torchrun: train only
        return RunOutcome("", built[0].run(), model)
    from convscope.probe.summary import batch_norm_momentum, count_params

    config = settings.to_dict() | {  # facts reading a study needs without building a model
        "build": model.build,
        "host": socket.gethostname(),
        "params": count_params(model.module)[0],
        "train_images": len(built[0].train_idx),
        "batch_norm_momentum": batch_norm_momentum(model.module),
    }
    name = settings.name or f"{model.name}-{settings.data}"
    run = store.create_run(
        name=name, model=model.name, dataset=settings.data, config=config, study=settings.study
    )
    if on_created:
        on_created(run.id)
    return _execute(store, run.id, model, settings, built, callbacks)


def resume_run(
    ref: str,
    *,
    store: Any,
    progress: ProgressFn | None = None,
    callbacks: Sequence[Any] = (),
) -> RunOutcome:
    """Continue an interrupted run from its last committed epoch (``callbacks`` as in training)."""
    from convscope.models.checkpoint import load_checkpoint

    run = store.run(ref)
    if run.status == "finished":
        raise ConvscopeError(
            f"run {run.id} ({run.name}) has already finished; nothing to resume (use it as "
            f"MODEL run:{run.id}, or copy its checkpoints: `convscope runs export {run.id} --to DIR`)"
        )
    if run.status == "running":
        raise ConvscopeError(
            f"run {run.id} ({run.name}) is still running (pid {run.pid} on {run.host}); "
            "stop it before resuming"
        )
    settings = run_settings(run)
    latest = store.latest_checkpoint(run.id)
    store.check(fix_orphans=True, verify_checksums=False)  # what a killed commit left behind
    if latest is None:  # killed before epoch 0 was committed: start again
        model = load_model(settings.model, seed=settings.config.seed)
        built = _build_trainer(model, settings, None, progress, None)
        return _execute(store, run.id, model, settings, built, callbacks)
    _, path = latest
    model = load_checkpoint(path)
    state = TrainerState.from_dict(read_torch_file(path)["extra"]["trainer_state"])
    built = _build_trainer(model, settings, state, progress, None)
    return _execute(store, run.id, model, settings, built, callbacks)


def probe_images(store: RunStore, record: RunRecord) -> np.ndarray | None:
    """The run's probe images (uint8 ``N x H x W[x C]``), or None when they cannot be rebuilt.

    A run stores only the probe's indices into the pixels it trained on: its dataset's
    train split (the stratified subset when it used one) followed by its validation
    split. They are rebuilt from the dataset and accepted only if their labels match
    the recorded probe labels.
    """
    try:
        settings = run_settings(record)
        train, _ = prepare_data(settings)
        validation = validation_data(settings)
        indices = store.run_array(record.id, "probe", "indices").astype(np.int64)
        labels = store.run_array(record.id, "probe", "labels").astype(np.int64)
    except (ConvscopeError, KeyError, TypeError, ValueError):
        return None
    pixels, all_labels = train.images, train.labels
    if validation is not None:
        if validation.images.shape[1:] != pixels.shape[1:]:
            return None
        pixels = np.concatenate([pixels, validation.images])
        all_labels = np.concatenate([all_labels, validation.labels])
    if len(indices) == 0 or len(indices) != len(labels):
        return None
    if indices.min() < 0 or indices.max() >= len(pixels):
        return None
    if not np.array_equal(all_labels[indices], labels):
        return None
    return np.asarray(pixels[indices])
