"""Convolution kernels: extraction, display normalisation, health numbers, epochs, responses.

Everything here computes; :mod:`convscope.render.kernels` draws. The display arrays a
grid shows are built here, so what a figure shows is exactly what the functions below
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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from convscope.errors import ConvscopeError, ImageError, LayerError
from convscope.naming import close_matches
from convscope.probe.activations import resolve_layers
from convscope.probe.base import FigureResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from convscope.data.preprocess import InputSpec
    from convscope.data.spec import InputImage
    from convscope.models.loaded import LoadedModel

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

DUPLICATE_COSINE = 0.95
"""Two kernels are near-duplicates when the cosine similarity of their weights exceeds this."""

DEAD_RELATIVE = 0.01
DEAD_ABSOLUTE = 1e-8
"""A kernel is dead when its L2 norm is at most ``max(DEAD_ABSOLUTE, DEAD_RELATIVE * median)``."""

HIGH_FREQ_CUTOFF = 0.25
"""Half the Nyquist frequency (0.5 cycles per pixel): the edge of "high" frequencies."""

SAMPLE_IMAGES = {"china": "china.jpg", "flower": "flower.jpg"}
"""Photos that ship with scikit-learn, usable offline as ``sample:NAME``."""


# --------------------------------------------------------------------------- extraction


def _kernel_weight(module: nn.Module) -> torch.Tensor | None:
    """The 4-D weight of a module, ``out x in x H x W``, or None if it has none."""
    try:
        weight = getattr(module, "weight", None)
    except Exception:  # a property that fails is no kernel we can show
        return None
    if not isinstance(weight, torch.Tensor) or weight.dim() != 4:
        return None
    if isinstance(module, nn.ConvTranspose2d):  # stored in x out/groups x H x W
        weight = weight.transpose(0, 1)
    return weight


def conv_layer_names(module: nn.Module) -> list[str]:
    """Names of the layers that hold 2-D convolution kernels (a 4-D ``weight``)."""
    return [n for n, m in module.named_modules() if n and _kernel_weight(m) is not None]


def _conv_hint(names: Sequence[str], near: str, shown: int = 10) -> str:
    """``"conv layers: a, b, ..."`` (first ``shown``), with close matches to ``near`` first."""
    if not names:
        return "the model has no convolution layers"
    head = ", ".join(names[:shown])
    more = (
        f", ... ({len(names)} in all; see `convscope layers MODEL`)" if len(names) > shown else ""
    )
    return f"conv layers: {head}{more}{close_matches(near, names)}"


def find_conv(module: nn.Module, layer: str) -> tuple[str, nn.Module]:
    """The convolution module named ``layer``, or the only one inside it: ``(name, module)``.

    An unknown name is a :class:`LayerError` with close matches; a layer without
    kernels (dense, pooling) is one that names the conv layers.
    """
    found = resolve_layers(module, [layer])[layer]
    if _kernel_weight(found) is not None:
        return layer, found
    inner = [(n, m) for n, m in found.named_modules() if n and _kernel_weight(m) is not None]
    if len(inner) == 1:
        return f"{layer}.{inner[0][0]}", inner[0][1]
    convs = conv_layer_names(module)
    kind = type(found).__name__
    if len(inner) > 1:
        names = [f"{layer}.{n}" for n, _ in inner]
        raise LayerError(
            f"layer {layer!r} ({kind}) holds {len(inner)} convolutions; name one: "
            f"{', '.join(names[:8])}{', ...' if len(names) > 8 else ''}"
        )
    raise LayerError(
        f"layer {layer!r} ({kind}) has no convolution kernels; {_conv_hint(convs, layer)}"
    )


@dataclass(eq=False)
class KernelSet(FigureResult):
    """The kernels of one conv layer: ``weights`` is ``out x in x H x W`` float32.

    ``channel_order`` says how to read the input channels: ``"gray"`` (one),
    ``"RGB"`` or ``"BGR"`` (three, the order of the weight's input channels), or None
    (feature maps of earlier layers). ``source`` names the module holding the weight
    (the layer itself, or the convolution inside it).
    """

    model: str
    layer: str
    weights: np.ndarray
    channel_order: str | None
    layer_type: str
    source: str
    bias: np.ndarray | None = None
    stride: tuple[int, ...] = (1, 1)
    padding: Any = (0, 0)
    dilation: tuple[int, ...] = (1, 1)
    groups: int = 1

    @property
    def out_channels(self) -> int:
        """Number of kernels (output channels)."""
        return int(self.weights.shape[0])

    @property
    def in_channels(self) -> int:
        """Input channels each kernel spans."""
        return int(self.weights.shape[1])

    @property
    def kernel_size(self) -> tuple[int, int]:
        """``(H, W)`` of one kernel."""
        return int(self.weights.shape[2]), int(self.weights.shape[3])

    @property
    def nonfinite(self) -> tuple[int, ...]:
        """Indices of kernels holding NaN or infinity (reported, never drawn)."""
        bad = ~np.isfinite(self.weights.reshape(self.out_channels, -1)).all(axis=1)
        return tuple(int(i) for i in np.flatnonzero(bad))

    def with_channel_order(self, order: str) -> KernelSet:
        """The same kernels read with another input channel order (``"RGB"`` or ``"BGR"``)."""
        if order not in ("RGB", "BGR"):
            raise ConvscopeError(f"channel order must be RGB or BGR, got {order!r}")
        if self.in_channels != 3:
            raise ConvscopeError(
                f"layer {self.layer} has {self.in_channels} input channels; "
                "an RGB/BGR order (--bgr) needs three"
            )
        return replace(self, channel_order=order)

    def grid(
        self,
        norm: str = "per-kernel",
        *,
        reduce: str | None = None,
        per_channel: bool = False,
        cols: int | None = None,
        limit: int | None = None,
    ) -> KernelGrid:
        """The grid of this layer's kernels; see :func:`kernel_grid`."""
        return kernel_grid(
            self, norm, reduce=reduce, per_channel=per_channel, cols=cols, limit=limit
        )

    def health(self) -> KernelHealth:
        """Per-kernel health numbers and a layer summary; see :func:`kernel_health`."""
        return kernel_health(self.weights, model=self.model, layer=self.layer)

    def figure(self, **options: Any) -> Figure:
        """The kernel grid (options as for :meth:`grid`)."""
        return self.grid(**options).figure()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metadata (the weights themselves go to ``--npy``)."""
        return {
            "model": self.model,
            "layer": self.layer,
            "type": self.layer_type,
            "source": self.source,
            "shape": list(self.weights.shape),
            "channel_order": self.channel_order,
            "stride": list(self.stride),
            "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
            "dilation": list(self.dilation),
            "groups": self.groups,
            "nonfinite": list(self.nonfinite),
        }


def _pair(value: Any) -> tuple[int, int]:
    """``3`` -> ``(3, 3)``; ``(2, 1)`` stays."""
    if isinstance(value, int):
        return int(value), int(value)
    first, second = (int(v) for v in value)
    return first, second


def _default_order(in_channels: int, input_order: str | None) -> str | None:
    if in_channels == 1:
        return "gray"
    if in_channels == 3:
        return input_order or "RGB"
    return None


def kernel_set(
    model: LoadedModel | nn.Module, layer: str, *, channel_order: str | None = None
) -> KernelSet:
    """The kernels of conv layer ``layer`` of a loaded model or a plain module.

    Works for ``nn.Conv2d`` and its subclasses (``Conv2dAct``, ``SameConv2d``), any
    module with a 4-D ``weight`` (LeNet-5's ``PartialConv2d``), and a wrapper holding
    exactly one of those. Three-channel kernels take the model's input channel order
    unless ``channel_order`` ("RGB" or "BGR", e.g. for a model trained on BGR) says
    otherwise.
    """
    module = model if isinstance(model, nn.Module) else model.module
    name = type(model).__name__ if isinstance(model, nn.Module) else model.name
    input_order = None if isinstance(model, nn.Module) else model.input_spec.channel_order
    source, conv = find_conv(module, layer)
    weight = _kernel_weight(conv)
    assert weight is not None
    weights = weight.detach().to(torch.float32).cpu().contiguous().numpy().copy()
    bias = getattr(conv, "bias", None)
    bias_array = (
        bias.detach().to(torch.float32).cpu().numpy().copy()
        if isinstance(bias, torch.Tensor) and bias.numel() == weights.shape[0]
        else None
    )
    kernels = KernelSet(
        model=name,
        layer=layer,
        weights=weights,
        channel_order=_default_order(weights.shape[1], input_order),
        layer_type=type(conv).__name__,
        source=source,
        bias=bias_array,
        stride=_pair(getattr(conv, "stride", 1)),
        padding=getattr(conv, "padding", 0)
        if isinstance(getattr(conv, "padding", 0), str)
        else _pair(getattr(conv, "padding", 0)),
        dilation=_pair(getattr(conv, "dilation", 1)),
        groups=int(getattr(conv, "groups", 1)),
    )
    return kernels.with_channel_order(channel_order) if channel_order else kernels


# --------------------------------------------------------------------------- display arrays


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


def _finite_kernels(values: np.ndarray) -> np.ndarray:
    """Whether each kernel (first axis) is entirely finite."""
    return np.isfinite(values.reshape(len(values), -1)).all(axis=1)


def normalize_per_kernel(values: np.ndarray) -> np.ndarray:
    """Each kernel (first axis; all other axes together) scaled to [0, 1] by its own range.

    ``(w - min) / (max - min)``; a constant kernel becomes 0.5, a non-finite one NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    for i in np.flatnonzero(_finite_kernels(values)):
        lo, hi = values[i].min(), values[i].max()
        out[i] = (values[i] - lo) / (hi - lo) if hi > lo else 0.5
    return out.astype(np.float32)


def layer_range(values: np.ndarray) -> tuple[float, float]:
    """``(min, max)`` over the finite kernels (``(0, 0)`` when none is finite)."""
    good = np.asarray(values)[_finite_kernels(np.asarray(values))]
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
    out[~_finite_kernels(values)] = np.nan
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
    out[~_finite_kernels(values)] = np.nan
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
    order); more (or ``per_channel``): one row per output channel over its input
    channels, unless ``reduce`` ("mean" or "norm") makes one tile per kernel. ``limit``
    keeps the first output channels (default: all, up to :data:`MAX_TILES` kernels, or
    :data:`MAX_ROWS` rows per input channel, which also shows at most
    :data:`MAX_INPUT_COLUMNS` input channels); ``scale`` fixes the range of a shared
    normalisation (e.g. across epochs). Normalisation always sees whole kernels.
    """
    _check_options(norm, reduce, per_channel)
    weights = kernels.weights
    n_out, n_in = weights.shape[:2]
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
    title = f"{kernels.model} · {kernels.layer}: {n_out} kernels of {n_in}×{kh}×{kw}"
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


# --------------------------------------------------------------------------- health


def high_freq_mask(height: int, width: int) -> np.ndarray:
    """DFT bins of an ``height x width`` kernel whose frequency exceeds half the Nyquist.

    A bin's frequency is ``max(|fy|, |fx|)`` in cycles per pixel (``numpy.fft.fftfreq``);
    it is high when above :data:`HIGH_FREQ_CUTOFF` (0.25; the Nyquist frequency is 0.5).
    """
    fy = np.abs(np.fft.fftfreq(height))[:, None]
    fx = np.abs(np.fft.fftfreq(width))[None, :]
    return np.maximum(fy, fx) > HIGH_FREQ_CUTOFF + 1e-12


def high_freq_energy(weights: np.ndarray) -> np.ndarray:
    """Per kernel, the share of its spectral energy above half the Nyquist frequency.

    Energy is ``|DFT|^2`` of each input channel's ``H x W`` slice (the kernel at its own
    size, no padding), summed over the input channels; the share is the energy in the
    bins of :func:`high_freq_mask` over the total. A checkerboard gives (close to) 1, a
    constant kernel 0, white noise on average the share of high bins
    (:func:`white_noise_high_freq_energy`). A zero or non-finite kernel gives NaN.
    """
    w = np.asarray(weights, dtype=np.float64)
    mask = high_freq_mask(*w.shape[2:])
    power = np.abs(np.fft.fft2(np.where(np.isfinite(w), w, 0.0))) ** 2
    total = power.sum(axis=(1, 2, 3))
    high = (power * mask).sum(axis=(1, 2, 3))
    share = np.divide(high, total, out=np.full(len(w), np.nan), where=total > 0)
    share[~_finite_kernels(w)] = np.nan
    return share


def white_noise_high_freq_energy(height: int, width: int) -> float:
    """The high-frequency share white noise has on average: the fraction of high bins."""
    return float(high_freq_mask(height, width).mean())


def cosine_similarity(weights: np.ndarray) -> np.ndarray:
    """``O x O`` cosine similarity of the flattened kernels (NaN for zero or non-finite ones)."""
    flat = np.asarray(weights, dtype=np.float64).reshape(len(weights), -1)
    good = np.isfinite(flat).all(axis=1)
    norms = np.linalg.norm(np.where(good[:, None], flat, 0.0), axis=1)
    ok = good & (norms > 0)
    unit = np.zeros_like(flat)
    unit[ok] = flat[ok] / norms[ok, None]
    sim = unit @ unit.T
    sim[~ok, :] = np.nan
    sim[:, ~ok] = np.nan
    return sim


def _none_if_nan(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


@dataclass(eq=False)
class KernelHealth(FigureResult):
    """Health numbers of a layer's kernels (arrays indexed by kernel).

    - ``norms``: L2 norm of each kernel (all its weights);
    - ``dead``: norm at most ``dead_threshold = max(1e-8, 0.01 x median norm)``;
    - ``duplicate_of``: the first earlier live kernel whose cosine similarity exceeds
      0.95, else -1;
    - ``high_freq``: share of spectral energy above half the Nyquist frequency
      (:func:`high_freq_energy`); ``noisy`` when above white noise's average share
      ``white_noise``, i.e. rougher than random weights.
    """

    model: str
    layer: str
    shape: tuple[int, ...]
    norms: np.ndarray
    dead: np.ndarray
    duplicate_of: np.ndarray
    high_freq: np.ndarray
    noisy: np.ndarray
    finite: np.ndarray
    similarity: np.ndarray
    dead_threshold: float
    white_noise: float
    duplicate_threshold: float = DUPLICATE_COSINE

    def summary(self) -> dict[str, Any]:
        """The layer in a few numbers (counts, norm range, mean high-frequency share)."""
        live = self.finite & ~self.dead
        finite_norms = self.norms[self.finite]
        sim = self.similarity.copy()
        np.fill_diagonal(sim, np.nan)
        has_pairs = np.isfinite(sim).any()
        hf = self.high_freq[live & np.isfinite(self.high_freq)]
        return {
            "kernels": len(self.norms),
            "dead": int(self.dead.sum()),
            "duplicates": int((self.duplicate_of >= 0).sum()),
            "noisy": int(self.noisy.sum()),
            "nonfinite": int((~self.finite).sum()),
            "norm_mean": _none_if_nan(float(finite_norms.mean())) if finite_norms.size else None,
            "norm_median": _none_if_nan(float(np.median(finite_norms)))
            if finite_norms.size
            else None,
            "norm_min": _none_if_nan(float(finite_norms.min())) if finite_norms.size else None,
            "norm_max": _none_if_nan(float(finite_norms.max())) if finite_norms.size else None,
            "dead_threshold": self.dead_threshold,
            "duplicate_threshold": self.duplicate_threshold,
            "max_cosine": float(np.nanmax(sim)) if has_pairs else None,
            "high_freq_cutoff": HIGH_FREQ_CUTOFF,
            "high_freq_energy_mean": float(hf.mean()) if hf.size else None,
            "high_freq_energy_white_noise": self.white_noise,
        }

    def kernel_records(self) -> list[dict[str, Any]]:
        """One JSON-ready record per kernel."""
        return [
            {
                "index": i,
                "norm": _none_if_nan(float(self.norms[i])),
                "dead": bool(self.dead[i]),
                "duplicate_of": int(self.duplicate_of[i]) if self.duplicate_of[i] >= 0 else None,
                "high_freq_energy": _none_if_nan(float(self.high_freq[i])),
                "noisy": bool(self.noisy[i]),
                "finite": bool(self.finite[i]),
            }
            for i in range(len(self.norms))
        ]

    def to_dict(self) -> dict[str, Any]:
        """``{"kernels": [...], "summary": {...}}``, the ``health`` of ``kernels --json``."""
        return {"kernels": self.kernel_records(), "summary": self.summary()}

    def figure(self, **options: Any) -> Figure:
        """Norms, high-frequency shares and similarities (see ``kernel_health_figure``)."""
        from convscope.render.kernels import kernel_health_figure

        return kernel_health_figure(self, **options)


def kernel_health(
    weights: np.ndarray,
    *,
    model: str = "",
    layer: str = "",
    duplicate_threshold: float = DUPLICATE_COSINE,
) -> KernelHealth:
    """Per-kernel norm, dead, near-duplicate and high-frequency numbers of ``O x I x H x W``.

    Definitions are those of :class:`KernelHealth`; kernels with NaN or infinity have
    NaN numbers, are neither dead, duplicate nor noisy, and count as ``nonfinite``.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 4:
        raise ConvscopeError(f"kernels must be out x in x H x W, got shape {w.shape}")
    finite = _finite_kernels(w)
    norms = np.full(len(w), np.nan)
    norms[finite] = np.linalg.norm(w[finite].reshape(int(finite.sum()), -1), axis=1)
    median = float(np.median(norms[finite])) if finite.any() else 0.0
    threshold = max(DEAD_ABSOLUTE, DEAD_RELATIVE * median)
    dead = finite & (np.nan_to_num(norms, nan=np.inf) <= threshold)
    similarity = cosine_similarity(w)
    live = finite & ~dead
    duplicate_of = np.full(len(w), -1, dtype=np.int64)
    for i in np.flatnonzero(live):
        earlier = np.flatnonzero(live[:i] & (similarity[i, :i] > duplicate_threshold))
        if earlier.size:
            duplicate_of[i] = earlier[0]
    high = high_freq_energy(w)
    white = white_noise_high_freq_energy(*w.shape[2:])
    noisy = live & (np.nan_to_num(high, nan=-1.0) > white)
    return KernelHealth(
        model=model,
        layer=layer,
        shape=tuple(int(s) for s in w.shape),
        norms=norms,
        dead=dead,
        duplicate_of=duplicate_of,
        high_freq=high,
        noisy=noisy,
        finite=finite,
        similarity=similarity,
        dead_threshold=threshold,
        white_noise=white,
        duplicate_threshold=duplicate_threshold,
    )


