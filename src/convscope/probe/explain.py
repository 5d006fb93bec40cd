"""The arithmetic of one output unit of a convolution or pooling layer, on the real numbers.

:func:`explain` captures the true input and output of a layer in one forward pass (scoped
hooks, always removed), then recomputes the chosen unit by hand in numpy: for a
convolution the receptive-field patch of every input channel, the kernel, their
products and sums, plus the bias, then the activation the layer applies inside; for
pooling the window and its max or mean. The recomputed value is compared with what
the layer really output. Written by hand because showing every product is the point:
no library exposes the intermediate numbers of a convolution.

Stride, dilation, groups and padding (numbers, ``'same'`` as PyTorch and Keras pad it,
extra row/column bottom/right for even kernels, and non-zero padding modes) are honoured;
padded cells are flagged so they can be shown as padding.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from convscope.errors import ConvscopeError, LayerError
from convscope.models.layers import activate, same_padding
from convscope.models.loaded import LoadedModel, weights_of
from convscope.probe.activations import borrowed_hooks, resolve_layers
from convscope.probe.base import FigureResult, short_repr
from convscope.probe.exclusive import one_at_a_time
from convscope.probe.features import ImageLike, forward, model_parts, pick_call, prepare_input

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SUPPORTED = (
    "Conv2d (also with an activation inside, 'same' padding, stride, dilation, groups), "
    "MaxPool2d, AvgPool2d, AdaptiveMaxPool2d, AdaptiveAvgPool2d"
)


# --------------------------------------------------------------------------- capture


class CapturedIO:
    """Inputs and outputs of one module, one entry per call, cloned."""

    def __init__(self) -> None:
        self.inputs: list[torch.Tensor] = []
        self.outputs: list[torch.Tensor] = []


@contextmanager
def capture_io(layer: nn.Module) -> Iterator[CapturedIO]:
    """Record (clones of) the first input and the output of ``layer`` while the block runs.

    The input is taken by a forward pre-hook, before the layer (or an in-place op) can
    change it; both hooks are removed on exit, also on error.
    """
    captured = CapturedIO()

    def pre_hook(_module: nn.Module, inputs: tuple[Any, ...]) -> None:
        if inputs and isinstance(inputs[0], torch.Tensor):
            captured.inputs.append(inputs[0].detach().clone())

    def hook(_module: nn.Module, _inputs: object, output: object) -> None:
        if isinstance(output, (tuple, list)) and output:  # e.g. MaxPool2d(return_indices=True)
            output = output[0]
        if isinstance(output, torch.Tensor):
            captured.outputs.append(output.detach().clone())

    with borrowed_hooks([(layer, hook)], [(layer, pre_hook)]):
        yield captured


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class ChannelTerm:
    """One input channel's share of a unit: its window, and for convolutions kernel and products.

    ``padded`` marks cells outside the input (padding); ``sum`` is the sum of the products
    (convolution) or ``None`` (pooling).
    """

    __repr__ = short_repr

    channel: int
    patch: np.ndarray
    padded: np.ndarray
    kernel: np.ndarray | None = None
    products: np.ndarray | None = None
    sum: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"channel": self.channel, "patch": _cells(self.patch)}
        if self.kernel is not None and self.products is not None:
            data["kernel"] = self.kernel.tolist()
            data["products"] = self.products.tolist()
            data["sum"] = self.sum
        data["padded"] = self.padded.astype(bool).tolist()
        return data


@dataclass(frozen=True, eq=False)
class Explanation(FigureResult):
    """How one output unit of a conv or pooling layer comes from its input, number by number.

    ``kind`` is ``"conv"``, ``"maxpool"`` or ``"avgpool"``. ``rows``/``cols`` give the
    window's input coordinates (negative or past the edge where it covers padding).
    ``total`` is the hand-computed pre-activation (sum of products plus bias, the max,
    or the mean), ``value`` the same after the layer's activation, ``actual`` what the
    layer output, and ``matches`` whether the two agree to float32 precision.
    ``input_maps`` is the layer's whole input (C x H x W) and ``output_map`` the whole
    output map of ``channel``, for drawing the unit in context.
    """

    model: str
    layer: str
    layer_type: str
    kind: str
    input_name: str
    at: tuple[int, int]
    channel: int
    channel_choice: str
    terms: list[ChannelTerm]
    rows: np.ndarray
    cols: np.ndarray
    total: float
    value: float
    actual: float
    matches: bool
    tolerance: float
    bias: float | None = None
    activation: str | None = None
    divisor: int | None = None
    argmax: tuple[int, int] | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    call: int = 0
    calls: int = 1
    label: str | None = None
    input_maps: np.ndarray | None = field(default=None, repr=False)
    output_map: np.ndarray | None = field(default=None, repr=False)
    output_shape: tuple[int, ...] = ()
    input_shape: tuple[int, ...] = ()
    model_weights: str = ""

    @property
    def window(self) -> tuple[int, int]:
        """Height and width of the window (kernel extent, before dilation)."""
        return self.terms[0].patch.shape if self.terms else (0, 0)  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "model": self.model,
            "weights": self.model_weights,
            "layer": self.layer,
            "type": self.layer_type,
            "kind": self.kind,
            "input": self.input_name,
            "at": list(self.at),
            "channel": self.channel,
            "channel_choice": self.channel_choice,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "receptive_field": {
                "rows": [int(self.rows[0]), int(self.rows[-1])],
                "cols": [int(self.cols[0]), int(self.cols[-1])],
            },
            "stride": list(self.stride),
            "padding": {
                "left": self.padding[0],
                "right": self.padding[1],
                "top": self.padding[2],
                "bottom": self.padding[3],
            },
            "dilation": list(self.dilation),
            "inputs": [term.to_dict() for term in self.terms],
        }
        if self.kind == "conv":
            data["groups"] = self.groups
            data["bias"] = self.bias
        if self.divisor is not None:
            data["divisor"] = self.divisor
        if self.argmax is not None:
            data["argmax"] = list(self.argmax)
        data.update(
            total=self.total,
            activation=self.activation,
            value=self.value,
            actual=self.actual,
            matches=self.matches,
        )
        if self.calls > 1:
            data["call"] = self.call
            data["calls"] = self.calls
        return data

    def figure(self, **options: Any) -> Figure:
        """The unit's arithmetic drawn (see :func:`convscope.render.explain.plot_explanation`)."""
        from convscope.render.explain import plot_explanation

        return plot_explanation(self, **options)

    def text(self, **options: Any) -> str:
        """The arithmetic as plain text (see :func:`convscope.render.explain.explanation_text`)."""
        from convscope.render.explain import explanation_text

        return explanation_text(self, **options)

    def __rich__(self) -> Any:
        from rich.text import Text

        return Text(self.text())

    def __str__(self) -> str:
        return self.text()


