"""A conv layer's kernels: finding the layer, extracting its weights, :class:`KernelSet`.

The other kernel modules build on this one; :meth:`KernelSet.grid` and
:meth:`KernelSet.health` import theirs lazily, so nothing imports back in a circle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from convscope.errors import ConvscopeError, LayerError
from convscope.naming import close_matches
from convscope.probe.activations import resolve_layers
from convscope.probe.base import FigureResult
from convscope.probe.kernels.arrays import default_channel_order, pair

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from convscope.models.loaded import LoadedModel
    from convscope.probe.kernels.display import KernelGrid
    from convscope.probe.kernels.health import KernelHealth


def kernel_weight(module: nn.Module) -> torch.Tensor | None:
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
    return [n for n, m in module.named_modules() if n and kernel_weight(m) is not None]


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
    if kernel_weight(found) is not None:
        return layer, found
    inner = [(n, m) for n, m in found.named_modules() if n and kernel_weight(m) is not None]
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
    model_weights: str = ""

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
        from convscope.probe.kernels.display import kernel_grid

        return kernel_grid(
            self, norm, reduce=reduce, per_channel=per_channel, cols=cols, limit=limit
        )

    def health(self) -> KernelHealth:
        """Per-kernel health numbers and a layer summary; see :func:`kernel_health`."""
        from convscope.probe.kernels.health import kernel_health

        return kernel_health(
            self.weights, model=self.model, layer=self.layer, model_weights=self.model_weights
        )

    def figure(self, **options: Any) -> Figure:
        """The kernel grid (options as for :meth:`grid`)."""
        return self.grid(**options).figure()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metadata (the weights themselves go to ``--npy``)."""
        return {
            "model": self.model,
            "weights": self.model_weights,
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
    from convscope.models.loaded import weights_of
    from convscope.probe.exclusive import as_model

    model = as_model(model)  # a MODEL string is loaded
    module = model if isinstance(model, nn.Module) else model.module
    name = type(model).__name__ if isinstance(model, nn.Module) else model.name
    input_order = None if isinstance(model, nn.Module) else model.input_spec.channel_order
    source, conv = find_conv(module, layer)
    weight = kernel_weight(conv)
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
        channel_order=default_channel_order(weights.shape[1], input_order),
        layer_type=type(conv).__name__,
        source=source,
        bias=bias_array,
        stride=pair(getattr(conv, "stride", 1)),
        padding=getattr(conv, "padding", 0)
        if isinstance(getattr(conv, "padding", 0), str)
        else pair(getattr(conv, "padding", 0)),
        dilation=pair(getattr(conv, "dilation", 1)),
        groups=int(getattr(conv, "groups", 1)),
        model_weights=weights_of(model),
    )
    return kernels.with_channel_order(channel_order) if channel_order else kernels