# --------------------------------------------------------------------------- over epochs


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
    order = _default_order(weights.shape[2], _run_channel_order(record))
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


# --------------------------------------------------------------------------- apply a kernel


def sample_image(name: str) -> np.ndarray:
    """A photo shipped with scikit-learn (``china`` or ``flower``), uint8 ``H x W x 3``."""
    if name not in SAMPLE_IMAGES:
        raise ImageError(
            f"no sample image {name!r}; the samples are "
            f"{' and '.join(f'sample:{n}' for n in SAMPLE_IMAGES)}"
        )
    from sklearn.datasets import load_sample_image

    return np.array(load_sample_image(SAMPLE_IMAGES[name]), dtype=np.uint8)


def resolve_image(spec: str, input_spec: InputSpec | None = None) -> InputImage:
    """The one image a SPEC names, or a scikit-learn sample photo as ``sample:NAME``.

    With ``input_spec`` the pixels get its channel count. A SPEC naming several images
    is refused.
    """
    from convscope.data.images import match_channels
    from convscope.data.spec import InputImage, resolve_images

    text = spec.strip()
    if text.startswith("sample:"):
        pixels = sample_image(text.split(":", 1)[1])
        if input_spec is not None:
            pixels = match_channels(pixels, input_spec.channels)
        return InputImage(text, pixels)
    images = resolve_images(text, input_spec=input_spec)
    if len(images) != 1:
        raise ImageError(
            f"{spec!r} names {len(images)} images; give one image, e.g. {images[0].name}"
        )
    return images[0]


