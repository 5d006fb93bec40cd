"""The study: several architectures trained on one dataset with the same settings.

Reproduces the architectures reference: the four Fashion-MNIST models, Adam,
batch 500, validation split 0.2, ``hidden`` recorded on the probe set from epoch 0.
Each model is a run of one named study in the run store; the study folder's
pictures and tables are built from the store, so they can be redrawn any time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from convscope.errors import ConvscopeError
from convscope.files import check_folder
from convscope.store.store import DEFAULT_STORE_DIR
from convscope.train.constants import STUDY_MODELS
from convscope.train.loop import TrainConfig
from convscope.train.results import RunResult, StudyResult
from convscope.train.run import RunSettings, train_run

if TYPE_CHECKING:
    from convscope.store import RunStore


@dataclass(frozen=True)
class StudySettings:
    """What a study trains; the defaults are the reference's."""

    name: str = "architectures"
    models: tuple[str, ...] = STUDY_MODELS
    data: str = "fashion-mnist"
    config: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=10, batch_size=500))
    record: tuple[str, ...] = ("hidden",)
    subset: int | None = None
    probe_per_class: int = 100
    validation: str | None = None
    seeds: int = 1
    """Train every model this many times, with seeds ``config.seed``, ``config.seed + 1``, ..."""

    def __post_init__(self) -> None:
        if self.seeds < 1:
            raise ConvscopeError("--seeds must be at least 1")
        if not self.models:
            raise ConvscopeError("a study needs at least one model")
        if len(set(self.models)) != len(self.models):
            raise ConvscopeError("each model may appear only once in a study")


def run_settings(settings: StudySettings, model: str, seed_offset: int = 0) -> RunSettings:
    """The run settings of one model of the study (and one of its seeds)."""
    name = f"{settings.name}/{model}"
    config = settings.config
    if settings.seeds > 1:
        config = replace(config, seed=config.seed + seed_offset)
        name = f"{name}/seed{config.seed}"
    return RunSettings(
        model=model,
        data=settings.data,
        config=config,
        record=settings.record,
        probe_per_class=settings.probe_per_class,
        subset=settings.subset,
        validation=settings.validation,
        name=name,
        study=settings.name,
    )


def run_study(
    settings: StudySettings,
    *,
    store: Any,
    out_dir: Path | None = None,
    progress_for: Callable[[str], Any] | None = None,
) -> StudyResult:
    """Train every model of the study into ``store``; write the study folder if ``out_dir``."""
    from convscope.models.loading import load_model
    from convscope.probe.activations import resolve_layers

    if out_dir is not None:  # fail on a bad folder, name or layer before hours of training
        check_folder(out_dir)
    for model in settings.models:
        resolve_layers(load_model(model).module, settings.record)
    run_ids = []
    for offset in range(settings.seeds):
        for model in settings.models:
            label = (
                model if settings.seeds == 1 else f"{model} (seed {settings.config.seed + offset})"
            )
            context = progress_for(label) if progress_for else nullcontext(None)
            with context as progress:
                run = run_settings(settings, model, offset)
                run_ids.append(train_run(run, store=store, progress=progress).run_id)
    result = study_result(store, settings.name, run_ids=run_ids, settings=settings)
    if out_dir is not None:
        from convscope.render.study import write_study_folder

        write_study_folder(result, Path(out_dir))
    return result


def run_result(store: Any, run_id: str) -> RunResult:
    """A run's curves, test numbers and confusion matrix, read back from the store."""
    from convscope.data.classes import class_names_for, dataset_class_names
    from convscope.models.loading import load_model
    from convscope.probe.summary import count_params

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
        params=count_params(load_model(run.config.get("model", run.model)).module)[0],
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
    )


def study_result(
    store: Any,
    name: str,
    *,
    run_ids: Sequence[str] | None = None,
    settings: StudySettings | None = None,
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
    config = first.config.get("config", {})
    info = {
        "dataset": first.dataset,
        **config,
        "record": first.config.get("record"),
        "subset": first.config.get("subset"),
        "probe_per_class": first.config.get("probe_per_class"),
    }
    if settings is not None:
        info["models"] = list(settings.models)
    return StudyResult(name=name, dataset=first.dataset, runs=runs, settings=info)


def study(
    models: Sequence[str] = STUDY_MODELS,
    *,
    data: str = "fashion-mnist",
    epochs: int = 10,
    batch_size: int = 500,
    subset: int | None = None,
    record: Sequence[str] = ("hidden",),
    name: str = "architectures",
    store: str | Path = DEFAULT_STORE_DIR,
    out: str | Path | None = None,
    seeds: int = 1,
    **train_options: Any,
) -> StudyResult:
    """Run a study from a notebook: ``convscope.study(epochs=2, subset=12000)``.

    ``train_options`` are further :class:`TrainConfig` fields (``lr``, ``seed``, ...).
    The result renders itself (curves, table, confusion matrices) in Jupyter.
    """
    from convscope.store import open_store

    config = TrainConfig(epochs=epochs, batch_size=batch_size, **train_options)
    settings = StudySettings(
        name=name,
        models=tuple(models),
        data=data,
        config=config,
        record=tuple(record),
        subset=subset,
        seeds=seeds,
    )
    with open_store(store) as opened:
        return run_study(settings, store=opened, out_dir=Path(out) if out else None)


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
