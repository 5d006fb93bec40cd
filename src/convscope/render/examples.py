"""Dataset examples drawn: the images that activate a channel most, and least.

Two labelled blocks, "most active" above "least active", each a row (or a few rows) of
the images as the model saw them, titled with their class and captioned with their
value and where they come from; the figure's title names the model, its weights, the
layer and the channel. Object API only (no pyplot). Also the terminal's table.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure, SubFigure

from convscope.models.provenance import model_title, untrained_caption

if TYPE_CHECKING:
    from convscope.probe.examples import Example, TopActivations

MOST, LEAST = "#1a7f37", "#1f4e9c"
"""The colours of the two blocks' labels (green: most active, blue: least)."""

MAX_COLUMNS = 10


def grid_columns(k: int) -> int:
    """Images per row for ``k`` examples: one row up to ten, then rows of even length."""
    if k <= MAX_COLUMNS:
        return max(1, k)
    return math.ceil(k / math.ceil(k / MAX_COLUMNS))


def _class_colour(label: int | None, classes: int) -> Any:
    from matplotlib import colormaps

    if label is None or label < 0:
        return (0.1, 0.1, 0.1, 1.0)
    cmap = colormaps["tab10" if classes <= 10 else "tab20"]
    r, g, b, a = cmap(label % cmap.N)
    return (r * 0.65, g * 0.65, b * 0.65, a)  # darker: readable on white


def _short_spec(spec: str) -> str:
    """``mnist:test:8`` -> ``test:8`` (the figure's title names the set)."""
    parts = spec.split(":")
    return ":".join(parts[1:]) if len(parts) == 3 else spec


def format_value(value: float) -> str:
    """An activation for a caption: 3 significant digits, ``nan`` as such."""
    if not math.isfinite(value):
        return str(value)
    return f"{value:.3g}"


def _draw_block(
    block: SubFigure,
    examples: list[Example],
    label: str,
    colour: str,
    columns: int,
    classes: int,
) -> None:
    rows = max(1, math.ceil(len(examples) / columns))
    axes = block.subplots(rows, columns, squeeze=False)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    for ax, example in zip(axes.ravel(), examples, strict=False):
        pixels = example.pixels
        if pixels is None:
            ax.imshow(np.full((8, 8), 0.92), cmap="gray", vmin=0, vmax=1)
        else:
            pixels = np.asarray(pixels)
            if pixels.ndim == 3 and pixels.shape[2] == 1:
                pixels = pixels[:, :, 0]
            if pixels.ndim == 2:
                ax.imshow(pixels, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            else:
                ax.imshow(pixels, interpolation="nearest")
            for spine in ax.spines.values():
                spine.set_visible(True)
                spine.set_edgecolor(colour)
                spine.set_linewidth(1.2)
        name = example.class_name if example.class_name is not None else "no label"
        ax.set_title(name, fontsize=8, color=_class_colour(example.label, classes), pad=2)
        ax.set_xlabel(
            f"{format_value(example.activation)}\n{_short_spec(example.spec)}",
            fontsize=7,
            labelpad=2,
            color="0.2",
        )
    block.suptitle(label, x=0.005, ha="left", fontsize=10, fontweight="bold", color=colour)


def plot_examples(result: TopActivations, *, panel: float = 1.05) -> Figure:
    """The ``k`` most and ``k`` least activating images of the set, in two labelled blocks.

    ``panel``: inches per image (at least 2 for images larger than 64 pixels).
    """
    top, bottom = result.top, result.bottom
    shown = max(len(top), len(bottom), 1)
    columns = grid_columns(shown)
    rows = math.ceil(shown / columns)
    sizes = [np.asarray(e.pixels).shape[:2] for e in (*top, *bottom) if e.pixels is not None]
    if sizes and max(max(s) for s in sizes) > 64:
        panel = max(panel, 2.0)
    row_height = panel + (0.3 if rows == 1 else 0.42)  # the title above, two lines below
    head = 0.75
    caption = untrained_caption(result.model_weights)
    foot = 0.3 if caption else 0.05
    block_height = rows * row_height + 0.2
    fig = Figure(
        figsize=(max(columns * panel + 0.3, 6.4), head + 2 * block_height + foot),
        layout="constrained",
    )
    fig.get_layout_engine().set(h_pad=0.04, w_pad=0.02, hspace=0.02, wspace=0.02)
    what = "unit" if result.vector else "channel"
    title = (
        f"{model_title(result.model, result.model_weights)}\n"
        f"layer {result.layer} ({result.layer_type}), {what} {result.channel}: "
        f"mean activation over {result.count} images ({result.images})"
    )
    fig.suptitle(title + (f"\n{constant_note(result)}" if result.constant else ""), fontsize=10)
    upper, lower = fig.subfigures(2, 1, hspace=0.02)
    classes = len(result.class_names or ()) or 10
    count = f"{len(top)} of {result.count}"
    _draw_block(upper, top, f"most active ({count}, highest first)", MOST, columns, classes)
    _draw_block(lower, bottom, f"least active ({count}, lowest first)", LEAST, columns, classes)
    if caption:
        fig.supxlabel(caption, fontsize=8, color="firebrick")
    return fig


def constant_note(result: TopActivations) -> str:
    """What to say when every image gives the channel the same value."""
    what = "unit" if result.vector else "channel"
    value = format_value(float(result.activations[0]))
    return f"every image gives {value}: the {what} is not active on this set (shown in set order)"


def examples_table(result: TopActivations) -> Any:
    """The terminal's view: rank, image, class and value, most active then least."""
    from rich.markup import escape
    from rich.table import Table

    what = "unit" if result.vector else "channel"
    title = (
        f"{model_title(result.model, result.model_weights)}: layer {result.layer} "
        f"{what} {result.channel}, mean activation over {result.count} images ({result.images})"
    )
    notes = [constant_note(result)] if result.constant else []
    notes.append(untrained_caption(result.model_weights))
    table = Table(
        title=escape(title),
        caption=escape(" ".join(note for note in notes if note)) or None,
        caption_justify="left",
    )
    table.add_column("")
    table.add_column("#", justify="right")
    table.add_column("Image")
    table.add_column("Class", style="cyan")
    table.add_column("Activation", justify="right", style="green")
    for name, examples in (("most", result.top), ("least", result.bottom)):
        for rank, example in enumerate(examples, start=1):
            table.add_row(
                name if rank == 1 else "",
                str(rank),
                escape(example.spec),
                escape(example.class_name or ""),
                format_value(example.activation),
            )
        if name == "most":
            table.add_section()
    return table