class _Stop(Exception):
    """Raised by the input hook to end a forward pass once the layer's input is known."""


@contextmanager
def _input_hook(conv: nn.Module, store: list[torch.Tensor]) -> Iterator[None]:
    """Keep a clone of ``conv``'s first input, then stop the forward pass; always removed."""

    def hook(_module: nn.Module, inputs: tuple[Any, ...]) -> None:
        store.append(inputs[0].detach().clone())
        raise _Stop

    handle = conv.register_forward_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def layer_input(module: nn.Module, conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What ``conv`` receives when ``module`` runs on ``x`` (the forward stops there)."""
    got: list[torch.Tensor] = []
    with _input_hook(conv, got), torch.no_grad(), suppress(_Stop):
        module(x)
    if not got:
        raise LayerError("the layer was not called in the forward pass; pick another layer")
    return got[0]


def conv_response(conv: nn.Module, x: torch.Tensor, kernel: int) -> torch.Tensor:
    """Output channel ``kernel`` of ``conv`` on its input ``x``, before any activation.

    The layer's own convolution restricted to one kernel: its stride, padding (numbers,
    ``'same'``/``'valid'``, non-zero padding modes), dilation and groups, over all the
    kernel's input channels, plus its bias. Modules that are not ``nn.Conv2d`` use their
    ``stride``/``padding``/``dilation`` attributes where they have them (else 1, 0, 1).
    Returns ``N x H' x W'``.
    """
    if isinstance(conv, nn.ConvTranspose2d):
        raise LayerError("apply-kernel works on convolutions, not transposed convolutions")
    weight = _kernel_weight(conv)
    assert weight is not None
    w = weight[kernel : kernel + 1].detach()
    bias = getattr(conv, "bias", None)
    b = bias[kernel : kernel + 1].detach() if isinstance(bias, torch.Tensor) else None
    groups = int(getattr(conv, "groups", 1))
    if groups > 1:
        per_group_in = weight.shape[1]
        group = kernel // (weight.shape[0] // groups)
        x = x[:, group * per_group_in : (group + 1) * per_group_in]
    stride = getattr(conv, "stride", 1)
    dilation = getattr(conv, "dilation", 1)
    padding = getattr(conv, "padding", 0)
    if isinstance(conv, nn.Conv2d) and conv.padding_mode != "zeros":
        x = F.pad(x, conv._reversed_padding_repeated_twice, mode=conv.padding_mode)
        padding = 0
    elif padding == "same":
        from convscope.models.layers import same_padding

        x = F.pad(x, same_padding(_pair(weight.shape[2:]), _pair(dilation)))
        padding = 0
    with torch.no_grad():
        return F.conv2d(x, w, b, stride, padding, dilation)[:, 0]


@dataclass(eq=False)
class KernelResponse(FigureResult):
    """One kernel applied to one image: the response map beside the image.

    ``pixels`` is the image as fed (uint8, RGB or gray), ``kernel_tile`` the kernel's
    display tile (per-kernel scaled, RGB order), ``response`` the float32 map
    (:func:`conv_response`: pre-activation, bias included).
    """

    model: str
    layer: str
    kernel: int
    image: str
    pixels: np.ndarray
    kernel_tile: np.ndarray
    kernel_reduced: bool
    response: np.ndarray
    bias: float | None
    stride: tuple[int, ...]
    padding: Any
    dilation: tuple[int, ...]
    first_layer: bool
    activation: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def figure(self, **options: Any) -> Figure:
        """Image, kernel and response side by side (see ``kernel_response_figure``)."""
        from convscope.render.kernels import kernel_response_figure

        return kernel_response_figure(self, **options)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metadata and response statistics."""
        r = self.response
        return {
            "model": self.model,
            "layer": self.layer,
            "kernel": self.kernel,
            "image": self.image,
            "image_shape": list(self.pixels.shape),
            "response_shape": list(r.shape),
            "stride": list(self.stride),
            "padding": self.padding if isinstance(self.padding, str) else list(self.padding),
            "dilation": list(self.dilation),
            "bias": self.bias,
            "first_layer": self.first_layer,
            "activation": self.activation,
            "min": float(r.min()),
            "max": float(r.max()),
            "mean": float(r.mean()),
            "positive_share": float((r > 0).mean()),
        }


