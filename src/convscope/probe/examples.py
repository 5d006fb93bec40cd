"""Dataset examples: the images that activate one channel of a layer most, and least.

What OpenAI Microscope shows beside each unit. :func:`top_activations` runs a set of
images through the model in batches and keeps one number per image and channel: the
mean of the channel's map over its spatial positions (for a layer whose output is a
vector, ``N x F``, unit C's value). The images with the highest and the lowest value
are the result's ``top`` and ``bottom``, sorted (ties by position in the set); they
share images when the set has fewer than ``2 k`` (the views then show ``ranked``, every
image once).

Memory stays small whatever the set: the hook reduces each batch's output to its
channel means as the layer gives it (``N x C`` numbers are all that is kept, never a
map), and the forward pass stops once the layer has given its output. Hooks are
borrowed for the pass (:func:`~convscope.probe.activations.borrowed_hooks`), the model
is in eval mode only meanwhile, and the probe holds the model's lock
(:mod:`convscope.probe.exclusive`).

Without images, :func:`example_images` picks the set: a run's probe set (the same images
every epoch's snapshot shows), else a stratified sample of the test split of the
dataset the model was made for. Drawing is :mod:`convscope.render.examples`' job.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from convscope.data.spec import InputImage
from convscope.data.stream import ArrayStream, ImageStream, open_images
from convscope.errors import ConvscopeError, ImageError, LayerError
from convscope.models.loaded import LoadedModel, weights_of
from convscope.models.modes import evaluating
from convscope.probe.activations import _first_tensor, borrowed_hooks, resolve_layers
from convscope.probe.base import FigureResult
from convscope.probe.exclusive import as_model, exclusive
from convscope.probe.features import model_parts, pick_call

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_K = 9
"""Images shown at each end unless told otherwise (a 3x3 grid, as Microscope shows)."""

DEFAULT_BATCH_SIZE = 256
"""Images per forward pass unless told otherwise."""

DEFAULT_SAMPLE = 500
"""Images of the stratified sample a model without a run is shown."""

STATISTIC = "mean"
"""What one image's value is: the mean of the channel's map over its positions."""

Progress = Callable[[str, int, int], None]
"""``progress(description, done_images, total_images)``, called after each batch."""

Images = str | os.PathLike[str] | Sequence[InputImage] | ImageStream | np.ndarray | torch.Tensor
"""A SPEC, a path, loaded images, a stream, uint8 pixels ``N x H x W [x C]`` or an NCHW tensor."""

_RUN_WEIGHTS = re.compile(r"^run (?P<id>\S+) epoch \d+")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class Example:
    """One image of the set with its value: where it is in the set, its SPEC and class."""

    index: int
    spec: str
    label: int | None
    class_name: str | None
    activation: float
    pixels: np.ndarray | None = field(default=None, repr=False)
    """What the model saw (uint8 ``H x W`` or ``H x W x 3``), for the figure; None if unknown."""

    def to_dict(self) -> dict[str, Any]:
        value = float(self.activation)
        return {
            "spec": self.spec,
            "label": self.label,
            "class": self.class_name,
            "activation": value if np.isfinite(value) else None,
        }


@dataclass(frozen=True, eq=False)
class TopActivations(FigureResult):
    """The images of a set that activate one channel most (``top``) and least (``bottom``).

    ``values`` holds every image's value (a row per image) for the channels in
    ``channels``: all of the layer's when computed with ``channel=None``, so
    :meth:`select` answers for any other channel (and another ``k``) without running
    the model again.
    """

    model: str
    layer: str
    layer_type: str
    channel: int
    units: int
    """How many channels (or, for a vector output, units) the layer has."""
    channels: tuple[int, ...]
    values: np.ndarray
    specs: list[str]
    labels: np.ndarray
    images: str
    """What the set is: the SPEC, ``probe set of run ID`` or ``stratified sample of DATASET``."""
    k: int = DEFAULT_K
    class_names: tuple[str, ...] | None = None
    model_weights: str = ""
    vector: bool = False
    """Whether the layer's output is a vector (then a channel is a unit's value)."""
    source: Any = field(default=None, repr=False)
    """The images (a stream or a tensor), to fetch the pixels of the examples shown."""
    input_spec: Any = field(default=None, repr=False)

    @property
    def count(self) -> int:
        """How many images the set has."""
        return len(self.specs)

    @property
    def constant(self) -> bool:
        """Whether the set has two images or more and all give the channel one value."""
        values = self.activations[np.isfinite(self.activations)]
        return values.size > 1 and bool(values.min() == values.max())

    @property
    def activations(self) -> np.ndarray:
        """The chosen channel's value for every image of the set, in set order."""
        return self.values[:, self.channels.index(self.channel)]

    @property
    def shown(self) -> int:
        """How many images each end holds: ``k``, or the whole set when it has fewer."""
        return min(self.k, self.count)

    @property
    def overlapping(self) -> bool:
        """Whether ``top`` and ``bottom`` share images (the set has fewer than ``2 k``).

        The views then show :attr:`ranked`, every image once, instead of two ends.
        """
        return 2 * self.shown > self.count

    @cached_property
    def top(self) -> list[Example]:
        """The ``k`` images with the highest value, highest first (ties: set order)."""
        return self._examples(self._order(highest=True), self.shown)

    @cached_property
    def bottom(self) -> list[Example]:
        """The ``k`` images with the lowest value, lowest first (ties: set order)."""
        return self._examples(self._order(highest=False), self.shown)

    @cached_property
    def ranked(self) -> list[Example]:
        """Every image of the set, highest value first (ties: set order)."""
        return self._examples(self._order(highest=True), self.count)

    def tie(self, end: str) -> tuple[float, int] | None:
        """``(value, images)`` when the cut of ``end`` (``"top"`` or ``"bottom"``) falls in a
        tie: the last image it holds shares its value with images it leaves out (which of
        them it holds is then set order). None otherwise, or when nothing is left out."""
        if end not in ("top", "bottom"):
            raise ValueError(f"end must be 'top' or 'bottom', got {end!r}")
        if self.shown >= self.count:
            return None
        values = self.activations
        order = self._order(highest=end == "top")
        last = values[order[self.shown - 1]]
        if not np.isfinite(last):
            return None
        tied = int(np.count_nonzero(values == last))
        held = int(np.count_nonzero(values[order[: self.shown]] == last))
        return (float(last), tied) if tied > held else None

    def select(self, channel: int | None = None, k: int | None = None) -> TopActivations:
        """The same set's examples for another channel and/or ``k`` (no model run)."""
        channel = self.channel if channel is None else channel
        check_channel(channel, self.units, self.layer, self.vector)
        if channel not in self.channels:
            raise ConvscopeError(
                f"these examples were computed for channel {self.channel} only; compute "
                "them with channel=None to have every channel"
            )
        return replace(self, channel=channel, k=check_k(self.k if k is None else k))

    def _order(self, *, highest: bool) -> np.ndarray:
        """The set's indices by value, highest (or lowest) first; ties in set order."""
        values = self.activations
        return np.argsort(-values if highest else values, kind="stable")

    def _examples(self, order: np.ndarray, count: int) -> list[Example]:
        values, names = self.activations, self.class_names or ()
        chosen = []
        for i in order[:count].tolist():
            label = int(self.labels[i])
            chosen.append(
                Example(
                    index=i,
                    spec=self.specs[i],
                    label=None if label < 0 else label,
                    class_name=names[label] if 0 <= label < len(names) else None,
                    activation=float(values[i]),
                    pixels=self._pixels(i),
                )
            )
        return chosen

    def _pixels(self, index: int) -> np.ndarray | None:
        if isinstance(self.source, torch.Tensor):
            return tensor_pixels(self.source[index])
        if isinstance(self.source, ImageStream):
            pixels = self.source.images(index, index + 1)[0].pixels
            if self.input_spec is not None:
                from convscope.data.images import fit_to_spec

                return fit_to_spec(pixels, self.input_spec)
            return np.asarray(pixels)
        return None

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON: ``top`` and ``bottom`` hold ``min(k, count)`` images each (so
        they share images when the set has fewer than ``2 k``)."""
        return {
            "model": self.model,
            "weights": self.model_weights,
            "layer": self.layer,
            "channel": self.channel,
            "images": self.images,
            "count": self.count,
            "statistic": STATISTIC,
            "top": [example.to_dict() for example in self.top],
            "bottom": [example.to_dict() for example in self.bottom],
        }

    def figure(self, **options: Any) -> Figure:
        """The most and least activating images in two labelled rows (see
        :func:`convscope.render.examples.plot_examples`)."""
        from convscope.render.examples import plot_examples

        return plot_examples(self, **options)

    def __rich__(self) -> Any:
        from convscope.render.examples import examples_table

        return examples_table(self)


def tensor_pixels(tensor: torch.Tensor) -> np.ndarray:
    """A preprocessed ``C x H x W`` input as uint8 pixels to look at (its range stretched)."""
    array = tensor.detach().float().cpu().numpy()
    low, high = float(np.nanmin(array)), float(np.nanmax(array))
    scaled = (array - low) / (high - low) if high > low else np.zeros_like(array)
    pixels = np.round(np.nan_to_num(scaled) * 255).astype(np.uint8)
    return pixels[0] if pixels.shape[0] == 1 else np.moveaxis(pixels[:3], 0, -1)


# --------------------------------------------------------------------------- checks


def check_k(k: Any) -> int:
    """``k`` if it is a whole number of at least 1; otherwise a one-line error."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConvscopeError(f"top must be a whole number of at least 1, got {k!r}")
    return int(k)


