"""Activation maximisation: the input a class or a channel responds to most, by gradient ascent.

Starts from several random images and climbs a class logit, a class probability or a
channel's mean activation, with the regularisers of Olah et al., "Feature Visualization"
(Distill 2017) that make the result readable: random jitter, scale and rotation (one
``affine_grid`` per step), an occasional Gaussian blur (Yosinski et al. 2015), total
variation (Mahendran & Vedaldi 2015) and an L2 decay towards the data mean. Images are
optimised in a space that always maps to valid pixels: by default a 1/f-scaled Fourier
spectrum (with colour decorrelation for RGB), the idea of Lucid/Lucent's
``param/spatial.py`` and ``param/color.py``, put through a sigmoid; or a sigmoid of a
pixel-space parameter.

Written here rather than taken from Lucent because that package is unmaintained, is
tied to old PyTorch releases and optimises one target at a time; this version runs all
starts of all targets in one batch (8 starts of each of the ten LeNet-5 classes in 2-3 s
on one core) and says so when it fails: a gradient that vanishes at every start, or an
objective that stops rising, is reported as such and never drawn as if it were a result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from convscope.data.classes import class_names_for
from convscope.data.preprocess import InputSpec
from convscope.errors import ConvscopeError, LayerError
from convscope.models.loaded import LoadedModel
from convscope.models.modes import evaluating
from convscope.probe.activations import capture, resolve_layers
from convscope.probe.base import FigureResult, short_repr
from convscope.probe.classes import ClassSpec, class_indices
from convscope.probe.exclusive import one_at_a_time

if TYPE_CHECKING:
    from matplotlib.figure import Figure

OBJECTIVES = ("logit", "prob", "mean")
"""What is climbed: a class logit, a class probability, or a channel's mean activation."""

PARAMETERISATIONS = ("auto", "pixel", "fourier")
"""How the image is parameterised; ``auto`` is Fourier (decorrelated colour for RGB)."""

STATUSES = ("converged", "step-limit", "stalled", "vanishing-gradient")
"""How an optimisation ended: the objective rose and levelled off; it rose until the step
limit (more steps may raise it further); it did not rise; or it had no gradient."""

ROSE = ("converged", "step-limit")
"""The statuses of a target whose objective rose: its image is a result."""

#: Lucid's square root of the ImageNet colour covariance (columns: decorrelated -> RGB).
COLOR_CORRELATION_SVD_SQRT = np.array(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32
)

ProgressFn = Callable[[int, int], None]
"""progress(steps_done, steps_total)."""


# --------------------------------------------------------------------------------------------
# settings and targets


