"""Training curves of several runs on one chart: accuracy and loss versus epoch.

Follows the reference study's chart (one colour per architecture, round markers, dashed
grid) and adds the train/validation distinction as line style. Uses matplotlib's object
API only (no pyplot), so it is safe headless and in threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import MappingProxyType

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from convscope.store.results import RunResult

# The reference study's colours for its four architectures (read-only).
STUDY_COLORS = MappingProxyType(
    {
        "sequential": "red",
        "inception": "forestgreen",
        "residual": "royalblue",
        "inception-residual": "orchid",
    }
)

TRAIN_STYLE = "--"
VALIDATION_STYLE = "-"


def run_colors(runs: Sequence[RunResult]) -> list[str]:
    """One distinct colour per run: the study colour for its model, else the next free tab10 one."""
    taken = {to_hex(c) for c in STUDY_COLORS.values()}
    spare = (to_hex(c) for c in colormaps["tab10"].colors if to_hex(c) not in taken)
    used: set[str] = set()
    colors = []
    for run in runs:
        color = STUDY_COLORS.get(run.model)
        if color is None or color in used:
            color = next(spare, None) or to_hex(colormaps["tab20"](len(colors) % 20))
        used.add(color)
        colors.append(color)
    return colors


def run_labels(runs: Sequence[RunResult]) -> list[str]:
    """A legend label per run: the model name, or the run's name where models repeat."""
    models = [run.model for run in runs]
    labels = []
    for run in runs:
        if models.count(run.model) == 1:
            labels.append(run.model)
        else:
            labels.append(run.name if run.name and run.name != run.model else run.run_id)
    return labels


def _finite(epochs: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points whose value exists (NaN ones, like train loss at epoch 0, are dropped)."""
    x = np.asarray(epochs, dtype=float)
    y = np.asarray(values, dtype=float)
    keep = np.isfinite(y)
    return x[keep], y[keep]


def _plot_panel(
    ax: Axes, runs: Sequence[RunResult], metric: str, colors: list[str], labels: list[str]
) -> None:
    """Draw one metric of every run: train dashed, validation solid."""
    for run, color, label in zip(runs, colors, labels, strict=True):
        for split, style in (("train", TRAIN_STYLE), ("val", VALIDATION_STYLE)):
            x, y = _finite(run.epochs, getattr(run, f"{split}_{metric}"))
            ax.plot(
                x,
                y,
                color=color,
                linestyle=style,
                marker="o",
                markersize=4,
                linewidth=1.5,
                label=f"{label} {'train' if split == 'train' else 'validation'}",
            )
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy" if metric == "acc" else "loss")
    ax.set_title("Accuracy" if metric == "acc" else "Loss")
    ax.grid(linestyle="dashed")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _legend_handles(colors: list[str], labels: list[str]) -> list[Line2D]:
    """Proxy lines: one per model (its colour) and two black ones for the line styles."""
    handles = [
        Line2D([], [], color=c, marker="o", markersize=5, linewidth=2, label=label)
        for c, label in zip(colors, labels, strict=True)
    ]
    handles.append(Line2D([], [], color="black", linestyle=TRAIN_STYLE, label="train"))
    handles.append(Line2D([], [], color="black", linestyle=VALIDATION_STYLE, label="validation"))
    return handles


def plot_training_curves(runs: Sequence[RunResult], *, title: str | None = None) -> Figure:
    """Accuracy and loss versus epoch for several runs, side by side, legend below the axes."""
    runs = list(runs)
    colors, labels = run_colors(runs), run_labels(runs)
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    acc_ax, loss_ax = fig.subplots(1, 2)
    _plot_panel(acc_ax, runs, "acc", colors, labels)
    _plot_panel(loss_ax, runs, "loss", colors, labels)
    handles = _legend_handles(colors, labels)
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=min(len(handles), 6),
        frameon=False,
    )
    if title:
        fig.suptitle(title)
    return fig
