"""Keras layer configs -> PyTorch modules, with each layer's output shape.

One builder per Keras layer class (``@builds("Conv2D")``); shapes are Keras shapes
without the batch axis (channels last), which the builders need to size the next
layer and to pad strided ``'same'`` layers as TensorFlow does. An unsupported class
is a :class:`ModelError` naming the layer and its class.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from convscope.errors import ModelError
from convscope.models.keras.config import LayerSpec, Shape
from convscope.models.keras.modules import (
    ChannelsLastFlatten,
    GlobalPool2d,
    KerasActivation,
    KerasAvgPool2d,
    KerasConv2d,
    KerasDense,
    KerasReLU,
    KerasReshape,
    Merge,
    PaddedPool2d,
    Rescaling,
    SamePad2d,
    SeparableConv2d,
    activation_name,
    keras_conv,
    pair,
    same_plan,
)
from convscope.models.layers import Add, Concat

Builder = Callable[[LayerSpec, list[Shape]], tuple[nn.Module, Shape]]
BUILDERS: dict[str, Builder] = {}
PASS_THROUGH = (
    "Dropout",
    "SpatialDropout2D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
    "Identity",
)


def builds(*class_names: str) -> Callable[[Builder], Builder]:
    def register(function: Builder) -> Builder:
        for name in class_names:
            BUILDERS[name] = function
        return function

    return register


def supported_layers() -> list[str]:
    """The Keras layer classes convscope imports."""
    return sorted([*BUILDERS, "InputLayer"])


def build_layer(layer: LayerSpec, shapes: list[Shape]) -> tuple[nn.Module, Shape]:
    """The module for one Keras layer and its output shape (Keras order, no batch axis)."""
    builder = BUILDERS.get(layer.class_name)
    if builder is None:
        raise ModelError(
            f"layer {layer.name!r} is a {layer.class_name}, which convscope cannot import; "
            f"supported: {', '.join(supported_layers())}"
        )
    return builder(layer, shapes)


def _one(layer: LayerSpec, shapes: list[Shape], rank: int | None = None) -> Shape:
    if len(shapes) != 1:
        raise ModelError(
            f"layer {layer.name!r} ({layer.class_name}) takes one input, got {len(shapes)}"
        )
    shape = shapes[0]
    if rank is not None and len(shape) != rank:
        raise ModelError(
            f"layer {layer.name!r} ({layer.class_name}) expects images (H, W, C); "
            f"its input has shape {shape}"
        )
    if layer.config.get("data_format", "channels_last") not in (None, "channels_last"):
        raise ModelError(
            f"layer {layer.name!r} uses data_format={layer.config['data_format']!r}; convscope "
            "imports channels_last Keras models"
        )
    return shape


def _known(value: int | None, layer: LayerSpec, what: str) -> int:
    if value is None:
        raise ModelError(f"layer {layer.name!r} ({layer.class_name}): the {what} is not fixed")
    return int(value)


def torch_axis(axis: Any, rank: int, layer: LayerSpec) -> int:
    """The dim of a channels-first tensor that Keras ``axis`` names (``rank`` counts the batch)."""
    if isinstance(axis, (list, tuple)):
        if len(axis) != 1:
            raise ModelError(f"layer {layer.name!r}: several axes {axis} are not supported")
        axis = axis[0]
    a = int(axis) % rank
    if a == 0:
        raise ModelError(f"layer {layer.name!r} works on the batch axis, which is not supported")
    if rank <= 2:
        return a
    return 1 if a == rank - 1 else a + 1


def _conv_size(n: int | None, k: int, s: int, d: int, padding: str) -> int | None:
    if n is None:
        return None
    if padding == "same":
        return math.ceil(n / s)
    return (n - d * (k - 1) - 1) // s + 1


def _padding(layer: LayerSpec) -> str:
    padding = str(layer.config.get("padding", "valid")).lower()
    if padding not in ("valid", "same"):
        raise ModelError(f"layer {layer.name!r} uses padding={padding!r}; supported: valid, same")
    return padding


def _conv_common(layer: LayerSpec, shape: Shape) -> dict[str, Any]:
    cfg = layer.config
    kernel = pair(cfg["kernel_size"])
    stride = pair(cfg.get("strides", 1))
    dilation = pair(cfg.get("dilation_rate", 1))
    padding = _padding(layer)
    out_hw = tuple(
        _conv_size(n, k, s, d, padding)
        for n, k, s, d in zip(shape[:2], kernel, stride, dilation, strict=True)
    )
    _check_size(layer, out_hw)
    return {
        "kernel": kernel,
        "stride": stride,
        "dilation": dilation,
        "padding": padding,
        "size": (shape[0], shape[1]),
        "out_hw": out_hw,
    }


def _check_size(layer: LayerSpec, out_hw: tuple[int | None, ...]) -> None:
    if any(v is not None and v < 1 for v in out_hw):
        raise ModelError(f"layer {layer.name!r} ({layer.class_name}): its input is too small")


def _spatial_conv(
    layer: LayerSpec, c: dict[str, Any], channels: int, out: int, groups: int
) -> nn.Module:
    """The Keras convolution ``layer`` (``c`` from :func:`_conv_common`) as one module."""
    return keras_conv(
        channels,
        out,
        c["kernel"],
        stride=c["stride"],
        dilation=c["dilation"],
        groups=groups,
        bias=bool(layer.config.get("use_bias", True)),
        padding=c["padding"],
        input_size=c["size"],
        activation=activation_name(layer.config.get("activation"), layer.name),
    )


@builds("Conv2D")
def _conv2d(layer: LayerSpec, shapes: list[Shape]) -> tuple[nn.Module, Shape]:
    shape = _one(layer, shapes, rank=3)
    c = _conv_common(layer, shape)
    channels = _known(shape[2], layer, "number of input channels")
    filters = int(layer.config["filters"])
    groups = int(layer.config.get("groups", 1) or 1)
    return _spatial_conv(layer, c, channels, filters, groups), (*c["out_hw"], filters)


@builds("DepthwiseConv2D")
def _depthwise(layer: LayerSpec, shapes: list[Shape]) -> tuple[nn.Module, Shape]:
    shape = _one(layer, shapes, rank=3)
    c = _conv_common(layer, shape)
    channels = _known(shape[2], layer, "number of input channels")
    out = channels * int(layer.config.get("depth_multiplier", 1))
    return _spatial_conv(layer, c, channels, out, channels), (*c["out_hw"], out)


@builds("SeparableConv2D")
def _separable(layer: LayerSpec, shapes: list[Shape]) -> tuple[nn.Module, Shape]:
    shape = _one(layer, shapes, rank=3)
    c = _conv_common(layer, shape)
    channels = _known(shape[2], layer, "number of input channels")
    middle = channels * int(layer.config.get("depth_multiplier", 1))
    filters = int(layer.config["filters"])
    depthwise = keras_conv(
        channels,
        middle,
        c["kernel"],
        stride=c["stride"],
        dilation=c["dilation"],
        groups=channels,
        bias=False,
        padding=c["padding"],
        input_size=c["size"],
    )
    pointwise = KerasConv2d(middle, filters, (1, 1), bias=bool(layer.config.get("use_bias", True)))
    activation = activation_name(layer.config.get("activation"), layer.name)
    return SeparableConv2d(depthwise, pointwise, activation), (*c["out_hw"], filters)


@builds("MaxPooling2D", "AveragePooling2D")
def _pool(layer: LayerSpec, shapes: list[Shape]) -> tuple[nn.Module, Shape]:
    shape = _one(layer, shapes, rank=3)
    kernel = pair(layer.config.get("pool_size", 2))
    strides = layer.config.get("strides")
    stride = pair(strides) if strides is not None else kernel
    padding = _padding(layer)
    out_hw = tuple(
        _conv_size(n, k, s, 1, padding) for n, k, s in zip(shape[:2], kernel, stride, strict=True)
    )
    _check_size(layer, out_hw)
    torch_padding: Any = 0
    pads, dynamic = None, False
    if padding == "same":
        cap = (kernel[0] // 2, kernel[1] // 2)  # the most padding PyTorch's pools take
        torch_padding, pads, dynamic = same_plan(
            kernel, stride, (1, 1), (shape[0], shape[1]), max_symmetric=cap
        )
    module: nn.Module
    if layer.class_name == "MaxPooling2D":
        module = nn.MaxPool2d(kernel, stride, padding=torch_padding)
        if pads is not None or dynamic:
            pad = SamePad2d(kernel, stride, pads=pads, value=float("-inf"))
            module = PaddedPool2d(pad, nn.MaxPool2d(kernel, stride))
    elif pads is not None or dynamic:
        module = KerasAvgPool2d(kernel, stride, pads=pads)
    else:
        module = nn.AvgPool2d(kernel, stride, padding=torch_padding, count_include_pad=False)
    return module, (*out_hw, shape[2])


@builds("GlobalAveragePooling2D", "GlobalMaxPooling2D")
def _global_pool(layer: LayerSpec, shapes: list[Shape]) -> tuple[nn.Module, Shape]:
    shape = _one(layer, shapes, rank=3)
    keepdims = bool(layer.config.get("keepdims", False))
    mode = "max" if layer.class_name == "GlobalMaxPooling2D" else "avg"
    out: Shape = (1, 1, shape[2]) if keepdims else (shape[2],)
    return GlobalPool2d(mode, keepdims), out


@builds("ZeroPadding2D")
def _zero_padding(layer: LayerSpec, shapes: list[Shape]) -> tuple[nn.Module, Shape]:
    shape = _one(layer, shapes, rank=3)
    padding = layer.config.get("padding", 1)
    if isinstance(padding, int):
        (top, bottom), (left, right) = (padding, padding), (padding, padding)
    elif all(isinstance(v, int) for v in padding):
        (top, bottom), (left, right) = (padding[0], padding[0]), (padding[1], padding[1])
    else:
        (top, bottom), (left, right) = padding
    height, width = shape[0], shape[1]
    out = (
        None if height is None else height + top + bottom,
        None if width is None else width + left + right,
        shape[2],
    )
    return nn.ZeroPad2d((int(left), int(right), int(top), int(bottom))), out


@builds("BatchNormalization")
def _batch_norm(layer: LayerSpec, shapes: list[Shape]) -> tuple[nn.Module, Shape]:
    shape = _one(layer, shapes)
    cfg = layer.config
    if cfg.get("renorm"):
        raise ModelError(f"layer {layer.name!r}: BatchNormalization with renorm is not supported")
    rank = len(shape) + 1
    if torch_axis(cfg.get("axis", -1), rank, layer) != 1:
        raise ModelError(
            f"layer {layer.name!r} normalises axis {cfg.get('axis')}; convscope imports "
            "BatchNormalization over the channel (last) axis"
        )
    channels = _known(shape[-1], layer, "number of channels")
    if rank == 4:
        cls: type[nn.modules.batchnorm._BatchNorm] = nn.BatchNorm2d
    elif rank in (2, 3):
        cls = nn.BatchNorm1d
    else:
        raise ModelError(f"layer {layer.name!r}: BatchNormalization of a rank-{rank} tensor")
    center, scale = bool(cfg.get("center", True)), bool(cfg.get("scale", True))
    module = cls(
        channels,
        eps=float(cfg.get("epsilon", 1e-3)),
        momentum=1.0 - float(cfg.get("momentum", 0.99)),
        affine=center and scale,
    )
    if scale and not center:
        module.weight = nn.Parameter(torch.ones(channels))
    if center and not scale:
        module.bias = nn.Parameter(torch.zeros(channels))
    return module, shape


@builds("Dense")
def _dense(layer: LayerSpec, shapes: list[Shape]) -> tuple[nn.Module, Shape]:
    shape = _one(layer, shapes)
    units = int(layer.config["units"])
    module = KerasDense(
        _known(shape[-1], layer, "number of input features"),
        units,
        bias=bool(layer.config.get("use_bias", True)),
        activation=activation_name(layer.config.get("activation"), layer.name),
        channels_first=len(shape) > 1,
    )
    return module, (*shape[:-1], units)


@builds("Activation")
def _activation(layer: LayerSpec, shapes: list[Shape]) -> tuple[nn.Module, Shape]:
    shape = _one(layer, shapes)
    return KerasActivation(activation_name(layer.config.get("activation"), layer.name)), shape


@builds("ReLU")
def _relu(layer: LayerSpec, shapes: list[Shape]) -> tuple[nn.Module, Shape]:
    shape = _one(layer, shapes)
    cfg = layer.config
    top = cfg.get("max_value")
    slope = float(cfg.get("negative_slope", 0.0) or 0.0)
    threshold = float(cfg.get("threshold", 0.0) or 0.0)
    if top is None and slope == 0 and threshold == 0:
        return nn.ReLU(), shape
    return KerasReLU(None if top is None else float(top), slope, threshold), shape


@builds("LeakyReLU")
def _leaky_relu(layer: LayerSpec, shapes: list[Shape]) -> tuple[nn.Module, Shape]:
    shape = _one(layer, shapes)
    slope = layer.config.get("negative_slope", layer.config.get("alpha", 0.3))
    return nn.LeakyReLU(float(slope)), shape


@builds("ELU")
def _elu(layer: LayerSpec, shapes: list[Shape]) -> tuple[nn.Module, Shape]:
    return nn.ELU(float(layer.config.get("alpha", 1.0))), _one(layer, shapes)


@builds("Softmax")
def _softmax(layer: LayerSpec, shapes: list[Shape]) -> tuple[nn.Module, Shape]:
    shape = _one(layer, shapes)
    return nn.Softmax(dim=torch_axis(layer.config.get("axis", -1), len(shape) + 1, layer)), shape


@builds(*PASS_THROUGH)
def _pass_through(layer: LayerSpec, shapes: list[Shape]) -> tuple[nn.Module, Shape]:
    shape = _one(layer, shapes)
    rate = float(layer.config.get("rate", 0.0) or 0.0)
    if layer.class_name == "Dropout":
        return nn.Dropout(rate), shape
    if layer.class_name == "SpatialDropout2D":
        return nn.Dropout2d(rate), shape
    return nn.Identity(), shape


@builds("Flatten")
def _flatten(layer: LayerSpec, shapes: list[Shape]) -> tuple[nn.Module, Shape]:
    shape = _one(layer, shapes)
    size = math.prod(_known(v, layer, "input size") for v in shape)
    return ChannelsLastFlatten(), (size,)


def flatten_in_torch_order(shape: Shape) -> bool:
    """Whether flattening ``shape`` channels-first gives Keras' order anyway (one position)."""
    return len(shape) <= 1 or math.prod(v or 0 for v in shape[:-1]) == 1 or shape[-1] == 1