def check_channel(channel: Any, units: int, layer: str, vector: bool = False) -> int:
    """``channel`` if the layer has it; otherwise a one-line error naming the range."""
    what = "units" if vector else "channels"
    if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)):
        raise ConvscopeError(f"a channel is a whole number from 0 to {units - 1}, got {channel!r}")
    if not 0 <= channel < units:
        raise ConvscopeError(
            f"channel {channel} is out of range: layer {layer!r} has {units} {what}, "
            f"so the channel must be 0-{units - 1}"
        )
    return int(channel)


def _means(output: object) -> torch.Tensor | None:
    """One row per image of a layer's output: each channel's mean over its positions."""
    tensor = _first_tensor(output)
    if tensor is None or tensor.ndim < 2:
        return None
    tensor = tensor.detach().float()
    return tensor.flatten(2).mean(dim=2) if tensor.ndim > 2 else tensor.clone()


class _Enough(Exception):
    """Raised in the hook once the layer has given the call asked for: the rest is skipped."""


class _LayerMeans:
    """A hook on one layer keeping each call's channel means (only ``keep``'s columns),
    which stops the pass at call ``stop_after`` (None: never)."""

    def __init__(self, keep: Sequence[int] | None = None) -> None:
        self.keep = None if keep is None else torch.as_tensor(list(keep), dtype=torch.long)
        self.calls: list[torch.Tensor | None] = []
        self.shapes: list[tuple[int, ...] | None] = []
        self.stop_after: int | None = None

    def __call__(self, _module: nn.Module, _inputs: object, output: object) -> None:
        means = _means(output)
        tensor = _first_tensor(output)
        self.shapes.append(None if tensor is None else tuple(tensor.shape))
        if means is not None and self.keep is not None:
            means = means[:, self.keep.to(means.device)]
        self.calls.append(means)
        if self.stop_after is not None and len(self.calls) > self.stop_after:
            raise _Enough


