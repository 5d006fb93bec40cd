"""Display arrays of kernels: normalisations, kernel images, grid layout, :class:`KernelGrid`.

The display arrays a grid shows are built here (:mod:`convscope.render.kernels`
only draws them), so what a figure shows is exactly what the functions below
return (and what the tests check):

- ``per-kernel``: each kernel (everything one output channel computes with: its R, G,
  B channels together, or all its input channels together) is scaled by its own range,
  ``(w - min) / (max - min)``; a constant kernel becomes 0.5. This is the references'
  choice; it shows each kernel's pattern but not which kernels are strong.
- ``layer``: one range for the whole layer, ``(w - lo) / (hi - lo)``; comparable
  between kernels, with a colour bar in weight units.
- ``diverging``: ``w / m`` with ``m`` the largest ``|w|`` of the layer, in ``[-1, 1]``,
  drawn with a colour map centred on zero that keeps the sign. An RGB tile cannot carry
  a colour map, so RGB tiles show ``0.5 + 0.5 w / m`` per channel (mid-gray is zero).

Kernels holding NaN or infinity are reported and never drawn: they are left out of
every range and their tiles are blank.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from convscope.errors import ConvscopeError
from convscope.models.provenance import model_title
from convscope.probe.base import FigureResult
from convscope.probe.kernels.arrays import finite_kernels

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from convscope.probe.kernels.weights import KernelSet


NORMALIZATIONS = ("per-kernel", "layer", "diverging")
"""How weights become display values (see the module docstring)."""

REDUCTIONS = ("mean", "norm")
"""How a deep kernel's input channels are reduced to one tile."""

MAX_TILES = 4096
"""The most kernels a grid shows unless a limit is given; more output channels are cut."""

MAX_ROWS = 64
MAX_INPUT_COLUMNS = 64
"""Per input channel, a grid shows at most this many output channels (rows, unless a
limit is given) and input channels (columns): beyond that the tiles become unreadable."""


def grid_shape(n: int, cols: int | None = None) -> tuple[int, int]:
    """``(rows, cols)`` for ``n`` tiles: 8x8 for 64, 4x5 for 20.

    Without ``cols``: the most square exact factorisation with at most twice as many
    columns as rows; when there is none (primes), ``ceil(sqrt(n))`` columns.
    """
    if n < 1:
        raise ConvscopeError("there are no kernels to lay out")
    if cols is not None:
        if cols < 1:
            raise ConvscopeError(f"--cols must be at least 1, got {cols}")
        cols = min(cols, n)
        return math.ceil(n / cols), cols
    for rows in range(math.isqrt(n), 0, -1):
        if n % rows == 0:
            if n // rows <= 2 * rows:
                return rows, n // rows
            break
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def normalize_per_kernel(values: np.ndarray) -> np.ndarray:
    """Each kernel (first axis; all other axes together) scaled to [0, 1] by its own range.

    ``(w - min) / (max - min)``; a constant kernel becomes 0.5, a non-finite one NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    for i in np.flatnonzero(finite_kernels(values)):
        lo, hi = values[i].min(), values[i].max()
        out[i] = (values[i] - lo) / (hi - lo) if hi > lo else 0.5
    return out.astype(np.float32)


def layer_range(values: np.ndarray) -> tuple[float, float]:
    """``(min, max)`` over the finite kernels (``(0, 0)`` when none is finite)."""
    good = np.asarray(values)[finite_kernels(np.asarray(values))]
    return (float(good.min()), float(good.max())) if good.size else (0.0, 0.0)


def normalize_layer(
    values: np.ndarray, scale: tuple[float, float] | None = None
) -> tuple[np.ndarray, tuple[float, float]]:
    """All kernels scaled to [0, 1] by one range: ``(w - lo) / (hi - lo)``.

    ``scale`` gives ``(lo, hi)`` (e.g. shared across epochs); by default the layer's
    finite min and max. Returns the display values and ``(lo, hi)``; a constant layer
    is 0.5, non-finite kernels NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    lo, hi = scale if scale is not None else layer_range(values)
    out = (values - lo) / (hi - lo) if hi > lo else np.full(values.shape, 0.5)
    out[~finite_kernels(values)] = np.nan
    return out.astype(np.float32), (float(lo), float(hi))


