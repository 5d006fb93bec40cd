"""Activation-maximisation figures: one panel per target, and the convergence traces.

The grid follows the LeNet-5 reference's last figure (ten classes, 2x5, gray digits) and
adds what the reference left out: the probability each result reaches, its status, a
shared pixel scale, and the objective per step. A target that failed (no gradient) gets
a panel that says so instead of an image of noise. Object API only (no pyplot).
"""

from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from convscope.models.provenance import model_title

if TYPE_CHECKING:
    from convscope.probe.maximize import MaximizeResult, TargetResult

STATUS_COLORS = {
    "converged": "black",
    "step-limit": "black",
    "stalled": "darkorange",
    "vanishing-gradient": "firebrick",
}
OBJECTIVE_LABELS = {"logit": "logit", "prob": "probability", "mean": "mean activation"}


def grid_shape(count: int, ncols: int | None = None) -> tuple[int, int]:
    """Rows and columns for ``count`` panels: 2x5 for ten, at most 8 columns otherwise."""
    if ncols is None:
        ncols = 5 if count == 10 else min(count, 8 if count > 10 else 6)
    ncols = max(1, min(ncols, count))
    return math.ceil(count / ncols), ncols


def panel_title(result: TargetResult) -> str:
    """Two lines: the target, then its probability (classes) or score (channels)."""
    target = result.target
    head = f"class {target.label}" if target.kind == "class" else target.name
    if result.status == "vanishing-gradient":
        return f"{head}\nno gradient"
    score = f"p = {result.prob:.3f}" if result.prob is not None else f"mean = {result.score:.3g}"
    if result.status == "stalled":
        score += " (stalled)"
    return f"{head}\n{score}"


