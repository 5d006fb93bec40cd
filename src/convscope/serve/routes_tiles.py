"""The model explorer's tiles routes (see docs/dashboard/api.md, "The layer panel").

``features/tiles`` and ``kernels/tiles`` answer the numbers of a layer's maps or
kernels as JSON, and ``.../tiles.png`` the picture they describe
(:mod:`convscope.serve.tiles`); the JSON's ``png`` is the PNG's URL with the same query.
Both requests share one cached computation (:class:`~convscope.serve.cache.ResultCache`),
so a panel costs one forward pass and one PNG encoding, and a repeated request none.

The numbers are the probes' own: kernels come from
:func:`~convscope.probe.kernels.kernel_set` and its grid; maps from the same hooks,
input preparation and call choice as :func:`~convscope.probe.features.feature_maps`,
with one difference for speed: the forward pass stops once the layer's wanted call is
captured (nothing after it can change a captured clone). For ``call=-1`` (the last
call) that needs the number of calls, learnt from the first full pass of the model and
layer; a model whose number of calls changes from input to input is not served right
by that shortcut (no zoo, torchvision or timm model does that).
"""

from __future__ import annotations

import json
from contextlib import suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import numpy as np
import torch
from fastapi import APIRouter, Request
from fastapi.responses import Response

from convscope.data.preprocess import InputSpec
from convscope.data.spec import InputImage
from convscope.errors import ConvscopeError
from convscope.models.loaded import LoadedModel
from convscope.probe.features import LayerMaps, ProbeInput
from convscope.serve import images
from convscope.serve.cache import OVERHEAD, result_key
from convscope.serve.state import ServeState, state_of
from convscope.serve.tiles import feature_tiles, kernel_tiles

router = APIRouter()

REDUCE_CHOICES = ("mean", "norm", "none")
"""``reduce=``: a deep kernel's input channels averaged, their L2 norm, or one tile each."""


# --------------------------------------------------------------------------- answers


@dataclass(frozen=True, eq=False)
class Answer:
    """A tiles answer as the cache keeps it: the JSON's numbers (``meta``), the same as
    JSON text without ``png`` (written once, not on every hit) and the PNG's bytes
    (None for a vector layer)."""

    meta: dict[str, Any]
    text: str
    png: bytes | None

    @classmethod
    def of(cls, meta: dict[str, Any], png: bytes | None) -> Answer:
        text = json.dumps(meta, allow_nan=False, separators=(",", ":"))  # JSON has no NaN
        return cls(meta, text, png)

    @property
    def nbytes(self) -> int:
        """About the bytes held: the text twice (it and ``meta``) and the PNG."""
        return 4 * OVERHEAD + 2 * len(self.text) + len(self.png or b"")

    def response(self, png_url: str | None) -> Response:
        """The JSON answer, with ``png`` set to ``png_url`` when given."""
        body = self.text
        if png_url is not None:
            body = f'{body[:-1]},"png":{json.dumps(png_url)}}}'
        return Response(body, media_type="application/json")


def png_answer(data: bytes) -> Response:
    return Response(data, media_type="image/png")


def png_url(request: Request, model: str, route: str) -> str:
    """The URL (relative to the app's base) of ``route``'s PNG with the request's query
    (without a ``token``: the page's cookie carries it)."""
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
    return f"api/models/{quote(model, safe='')}/{route}.png" + (f"?{query}" if query else "")


def check_top(top: int | None) -> None:
    if top is not None and top < 1:
        raise ConvscopeError(f"top must be at least 1, got {top}")


# --------------------------------------------------------------------------- inputs


def picture_of(state: ServeState, image: str, input_spec: InputSpec | None) -> InputImage:
    """The image an allowed SPEC names, with ``input_spec``'s channels, as
    :func:`~convscope.serve.images.resolve_image` gives it; datasets and samples (they
    never change) are cached, and a dataset's split is read and checked once
    (:func:`dataset_picture`). An upload is read from the upload store each time, so a
    forgotten one is a 404."""
    spec = images.check_image_spec(image)
    if spec.startswith("upload:"):
        return images.resolve_image(spec, state.uploads, input_spec)
    channels = None if input_spec is None else input_spec.channels

    def read() -> InputImage:
        if not spec.startswith("sample:"):
            picture = dataset_picture(state, spec, channels)
            if picture is not None:
                return picture
        return images.resolve_image(spec, state.uploads, input_spec)

    return state.cache.get_or_compute(("image", spec, channels), read)


