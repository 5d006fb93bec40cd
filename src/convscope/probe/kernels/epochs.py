"""Kernels over epochs: the kernels a recorded run kept each epoch, :class:`KernelEpochs`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from convscope.errors import ConvscopeError, LayerError
from convscope.naming import close_matches
from convscope.probe.base import FigureResult
from convscope.probe.kernels.arrays import default_channel_order
from convscope.probe.kernels.display import (
    KernelGrid,
    _check_options,
    _normalize,
    kernel_grid,
    kernel_images,
)
from convscope.probe.kernels.health import KernelHealth, kernel_health
from convscope.probe.kernels.weights import KernelSet

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(eq=False)
class KernelEpochs(FigureResult):
    """A layer's kernels as a recorded run kept them: ``weights`` is ``E x O x I x H x W``.

    Epoch 0 is the state before training.
    """

    model: str
    run_id: str
    layer: str
    epochs: list[int]
    weights: np.ndarray
    channel_order: str | None

    def at(self, epoch: int) -> KernelSet:
        """The kernels at one recorded epoch."""
        if epoch not in self.epochs:
            raise ConvscopeError(
                f"run {self.run_id} has no kernels of epoch {epoch}; recorded epochs: "
                f"{_epoch_list(self.epochs)}"
            )
        return KernelSet(
            model=f"{self.model} epoch {epoch}",
            layer=self.layer,
            weights=self.weights[self.epochs.index(epoch)],
            channel_order=self.channel_order,
            layer_type="recorded",
            source=self.layer,
        )

    def health(self) -> list[KernelHealth]:
        """The health numbers at every epoch."""
        return [
            kernel_health(w, model=f"{self.model} epoch {e}", layer=self.layer)
            for e, w in zip(self.epochs, self.weights, strict=True)
        ]

    def _scale(self, norm: str, reduce: str | None) -> tuple[float, float] | None:
        """The range shared by every epoch (None for per-kernel)."""
        if norm == "per-kernel":
            return None
        stacked = np.concatenate(
            [
                kernel_images(w, self.channel_order, reduce=reduce, per_channel=False)
                for w in self.weights
            ]
        )
        return _normalize(stacked, norm, None)[1]

    def _reduce_for(self, reduce: str | None) -> str | None:
        return reduce if reduce is not None or self.weights.shape[2] in (1, 3) else "mean"

    def frames(
        self, norm: str = "layer", *, reduce: str | None = None, cols: int | None = None
    ) -> list[KernelGrid]:
        """One grid per epoch on one shared scale (the frames of an animation).

        Deep kernels are reduced (``mean`` unless ``reduce`` says otherwise).
        """
        reduce = self._reduce_for(reduce)
        _check_options(norm, reduce, False)
        scale = self._scale(norm, reduce)
        grids = []
        for epoch in self.epochs:
            grid = kernel_grid(self.at(epoch), norm, reduce=reduce, cols=cols, scale=scale)
            grid.title = f"{self.model} · {self.layer} · epoch {epoch}"
            if scale is not None:
                grid.caption += " The scale is shared by every epoch."
            grids.append(grid)
        return grids

    def grid(
        self, norm: str = "layer", *, reduce: str | None = None, limit: int | None = 16
    ) -> KernelGrid:
        """Kernels over epochs: one row per epoch, one column per kernel (the first ``limit``).

        ``layer`` and ``diverging`` share one scale across all epochs and kernels, so
        growth and change are visible; deep kernels are reduced (``mean`` by default).
        """
        reduce = self._reduce_for(reduce)
        _check_options(norm, reduce, False)
        n_out = self.weights.shape[1]
        shown = n_out if limit is None else min(n_out, limit)
        if shown < 1:
            raise ConvscopeError(f"--limit must be at least 1, got {limit}")
        scale = self._scale(norm, reduce)
        per_epoch = [
            kernel_grid(self.at(e), norm, reduce=reduce, limit=shown, scale=scale)
            for e in self.epochs
        ]
        tiles = np.concatenate([g.tiles for g in per_epoch])
        first = per_epoch[0]
        caption = first.caption.replace(f" First {shown} of {n_out} kernels.", "")
        caption += " The scale is shared by every epoch." if scale is not None else ""
        if shown < n_out:
            caption += f" First {shown} of {n_out} kernels."
        nonfinite = tuple(sorted({i for g in per_epoch for i in g.nonfinite}))
        return KernelGrid(
            model=self.model,
            layer=self.layer,
            shape=tuple(int(s) for s in self.weights.shape[1:]),  # type: ignore[arg-type]
            channel_order=self.channel_order,
            normalization=norm,
            reduce=reduce,
            layout="epochs",
            tiles=tiles,
            rows=len(self.epochs),
            cols=shown,
            row_labels=[f"epoch {e}" for e in self.epochs],
            col_labels=[str(i) for i in range(shown)],
            row_title="",
            col_title="kernel",
            scale=scale,
            caption=caption,
            nonfinite=nonfinite,
            shown=shown,
            title=f"{self.model} · {self.layer}: kernels over {len(self.epochs)} epochs",
        )

    def figure(self, **options: Any) -> Figure:
        """The kernels-over-epochs grid (options as for :meth:`grid`)."""
        return self.grid(**options).figure()

    def save(self, path: str, **options: Any) -> str:
        """The grid as .png/.svg/.pdf, or a .gif with one frame per epoch (options of
        :meth:`frames` for a GIF, of :meth:`grid` otherwise)."""
        from pathlib import Path

        if Path(path).suffix.lower() != ".gif":
            return super().save(path, **options)
        from convscope.render.kernels import save_kernel_animation

        return str(save_kernel_animation(self.frames(**options), path))

    def health_figure(self) -> Figure:
        """Health numbers per epoch (see ``kernel_health_epochs_figure``)."""
        from convscope.render.kernels import kernel_health_epochs_figure

        return kernel_health_epochs_figure(self.epochs, self.health(), title=self._title())

    def _title(self) -> str:
        return f"{self.model} · {self.layer}: kernel health over epochs"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metadata."""
        return {
            "model": self.model,
            "run": self.run_id,
            "layer": self.layer,
            "shape": list(self.weights.shape[1:]),
            "channel_order": self.channel_order,
            "epochs": list(self.epochs),
        }


