"""Pictures of hidden representations over training: map grids, score curves, animations.

Layouts arrive standardised (unit RMS radius), so all panels share one square scale:
models side by side are comparable per epoch, and a map's spread means the same thing
in every panel. Points are coloured by class (tab10) with the class names in a legend.
"""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from convscope.embed.scores import SCORE_LABELS, SCORE_NAMES
from convscope.errors import ConvscopeError
from convscope.files import atomic_write
from convscope.render.curves import run_colors, run_labels

if TYPE_CHECKING:
    from convscope.embed.runs import RunEmbedding

PANEL_INCHES = 2.3
MAX_COLUMNS = 6


def pick_epochs(epochs: Sequence[int], limit: int = MAX_COLUMNS) -> list[int]:
    """At most ``limit`` epochs, evenly spread, always with the first and the last."""
    epochs = sorted(epochs)
    if len(epochs) <= limit:
        return epochs
    index = np.linspace(0, len(epochs) - 1, limit).round().astype(int)
    return [epochs[i] for i in sorted(set(index))]


def plot_embedding_grid(
    embeddings: Sequence[RunEmbedding],
    *,
    epochs: Sequence[int] | None = None,
    max_columns: int = MAX_COLUMNS,
    point_size: float = 4.0,
) -> Figure:
    """One row per run, one column per epoch; shared axes, classes coloured, one legend."""
    if not embeddings:
        raise ValueError("no embeddings to draw")
    shown = (
        list(epochs) if epochs is not None else pick_epochs(_common_epochs(embeddings), max_columns)
    )
    limit = _shared_limit(embeddings, shown)
    rows, cols = len(embeddings), max(1, len(shown))
    fig = Figure(
        figsize=(PANEL_INCHES * cols + 1.8, PANEL_INCHES * rows + 0.6), layout="constrained"
    )
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    labels = run_labels(embeddings)  # type: ignore[arg-type]
    for row, (embedding, label) in enumerate(zip(embeddings, labels, strict=True)):
        for col, epoch in enumerate(shown):
            ax = axes[row][col]
            _scatter(ax, embedding, epoch, point_size)
            ax.set_xlim(-limit, limit)
            ax.set_ylim(-limit, limit)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"epoch {epoch}", fontsize=10)
            if col == 0:
                ax.set_ylabel(label, fontsize=10)
            score = embedding.scores.get(epoch)
            if score is not None:
                ax.text(
                    0.02, 0.02, f"kNN {score.knn_hidden:.2f}", transform=ax.transAxes,
                    fontsize=7, color="0.25",
                )  # fmt: skip
    first = embeddings[0]
    fig.legend(
        handles=_class_handles(first.class_names, first.labels),
        loc="outside right center",
        fontsize=8,
        title="class",
        frameon=False,
    )
    method = first.params.method.upper() if first.params.method != "tsne" else "t-SNE"
    fig.suptitle(
        f"{first.layer}: {method} of {len(first.labels)} probe images, aligned over epochs"
    )
    return fig


def plot_score_curves(
    embeddings: Sequence[RunEmbedding], *, scores: Sequence[str] = SCORE_NAMES
) -> Figure:
    """Each separation score over epochs, all runs on each chart (one chart per score)."""
    if not embeddings:
        raise ValueError("no embeddings to draw")
    fig = Figure(figsize=(3.2 * len(scores), 3.2), layout="constrained")
    axes = fig.subplots(1, len(scores), squeeze=False)[0]
    colors = run_colors(embeddings)  # type: ignore[arg-type]
    labels = run_labels(embeddings)  # type: ignore[arg-type]
    for ax, score in zip(axes, scores, strict=True):
        for embedding, color, label in zip(embeddings, colors, labels, strict=True):
            epochs = [e for e in embedding.epochs if e in embedding.scores]
            values = [getattr(embedding.scores[e], score) for e in epochs]
            ax.plot(epochs, values, "o-", color=color, label=label, markersize=3)
        ax.set_title(SCORE_LABELS[score], fontsize=9)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, linestyle="--", alpha=0.5)
    axes[0].set_ylabel("score")
    axes[0].legend(fontsize=8)
    fig.suptitle("How well each model's hidden layer separates the classes")
    return fig


ANIMATION_FORMATS = (".gif", ".mp4")


