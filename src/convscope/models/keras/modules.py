"""The PyTorch modules Keras layers become, with Keras' exact numbers.

Tensors flow channels-first here: the Keras tensor ``(N, d1, ..., dk, C)`` is
``(N, C, d1, ..., dk)``, so convolutions and pools run natively. Modules whose result
depends on the element order (Flatten, Reshape) convert explicitly. ``'same'``
padding follows TensorFlow: the extra row/column goes to the bottom/right, and
strided layers pad by what the input size needs; max pooling pads with -inf and
average pooling averages the real pixels only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from convscope.errors import ModelError
from convscope.models.layers import same_padding

Pads = tuple[int, int, int, int]
"""``(left, right, top, bottom)`` padding, the order ``F.pad`` takes for 2-D."""

# --------------------------------------------------------------------------- activations

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": lambda x: x,
    "relu": F.relu,
    "relu6": F.relu6,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": lambda x: torch.softmax(x, dim=1),
    "log_softmax": lambda x: torch.log_softmax(x, dim=1),
    "elu": F.elu,
    "selu": F.selu,
    "softplus": F.softplus,
    "softsign": F.softsign,
    "silu": F.silu,
    "gelu": F.gelu,
    "exponential": torch.exp,
    "mish": F.mish,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.2),
    "hard_silu": F.hardswish,
}
"""Keras activations by name; softmax runs over the channel axis (Keras' last axis)."""

_ALIASES = {None: "linear", "swish": "silu", "hard_swish": "hard_silu"}


def activation_name(value: Any, layer: str) -> str:
    """The canonical name of a Keras ``activation`` config value; unknown ones are an error."""
    if isinstance(value, Mapping):  # {"class_name": ..., "config": ...} in some versions
        inner = value.get("config")
        value = inner if isinstance(inner, str) else value.get("class_name")
    name = _ALIASES.get(value, value)
    if name not in ACTIVATIONS:
        raise ModelError(
            f"layer {layer!r} uses the activation {value!r}, which convscope cannot import; "
            f"supported: {', '.join(sorted(ACTIVATIONS))}"
        )
    return str(name)


def apply_activation(x: torch.Tensor, name: str | None) -> torch.Tensor:
    """``x`` through the Keras activation ``name``."""
    if name in (None, "linear"):
        return x
    return ACTIVATIONS[name](x)


# --------------------------------------------------------------------------- padding


def pair(value: Any) -> tuple[int, int]:
    """``3`` or ``[3, 3]`` -> ``(3, 3)``."""
    if isinstance(value, (list, tuple)):
        first, second = value
        return int(first), int(second)
    return int(value), int(value)


def tf_same_pads(
    size: Sequence[int], kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]
) -> Pads:
    """TensorFlow's ``'same'`` padding for an input ``size`` (H, W): less before than after."""
    pads: list[int] = []
    for n, k, s, d in zip(size, kernel, stride, dilation, strict=True):
        total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
        pads.append(total // 2)
        pads.append(total - total // 2)
    top, bottom, left, right = pads
    return (left, right, top, bottom)


def same_plan(
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    size: tuple[int | None, int | None] | None,
    max_symmetric: tuple[int, int] | None = None,
) -> tuple[Any, Pads | None, bool]:
    """How a ``'same'`` layer pads: ``(torch padding, explicit pads, pad at run time)``.

    Symmetric padding becomes the module's own ``padding`` (``max_symmetric`` caps it,
    as pooling modules require); other cases pad explicitly, at build time where the
    input size is known, else at run time.
    """
    if stride == (1, 1):
        totals = [(k - 1) * d for k, d in zip(kernel, dilation, strict=True)]
        pads = same_padding(kernel, dilation)
    elif size is None or None in size:
        return 0, None, True
    else:
        pads = tf_same_pads(size, kernel, stride, dilation)  # type: ignore[arg-type]
        totals = [pads[2] + pads[3], pads[0] + pads[1]]
    left, right, top, bottom = pads
    symmetric = left == right and top == bottom
    fits = max_symmetric is None or (top <= max_symmetric[0] and left <= max_symmetric[1])
    if symmetric and fits:
        return (totals[0] // 2, totals[1] // 2), None, False
    return 0, pads, False


def _run_time_pads(x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int], dilation) -> Pads:
    return tf_same_pads((int(x.shape[-2]), int(x.shape[-1])), kernel, stride, dilation)


# --------------------------------------------------------------------------- modules


class KerasConv2d(nn.Conv2d):
    """Keras ``Conv2D``/``DepthwiseConv2D`` padded symmetrically: a ``Conv2d`` and its activation.

    ``padding`` is what PyTorch applies: numbers, or ``'same'`` (stride 1; the extra
    row/column of an even kernel at the bottom/right, as Keras). Other ``'same'``
    padding is a :class:`SamePad2d` in front (:class:`PaddedConv2d`).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: tuple[int, int],
        *,
        stride: tuple[int, int] = (1, 1),
        padding: Any = 0,
        dilation: tuple[int, int] = (1, 1),
        groups: int = 1,
        bias: bool = True,
        activation: str | None = None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padding: Any = self.padding
        if padding == "same":
            x, padding = F.pad(x, same_padding(self.kernel_size, self.dilation)), 0
        y = F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)
        return apply_activation(y, self.activation)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, activation={self.activation}"


class SamePad2d(nn.Module):
    """TensorFlow's ``'same'`` padding for a strided or even window: less before than after.

    ``pads`` is fixed when the input size is known; else it is worked out per input.
    Max pooling pads with ``value=-inf`` so padding never wins.
    """

    def __init__(
        self,
        kernel_size: tuple[int, int],
        stride: tuple[int, int],
        dilation: tuple[int, int] = (1, 1),
        *,
        pads: Pads | None = None,
        value: float = 0.0,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.dilation = dilation
        self.pads = pads
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = self.pads or _run_time_pads(x, self.kernel_size, self.stride, self.dilation)
        return F.pad(x, pads, value=self.value)

    def extra_repr(self) -> str:
        pads = "per input" if self.pads is None else str(self.pads)
        return f"pads={pads} (left, right, top, bottom), value={self.value}"


class PaddedConv2d(nn.Module):
    """A Keras convolution with asymmetric ``'same'`` padding: ``pad``, then ``conv`` unpadded."""

    def __init__(self, pad: SamePad2d, conv: KerasConv2d) -> None:
        super().__init__()
        self.pad = pad
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pad(x))


class PaddedPool2d(nn.Module):
    """Keras ``MaxPooling2D`` with asymmetric ``'same'`` padding: -inf ``pad``, then ``pool``."""

    def __init__(self, pad: SamePad2d, pool: nn.MaxPool2d) -> None:
        super().__init__()
        self.pad = pad
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.pad(x))


def keras_conv(
    in_channels: int,
    out_channels: int,
    kernel_size: tuple[int, int],
    *,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    bias: bool,
    padding: str,
    input_size: tuple[int | None, int | None],
    activation: str | None = None,
) -> KerasConv2d | PaddedConv2d:
    """The module of a Keras convolution, padded exactly as TensorFlow pads it."""
    torch_padding: Any = 0
    pads, dynamic = None, False
    if padding == "same":
        torch_padding, pads, dynamic = same_plan(kernel_size, stride, dilation, input_size)
        if stride == (1, 1) and pads is not None:
            torch_padding, pads = "same", None  # PyTorch's 'same' pads as Keras does here
    conv = KerasConv2d(
        in_channels,
        out_channels,
        kernel_size,
        stride=stride,
        padding=torch_padding,
        dilation=dilation,
        groups=groups,
        bias=bias,
        activation=activation,
    )
    if pads is None and not dynamic:
        return conv
    return PaddedConv2d(SamePad2d(kernel_size, stride, dilation, pads=pads), conv)


def conv_of(module: nn.Module) -> nn.Conv2d:
    """The ``Conv2d`` of a (possibly padded) Keras convolution module."""
    conv = module.conv if isinstance(module, PaddedConv2d) else module
    assert isinstance(conv, nn.Conv2d)
    return conv


class SeparableConv2d(nn.Module):
    """Keras ``SeparableConv2D``: a depthwise convolution, then a 1x1 pointwise one."""

    def __init__(self, depthwise: nn.Module, pointwise: KerasConv2d, activation: str | None):
        super().__init__()
        self.depthwise = depthwise
        self.pointwise = pointwise
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return apply_activation(self.pointwise(self.depthwise(x)), self.activation)


class KerasAvgPool2d(nn.Module):
    """Keras ``AveragePooling2D`` with asymmetric ``'same'`` padding: the mean of the real pixels.

    (Symmetric padding is an ``nn.AvgPool2d`` with ``count_include_pad=False``.)
    """

    def __init__(self, kernel_size, stride, *, pads: Pads | None = None) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.pads = pads  # None: worked out per input

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = self.pads or _run_time_pads(x, self.kernel_size, self.stride, (1, 1))
        summed = F.avg_pool2d(F.pad(x, pads), self.kernel_size, self.stride)
        ones = torch.ones_like(x[:1, :1])
        counts = F.avg_pool2d(F.pad(ones, pads), self.kernel_size, self.stride)
        return summed / counts

    def extra_repr(self) -> str:
        pads = "per input" if self.pads is None else str(self.pads)
        return f"kernel_size={self.kernel_size}, stride={self.stride}, pads={pads}"


class GlobalPool2d(nn.Module):
    """Keras ``GlobalAveragePooling2D`` / ``GlobalMaxPooling2D`` (``mode`` "avg" or "max")."""

    def __init__(self, mode: str, keepdims: bool = False) -> None:
        super().__init__()
        self.mode = mode
        self.keepdims = keepdims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "max":
            return torch.amax(x, dim=(2, 3), keepdim=self.keepdims)
        return torch.mean(x, dim=(2, 3), keepdim=self.keepdims)

    def extra_repr(self) -> str:
        return f"mode={self.mode}, keepdims={self.keepdims}"


class KerasDense(nn.Linear):
    """Keras ``Dense``: a ``Linear`` with its activation, on Keras' last axis."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        activation: str | None = None,
        channels_first: bool = False,
    ) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self.activation = activation
        self.channels_first = channels_first  # input of rank > 2: features sit on dim 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_first:
            y = F.linear(x.movedim(1, -1), self.weight, self.bias).movedim(-1, 1)
        else:
            y = F.linear(x, self.weight, self.bias)
        return apply_activation(y, self.activation)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, activation={self.activation}"


class KerasActivation(nn.Module):
    """Keras ``Activation`` layer."""

    def __init__(self, activation: str) -> None:
        super().__init__()
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return apply_activation(x, self.activation)

    def extra_repr(self) -> str:
        return f"activation={self.activation}"


class KerasReLU(nn.Module):
    """Keras ``ReLU`` with ``max_value``, ``negative_slope`` and ``threshold``, as Keras computes it."""

    def __init__(self, max_value: float | None, negative_slope: float, threshold: float) -> None:
        super().__init__()
        self.max_value = max_value
        self.negative_slope = negative_slope
        self.threshold = threshold

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        slope, top, threshold = self.negative_slope, self.max_value, self.threshold
        if slope != 0 and top is None and threshold == 0:
            return F.leaky_relu(x, slope)
        y = x * (x > threshold).to(x.dtype) if threshold != 0 else F.relu(x)
        if top is not None:
            y = torch.clamp(y, 0.0, top)
        if slope != 0:
            y = y - slope * F.relu(threshold - x)
        return y

    def extra_repr(self) -> str:
        return (
            f"max_value={self.max_value}, negative_slope={self.negative_slope}, "
            f"threshold={self.threshold}"
        )


class ChannelsLastFlatten(nn.Module):
    """Keras ``Flatten`` in Keras' element order (channels last), for any consumer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x.movedim(1, -1), 1)


class KerasReshape(nn.Module):
    """Keras ``Reshape``: reshape in Keras' (channels-last) order, then back to channels-first."""

    def __init__(self, in_rank: int, target_shape: Sequence[int]) -> None:
        super().__init__()
        self.in_rank = in_rank  # Keras rank without the batch axis
        self.target_shape = tuple(int(v) for v in target_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.in_rank >= 2:
            x = x.movedim(1, -1)
        x = x.reshape(x.shape[0], *self.target_shape)
        if len(self.target_shape) >= 2:
            x = x.movedim(-1, 1)
        return x

    def extra_repr(self) -> str:
        return f"target_shape={self.target_shape}"


class Rescaling(nn.Module):
    """Keras ``Rescaling``: ``x * scale + offset`` (scalars, or one value per channel)."""

    scale: float | torch.Tensor
    offset: float | torch.Tensor

    def __init__(self, scale: Any, offset: Any, rank: int) -> None:
        super().__init__()
        for name, value in (("scale", scale), ("offset", offset)):
            converted = _per_channel(value, rank)
            if isinstance(converted, torch.Tensor):
                self.register_buffer(name, converted, persistent=False)
            else:
                setattr(self, name, converted)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.offset

    def extra_repr(self) -> str:
        return f"scale={self.scale}, offset={self.offset}"


def _per_channel(value: Any, rank: int) -> float | torch.Tensor:
    if isinstance(value, (list, tuple)):
        values = torch.tensor([float(v) for v in value], dtype=torch.float32)
        return values.view(1, -1, *([1] * max(rank - 2, 0))) if rank > 2 else values
    return float(value)


class Merge(nn.Module):
    """Keras ``Subtract``/``Multiply``/``Average``/``Maximum``/``Minimum`` of its inputs."""

    def __init__(self, op: str) -> None:
        super().__init__()
        self.op = op

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.op == "subtract":
            return inputs[0] - inputs[1]
        result = inputs[0]
        for x in inputs[1:]:
            if self.op == "multiply":
                result = result * x
            elif self.op == "average":
                result = result + x
            elif self.op == "maximum":
                result = torch.maximum(result, x)
            else:
                result = torch.minimum(result, x)
        return result / len(inputs) if self.op == "average" else result

    def extra_repr(self) -> str:
        return f"op={self.op}"
