"""Attribution: which input pixels (or regions) the score of a target class depends on.

Built on Captum: ``Saliency`` (|d score / d x|, max over channels), ``LayerGradCam``
(channel weights = mean gradient over the layer's H x W, ``relu(sum_k w_k A_k)``,
upsampled bilinearly with ``LayerAttribution.interpolate``), ``IntegratedGradients``
(Gauss-Legendre path integral from a baseline, summed over channels, with its
completeness error) and ``Occlusion`` (drop of the score when a window of all
channels is replaced by the baseline, averaged over the windows covering a pixel).

The score attributed is the model's output for the target class as the model gives
it: the logit for models that output logits (the zoo, torchvision), the probability
for models that end in a softmax (``outputs_probabilities``); results say which. The
target defaults to the predicted class. The model runs in eval mode and its mode is
restored. Models with in-place activations (torchvision's ResNet) are attributed on a
deep copy with ``inplace`` switched off, because an in-place op can overwrite a tensor
that autograd or a Captum hook still needs; the user's module is never modified.
Every hook is registered inside ``try``/``finally`` (Captum's own included).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from convscope.data.classes import class_names_for
from convscope.data.images import fit_to_spec
from convscope.data.spec import InputImage
from convscope.errors import ConvscopeError, LayerError, ModelError
from convscope.models.loaded import LoadedModel
from convscope.models.modes import evaluating
from convscope.naming import close_matches
from convscope.probe.activations import borrowed_hooks, resolve_layers
from convscope.probe.base import FigureResult, short_repr
from convscope.probe.classes import one_class
from convscope.probe.exclusive import needs_loaded, one_at_a_time

if TYPE_CHECKING:
    from matplotlib.figure import Figure

METHODS = ("saliency", "gradcam", "ig", "occlusion")
"""The four classic methods, in the order they are drawn: what ``all`` means."""

MORE_METHODS = ("smoothgrad", "gradshap", "deeplift", "guided-gradcam")
"""Further methods, asked for by name: SmoothGrad (saliency averaged over noisy copies),
GradientSHAP (expected gradients from noisy points between baseline and input),
DeepLift (rescale rule, exact completeness) and Guided Grad-CAM (guided backprop x CAM)."""

KNOWN_METHODS = METHODS + MORE_METHODS

METHOD_LABELS = {
    "saliency": "Saliency",
    "gradcam": "Grad-CAM",
    "ig": "Integrated gradients",
    "occlusion": "Occlusion",
    "smoothgrad": "SmoothGrad",
    "gradshap": "GradientSHAP",
    "deeplift": "DeepLift",
    "guided-gradcam": "Guided Grad-CAM",
}
SIGNED_METHODS = frozenset({"ig", "occlusion", "gradshap", "deeplift", "guided-gradcam"})
"""Methods whose maps keep a sign (drawn with a diverging colour map)."""

BASELINES = ("black", "white", "mean")
"""Reference inputs for integrated gradients and occlusion: an all-black image, an
all-white image, or the normalisation mean (a zero model input)."""

_ALIASES = {
    "integrated-gradients": "ig",
    "integrated_gradients": "ig",
    "grad-cam": "gradcam",
    "grad_cam": "gradcam",
    "gradient": "saliency",
    "smooth-grad": "smoothgrad",
    "gradient-shap": "gradshap",
    "gradientshap": "gradshap",
    "deep-lift": "deeplift",
    "guided_gradcam": "guided-gradcam",
    "guidedgradcam": "guided-gradcam",
    "guided-grad-cam": "guided-gradcam",
}

DEFAULT_SAMPLES = 16
"""Noisy samples of SmoothGrad and GradientSHAP."""

DEFAULT_STEPS = 50


@dataclass(frozen=True)
class MethodMap:
    """One method's attribution map (H x W at the model's input size) and how it was made.

    ``values``: saliency = max over channels of |gradient|; Grad-CAM = the layer map
    upsampled (``layer_values`` keeps it at the layer's resolution); integrated
    gradients = sum over channels; occlusion = the score drop per pixel.
    """

    __repr__ = short_repr

    method: str
    values: np.ndarray
    layer: str | None = None
    layer_values: np.ndarray | None = None
    completeness_error: float | None = None
    options: dict[str, Any] = field(default_factory=dict)
    note: str | None = None

    @property
    def signed(self) -> bool:
        """Whether the map keeps a sign (integrated gradients, occlusion)."""
        return self.method in SIGNED_METHODS

    @property
    def label(self) -> str:
        """Human name of the method."""
        return METHOD_LABELS[self.method]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no arrays): method, min, max and the method's settings."""
        data: dict[str, Any] = {"method": self.method}
        if self.layer is not None:
            data["layer"] = self.layer
        data["min"] = float(self.values.min())
        data["max"] = float(self.values.max())
        if self.completeness_error is not None:
            data["completeness_error"] = self.completeness_error
        data.update(self.options)
        if self.note:
            data["note"] = self.note
        return data


@dataclass
class AttributionResult(FigureResult):
    """Attribution maps of one input for one target class, with the image they explain."""

    model: str
    image: str
    pixels: np.ndarray
    target: int
    target_name: str
    predicted: int
    predicted_name: str
    score: str
    target_score: float
    target_probability: float
    maps: list[MethodMap]
    class_names: tuple[str, ...]
    label: str | None = None
    model_weights: str = ""

    def map(self, method: str) -> MethodMap:
        """The map of ``method`` (``saliency``, ``gradcam``, ``ig`` or ``occlusion``)."""
        for entry in self.maps:
            if entry.method == method:
                return entry
        raise KeyError(method)

    def stacked(self) -> np.ndarray:
        """All maps as one ``M x H x W`` float32 array, in :attr:`maps` order."""
        return np.stack([m.values for m in self.maps]).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the CLI contract's keys plus score kind, probability and label."""
        data: dict[str, Any] = {
            "model": self.model,
            "weights": self.model_weights,
            "image": self.image,
            "target": self.target,
            "target_name": self.target_name,
            "predicted": self.predicted,
            "predicted_name": self.predicted_name,
            "score": self.score,
            "target_score": self.target_score,
            "target_probability": self.target_probability,
            "methods": [m.to_dict() for m in self.maps],
        }
        if self.label is not None:
            data["label"] = self.label
        return data

    def figure(self, **options: Any) -> Figure:
        """The input and each method's map overlaid on it (see ``attribution_figure``)."""
        from convscope.render.attribution import attribution_figure

        return attribution_figure([self], **options)

    def __rich__(self) -> Any:
        from convscope.render.attribution import attribution_table

        return attribution_table([self])


def parse_methods(text: str | Sequence[str]) -> list[str]:
    """``"saliency,ig"`` or ``"all"`` -> method names; an unknown name is a user error."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    methods: list[str] = []
    for part in (p.strip().lower() for p in parts):
        if not part:
            raise ConvscopeError(
                f"empty method name in {text!r}; separate methods with single commas, "
                "e.g. saliency,gradcam"
            )
        if part == "all":
            methods += [m for m in METHODS if m not in methods]
            continue
        method = _ALIASES.get(part, part)
        if method not in KNOWN_METHODS:
            raise ConvscopeError(
                f"unknown attribution method {part!r}{close_matches(part, KNOWN_METHODS)} "
                f"(methods: {', '.join(KNOWN_METHODS)}, or all for the first four)"
            )
        if method not in methods:
            methods.append(method)
    if not methods:
        raise ConvscopeError(f"no attribution method given; use {', '.join(METHODS)} or all")
    return methods


def resolve_target(target: int | str | None, class_names: Sequence[str]) -> int | None:
    """The one class index ``target`` names (``None`` stays ``None``: the prediction).

    The grammar and messages are :mod:`convscope.probe.classes`'s, as for ``maximize``.
    """
    return None if target is None else one_class(target, class_names)


@one_at_a_time
def attribute(
    model: LoadedModel,
    image: str | InputImage | np.ndarray,
    methods: Sequence[str] | str = METHODS,
    *,
    target: int | str | None = None,
    layer: str | None = None,
    steps: int = DEFAULT_STEPS,
    window: int | None = None,
    stride: int | None = None,
    baseline: str = "black",
    name: str | None = None,
    index: int = 0,
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
) -> AttributionResult:
    """Attribute the score of ``target`` (default: the predicted class) for one image.

    ``image`` is a SPEC (``mnist:test:12``, a file, ``sample:china``; of several images
    the one at ``index``, default the first), an :class:`InputImage` or uint8 pixels of
    any size (fitted to the model's input like every other input). ``methods``: names
    from :data:`KNOWN_METHODS` or ``"all"`` (:data:`METHODS`). ``layer`` is the layer
    of Grad-CAM and Guided Grad-CAM (default: the last convolution the forward pass
    calls); ``steps`` the integration steps of integrated gradients; ``window``/``stride``
    the occlusion patch in pixels (default: about 1/7 of the input side, half of that);
    ``baseline`` the reference input of integrated gradients, GradientSHAP, DeepLift
    and occlusion (see :data:`BASELINES`); ``samples`` and ``seed`` the noisy copies of
    SmoothGrad and GradientSHAP (their own generator: the global random state is untouched).
    """
    needs_loaded(model, "attribute")
    from convscope.data.stream import names_images, pick_image

    if names_images(image):  # a SPEC, a path or a Pillow image
        image, _ = pick_image(image, index, input_spec=model.input_spec)
    if not isinstance(image, InputImage):
        image = InputImage(name or "image", np.asarray(image))
    elif name is not None:
        image = InputImage(name, image.pixels, image.label, image.label_name)
    return attribute_images(
        model,
        [image],
        methods,
        target=target,
        layer=layer,
        steps=steps,
        window=window,
        stride=stride,
        baseline=baseline,
        samples=samples,
        seed=seed,
    )[0]


@one_at_a_time
def attribute_images(
    model: LoadedModel,
    images: Sequence[InputImage],
    methods: Sequence[str] | str = METHODS,
    *,
    target: int | str | None = None,
    layer: str | None = None,
    steps: int = DEFAULT_STEPS,
    window: int | None = None,
    stride: int | None = None,
    baseline: str = "black",
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
) -> list[AttributionResult]:
    """:func:`attribute` for each image (each with its own predicted class by default)."""
    needs_loaded(model, "attribute")
    chosen = parse_methods(methods)
    if baseline not in BASELINES:
        raise ConvscopeError(f"unknown baseline {baseline!r}; use one of {', '.join(BASELINES)}")
    if steps < 2:
        raise ConvscopeError("--steps must be at least 2")
    if samples < 1:
        raise ConvscopeError(f"--samples must be at least 1, got {samples}")
    for option, value in (("window", window), ("stride", stride)):
        if value is not None and value < 1:
            raise ConvscopeError(f"--{option} must be at least 1 pixel, got {value}")
    if layer is not None and not {"gradcam", "guided-gradcam"} & set(chosen):
        raise ConvscopeError("--layer chooses Grad-CAM's layer; add gradcam to --method")
    settings = {"target": target, "layer": layer, "steps": steps, "window": window,
                "stride": stride, "baseline": baseline, "samples": samples, "seed": seed}  # fmt: skip
    with _attribution_module(model.module) as module:
        return [_attribute_one(model, module, image, chosen, **settings) for image in images]


def _attribute_one(
    model: LoadedModel,
    module: nn.Module,
    image: InputImage,
    methods: list[str],
    *,
    target: int | str | None,
    layer: str | None,
    steps: int,
    window: int | None,
    stride: int | None,
    baseline: str,
    samples: int,
    seed: int,
) -> AttributionResult:
    """One image's maps, on the module :func:`_attribution_module` prepared."""
    spec = model.input_spec
    shown = fit_to_spec(image.pixels, spec)
    x = spec.normalize(shown[None, ..., None] if shown.ndim == 2 else shown[None])
    base = _baseline(baseline, model)
    outputs, calls = _forward(module, x, model.name)
    count = outputs.shape[1]
    classes = class_names_for(model.class_names, count)
    probs = outputs if model.outputs_probabilities else torch.softmax(outputs, dim=1)
    predicted = int(outputs.argmax(dim=1))
    index = resolve_target(target, classes)
    index = predicted if index is None else index
    maps = []
    for method in methods:
        if method == "saliency":
            maps.append(_saliency(module, x, index))
        elif method == "gradcam":
            maps.append(_gradcam(module, x, index, layer, calls))
        elif method == "ig":
            maps.append(_integrated_gradients(module, x, base, index, steps, baseline, outputs))
        elif method == "occlusion":
            maps.append(_occlusion(module, x, base, index, window, stride, baseline))
        elif method == "smoothgrad":
            maps.append(_smoothgrad(module, x, index, samples, seed))
        elif method == "gradshap":
            maps.append(_gradshap(module, x, base, index, samples, seed, baseline, outputs))
        elif method == "deeplift":
            maps.append(_deeplift(module, x, base, index, baseline, outputs, model.name))
        else:
            maps.append(_guided_gradcam(module, x, index, layer, calls, model.name))
    return AttributionResult(
        model=model.name,
        model_weights=model.weights,
        image=image.name,
        pixels=shown,
        target=index,
        target_name=classes[index],
        predicted=predicted,
        predicted_name=classes[predicted],
        score="probability" if model.outputs_probabilities else "logit",
        target_score=float(outputs[0, index]),
        target_probability=float(probs[0, index]),
        maps=maps,
        class_names=classes,
        label=image.label_name,
    )


# --------------------------------------------------------------------------- the model


@contextmanager
def _attribution_module(module: nn.Module) -> Iterator[nn.Module]:
    """The module to attribute, in eval mode: a copy without in-place ops where it has any."""
    inplace = [m for m in module.modules() if getattr(m, "inplace", False) is True]
    if inplace:
        module = copy.deepcopy(module)
        for sub in module.modules():
            if getattr(sub, "inplace", False) is True:
                sub.inplace = False
    with evaluating(module, grad=True):
        yield module


def _forward(
    module: nn.Module, x: torch.Tensor, name: str
) -> tuple[torch.Tensor, list[tuple[str, list[int] | None]]]:
    """The outputs for ``x`` and every module call in order, as ``(name, output shape)``."""
    calls: list[tuple[str, list[int] | None]] = []
    names = {id(m): n for n, m in module.named_modules() if n}

    def hook(sub: nn.Module, _inputs: object, output: object) -> None:
        shape = list(output.shape) if isinstance(output, torch.Tensor) else None
        calls.append((names[id(sub)], shape))

    subs = [(sub, hook) for sub in module.modules() if id(sub) in names]
    try:
        with borrowed_hooks(subs), torch.no_grad():
            outputs = module(x)
    except RuntimeError as exc:
        cause = " ".join(str(exc).split())[:160]
        raise ModelError(f"{name}: the input does not run through the model ({cause})") from exc
    if not isinstance(outputs, torch.Tensor) or outputs.ndim != 2:
        shape = tuple(outputs.shape) if isinstance(outputs, torch.Tensor) else type(outputs)
        raise ModelError(
            f"{name}: attribution needs one score per class (an N x classes output), got {shape}"
        )
    return outputs, calls


def _baseline(kind: str, model: LoadedModel) -> torch.Tensor:
    """The baseline input (1 x C x H x W) in the model's normalised space."""
    spec = model.input_spec
    if kind == "mean":
        return torch.zeros(1, *spec.shape)
    value = 0 if kind == "black" else 255
    return spec.normalize(np.full((1, spec.height, spec.width, spec.channels), value, np.uint8))


def _leaf(x: torch.Tensor) -> torch.Tensor:
    """A fresh copy of the input that autograd may differentiate with respect to."""
    return x.detach().clone().requires_grad_(True)


def _spatial(attribution: torch.Tensor) -> np.ndarray:
    return attribution.detach().to(torch.float32).numpy()[0]


# --------------------------------------------------------------------------- methods


def _completeness_error(
    module: nn.Module,
    attributions: torch.Tensor,
    outputs: torch.Tensor,
    base: torch.Tensor,
    target: int,
) -> float:
    """How far the attributions' sum is from ``f(x) - f(baseline)``, relative to that gap."""
    with torch.no_grad():
        gap = float(outputs[0, target] - module(base)[0, target])
    return abs(float(attributions.detach().sum()) - gap) / max(abs(gap), 1e-12)


def _summed_map(
    method: str,
    attributions: torch.Tensor,
    error: float,
    tolerance: float,
    why: str,
    options: dict[str, Any],
) -> MethodMap:
    """A signed map summed over channels, with its completeness and a note past ``tolerance``."""
    note = None
    if error > tolerance:
        note = f"sum of attributions is {error:.0%} off f(x) - f(baseline) ({why})"
    return MethodMap(
        method,
        _spatial(attributions).sum(axis=0),
        completeness_error=round(error, 6),
        options=options,
        note=note,
    )


def _noisy_copies(x: torch.Tensor, samples: int, seed: int) -> torch.Tensor:
    """``samples`` copies of ``x`` with Gaussian noise of 15% of its value range.

    Drawn from a generator of our own: Captum's noise tunnel draws from torch's global
    random state, which a probe must neither depend on nor change.
    """
    generator = torch.Generator().manual_seed(seed)
    spread = float(x.max() - x.min()) or 1.0
    noise = torch.randn((samples, *x.shape[1:]), generator=generator) * (NOISE_LEVEL * spread)
    return x.detach() + noise


NOISE_LEVEL = 0.15
"""SmoothGrad's and GradientSHAP's noise, as a share of the input's value range."""


def _smoothgrad(
    module: nn.Module, x: torch.Tensor, target: int, samples: int, seed: int
) -> MethodMap:
    from captum.attr import Saliency

    grads = Saliency(module).attribute(
        _noisy_copies(x, samples, seed).requires_grad_(True), target=target, abs=True
    )
    mean = grads.detach().mean(dim=0, keepdim=True)
    options = {"samples": samples, "noise": NOISE_LEVEL, "reduce": "max |grad| over channels"}
    return MethodMap("smoothgrad", _spatial(mean).max(axis=0), options=options)


def _gradshap(
    module: nn.Module,
    x: torch.Tensor,
    base: torch.Tensor,
    target: int,
    samples: int,
    seed: int,
    baseline: str,
    outputs: torch.Tensor,
) -> MethodMap:
    """Expected gradients: at points ``b + a (x' - b)`` (``x'`` noisy, ``a ~ U(0, 1)``),
    the gradient times ``x' - b``, averaged; Captum's GradientShap with our own noise."""
    from captum.attr import Saliency

    generator = torch.Generator().manual_seed(seed + 1)
    noisy = _noisy_copies(x, samples, seed)
    alphas = torch.rand((samples, 1, 1, 1), generator=generator)
    points = (base + alphas * (noisy - base)).requires_grad_(True)
    grads = Saliency(module).attribute(points, target=target, abs=False).detach()
    attributions = (grads * (noisy - base)).mean(dim=0, keepdim=True)
    error = _completeness_error(module, attributions, outputs, base, target)
    options = {"samples": samples, "noise": NOISE_LEVEL, "baseline": baseline,
               "reduce": "sum over channels"}  # fmt: skip
    why = "a sampled estimate: more --samples bring it closer"
    return _summed_map("gradshap", attributions, error, 0.25, why, options)


def _deeplift(
    module: nn.Module,
    x: torch.Tensor,
    base: torch.Tensor,
    target: int,
    baseline: str,
    outputs: torch.Tensor,
    name: str,
) -> MethodMap:
    from captum.attr import DeepLift

    try:
        attributions = DeepLift(module).attribute(_leaf(x), baselines=base, target=target)
    except (AssertionError, RuntimeError) as exc:
        cause = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise ModelError(
            f"{name}: DeepLift cannot run through this model ({cause}); try ig or gradshap"
        ) from exc
    error = _completeness_error(module, attributions, outputs, base, target)
    why = "the model has operations DeepLift treats as plain gradients"
    options = {"baseline": baseline, "reduce": "sum over channels"}
    return _summed_map("deeplift", attributions, error, 0.05, why, options)


def _guided_gradcam(
    module: nn.Module,
    x: torch.Tensor,
    target: int,
    layer: str | None,
    calls: list[tuple[str, list[int] | None]],
    name: str,
) -> MethodMap:
    """Guided backpropagation times this Grad-CAM map (placed on the input as drawn).

    Built from the two parts, not Captum's ``GuidedGradCam``: that one upsamples the CAM
    by stretching (wrong after valid convolutions) and gave all-zero maps on LeNet-5.
    """
    from captum.attr import GuidedBackprop

    cam = _gradcam(module, x, target, layer, calls)
    guided = GuidedBackprop(module).attribute(_leaf(x), target=target).detach()
    product = _spatial(guided) * cam.values[None]
    return MethodMap(
        "guided-gradcam",
        product.sum(axis=0),
        layer=cam.layer,
        options={"layer_shape": cam.options["layer_shape"], "reduce": "sum over channels"},
        note=cam.note,
    )


def _saliency(module: nn.Module, x: torch.Tensor, target: int) -> MethodMap:
    from captum.attr import Saliency

    grads = Saliency(module).attribute(_leaf(x), target=target, abs=True)
    return MethodMap("saliency", _spatial(grads).max(axis=0), options={"reduce": "max |grad|"})


def _integrated_gradients(
    module: nn.Module,
    x: torch.Tensor,
    base: torch.Tensor,
    target: int,
    steps: int,
    baseline: str,
    outputs: torch.Tensor,
) -> MethodMap:
    from captum.attr import IntegratedGradients

    attributions = IntegratedGradients(module).attribute(
        _leaf(x),
        baselines=base,
        target=target,
        n_steps=steps,
        method="gausslegendre",
        internal_batch_size=min(steps, 32),
    )
    error = _completeness_error(module, attributions, outputs, base, target)
    note = None
    if error > 0.05:
        note = f"sum of attributions is {error:.0%} off f(x) - f(baseline); use more --steps"
    return MethodMap(
        "ig",
        _spatial(attributions).sum(axis=0),
        completeness_error=round(error, 6),
        options={"steps": steps, "baseline": baseline, "reduce": "sum over channels"},
        note=note,
    )


def _occlusion(
    module: nn.Module,
    x: torch.Tensor,
    base: torch.Tensor,
    target: int,
    window: int | None,
    stride: int | None,
    baseline: str,
) -> MethodMap:
    from captum.attr import Occlusion

    _, channels, height, width = x.shape
    side = min(height, width)
    window = window or max(2, round(side / 7))
    stride = stride or max(1, window // 2)
    if not 1 <= window <= side:
        raise ConvscopeError(
            f"--window must be between 1 and {side} (the input is {height}x{width})"
        )
    if stride < 1:
        raise ConvscopeError("--stride must be at least 1")
    attributions = Occlusion(module).attribute(
        x.detach().clone(),
        sliding_window_shapes=(channels, window, window),
        strides=(channels, stride, stride),
        baselines=base,
        target=target,
        perturbations_per_eval=16,
    )
    return MethodMap(
        "occlusion",
        _spatial(attributions).mean(axis=0),
        options={"window": window, "stride": stride, "baseline": baseline},
    )


def _gradcam(
    module: nn.Module,
    x: torch.Tensor,
    target: int,
    layer: str | None,
    calls: list[tuple[str, list[int] | None]],
) -> MethodMap:
    from captum.attr import LayerAttribution, LayerGradCam

    name, count, shape = _gradcam_layer(module, layer, calls)
    target_layer = resolve_layers(module, [name])[name]
    cam = (
        LayerGradCam(module, target_layer)
        .attribute(_leaf(x), target=target, relu_attributions=True)
        .detach()
    )
    size = tuple(x.shape[2:])
    placement = "stretched"
    if size[0] % shape[2] or size[1] % shape[3]:
        centres = receptive_field_centres(module, name, x)
        if centres is not None:
            placement = "receptive-field"
            upsampled = torch.from_numpy(place_map(_spatial(cam)[0], *centres, size))[None, None]
    if placement == "stretched":
        upsampled = LayerAttribution.interpolate(cam, size, interpolate_mode="bilinear")
    note = None
    if count > 1:
        note = f"{name} runs {count} times in one forward pass; its last call is used"
    if float(cam.max()) <= 0:
        note = "the map is zero: no channel of this layer raises the target's score here"
    return MethodMap(
        "gradcam",
        _spatial(upsampled)[0],
        layer=name,
        layer_values=_spatial(cam)[0],
        options={"layer_shape": list(shape[1:]), "placement": placement},
        note=note,
    )


def receptive_field_centres(
    module: nn.Module, layer: str, x: torch.Tensor, samples: int = 4
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """Where the layer's cells sit on the input: ``((row0, row_step), (col0, col_step))``.

    A layer after valid (unpadded) convolutions covers only the middle of the input
    (LeNet-5's ``conv2d_2``: 8 x 8 cells centred on input rows 6.5, 8.5, ..., 20.5), so
    stretching its map over the whole image misplaces it. The centre of a cell is
    measured as the centre of mass of the input gradient of two cells (a quarter
    from either end) over a few random inputs; ``None`` where that fails.
    """
    from convscope.probe.activations import capture

    _, channels, height, width = x.shape
    seed = torch.Generator().manual_seed(0)
    probe = torch.randn(2 * samples, channels, height, width, generator=seed)
    probe.requires_grad_(True)
    with capture(module, [layer], detach=False) as captured:
        module(probe)
    out = captured.output(layer)
    h, w = out.shape[2], out.shape[3]
    cells = [(h // 4, w // 4), (h - 1 - h // 4, w - 1 - w // 4)]
    loss = out[:samples, :, cells[0][0], cells[0][1]].sum()
    loss = loss + out[samples:, :, cells[1][0], cells[1][1]].sum()
    (grad,) = torch.autograd.grad(loss, probe)
    masses = [grad[:samples].abs().sum((0, 1)), grad[samples:].abs().sum((0, 1))]
    centres = []
    for mass in masses:
        total = float(mass.sum())
        if not np.isfinite(total) or total <= 0:
            return None
        rows = float((mass.sum(1) * torch.arange(height)).sum()) / total
        cols = float((mass.sum(0) * torch.arange(width)).sum()) / total
        centres.append((rows, cols))
    geometry = []
    for axis, cells_on_axis in ((0, (cells[0][0], cells[1][0])), (1, (cells[0][1], cells[1][1]))):
        first, last = centres[0][axis], centres[1][axis]
        span = cells_on_axis[1] - cells_on_axis[0]
        step = (last - first) / span if span else float(x.shape[2 + axis]) / out.shape[2 + axis]
        if step <= 0:
            return None
        if abs(step - round(step)) < 0.15:  # strides multiply to whole numbers
            step = float(round(step))
        start = (first - cells_on_axis[0] * step + last - cells_on_axis[1] * step) / 2
        geometry.append((start, step))
    return geometry[0], geometry[1]


def place_map(
    values: np.ndarray,
    rows: tuple[float, float],
    cols: tuple[float, float],
    size: tuple[int, int],
) -> np.ndarray:
    """Resample a layer map onto the input grid, cell ``i`` centred at ``start + i * step``.

    Bilinear between cell centres, fading to zero one step beyond the outer cells
    (where no cell of the layer is centred, there is nothing to show).
    """
    padded = np.pad(values.astype(np.float64), 1)  # a ring of zeros one step outside

    def weights(count: int, start: float, step: float, cells: int) -> np.ndarray:
        u = np.clip((np.arange(count) - start) / step + 1, 0, cells + 1)
        low = np.minimum(np.floor(u).astype(int), cells + 1)
        high = np.minimum(low + 1, cells + 1)
        frac = u - low
        matrix = np.zeros((count, cells + 2))
        matrix[np.arange(count), low] += 1 - frac
        matrix[np.arange(count), high] += frac
        return matrix

    row_w = weights(size[0], *rows, values.shape[0])
    col_w = weights(size[1], *cols, values.shape[1])
    return (row_w @ padded @ col_w.T).astype(np.float32)


def _gradcam_layer(
    module: nn.Module, layer: str | None, calls: list[tuple[str, list[int] | None]]
) -> tuple[str, int, list[int]]:
    """Grad-CAM's layer (given, or the last convolution called), its call count and shape."""
    if layer is None:
        subs = dict(module.named_modules())
        convs = [n for n, shape in calls if _is_conv(subs[n]) and shape and len(shape) == 4]
        if not convs:
            raise LayerError(
                "the model has no convolution layer with a spatial output for Grad-CAM; "
                "choose a layer with --layer (see `convscope layers MODEL`)"
            )
        layer = convs[-1]
    resolve_layers(module, [layer])
    shapes = [shape for n, shape in calls if n == layer]
    if not shapes:
        raise LayerError(f"layer {layer!r} is not called in the forward pass; choose another")
    if shapes[-1] is None or len(shapes[-1]) != 4:
        raise LayerError(
            f"Grad-CAM needs a layer with an N x C x H x W output; {layer!r} outputs "
            f"{shapes[-1]} (choose a convolution or pooling layer)"
        )
    return layer, len(shapes), shapes[-1]


def _is_conv(module: nn.Module) -> bool:
    """A convolution: a torch conv layer, or a childless module whose class says Conv."""
    if isinstance(module, nn.modules.conv._ConvNd):
        return True
    return "conv" in type(module).__name__.lower() and next(iter(module.children()), None) is None