def _draw_panel(ax: Axes, result: TargetResult, channels: int, cmap: str) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    color = STATUS_COLORS.get(result.status, "black")
    ax.set_title(panel_title(result), fontsize=9, color=color)
    if result.drawn:
        if channels == 1:
            ax.imshow(result.image, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            ax.imshow(np.clip(result.image, 0.0, 1.0), interpolation="nearest")
        top = result.top[0][0] if result.top else None
        if result.target.kind == "class" and top is not None and top != result.target.label:
            ax.set_xlabel(f"classified as {top}", fontsize=8, color="darkorange")
        return
    height, width = result.image.shape[:2]
    ax.imshow(np.full((height, width), 0.92), cmap="gray", vmin=0, vmax=1)
    text = "\n".join(textwrap.wrap(_short_reason(result), 16))
    ax.text(
        width / 2 - 0.5,
        height / 2 - 0.5,
        text,
        ha="center",
        va="center",
        fontsize=7,
        color=color,
    )


def _short_reason(result: TargetResult) -> str:
    if result.status == "vanishing-gradient":
        return "gradient vanishes at every start: nothing to draw"
    return "objective did not rise: nothing to draw"


def _settings_line(result: MaximizeResult) -> str:
    s = result.settings
    parts = [
        f"{s.starts} starts (best shown)",
        f"up to {s.steps} steps, Adam lr {s.lr:g}",
        f"{result.param} parameterisation",
        f"jitter {s.jitter} px, scale ±{s.scale:.0%}, rotation ±{s.rotate:g}°",
    ]
    if s.blur_every and s.blur_sigma:
        parts.append(f"blur σ {s.blur_sigma:g} every {s.blur_every}")
    parts.append(f"TV {s.tv:g}, L2 {s.l2:g}")
    return " · ".join(parts)


def plot_maximize(
    result: MaximizeResult,
    *,
    trace: bool = True,
    ncols: int | None = None,
    cmap: str = "gray",
    title: str | None = None,
) -> Figure:
    """The best synthesised input of each target in a grid, with its convergence trace below.

    Gray models use ``cmap`` on a fixed 0-1 pixel scale with one colour bar; RGB models
    show their colours. ``trace=False`` leaves out the trace of the objective.
    """
    targets = result.targets
    rows, cols = grid_shape(len(targets), ncols)
    side = {1: 3.2, 2: 3.0, 3: 2.6, 4: 2.3}.get(cols, 1.75)  # inches per panel
    grid_height = rows * (side + 0.45)
    trace_height = 2.4 if trace else 0.0
    fig = Figure(
        figsize=(max(cols * side + 1.2, 6.0), grid_height + trace_height + 0.8),
        layout="constrained",
    )
    if trace:  # sub-figures: the trace's legend must not push the colour bar away
        top, bottom = fig.subfigures(2, 1, height_ratios=[grid_height, trace_height])
    else:
        top, bottom = fig, None
    axes = np.atleast_1d(top.subplots(rows, cols, squeeze=False)).ravel()
    for ax, target in zip(axes, targets, strict=False):
        _draw_panel(ax, target, result.channels, cmap)
    for ax in axes[len(targets) :]:
        ax.set_visible(False)
    if result.channels == 1 and any(t.drawn for t in targets):
        mappable = ScalarMappable(norm=Normalize(0.0, 1.0), cmap=cmap)
        top.colorbar(mappable, ax=list(axes), shrink=0.8, label="pixel value", aspect=30)
    if bottom is not None:
        _draw_traces(bottom.subplots(), result)
    kind = "class" if targets[0].target.kind == "class" else "channel"
    what = OBJECTIVE_LABELS.get(result.objective, result.objective)
    if len(targets) == 1:
        only = targets[0].target
        name = f"class {only.label}" if only.kind == "class" else only.name
        heading = f"{model_title(result.model, result.model_weights)}: the input synthesised to maximise the {what} of {name}"
    else:
        heading = f"{model_title(result.model, result.model_weights)}: inputs synthesised to maximise each {kind} {what}"
    heading = title or heading
    fig.suptitle(f"{heading}\n{_settings_line(result)}", fontsize=10)
    return fig


def smooth(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Running mean of ``values`` over ``window`` steps: ``(steps, means)``, steps from 1."""
    window = max(1, min(window, len(values)))
    means = np.convolve(values, np.ones(window) / window, mode="valid")
    steps = np.arange(len(means)) + (window + 1) / 2
    return steps, means


def _draw_traces(ax: Axes, result: MaximizeResult) -> None:
    """Smoothed objective per step of each target's best start; a dot marks its final score."""
    colors = _colors(len(result.targets))
    window = max(1, result.settings.steps // 32)
    for target, color in zip(result.targets, colors, strict=True):
        if target.trace.size == 0 or target.status == "vanishing-gradient":
            continue
        steps, means = smooth(target.trace[target.best_start], window)
        ax.plot(steps, means, color=color, lw=1.3, label=_label(target))
        ax.plot([target.steps], [target.score], "o", color=color, ms=4)
    if not ax.lines:
        message = "nothing to trace: the gradient vanished for every target"
        failed = STATUS_COLORS["vanishing-gradient"]
        ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color=failed)
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_xlabel("step")
    ax.set_ylabel(OBJECTIVE_LABELS.get(result.objective, result.objective))
    seen = f"running mean of {window} steps" if window > 1 else "score"
    ax.set_title(
        f"convergence of the best start ({seen} of the randomly transformed images seen "
        "during ascent; dot: final score of the image itself)",
        fontsize=9,
    )
    ax.grid(True, ls="--", alpha=0.4)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if ax.lines and 1 < len(result.targets) <= 20:
        ax.legend(
            loc="center left",
            bbox_to_anchor=(1.01, 0.5),
            fontsize=8,
            ncols=1 if len(result.targets) <= 10 else 2,
            frameon=False,
        )


def _label(target: TargetResult) -> str:
    return target.target.label if target.target.kind == "class" else target.target.name


def _colors(count: int) -> list:
    cmap = colormaps["tab10" if count <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(count)]


def plot_traces(result: MaximizeResult, *, ncols: int | None = None) -> Figure:
    """The objective per step of every start, one small panel per target (best start bold)."""
    targets = result.targets
    rows, cols = grid_shape(len(targets), ncols)
    fig = Figure(figsize=(cols * 2.4 + 0.5, rows * 2.0 + 0.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False, sharex=True)).ravel()
    for ax, target in zip(axes, targets, strict=False):
        color = STATUS_COLORS.get(target.status, "black")
        ax.set_title(f"{_label(target)}: {target.status}", fontsize=9, color=color)
        for start, values in enumerate(target.trace):
            best = start == target.best_start
            ax.plot(
                np.arange(1, len(values) + 1),
                values,
                lw=1.4 if best else 0.8,
                color="tab:blue" if best else "0.65",
                zorder=3 if best else 2,
            )
        ax.grid(True, ls="--", alpha=0.4)
    for ax in axes[len(targets) :]:
        fig.delaxes(ax)
    for ax in axes[::cols][:rows]:
        ax.set_ylabel(OBJECTIVE_LABELS.get(result.objective, result.objective), fontsize=8)
    for ax in axes[len(targets) - cols : len(targets)]:
        ax.set_xlabel("step", fontsize=8)
    fig.suptitle(
        f"{model_title(result.model, result.model_weights)}: {result.objective} per step, every start",
        fontsize=10,
    )
    return fig