def _model_pixels(pixels: np.ndarray, spec: InputSpec, full_size: bool) -> tuple[np.ndarray, Any]:
    """Pixels as fed and the spec to normalise them with (the image's own size if full)."""
    from convscope.data.images import fit_to_spec, match_channels

    if not full_size:
        return fit_to_spec(pixels, spec), spec
    pixels = match_channels(np.asarray(pixels), spec.channels)
    return pixels, replace(spec, height=pixels.shape[0], width=pixels.shape[1])


def apply_kernel(
    model: LoadedModel,
    layer: str,
    kernel: int,
    image: str | np.ndarray | InputImage,
    *,
    full_size: bool = False,
    channel_order: str | None = None,
) -> KernelResponse:
    """Apply kernel ``kernel`` of conv layer ``layer`` to an image: what edge does it see?

    The image (a SPEC, ``sample:china``/``sample:flower``, uint8 pixels or an
    :class:`InputImage`) is converted as the model expects (size by its input spec, or
    kept at its own size with ``full_size``), normalised, and run through the model up
    to the layer; the response is :func:`conv_response` on what the layer receives
    (the image itself for a first layer), i.e. exactly that output channel of the
    layer before its activation. ``channel_order="BGR"`` feeds the image as BGR.
    """
    from convscope.data.spec import InputImage

    spec = model.input_spec
    if channel_order is not None:
        if spec.channels != 3:
            raise ConvscopeError("--bgr needs a model with three input channels")
        spec = replace(spec, channel_order=channel_order)
    if isinstance(image, str):
        image = resolve_image(image, spec)
    name = image.name if isinstance(image, InputImage) else "image"
    raw = image.pixels if isinstance(image, InputImage) else np.asarray(image)
    kernels = kernel_set(model, layer)
    if channel_order is not None and kernels.in_channels == 3:
        kernels = kernels.with_channel_order(channel_order)
    if not 0 <= kernel < kernels.out_channels:
        raise LayerError(
            f"layer {layer} has {kernels.out_channels} kernels (0-{kernels.out_channels - 1}); "
            f"got {kernel}"
        )
    pixels, fed_spec = _model_pixels(raw, spec, full_size)
    batch = pixels[None, :, :, None] if pixels.ndim == 2 else pixels[None]
    x = fed_spec.normalize(np.array(batch))
    _, conv = find_conv(model.module, layer)
    inputs = layer_input(model.module, conv, x)
    try:
        response = conv_response(conv, inputs, kernel)[0]
    except RuntimeError as exc:
        raise ImageError(
            f"the image ({pixels.shape[1]}x{pixels.shape[0]}) is too small for layer {layer}'s "
            f"{kernels.kernel_size[0]}x{kernels.kernel_size[1]} kernel; use a larger image"
        ) from exc
    reduced = kernels.in_channels not in (1, 3)
    tile_images = kernel_images(
        kernels.weights[kernel : kernel + 1],
        kernels.channel_order,
        reduce="mean" if reduced else None,
        per_channel=False,
    )
    bias = None if kernels.bias is None else float(kernels.bias[kernel])
    return KernelResponse(
        model=kernels.model,
        layer=layer,
        kernel=kernel,
        image=name,
        pixels=pixels,
        kernel_tile=normalize_per_kernel(tile_images)[0],
        kernel_reduced=reduced,
        response=response.to(torch.float32).numpy().copy(),
        bias=bias,
        stride=kernels.stride,
        padding=kernels.padding,
        dilation=kernels.dilation,
        first_layer=tuple(inputs.shape[1:]) == tuple(x.shape[1:]) and torch.equal(inputs, x),
        activation=getattr(conv, "activation", None),
        extra={"channel_order": kernels.channel_order, "full_size": full_size},
    )


__all__ = [
    "NORMALIZATIONS",
    "REDUCTIONS",
    "KernelEpochs",
    "KernelGrid",
    "KernelHealth",
    "KernelResponse",
    "KernelSet",
    "apply_kernel",
    "conv_layer_names",
    "conv_response",
    "find_conv",
    "grid_shape",
    "high_freq_energy",
    "high_freq_mask",
    "kernel_grid",
    "kernel_health",
    "kernel_images",
    "kernel_set",
    "kernels_over_epochs",
    "layer_input",
    "normalize_diverging",
    "normalize_layer",
    "normalize_per_kernel",
    "resolve_image",
    "sample_image",
    "white_noise_high_freq_energy",
]