def _cells(patch: np.ndarray) -> list[list[float | None]]:
    """A patch as nested lists; cells that are not numbers (max-pool padding) become ``None``."""
    return [[None if not math.isfinite(v) else float(v) for v in row] for row in patch.tolist()]


# --------------------------------------------------------------------------- entry point


@one_at_a_time
def explain(
    model: LoadedModel | nn.Module,
    layer: str,
    image: ImageLike,
    at: tuple[int, int],
    *,
    channel: int | None = None,
    call: int = -1,
    index: int = 0,
) -> Explanation:
    """Explain output unit ``at`` = (row, column) of ``channel`` of ``layer`` for one input.

    ``channel=None`` picks the channel most active at that position. ``image`` is an
    :class:`~convscope.data.spec.InputImage`, uint8 pixels, a SPEC (of several images the one at ``index``, default the first) or a
    preprocessed tensor. ``call`` chooses among the calls of a reused module (default:
    the last).
    """
    module, model_name, _ = model_parts(model)
    target = explainable(module, layer)
    kind = layer_kind(target)
    prepared = prepare_input(model, image, index)
    with capture_io(target) as captured:
        forward(module, prepared.batch)
    index = pick_call(len(captured.outputs), call, layer)
    if len(captured.inputs) != len(captured.outputs):
        raise LayerError(f"layer {layer!r} did not get a tensor input; it cannot be explained")
    x = captured.inputs[index][0].double()
    y = captured.outputs[index][0]
    if y.ndim != 3:
        raise LayerError(f"layer {layer!r} output has shape {list(y.shape)}, not C x H x W")
    row, col = _check_at(at, y.shape, layer)
    chosen = _check_channel(channel, y, row, col, layer)
    common = {
        "model": model_name,
        "model_weights": weights_of(model),
        "layer": layer,
        "layer_type": type(target).__name__,
        "input_name": prepared.name,
        "label": prepared.label,
        "at": (row, col),
        "channel": chosen,
        "channel_choice": "given" if channel is not None else "most active",
        "call": index,
        "calls": len(captured.outputs),
        "output_map": y[chosen].float().numpy(),
        "output_shape": tuple(y.shape),
        "input_shape": tuple(x.shape),
    }
    actual = float(y[chosen, row, col])
    if kind == "conv":
        return _explain_conv(target, x, actual, common)  # type: ignore[arg-type]
    return _explain_pool(target, kind, x, actual, common)