def write_animation(
    embeddings: Sequence[RunEmbedding],
    path: str | Path,
    *,
    seconds_per_frame: float = 0.8,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """One frame per epoch, runs side by side; GIF (Pillow) or MP4 (ffmpeg), written atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ANIMATION_FORMATS:
        raise ConvscopeError(
            f"cannot write {path}: an animation's file name must end in .gif or .mp4"
        )
    ffmpeg = shutil.which("ffmpeg")
    if suffix == ".mp4" and ffmpeg is None:
        raise ConvscopeError(
            f"cannot write {path}: MP4 needs ffmpeg (apt-get install ffmpeg); .gif needs nothing"
        )
    epochs = _common_epochs(embeddings)
    frames = []
    for done, epoch in enumerate(epochs, start=1):
        buffer = io.BytesIO()
        plot_embedding_grid_columns(embeddings, epoch).savefig(buffer, format="png", dpi=80)
        frames.append(buffer.getvalue())
        if progress is not None:
            progress(done, len(epochs))
    with atomic_write(path) as handle:
        if suffix == ".gif":
            _write_gif(frames, handle, seconds_per_frame)
        else:
            handle.write(_encode_mp4(frames, str(ffmpeg), seconds_per_frame))
    return path


def _write_gif(frames: Sequence[bytes], handle, seconds_per_frame: float) -> None:
    from PIL import Image

    images = [Image.open(io.BytesIO(f)).convert("RGB").quantize(colors=128) for f in frames]
    images[0].save(
        handle,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=int(seconds_per_frame * 1000),
        loop=0,
    )


def _encode_mp4(frames: Sequence[bytes], ffmpeg: str, seconds_per_frame: float) -> bytes:
    """H.264 from PNG frames through ffmpeg (even frame size, yuv420p: plays everywhere)."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out.mp4"
        command = [
            ffmpeg, "-y", "-loglevel", "error", "-f", "image2pipe",
            "-framerate", f"{1 / seconds_per_frame:.4f}", "-i", "-",
            "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2:color=white",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-r", "25", str(out),
        ]  # fmt: skip
        done = subprocess.run(command, input=b"".join(frames), capture_output=True)
        if done.returncode != 0 or not out.exists():
            reason = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["failed"]
            raise ConvscopeError(f"ffmpeg could not write the MP4: {reason[0]}")
        return out.read_bytes()


def plot_embedding_grid_columns(embeddings: Sequence[RunEmbedding], epoch: int) -> Figure:
    """One epoch, runs side by side on shared axes (an animation frame)."""
    limit = _shared_limit(embeddings, _common_epochs(embeddings))
    n = len(embeddings)
    fig = Figure(
        figsize=(PANEL_INCHES * 1.3 * n + 1.8, PANEL_INCHES * 1.3 + 0.6), layout="constrained"
    )
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, embedding, label in zip(axes, embeddings, run_labels(embeddings), strict=True):  # type: ignore[arg-type]
        _scatter(ax, embedding, epoch, 5.0)
        ax.set_xlim(-limit, limit)
        ax.set_ylim(-limit, limit)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(label, fontsize=10)
    first = embeddings[0]
    fig.legend(
        handles=_class_handles(first.class_names, first.labels),
        loc="outside right center",
        fontsize=8,
        frameon=False,
    )
    fig.suptitle(f"{first.layer} at epoch {epoch}")
    return fig


def _scatter(ax, embedding: RunEmbedding, epoch: int, size: float) -> None:
    layout = embedding.layouts.get(epoch)
    if layout is None:
        ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes)
        return
    colors = colormaps["tab10"](np.asarray(embedding.labels) % 10)
    ax.scatter(layout[:, 0], layout[:, 1], c=colors, s=size, linewidths=0, alpha=0.8)


def _class_handles(class_names: Sequence[str], labels: np.ndarray) -> list[Line2D]:
    palette = colormaps["tab10"]
    return [
        Line2D([], [], marker="o", linestyle="", color=palette(i % 10), label=class_names[i])
        for i in sorted(set(int(v) for v in labels))
        if i < len(class_names)
    ]


def _common_epochs(embeddings: Sequence[RunEmbedding]) -> list[int]:
    return sorted(set().union(*(e.layouts for e in embeddings)))


def _shared_limit(embeddings: Sequence[RunEmbedding], epochs: Sequence[int]) -> float:
    """Half-width of the square view that holds 99.5% of every shown layout's points."""
    radii = [
        np.abs(e.layouts[epoch]).max(axis=1)
        for e in embeddings
        for epoch in epochs
        if epoch in e.layouts
    ]
    if not radii:
        return 1.0
    return float(np.quantile(np.concatenate(radii), 0.995)) * 1.05