def dataset_picture(state: ServeState, spec: str, channels: int | None) -> InputImage | None:
    """The first image of ``DATASET:SPLIT:INDEX`` (or ``A-B``) from its split's arrays,
    which the result cache keeps (reading one MNIST image otherwise reads and checks its
    whole split: 16 ms); None where the slow path must say what is wrong (an index out
    of range). What :class:`~convscope.data.stream.DatasetStream` gives, without the read
    (the tests compare the two)."""
    from convscope.data.datasets import load_dataset
    from convscope.data.images import match_channels
    from convscope.data.spec import parse_dataset_spec

    dataset, split, start, stop = parse_dataset_spec(spec, limit=None)
    images.require_local(dataset, split)  # a request never starts a download
    data = state.cache.get_or_compute(
        ("split", dataset, split), lambda: load_dataset(dataset, split)
    )
    if not 0 <= start < stop <= len(data):
        return None
    pixels = data.images[start]
    if channels is not None and not (channels == 1 and pixels.ndim == 2):
        pixels = match_channels(np.asarray(pixels), channels)
    label = int(data.labels[start])
    names = tuple(data.class_names)
    return InputImage(
        f"{dataset}:{split}:{start}",
        np.array(pixels),
        None if label < 0 else label,
        names[label] if 0 <= label < len(names) else None,
    )


def check_upload(state: ServeState, image: str) -> None:
    """An ``upload:ID`` the server has forgotten is a 404, also where results computed
    from it are still cached."""
    spec = image.strip()
    if spec.startswith("upload:"):
        images.check_image_spec(spec)
        images.upload_pixels(state.uploads, spec.removeprefix("upload:"))


def prepared_input(state: ServeState, image: str, model: LoadedModel) -> ProbeInput:
    """The one-input batch ``image`` gives ``model``, as
    :func:`~convscope.probe.features.feature_maps` prepares it (cached as
    :func:`picture_of`)."""
    from convscope.probe.features import prepare_input

    spec = images.check_image_spec(image)
    if spec.startswith("upload:"):
        return prepare_input(model, picture_of(state, spec, model.input_spec))
    form = json.dumps(model.input_spec.to_dict(), sort_keys=True, default=str)
    return state.cache.get_or_compute(
        ("input", spec, form),
        lambda: prepare_input(model, picture_of(state, spec, model.input_spec)),
    )


# --------------------------------------------------------------------------- feature maps


class _Enough(BaseException):
    """Raised by a hook once the wanted call of the layer is captured: the rest of the
    forward pass cannot change it. A BaseException, so a model's ``except Exception``
    does not swallow it."""


def forward_until(
    model: LoadedModel, batch: torch.Tensor, layer: str, stop_after: int | None
) -> list[torch.Tensor]:
    """Clones of ``layer``'s outputs in a forward pass of ``batch`` (eval mode, no
    gradients, the model's lock held), stopped after ``stop_after`` calls of it."""
    from convscope.probe.activations import borrowed_hooks, capture, resolve_layers
    from convscope.probe.exclusive import exclusive
    from convscope.probe.features import forward

    module = model.module
    target = resolve_layers(module, [layer])[layer]
    with exclusive(model), capture(module, [layer]) as captured:
        calls = captured.calls[layer]

        def enough(_module: Any, _inputs: Any, _output: Any) -> None:
            if stop_after is not None and len(calls) >= stop_after:
                raise _Enough

        # registered after capture's hook, so it sees the call just captured
        with borrowed_hooks([(target, enough)]), suppress(_Enough):
            forward(module, batch)
    return calls


