"""Maps and scores of a recorded run's layer, epoch by epoch, cached in the run store.

A layout and its scores are stored as arrays of the epoch they describe, named
``<layer>.<params key>`` (kinds ``embedding`` and ``separation``), so a report or the
dashboard reads them back instead of recomputing. Epochs are computed in order, each
from the previous epoch's aligned layout; snapshots are read one epoch at a time.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convscope.data.classes import class_names_for, dataset_class_names
from convscope.embed.projection import ProjectionParams, fit_layout
from convscope.embed.scores import SCORE_NAMES, SeparationScores, separation_scores
from convscope.errors import LayerError
from convscope.naming import close_matches
from convscope.probe.base import FigureResult
from convscope.store.records import ArtifactRecord
from convscope.store.store import RunStore, open_store

EMBEDDING_KIND = "embedding"
SCORES_KIND = "separation"


@dataclass
class RunEmbedding(FigureResult):
    """Aligned 2-D maps of one layer of one run, per epoch, with their separation scores."""

    run_id: str
    run_name: str
    model: str
    layer: str
    params: ProjectionParams
    labels: np.ndarray
    class_names: tuple[str, ...]
    layouts: dict[int, np.ndarray]
    scores: dict[int, SeparationScores] = field(default_factory=dict)
    computed: list[int] = field(default_factory=list)
    """Epochs computed by this call (the others came from the cache)."""

    @property
    def name(self) -> str:
        """The run's name (for legends shared with training curves)."""
        return self.run_name

    @property
    def epochs(self) -> list[int]:
        """The epochs mapped, in order."""
        return sorted(self.layouts)

    def figure(self, **options: Any):
        """Maps over epochs (see :func:`convscope.render.embedding.plot_embedding_grid`)."""
        from convscope.render.embedding import plot_embedding_grid

        return plot_embedding_grid([self], **options)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the run, the parameters and the scores per epoch (no coordinates)."""
        return {
            "run": self.run_id,
            "name": self.run_name,
            "model": self.model,
            "layer": self.layer,
            "method": self.params.method,
            "params": self.params.relevant(),
            "key": self.params.key(),
            "points": len(self.labels),
            "epochs": [
                {"epoch": e, **(self.scores[e].to_dict() if e in self.scores else {})}
                for e in self.epochs
            ],
            "computed_epochs": list(self.computed),
        }


def embed_run(
    store: RunStore | str | os.PathLike[str],
    ref: str,
    layer: str,
    params: ProjectionParams | None = None,
    *,
    with_scores: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> RunEmbedding:
    """Aligned maps (and scores) of ``layer`` for every recorded epoch of run ``ref``.

    ``store`` is an open :class:`RunStore` or the path of one. Cached epochs are read
    back; the rest are computed in order and stored. ``progress(done, total)`` is
    called after each epoch.
    """
    if not isinstance(store, RunStore):
        with open_store(store, create=False) as opened:
            return embed_run(opened, ref, layer, params, with_scores=with_scores, progress=progress)
    params = params or ProjectionParams()
    run = store.run(ref)
    snapshots = snapshot_records(store, run.id, layer)
    labels = store.run_array(run.id, "probe", "labels")
    name = f"{layer}.{params.key()}"
    cached = {a.epoch: a for a in store.artifacts(run.id, kind=EMBEDDING_KIND, name=name)}
    cached_scores = {a.epoch: a for a in store.artifacts(run.id, kind=SCORES_KIND, name=name)}
    result = RunEmbedding(
        run_id=run.id,
        run_name=run.name,
        model=run.model,
        layer=layer,
        params=params,
        labels=labels,
        class_names=_class_names(run.dataset, labels),
        layouts={},
    )
    previous: np.ndarray | None = None
    for done, (epoch, snapshot) in enumerate(sorted(snapshots.items()), start=1):
        hidden: np.ndarray | None = None
        if epoch in cached:
            layout = store.load_array(cached[epoch])
        else:
            hidden = store.load_array(snapshot)
            before = previous if params.aligned else None
            layout = fit_layout(hidden, params, init=before, reference=before)
            store.add_run_array(run.id, EMBEDDING_KIND, name, layout, epoch=epoch)
            result.computed.append(epoch)
        if with_scores:
            result.scores[epoch] = _scores(
                store,
                run.id,
                name,
                epoch,
                cached_scores.get(epoch),
                hidden,
                snapshot,
                layout,
                labels,
            )
        result.layouts[epoch] = layout
        previous = layout
        if progress is not None:
            progress(done, len(snapshots))
    return result


def _scores(
    store: RunStore,
    run_id: str,
    name: str,
    epoch: int,
    cached: ArtifactRecord | None,
    hidden: np.ndarray | None,
    snapshot: ArtifactRecord,
    layout: np.ndarray,
    labels: np.ndarray,
) -> SeparationScores:
    """The epoch's scores from the cache, or computed and stored."""
    if cached is not None:
        values = store.load_array(cached)
        return SeparationScores(**dict(zip(SCORE_NAMES, map(float, values), strict=True)))
    if hidden is None:
        hidden = store.load_array(snapshot)
    scores = separation_scores(hidden, layout, labels)
    values = np.array([getattr(scores, n) for n in SCORE_NAMES], dtype=np.float64)
    store.add_run_array(run_id, SCORES_KIND, name, values, epoch=epoch)
    return scores


def snapshot_records(store: RunStore, run_id: str, layer: str) -> dict[int, ArtifactRecord]:
    """The run's snapshot files of ``layer`` by epoch; a layer never recorded is an error."""
    found = {
        a.epoch: a
        for a in store.artifacts(run_id, kind="snapshot", name=layer)
        if a.epoch is not None
    }
    if found:
        return found
    layers = sorted({a.name for a in store.artifacts(run_id, kind="snapshot")})
    if not layers:
        raise LayerError(
            f"run {run_id} recorded no layer outputs; train with --record LAYER (e.g. --record hidden)"
        )
    raise LayerError(
        f"run {run_id} has no recorded layer {layer!r}{close_matches(layer, layers)} "
        f"(recorded: {', '.join(layers)})"
    )


def _class_names(dataset: str, labels: np.ndarray) -> tuple[str, ...]:
    names = dataset_class_names(dataset)
    return names if names is not None else class_names_for(None, int(labels.max()) + 1)