@dataclass(frozen=True)
class MaximizeSettings:
    """Optimisation settings; :func:`default_settings` picks ones that fit the input size.

    Penalty weights are relative to the objective (a logit, a probability or a mean
    activation); ``jitter`` is in pixels, ``scale`` a fraction, ``rotate`` in degrees.
    """

    steps: int = 256
    starts: int = 4
    lr: float = 0.05
    seed: int = 0
    param: str = "auto"
    decorrelate: bool = True
    jitter: int = 2
    scale: float = 0.1
    rotate: float = 10.0
    blur_every: int = 8
    blur_sigma: float = 0.5
    tv: float = 3.0
    l2: float = 3.0
    patience: int = 32
    min_grad: float = 1e-8
    init_std: float = 1.0

    def __post_init__(self) -> None:
        checks = [
            (self.steps >= 1, "steps must be at least 1"),
            (self.starts >= 1, "starts must be at least 1"),
            (self.lr > 0, "the learning rate must be positive"),
            (
                self.param in PARAMETERISATIONS,
                f"param must be one of {', '.join(PARAMETERISATIONS)}",
            ),
            (self.jitter >= 0, "jitter must be 0 or more pixels"),
            (0 <= self.scale < 1, "scale must be in [0, 1)"),
            (0 <= self.rotate <= 180, "rotate must be in [0, 180] degrees"),
            (self.blur_every >= 0, "blur-every must be 0 (off) or more steps"),
            (self.blur_sigma >= 0, "blur sigma must be 0 or more pixels"),
            (self.tv >= 0 and self.l2 >= 0, "penalty weights must be 0 or more"),
            (self.patience >= 1, "patience must be at least 1 step"),
            (self.min_grad >= 0, "min-grad must be 0 or more"),
            (self.init_std >= 0, "init-std must be 0 or more"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConvscopeError(message)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


PENALTY_WEIGHTS = MappingProxyType({"logit": 3.0, "prob": 0.3, "mean": 0.3})
"""Default TV and L2 weights per objective: logits run to 10-30, probabilities and
channel means to about 1, and a penalty as strong as for logits keeps a channel dark."""


def default_settings(
    input_spec: InputSpec, objective: str = "logit", **overrides: Any
) -> MaximizeSettings:
    """Settings that fit ``input_spec`` and ``objective``: transforms scale with the image.

    Small images (MNIST) get 8 starts, larger ones 4; jitter is 1/14 of the side; the
    penalty weights follow the objective's scale (:data:`PENALTY_WEIGHTS`).
    ``overrides`` replace single fields (``None`` values are ignored).
    """
    side = min(input_spec.height, input_spec.width)
    small = side <= 64
    weight = PENALTY_WEIGHTS.get(objective, PENALTY_WEIGHTS["logit"])
    base = MaximizeSettings(
        starts=8 if small else 4,
        jitter=max(1, round(side / 14)),
        blur_sigma=0.5 if small else 1.0,
        tv=weight,
        l2=weight,
    )
    chosen = {key: value for key, value in overrides.items() if value is not None}
    unknown = set(chosen) - set(asdict(base))
    if unknown:
        raise TypeError(f"unknown maximize settings: {', '.join(sorted(unknown))}")
    return replace(base, **chosen)


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


# --------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class TargetResult:
    """The outcome for one target: its best image, trace, scores and status.

    ``image`` is in display space (``H x W`` gray or ``H x W x 3`` RGB, values in
    [0, 1]); ``input`` is the same image as the model takes it (``C x H x W``,
    normalised, in the model's channel order). ``trace`` holds the objective per step
    for each start (``starts x steps``, on the randomly transformed images).
    """

    __repr__ = short_repr

    target: Target
    image: np.ndarray
    input: np.ndarray
    trace: np.ndarray
    start_score: float
    score: float
    prob: float | None
    top: list[tuple[str, float]]
    status: str
    message: str
    steps: int
    best_start: int
    start_scores: np.ndarray
    scores: np.ndarray

    @property
    def drawn(self) -> bool:
        """Whether the image is worth showing: it had a gradient and its score rose."""
        return self.status != "vanishing-gradient" and self.score > self.start_score

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metadata (no images)."""
        return {
            "target": self.target.name,
            "kind": self.target.kind,
            "index": self.target.index,
            "layer": self.target.layer,
            "status": self.status,
            "message": self.message,
            "start_score": _num(self.start_score),
            "score": _num(self.score),
            "prob": None if self.prob is None else _num(self.prob),
            "top": [[name, _num(p)] for name, p in self.top],
            "steps": self.steps,
            "best_start": self.best_start,
            "start_scores": [_num(v) for v in self.start_scores],
            "scores": [_num(v) for v in self.scores],
        }


def _num(value: float) -> float | None:
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None


@dataclass(frozen=True)
class MaximizeResult(FigureResult):
    """Synthesised inputs for several targets of one model; draws itself as a grid."""

    model: str
    objective: str
    param: str
    settings: MaximizeSettings
    targets: list[TargetResult]
    channels: int
    seconds: float
    model_weights: str = ""

    def figure(self, **options: Any) -> Figure:
        """One panel per target with its name and score, and a convergence trace below.

        See :func:`convscope.render.maximize.plot_maximize` for the options.
        """
        from convscope.render.maximize import plot_maximize

        return plot_maximize(self, **options)

    def trace_figure(self, **options: Any) -> Figure:
        """The objective per step of every start of every target."""
        from convscope.render.maximize import plot_traces

        return plot_traces(self, **options)

    @property
    def inputs(self) -> np.ndarray:
        """The best image of every target as the model takes it, ``N x C x H x W``."""
        return np.stack([t.input for t in self.targets])

    @property
    def ok(self) -> bool:
        """Whether the objective of every target rose (converged or reached the step limit)."""
        return all(t.status in ROSE for t in self.targets)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metadata: model, objective, settings and one record per target."""
        probs = [t.prob for t in self.targets if t.prob is not None]
        return {
            "model": self.model,
            "weights": self.model_weights,
            "objective": self.objective,
            "param": self.param,
            "seconds": round(self.seconds, 3),
            "settings": self.settings.to_dict(),
            "mean_target_prob": _num(float(np.mean(probs))) if probs else None,
            "targets": [t.to_dict() for t in self.targets],
        }

    def __rich__(self) -> Any:
        from rich.table import Table

        table = Table(title=f"{self.model}: activation maximisation ({self.objective})")
        for column in ("target", "status", "start", "score", "p(target)", "top 3", "steps"):
            numeric = column in ("start", "score", "p(target)", "steps")
            table.add_column(
                column, justify="right" if numeric else "left", no_wrap=column != "top 3"
            )
        for t in self.targets:
            top = ", ".join(f"{name} ({p:.2f})" for name, p in t.top)
            prob = "" if t.prob is None else f"{t.prob:.3f}"
            style = {"converged": "green", "step-limit": "green", "stalled": "yellow"}.get(
                t.status, "red"
            )
            table.add_row(
                t.target.name,
                f"[{style}]{t.status}[/]",
                f"{t.start_score:.3g}",
                f"{t.score:.3g}",
                prob,
                top,
                str(t.steps),
            )
        return table


# --------------------------------------------------------------------------------------------
# image parameterisations


def rfft2d_freqs(height: int, width: int) -> np.ndarray:
    """Spatial frequency magnitude (cycles per pixel) of each ``rfft2`` coefficient."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    return np.sqrt(fx * fx + fy * fy)


def color_decorrelation() -> torch.Tensor:
    """3x3 matrix taking decorrelated colour to RGB, columns scaled to unit max norm."""
    matrix = COLOR_CORRELATION_SVD_SQRT
    return torch.from_numpy(matrix / np.max(np.linalg.norm(matrix, axis=0)))


class ImageParam:
    """A batch of images as an unconstrained tensor; :meth:`pixels` maps it into [0, 1].

    ``pixel``: the tensor is the pre-sigmoid image. ``fourier``: it is a spectrum scaled
    by 1/f; natural images have about that spectrum, so the parameters are roughly
    whitened and gradient steps no longer favour the many high frequencies (the noise
    of plain pixel ascent). With three channels the channels are decorrelated colours,
    mixed into RGB by :func:`color_decorrelation` before the sigmoid.

    Start images are random, with pre-sigmoid pixels of standard deviation ``sd``
    whatever the size: distinct starts, and no ReLU unit dead at all of them, as units
    can be on a flat gray image.
    """

    FOURIER_MAGIC = 4.0  # Lucid's divisor that keeps the initial spectrum's image small

    def __init__(
        self,
        shape: tuple[int, int, int, int],
        kind: str,
        decorrelate: bool,
        generator: torch.Generator,
        sd: float,
    ) -> None:
        self.shape = shape
        self.kind = kind
        n, c, h, w = shape
        self.decorrelate = decorrelate and c == 3
        self.color = color_decorrelation() if self.decorrelate else None
        if kind == "fourier":
            freqs = rfft2d_freqs(h, w)
            self.freqs = torch.from_numpy(freqs).float()
            scale = 1.0 / np.maximum(freqs, 1.0 / max(h, w))
            self.scale = torch.from_numpy(scale).float()[None, None, :, :, None]
            self.tensor = torch.randn((n, c, *freqs.shape, 2), generator=generator)
        else:
            self.tensor = torch.randn(shape, generator=generator)
        with torch.no_grad():  # starts whose pre-sigmoid pixels have standard deviation sd
            spread = float(self.pre_sigmoid().std()) if n * c * h * w > 1 else 1.0
            self.tensor.mul_(sd / spread if spread > 0 else 0.0)
        self.tensor.requires_grad_(True)

    def pre_sigmoid(self) -> torch.Tensor:
        """The image before the sigmoid (decorrelated colours already mixed into RGB)."""
        h, w = self.shape[2:]
        if self.kind == "fourier":
            spectrum = torch.view_as_complex(self.scale * self.tensor)
            image = torch.fft.irfft2(spectrum, s=(h, w), norm="ortho") / self.FOURIER_MAGIC
        else:
            image = self.tensor
        if self.color is not None:
            image = torch.einsum("nchw,dc->ndhw", image, self.color)
        return image

    def pixels(self) -> torch.Tensor:
        """The images in [0, 1], ``N x C x H x W``, RGB order."""
        return torch.sigmoid(self.pre_sigmoid())

    @torch.no_grad()
    def blur_(self, sigma: float) -> None:
        """Blur the images in place with a Gaussian of ``sigma`` pixels (before the sigmoid).

        In Fourier space this is exact: the spectrum is multiplied by the Gaussian's
        frequency response ``exp(-2 pi^2 sigma^2 f^2)``.
        """
        if sigma <= 0:
            return
        if self.kind == "fourier":
            response = torch.exp(-2 * math.pi**2 * sigma**2 * self.freqs**2)
            self.tensor.mul_(response[None, None, :, :, None])
            return
        self.tensor.copy_(gaussian_blur(self.tensor, sigma))


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """``N x C x H x W`` images blurred per channel by a Gaussian (reflected borders)."""
    radius = max(1, min(math.ceil(2 * sigma), min(images.shape[-2:]) - 1))
    offsets = torch.arange(-radius, radius + 1, dtype=images.dtype)
    kernel = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    padded = F.pad(images, (radius, radius, radius, radius), mode="reflect")
    rows = F.conv2d(padded, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(rows, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def resolve_param(param: str) -> str:
    """``auto`` -> ``fourier`` (for gray too: it gives smoother, more readable digits)."""
    return "fourier" if param == "auto" else param


# --------------------------------------------------------------------------------------------
# transforms and penalties


def random_affine(
    images: torch.Tensor,
    settings: MaximizeSettings,
    generator: torch.Generator,
    padding: str,
) -> torch.Tensor:
    """Each image jittered, scaled and rotated at random, in one ``grid_sample`` call."""
    n, _, h, w = images.shape
    if settings.jitter == 0 and settings.scale == 0 and settings.rotate == 0:
        return images

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(n, generator=generator)

    shift = settings.jitter
    tx = torch.randint(-shift, shift + 1, (n,), generator=generator).float() * 2 / w
    ty = torch.randint(-shift, shift + 1, (n,), generator=generator).float() * 2 / h
    zoom = uniform(1 - settings.scale, 1 + settings.scale)
    angle = uniform(-settings.rotate, settings.rotate) * math.pi / 180
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cos, -sin, tx], dim=1), torch.stack([sin, cos, ty], dim=1)], dim=1
    )
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, padding_mode=padding, align_corners=False)


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels, per image."""
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs().mean(dim=(1, 2, 3))
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs().mean(dim=(1, 2, 3))
    return dx + dy


def _normalize(pixels: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """RGB pixels in [0, 1] -> the model's input (BGR flip if asked, then mean/std)."""
    if spec.channel_order == "BGR" and spec.channels == 3:
        pixels = pixels.flip(1)
    mean = torch.tensor(spec.mean, dtype=pixels.dtype).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, dtype=pixels.dtype).view(1, -1, 1, 1)
    return (pixels - mean) / std


# --------------------------------------------------------------------------------------------
# objectives


class _Objective:
    """Per-image scores of a batch for a list of targets, each repeated ``starts`` times."""

    def __init__(self, model: LoadedModel, targets: list[Target], objective: str, starts: int):
        self.model = model
        self.objective = objective
        self.layers = sorted({t.layer for t in targets if t.layer})
        rows = [t for t in targets for _ in range(starts)]
        self.index = torch.tensor([t.index for t in rows])
        self.layer_rows = {
            layer: torch.tensor([r for r, t in enumerate(rows) if t.layer == layer])
            for layer in self.layers
        }
        self.class_rows = torch.tensor([r for r, t in enumerate(rows) if t.kind == "class"])

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(scores, outputs)`` of the batch ``x`` (model inputs)."""
        with capture(self.model.module, self.layers, detach=False) as captured:
            outputs = self.model.module(x)
        scores = torch.zeros(x.shape[0], dtype=x.dtype)
        if len(self.class_rows):
            rows = self.class_rows
            scores = scores.index_put((rows,), self._class_scores(outputs[rows], self.index[rows]))
        for layer, rows in self.layer_rows.items():
            act = captured.output(layer)[rows]
            picked = act[torch.arange(len(rows)), self.index[rows]]
            value = picked.flatten(1).mean(dim=1) if picked.ndim > 1 else picked
            scores = scores.index_put((rows,), value)
        return scores, outputs

    def _class_scores(self, outputs: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        if outputs.ndim != 2:
            raise ModelOutputError(self.model.name, tuple(outputs.shape))
        picked = torch.arange(len(index))
        if self.objective == "prob":
            probs = outputs if self.model.outputs_probabilities else outputs.softmax(dim=1)
            return probs[picked, index]
        if self.model.outputs_probabilities:  # the logit of a softmax output, up to a constant
            return outputs[picked, index].clamp_min(1e-30).log()
        return outputs[picked, index]


def _probabilities(model: LoadedModel, outputs: torch.Tensor) -> torch.Tensor | None:
    if outputs.ndim != 2:
        return None
    return outputs if model.outputs_probabilities else outputs.softmax(dim=1)


SMALL_BATCH_ELEMENTS = 2**18
"""Batches up to this many input values count as small (see :func:`_compute_mode`)."""


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


def ascent_size(model: LoadedModel, targets: int, starts: int | None = None) -> int:
    """Input values in one ascent batch: ``targets x starts x C x H x W``."""
    starts = starts or default_settings(model.input_spec).starts
    return targets * starts * math.prod(model.input_spec.shape)


@contextmanager
def process_compute_mode(elements: int, threads: int | None = None):
    """Torch threads and conv backend fit for an ascent of ``elements`` input values.

    Small batches (ten 28x28 digits x 4 starts) are dominated by per-operator overhead:
    there a second thread gains nothing and, on a busy machine, spin-waits (measured on
    two busy cores: 50-100 s with 2 threads for what 1 thread did in 2-6 s), and the
    native convolution's input gradient is 1.5x faster than oneDNN's. Both settings
    are process-wide, so :func:`maximize` never changes them itself: a program that
    owns its process (the CLI, a benchmark) wraps the call in this block, and
    everything is restored after it. ``threads`` overrides the thread count.
    """
    small = elements <= SMALL_BATCH_ELEMENTS
    threads_before, onednn_before = torch.get_num_threads(), torch.backends.mkldnn.enabled
    torch.set_num_threads(max(1, threads or (1 if small else threads_before)))
    torch.backends.mkldnn.enabled = onednn_before and not small
    try:
        yield
    finally:
        torch.set_num_threads(threads_before)
        torch.backends.mkldnn.enabled = onednn_before


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


# --------------------------------------------------------------------------------------------
# the optimisation


@one_at_a_time
def maximize(
    model: LoadedModel,
    classes: int | str | Sequence[int | str] | None = None,
    *,
    channels: str | Sequence[str] | None = None,
    objective: str | None = None,
    settings: MaximizeSettings | None = None,
    progress: ProgressFn | None = None,
    **overrides: Any,
) -> MaximizeResult:
    """Synthesise the input that maximises each class (or channel) by gradient ascent.

    ``classes``: an index, a class name, ``"all"``, ``"0-9"`` or a list; ``channels``:
    ``"LAYER:C"`` (or a list). ``objective`` is ``logit`` (default for classes),
    ``prob`` or ``mean`` (channels). Settings come from :func:`default_settings`
    for the model's input unless given; ``overrides`` change single fields
    (``steps=64, starts=2, tv=0.5``...). All starts of all targets run as one batch.
    Nothing process-wide is changed (threads, backends): wrap the call in
    :func:`process_compute_mode` for the thread count that suits a small batch.
    """
    targets = maximize_targets(model, classes, channels)
    kind = targets[0].kind
    objective = objective or ("logit" if kind == "class" else "mean")
    if objective not in OBJECTIVES:
        raise ConvscopeError(f"unknown objective {objective!r}; use {', '.join(OBJECTIVES)}")
    if (objective == "mean") != (kind == "channel"):
        raise ConvscopeError(
            "objective 'mean' is for channels; classes take 'logit' or 'prob'"
            if kind == "class"
            else f"objective {objective!r} is for classes; channels take 'mean'"
        )
    if settings is None:
        settings = default_settings(model.input_spec, objective, **overrides)
    elif overrides:
        settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    started = time.perf_counter()
    with _frozen(model.module):
        run = _Ascent(model, targets, objective, settings)
        run.optimise(progress)
        results = run.results()
    return MaximizeResult(
        model=model.name,
        model_weights=model.weights,
        objective=objective,
        param=run.param.kind,
        settings=settings,
        targets=results,
        channels=model.input_spec.channels,
        seconds=time.perf_counter() - started,
    )


class _Ascent:
    """The batched gradient ascent of all starts of all targets, with its stop rule."""

    def __init__(
        self, model: LoadedModel, targets: list[Target], objective: str, settings: MaximizeSettings
    ) -> None:
        self.model = model
        self.targets = targets
        self.objective_name = objective
        self.settings = settings
        spec = model.input_spec
        self.spec = spec
        self.starts = settings.starts
        n = len(targets) * settings.starts
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.param = ImageParam(
            (n, spec.channels, spec.height, spec.width),
            resolve_param(settings.param),
            settings.decorrelate,
            self.generator,
            settings.init_std,
        )
        self.objective = _Objective(model, targets, objective, settings.starts)
        self.padding = "reflection" if spec.channels == 3 else "zeros"
        self.optimizer = torch.optim.Adam([self.param.tensor], lr=settings.lr)
        self.trace = np.full((len(targets), settings.starts, settings.steps), np.nan)
        self.stopped_at = np.full(len(targets), settings.steps)
        self.early = np.zeros(len(targets), dtype=bool)
        self.grad_max = np.zeros(len(targets))
        self.snapshots: list[torch.Tensor | None] = [None] * len(targets)
        with torch.no_grad():
            self.initial = self.param.pixels().detach().clone()

    def _rows(self, t: int) -> slice:
        return slice(t * self.starts, (t + 1) * self.starts)

    def optimise(self, progress: ProgressFn | None) -> None:
        s = self.settings
        active = np.ones(len(self.targets), dtype=bool)
        for step in range(s.steps):
            pixels = self.param.pixels()
            seen = random_affine(pixels, s, self.generator, self.padding)
            x = _normalize(seen, self.spec)
            scores, _ = self.objective(x)
            loss = (self._penalty(pixels) - scores).sum()
            if step == 0:
                (grad,) = torch.autograd.grad(scores.sum(), pixels, retain_graph=True)
                per_image = grad.abs().flatten(1).amax(dim=1).numpy()
                self.grad_max = per_image.reshape(len(self.targets), self.starts).max(axis=1)
                for t in np.flatnonzero(self.grad_max <= s.min_grad):
                    active[t] = False
                    self.stopped_at[t] = 1
            values = scores.detach().numpy().reshape(len(self.targets), self.starts)
            self.trace[active, :, step] = values[active]
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if s.blur_every and (step + 1) % s.blur_every == 0:
                self.param.blur_(s.blur_sigma)
            self._stop_plateaued(step, active)
            if progress is not None:
                progress(step + 1, s.steps)
            if not active.any():
                break
        with torch.no_grad():
            final = self.param.pixels().detach()
        for t in range(len(self.targets)):
            if self.snapshots[t] is None:
                self.snapshots[t] = final[self._rows(t)].clone()

    def _stop_plateaued(self, step: int, active: np.ndarray) -> None:
        """Stop targets whose mean objective over the last window rose by less than 0.1%."""
        window = self.settings.patience
        done = step + 1
        if done < 2 * window or done % window:
            return
        with torch.no_grad():
            pixels = None
            for t in np.flatnonzero(active):
                recent = np.nanmean(self.trace[t, :, done - window : done])
                before = np.nanmean(self.trace[t, :, done - 2 * window : done - window])
                if recent - before <= 1e-3 * max(abs(before), 1e-6):
                    if pixels is None:
                        pixels = self.param.pixels().detach()
                    active[t] = False
                    self.early[t] = True
                    self.stopped_at[t] = done
                    self.snapshots[t] = pixels[self._rows(t)].clone()

    def _penalty(self, pixels: torch.Tensor) -> torch.Tensor:
        """Per image: TV of the pixels plus L2 of the model input (distance to the data mean)."""
        l2 = _normalize(pixels, self.spec).pow(2).mean(dim=(1, 2, 3))
        return self.settings.tv * total_variation(pixels) + self.settings.l2 * l2

    @torch.no_grad()
    def _evaluate(self, pixels: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        x = _normalize(pixels, self.spec)
        scores, outputs = self.objective(x)
        return scores.numpy(), outputs

    def results(self) -> list[TargetResult]:
        images = torch.cat([snap for snap in self.snapshots if snap is not None])
        final, outputs = self._evaluate(images)
        initial, _ = self._evaluate(self.initial)
        probs = _probabilities(self.model, outputs)
        classes = model_classes(self.model) if probs is not None else ()
        inputs = _normalize(images, self.spec).numpy()
        with torch.no_grad():  # the best start is the one with the best regularised objective
            regularised = final - self._penalty(images).numpy()
        out = []
        for t, target in enumerate(self.targets):
            rows = np.arange(t * self.starts, (t + 1) * self.starts)
            scores = final[rows]
            choice = np.where(np.isfinite(regularised[rows]), regularised[rows], -np.inf)
            best = int(rows[int(np.argmax(choice))])
            top: list[tuple[str, float]] = []
            prob = None
            if probs is not None:
                row = probs[best]
                values, indices = row.topk(min(3, row.numel()))
                top = [(classes[int(i)], float(v)) for v, i in zip(values, indices, strict=True)]
                if target.kind == "class":
                    prob = float(row[target.index])
            status, message = self._status(t, target, float(initial[best]), float(final[best]), top)
            image = images[best].permute(1, 2, 0).numpy()
            out.append(
                TargetResult(
                    target=target,
                    image=image[..., 0].copy() if image.shape[-1] == 1 else image.copy(),
                    input=inputs[best].copy(),
                    trace=self.trace[t, :, : int(self.stopped_at[t])].copy(),
                    start_score=float(initial[best]),
                    score=float(final[best]),
                    prob=prob,
                    top=top,
                    status=status,
                    message=message,
                    steps=int(self.stopped_at[t]),
                    best_start=best - t * self.starts,
                    start_scores=initial[rows].copy(),
                    scores=scores.copy(),
                )
            )
        return out

    def _status(
        self, t: int, target: Target, start: float, end: float, top: list[tuple[str, float]]
    ) -> tuple[str, str]:
        s = self.settings
        what = f"{self.objective_name} of {target.name}"
        if self.grad_max[t] <= s.min_grad:
            if self.objective_name == "prob":
                why = "the probability is saturated or does not depend on the input; try logit"
            elif target.kind == "channel":
                why = "the unit is inactive at every start (a dead ReLU?); try another seed"
            else:
                why = "the output does not depend on the input here"
            return "vanishing-gradient", (
                f"no gradient: d({what})/d(input) is at most {self.grad_max[t]:.1e} at every "
                f"start, so nothing can be drawn ({why})"
            )
        if not (math.isfinite(start) and math.isfinite(end)):
            return "stalled", f"the {what} is not finite ({end}); nothing to draw"
        steps = int(self.stopped_at[t])
        if end <= start + 1e-3 * max(1.0, abs(start)):
            return "stalled", (
                f"the {what} stopped rising ({start:.4g} at the start, {end:.4g} after "
                f"{steps} steps): no input found that raises it"
            )
        if self.early[t]:
            status, how = "converged", f"levelled off after {steps} steps"
        else:
            status, how = "step-limit", f"step limit reached at {steps} steps, still rising"
        message = f"{what} rose from {start:.4g} to {end:.4g} ({how})"
        if target.kind == "class" and top and top[0][0] != target.label:
            message += f"; but the model classifies the result as {top[0][0]}"
        return status, message
