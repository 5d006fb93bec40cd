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
from typing import Any

from convscope.errors import ConvscopeError
from convscope.files import check_folder
from convscope.store.results import StudyResult, study_result
from convscope.store.store import DEFAULT_STORE_DIR
from convscope.train.constants import STUDY_MODELS
from convscope.train.loop import EpochMetrics, TrainConfig
from convscope.train.run import RunSettings, train_run


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
        study_plan={
            "models": list(settings.models),
            "seeds": settings.seeds,
            "seed": settings.config.seed,
        },
    )


@dataclass(frozen=True)
class StudyEpoch:
    """One finished epoch of one run of a study: what a progress display shows.

    ``done`` of ``total`` counts the trained epochs of the whole study (epoch 0, the
    state before training, is reported with the ``done`` of the epochs before it).
    """

    label: str
    run_id: str
    run_number: int
    runs: int
    epochs: int
    done: int
    total: int
    metrics: EpochMetrics
    stored: bool = False
    """True for a run's last epoch committed before this process (a resumed study)."""

    @property
    def epoch(self) -> int:
        return self.metrics.epoch

    def line(self) -> str:
        """``residual epoch 3/10: loss 0.4113  acc 0.8542  val loss ...  (31.2 s)``."""
        m = self.metrics
        val = (
            f"  val loss {m.val_loss:.4f}  val acc {m.val_acc:.4f}" if m.val_acc is not None else ""
        )
        if self.stored:
            return f"{self.label}: epochs 0-{m.epoch} already in the store;{val}"
        if m.train_loss is None:
            return f"{self.label} epoch 0 (before training):{val}"
        return (
            f"{self.label} epoch {m.epoch}/{self.epochs}: loss {m.train_loss:.4f}  "
            f"acc {m.train_acc:.4f}{val}  ({m.seconds:.1f} s)"
        )


StudyCallback = Callable[[StudyEpoch], None]


class _StudyReporter:
    """A trainer callback that turns one run's epochs into :class:`StudyEpoch` events."""

    def __init__(
        self, on_epoch: StudyCallback, label: str, run_number: int, runs: int, epochs: int
    ) -> None:
        self.on_epoch, self.label, self.run_number = on_epoch, label, run_number
        self.runs, self.epochs = runs, epochs
        self.run_id = ""

    def on_epoch_end(self, trainer: Any, metrics: EpochMetrics, stored: bool = False) -> None:
        before = (self.run_number - 1) * self.epochs
        self.on_epoch(
            StudyEpoch(
                label=self.label,
                run_id=self.run_id,
                run_number=self.run_number,
                runs=self.runs,
                epochs=self.epochs,
                done=before + metrics.epoch,
                total=self.runs * self.epochs,
                metrics=metrics,
                stored=stored,
            )
        )

    def on_train_end(self, trainer: Any, result: Any) -> None:
        pass

    def created(self, run_id: str) -> None:
        self.run_id = run_id


def _label(settings: StudySettings, model: str, offset: int) -> str:
    return model if settings.seeds == 1 else f"{model} (seed {settings.config.seed + offset})"


def run_study(
    settings: StudySettings,
    *,
    store: Any,
    out_dir: Path | None = None,
    progress_for: Callable[[str], Any] | None = None,
    on_epoch: StudyCallback | None = None,
) -> StudyResult:
    """Train every model of the study into ``store``; write the study folder if ``out_dir``.

    ``on_epoch`` hears about every finished epoch of every run (a :class:`StudyEpoch`);
    ``progress_for(label)`` gives the context manager of one run's per-batch progress.
    """
    return _train_plan(settings, {}, store, out_dir, progress_for, on_epoch)


def resume_study(
    name: str,
    *,
    store: Any,
    out_dir: Path | None = None,
    progress_for: Callable[[str], Any] | None = None,
    on_epoch: StudyCallback | None = None,
) -> StudyResult:
    """Finish an interrupted study from its runs in ``store``, with the settings it began with.

    A finished run is kept, an interrupted (or failed) one continues from its last
    committed epoch, and a run the study never started is trained. When every run has
    finished (the study was killed while writing its folder) only the folder is written.
    """
    settings, existing = study_plan(store, name)
    unfinished = [r for r in existing.values() if r.status != "finished"]
    running = [r for r in unfinished if r.status == "running"]
    if running:
        r = running[0]
        raise ConvscopeError(
            f"run {r.id} ({r.name}) of study {name!r} is still running (pid {r.pid} on "
            f"{r.host}); stop it before resuming the study"
        )
    return _train_plan(settings, existing, store, out_dir, progress_for, on_epoch)


