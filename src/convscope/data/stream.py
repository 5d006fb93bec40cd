"""The images a SPEC names, read in slices: the streaming path for many images.

:func:`~convscope.data.spec.resolve_images` loads every image a SPEC names as an
:class:`~convscope.data.spec.InputImage` (and so caps a SPEC at
:data:`~convscope.data.spec.MAX_IMAGES`). :func:`open_images` instead returns an
:class:`ImageStream` that knows how many images there are, their names and labels,
and reads the pixels of any slice on demand:

- a dataset range (``fashion-mnist:train:0-60000``) slices the split's uint8 arrays
  (no Python object per image; a slice of same-sized gray images is normalised in
  one call);
- a folder reads its files one slice at a time;
- a file, a sample photo or a list of images already loaded holds them as they are.

No SPEC is capped here: a batch at a time is what sits in memory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from convscope.data.images import ImageFolder, list_images, match_channels, read_pixels, to_pixels
from convscope.data.preprocess import InputSpec, ResizePolicy
from convscope.data.spec import (
    _WINDOWS_DRIVE,
    FORMS,
    InputImage,
    _check_range,
    parse_dataset_spec,
    path_exists,
    sample_image,
    to_batch,
)
from convscope.errors import ImageError


class ImageStream:
    """Images named by a SPEC, read a slice at a time.

    ``len(stream)`` images; :meth:`names` and :attr:`labels` describe the rows without
    reading pixels; :meth:`images` reads a slice as :class:`InputImage` objects and
    :meth:`batch` a slice as the model's float input ``n x C x H x W``.
    """

    spec: str
    class_names: tuple[str, ...] | None = None

    def __len__(self) -> int:
        raise NotImplementedError

    _labels: np.ndarray

    @property
    def labels(self) -> np.ndarray:
        """The int64 class index of every image (-1 where there is none)."""
        return self._labels

    def names(self, start: int = 0, stop: int | None = None) -> list[str]:
        """The names (their own SPECs where they have one) of images ``start:stop``."""
        raise NotImplementedError

    def pixels(self, start: int, stop: int) -> list[np.ndarray] | np.ndarray:
        """The uint8 pixels of images ``start:stop`` (a list, or an ``n x H x W [x C]`` array)."""
        raise NotImplementedError

    def images(self, start: int = 0, stop: int | None = None) -> list[InputImage]:
        """Images ``start:stop`` as :class:`InputImage` objects (a slice: mind its size)."""
        start, stop = self._bounds(start, stop)
        labels = self.labels[start:stop]
        out = []
        for name, pixels, label in zip(
            self.names(start, stop), self.pixels(start, stop), labels, strict=True
        ):
            label = int(label)
            out.append(
                InputImage(
                    name, np.array(pixels), None if label < 0 else label, self.label_name(label)
                )
            )
        return out

    def image(self, index: int) -> InputImage:
        """One image, by its position in the stream (0-based)."""
        n = len(self)
        if not 0 <= index < n:
            raise ImageError(
                f"image {index} is out of range: {self.spec} names {n} image(s), "
                f"valid positions are 0-{n - 1}"
            )
        return self.images(index, index + 1)[0]

    def label_name(self, label: int) -> str | None:
        """The class name of ``label`` (None when unknown)."""
        names = self.class_names or ()
        return names[label] if 0 <= label < len(names) else None

    def batch(self, start: int, stop: int, input_spec: InputSpec) -> torch.Tensor:
        """Images ``start:stop`` fitted and normalised for ``input_spec``: ``n x C x H x W``."""
        start, stop = self._bounds(start, stop)
        pixels = self.pixels(start, stop)
        if isinstance(pixels, np.ndarray) and _ready(pixels, input_spec):
            return input_spec.normalize(pixels)
        return to_batch(list(pixels), input_spec)

    def _bounds(self, start: int, stop: int | None) -> tuple[int, int]:
        n = len(self)
        stop = n if stop is None else stop
        if not 0 <= start <= stop <= n:
            raise ImageError(f"slice {start}:{stop} is outside the {n} images of {self.spec}")
        return start, stop

    def __repr__(self) -> str:
        return f"{type(self).__name__}(spec={self.spec!r}, n={len(self)})"


def _ready(pixels: np.ndarray, spec: InputSpec) -> bool:
    """True when a uint8 ``n x H x W [x C]`` array already has the model's size and channels.

    Such a slice is normalised in one call; fitting it image by image would give the
    same pixels (every resize policy keeps an image of the target size as it is, but
    center-crop with ``resize_to``, which rescales first).
    """
    if pixels.dtype != np.uint8 or pixels.shape[1:3] != (spec.height, spec.width):
        return False
    if pixels.ndim == 4 and pixels.shape[3] not in (1, spec.channels):
        return False  # RGB to gray goes through Pillow's luminance, image by image
    if pixels.ndim not in (3, 4):
        return False
    return not (spec.resize is ResizePolicy.CENTER_CROP and spec.resize_to is not None)


class DatasetStream(ImageStream):
    """A range of a dataset split, sliced from its arrays."""

    def __init__(
        self, dataset: str, split: str, start: int, stop: int, channels: int | None = None
    ) -> None:
        from convscope.data.datasets import load_dataset

        data = load_dataset(dataset, split)
        _check_range(dataset, split, start, stop, len(data))
        self.dataset, self.split, self.start, self.stop = dataset, split, start, stop
        self.channels = channels
        self.spec = (
            f"{dataset}:{split}:{start}"
            if stop - start == 1
            else f"{dataset}:{split}:{start}-{stop}"
        )
        self.class_names = tuple(data.class_names)
        self._images = data.images
        self._labels = np.asarray(data.labels[start:stop], dtype=np.int64)

    def __len__(self) -> int:
        return self.stop - self.start

    @property
    def indices(self) -> np.ndarray:
        """The dataset index of every row."""
        return np.arange(self.start, self.stop)

    def names(self, start: int = 0, stop: int | None = None) -> list[str]:
        start, stop = self._bounds(start, stop)
        prefix = f"{self.dataset}:{self.split}:"
        return [f"{prefix}{self.start + i}" for i in range(start, stop)]

    def pixels(self, start: int, stop: int) -> list[np.ndarray] | np.ndarray:
        start, stop = self._bounds(start, stop)
        block = self._images[self.start + start : self.start + stop]
        if self.channels is None or (self.channels == 1 and block.ndim == 3):
            return block
        return [match_channels(np.asarray(p), self.channels) for p in block]

    def batch(self, start: int, stop: int, input_spec: InputSpec) -> torch.Tensor:
        start, stop = self._bounds(start, stop)
        block = self._images[self.start + start : self.start + stop]
        if _ready(block, input_spec):  # gray to RGB: normalize repeats the channel
            return input_spec.normalize(block)
        return to_batch(list(block), input_spec)


class FolderStream(ImageStream):
    """A folder of images (flat, or ``ROOT/<class>/<image>``), read a slice at a time."""

    def __init__(self, folder: Path, channels: int | None = None) -> None:
        self.folder, self.channels, self.spec = folder, channels, str(folder)
        files = list_images(folder)
        self._tree: ImageFolder | None = None
        if files:
            self._paths = tuple(files)
            self._names = [p.name for p in files]
            self._labels = np.full(len(files), -1, dtype=np.int64)
            return
        has_subfolders = any(p.is_dir() and not p.name.startswith(".") for p in folder.iterdir())
        if not has_subfolders:
            raise ImageError(
                f"{folder} holds no image files; put images in it, or use one sub-folder "
                "per class (FOLDER/<class>/<image>)"
            )
        self._tree = ImageFolder(folder, channels=channels)
        self._paths = self._tree.paths
        self._names = [p.relative_to(folder).as_posix() for p in self._paths]
        self._labels = self._tree.labels
        self.class_names = self._tree.class_names

    def __len__(self) -> int:
        return len(self._paths)

    def names(self, start: int = 0, stop: int | None = None) -> list[str]:
        start, stop = self._bounds(start, stop)
        return self._names[start:stop]

    def pixels(self, start: int, stop: int) -> list[np.ndarray] | np.ndarray:
        start, stop = self._bounds(start, stop)
        if self._tree is not None:
            return [self._tree[i][0] for i in range(start, stop)]
        return [read_pixels(p, self.channels) for p in self._paths[start:stop]]


class ListStream(ImageStream):
    """Images already loaded: a file, a sample photo or a list of :class:`InputImage`."""

    def __init__(
        self, images: Sequence[InputImage], spec: str, class_names: Sequence[str] | None = None
    ) -> None:
        self._items = list(images)
        self.spec = spec
        names = class_names
        if names is None:
            known = {im.label: im.label_name for im in self._items if im.label is not None}
            if known and all(v is not None for v in known.values()):
                names = [known.get(i) or str(i) for i in range(max(known) + 1)]  # type: ignore[type-var, operator]
        self.class_names = None if names is None else tuple(names)  # type: ignore[arg-type]
        self._labels = np.array(
            [-1 if im.label is None else int(im.label) for im in self._items], dtype=np.int64
        )

    def __len__(self) -> int:
        return len(self._items)

    def names(self, start: int = 0, stop: int | None = None) -> list[str]:
        start, stop = self._bounds(start, stop)
        return [im.name for im in self._items[start:stop]]

    def pixels(self, start: int, stop: int) -> list[np.ndarray] | np.ndarray:
        start, stop = self._bounds(start, stop)
        return [im.pixels for im in self._items[start:stop]]


class ArrayStream(ImageStream):
    """A uint8 ``N x H x W [x C]`` array of images, rows named ``NAME[i]``."""

    def __init__(
        self,
        pixels: np.ndarray,
        name: str = "pixels",
        labels: np.ndarray | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        pixels = np.asarray(pixels)
        if pixels.dtype != np.uint8 or pixels.ndim not in (3, 4):
            raise ImageError(
                f"expected uint8 images N x H x W or N x H x W x C, got {pixels.dtype} "
                f"of shape {tuple(pixels.shape)}"
            )
        if len(pixels) == 0:
            raise ImageError("no images given; give at least one")
        self._array, self._name = pixels, name
        self.spec = f"{name} ({len(pixels)} images)"
        self._labels = (
            np.full(len(pixels), -1, dtype=np.int64)
            if labels is None
            else np.asarray(labels, dtype=np.int64)
        )
        if self._labels.shape != (len(pixels),):
            raise ImageError(f"{len(pixels)} images but labels of shape {self._labels.shape}")
        self.class_names = None if class_names is None else tuple(class_names)

    def __len__(self) -> int:
        return len(self._array)

    def names(self, start: int = 0, stop: int | None = None) -> list[str]:
        start, stop = self._bounds(start, stop)
        return [f"{self._name}[{i}]" for i in range(start, stop)]

    def pixels(self, start: int, stop: int) -> list[np.ndarray] | np.ndarray:
        start, stop = self._bounds(start, stop)
        return self._array[start:stop]


def as_spec_or_images(images: Any, channels: int | None = None) -> Any:
    """A path as its SPEC string, a Pillow image (or a list of them) as loaded images;
    anything else as it is. One input path for every probe's images."""
    from PIL import Image

    if isinstance(images, os.PathLike):
        return os.fspath(images)
    if isinstance(images, Image.Image):
        images = [images]
    if isinstance(images, (list, tuple)) and images and isinstance(images[0], Image.Image):
        return [
            InputImage(f"image {i}" if len(images) > 1 else "image", to_pixels(im, channels))
            for i, im in enumerate(images)
        ]
    return images


