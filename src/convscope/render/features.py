"""Feature maps drawn as grids, one block per layer, beside the input they came from.

Each layer gets a grid of its maps (channel numbers in the titles) and a colour bar:
one scale shared by all maps of the layer (default; diverging and centred on zero
when the layer has both signs) or each map scaled to its own range. Vector outputs
(dense layers) are drawn as bars. Object API only (no pyplot).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure, SubFigure

from convscope.errors import ConvscopeError
from convscope.models.provenance import model_title
from convscope.probe.features import MAX_MAPS, FeatureMaps, LayerMaps

SCALES = ("shared", "per-map")
SEQUENTIAL_CMAP = "viridis"
DIVERGING_CMAP = "RdBu_r"
MAX_COLUMNS = 8
INPUT_WIDTH = 2.3  # inches of the input panel
TITLE_HEIGHT = 0.5  # inches above each layer's grid


def plot_feature_maps(
    result: FeatureMaps,
    *,
    scale: str = "shared",
    top: int | None = None,
    max_maps: int = MAX_MAPS,
    columns: int | None = None,
    panel: float = 1.05,
    cmap: str | None = None,
) -> Figure:
    """The maps of every layer in ``result`` as grids beside the input.

    ``scale``: ``"shared"`` (one colour scale per layer, with its colour bar) or
    ``"per-map"`` (each map from its own min to max). ``top``: draw only the ``top``
    most active channels (highest mean); wider layers than ``max_maps`` show their
    ``max_maps`` most active ones. ``panel``: inches per map.
    """
    if scale not in SCALES:
        raise ConvscopeError(f"unknown scale {scale!r}; use one of {', '.join(SCALES)}")
    if not result.layers:
        raise ConvscopeError("no layers to draw")
    chosen = [layer.shown_channels(top, max_maps) for layer in result.layers]
    ncols = columns or max(
        (min(MAX_COLUMNS, math.ceil(math.sqrt(len(c)))) for c in chosen if len(c)), default=4
    )
    heights = [
        _block_height(layer, ch, ncols, panel)
        for layer, ch in zip(result.layers, chosen, strict=True)
    ]
    grid_width = ncols * panel + 1.1
    total_height = max(sum(heights), INPUT_WIDTH + 0.8)
    fig = Figure(figsize=(INPUT_WIDTH + grid_width, total_height + 0.4), layout="constrained")
    fig.suptitle(
        f"{model_title(result.model, result.model_weights)}: feature maps of {result.input_name}",
        fontsize=12,
    )
    left, right = fig.subfigures(1, 2, width_ratios=[INPUT_WIDTH, grid_width], wspace=0.02)
    _draw_input(left, result, total_height)
    blocks = right.subfigures(len(result.layers), 1, height_ratios=heights, hspace=0.02)
    blocks = np.atleast_1d(blocks)
    for block, layer, channels in zip(blocks, result.layers, chosen, strict=True):
        _draw_layer(block, layer, channels, ncols, scale=scale, cmap=cmap)
    return fig


def _block_height(layer: LayerMaps, channels: np.ndarray, ncols: int, panel: float) -> float:
    """Inches one layer's block needs: its rows of maps plus the title."""
    maps = layer.maps
    if maps.ndim == 3:
        rows = math.ceil(len(channels) / ncols)
        aspect = maps.shape[1] / max(maps.shape[2], 1)
        return rows * panel * min(max(aspect, 0.3), 3.0) + TITLE_HEIGHT
    return 2.2 + TITLE_HEIGHT


def _draw_input(sub: SubFigure, result: FeatureMaps, height: float) -> None:
    """The input image at the top of the left column, with its name and label."""
    ax_image, ax_rest = sub.subplots(
        2, 1, height_ratios=[INPUT_WIDTH, max(height - INPUT_WIDTH, 0.05)]
    )
    ax_rest.set_axis_off()
    image, gray = _input_image(result)
    ax_image.imshow(image, cmap="gray" if gray else None, interpolation="nearest")
    ax_image.set_xticks([])
    ax_image.set_yticks([])
    title = "input"
    if result.label is not None:
        title += f" (label {result.label})"
    ax_image.set_title(title, fontsize=10)
    h, w = image.shape[:2]
    ax_image.set_xlabel(f"{result.input_name}\n{h}x{w}", fontsize=8)


def _input_image(result: FeatureMaps) -> tuple[np.ndarray, bool]:
    """What to show as the input: the fitted pixels, else the tensor scaled to [0, 1]."""
    if result.pixels is not None:
        pixels = np.asarray(result.pixels)
        if pixels.ndim == 3 and pixels.shape[2] == 1:
            pixels = pixels[..., 0]
        return pixels, pixels.ndim == 2
    tensor = np.asarray(result.input_tensor, dtype=float)
    image = tensor.transpose(1, 2, 0) if tensor.shape[0] == 3 else tensor[0]
    lo, hi = float(image.min()), float(image.max())
    image = (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)
    return image, image.ndim == 2


