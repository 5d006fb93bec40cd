"""Image SPECs: the one string form accepted wherever a command takes images.

A SPEC is one of:

- an image file: ``digit.png``;
- a folder: if it holds image files directly, those files (sorted by name, not
  recursive, no labels); otherwise, if it has sub-folders of images, the
  ``ROOT/<class>/<image>`` layout of :class:`~convscope.data.images.ImageFolder`
  (labels from the sorted sub-folder names);
- ``DATASET:SPLIT:INDEX``: one sample, e.g. ``mnist:test:12``;
- ``DATASET:SPLIT:A-B``: samples A (inclusive) to B (exclusive), e.g.
  ``fashion-mnist:test:0-16``;
- ``sample:NAME``: a photo that ships with scikit-learn (``sample:china``,
  ``sample:flower``) or scikit-image (``sample:chelsea``, ``sample:coffee``, ...; see
  :data:`SAMPLE_IMAGES`), so an RGB model has an input without any download.

A path that exists on disk always wins over the dataset form, so files whose
names contain ``:`` still work; ``C:\\...`` style paths are never read as datasets.
For :func:`resolve_images`, which loads every image at once (the commands that draw or
print each image), one SPEC names at most :data:`MAX_IMAGES` images; the streaming path,
:func:`convscope.data.stream.open_images` (``features --npy``, ``convscope.activations``),
reads any range or folder in slices and has no cap.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from convscope.data.images import (
    fit_to_spec,
    read_pixels,
)
from convscope.data.preprocess import InputSpec
from convscope.errors import ImageError
from convscope.naming import close_matches

MAX_IMAGES = 1024
"""The most images one SPEC may name when all are loaded at once (ranges and folders)."""

STREAM_HINT = "`features --npy` and convscope.activations stream any number"
"""Said with the cap: the commands that stream have none."""

FORMS = (
    "an image file, a folder of images, DATASET:SPLIT:INDEX, DATASET:SPLIT:A-B or "
    "sample:NAME such as sample:chelsea (e.g. mnist:test:12 or fashion-mnist:test:0-16)"
)

_DATASET_SPEC = re.compile(r"^(?P<dataset>[A-Za-z0-9][\w.-]*):(?P<split>[\w-]+):(?P<select>.*)$")
_INDEX = re.compile(r"^\d+$")
_RANGE = re.compile(r"^(?P<start>\d+)-(?P<stop>\d+)$")
_MAX_SELECT = 100  # characters of INDEX or A-B; int() refuses over 4300 digits
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


SAMPLE_IMAGES: dict[str, tuple[str, str]] = {
    "astronaut": ("skimage", "data/astronaut.png"),
    "brick": ("skimage", "data/brick.png"),
    "camera": ("skimage", "data/camera.png"),
    "chelsea": ("skimage", "data/chelsea.png"),
    "china": ("sklearn", "datasets/images/china.jpg"),
    "coffee": ("skimage", "data/coffee.png"),
    "coins": ("skimage", "data/coins.png"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
    "grass": ("skimage", "data/grass.png"),
    "gravel": ("skimage", "data/gravel.png"),
    "motorcycle": ("skimage", "data/motorcycle_left.png"),
    "rocket": ("skimage", "data/rocket.jpg"),
}
"""Photos usable offline as ``sample:NAME``: name -> (package, file inside it).