def normalize_diverging(values: np.ndarray, bound: float | None = None) -> tuple[np.ndarray, float]:
    """All kernels divided by ``m``, the largest ``|w|`` (or ``bound``): values in [-1, 1].

    Zero stays zero, so the sign survives. An all-zero layer stays 0; non-finite kernels NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    if bound is None:
        lo, hi = layer_range(values)
        bound = max(abs(lo), abs(hi))
    out = values / bound if bound > 0 else np.zeros(values.shape)
    out[~finite_kernels(values)] = np.nan
    return out.astype(np.float32), float(bound)


def kernel_images(
    weights: np.ndarray, channel_order: str | None, *, reduce: str | None, per_channel: bool
) -> np.ndarray:
    """What each kernel looks like before scaling (first axis: the kernel).

    ``O x H x W`` for gray or reduced kernels, ``O x H x W x 3`` for RGB kernels (in RGB
    order, so a BGR kernel has its channels reversed), and ``O x I x H x W`` per input
    channel (with three channels in RGB order). ``reduce="mean"`` averages over the input
    channels; ``"norm"`` takes the L2 norm over them at each position.
    """
    w = np.asarray(weights, dtype=np.float32)
    if reduce is not None:
        if reduce not in REDUCTIONS:
            raise ConvscopeError(
                f"unknown reduction {reduce!r}; use one of {', '.join(REDUCTIONS)}"
            )
        return (
            w.mean(axis=1)
            if reduce == "mean"
            else np.sqrt((w.astype(np.float64) ** 2).sum(axis=1)).astype(np.float32)
        )
    if channel_order == "BGR":
        w = w[:, ::-1]
    if per_channel or w.shape[1] not in (1, 3):
        return w
    if w.shape[1] == 1:
        return w[:, 0]
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1))


@dataclass(eq=False)
class KernelGrid(FigureResult):
    """Display tiles of a layer's kernels and how to lay them out.

    ``tiles`` holds the display values, row-major: ``N x h x w`` (gray; in [0, 1], or in
    [-1, 1] for ``diverging``) or ``N x h x w x 3`` (RGB in [0, 1]). ``layout`` is
    ``"grid"`` (kernel ``k`` at row ``k // cols``), ``"channels"`` (one row per output
    channel, one column per input channel) or ``"epochs"`` (one row per epoch).
    ``scale`` is the weight value at display 0 and 1 (``layer``) or at -1 and 1
    (``diverging``), None for ``per-kernel``.
    """

    model: str
    layer: str
    shape: tuple[int, int, int, int]
    channel_order: str | None
    normalization: str
    reduce: str | None
    layout: str
    tiles: np.ndarray
    rows: int
    cols: int
    row_labels: list[str]
    col_labels: list[str]
    row_title: str
    col_title: str
    scale: tuple[float, float] | None
    caption: str
    nonfinite: tuple[int, ...] = ()
    shown: int = 0
    title: str = ""
    model_weights: str = ""

    @property
    def colour(self) -> bool:
        """Whether the tiles are RGB images."""
        return self.tiles.ndim == 4

    def mosaic(self, gap: int = 1) -> np.ndarray:
        """The tiles laid out with ``gap`` pixels between them, as one array.

        Gray: ``float32 H x W`` with NaN in gaps, empty cells and undrawn kernels.
        RGB: ``float32 H x W x 4`` (RGBA), alpha 0 there and 1 on the tiles.
        Tile ``(r, c)`` starts at ``(r * (h + gap), c * (w + gap))``.
        """
        h, w = self.tiles.shape[1:3]
        height = self.rows * (h + gap) - gap
        width = self.cols * (w + gap) - gap
        if self.colour:
            out = np.zeros((height, width, 4), dtype=np.float32)
        else:
            out = np.full((height, width), np.nan, dtype=np.float32)
        for i, tile in enumerate(self.tiles):
            r, c = divmod(i, self.cols)
            y, x = r * (h + gap), c * (w + gap)
            if self.colour:
                if np.isfinite(tile).all():
                    out[y : y + h, x : x + w, :3] = tile
                    out[y : y + h, x : x + w, 3] = 1.0
            else:
                out[y : y + h, x : x + w] = tile
        return out

    def tile(self, row: int, col: int) -> np.ndarray:
        """The display values of the tile at ``(row, col)``."""
        return self.tiles[row * self.cols + col]

    def figure(self, **options: Any) -> Figure:
        """The grid as a figure (see :func:`convscope.render.kernels.kernel_grid_figure`)."""
        from convscope.render.kernels import kernel_grid_figure

        return kernel_grid_figure(self, **options)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metadata: the ``kernels --json`` keys."""
        return {
            "model": self.model,
            "weights": self.model_weights,
            "layer": self.layer,
            "shape": list(self.shape),
            "channel_order": self.channel_order,
            "normalization": self.normalization,
            "reduce": self.reduce,
            "layout": self.layout,
            "grid": [self.rows, self.cols],
            "scale": None if self.scale is None else list(self.scale),
            "shown": self.shown,
            "nonfinite": list(self.nonfinite),
            "caption": self.caption,
        }


