"""What activation maximisation climbs: classes of the model or channels of a layer.

Class targets use the one grammar of :mod:`convscope.probe.classes`; channel targets
are ``LAYER:C``, ``LAYER:A-B`` or ``LAYER:all``, checked against the layer's real output.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from convscope.data.classes import class_names_for
from convscope.errors import ConvscopeError, LayerError
from convscope.models.loaded import LoadedModel
from convscope.models.modes import evaluating
from convscope.probe.activations import capture, resolve_layers
from convscope.probe.classes import ClassSpec, class_indices
from convscope.probe.maximize.image import _normalize

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class Target:
    """What one optimisation climbs: a class output, or a channel (unit) of a layer."""

    kind: str
    index: int
    label: str
    layer: str | None = None

    @property
    def name(self) -> str:
        """``"7"``, ``"Trouser"`` or ``"conv2d_2:3"``."""
        return self.label if self.kind == "class" else f"{self.layer}:{self.index}"


def model_classes(model: LoadedModel) -> tuple[str, ...]:
    """The model's class names, or ``"0"..."K-1"`` from its output size."""
    if model.class_names:
        return tuple(model.class_names)
    outputs = _probe_forward(model)
    if outputs.ndim != 2:
        raise ModelOutputError(model.name, tuple(outputs.shape))
    return class_names_for(None, outputs.shape[1])


class ModelOutputError(ConvscopeError):
    """The model's output is not one score per class."""

    def __init__(self, name: str, shape: tuple[int, ...]) -> None:
        super().__init__(
            f"{name} outputs shape {shape}, not one score per class; maximise a channel "
            "instead (--channel LAYER:C)"
        )


def class_targets(model: LoadedModel, spec: ClassSpec) -> list[Target]:
    """Targets for classes, in the grammar of :mod:`convscope.probe.classes`: an index, a
    name (``"Trouser"``), ``"all"``, an inclusive range ``"0-9"`` or a list ``"1,7"``."""
    classes = model_classes(model)
    return [Target("class", i, classes[i]) for i in class_indices(spec, classes)]


def channel_targets(model: LoadedModel, spec: str | Sequence[str]) -> list[Target]:
    """Targets for channels: ``"LAYER:C"``, ``"LAYER:A-B"`` (inclusive), ``"LAYER:all"``.

    An unknown layer is a :class:`LayerError` with the close matches; a channel out of
    range is an error that gives the layer's channel count.
    """
    specs = [spec] if isinstance(spec, str) else list(spec)
    targets: list[Target] = []
    for text in specs:
        layer, sep, channels = str(text).rpartition(":")
        if not sep or not layer or not channels:
            raise ConvscopeError(f"expected LAYER:CHANNEL such as conv2d_2:3, got {text!r}")
        resolve_layers(model.module, [layer])
        count = _layer_channels(model, layer)
        for index in _channel_indices(channels, count, layer):
            targets.append(Target("channel", index, f"{layer}:{index}", layer=layer))
    return list(dict.fromkeys(targets))


def _channel_indices(text: str, count: int, layer: str) -> list[int]:
    if text.strip().casefold() == "all":
        return list(range(count))
    lo, sep, hi = text.partition("-")
    try:
        first, last = (int(lo), int(hi)) if sep and lo else (int(text), int(text))
    except ValueError:
        raise ConvscopeError(
            f"expected a channel number, A-B or all after {layer}:, got {text!r}"
        ) from None
    if not (0 <= first <= last < count):
        raise ConvscopeError(
            f"channel {text} is out of range: {layer} has {count} channels (0-{count - 1})"
        )
    return list(range(first, last + 1))


@contextmanager
def _frozen(module: nn.Module):
    """Eval mode and no weight gradients inside the block (both restored after)."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    with evaluating(module, grad=True):
        try:
            for p, _ in flags:
                p.requires_grad_(False)
            yield
        finally:
            for p, flag in flags:
                p.requires_grad_(flag)


def _probe_forward(model: LoadedModel, layers: Sequence[str] = ()) -> Any:
    """Outputs of a no-grad forward pass of one mid-gray input (and of ``layers`` if named)."""
    spec = model.input_spec
    x = _normalize(torch.full((1, spec.channels, spec.height, spec.width), 0.5), spec)
    with _frozen(model.module), torch.no_grad(), capture(model.module, layers) as captured:
        outputs = model.module(x)
    if layers:
        return outputs, captured
    return outputs


def _layer_channels(model: LoadedModel, layer: str) -> int:
    """Channels (dim 1) of ``layer``'s output, found by one forward pass."""
    _, captured = _probe_forward(model, [layer])
    output = captured.output(layer)
    if output.ndim < 2:
        raise LayerError(f"layer {layer!r} outputs shape {tuple(output.shape)}: no channels")
    return int(output.shape[1])


def maximize_targets(
    model: LoadedModel,
    classes: int | str | Sequence[int | str] | None = None,
    channels: str | Sequence[str] | None = None,
) -> list[Target]:
    """The targets :func:`maximize` climbs: ``classes`` or ``channels``, exactly one given."""
    if (classes is None) == (channels is None):
        raise ConvscopeError("give classes or channels to maximise (one of them)")
    return (
        class_targets(model, classes) if classes is not None else channel_targets(model, channels)
    )