scikit-learn (a core dependency) ships ``china`` and ``flower``; scikit-image (in the
dev set-up, ``pip install scikit-image``) ships the others: ``chelsea`` (a cat),
``coffee`` (a cup of espresso), ``astronaut``, ``motorcycle``, ``rocket`` in colour and
``camera``, ``coins``, ``brick``, ``grass``, ``gravel`` in gray.
"""

_SAMPLE_PACKAGES = {"sklearn": "scikit-learn", "skimage": "scikit-image"}


def sample_image(name: str) -> np.ndarray:
    """A sample photo (:data:`SAMPLE_IMAGES`), uint8 ``H x W x 3`` (``H x W`` when gray).

    Read from the package's folder without importing the package (scikit-learn takes
    about a second to import); scikit-learn's own ``load_sample_image`` is the fallback.
    """
    if name not in SAMPLE_IMAGES:
        samples = [f"sample:{n}" for n in SAMPLE_IMAGES]
        raise ImageError(
            f"no sample image {name!r}: the samples are {', '.join(samples)}"
            f"{close_matches(f'sample:{name}', samples)}"
        )
    from importlib.util import find_spec

    package, file = SAMPLE_IMAGES[name]
    spec = find_spec(package)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / file
        if path.is_file():
            return read_pixels(path)
    if package == "sklearn":
        from sklearn.datasets import load_sample_image

        return np.array(load_sample_image(Path(file).name), dtype=np.uint8)
    distribution = _SAMPLE_PACKAGES[package]
    if spec is None:
        raise ImageError(
            f"sample:{name} is a photo that ships with {distribution}, which is not "
            f"installed; run `pip install {distribution}`"
        )
    raise ImageError(f"sample:{name}: {distribution} is installed but has no {file}")


@dataclass(frozen=True, eq=False)
class InputImage:
    """One image named by a SPEC, as loaded (not yet fitted to a model's input size)."""

    name: str
    pixels: np.ndarray
    label: int | None = None
    label_name: str | None = None


def path_exists(path: Path) -> bool:
    """``path.exists()``, but False where the OS refuses the name itself (too long for a
    file name, ``ENAMETOOLONG``), which ``Path.exists`` raises instead: no file has it."""
    try:
        return path.exists()
    except OSError:
        return False


def resolve_images(spec: str, *, input_spec: InputSpec | None = None) -> list[InputImage]:
    """Load the images a SPEC names; with ``input_spec`` the pixels get its channel count.

    Every image is loaded at once, so a SPEC may name at most :data:`MAX_IMAGES`; the
    streaming path (:func:`convscope.data.stream.open_images`) reads any number.
    """
    from convscope.data.stream import FolderStream, open_images

    text = spec.strip()
    names_dataset = (
        ":" in text and not text.startswith("sample:") and not _WINDOWS_DRIVE.match(text)
    )
    if names_dataset and not path_exists(Path(text).expanduser()):
        parse_dataset_spec(text)  # a range over the cap is refused before any loading
    stream = open_images(spec, input_spec=input_spec)
    if isinstance(stream, FolderStream) and len(stream) > MAX_IMAGES:
        raise ImageError(
            f"{stream.folder} holds {len(stream)} images, more than {MAX_IMAGES} at a time for "
            f"a command that loads them all; split it into smaller folders ({STREAM_HINT})"
        )
    return stream.images()


def parse_dataset_spec(spec: str, *, limit: int | None = -1) -> tuple[str, str, int, int]:
    """Split ``DATASET:SPLIT:INDEX`` or ``DATASET:SPLIT:A-B`` into name, split and a range.

    A range longer than ``limit`` images is refused (default :data:`MAX_IMAGES`;
    ``None``: no cap, for the streaming path).
    """
    limit = MAX_IMAGES if limit == -1 else limit
    match = _DATASET_SPEC.match(spec)
    select = match["select"] if match else ""
    if match and len(select) > _MAX_SELECT:
        raise ImageError(f"{spec[:60]!r}... selects by a number too long to be an index")
    if match and _INDEX.match(select):
        start = int(select)
        return match["dataset"], match["split"], start, start + 1
    ranged = _RANGE.match(select)
    if match is None or ranged is None:
        raise ImageError(f"{spec!r} is not an existing file or folder, nor a SPEC; give {FORMS}")
    start, stop = int(ranged["start"]), int(ranged["stop"])
    if start >= stop:
        raise ImageError(
            f"empty range {start}-{stop} in {spec!r}: A must be less than B "
            f"(A inclusive, B exclusive), e.g. {match['dataset']}:{match['split']}:{start}-{start + 1}"
        )
    if limit is not None and stop - start > limit:
        raise ImageError(
            f"{spec!r} names {stop - start} images, more than {limit} at a time for a "
            f"command that loads them all; use a smaller range, e.g. "
            f"{match['dataset']}:{match['split']}:{start}-{start + limit} ({STREAM_HINT})"
        )
    return match["dataset"], match["split"], start, stop


def to_batch(images: Sequence[InputImage | np.ndarray], input_spec: InputSpec) -> torch.Tensor:
    """Fit images to ``input_spec`` and normalise them into one ``N x C x H x W`` batch."""
    if len(images) == 0:
        raise ImageError("no images to batch; give at least one image")
    fitted = [
        fit_to_spec(im.pixels if isinstance(im, InputImage) else im, input_spec) for im in images
    ]
    batch = np.stack(fitted)
    if batch.ndim == 3:
        batch = batch[..., None]
    return input_spec.normalize(batch)


def _check_range(dataset: str, split: str, start: int, stop: int, n: int) -> None:
    """Raise when ``start:stop`` does not lie inside a split of ``n`` images."""
    where = f"{dataset}:{split} has {n} images"
    if n == 0:
        raise ImageError(f"{where}; there is nothing to select")
    if stop - start == 1 and start >= n:
        raise ImageError(f"index {start} is out of range: {where}, valid indices are 0-{n - 1}")
    if stop > n:
        raise ImageError(
            f"range {start}-{stop} is out of range: {where}; A must be 0-{n - 1} and B at most {n}"
        )