def study_plan(store: Any, name: str) -> tuple[StudySettings, dict[tuple[str, int], Any]]:
    """The settings a stored study began with and its latest run per (model, seed)."""
    from convscope.train.run import run_settings as stored_settings

    records = store.runs_of_study(name)
    newest = stored_settings(records[-1])
    plan = newest.study_plan or {}
    models = tuple(plan.get("models") or dict.fromkeys(r.model for r in records))
    seeds = int(plan.get("seeds", 1))
    config = replace(newest.config, seed=int(plan.get("seed", newest.config.seed)))
    settings = StudySettings(
        name=name,
        models=models,
        data=newest.data,
        config=config,
        record=newest.record,
        subset=newest.subset,
        probe_per_class=newest.probe_per_class,
        validation=newest.validation,
        seeds=seeds,
    )
    existing = {}
    for record in records:  # oldest first: the latest run of each (model, seed) wins
        seed = stored_settings(record).config.seed
        existing[(record.model, seed)] = record
    return settings, existing


def _train_plan(
    settings: StudySettings,
    existing: dict[tuple[str, int], Any],
    store: Any,
    out_dir: Path | None,
    progress_for: Callable[[str], Any] | None,
    on_epoch: StudyCallback | None,
) -> StudyResult:
    """Train (or continue, or keep) every run of the plan, seed by seed, model by model."""
    from convscope.models.loading import load_model
    from convscope.probe.activations import resolve_layers
    from convscope.train.run import resume_run

    if out_dir is not None:  # fail on a bad folder, name or layer before hours of training
        check_folder(out_dir)
    for model in settings.models:
        resolve_layers(load_model(model).module, settings.record)
    runs = len(settings.models) * settings.seeds
    run_ids = []
    for number, (offset, model) in enumerate(
        ((o, m) for o in range(settings.seeds) for m in settings.models), start=1
    ):
        label = _label(settings, model, offset)
        run = run_settings(settings, model, offset)
        found = existing.get((model, run.config.seed))
        reporter = (
            _StudyReporter(on_epoch, label, number, runs, settings.config.epochs)
            if on_epoch
            else None
        )
        if found is not None and found.status == "finished":
            run_ids.append(found.id)
            if reporter:
                _report_stored(store, found.id, reporter)
            continue
        context = progress_for(label) if progress_for else nullcontext(None)
        with context as progress:
            if found is not None:
                if reporter:
                    reporter.run_id = found.id
                    _report_stored(store, found.id, reporter)
                outcome = resume_run(
                    found.id, store=store, progress=progress, callbacks=_listed(reporter)
                )
            else:
                outcome = train_run(
                    run,
                    store=store,
                    progress=progress,
                    callbacks=_listed(reporter),
                    on_created=reporter.created if reporter else None,
                )
            run_ids.append(outcome.run_id)
    result = study_result(store, settings.name, run_ids=run_ids, models=settings.models)
    if out_dir is not None:
        from convscope.report.study import write_study_folder

        write_study_folder(result, Path(out_dir))
    return result


def _listed(reporter: _StudyReporter | None) -> tuple[Any, ...]:
    return (reporter,) if reporter else ()


def _report_stored(store: Any, run_id: str, reporter: _StudyReporter) -> None:
    """Tell ``reporter`` how far a stored run got before this process (a resumed study)."""
    from convscope.train.trainer import metrics_from_values

    reporter.run_id = run_id
    rows = [row for row in store.metric_rows(run_id) if row.get("val_acc") is not None]
    if rows:
        reporter.on_epoch_end(None, metrics_from_values(rows[-1]), stored=True)


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
    on_epoch: StudyCallback | None = None,
    **train_options: Any,
) -> StudyResult:
    """Run a study from a notebook: ``convscope.study(epochs=2, subset=12000)``.

    ``train_options`` are further :class:`TrainConfig` fields (``lr``, ``seed``, ...).
    ``on_epoch(event)`` hears about every finished epoch (a :class:`StudyEpoch`, whose
    ``line()`` is what the CLI prints). The result renders itself (curves, table,
    confusion matrices) in Jupyter.
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
        return run_study(
            settings, store=opened, out_dir=Path(out) if out else None, on_epoch=on_epoch
        )