@builds("Reshape")
def _reshape(layer: LayerSpec, shapes: list[Shape]) -> tuple[nn.Module, Shape]:
    shape = _one(layer, shapes)
    target = [int(v) for v in layer.config["target_shape"]]
    size = math.prod(_known(v, layer, "input size") for v in shape)
    if target.count(-1) == 1:
        known = math.prod(v for v in target if v != -1)
        target[target.index(-1)] = size // known if known else 0
    if math.prod(target) != size:
        raise ModelError(f"layer {layer.name!r} cannot reshape {shape} to {tuple(target)}")
    return KerasReshape(len(shape), target), tuple(target)


@builds("Rescaling")
def _rescaling(layer: LayerSpec, shapes: list[Shape]) -> tuple[nn.Module, Shape]:
    shape = _one(layer, shapes)
    cfg = layer.config
    return Rescaling(cfg.get("scale", 1.0), cfg.get("offset", 0.0), len(shape) + 1), shape


@builds("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")
def _merge(layer: LayerSpec, shapes: list[Shape]) -> tuple[nn.Module, Shape]:
    if len(shapes) < 2 or (layer.class_name == "Subtract" and len(shapes) != 2):
        raise ModelError(f"layer {layer.name!r} ({layer.class_name}) got {len(shapes)} inputs")
    if any(s != shapes[0] for s in shapes):
        raise ModelError(
            f"layer {layer.name!r} ({layer.class_name}) merges tensors of different shapes "
            f"{', '.join(str(s) for s in shapes)}"
        )
    module = Add() if layer.class_name == "Add" else Merge(layer.class_name.lower())
    return module, shapes[0]


@builds("Concatenate")
def _concatenate(layer: LayerSpec, shapes: list[Shape]) -> tuple[nn.Module, Shape]:
    if len(shapes) < 2:
        raise ModelError(f"layer {layer.name!r} (Concatenate) got {len(shapes)} inputs")
    rank = len(shapes[0]) + 1
    axis = int(layer.config.get("axis", -1)) % rank
    if axis == 0 or any(len(s) != rank - 1 for s in shapes):
        raise ModelError(f"layer {layer.name!r} concatenates tensors of shapes {shapes}")
    dims = [s[axis - 1] for s in shapes]
    total = None if None in dims else sum(int(d) for d in dims)  # type: ignore[arg-type]
    out = list(shapes[0])
    out[axis - 1] = total
    return Concat(dim=torch_axis(axis, rank, layer)), tuple(out)