def _normalize(
    images: np.ndarray, norm: str, scale: tuple[float, float] | None
) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Display values of kernel images under ``norm`` (``scale`` fixes a shared one)."""
    if norm == "per-kernel":
        return normalize_per_kernel(images), None
    if norm == "layer":
        return normalize_layer(images, scale)
    if norm == "diverging":
        out, bound = normalize_diverging(images, None if scale is None else scale[1])
        return out, (-bound, bound)
    raise ConvscopeError(f"unknown normalisation {norm!r}; use one of {', '.join(NORMALIZATIONS)}")


def _check_options(norm: str, reduce: str | None, per_channel: bool) -> None:
    if norm not in NORMALIZATIONS:
        raise ConvscopeError(
            f"unknown normalisation {norm!r}; use one of {', '.join(NORMALIZATIONS)}"
        )
    if reduce is not None and reduce not in REDUCTIONS:
        raise ConvscopeError(f"unknown reduction {reduce!r}; use one of {', '.join(REDUCTIONS)}")
    if reduce is not None and per_channel:
        raise ConvscopeError("choose either one row per input channel or --reduce, not both")
    if reduce == "norm" and norm == "diverging":
        raise ConvscopeError(
            "--reduce norm is never negative, so a diverging scale shows nothing; use --norm layer"
        )


def _caption(
    kernels: KernelSet,
    norm: str,
    reduce: str | None,
    colour: bool,
    nonfinite: Sequence[int],
    shown: int,
) -> str:
    """The sentence under a grid that says what the pixels mean."""
    parts = []
    whole = "its three colour channels together" if colour else "all its values together"
    if norm == "per-kernel":
        parts.append(
            f"Each kernel is scaled to its own range ({whole}: darkest = its minimum, "
            "brightest = its maximum); brightness is not comparable between kernels."
        )
    elif norm == "layer":
        parts.append(
            "One scale for the whole layer (colour bar, weight units): brightness is "
            "comparable between kernels."
        )
    elif colour:
        parts.append(
            "Each channel shows 0.5 + 0.5 w/m, m = the largest |weight| of the layer: "
            "mid-gray is zero, brighter positive, darker negative."
        )
    else:
        parts.append(
            "One scale centred on zero: red = positive, blue = negative weight, white = zero."
        )
    n_in = kernels.in_channels
    if reduce == "mean":
        parts.append(
            f"Each tile is the mean over the kernel's {n_in} input channels (its response "
            "to a pattern present in every input channel alike)."
        )
    elif reduce == "norm":
        parts.append(
            f"Each tile is the L2 norm over the kernel's {n_in} input channels at each "
            "position (how strongly it weighs that position, whatever the sign or channel)."
        )
    if kernels.channel_order == "BGR" and (colour or n_in == 3) and reduce is None:
        parts.append("Weights are in BGR order; shown as RGB (channels reversed).")
    if shown < kernels.out_channels:
        parts.append(f"First {shown} of {kernels.out_channels} kernels.")
    if nonfinite:
        listed = ", ".join(str(i) for i in nonfinite[:10]) + (
            ", ..." if len(nonfinite) > 10 else ""
        )
        parts.append(f"Kernels {listed} hold NaN or infinite weights: not drawn.")
    return " ".join(parts)


def kernel_grid(
    kernels: KernelSet,
    norm: str = "per-kernel",
    *,
    reduce: str | None = None,
    per_channel: bool = False,
    cols: int | None = None,
    limit: int | None = None,
    scale: tuple[float, float] | None = None,
) -> KernelGrid:
    """All kernels of a layer as display tiles.

    One input channel: gray tiles; three: RGB tiles (in RGB order whatever the weight's
    order); more: one tile per kernel, reduced over its input channels (``reduce``:
    "norm" by default, "mean" for a diverging scale); ``per_channel`` draws instead one row per output
    channel over its input channels. ``limit``
    keeps the first output channels (default: all, up to :data:`MAX_TILES` kernels, or
    :data:`MAX_ROWS` rows per input channel, which also shows at most
    :data:`MAX_INPUT_COLUMNS` input channels); ``scale`` fixes the range of a shared
    normalisation (e.g. across epochs). Normalisation always sees whole kernels.
    """
    _check_options(norm, reduce, per_channel)
    weights = kernels.weights
    n_out, n_in = weights.shape[:2]
    if reduce is None and not per_channel and n_in not in (1, 3):
        # 50 x 20 tiles of a deep layer are unreadable: one tile per kernel (the mean
        # where a diverging scale must keep the sign, which a norm does not have)
        reduce = "mean" if norm == "diverging" else "norm"
    rows_layout = reduce is None and (per_channel or n_in not in (1, 3))
    if limit is not None and limit < 1:
        raise ConvscopeError(f"--limit must be at least 1, got {limit}")
    shown = min(n_out, limit if limit is not None else MAX_ROWS if rows_layout else MAX_TILES)
    images = kernel_images(
        weights[:shown], kernels.channel_order, reduce=reduce, per_channel=per_channel
    )
    if scale is None and norm != "per-kernel":
        scale_images = kernel_images(
            weights, kernels.channel_order, reduce=reduce, per_channel=per_channel
        )
        _, scale = _normalize(scale_images, norm, None)
    display, scale = _normalize(images, norm, scale)
    colour = not rows_layout and reduce is None and n_in == 3
    if colour and norm == "diverging":
        display = 0.5 + 0.5 * display
    nonfinite = tuple(i for i in kernels.nonfinite if i < shown)
    kh, kw = kernels.kernel_size
    title = f"{model_title(kernels.model, kernels.model_weights)} · {kernels.layer}: {n_out} kernels of {n_in}×{kh}×{kw}"
    if rows_layout:
        h, w = display.shape[2:]
        n_cols = min(n_in, MAX_INPUT_COLUMNS)
        tiles = display[:, :n_cols].reshape(shown * n_cols, h, w)
        rows = shown
        rgb = kernels.channel_order in ("RGB", "BGR") and n_in == 3
        col_labels = ["R", "G", "B"] if rgb else [str(i) for i in range(n_cols)]
        row_labels = [str(i) for i in range(shown)]
        layout, row_title, col_title = "channels", "output channel (kernel)", "input channel"
    else:
        tiles = display
        rows, n_cols = grid_shape(shown, cols)
        row_labels = [str(r * n_cols) for r in range(rows)]
        col_labels = [f"+{c}" for c in range(n_cols)]
        layout, row_title, col_title = "grid", "first kernel of the row", "+ column"
    return KernelGrid(
        model=kernels.model,
        model_weights=kernels.model_weights,
        layer=kernels.layer,
        shape=tuple(int(s) for s in weights.shape),  # type: ignore[arg-type]
        channel_order=kernels.channel_order,
        normalization=norm,
        reduce=reduce,
        layout=layout,
        tiles=np.ascontiguousarray(tiles, dtype=np.float32),
        rows=rows,
        cols=n_cols,
        row_labels=row_labels,
        col_labels=col_labels,
        row_title=row_title,
        col_title=col_title,
        scale=scale,
        caption=_caption(kernels, norm, reduce, colour, nonfinite, shown)
        + (
            f" First {MAX_INPUT_COLUMNS} of {n_in} input channels."
            if rows_layout and n_in > MAX_INPUT_COLUMNS
            else ""
        ),
        nonfinite=nonfinite,
        shown=shown,
        title=title,
    )
