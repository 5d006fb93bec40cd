"""Confusion matrices as annotated heat maps: one run, or several runs on one shared scale.

Rows are true classes, columns predicted ones; cells show the row-normalised share (the
recall of that true class going to that prediction) and, when there is room, the count.
Uses matplotlib's object API only (no pyplot), so it is safe headless and in threads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from convscope.render.curves import run_labels
from convscope.store.results import RunResult

CMAP = "Blues"
MAX_CLASSES_WITH_COUNTS = 12
GRID_COUNTS_ROOM = 5  # the grid shows counts only for small matrices; each run's PNG has them


def row_shares(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (rows without samples stay zero)."""
    counts = np.asarray(matrix, dtype=float)
    sums = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, sums, out=np.zeros_like(counts), where=sums > 0)


def accuracy(matrix: np.ndarray) -> float:
    """Share of samples on the diagonal (NaN for an empty matrix)."""
    counts = np.asarray(matrix, dtype=float)
    total = counts.sum()
    return float(np.trace(counts) / total) if total > 0 else math.nan


def _check(matrix: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    """The matrix as an array, after checking it is square and matches the class names."""
    counts = np.asarray(matrix)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"a confusion matrix must be square, got shape {counts.shape}")
    if counts.shape[0] != len(class_names):
        raise ValueError(
            f"confusion matrix has {counts.shape[0]} classes but {len(class_names)} class names"
        )
    return counts


def _text_color(rgba: tuple[float, ...]) -> str:
    """Black on light cells, white on dark ones (by perceived luminance)."""
    r, g, b = rgba[:3]
    return "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"


def _cell_text(share: float, count: float, with_count: bool) -> str:
    """The annotation of one cell: the share, and the count below it when asked."""
    text = f"{share:.2f}"
    if with_count:
        text += f"\n{int(count)}" if float(count).is_integer() else f"\n{count:.3g}"
    return text


def _annotate(
    ax: Axes,
    values: np.ndarray,
    shares: np.ndarray,
    counts: np.ndarray,
    norm: Normalize,
    with_count: bool,
) -> None:
    """Write every cell's share (and count when asked) in a contrasting colour."""
    n = values.shape[0]
    size = 9 if n <= 6 else 8 if n <= 10 else 6
    cmap = colormaps[CMAP]
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                _cell_text(shares[i, j], counts[i, j], with_count),
                ha="center",
                va="center",
                fontsize=size,
                color=_text_color(cmap(norm(values[i, j]))),
            )


def _draw(
    ax: Axes,
    counts: np.ndarray,
    class_names: Sequence[str],
    norm: Normalize,
    normalize: bool,
    counts_room: int = MAX_CLASSES_WITH_COUNTS,
) -> AxesImage:
    """One annotated matrix on ``ax``; counts are shown up to ``counts_room`` classes."""
    shares = row_shares(counts)
    values = shares if normalize else np.asarray(counts, dtype=float)
    image = ax.imshow(values, cmap=CMAP, norm=norm, interpolation="nearest")
    with_count = len(class_names) <= counts_room
    _annotate(ax, values, shares, np.asarray(counts, dtype=float), norm, with_count)
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, labels=list(class_names), rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(ticks, labels=list(class_names))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.tick_params(length=0)
    return image


def _norm(values: Sequence[np.ndarray], normalize: bool) -> Normalize:
    """The colour scale: 0-1 for shares, 0-max count for raw matrices."""
    if normalize:
        return Normalize(vmin=0.0, vmax=1.0)
    top = max((float(np.max(v)) for v in values if np.size(v)), default=1.0)
    return Normalize(vmin=0.0, vmax=max(top, 1.0))


def _side(n: int, per_class: float = 0.6) -> float:
    """Inches a matrix of ``n`` classes needs for readable annotations and names."""
    return max(4.0, per_class * n + 2.0)


def plot_confusion_matrix(
    matrix: np.ndarray, class_names: Sequence[str], *, title: str, normalize: bool = True
) -> Figure:
    """One confusion matrix as an annotated heat map with a colour bar and accuracy in the title."""
    counts = _check(matrix, class_names)
    side = _side(len(class_names))
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.add_subplot()
    image = _draw(ax, counts, class_names, _norm([counts], normalize), normalize)
    fig.colorbar(image, ax=ax, label="share of true class" if normalize else "count", shrink=0.8)
    ax.set_title(f"{title}  (accuracy {accuracy(counts):.4f})")
    return fig


def plot_confusion_grid(runs: Sequence[RunResult], *, normalize: bool = True) -> Figure:
    """The confusion matrix of every run that has one, on one shared colour scale and bar."""
    labels = dict(zip((id(r) for r in runs), run_labels(runs), strict=True))
    chosen = [run for run in runs if run.confusion is not None]
    if not chosen:
        raise ValueError("none of the runs has a confusion matrix")
    matrices = [_check(run.confusion, run.class_names) for run in chosen]
    ncols = 1 if len(chosen) == 1 else 2 if len(chosen) <= 4 else 3
    nrows = math.ceil(len(chosen) / ncols)
    side = _side(max(len(run.class_names) for run in chosen), per_class=0.5)
    fig = Figure(figsize=(ncols * side + 1.2, nrows * (side + 0.3)), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    norm = _norm(matrices, normalize)
    same_names = len({run.class_names for run in chosen}) == 1
    image = None
    for index, (ax, run, counts) in enumerate(zip(axes, chosen, matrices, strict=False)):
        image = _draw(ax, counts, run.class_names, norm, normalize, counts_room=GRID_COUNTS_ROOM)
        ax.set_title(f"{labels[id(run)]}  (accuracy {accuracy(counts):.4f})")
        if same_names:
            _label_outer(ax, index, ncols, len(chosen))
    for ax in axes[len(chosen) :]:
        fig.delaxes(ax)
    fig.colorbar(
        image,
        ax=list(axes[: len(chosen)]),
        label="share of true class" if normalize else "count",
        shrink=0.6,
    )
    return fig


def _label_outer(ax: Axes, index: int, ncols: int, count: int) -> None:
    """Hide tick labels repeated between neighbouring panels that share class names."""
    if index % ncols:
        ax.set_ylabel("")
        ax.tick_params(labelleft=False)
    if index + ncols < count:
        ax.set_xlabel("")
        ax.tick_params(labelbottom=False)