def layer_maps(
    model: LoadedModel, prepared: ProbeInput, layer: str, call: int, known_calls: int | None
) -> LayerMaps:
    """The output of ``layer`` at call ``call`` (``-1``: the last) for the prepared input,
    as :func:`~convscope.probe.features.feature_maps` gives it; ``known_calls`` is how
    many times the layer runs in a pass, if known (then the pass stops at the call)."""
    from convscope.probe.activations import resolve_layers
    from convscope.probe.features import pick_call

    if call >= 0:
        stop: int | None = call + 1
    elif known_calls and -known_calls <= call:
        stop = call % known_calls + 1
    else:
        stop = None
    calls = forward_until(model, prepared.batch.clone(), layer, stop)
    stopped = stop is not None and len(calls) >= stop
    index = len(calls) - 1 if stopped else pick_call(len(calls), call, layer)
    total = (known_calls or len(calls)) if stopped else len(calls)
    return LayerMaps(
        name=layer,
        type=type(resolve_layers(model.module, [layer])[layer]).__name__,
        output=calls[index].float().contiguous().numpy(),  # channels_last models too
        call=index,
        calls=max(total, index + 1),
    )


def maps_of(
    state: ServeState, spec: str, layer: str, image: str, call: int
) -> tuple[str, LoadedModel, ProbeInput, LayerMaps]:
    """The model's identity, the model, its input and ``layer``'s maps for ``image``
    (cached: one forward pass per model identity, layer, image and call)."""
    from convscope.probe.activations import resolve_layers

    identity, model = state.models.entry(spec)
    layer = layer.strip()
    resolve_layers(model.module, [layer])  # name errors before reading any image
    check_upload(state, image)
    prepared = prepared_input(state, image, model)
    calls_key = result_key(identity, model.weights, "features/calls", layer=layer)
    key = result_key(
        identity, model.weights, "features/maps", layer=layer, image=image.strip(), call=call
    )

    def compute() -> LayerMaps:
        known = state.cache.get(calls_key)
        maps = layer_maps(model, prepared, layer, call, known)
        if known is None and maps.calls:
            state.cache.put(calls_key, maps.calls)
        return maps

    maps = state.cache.get_or_compute(key, compute, lambda m: OVERHEAD + m.output.nbytes)
    return identity, model, prepared, maps


def _feature_tiles(
    state: ServeState, spec: str, layer: str, image: str, top: int | None, call: int
) -> Answer:
    """The answer of ``layer``'s maps for ``image``: numbers and tiles (cached)."""
    identity, model, prepared, maps = maps_of(state, spec, layer, image, call)
    key = result_key(
        identity,
        model.weights,
        "features/tiles",
        layer=maps.name,
        image=image.strip(),
        call=call,
        top=top,
    )

    def compute() -> Answer:
        tiles = feature_tiles(maps.maps, top)
        head = {"layer": maps.name, "type": maps.type}
        tail = {"model": model.name, "weights": model.weights, "input": prepared.name,
                "call": maps.call}  # fmt: skip
        return Answer.of(head | tiles.meta | tail, tiles.png)

    return state.cache.get_or_compute(key, compute, lambda answer: answer.nbytes)


@router.get("/api/models/{model:path}/features/tiles")
async def feature_tiles_json(
    request: Request, model: str, layer: str, image: str, top: int | None = None, call: int = -1
) -> Response:
    """The numbers of ``layer``'s maps for ``image``: ``{"layer", "type", "shape",
    "channels", "columns", "tile", "min", "max", "map_min", "map_max", "map_mean",
    "png"}`` (a vector layer: ``{"layer", "type", "shape", "values"}``, no png)."""
    check_top(top)
    state = state_of(request)
    answer = await state.run(_feature_tiles, state, model, layer, image, top, call)
    url = None if answer.png is None else png_url(request, model, "features/tiles")
    return answer.response(url)


