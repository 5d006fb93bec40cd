"""A grid of images, each titled with its class name: the first look at a dataset.

Gray images are drawn in gray on a fixed 0-255 scale (so a faint image looks faint),
colour images as they are; no axes, no ticks; the title of each image is coloured by
its class so the classes can be told apart at a glance. Object API only (no pyplot).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from convscope.data.grid import ImageGrid


def show_pixels(ax: Any, pixels: Any) -> None:
    """Draw uint8 pixels (H x W, H x W x 1 or H x W x 3) on ``ax`` at their true values:
    gray on a fixed 0-255 scale, colour as they are, nearest-neighbour."""
    pixels = np.asarray(pixels)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim == 2:
        ax.imshow(pixels, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(pixels, interpolation="nearest")


def _title_colour(label: int | None, classes: int) -> tuple[float, ...]:
    """A dark colour per class (tab10, or tab20 for more classes); black without a label."""
    if label is None or label < 0:
        return (0.1, 0.1, 0.1, 1.0)
    cmap = colormaps["tab10" if classes <= 10 else "tab20"]
    r, g, b, a = cmap(label % cmap.N)
    return (r * 0.65, g * 0.65, b * 0.65, a)  # darker: readable on white


def plot_image_grid(
    grid: ImageGrid, *, panel: float = 1.1, fontsize: float = 9.0, colour_titles: bool = True
) -> Figure:
    """The images of ``grid`` in rows and columns, titled; ``panel``: inches per image
    (at least 2.4 for photos larger than 64 pixels, which a digit-sized panel would shrink)."""
    rows, columns = grid.shape
    if max(max(np.asarray(im.pixels).shape[:2]) for im in grid.images) > 64:
        panel = max(panel, 2.4)
    title_room = 0.8  # inches above the first row: the figure title, then the image titles
    fig = Figure(figsize=(max(columns * panel, 4.0), rows * (panel + 0.22) + title_room))
    classes = len(grid.class_names or ()) or 10
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, image, title in zip(axes.ravel(), grid.images, grid.titles, strict=False):
        show_pixels(ax, image.pixels)
        colour = _title_colour(image.label, classes) if colour_titles else "black"
        ax.set_title(title, fontsize=fontsize, color=colour, pad=2)
    # pinned in inches from the top, so a tall grid's first titles never run into it
    fig.suptitle(grid.title, fontsize=11, y=1 - 0.12 / fig.get_figheight(), va="top")
    fig.subplots_adjust(
        left=0.01,
        right=0.99,
        bottom=0.01,
        top=1 - title_room / fig.get_figheight(),
        wspace=0.08,
        hspace=0.28,
    )
    return fig