def _run_layer(
    module: nn.Module, target: nn.Module, hook: _LayerMeans, batch: torch.Tensor
) -> None:
    hook.calls.clear()
    hook.shapes.clear()
    with borrowed_hooks([(target, hook)]), contextlib.suppress(_Enough):
        module(batch)  # stopped once the layer gave the call asked for


def _device(module: nn.Module) -> torch.device:
    return next((p.device for p in module.parameters()), torch.device("cpu"))


def layer_units(
    model: LoadedModel | nn.Module,
    layer: str,
    *,
    call: int = -1,
    example: torch.Tensor | None = None,
) -> tuple[int, int, bool]:
    """``(units, calls, vector)`` of ``layer``: its channel count (or a vector's size), how
    many times it runs in one pass, and whether its output is a vector.

    Found with one forward pass of ``example`` (default: a zero input of the model's
    size), so a bad layer or channel is refused before any image is read.
    """
    module, _, loaded = model_parts(model)
    target = resolve_layers(module, [layer])[layer]
    if example is None:
        if loaded is None:
            raise ImageError("a bare nn.Module takes a preprocessed tensor; load the model")
        example = torch.zeros(1, *loaded.input_spec.shape)
    hook = _LayerMeans()
    with exclusive(model), evaluating(module, grad=True), torch.inference_mode():
        _run_layer(module, target, hook, example[:1].float().to(_device(module)))
    index = pick_call(len(hook.calls), call, layer)
    shape = hook.shapes[index]
    if hook.calls[index] is None or shape is None or shape[0] != 1:
        raise LayerError(
            f"layer {layer!r} gives an output of shape {shape} for one image, not one row "
            "per image; choose a layer that keeps the batch dimension"
        )
    return int(shape[1]), len(hook.calls), len(shape) == 2


