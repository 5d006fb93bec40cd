"""Feature maps: what chosen layers output for one input, kept as arrays with their metadata.

:func:`feature_maps` runs one forward pass with scoped hooks
(:func:`convscope.probe.activations.capture`) and keeps the raw output of each named
layer, batch dimension included. Drawing is :mod:`convscope.render.features`' job.

One input at a time: a SPEC that names several images gives its first (the CLI says so),
because a figure of maps is about one input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from convscope.data.spec import InputImage
from convscope.errors import ConvscopeError, ImageError, LayerError
from convscope.models.loaded import LoadedModel, weights_of
from convscope.models.modes import evaluating
from convscope.probe.activations import capture, resolve_layers
from convscope.probe.base import FigureResult, short_repr
from convscope.probe.exclusive import one_at_a_time

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ImageLike = InputImage | np.ndarray | torch.Tensor | str
"""What the probes accept as the input: an image, uint8 pixels, a ready NCHW tensor, a SPEC."""

MAX_MAPS = 64
"""Maps drawn per layer when ``top`` is not given; wider layers show their most active ones."""


@dataclass(frozen=True, eq=False)
class ProbeInput:
    """One input ready for a model: the batch (1 x C x H x W) and what to show and call it."""

    batch: torch.Tensor
    pixels: np.ndarray | None
    name: str
    label: str | None = None


def model_parts(model: LoadedModel | nn.Module) -> tuple[nn.Module, str, LoadedModel | None]:
    """The module, a display name and the loaded model (``None`` for a bare module)."""
    if isinstance(model, LoadedModel):
        return model.module, model.name, model
    if isinstance(model, nn.Module):
        return model, type(model).__name__, None
    raise TypeError(f"expected a LoadedModel or an nn.Module, got {type(model).__name__}")


def prepare_input(model: LoadedModel | nn.Module, image: ImageLike, index: int = 0) -> ProbeInput:
    """Bring ``image`` to a one-input batch for ``model``.

    A SPEC naming several images gives the one at ``index`` (default the first; see
    :func:`~convscope.data.stream.pick_image`), whose name says which it is.

    A tensor is taken as already preprocessed (``C x H x W`` or ``1 x C x H x W``);
    images, pixels and SPECs need a :class:`LoadedModel`, whose input spec says how.
    """
    _, _, loaded = model_parts(model)
    if isinstance(image, torch.Tensor):
        batch = image.detach().float()
        batch = batch.unsqueeze(0) if batch.ndim == 3 else batch
        if batch.ndim != 4 or batch.shape[0] != 1:
            raise ImageError(
                f"expected one preprocessed input of shape C x H x W or 1 x C x H x W, "
                f"got {tuple(image.shape)}"
            )
        return ProbeInput(batch=batch, pixels=None, name="input tensor")
    if loaded is None:
        raise ImageError("a bare nn.Module takes a preprocessed tensor; load the model for images")
    from convscope.data.images import fit_to_spec
    from convscope.data.spec import to_batch

    name, label = "input pixels", None
    from convscope.data.stream import names_images, pick_image

    if names_images(image):  # a SPEC, a path or a Pillow image
        image, _ = pick_image(image, index, input_spec=loaded.input_spec)
    if isinstance(image, InputImage):
        name, label = image.name, image.label_name
        pixels = image.pixels
    else:
        pixels = np.asarray(image)
    batch = to_batch([pixels], loaded.input_spec)
    return ProbeInput(
        batch=batch, pixels=fit_to_spec(pixels, loaded.input_spec), name=name, label=label
    )


def forward(module: nn.Module, batch: torch.Tensor) -> None:
    """One forward pass in eval mode without gradients (the module's mode is restored)."""
    with evaluating(module):
        module(batch)


def pick_call(calls: int, call: int, name: str) -> int:
    """The index of the chosen call of a module (``-1``: the last); an error if out of range."""
    if calls == 0:
        raise LayerError(f"layer {name!r} was not called in the forward pass; choose another")
    if not -calls <= call < calls:
        raise LayerError(
            f"layer {name!r} ran {calls} time(s) in the forward pass; --call must be in "
            f"0..{calls - 1} (or -1 for the last)"
        )
    return call % calls


def most_active(maps: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` channels of ``C x ...`` maps with the highest mean, most active first."""
    means = maps.reshape(maps.shape[0], -1).mean(axis=1)
    order = np.argsort(-means, kind="stable")
    return order[: max(0, k)]


@dataclass(frozen=True, eq=False)
class LayerMaps:
    """The raw output of one layer for the input (batch dimension kept) and which call it is."""

    __repr__ = short_repr

    name: str
    type: str
    output: np.ndarray
    call: int = 0
    calls: int = 1

    @property
    def maps(self) -> np.ndarray:
        """The output of the (first) input without the batch dimension (``C x H x W`` for conv)."""
        return self.output[0]

    def shown_channels(self, top: int | None = None, max_maps: int = MAX_MAPS) -> np.ndarray:
        """The channels a figure draws: all, or the ``top`` most active (at most ``max_maps``)."""
        maps = self.maps
        if maps.ndim < 2:
            return np.arange(0)
        count = maps.shape[0]
        if top is not None and top < 1:
            raise ConvscopeError(f"--top must be at least 1, got {top}")
        k = min(count, top if top is not None else max_maps)
        if top is None and k == count:
            return np.arange(count)
        return most_active(maps, k)

    def to_dict(self, top: int | None = None) -> dict[str, Any]:
        maps = self.maps
        data: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "shape": list(self.output.shape),
            "call": self.call,
            "calls": self.calls,
            "min": float(maps.min()) if maps.size else None,
            "max": float(maps.max()) if maps.size else None,
            "mean": float(maps.mean()) if maps.size else None,
        }
        if maps.ndim >= 2:
            k = min(maps.shape[0], top or 3)
            data["most_active"] = [int(c) for c in most_active(maps, k)]
        return data


@dataclass(frozen=True, eq=False)
class FeatureMaps(FigureResult):
    """The outputs of chosen layers for one input; draws them as grids beside the input."""

    model: str
    input_name: str
    layers: list[LayerMaps] = field(default_factory=list)
    pixels: np.ndarray | None = None
    input_tensor: np.ndarray | None = None
    label: str | None = None
    model_weights: str = ""

    def layer(self, name: str) -> LayerMaps:
        """The maps of one layer, by name."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise LayerError(f"no maps of layer {name!r}; have {', '.join(self.names)}")

    @property
    def names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def figure(self, **options: Any) -> Figure:
        """Grids of maps per layer beside the input (see :func:`plot_feature_maps`)."""
        from convscope.render.features import plot_feature_maps

        return plot_feature_maps(self, **options)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "weights": self.model_weights,
            "input": self.input_name,
            "label": self.label,
            "layers": [layer.to_dict() for layer in self.layers],
        }

    def __rich__(self) -> Any:
        from convscope.render.features import feature_table

        return feature_table(self)


@one_at_a_time
def feature_maps(
    model: LoadedModel | nn.Module,
    image: ImageLike,
    layers: Sequence[str] | str,
    *,
    call: int = -1,
    index: int = 0,
) -> FeatureMaps:
    """The outputs of ``layers`` (names, or one comma-separated string) for one input.

    ``image`` is an :class:`InputImage`, uint8 pixels, a SPEC (of several images the one
    at ``index``, default the first) or a preprocessed tensor. A module that runs several times in one pass (a reused
    ReLU) gives the output of call ``call`` (default: the last).
    """
    module, name, _ = model_parts(model)
    names = parse_layers(layers)
    targets = resolve_layers(module, names)
    prepared = prepare_input(model, image, index)
    with capture(module, names) as captured:
        forward(module, prepared.batch)
    results = []
    for layer_name in names:
        calls = captured.calls[layer_name]
        index = pick_call(len(calls), call, layer_name)
        results.append(
            LayerMaps(
                name=layer_name,
                type=type(targets[layer_name]).__name__,
                output=calls[index].float().numpy(),
                call=index,
                calls=len(calls),
            )
        )
    return FeatureMaps(
        model=name,
        input_name=prepared.name,
        layers=results,
        pixels=prepared.pixels,
        input_tensor=prepared.batch[0].numpy(),
        label=prepared.label,
        model_weights=weights_of(model),
    )


def parse_layers(layers: Sequence[str] | str) -> list[str]:
    """``"a,b"`` or ``["a", "b"]`` -> ``["a", "b"]`` (blanks dropped, order and duplicates kept once)."""
    items = layers.split(",") if isinstance(layers, str) else list(layers)
    names = list(dict.fromkeys(item.strip() for item in items if item.strip()))
    if not names:
        raise LayerError("no layer named; give one or more, e.g. --layers conv2d_1,max_pooling2d_1")
    return names