def explainable(module: nn.Module, name: str) -> nn.Module:
    """The layer ``name`` of ``module``; an error if it does not exist or cannot be explained."""
    target = resolve_layers(module, [name])[name]
    if layer_kind(target) is None:
        raise LayerError(
            f"cannot explain {name!r} ({type(target).__name__}); explain supports {SUPPORTED}"
        )
    return target


def layer_kind(layer: nn.Module) -> str | None:
    """``"conv"``, ``"maxpool"``, ``"avgpool"``, or ``None`` for layers explain cannot do."""
    if isinstance(layer, nn.Conv2d):
        return "conv"
    if isinstance(layer, (nn.MaxPool2d, nn.AdaptiveMaxPool2d)):
        return "maxpool"
    if isinstance(layer, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
        return "avgpool"
    return None


def _check_at(at: Any, shape: torch.Size, layer: str) -> tuple[int, int]:
    _, height, width = shape
    parts = at.split(",") if isinstance(at, str) else at
    try:
        row, col = (int(v) for v in parts)
    except (TypeError, ValueError):
        raise ConvscopeError(
            f"the position must be two integers (row, column) such as (3, 7), got {at!r}"
        ) from None
    if not (0 <= row < height and 0 <= col < width):
        raise ConvscopeError(
            f"position ({row}, {col}) is outside {layer}'s {height}x{width} output; "
            f"--at ROW,COL takes ROW in 0..{height - 1} and COL in 0..{width - 1}"
        )
    return row, col


def _check_channel(channel: int | None, y: torch.Tensor, row: int, col: int, layer: str) -> int:
    count = y.shape[0]
    if channel is None:
        return int(torch.argmax(y[:, row, col]))
    if not 0 <= channel < count:
        raise ConvscopeError(
            f"channel {channel} does not exist; {layer} has channels 0..{count - 1}"
        )
    return int(channel)


# --------------------------------------------------------------------------- convolution


def conv_padding(layer: nn.Conv2d) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` padding a Conv2d applies (``'same'`` as PyTorch does)."""
    if isinstance(layer.padding, str):
        if layer.padding == "valid":
            return (0, 0, 0, 0)
        return same_padding(layer.kernel_size, layer.dilation)
    top, left = layer.padding
    return (left, left, top, top)


def _pad(x: torch.Tensor, padding: tuple[int, int, int, int], mode: str) -> torch.Tensor:
    """``x`` (C x H x W) padded as the layer pads it (zeros unless the layer says otherwise)."""
    if not any(padding):
        return x
    if mode == "zeros":
        return F.pad(x, padding)
    return F.pad(x.unsqueeze(0), padding, mode=mode).squeeze(0)


def _window(
    start: int, size: int, dilation: int, offset: int, limit: int
) -> tuple[np.ndarray, np.ndarray]:
    """Input coordinates of a window and which of them fall outside ``0..limit-1``."""
    coords = start - offset + np.arange(size) * dilation
    return coords, (coords < 0) | (coords >= limit)


def _explain_conv(layer: nn.Conv2d, x: torch.Tensor, actual: float, common: dict) -> Explanation:
    """Patch x kernel per input channel, summed, plus bias, then the layer's activation."""
    row, col = common["at"]
    out_channel = common["channel"]
    padding = conv_padding(layer)
    left, _, top, _ = padding
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    padded_x = _pad(x, padding, layer.padding_mode).numpy()
    _, height, width = x.shape
    rows, row_out = _window(row * sh, kh, dh, top, height)
    cols, col_out = _window(col * sw, kw, dw, left, width)
    row_idx = row * sh + np.arange(kh) * dh
    col_idx = col * sw + np.arange(kw) * dw
    pad_mask = row_out[:, None] | col_out[None, :]
    weight = layer.weight.detach().double().numpy()
    per_group = layer.in_channels // layer.groups
    group = out_channel // (layer.out_channels // layer.groups)
    terms = []
    for j in range(per_group):
        in_channel = group * per_group + j
        patch = padded_x[in_channel][np.ix_(row_idx, col_idx)]
        kernel = weight[out_channel, j]
        products = patch * kernel
        terms.append(
            ChannelTerm(
                channel=in_channel,
                patch=patch,
                padded=pad_mask,
                kernel=kernel,
                products=products,
                sum=float(products.sum()),
            )
        )
    bias = None if layer.bias is None else float(layer.bias.detach().double()[out_channel])
    total = math.fsum(term.sum for term in terms) + (bias or 0.0)  # type: ignore[misc]
    activation = getattr(layer, "activation", None)
    activation = None if activation == "linear" else activation
    value = _activate(layer, activation, total, padded_x, weight, row_idx, col_idx, out_channel)
    magnitude = sum(float(np.abs(t.products).sum()) for t in terms) + abs(bias or 0.0)  # type: ignore[arg-type]
    tolerance = 1e-5 * max(magnitude, abs(actual)) + 1e-6
    return Explanation(
        kind="conv",
        terms=terms,
        rows=rows,
        cols=cols,
        total=total,
        value=value,
        actual=actual,
        matches=abs(value - actual) <= tolerance,
        tolerance=tolerance,
        bias=bias,
        activation=activation,
        stride=(sh, sw),
        padding=padding,
        dilation=(dh, dw),
        groups=layer.groups,
        input_maps=x.float().numpy(),
        **common,
    )


def _activate(
    layer: nn.Conv2d,
    activation: str | None,
    total: float,
    padded_x: np.ndarray,
    weight: np.ndarray,
    row_idx: np.ndarray,
    col_idx: np.ndarray,
    out_channel: int,
) -> float:
    """The activation applied to ``total``; softmax needs every channel at that position."""
    if activation is None:
        return total
    if activation == "softmax":
        if layer.groups != 1:
            raise LayerError("cannot explain a grouped convolution with a softmax inside")
        patch = padded_x[:, row_idx][:, :, col_idx]
        totals = np.einsum("oihw,ihw->o", weight, patch)
        if layer.bias is not None:
            totals = totals + layer.bias.detach().double().numpy()
        totals[out_channel] = total
        return float(torch.softmax(torch.from_numpy(totals), dim=0)[out_channel])
    try:
        return float(activate(torch.tensor(total, dtype=torch.float64), activation))
    except ValueError:
        raise LayerError(
            f"cannot explain the activation {activation!r} inside {type(layer).__name__}"
        ) from None


# --------------------------------------------------------------------------- pooling


def _pair(value: int | tuple[int, ...] | None, default: int) -> tuple[int, int]:
    if value is None:
        return (default, default)
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))


def _adaptive_range(index: int, size: int, out: int) -> tuple[int, int]:
    """The input range PyTorch's adaptive pooling gives output ``index``: floor start, ceil end."""
    return (index * size) // out, -((-(index + 1) * size) // out)


def _explain_pool(
    layer: nn.Module, kind: str, x: torch.Tensor, actual: float, common: dict
) -> Explanation:
    """The window of the unit and its max or mean, padding shown as such."""
    row, col = common["at"]
    channel = common["channel"]
    _, height, width = x.shape
    data = x[channel].numpy()
    divisor = None
    if isinstance(layer, (nn.AdaptiveMaxPool2d, nn.AdaptiveAvgPool2d)):
        out_h, out_w = common["output_shape"][1:]
        r0, r1 = _adaptive_range(row, height, out_h)
        c0, c1 = _adaptive_range(col, width, out_w)
        rows, cols = np.arange(r0, r1), np.arange(c0, c1)
        stride, padding, dilation = (1, 1), (0, 0, 0, 0), (1, 1)
        pad_mask = np.zeros((rows.size, cols.size), dtype=bool)
        in_window = ~pad_mask
        divisor = rows.size * cols.size if kind == "avgpool" else None
    else:
        kh, kw = _pair(layer.kernel_size, 1)  # type: ignore[arg-type]
        stride = _pair(layer.stride, 1) if layer.stride else (kh, kw)  # type: ignore[arg-type]
        ph, pw = _pair(layer.padding, 0)  # type: ignore[arg-type]
        dilation = _pair(getattr(layer, "dilation", 1), 1)  # type: ignore[arg-type]
        padding = (pw, pw, ph, ph)
        rows, row_out = _window(row * stride[0], kh, dilation[0], ph, height)
        cols, col_out = _window(col * stride[1], kw, dilation[1], pw, width)
        pad_mask = row_out[:, None] | col_out[None, :]
        # Cells past the padded input (ceil_mode overhang) are not part of the window at all.
        in_padded = ((rows < height + ph)[:, None]) & ((cols < width + pw)[None, :])
        in_window = in_padded
        if kind == "avgpool":
            divisor = _avg_divisor(layer, pad_mask, in_padded)
    patch = np.where(
        pad_mask,
        -np.inf if kind == "maxpool" else 0.0,
        data[np.ix_(np.clip(rows, 0, height - 1), np.clip(cols, 0, width - 1))],
    )
    argmax = None
    if kind == "maxpool":
        candidates = np.where(in_window & ~pad_mask, patch, -np.inf)
        flat = int(np.argmax(candidates))
        r, c = np.unravel_index(flat, patch.shape)
        argmax = (int(rows[r]), int(cols[c]))
        total = float(candidates[r, c])
    else:
        total = float(np.where(in_window & ~pad_mask, patch, 0.0).sum() / divisor)  # type: ignore[operator]
    magnitude = float(np.abs(np.where(np.isfinite(patch), patch, 0.0)).max(initial=0.0))
    tolerance = 1e-5 * max(magnitude, abs(actual)) + 1e-6
    return Explanation(
        kind=kind,
        terms=[ChannelTerm(channel=channel, patch=patch, padded=pad_mask)],
        rows=rows,
        cols=cols,
        total=total,
        value=total,
        actual=actual,
        matches=abs(total - actual) <= tolerance,
        tolerance=tolerance,
        divisor=divisor,
        argmax=argmax,
        stride=stride,
        padding=padding,
        dilation=dilation,
        input_maps=x.float().numpy(),
        **common,
    )


def _avg_divisor(layer: nn.Module, pad_mask: np.ndarray, in_padded: np.ndarray) -> int:
    """What AvgPool2d divides by: the override, the window inside the padded input, or the real cells."""
    override = getattr(layer, "divisor_override", None)
    if override:
        return int(override)
    if getattr(layer, "count_include_pad", True):
        return int(in_padded.sum())
    return int((in_padded & ~pad_mask).sum())