# --------------------------------------------------------------------------- the default set


class ExampleSet(ArrayStream):
    """Images picked from datasets (a sample, a probe set): uint8 pixels in memory, each
    row named by the SPEC of the image it is (``DATASET:SPLIT:INDEX``)."""

    def __init__(
        self,
        pixels: np.ndarray,
        specs: Sequence[str],
        labels: np.ndarray,
        class_names: Sequence[str] | None,
        description: str,
    ) -> None:
        super().__init__(pixels, "examples", labels, class_names)
        if len(specs) != len(pixels):
            raise ImageError(f"{len(pixels)} images but {len(specs)} names")
        self._specs = list(specs)
        self.spec = description

    def names(self, start: int = 0, stop: int | None = None) -> list[str]:
        start, stop = self._bounds(start, stop)
        return self._specs[start:stop]

    @property
    def nbytes(self) -> int:
        """Bytes of the pixels it holds."""
        return int(self._array.nbytes)

    @classmethod
    def of(cls, stream: ImageStream) -> ExampleSet:
        """A copy of the images of ``stream`` (a dataset range holds its whole split)."""
        pixels = stream.pixels(0, len(stream))
        array = np.array(pixels) if isinstance(pixels, np.ndarray) else np.stack(pixels)
        return cls(array, stream.names(), stream.labels, stream.class_names, stream.spec)


def example_images(
    model: LoadedModel | str,
    store: str | os.PathLike[str] | None = None,
    *,
    size: int = DEFAULT_SAMPLE,
    seed: int = 0,
) -> ExampleSet:
    """The images :func:`top_activations` looks at when given none.

    For a run's model (``run:ID[@EPOCH]``, or a model loaded from one) the run's probe
    set, from ``store`` (default ./convscope-runs); for any other model a stratified
    sample of ``size`` images of the test split of its dataset (``model.dataset``), in
    dataset order. Each row is named ``DATASET:SPLIT:INDEX``.
    """
    run = run_of(model)
    if run is not None:
        return probe_set(run, store)
    loaded = as_model(model)
    dataset = getattr(loaded, "dataset", None)
    name = getattr(loaded, "name", type(loaded).__name__)
    if not dataset:
        raise ConvscopeError(
            f"{name} names no dataset it was made for, so there is no default image set; "
            "give the images with --image SPEC (e.g. mnist:test:0-500 or a folder)"
        )
    from convscope.data.datasets import load_dataset
    from convscope.data.sampling import stratified_sample

    try:
        data = load_dataset(dataset, "test")
    except ConvscopeError as error:
        raise ConvscopeError(
            f"there is no default image set for {name} ({error}); give the images with "
            "--image SPEC (e.g. a folder of images)"
        ) from None
    chosen = np.sort(stratified_sample(data.labels, size, seed=seed))
    return ExampleSet(
        np.asarray(data.images[chosen]),
        [f"{dataset}:test:{i}" for i in chosen.tolist()],
        np.asarray(data.labels[chosen], dtype=np.int64),
        data.class_names,
        f"stratified sample of {dataset}",
    )


def run_of(model: Any) -> str | None:
    """The run a model comes from: ``run:ID[@EPOCH]`` -> ``ID``; a model loaded from a run
    (its weights say ``run ID epoch N``) -> ``ID``; otherwise None."""
    if isinstance(model, str):
        if not model.startswith("run:"):
            return None
        ref = model.removeprefix("run:").partition("@")[0]
        if not ref:
            raise ConvscopeError(f"{model}: give a run after run:, e.g. run:ID")
        return ref
    found = _RUN_WEIGHTS.match(weights_of(model))
    return found["id"] if found else None


def probe_set(run: str, store: str | os.PathLike[str] | None = None) -> ExampleSet:
    """The probe set of ``run``: the images every epoch's snapshot shows, each named by the
    SPEC of the dataset image it is.

    A run stores the probe's indices into the images it trained on: its dataset's train
    split (the stratified subset when it used one) followed by its validation split.
    They are mapped back to dataset indices and accepted only if the labels match the
    recorded ones.
    """
    from convscope.store import DEFAULT_STORE_DIR, open_store
    from convscope.train.run import run_settings

    with open_store(store or DEFAULT_STORE_DIR, create=False) as opened:
        record = opened.run(run)
        try:
            indices = opened.run_array(record.id, "probe", "indices").astype(np.int64)
            labels = opened.run_array(record.id, "probe", "labels").astype(np.int64)
        except ConvscopeError:
            raise ConvscopeError(
                f"run {record.id} recorded no probe set; give the images with --image SPEC"
            ) from None
    settings = run_settings(record)
    splits, positions, pixels, found, names = _probe_rows(settings, indices)
    if found is None or not np.array_equal(found, labels):
        raise ConvscopeError(
            f"the probe images of run {record.id} cannot be rebuilt: its dataset is missing "
            "or changed (`convscope data list` shows the datasets); give the images with "
            "--image SPEC"
        )
    specs = [f"{settings.data}:{s}:{i}" for s, i in zip(splits, positions, strict=True)]
    return ExampleSet(pixels, specs, labels, names, f"probe set of run {record.id}")


