"""Keras weights -> PyTorch parameters: kernels HWIO -> OIHW, Dense transposed, BN statistics.

Values are copied exactly (float32); a shape that does not fit the layer built from
the config is a :class:`ModelError` naming the layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from convscope.errors import ModelError
from convscope.models.keras.config import LayerSpec
from convscope.models.keras.modules import SeparableConv2d, conv_of


def load_layer_weights(
    layer: LayerSpec,
    module: nn.Module,
    arrays: list[np.ndarray],
    *,
    row_order: np.ndarray | None = None,
) -> None:
    """Copy a Keras layer's weights (in Keras' order) into its module, converting layouts.

    ``row_order`` reorders a Dense layer's input rows (after a channels-first Flatten).
    """
    expected = _weight_names(layer)
    if len(arrays) != len(expected):
        raise ModelError(
            f"layer {layer.name!r} ({layer.class_name}) has {len(arrays)} weight arrays in the "
            f"file, expected {len(expected)} ({', '.join(expected) or 'none'})"
        )
    named = dict(zip(expected, arrays, strict=True))
    kind = layer.class_name
    if kind in ("Conv2D", "DepthwiseConv2D"):
        conv = conv_of(module)
        _copy(conv.weight, _conv_kernel(named["kernel"], kind), layer, "kernel")
        if "bias" in named:
            _copy(conv.bias, named["bias"], layer, "bias")
    elif kind == "SeparableConv2D":
        assert isinstance(module, SeparableConv2d)
        depthwise = _conv_kernel(named["depthwise_kernel"], "DepthwiseConv2D")
        _copy(conv_of(module.depthwise).weight, depthwise, layer, "depthwise kernel")
        pointwise = _conv_kernel(named["pointwise_kernel"], "Conv2D")
        _copy(module.pointwise.weight, pointwise, layer, "pointwise kernel")
        if "bias" in named:
            _copy(module.pointwise.bias, named["bias"], layer, "bias")
    elif kind == "Dense":
        assert isinstance(module, nn.Linear)
        kernel = named["kernel"]
        if kernel.ndim != 2:
            raise ModelError(
                f"layer {layer.name!r}: a Dense kernel of shape {kernel.shape} is not 2-D"
            )
        if row_order is not None and len(kernel) == len(row_order):  # else _copy says
            kernel = kernel[row_order]
        _copy(module.weight, kernel.T, layer, "kernel")
        if "bias" in named:
            _copy(module.bias, named["bias"], layer, "bias")
    elif kind == "BatchNormalization":
        assert isinstance(module, nn.modules.batchnorm._BatchNorm)
        if "gamma" in named:
            _copy(module.weight, named["gamma"], layer, "gamma")
        if "beta" in named:
            _copy(module.bias, named["beta"], layer, "beta")
        _copy(module.running_mean, named["moving_mean"], layer, "moving mean")
        _copy(module.running_var, named["moving_variance"], layer, "moving variance")


def _weight_names(layer: LayerSpec) -> list[str]:
    """Names of a layer's weights in the order Keras stores them."""
    cfg, kind = layer.config, layer.class_name
    bias = ["bias"] if cfg.get("use_bias", True) else []
    if kind in ("Conv2D", "DepthwiseConv2D", "Dense"):
        return ["kernel", *bias]
    if kind == "SeparableConv2D":
        return ["depthwise_kernel", "pointwise_kernel", *bias]
    if kind == "BatchNormalization":
        return [
            *(["gamma"] if cfg.get("scale", True) else []),
            *(["beta"] if cfg.get("center", True) else []),
            "moving_mean",
            "moving_variance",
        ]
    return []


def _conv_kernel(kernel: np.ndarray, kind: str) -> np.ndarray:
    """Keras ``(kh, kw, in, out)`` -> PyTorch ``(out, in, kh, kw)``.

    A depthwise kernel ``(kh, kw, in, multiplier)`` becomes ``(in * multiplier, 1, kh, kw)``
    with output channel ``i * multiplier + m``, TensorFlow's order.
    """
    if kernel.ndim != 4:
        raise ModelError(f"a convolution kernel of shape {kernel.shape} is not 4-D")
    if kind == "DepthwiseConv2D":
        kh, kw, channels, multiplier = kernel.shape
        return kernel.transpose(2, 3, 0, 1).reshape(channels * multiplier, 1, kh, kw)
    return kernel.transpose(3, 2, 0, 1)


def _copy(target: Any, value: np.ndarray, layer: LayerSpec, what: str) -> None:
    value = np.asarray(value)
    if value.dtype.kind not in "biuf":  # strings, objects, complex numbers: not weights
        raise ModelError(
            f"layer {layer.name!r}: the file's {what} holds {value.dtype} values, not real "
            "numbers; the file is damaged"
        )
    if target is None or tuple(target.shape) != tuple(value.shape):
        have = None if target is None else tuple(target.shape)
        raise ModelError(
            f"layer {layer.name!r}: the file's {what} has shape {value.shape}, the layer "
            f"needs {have}; the file does not match its config"
        )
    with torch.no_grad():
        target.copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))
