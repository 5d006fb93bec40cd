"""Kernel pictures: grids of kernels, their health, kernels over epochs, and responses.

The pixel values come ready-made from :mod:`convscope.probe.kernels` (a grid is drawn
as one mosaic image, so what is drawn is exactly ``KernelGrid.mosaic()``); this module
only chooses colour maps, colour bars, labels and sizes. Object API only (no pyplot).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from convscope.models.provenance import model_title

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from convscope.probe.kernels import KernelGrid, KernelHealth, KernelResponse

GRAY = "gray"
DIVERGING = "RdBu_r"
GAP_COLOUR = "white"
DIVERGING_GAP_COLOUR = "#9a9a9a"
RESPONSE_PERCENTILE = 99.5
"""Response maps saturate beyond this percentile of |response|."""
HEALTHY, DEAD, DUPLICATE, NOISY = "#4c72b0", "#c44e52", "#dd8452", "#8172b3"


def _cmap(grid: KernelGrid):
    """The colour map of a gray grid, with its gap colour for NaN."""
    diverging = grid.normalization == "diverging"
    cmap = colormaps[DIVERGING if diverging else GRAY].with_extremes(
        bad=DIVERGING_GAP_COLOUR if diverging else GAP_COLOUR
    )
    return cmap, (-1.0, 1.0) if diverging else (0.0, 1.0)


def _tick_positions(count: int, size: int, every: int) -> tuple[list[float], list[int]]:
    """Centres of every ``every``-th tile of ``size`` pixels (1-pixel gaps)."""
    chosen = list(range(0, count, every))
    return [i * (size + 1) + (size - 1) / 2 for i in chosen], chosen


def _label_axes(ax: Axes, grid: KernelGrid, tile_inches: float) -> None:
    """Tick labels at tile centres (thinned when crowded) and axis titles."""
    h, w = grid.tiles.shape[1:3]
    fontsize = 8 if tile_inches >= 0.3 else 7
    room = max(1, round(0.28 / max(tile_inches, 1e-3)))  # a label every ~0.28 in at most
    xs, xi = _tick_positions(grid.cols, w, room if grid.layout != "grid" else max(1, room))
    ys, yi = _tick_positions(grid.rows, h, room)
    ax.set_xticks(xs, [grid.col_labels[i] for i in xi], fontsize=fontsize)
    ax.set_yticks(ys, [grid.row_labels[i] for i in yi], fontsize=fontsize)
    ax.tick_params(length=0, pad=2)
    ax.set_xlabel(grid.col_title, fontsize=9)
    ax.set_ylabel(grid.row_title, fontsize=9)
    for spine in ax.spines.values():
        spine.set_visible(False)


def _tile_inches(rows: int, cols: int, width: float = 8.0, height: float = 10.0) -> float:
    """Size of one tile so the grid fits ``width x height`` inches (at most 0.9 in)."""
    return max(0.06, min(0.9, width / cols, height / rows))


def _caption_text(text: str, width_inches: float) -> str:
    """Wrap a caption to the figure width (about 15 characters per inch at 8 pt)."""
    return textwrap.fill(text, width=max(50, int(width_inches * 15)))


def kernel_grid_figure(
    grid: KernelGrid, *, title: str | None = None, colorbar: bool | None = None
) -> Figure:
    """A grid of kernels as one image: gray, RGB or diverging tiles, 1-pixel gaps.

    A colour bar in weight units is drawn when the scale is shared (``layer`` or
    ``diverging``); for RGB tiles it reads as the value of each channel. The caption
    under the grid says what the pixels mean.
    """
    tile = _tile_inches(grid.rows, grid.cols)
    grid_w, grid_h = grid.cols * tile, grid.rows * tile
    shared = grid.scale is not None if colorbar is None else colorbar and grid.scale is not None
    width = max(grid_w + 1.2 + (1.0 if shared else 0.0), 4.5)
    caption = _caption_text(grid.caption, width)
    caption_h = 0.17 * (caption.count("\n") + 1)
    fig = Figure(figsize=(width, grid_h + 1.0 + caption_h), layout="constrained")
    ax = fig.add_subplot()
    mosaic = grid.mosaic()
    if grid.colour:
        ax.set_facecolor(GAP_COLOUR)
        ax.imshow(mosaic, interpolation="nearest")
    else:
        cmap, (vmin, vmax) = _cmap(grid)
        ax.imshow(
            np.ma.masked_invalid(mosaic), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest"
        )
    _label_axes(ax, grid, tile)
    if shared:
        assert grid.scale is not None
        lo, hi = grid.scale
        diverging = grid.normalization == "diverging"
        cmap_name = DIVERGING if diverging and not grid.colour else GRAY
        mappable = ScalarMappable(norm=Normalize(lo, hi), cmap=colormaps[cmap_name])
        label = "weight (each of R, G, B)" if grid.colour else "weight"
        if grid.reduce == "mean":
            label = "mean weight over input channels"
        elif grid.reduce == "norm":
            label = "L2 norm over input channels"
        bar = fig.colorbar(
            mappable, ax=ax, shrink=min(1.0, max(0.4, 3.0 / max(grid_h, 1e-3))), aspect=25, pad=0.02
        )
        bar.set_label(label, fontsize=9)
        bar.ax.tick_params(labelsize=8)
    fig.suptitle(title or grid.title, fontsize=11)
    fig.supxlabel(caption, fontsize=8, color="#333333", ha="center")
    return fig


def _bars(ax: Axes, values: np.ndarray, colours: Sequence[str]) -> None:
    index = np.arange(len(values))
    ax.bar(index, np.nan_to_num(values, nan=0.0), color=colours, width=0.85)
    ax.set_xlim(-0.6, len(values) - 0.4)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=10))
    ax.grid(axis="y", linestyle=":", alpha=0.6)
    ax.set_axisbelow(True)


def _health_colours(health: KernelHealth) -> list[str]:
    colours = []
    for i in range(len(health.norms)):
        if health.dead[i]:
            colours.append(DEAD)
        elif health.duplicate_of[i] >= 0:
            colours.append(DUPLICATE)
        elif health.noisy[i]:
            colours.append(NOISY)
        else:
            colours.append(HEALTHY)
    return colours


def kernel_health_figure(health: KernelHealth, *, title: str | None = None) -> Figure:
    """Per-kernel L2 norms and high-frequency shares (bars), and the cosine similarities.

    Bars are coloured by verdict: dead, near-duplicate, noisy (more high-frequency
    energy than 95% of white-noise kernels of the same shape) or healthy.
    """
    s = health.summary()
    fig = Figure(figsize=(12, 4.6), layout="constrained")
    axes = fig.subplots(1, 3, width_ratios=[1.2, 1.2, 1.0])
    colours = _health_colours(health)
    _bars(axes[0], health.norms, colours)
    axes[0].axhline(health.dead_threshold, color=DEAD, linestyle="--", linewidth=1)
    axes[0].set_xlabel("kernel")
    axes[0].set_ylabel("L2 norm")
    axes[0].set_title("Kernel norms", fontsize=10)
    _bars(axes[1], health.high_freq, colours)
    axes[1].axhline(health.white_noise, color="black", linestyle="--", linewidth=1)
    axes[1].axhline(health.noise_threshold, color=NOISY, linestyle=":", linewidth=1.2)
    axes[1].set_ylim(0, 1)
    axes[1].set_xlabel("kernel")
    axes[1].set_ylabel("energy share above ½ Nyquist")
    axes[1].set_title("High-frequency energy", fontsize=10)
    handles = [
        Patch(color=c, label=lbl)
        for c, lbl in (
            (HEALTHY, "healthy"),
            (NOISY, "noisy (rougher than 95% of random kernels)"),
            (DUPLICATE, "near-duplicate"),
            (DEAD, "dead"),
        )
    ]
    handles.append(Line2D([], [], color="black", linestyle="--", label="white noise's mean share"))
    handles.append(Line2D([], [], color=NOISY, linestyle=":", label="noisy threshold"))
    handles.append(Line2D([], [], color=DEAD, linestyle="--", label="dead threshold"))
    fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    image = axes[2].imshow(
        np.ma.masked_invalid(health.similarity),
        cmap=DIVERGING,
        vmin=-1,
        vmax=1,
        interpolation="nearest",
    )
    axes[2].set_title("Cosine similarity between kernels", fontsize=10)
    axes[2].set_xlabel("kernel")
    axes[2].set_ylabel("kernel")
    axes[2].xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
    axes[2].yaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
    fig.colorbar(image, ax=axes[2], shrink=0.8, label="cosine")
    mean_hf = s["high_freq_energy_mean"]
    summary = (
        f"{s['kernels']} kernels: {s['dead']} dead (norm ≤ {health.dead_threshold:.3g}), "
        f"{s['duplicates']} near-duplicates (cosine > {health.duplicate_threshold}), "
        f"{s['noisy']} noisy; mean high-frequency share "
        f"{'n/a' if mean_hf is None else f'{mean_hf:.2f}'} "
        f"(white noise {health.white_noise:.2f}"
        + (f", z = {s['high_freq_energy_z']:.1f})" if s["high_freq_energy_z"] is not None else ")")
        + (f"; {s['nonfinite']} with NaN/Inf weights" if s["nonfinite"] else "")
    )
    heading = (
        title
        or f"{model_title(health.model, health.model_weights)} · {health.layer}: kernel health"
    )
    fig.suptitle(f"{heading}\n{summary}", fontsize=10)
    return fig


def kernel_health_epochs_figure(
    epochs: Sequence[int], health: Sequence[KernelHealth], *, title: str = ""
) -> Figure:
    """Health over epochs: counts (dead, duplicates, noisy), mean norm, mean high-freq share."""
    summaries = [h.summary() for h in health]
    fig = Figure(figsize=(12, 3.8), layout="constrained")
    axes = fig.subplots(1, 3)
    for key, colour in (("dead", DEAD), ("duplicates", DUPLICATE), ("noisy", NOISY)):
        axes[0].plot(epochs, [s[key] for s in summaries], marker="o", color=colour, label=key)
    axes[0].set_ylabel("kernels")
    axes[0].set_title("Dead, duplicate and noisy kernels", fontsize=10)
    axes[0].legend(fontsize=8)
    axes[0].set_ylim(bottom=0)
    means = [np.nan if s["norm_mean"] is None else s["norm_mean"] for s in summaries]
    axes[1].plot(epochs, means, marker="o", color=HEALTHY)
    axes[1].set_ylabel("mean L2 norm")
    axes[1].set_title("Kernel norm", fontsize=10)
    hf = [
        np.nan if s["high_freq_energy_mean"] is None else s["high_freq_energy_mean"]
        for s in summaries
    ]
    axes[2].plot(epochs, hf, marker="o", color=NOISY, label="mean share")
    if health:
        axes[2].axhline(
            health[0].white_noise, color="black", linestyle="--", linewidth=1, label="white noise"
        )
    axes[2].set_ylim(0, 1)
    axes[2].set_ylabel("energy share above ½ Nyquist")
    axes[2].set_title("High-frequency energy", fontsize=10)
    axes[2].legend(fontsize=8)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(linestyle=":", alpha=0.6)
    fig.suptitle(title, fontsize=11)
    return fig


def response_bound(response: np.ndarray, percentile: float = RESPONSE_PERCENTILE) -> float:
    """The colour limit of a response map: that percentile of ``|response|`` (1 if all zero).

    A few extreme values (image borders, saturated pixels) would otherwise wash out
    the map; colours saturate beyond the limit and the colour bar says so.
    """
    bound = float(np.percentile(np.abs(response), percentile))
    return bound if bound > 0 else float(np.abs(response).max()) or 1.0


def kernel_response_figure(
    response: KernelResponse,
    *,
    title: str | None = None,
    percentile: float = RESPONSE_PERCENTILE,
) -> Figure:
    """The image, the kernel and its response map side by side (red +, blue -, centred on 0).

    The response's colours span ``±`` the ``percentile`` of ``|response|`` (100: the maximum).
    """
    pixels = response.pixels
    aspect = min(1.0, pixels.shape[0] / pixels.shape[1])
    fig = Figure(figsize=(12, 1.3 + 3.3 * aspect), layout="constrained")
    axes = fig.subplots(1, 3, width_ratios=[1.0, 0.55, 1.0])
    if pixels.ndim == 2:
        axes[0].imshow(pixels, cmap=GRAY, vmin=0, vmax=255)
    else:
        axes[0].imshow(pixels)
    axes[0].set_title(f"{response.image} ({pixels.shape[1]}×{pixels.shape[0]})", fontsize=10)
    tile = response.kernel_tile
    if tile.ndim == 2:
        axes[1].imshow(tile, cmap=GRAY, vmin=0, vmax=1, interpolation="nearest")
    else:
        axes[1].imshow(tile, interpolation="nearest")
    what = "mean over input channels" if response.kernel_reduced else "own min–max"
    axes[1].set_title(f"kernel {response.kernel} ({what})", fontsize=10)
    r = response.response
    bound = response_bound(r, percentile)
    clipped = bool(np.abs(r).max() > bound)
    image = axes[2].imshow(r, cmap=DIVERGING, vmin=-bound, vmax=bound)
    axes[2].set_title(f"response ({r.shape[1]}×{r.shape[0]})", fontsize=10)
    fig.colorbar(
        image,
        ax=axes[2],
        shrink=0.85,
        label="response (before activation)",
        extend="both" if clipped else "neither",
    )
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(
        title
        or f"{model_title(response.model, response.model_weights)} · {response.layer} · kernel {response.kernel}",
        fontsize=11,
    )
    padding = response.padding if isinstance(response.padding, str) else list(response.padding)
    where = "the image" if response.first_layer else "the layer's input for this image"
    note = (
        f"The layer's convolution with kernel {response.kernel} alone on {where}: stride "
        f"{list(response.stride)}, padding {padding}, dilation {list(response.dilation)}, "
        f"bias {'none' if response.bias is None else f'{response.bias:.3g}'}"
        + (f", before its {response.activation}" if response.activation else "")
        + ". Red: the pattern of the kernel is there; blue: its opposite (sign flipped)."
        + (
            f" Colours saturate beyond ±{bound:.3g} ({percentile:g}th percentile of |response|)."
            if clipped
            else ""
        )
    )
    fig.supxlabel(_caption_text(note, 12), fontsize=8, color="#333333")
    return fig


def _rgba_frame(fig: Figure, size: tuple[int, int] | None) -> np.ndarray:
    """Draw a figure into an RGB uint8 array of exactly ``size`` (width, height) pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from convscope.render.figures import DPI

    if size is not None:
        fig.set_size_inches(size[0] / DPI, size[1] / DPI)
    canvas = FigureCanvasAgg(fig)
    fig.set_dpi(DPI)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()