def _probe_rows(settings: Any, indices: np.ndarray) -> tuple[Any, ...]:
    """``(splits, dataset indices, pixels, labels, class names)`` of the probe's rows."""
    from convscope.data.datasets import load_dataset
    from convscope.data.sampling import stratified_indices

    train = load_dataset(settings.data, "train")
    kept = np.arange(len(train))
    if settings.subset is not None:  # as convscope.train.run.prepare_data picks it
        per_class = settings.subset // len(train.class_names)
        kept = stratified_indices(train.labels, per_class, seed=settings.config.seed)
    parts = [("train", kept, train)]
    if settings.validation:
        validation = load_dataset(settings.data, settings.validation)
        parts.append((settings.validation, np.arange(len(validation)), validation))
    offsets = np.cumsum([0, *(len(p[1]) for p in parts)])
    if len(indices) == 0 or indices.min() < 0 or indices.max() >= offsets[-1]:
        return [], np.zeros(0, np.int64), np.zeros((0, 1, 1), np.uint8), None, None
    part = np.searchsorted(offsets, indices, side="right") - 1
    splits, positions, pixels, labels = [], [], [], []
    for n, i in zip(part.tolist(), indices.tolist(), strict=True):
        split, kept_rows, data = parts[n]
        position = int(kept_rows[i - offsets[n]])
        splits.append(split)
        positions.append(position)
        pixels.append(data.images[position])
        labels.append(int(data.labels[position]))
    return splits, positions, np.stack(pixels), np.asarray(labels), train.class_names


# --------------------------------------------------------------------------- the probe


def top_activations(
    model: LoadedModel | nn.Module | str,
    layer: str,
    images: Images | None = None,
    k: int = DEFAULT_K,
    *,
    channel: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    call: int = -1,
    store: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    input_shape: tuple[int, int, int] | None = None,
) -> TopActivations:
    """The ``k`` images of ``images`` that activate channel ``channel`` of ``layer`` most,
    and the ``k`` that activate it least.

    One image's value is the mean of the channel's map over its positions (for a layer
    whose output is a vector, unit ``channel``'s value). ``images``: a SPEC
    (``"mnist:test:0-500"``, a folder: any number), a list of
    :class:`~convscope.data.spec.InputImage`, uint8 pixels ``N x H x W [x C]``, an
    already preprocessed ``N x C x H x W`` tensor, or None for :func:`example_images`
    (a run's probe set, else a stratified sample of the model's dataset). ``model`` may
    be a MODEL string (``run:ID`` read from ``store``). ``channel=None`` keeps every
    channel's values, shows channel 0, and :meth:`TopActivations.select` picks another.
    The images are read ``batch_size`` at a time; ``progress(description, done,
    total)`` is called after each batch. A module that runs several times in one pass
    gives call ``call`` (default: the last).
    """
    loaded = _loaded(model, store, input_shape)
    with exclusive(loaded):
        return _top_activations(
            loaded, layer, images, k, channel, batch_size, call, store, progress
        )


def _loaded(model: Any, store: Any, input_shape: Any) -> Any:
    if isinstance(model, str):
        from convscope.models.loading import load_model

        return load_model(model, input_shape=input_shape, store=store)
    return as_model(model, input_shape)


