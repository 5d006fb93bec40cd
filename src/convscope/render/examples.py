"""Dataset examples drawn: the images that activate a channel most, and least.

Two labelled blocks, "most active" above "least active", each a row (or a few rows) of
the images as the model saw them, titled with their class and captioned with their
value and where they come from; the figure's title names the model, its weights, the
layer and the channel. A set with fewer than ``2 k`` images is one block, every image
once, most to least active. Object API only (no pyplot). Also the terminal's table.
Both say :func:`example_notes`: one image, a set too small for two ends, one value for
every image, an end cut inside a tie.
"""

from __future__ import annotations

import math
import re
import textwrap
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure, SubFigure

from convscope.models.provenance import model_title, untrained_caption
from convscope.render.images import show_pixels

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
            show_pixels(ax, pixels)
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
    """The ``k`` most and ``k`` least activating images of the set, in two labelled blocks;
    a set with fewer than ``2 k`` images in one block, every image once, most to least.

    The figure's title says what :func:`example_notes` says. ``panel``: inches per image
    (at least 2 for images larger than 64 pixels).
    """
    blocks = _blocks(result)
    shown = max(max(len(examples) for _, examples, _ in blocks), 1)
    columns = grid_columns(shown)
    rows = math.ceil(shown / columns)
    every = [e for _, examples, _ in blocks for e in examples]
    sizes = [np.asarray(e.pixels).shape[:2] for e in every if e.pixels is not None]
    if sizes and max(max(s) for s in sizes) > 64:
        panel = max(panel, 2.0)
    row_height = panel + (0.3 if rows == 1 else 0.42)  # the title above, two lines below
    notes = example_notes(result)
    width = max(columns * panel + 0.3, 6.4)
    lines = [
        model_title(result.model, result.model_weights),
        f"layer {result.layer} ({result.layer_type}), {_what(result)} {result.channel}: "
        f"mean activation over {images_count(result.count)} ({result.images})",
        *notes,
    ]
    title = "\n".join(textwrap.fill(line, _characters(width, 10)) for line in lines)
    head = 0.35 + 0.18 * (title.count("\n") + 1)
    caption = untrained_caption(result.model_weights)
    foot = 0.3 if caption else 0.05
    block_height = rows * row_height + 0.2
    fig = Figure(
        figsize=(width, head + len(blocks) * block_height + foot),
        layout="constrained",
    )
    fig.get_layout_engine().set(h_pad=0.04, w_pad=0.02, hspace=0.02, wspace=0.02)
    fig.suptitle(title, fontsize=10)
    subfigures = fig.subfigures(len(blocks), 1, hspace=0.02, squeeze=False)[:, 0]
    classes = len(result.class_names or ()) or 10
    for block, (label, examples, colour) in zip(subfigures, blocks, strict=True):
        _draw_block(block, examples, label, colour, columns, classes)
    if caption:
        fig.supxlabel(textwrap.fill(caption, _characters(width, 8)), fontsize=8, color="firebrick")
    return fig


def _characters(width: float, fontsize: float) -> int:
    """Characters of ``fontsize`` points to a line across ``width`` inches (at least 100:
    a saved figure grows to fit its title)."""
    return max(100, int(width * 72 / (fontsize * 0.55)))


def _blocks(result: TopActivations) -> list[tuple[str, list[Example], str]]:
    """``(label, examples, colour)`` of each block the figure draws."""
    if result.count == 1:
        return [("the only image", result.ranked, MOST)]
    if result.overlapping:
        return [(f"all {result.count} images, most to least active", result.ranked, MOST)]
    count = f"{result.shown} of {result.count}"
    return [
        (f"most active ({count}, highest first)", result.top, MOST),
        (f"least active ({count}, lowest first)", result.bottom, LEAST),
    ]


def _what(result: TopActivations) -> str:
    return "unit" if result.vector else "channel"


def images_count(count: int) -> str:
    """``1 image``, ``5 images``."""
    return f"{count} image" if count == 1 else f"{count} images"


_INDEXED = re.compile(r"^(?P<set>[^:]+:[^:]+):\d+$")


def _range_hint(result: TopActivations) -> str:
    """A SPEC naming many images like the one image of ``result``."""
    found = _INDEXED.match(result.specs[0]) if result.specs else None
    if found:
        return f"{found['set']}:0-500"
    return "mnist:test:0-500 or a folder"


def example_notes(result: TopActivations) -> list[str]:
    """What the ranking cannot show by itself, a sentence each (the table's caption and the
    figure's title say them): one image, a set too small for two ends, one value for
    every image, an end cut inside a tie."""
    count = result.count
    if count == 1:
        return [f"1 image: nothing to rank; give a range such as {_range_hint(result)}"]
    notes = []
    if result.overlapping:
        fewer = "" if result.k >= count else f", too few for {result.k} at each end"
        order = " (in set order)" if result.constant else ", most to least active"
        notes.append(f"the set has {count} images{fewer}: all {count} shown once{order}")
    if result.constant:
        value = float(np.nanmax(result.activations))
        if value == 0:
            what = _what(result)
            notes.append(f"every image gives 0: the {what} is not active on this set")
        else:
            notes.append(
                f"the {_what(result)} gives {format_value(value)}, the same for every "
                "image: nothing to rank"
            )
        if not result.overlapping:
            notes[-1] += " (shown in set order)"
        return notes
    if not result.overlapping:
        for end, name in (("top", "most active"), ("bottom", "least active")):
            tie = result.tie(end)
            if tie is not None:
                value, tied = tie
                notes.append(
                    f"{name}: {tied} images tie at {format_value(value)} (shown in set order)"
                )
    return notes


def constant_note(result: TopActivations) -> str:
    """What to say when every image gives the channel the same value (else ``""``)."""
    if not result.constant:
        return ""
    return next(note for note in example_notes(result) if "every image" in note)


def examples_table(result: TopActivations) -> Any:
    """The terminal's view: rank, image, class and value, most active then least (a set
    with fewer than ``2 k`` images: every image once). The title is short, to stay on one
    line; the caption says the model, the set and :func:`example_notes`, a line each."""
    from rich.markup import escape
    from rich.table import Table

    title = f"{result.model} {result.layer} {_what(result)} {result.channel}"
    about = (
        f"{model_title(result.model, result.model_weights)}, layer {result.layer} "
        f"({result.layer_type}): mean activation over {images_count(result.count)} "
        f"({result.images})"
    )
    lines = [about, *example_notes(result), untrained_caption(result.model_weights)]
    table = Table(
        title=escape(title),
        caption=escape("\n".join(line for line in lines if line)),
        caption_justify="left",
        min_width=len(title) + 2,
    )
    table.add_column("")
    table.add_column("#", justify="right")
    table.add_column("Image")
    table.add_column("Class", style="cyan")
    table.add_column("Activation", justify="right", style="green")
    if result.overlapping:
        sections = [("only" if result.count == 1 else "all", result.ranked)]
    else:
        sections = [("most", result.top), ("least", result.bottom)]
    for number, (name, examples) in enumerate(sections):
        if number:
            table.add_section()
        for rank, example in enumerate(examples, start=1):
            table.add_row(
                name if rank == 1 else "",
                str(rank),
                escape(example.spec),
                escape(example.class_name or ""),
                format_value(example.activation),
            )
    return table
