"""Apply one kernel to one image (a SPEC or ``sample:NAME``): :class:`KernelResponse`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from convscope.errors import ConvscopeError, ImageError, LayerError
from convscope.probe.activations import borrowed_hooks
from convscope.probe.base import FigureResult
from convscope.probe.exclusive import as_model, needs_loaded, one_at_a_time
from convscope.probe.kernels.arrays import pair
from convscope.probe.kernels.display import kernel_images, normalize_per_kernel
from convscope.probe.kernels.weights import find_conv, kernel_set, kernel_weight

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from convscope.data.preprocess import InputSpec
    from convscope.data.spec import InputImage
    from convscope.models.loaded import LoadedModel


def resolve_image(spec: str, input_spec: InputSpec | None = None) -> InputImage:
    """The one image a SPEC names, or a scikit-learn sample photo as ``sample:NAME``.

    With ``input_spec`` the pixels get its channel count. A SPEC naming several images
    is refused.
    """
    from convscope.data.spec import resolve_images

    images = resolve_images(spec, input_spec=input_spec)
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

    with borrowed_hooks(pre=[(conv, hook)]):
        yield


@one_at_a_time
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
    weight = kernel_weight(conv)
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

        x = F.pad(x, same_padding(pair(weight.shape[2:]), pair(dilation)))
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
    model_weights: str = ""

    def figure(self, **options: Any) -> Figure:
        """Image, kernel and response side by side (see ``kernel_response_figure``)."""
        from convscope.render.kernels import kernel_response_figure

        return kernel_response_figure(self, **options)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metadata and response statistics."""
        r = self.response
        return {
            "model": self.model,
            "weights": self.model_weights,
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
    index: int = 0,
) -> KernelResponse:
    """Apply kernel ``kernel`` of conv layer ``layer`` to an image: what edge does it see?

    The image (a SPEC, ``sample:china``/``sample:flower``, uint8 pixels or an
    :class:`InputImage`) is converted as the model expects (size by its input spec, or
    kept at its own size with ``full_size``), normalised, and run through the model up
    to the layer; the response is :func:`conv_response` on what the layer receives
    (the image itself for a first layer), i.e. exactly that output channel of the
    layer before its activation. ``channel_order="BGR"`` feeds the image as BGR. A SPEC
    naming several images gives the one at ``index`` (default the first).
    """
    model = as_model(model)
    needs_loaded(model, "apply_kernel")
    from convscope.data.spec import InputImage

    spec = model.input_spec
    if channel_order is not None:
        if spec.channels != 3:
            raise ConvscopeError("--bgr needs a model with three input channels")
        spec = replace(spec, channel_order=channel_order)
    from convscope.data.stream import names_images, pick_image

    if names_images(image):  # a SPEC, a path or a Pillow image
        image, _ = pick_image(image, index, input_spec=spec)
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
        model_weights=kernels.model_weights,
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