def _layer_title(layer: LayerMaps, channels: np.ndarray) -> str:
    """``name (Type) · 6 maps 12x12``, plus which call and which channels are shown."""
    maps = layer.maps
    title = f"{layer.name} ({layer.type})"
    if maps.ndim == 3:
        count, h, w = maps.shape
        title += f" · {count} maps {h}x{w}"
    else:
        title += f" · output {'x'.join(str(s) for s in maps.shape)}"
    if layer.calls > 1:
        title += f" · call {layer.call} of {layer.calls}"
    if maps.ndim == 3 and len(channels) < maps.shape[0]:
        title += f"\nthe {len(channels)} most active channels (highest mean)"
    return title


def _norm(values: np.ndarray, cmap: str | None) -> tuple[Normalize, str]:
    """A colour scale for ``values``: diverging around zero when both signs occur."""
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    if lo < 0 < hi:
        bound = max(-lo, hi)
        return Normalize(-bound, bound), cmap or DIVERGING_CMAP
    if lo == hi:
        hi = lo + 1.0
    return Normalize(lo, hi), cmap or SEQUENTIAL_CMAP


def _draw_layer(
    sub: SubFigure,
    layer: LayerMaps,
    channels: np.ndarray,
    ncols: int,
    *,
    scale: str,
    cmap: str | None,
) -> None:
    """One layer: a grid of maps with a colour bar, or bars for a vector output."""
    maps = layer.maps
    sub.suptitle(_layer_title(layer, channels), fontsize=10)
    if maps.ndim == 1:
        _draw_vector(sub, maps)
        return
    if maps.ndim == 2:  # C x L: one image, channels as rows
        maps = maps[:, None, :]
        ax = sub.add_subplot()
        norm, name = _norm(maps, cmap)
        image = ax.imshow(maps[:, 0, :], cmap=name, norm=norm, aspect="auto")
        ax.set_xlabel("position")
        ax.set_ylabel("channel")
        sub.colorbar(image, ax=ax, label="activation")
        return
    if maps.ndim != 3:
        raise ConvscopeError(
            f"cannot draw the output of {layer.name} (shape {list(layer.output.shape)}); "
            "write it with --npy instead"
        )
    rows = math.ceil(len(channels) / ncols)
    axes = np.atleast_1d(sub.subplots(rows, ncols, squeeze=False)).ravel()
    shared = maps[channels] if len(channels) else maps
    shared_norm, shared_cmap = _norm(shared, cmap)
    image = None
    for ax, channel in zip(axes, channels, strict=False):
        values = maps[channel]
        if scale == "shared":
            norm, name = shared_norm, shared_cmap
            label = f"ch {channel}"
        else:
            norm, name = _norm(values, cmap)
            lo, hi = float(values.min()), float(values.max())
            label = f"ch {channel}: {_short(lo)}…{_short(hi)}"
        if float(values.min()) == float(values.max()):
            label = f"ch {channel} (all {_short(float(values.min()))})"
        image = ax.imshow(values, cmap=name, norm=norm, interpolation="nearest")
        ax.set_title(label, fontsize=7, pad=2)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(channels) :]:
        ax.set_axis_off()
    if image is None:
        return
    used = list(axes[: len(channels)])
    if scale == "shared":
        sub.colorbar(image, ax=used, shrink=0.9, label="activation", aspect=25)
    else:
        from matplotlib.cm import ScalarMappable

        mappable = ScalarMappable(Normalize(0, 1), cmap=cmap or SEQUENTIAL_CMAP)
        bar = sub.colorbar(mappable, ax=used, shrink=0.9, aspect=25, label="per-map scale")
        bar.set_ticks([0, 1], labels=["min", "max"])


def _draw_vector(sub: SubFigure, values: np.ndarray) -> None:
    """A dense layer's output as bars (negative ones in orange)."""
    ax = sub.add_subplot()
    index = np.arange(values.size)
    colors = np.where(values >= 0, "#3b6ea8", "#d1603d")
    ax.bar(index, values, color=colors, width=1.0 if values.size > 40 else 0.8)
    ax.axhline(0, color="0.3", linewidth=0.6)
    ax.set_xlim(-0.7, values.size - 0.3)
    ax.set_xlabel("unit")
    ax.set_ylabel("activation")
    ax.spines[["top", "right"]].set_visible(False)


def _short(value: float) -> str:
    """A compact number for small titles: ``0``, ``2.4``, ``-0.013``, ``1.2e+03``."""
    if value == 0:
        return "0"
    return f"{value:.2g}"


def feature_table(result: FeatureMaps) -> Any:
    """A rich table of the captured layers: shape, range and the most active channels."""
    from rich.table import Table

    table = Table(
        title=f"{model_title(result.model, result.model_weights)}: feature maps of {result.input_name}"
    )
    for column in ("layer", "type", "output shape", "min", "mean", "max", "most active"):
        table.add_column(column, justify="right" if column in ("min", "mean", "max") else "left")
    for layer in result.layers:
        data = layer.to_dict()
        table.add_row(
            layer.name,
            layer.type,
            "x".join(str(s) for s in data["shape"]),
            _fmt(data["min"]),
            _fmt(data["mean"]),
            _fmt(data["max"]),
            ", ".join(str(c) for c in data.get("most_active", [])),
        )
    table.caption = "draw them with --out maps.png; raw arrays with --npy DIR"
    return table


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"