@router.get("/api/models/{model:path}/features/tiles.png")
async def feature_tiles_png(
    request: Request, model: str, layer: str, image: str, top: int | None = None, call: int = -1
) -> Response:
    """The tiles of ``layer``'s maps for ``image`` (grayscale PNG)."""
    check_top(top)
    state = state_of(request)
    answer = await state.run(_feature_tiles, state, model, layer, image, top, call)
    if answer.png is None:
        raise ConvscopeError(
            f"layer {answer.meta['layer']!r} outputs a vector of {answer.meta['shape'][0]} "
            "values, not maps: it has no tiles; its values are in features/tiles"
        )
    return png_answer(answer.png)


# --------------------------------------------------------------------------- kernels


def kernel_health(state: ServeState, spec: str, layer: str) -> dict[str, Any]:
    """``kernels --health --json``'s health of ``layer`` (cached: it can take a second)."""
    from convscope.probe.kernels import kernel_set

    return state.cached(
        spec, "kernels/health", {"layer": layer}, lambda m: kernel_set(m, layer).health().to_dict()
    )


def kernel_options(
    norm: str | None, reduce: str | None, per_channel: bool, bgr: bool, limit: int | None
) -> dict[str, Any]:
    """The normalised options of a kernel grid (defaults filled in), checked."""
    if reduce is not None and reduce not in REDUCE_CHOICES:
        raise ConvscopeError(
            f"unknown reduction {reduce!r}; use one of {', '.join(REDUCE_CHOICES)}"
        )
    return {"norm": norm or "per-kernel", "reduce": reduce, "per_channel": per_channel,
            "bgr": bgr, "limit": limit}  # fmt: skip


def _kernel_tiles(state: ServeState, spec: str, layer: str, options: dict[str, Any]) -> Answer:
    """The answer of ``layer``'s kernel grid with these options: numbers, health and
    tiles (cached; the health once per layer, whatever the options)."""
    from convscope.probe.kernels import kernel_set

    def compute(model: LoadedModel) -> Answer:
        kernels = kernel_set(model, layer, channel_order="BGR" if options["bgr"] else None)
        reduce, per_channel = options["reduce"], options["per_channel"]
        if reduce == "none":  # no reduction: deep kernels one tile per input channel
            reduce, per_channel = None, per_channel or kernels.in_channels not in (1, 3)
        grid = kernels.grid(
            options["norm"], reduce=reduce, per_channel=per_channel, limit=options["limit"]
        )
        tiles = kernel_tiles(grid)
        meta = {"layer": tiles.meta["layer"], "type": kernels.layer_type} | tiles.meta
        meta["health"] = kernel_health(state, spec, layer)
        return Answer.of(meta, tiles.png)

    params = {"layer": layer, **options}
    return state.cached(spec, "kernels/tiles", params, compute, lambda answer: answer.nbytes)


@router.get("/api/models/{model:path}/kernels/tiles")
async def kernel_tiles_json(
    request: Request,
    model: str,
    layer: str,
    norm: str | None = None,
    reduce: str | None = None,
    per_channel: bool = False,
    bgr: bool = False,
    limit: int | None = None,
) -> Response:
    """The numbers of ``layer``'s kernel grid: ``{"layer", "type", "shape",
    "normalization", "channel_order", "rgb", "grid", "columns", "tile", "shown",
    "range", "diverging", "caption", "nonfinite", "health", "png"}``."""
    state = state_of(request)
    options = kernel_options(norm, reduce, per_channel, bgr, limit)

    answer = await state.run(_kernel_tiles, state, model, layer, options)
    return answer.response(png_url(request, model, "kernels/tiles"))


@router.get("/api/models/{model:path}/kernels/tiles.png")
async def kernel_tiles_png(
    request: Request,
    model: str,
    layer: str,
    norm: str | None = None,
    reduce: str | None = None,
    per_channel: bool = False,
    bgr: bool = False,
    limit: int | None = None,
) -> Response:
    """The tiles of ``layer``'s kernel grid (grayscale or RGB PNG)."""
    state = state_of(request)
    options = kernel_options(norm, reduce, per_channel, bgr, limit)
    answer = await state.run(_kernel_tiles, state, model, layer, options)
    assert answer.png is not None
    return png_answer(answer.png)
