"""Small building blocks the zoo shares, chosen so PyTorch modules mirror Keras layers.

Keras puts an activation inside ``Conv2D``/``Dense`` and has named ``Add`` and
``Concatenate`` layers; having the same here means a module's output is what the
Keras layer of the same name outputs, and that sums and concatenations are
addressable layers (hooks, feature maps) like every other.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: LeCun 1998 squashing function f(a) = A tanh(S a), with A = 1.7159, S = 2/3.
LECUN_TANH_AMPLITUDE = 1.7159
LECUN_TANH_SLOPE = 2.0 / 3.0

ACTIVATIONS = ("relu", "tanh", "sigmoid", "softmax", "scaled_tanh", "linear")


def activate(x: torch.Tensor, activation: str | None) -> torch.Tensor:
    """Apply a named activation (the Keras names, plus LeCun's scaled tanh)."""
    if activation in (None, "linear"):
        return x
    if activation == "relu":
        return F.relu(x)
    if activation == "tanh":
        return torch.tanh(x)
    if activation == "sigmoid":
        return torch.sigmoid(x)
    if activation == "softmax":
        return torch.softmax(x, dim=1)
    if activation == "scaled_tanh":
        return LECUN_TANH_AMPLITUDE * torch.tanh(LECUN_TANH_SLOPE * x)
    raise ValueError(f"unknown activation {activation!r}; known: {', '.join(ACTIVATIONS)}")


class Conv2dAct(nn.Conv2d):
    """A ``Conv2d`` followed by its own activation, like Keras ``Conv2D(activation=...)``."""

    def __init__(self, *args: object, activation: str | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        activate(torch.zeros(1, 1), activation)  # validate the name early
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return activate(super().forward(x), self.activation)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, activation={self.activation}"


class LinearAct(nn.Linear):
    """A ``Linear`` followed by its own activation, like Keras ``Dense(activation=...)``."""

    def __init__(self, *args: object, activation: str | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        activate(torch.zeros(1, 1), activation)
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return activate(super().forward(x), self.activation)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, activation={self.activation}"


def same_padding(
    kernel_size: tuple[int, ...], dilation: tuple[int, ...]
) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` zero padding of ``same`` convolution, as Keras and PyTorch do.

    For an even kernel the extra row/column goes to the bottom/right.
    """
    pads: list[int] = []
    for k, d in zip(reversed(kernel_size), reversed(dilation), strict=True):
        total = d * (k - 1)
        pads += [total // 2, total - total // 2]
    return (pads[0], pads[1], pads[2], pads[3])


class SameConv2d(nn.Conv2d):
    """A stride-1 ``padding='same'`` convolution that pads explicitly.

    Same numbers as ``nn.Conv2d(padding='same')``, without its performance warning
    for even kernels; ``padding`` stays ``'same'`` so tools know how it pads.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, **kwargs: object):
        super().__init__(in_channels, out_channels, kernel_size, padding="same", **kwargs)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, same_padding(self.kernel_size, self.dilation))
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class Add(nn.Module):
    """Element-wise sum of its inputs (Keras ``add``): the residual shortcut."""

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        total = inputs[0]
        for x in inputs[1:]:
            total = total + x
        return total


class Concat(nn.Module):
    """Concatenation along the channel axis (Keras ``concatenate(axis=3)`` in NHWC)."""

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return torch.cat(inputs, dim=self.dim)


def keras_batchnorm(channels: int) -> nn.BatchNorm2d:
    """BatchNorm with Keras' defaults: epsilon 1e-3 and moving-average momentum 0.99."""
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


def he_normal_(weight: torch.Tensor) -> torch.Tensor:
    """Keras ``he_normal``: truncated normal (at 2 sd) with variance 2 / fan_in.

    Keras divides the standard deviation by 0.8796..., the sd of a unit normal
    truncated at +-2, so the truncated draw keeps the intended variance.
    """
    fan_in = weight[0].numel()
    std = math.sqrt(2.0 / fan_in) / 0.87962566103423978
    with torch.no_grad():
        return nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-2 * std, b=2 * std)


def glorot_init(module: nn.Module) -> None:
    """Keras' default init for every conv and dense layer: glorot uniform, zero bias."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