def save_kernel_animation(
    grids: Sequence[KernelGrid], path: str | Path, *, seconds_per_frame: float = 0.6
) -> Path:
    """An animated GIF with one kernel grid per frame (e.g. one per epoch), looping."""
    from PIL import Image

    from convscope.errors import ConvscopeError
    from convscope.files import atomic_write, check_writable

    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ConvscopeError(f"cannot write {path}: an animation file name must end in .gif")
    check_writable(path)
    if not grids:
        raise ConvscopeError("no frames to animate")
    frames: list[Image.Image] = []
    size: tuple[int, int] | None = None
    for grid in grids:
        pixels = _rgba_frame(kernel_grid_figure(grid), size)
        size = size or (pixels.shape[1], pixels.shape[0])
        frames.append(Image.fromarray(pixels).quantize(colors=255, dither=Image.Dither.NONE))
    with atomic_write(path) as handle:
        frames[0].save(
            handle,
            format="GIF",
            save_all=True,
            append_images=frames[1:],
            duration=int(seconds_per_frame * 1000),
            loop=0,
        )
    return path


HEALTH_COLUMNS = (
    ("kernels", "kernels"),
    ("dead", "dead"),
    ("duplicates", "duplicates"),
    ("noisy", "noisy"),
    ("mean norm", "norm_mean"),
    ("mean high-freq share", "high_freq_energy_mean"),
    ("white noise's share", "high_freq_energy_white_noise"),
    ("noisy above", "high_freq_noise_threshold"),
    ("z vs noise", "high_freq_energy_z"),
)
"""The health summary table: header and summary key."""