def _top_activations(
    model: LoadedModel | nn.Module,
    layer: str,
    images: Images | None,
    k: int,
    channel: int | None,
    batch_size: int,
    call: int,
    store: Any,
    progress: Progress | None,
) -> TopActivations:
    module, name, loaded = model_parts(model)
    k = check_k(k)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConvscopeError(
            f"the batch size must be a whole number of at least 1, got {batch_size}"
        )
    target = resolve_layers(module, [layer])[layer]
    tensor = images.detach() if isinstance(images, torch.Tensor) else None
    if tensor is not None:
        tensor = tensor.unsqueeze(0) if tensor.ndim == 3 else tensor
        if tensor.ndim != 4 or len(tensor) == 0:
            raise ImageError(
                "expected preprocessed inputs of shape N x C x H x W (or C x H x W), "
                f"got {tuple(images.shape)}"  # type: ignore[union-attr]
            )
    units, calls, vector = layer_units(model, layer, call=call, example=tensor)
    if channel is not None:
        check_channel(channel, units, layer, vector)
    source = _source(images, tensor, loaded, store)
    total = len(source)
    if total == 0:
        raise ImageError(f"{source.spec} names no images")
    keep = tuple(range(units)) if channel is None else (int(channel),)
    values = _stream_values(module, target, layer, source, keep, calls, call, batch_size, progress)
    class_names = None if tensor is not None else source.class_names
    if class_names is None and loaded is not None:
        class_names = loaded.class_names
    return TopActivations(
        model=name,
        layer=layer,
        layer_type=type(target).__name__,
        channel=keep[0],
        units=units,
        channels=keep,
        values=values,
        specs=source.names(),
        labels=source.labels_array(),
        images=source.spec,
        k=k,
        class_names=None if class_names is None else tuple(class_names),
        model_weights=weights_of(model),
        vector=vector,
        source=source.images,
        input_spec=None if loaded is None else loaded.input_spec,
    )


class _Batches:
    """Batches of model input with the rows' names and labels (a tensor or a stream)."""

    def __init__(self, images: torch.Tensor | ImageStream, input_spec: Any) -> None:
        self.images, self.input_spec = images, input_spec
        self.spec = (
            f"input tensor ({len(images)} images)"
            if isinstance(images, torch.Tensor)
            else images.spec
        )
        self.class_names = None if isinstance(images, torch.Tensor) else images.class_names

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, start: int, stop: int) -> torch.Tensor:
        if isinstance(self.images, torch.Tensor):
            return self.images[start:stop].float()
        return self.images.batch(start, stop, self.input_spec)

    def names(self) -> list[str]:
        if isinstance(self.images, torch.Tensor):
            return [f"input[{i}]" for i in range(len(self.images))]
        return self.images.names()

    def labels_array(self) -> np.ndarray:
        if isinstance(self.images, torch.Tensor):
            return np.full(len(self.images), -1, dtype=np.int64)
        return np.asarray(self.images.labels, dtype=np.int64)


def _source(images: Any, tensor: torch.Tensor | None, loaded: Any, store: Any) -> _Batches:
    """The batches to run: a tensor as it is, images read for the model, or the default set."""
    if tensor is not None:
        return _Batches(tensor, None)
    if loaded is None:
        raise ImageError(
            "a bare nn.Module takes a preprocessed N x C x H x W tensor; load the model "
            "(convscope.load_model) for images and SPECs"
        )
    if images is None:
        images = example_images(loaded, store)
    elif isinstance(images, np.ndarray):
        images = ArrayStream(images)
    return _Batches(open_images(images, input_spec=loaded.input_spec), loaded.input_spec)


def _stream_values(
    module: nn.Module,
    target: nn.Module,
    layer: str,
    source: _Batches,
    keep: tuple[int, ...],
    calls: int,
    call: int,
    batch_size: int,
    progress: Progress | None,
) -> np.ndarray:
    """Every image's value for the channels ``keep``: ``N x len(keep)`` float32."""
    total = len(source)
    chosen = pick_call(calls, call, layer)
    values = np.empty((total, len(keep)), dtype=np.float32)
    hook = _LayerMeans(keep)
    hook.stop_after = chosen
    device = _device(module)
    with evaluating(module, grad=True), torch.inference_mode():
        for start in range(0, total, batch_size):
            stop = min(start + batch_size, total)
            _run_layer(module, target, hook, source.batch(start, stop).to(device))
            if len(hook.calls) <= chosen:
                raise LayerError(
                    f"layer {layer!r} ran {len(hook.calls)} time(s) for images {start}-{stop} "
                    f"but {calls} for one image; its call {chosen} cannot be followed"
                )
            rows = hook.calls[chosen]
            if rows is None or rows.shape[0] != stop - start:
                raise LayerError(
                    f"layer {layer!r} gave an output of shape {hook.shapes[chosen]} for a batch "
                    f"of {stop - start} images; choose a layer that keeps the batch dimension"
                )
            values[start:stop] = rows.cpu().numpy()
            if progress is not None:
                progress("examples", stop, total)
    return values
