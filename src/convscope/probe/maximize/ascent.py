"""The batched gradient ascent of every start of every target, its settings and results.

All starts of all targets run as one batch; a target stops when its objective levels
off, and each ends with an honest status (see :data:`convscope.probe.maximize.result.STATUSES`).
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

from convscope.data.preprocess import InputSpec
from convscope.errors import ConvscopeError
from convscope.models.loaded import LoadedModel
from convscope.probe.activations import capture
from convscope.probe.exclusive import needs_loaded, one_at_a_time
from convscope.probe.maximize.image import (
    ImageParam,
    _normalize,
    random_affine,
    resolve_param,
    total_variation,
)
from convscope.probe.maximize.result import MaximizeResult, TargetResult
from convscope.probe.maximize.targets import (
    ModelOutputError,
    Target,
    _frozen,
    maximize_targets,
    model_classes,
)

if TYPE_CHECKING:
    pass

OBJECTIVES = ("logit", "prob", "mean")
"""What is climbed: a class logit, a class probability, or a channel's mean activation."""

PARAMETERISATIONS = ("auto", "pixel", "fourier")
"""How the image is parameterised; ``auto`` is Fourier (decorrelated colour for RGB)."""

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


# --------------------------------------------------------------------------------------------
# image parameterisations


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
    needs_loaded(model, "maximize")
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