def names_images(value: Any) -> bool:
    """Whether ``value`` is a SPEC, a path or a Pillow image (what :func:`pick_image` reads)."""
    from PIL import Image

    return isinstance(value, (str, os.PathLike, Image.Image))


def open_images(
    spec: str | Sequence[InputImage] | ImageStream, *, input_spec: InputSpec | None = None
) -> ImageStream:
    """The images of a SPEC (or a list of loaded images) as a stream; nothing is capped.

    With ``input_spec`` the pixels get its channel count as they are read. A SPEC's
    mistakes (no such file, unknown dataset or split, a range outside the split) are
    raised here, before any image is read.
    """
    if isinstance(spec, ImageStream):
        return spec
    channels = None if input_spec is None else input_spec.channels
    spec = as_spec_or_images(spec, channels)
    if not isinstance(spec, str):
        images = list(spec)
        if not images:
            raise ImageError("no images given; give at least one")
        if not all(isinstance(im, InputImage) for im in images):
            raise ImageError(
                "expected a SPEC or a list of InputImage (see convscope.resolve_images)"
            )
        return ListStream(images, f"{len(images)} images")
    text = spec.strip()
    if not text:
        raise ImageError(f"the image SPEC is empty; give {FORMS}")
    path = Path(text).expanduser()
    if path_exists(path):
        if path.is_dir():
            return FolderStream(path, channels)
        return ListStream([InputImage(path.name, read_pixels(path, channels))], text)
    if text.startswith("sample:"):
        pixels = sample_image(text.split(":", 1)[1])
        if channels is not None:
            pixels = match_channels(pixels, channels)
        return ListStream([InputImage(text, pixels)], text)
    if _WINDOWS_DRIVE.match(text) or ":" not in text:
        raise ImageError(f"no such file or folder: {text}; give {FORMS}")
    dataset, split, start, stop = parse_dataset_spec(text, limit=None)
    return DatasetStream(dataset, split, start, stop, channels)


def pick_image(
    images: str | Sequence[InputImage] | ImageStream,
    index: int = 0,
    *,
    input_spec: InputSpec | None = None,
) -> tuple[InputImage, int]:
    """The image at ``index`` of what ``images`` names, and how many it names.

    The one rule for probes that explain one image (explain, attribute, apply-kernel,
    the feature-map figure): a SPEC naming several gives the one at ``index`` (default
    the first), and the caller says which it used. Only that image is read.
    """
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ImageError(f"the image index counts from 0, got {index!r}")
    stream = open_images(images, input_spec=input_spec)
    count = len(stream)
    if index >= count:
        raise ImageError(
            f"--index {index} is out of range: {stream.spec} names {count} image(s), "
            f"so the index must be 0-{count - 1}"
        )
    return stream.image(index), count


def chosen_image_note(spec: str, count: int, index: int, name: str) -> str | None:
    """What to tell a user whose SPEC named several images: which one was used."""
    if count <= 1:
        return None
    which = "the first" if index == 0 else f"image {index}"
    return f"{spec} names {count} images; using {which}, {name} (--index I picks another)"
