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
    status: str = "finished"
    """The run's status in the store (``finished``, ``interrupted``, ``running``, ``failed``)."""
    seed: int | None = None
    left_out: dict[str, str] = field(default_factory=dict)
    """The study's other runs of this model that its results leave out (see
    :func:`study_runs`): run id → one line naming the run, why, and how to finish it."""

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
    """Several runs trained with the same settings on one dataset.

    ``left_out`` names, one line each, the study's runs that ``runs`` leaves out
    (unfinished runs of a model that has a finished one; see :func:`study_runs`).
    """

    name: str
    dataset: str
    runs: list[RunResult]
    settings: dict[str, Any] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)

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
        status=str(run.status),
        seed=_seed(run),
        left_out=_left_out_of_model(store, run),
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
    """The study's runs (those :func:`study_runs` picks, or ``run_ids``) as a StudyResult."""
    left_out: list[str] = []
    if run_ids is None:
        run_ids, left = _pick(store.runs_of_study(name), name)
        left_out = [line for _, line in left]
    if not run_ids:
        raise ConvscopeError(
            f"no runs in study {name!r}; run `convscope study --name {name}` first"
        )
    runs = [run_result(store, run_id) for run_id in run_ids]
    first = store.run(run_ids[0])
    info = study_settings(first)
    if models is not None:
        info["models"] = list(models)
    return StudyResult(
        name=name, dataset=first.dataset, runs=runs, settings=info, left_out=left_out
    )


def study_runs(store: Any, name: str) -> tuple[list[str], list[str]]:
    """The run ids a study's results show, and one line for each run they leave out.

    Per model and seed, the latest finished run. A model and seed with no finished run
    is left out when the same model has a finished run (an interrupted seed would
    otherwise decide the model's scores); a model none of whose runs has finished yet
    (a study in progress) shows its latest run of each seed. A run newer than the
    finished run of its model and seed is left out too. Left-out runs are named, never
    dropped silently: ``sequential seed 1 (run 48a8ce30, interrupted at epoch 0):
    `convscope study --resume architectures` finishes it``.
    """
    run_ids, left = _pick(store.runs_of_study(name), name)
    return run_ids, [line for _, line in left]


def _seed(run: Any) -> int | None:
    return run.config.get("config", {}).get("seed")


def _pick(records: Sequence[Any], study: str) -> tuple[list[str], list[tuple[Any, str]]]:
    """:func:`study_runs` on the study's run records (oldest first); left-out records kept."""
    latest: dict[tuple[str, object], Any] = {}
    finished: dict[tuple[str, object], Any] = {}
    for run in records:
        key = (run.model, _seed(run))
        latest[key] = run
        if run.status == "finished":
            finished[key] = run
    done = {model for model, _ in finished}
    run_ids: list[str] = []
    left: list[tuple[Any, str]] = []
    for key, run in latest.items():
        if key in finished:
            run_ids.append(finished[key].id)
            if run is not finished[key]:
                left.append((run, _left_out_line(run, study, instead=finished[key].id)))
        elif run.model in done:
            left.append((run, _left_out_line(run, study)))
        else:
            run_ids.append(run.id)
    return run_ids, left


def _left_out_line(run: Any, study: str, instead: str | None = None) -> str:
    seed = _seed(run)
    who = f"{run.model} seed {seed}" if seed is not None else run.model
    epoch = max(run.epochs_completed, 0)
    if run.status == "running":
        state = f"still running, at epoch {epoch}"
        todo = "it counts once it has finished"
    else:
        state = f"{run.status} at epoch {epoch}"
        todo = f"`convscope study --resume {study}` finishes it"
    used = f"; its finished run {instead} is used" if instead else ""
    return f"{who} (run {run.id}, {state}{used}): {todo}"


def _left_out_of_model(store: Any, run: Any) -> dict[str, str]:
    """The runs of ``run``'s study and model that :func:`study_runs` leaves out."""
    if not run.study:
        return {}
    _, left = _pick(store.runs_of_study(run.study), run.study)
    return {r.id: line for r, line in left if r.model == run.model and r.id != run.id}


def study_settings(run: Any) -> dict[str, Any]:
    """The settings a study's run was trained with, only those that applied to it.

    Momentum is an SGD setting and is left out for Adam; settings that were off (no
    schedule, no weight decay, no early stopping, no subset) are left out too.
    """
    config = dict(run.config.get("config", {}))
    if config.get("optimizer") != "sgd":
        config.pop("momentum", None)
    if config.get("lr_schedule") in (None, "none"):
        config.pop("lr_schedule", None)
    if not config.get("weight_decay"):
        config.pop("weight_decay", None)
    info = {
        "dataset": run.dataset,
        **config,
        "record": run.config.get("record"),
        "subset": run.config.get("subset"),
        "probe_per_class": run.config.get("probe_per_class"),
    }
    return {k: v for k, v in info.items() if v is not None}


def resolve_runs(store: RunStore, refs: Sequence[str]) -> tuple[str, list[str]]:
    """A title and the run ids that ``refs`` name: study names, run ids, id prefixes, run names.

    A study stands for the runs :func:`study_runs` picks; each picked run's
    :attr:`RunResult.left_out` names the runs of its model that were left out.
    """
    if not refs:
        raise ConvscopeError("name a study or at least one run (see `convscope runs list`)")
    studies = set(store.studies())
    ids: list[str] = []
    for ref in refs:
        if ref in studies:
            ids += study_runs(store, ref)[0]
        else:
            ids.append(store.run(ref).id)
    title = refs[0] if len(refs) == 1 and refs[0] in studies else ", ".join(refs)
    return title, list(dict.fromkeys(ids))