def health_number(value: Any) -> str:
    """A summary number for a table: 3 significant digits, ``n/a`` when unknown."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def health_table(health: KernelHealth, most: int = 20) -> Any:
    """The summary numbers as a rich table, then a line per flagged kernel (the first ``most``)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    summary = health.summary()
    heading = f"{model_title(health.model, health.model_weights)} · {health.layer}: kernel health"
    table = Table(title=heading if health.model else "kernel health", show_header=True)
    for header, _ in HEALTH_COLUMNS:
        table.add_column(header, justify="right")
    table.add_row(*[health_number(summary[key]) for _, key in HEALTH_COLUMNS])
    problems = list(health.problems().items())
    lines = [Text(f"  kernel {index}: {why}") for index, why in problems[:most]]
    if len(problems) > most:
        lines.append(Text(f"  ... {len(problems) - most} more (--json lists all)"))
    return Group(table, *lines)


def health_over_epochs_table(epochs: list[int], healths: list[KernelHealth]) -> Any:
    """One row of health numbers per recorded epoch (``kernels run:ID --epochs --health``)."""
    from rich.table import Table

    table = Table(title="kernel health per epoch")
    for column in ("epoch", "dead", "duplicates", "noisy", "norm mean", "high-freq mean"):
        table.add_column(column, justify="right")
    for epoch, health in zip(epochs, healths, strict=True):
        s = health.summary()
        counts = [str(s[key]) for key in ("dead", "duplicates", "noisy")]
        means = [health_number(s["norm_mean"]), health_number(s["high_freq_energy_mean"])]
        table.add_row(str(epoch), *counts, *means)
    return table
