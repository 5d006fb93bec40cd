"""Drawing attribution maps: the input, then each method's map over it with a colour bar.

Each map is laid over a dimmed gray copy of the input with an opacity that grows with
the attribution's magnitude, so the image shows through where a method sees nothing.
Signed maps (integrated gradients, occlusion) use a diverging colour map centred on
zero; saliency and Grad-CAM, which are never negative, a sequential one.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from rich.console import Group
from rich.table import Table

from convscope.models.provenance import model_title

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from convscope.probe.attribute import AttributionResult, MethodMap

SEQUENTIAL_CMAP = "inferno"
DIVERGING_CMAP = "RdBu_r"
PANEL_INCHES = 2.6
MAX_ALPHA = 0.85


def _gray(pixels: np.ndarray) -> np.ndarray:
    """The input as gray values in [0, 1] (luminance for colour images)."""
    values = pixels.astype(np.float32) / 255.0
    if values.ndim == 3:
        values = values[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return values


def _norm(entry: MethodMap) -> Normalize:
    """Colour scale of one map: symmetric about zero for signed maps, from zero otherwise."""
    values = entry.values
    if entry.signed:
        limit = float(np.abs(values).max()) or 1.0
        return Normalize(vmin=-limit, vmax=limit)
    return Normalize(vmin=0.0, vmax=float(values.max()) or 1.0)


def overlay(entry: MethodMap) -> tuple[np.ndarray, ScalarMappable]:
    """RGBA of a map whose opacity follows the magnitude, and the mappable for its colour bar."""
    norm = _norm(entry)
    mappable = ScalarMappable(norm=norm, cmap=DIVERGING_CMAP if entry.signed else SEQUENTIAL_CMAP)
    rgba = mappable.to_rgba(entry.values)
    limit = max(abs(norm.vmin or 0.0), abs(norm.vmax or 0.0)) or 1.0
    strength = np.clip(np.abs(entry.values) / limit, 0.0, 1.0)
    rgba[..., 3] = MAX_ALPHA * strength**0.6
    return rgba, mappable


def method_title(entry: MethodMap) -> str:
    """Panel title: the method and its setting (layer, steps, window)."""
    if entry.method == "gradcam":
        return f"Grad-CAM\nlayer {entry.layer}"
    if entry.method == "ig":
        error = entry.completeness_error
        detail = f"{entry.options.get('steps')} steps"
        if error is not None:
            detail += f", sum off by {error:.2%}"
        return f"Integrated gradients\n{detail}"
    if entry.method == "occlusion":
        return (
            f"Occlusion (score drop)\nwindow {entry.options.get('window')}, "
            f"stride {entry.options.get('stride')}"
        )
    if entry.method == "smoothgrad":
        return f"SmoothGrad\n{entry.options.get('samples')} noisy copies, max |∂score/∂x|"
    if entry.method in ("gradshap", "deeplift"):
        detail = f"{entry.options.get('samples')} samples" if entry.method == "gradshap" else ""
        if entry.completeness_error is not None:
            detail += (", " if detail else "") + f"sum off by {entry.completeness_error:.2%}"
        return f"{entry.label}\n{detail}"
    if entry.method == "guided-gradcam":
        return f"Guided Grad-CAM\nlayer {entry.layer}"
    return "Saliency\nmax |∂score/∂x| over channels"


def _input_title(result: AttributionResult) -> str:
    label = f"label {result.label} · " if result.label is not None else ""
    return (
        f"{result.image}\n{label}predicted {result.predicted_name}\n"
        f"target {result.target_name} (p={result.target_probability:.2f})"
    )


def attribution_figure(results: Sequence[AttributionResult], *, gray: bool = True) -> Figure:
    """One row per input: the input, then each method's map overlaid on it, with colour bars.

    ``gray=False`` shows colour inputs in colour under the maps.
    """
    if not results:
        raise ValueError("nothing to draw: no attribution results")
    methods = len(results[0].maps)
    cols = 1 + methods
    fig = Figure(
        figsize=(PANEL_INCHES * cols + 0.6, (PANEL_INCHES + 0.3) * len(results) + 0.4),
        layout="constrained",
    )
    grid = fig.add_gridspec(len(results), cols)
    for row, result in enumerate(results):
        base = _gray(result.pixels)
        shown_input = result.pixels if result.pixels.ndim == 3 else base
        ax = fig.add_subplot(grid[row, 0])
        ax.imshow(shown_input, cmap="gray", vmin=0, vmax=1 if shown_input is base else 255,
                  interpolation="nearest")  # fmt: skip
        _frame(ax, _input_title(result))
        spacer = fig.colorbar(ScalarMappable(), ax=ax, fraction=0.046, pad=0.03)
        spacer.ax.set_visible(False)  # the input panel keeps the size of the map panels
        under = result.pixels if (not gray and result.pixels.ndim == 3) else base
        for col, entry in enumerate(result.maps, start=1):
            ax = fig.add_subplot(grid[row, col])
            if under is base:
                ax.imshow(0.25 + 0.5 * base, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            else:
                ax.imshow(under, interpolation="nearest")
            rgba, mappable = overlay(entry)
            ax.imshow(rgba, interpolation="nearest")
            _frame(ax, method_title(entry))
            bar = fig.colorbar(mappable, ax=ax, fraction=0.046, pad=0.03)
            bar.ax.tick_params(labelsize=7)
            bar.ax.yaxis.get_offset_text().set_fontsize(7)
            if entry.signed:
                bar.set_label("− against · for +", fontsize=7)
            if entry.note:
                note = "\n".join(textwrap.wrap(entry.note, 44))  # within its own panel
                ax.set_xlabel(note, fontsize=6.5, color="#b3261e")
    first = results[0]
    fig.suptitle(
        f"{model_title(first.model, first.model_weights)}: what drives the {first.score} of the target class",
        fontsize=12,
        fontweight="bold",
    )
    return fig


def _frame(ax: Axes, title: str) -> None:
    ax.set_title(title, fontsize=8.5)
    ax.set_xticks([])
    ax.set_yticks([])


def attribution_table(results: Sequence[AttributionResult]) -> Group:
    """Terminal tables, one per input: each method's value range and notes."""
    tables = []
    for result in results:
        title = f"{model_title(result.model, result.model_weights)} · {result.image}"
        table = Table(
            title=title,
            min_width=len(title),
            caption=(
                f"target {result.target_name} ({result.score} {result.target_score:.4g}, "
                f"p={result.target_probability:.3f}) · predicted {result.predicted_name}"
                + (f" · label {result.label}" if result.label is not None else "")
            ),
            caption_justify="left",
        )
        table.add_column("method", style="cyan")
        table.add_column("min", justify="right")
        table.add_column("max", justify="right")
        table.add_column("notes")
        for entry in result.maps:
            notes = []
            if entry.layer:
                notes.append(f"layer {entry.layer}")
            if entry.completeness_error is not None:
                notes.append(f"completeness error {entry.completeness_error:.2%}")
            if entry.method == "occlusion":
                notes.append(f"window {entry.options['window']}, stride {entry.options['stride']}")
            if entry.note:
                notes.append(entry.note)
            table.add_row(
                entry.label,
                f"{float(entry.values.min()):.3g}",
                f"{float(entry.values.max()):.3g}",
                "; ".join(notes),
            )
        tables.append(table)
    return Group(*tables)
