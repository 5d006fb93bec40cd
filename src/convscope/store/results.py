"""The read-models of runs and studies: what a finished run or study shows, from the store.

Plain results (:class:`RunResult`, :class:`StudyResult`) and the functions that read
them back from a run store. ``render/`` and ``report/`` draw them without knowing how
runs are trained; reading a study loads no model (a run stores its parameter count).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from convscope.errors import ConvscopeError

if TYPE_CHECKING:
    from convscope.store.store import RunStore


@dataclass(frozen=True)
class RunResult:
    """What one trained run shows in a study: curves, final numbers, confusion matrix.

    Curve arrays are aligned with ``epochs`` (which starts at 0, the state before
    any update); a value that does not exist (train loss at epoch 0) is NaN.
    ``confusion`` has true classes in rows and predicted classes in columns.
    """

    run_id: str
    name: str
    model: str
    params: int
    epochs: np.ndarray
    train_loss: np.ndarray
    train_acc: np.ndarray
    val_loss: np.ndarray
    val_acc: np.ndarray
    class_names: tuple[str, ...]
    test_loss: float | None = None
    test_acc: float | None = None
    seconds_per_epoch: float | None = None
    confusion: np.ndarray | None = None
    updates: int | None = None
    """Optimizer steps over the whole run (None when the run's data size is unknown)."""
    batch_norm_momentum: float | None = None
    """The smallest PyTorch batch-norm momentum of the model (None: no batch norm)."""
    optimizer: str | None = None

    @property
    def chance(self) -> float:
        """The accuracy of guessing: one over the number of classes."""
        return 1.0 / max(1, len(self.class_names))

    def final(self, name: str) -> float | None:
        """The last finite value of a curve (``train_acc``, ``val_acc``, ...), or None."""
        values = np.asarray(getattr(self, name), dtype=float)
        finite = values[np.isfinite(values)]
        return float(finite[-1]) if finite.size else None


@dataclass(frozen=True)
class StudyResult:
    """Several runs trained with the same settings on one dataset."""

    name: str
    dataset: str
    runs: list[RunResult]
    settings: dict[str, Any] = field(default_factory=dict)

    def _repr_html_(self) -> str:
        from convscope.report.study import study_html

        return study_html(self)


def run_result(store: Any, run_id: str) -> RunResult:
    """A run's curves, test numbers and confusion matrix, read back from the store."""
    from convscope.data.classes import class_names_for, dataset_class_names

    run = store.run(run_id)
    metrics = store.metrics(run.id)
    epochs = metrics["epoch"]

    def series(name: str) -> np.ndarray:
        return metrics.get(name, np.full(len(epochs), np.nan))

    last = lambda name: float(series(name)[-1]) if not np.isnan(series(name)[-1]) else None  # noqa: E731
    seconds = series("seconds")[1:]
    confusion = store.artifacts(run.id, kind="confusion")
    return RunResult(
        run_id=run.id,
        name=run.name,
        model=run.model,
        params=_params(run),
        epochs=epochs.astype(int),
        train_loss=series("train_loss"),
        train_acc=series("train_acc"),
        val_loss=series("val_loss"),
        val_acc=series("val_acc"),
        class_names=dataset_class_names(run.dataset) or class_names_for(None, 10),
        test_loss=last("test_loss"),
        test_acc=last("test_acc"),
        seconds_per_epoch=float(np.nanmean(seconds)) if len(seconds) else None,
        confusion=store.load_array(confusion[0]) if confusion else None,
        updates=updates_of(run, int(epochs.max()) if len(epochs) else 0),
        batch_norm_momentum=_batch_norm_momentum(run),
        optimizer=run.config.get("config", {}).get("optimizer"),
    )


def updates_of(run: Any, epochs: int) -> int | None:
    """Optimizer steps of ``epochs`` epochs: batches per epoch from the run's training images.

    Runs store their number of training images; for older runs it is worked out from
    the dataset's size, the subset and the validation split.
    """
    config = run.config
    train = config.get("config", {})
    batch = train.get("batch_size")
    images = config.get("train_images")
    if images is None:
        from convscope.data.registry import get_info

        try:
            size = config.get("subset") or get_info(run.dataset).split_sizes["train"]
        except (ConvscopeError, KeyError):
            return None
        split = 0.0 if config.get("validation") else float(train.get("val_split", 0.0))
        images = size - round(size * split)
    if not batch:
        return None
    return -(-int(images) // int(batch)) * epochs


def _batch_norm_momentum(run: Any) -> float | None:
    """The model's batch-norm momentum: stored with the run (older runs: its model, built)."""
    if "batch_norm_momentum" in run.config:
        return run.config["batch_norm_momentum"]
    from convscope.models.loading import load_model
    from convscope.probe.summary import batch_norm_momentum

    try:
        return batch_norm_momentum(load_model(run.config.get("model", run.model)).module)
    except ConvscopeError:
        return None


def _params(run: Any) -> int:
    """The run's parameter count: stored when it was trained (older runs: its model, built)."""
    if isinstance(run.config.get("params"), int):
        return run.config["params"]
    from convscope.models.loading import load_model
    from convscope.probe.summary import count_params

    return count_params(load_model(run.config.get("model", run.model)).module)[0]


def study_result(
    store: Any,
    name: str,
    *,
    run_ids: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
) -> StudyResult:
    """The study's runs (its latest run of each model and seed, or ``run_ids``) as a StudyResult."""
    if run_ids is None:
        latest: dict[tuple[str, object], str] = {}
        for run in store.runs_of_study(name):  # runs come oldest first
            latest[(run.model, run.config.get("config", {}).get("seed"))] = run.id
        run_ids = list(latest.values())
    if not run_ids:
        raise ConvscopeError(
            f"no runs in study {name!r}; run `convscope study --name {name}` first"
        )
    runs = [run_result(store, run_id) for run_id in run_ids]
    first = store.run(run_ids[0])
    info = study_settings(first)
    if models is not None:
        info["models"] = list(models)
    return StudyResult(name=name, dataset=first.dataset, runs=runs, settings=info)


def study_settings(run: Any) -> dict[str, Any]:
    """The settings a study's run was trained with, only those that applied to it.

    Momentum is an SGD setting and is left out for Adam; settings that were off (no
    schedule, no early stopping, no subset) are left out too.
    """
    config = dict(run.config.get("config", {}))
    if config.get("optimizer") != "sgd":
        config.pop("momentum", None)
    if config.get("lr_schedule") in (None, "none"):
        config.pop("lr_schedule", None)
    info = {
        "dataset": run.dataset,
        **config,
        "record": run.config.get("record"),
        "subset": run.config.get("subset"),
        "probe_per_class": run.config.get("probe_per_class"),
    }
    return {k: v for k, v in info.items() if v is not None}


def resolve_runs(store: RunStore, refs: Sequence[str]) -> tuple[str, list[str]]:
    """A title and the run ids that ``refs`` name: study names, run ids, id prefixes, run names."""
    if not refs:
        raise ConvscopeError("name a study or at least one run (see `convscope runs list`)")
    studies = set(store.studies())
    ids: list[str] = []
    for ref in refs:
        if ref in studies:
            ids += [r.run_id for r in study_result(store, ref).runs]
        else:
            ids.append(store.run(ref).id)
    title = refs[0] if len(refs) == 1 and refs[0] in studies else ", ".join(refs)
    return title, list(dict.fromkeys(ids))