def _epoch_list(epochs: Sequence[int]) -> str:
    return ", ".join(str(e) for e in epochs) if epochs else "none"


def kernels_over_epochs(
    store: Any,
    run: str,
    layer: str,
    *,
    epochs: Sequence[int] | None = None,
    channel_order: str | None = None,
) -> KernelEpochs:
    """The kernels of ``layer`` at every recorded epoch of ``run`` (or the ``epochs`` given).

    ``store`` is a :class:`~convscope.store.RunStore` or its directory. Runs record
    every conv layer's kernels each epoch; an unrecorded layer is an error listing the
    recorded ones.
    """
    from convscope.store import RunStore, open_store

    if not isinstance(store, RunStore):
        with open_store(store, create=False) as opened:
            return kernels_over_epochs(
                opened, run, layer, epochs=epochs, channel_order=channel_order
            )
    record = store.run(run)
    found = {a.epoch: a for a in store.artifacts(record.id, kind="kernels", name=layer)}
    found.pop(None, None)
    if not found:
        names = sorted({a.name for a in store.artifacts(record.id, kind="kernels")})
        if not names:
            raise LayerError(f"run {record.id} recorded no kernels (it was trained without them)")
        raise LayerError(
            f"run {record.id} has no kernels of layer {layer!r}{close_matches(layer, names)} "
            f"(recorded: {', '.join(names)})"
        )
    chosen = sorted(found) if epochs is None else list(epochs)
    missing = [e for e in chosen if e not in found]
    if missing:
        raise ConvscopeError(
            f"run {record.id} has no kernels of epoch {missing[0]}; recorded epochs: "
            f"{_epoch_list(sorted(found))}"
        )
    if not chosen:
        raise ConvscopeError("no epochs chosen; give epochs such as 0,1,5 or all")
    weights = np.stack([store.load_array(found[e]).astype(np.float32) for e in chosen])
    if weights.ndim != 5:
        raise ConvscopeError(f"recorded kernels of {layer} are not 4-D (shape {weights.shape[1:]})")
    order = default_channel_order(weights.shape[2], _run_channel_order(record))
    if channel_order is not None:
        if weights.shape[2] != 3:
            raise ConvscopeError(
                f"layer {layer} has {weights.shape[2]} input channels; "
                "an RGB/BGR order (--bgr) needs three"
            )
        order = channel_order
    return KernelEpochs(
        model=record.name,
        run_id=record.id,
        layer=layer,
        epochs=chosen,
        weights=weights,
        channel_order=order,
    )


def _run_channel_order(record: Any) -> str | None:
    """The input channel order of a run's model, where the zoo knows it."""
    try:
        from convscope.models.registry import zoo

        entry = zoo().get(record.model)
        return entry.input_spec.channel_order if entry is not None else None
    except Exception:
        return None
