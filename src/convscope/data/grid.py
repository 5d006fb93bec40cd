"""Looking at the data first: a grid of images titled with their class names.

:func:`show_images` picks the images (compute) and returns an :class:`ImageGrid`
that draws itself (:mod:`convscope.render.images`): in Jupyter, with ``.figure()``
or into a file with ``.save(path)``. A dataset (``"fashion-mnist"``,
``"fashion-mnist:test"``) gives a seeded stratified sample, by default 100 images,
ten of each class, one class per row; a SPEC naming more images than asked for
gives a (stratified, where it has labels) sample of them, read without loading the
rest. A grid is one picture, so it holds at most :data:`MAX_GRID` images.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from convscope.data.spec import InputImage, path_exists
from convscope.errors import ConvscopeError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from convscope.data.stream import ImageStream

DEFAULT_N = 100
"""Images in a grid unless told otherwise (10 x 10)."""

MAX_GRID = 400
"""The most images one grid draws (20 x 20); a grid is one picture to look at."""

_DATASET_ONLY = re.compile(r"^(?P<dataset>[A-Za-z0-9][\w.-]*)(?::(?P<split>[\w-]+))?$")


@dataclass(frozen=True, eq=False)
class ImageGrid:
    """Images to draw as a grid, each titled with its class name (or its name)."""

    images: list[InputImage]
    title: str
    class_names: tuple[str, ...] | None = None
    columns: int | None = None
    indices: list[int] = field(default_factory=list)

    @property
    def titles(self) -> list[str]:
        """What each image is titled: its class name, else its name."""
        return [im.label_name or im.name for im in self.images]

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of the grid."""
        n = len(self.images)
        columns = self.columns or max(1, math.ceil(math.sqrt(n)))
        columns = min(columns, n)
        return math.ceil(n / columns), columns

    def figure(self, **options: Any) -> Figure:
        """The grid as a matplotlib figure (see :func:`plot_image_grid`)."""
        from convscope.render.images import plot_image_grid

        return plot_image_grid(self, **options)

    def save(self, path: str | Path, **options: Any) -> str:
        """Draw the grid into ``path`` (.png, .svg or .pdf); returns the path."""
        from convscope.render.figures import save_figure

        return str(save_figure(self.figure(**options), path))

    def _repr_png_(self) -> bytes:
        from convscope.render.figures import figure_png

        return figure_png(self.figure())

    def to_dict(self) -> dict[str, Any]:
        rows, columns = self.shape
        return {
            "title": self.title,
            "count": len(self.images),
            "rows": rows,
            "columns": columns,
            "class_names": None if self.class_names is None else list(self.class_names),
            "images": [
                {"name": im.name, "label": im.label, "class": im.label_name} for im in self.images
            ],
        }

    def __repr__(self) -> str:
        rows, columns = self.shape
        return f"ImageGrid({self.title!r}, {len(self.images)} images, {rows}x{columns})"


def _stream(images: str | Sequence[InputImage], split: str | None) -> tuple[ImageStream, str]:
    """The images to choose from and a title for them."""
    from convscope.data.stream import ListStream, open_images

    if not isinstance(images, str):
        return ListStream(list(images), f"{len(images)} images"), "images"
    text = images.strip()
    match = _DATASET_ONLY.match(text)
    if match and not text.startswith("sample:") and not path_exists(Path(text).expanduser()):
        from convscope.data.datasets import get_info
        from convscope.data.stream import DatasetStream

        info = get_info(match["dataset"])
        chosen = match["split"] or split or "train"
        if match["split"] and split and split != match["split"]:
            raise ConvscopeError(f"{text!r} names split {match['split']!r} but split={split!r}")
        size = info.split(chosen).size
        return DatasetStream(info.name, chosen, 0, size), f"{info.name} {chosen}"
    if split is not None:
        raise ConvscopeError(
            f"a split goes with a dataset name (fashion-mnist --split test), not with {text!r}"
        )
    return open_images(text), text


def show_images(
    images: str | Sequence[InputImage],
    *,
    split: str | None = None,
    n: int | None = None,
    seed: int = 0,
    stratified: bool = True,
    columns: int | None = None,
) -> ImageGrid:
    """A grid of images titled with their class names, ready to draw or ``.save(path)``.

    ``images``: a dataset name (``"fashion-mnist"``, or ``"fashion-mnist:test"``; the
    ``split`` defaults to ``train``), any SPEC (a range, a folder, a file) or a list
    of :class:`InputImage`. ``n`` images are shown (default 100; all of a SPEC naming
    fewer): a seeded sample that is stratified by class (``stratified=False``: uniform
    at random), ordered by class, so 100 images of ten classes give one class per row.
    A SPEC naming at most ``n`` images (``mnist:test:0-16``) is shown whole and in order.
    """
    if n is not None and not 1 <= n <= MAX_GRID:
        raise ConvscopeError(
            f"a grid shows 1 to {MAX_GRID} images (it is one picture), got {n}; "
            "for the arrays of more images use convscope.activations or `features --npy`"
        )
    if columns is not None and columns < 1:
        raise ConvscopeError(f"columns must be at least 1, got {columns}")
    stream, title = _stream(images, split)
    total = len(stream)
    want = n if n is not None else min(DEFAULT_N, total)
    if total <= want:
        chosen = np.arange(total)
    elif stratified:
        from convscope.data.sampling import stratified_sample

        chosen = stratified_sample(stream.labels, want, seed=seed)
    else:
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(total, want, replace=False))
    picked = [stream.image(int(i)) for i in chosen]
    if total > len(picked):
        how = "stratified sample" if stratified and (stream.labels >= 0).any() else "sample"
        title = f"{title}: a {how} of {len(picked)} of {total:,} images (seed {seed})"
    return ImageGrid(
        images=picked,
        title=title,
        class_names=stream.class_names,
        columns=columns,
        indices=[int(i) for i in chosen],
    )
