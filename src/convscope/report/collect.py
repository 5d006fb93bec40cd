"""Gather what a report shows from the run store: results, maps, scores, kernels, feature maps.

Everything here is computed (or read from the store's cache) and returned as result
objects; :mod:`convscope.report.page` draws them. Maps and scores come from
:func:`convscope.embed.runs.embed_run`, so a second report of the same runs reuses them.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from torch import nn

from convscope.embed.projection import ProjectionParams
from convscope.embed.runs import RunEmbedding, embed_run
from convscope.errors import ConvscopeError
from convscope.report.verdict import ModelScores, model_scores, ranking_document
from convscope.store.results import StudyResult, resolve_runs, run_result, study_settings
from convscope.store.store import RunStore

Progress = Callable[[str, int, int], None]


@dataclass
class ModelPart:
    """One model's pictures: summary, diagram, first-layer kernels over epochs, feature maps."""

    model: str
    run_id: str
    summary: Any
    graph: Any
    kernels: Any | None
    features: Any | None
    problems: list[str] = field(default_factory=list)


@dataclass
class ReportData:
    """Everything one report shows."""

    title: str
    study: StudyResult
    layer: str | None
    embeddings: list[RunEmbedding]
    ranking: list[ModelScores]
    models: list[ModelPart]
    versions: dict[str, str]
    created: str


@dataclass
class Ranking:
    """The runs a report covers, their maps and scores, and the ranking the verdict rests on."""

    title: str
    study: StudyResult
    layer: str | None
    embeddings: list[RunEmbedding]
    ranking: list[ModelScores]

    def to_dict(self) -> dict[str, Any]:
        """``{"verdict", "ranking"}``: what ``convscope report --json`` prints."""
        return ranking_document(self.ranking)


def collect_ranking(
    store: RunStore,
    refs: Sequence[str],
    *,
    layer: str | None = None,
    params: ProjectionParams | None = None,
    progress: Progress | None = None,
) -> Ranking:
    """The maps (computed once, then cached in the store), scores and ranking of ``refs``.

    ``layer`` defaults to the first layer the runs recorded (``hidden`` in a study).
    """
    title, run_ids = resolve_runs(store, refs)
    runs = [run_result(store, run_id) for run_id in run_ids]
    first = store.run(run_ids[0])
    study = StudyResult(
        name=title, dataset=first.dataset, runs=runs, settings=study_settings(first)
    )
    layer = layer or recorded_layer(store, run_ids)
    embeddings = []
    if layer is not None:
        for done, run_id in enumerate(run_ids, start=1):
            report = _sub_progress(progress, f"maps of {store.run(run_id).name}")
            embeddings.append(embed_run(store, run_id, layer, params, progress=report))
            if progress:
                progress("maps", done, len(run_ids))
    return Ranking(title, study, layer, embeddings, model_scores(embeddings, runs))


def collect_report(
    store: RunStore,
    refs: Sequence[str],
    *,
    layer: str | None = None,
    params: ProjectionParams | None = None,
    image: str | None = None,
    progress: Progress | None = None,
) -> ReportData:
    """Read (or compute and cache) everything the report on ``refs`` needs.

    ``layer`` defaults to the first layer the runs recorded (``hidden`` in a study);
    ``image`` (a SPEC) is the input of the sample feature maps, by default the first
    test image of the runs' dataset; a SPEC that names no image is refused before any work.
    """
    resolve_runs(store, refs)  # an unknown study or run fails before any work
    if image is not None:
        from convscope.data.spec import resolve_images

        resolve_images(image)
    ranked = collect_ranking(store, refs, layer=layer, params=params, progress=progress)
    models = []
    seen: set[str] = set()
    run_ids = [run.run_id for run in ranked.study.runs]
    for done, run_id in enumerate(run_ids, start=1):
        run = store.run(run_id)
        if run.model not in seen:
            seen.add(run.model)
            models.append(_model_part(store, run_id, image or f"{run.dataset}:test:0"))
        if progress:
            progress("models", done, len(run_ids))
    return ReportData(
        title=ranked.title,
        study=ranked.study,
        layer=ranked.layer,
        embeddings=ranked.embeddings,
        ranking=ranked.ranking,
        models=models,
        versions=versions(),
        created=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def versions() -> dict[str, str]:
    """Versions of convscope, Python and the libraries whose numbers are in the report."""
    import matplotlib
    import numpy
    import sklearn
    import torch
    import torchvision

    from convscope import __version__

    found = {
        "convscope": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
        "matplotlib": matplotlib.__version__,
        "platform": platform.platform(),
    }
    try:
        from importlib.metadata import version

        found["umap-learn"] = version("umap-learn")
    except Exception:
        pass
    return found


def recorded_layer(store: RunStore, run_ids: Sequence[str]) -> str | None:
    """The first layer every run recorded, or None."""
    common: set[str] | None = None
    for run_id in run_ids:
        names = {a.name for a in store.artifacts(run_id, kind="snapshot")}
        common = names if common is None else common & names
    if not common:
        return None
    recorded = store.run(run_ids[0]).config.get("record") or []
    ordered = [name for name in recorded if name in common]
    return ordered[0] if ordered else sorted(common)[0]


def _sub_progress(progress: Progress | None, label: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress(label, done, total)


def _model_part(store: RunStore, run_id: str, image: str) -> ModelPart:
    """Summary, diagram, first-conv kernels over epochs and sample feature maps of one run."""
    from convscope.models.loading import load_model
    from convscope.probe.features import feature_maps
    from convscope.probe.graph import model_graph
    from convscope.probe.kernels import kernels_over_epochs
    from convscope.probe.summary import summarize

    run = store.run(run_id)
    model = load_model(f"run:{run_id}", store=store.root)
    part = ModelPart(
        model=run.model,
        run_id=run_id,
        summary=summarize(model),
        graph=model_graph(model),
        kernels=None,
        features=None,
    )
    conv, pool = _first_layers(model.module)
    if conv is not None:
        try:
            part.kernels = kernels_over_epochs(store, run_id, conv)
        except ConvscopeError as error:
            part.problems.append(f"kernels of {conv}: {error}")
    layers = [name for name in (conv, pool) if name is not None]
    if layers:
        try:
            part.features = feature_maps(model, image, layers)
        except ConvscopeError as error:
            part.problems.append(f"feature maps: {error}")
    return part


def _first_layers(module: nn.Module) -> tuple[str | None, str | None]:
    """The names of the first convolution and the first pooling layer."""
    conv = pool = None
    for name, layer in module.named_modules():
        weight = getattr(layer, "weight", None)
        if conv is None and name and getattr(weight, "dim", lambda: 0)() == 4:
            conv = name
        if pool is None and isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
            pool = name
    return conv, pool
