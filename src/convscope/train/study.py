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

from convscope.errors import ConvscopeError
from convscope.files import check_folder
from convscope.store.results import StudyResult, study_result
from convscope.store.store import DEFAULT_STORE_DIR
from convscope.train.constants import STUDY_MODELS
from convscope.train.loop import TrainConfig
from convscope.train.run import RunSettings, train_run

if TYPE_CHECKING:
    pass


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
    result = study_result(store, settings.name, run_ids=run_ids, models=settings.models)
    if out_dir is not None:
        from convscope.report.study import write_study_folder

        write_study_folder(result, Path(out_dir))
    return result


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
