"""Reading image files and bringing their pixels to what a model expects.

Policies, in one place:

- **Alpha** is composited over a stated ``background`` (black by default, because
  MNIST-style data is light-on-black); palette and colour-key (``tRNS``)
  transparency count as alpha.
- **Bit depth**: 16-bit images (``I;16``, ``I;16B``, ``I;16L``) are scaled by the
  type's full range (``round(v / 257)``: 65535 -> 255); 32-bit integer (``I``) and
  float (``F``) images are scaled by the image's own range (min -> 0, max -> 255;
  a constant image becomes 0, NaN becomes 0, +inf 255, -inf 0; an image with no
  finite value is an error).
- **Colour to gray** uses ITU-R 601-2 luma (Pillow's ``convert("L")``); gray to
  colour repeats the gray value in R, G and B.
- **Resampling** is Pillow's antialiased ``BILINEAR`` in both directions, with
  ``reducing_gap=3.0`` to speed up large reductions (the same filter as
  torchvision's ``Resize`` on PIL images).
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import Dataset

from convscope.data.preprocess import InputSpec, ResizePolicy
from convscope.errors import ImageError

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
)
"""File extensions (lower case) that folder listings treat as images."""

RESAMPLE = Image.Resampling.BILINEAR
REDUCING_GAP = 3.0

_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "F"})
_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
_KEYED_MODES = frozenset({"1", "L", "P", "RGB"})

Background = int | tuple[int, int, int]
ImageSource = str | os.PathLike[str] | Image.Image | np.ndarray


# --------------------------------------------------------------------------- reading


def load_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open and fully decode an image file (first frame, EXIF orientation applied).

    The whole file is decoded here so that a truncated or corrupt file fails now,
    with its path in the message, rather than later inside a model.
    """
    p = Path(path)
    if not p.exists():
        raise ImageError(f"image file not found: {p}; check the path")
    if p.is_dir():
        raise ImageError(f"{p} is a directory, not an image file; give the path of one image")
    try:
        return decode_image(p, str(p))
    except OSError as exc:  # opening the file, not decoding it
        raise ImageError(
            f"cannot open {p}: {exc.strerror or exc}; check that it is readable"
        ) from exc


def decode_image(
    source: Path | BinaryIO, name: str, *, max_pixels: int | None = None
) -> Image.Image:
    """Fully decode the image in ``source`` (a file or bytes in memory) with the guards.

    Decompression bombs, non-images and truncated or corrupt files are an
    :class:`ImageError` naming ``name``. With ``max_pixels`` (the dashboard's uploads)
    anything larger, and anything past Pillow's bomb *warning*, is refused too; files
    are otherwise allowed up to Pillow's hard limit (they are resized to the model).
    """
    _quiet_libtiff()
    with warnings.catch_warnings():
        warnings.simplefilter("error" if max_pixels else "ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(source)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageError(
                f"{name} is too large to decode safely ({exc}); downscale it below "
                f"{(max_pixels or Image.MAX_IMAGE_PIXELS * 2):,} pixels first"
            ) from exc
        except UnidentifiedImageError as exc:
            raise ImageError(
                f"{name} is not an image Pillow can read; give a PNG, JPEG, BMP, GIF, WebP "
                "or TIFF file"
            ) from exc
        except OSError:
            raise  # opening the file itself failed: load_image says why
        except Exception as exc:  # a header Pillow cannot parse (ValueError, SyntaxError...)
            raise ImageError(
                f"{name} is truncated or corrupt ({exc}); re-export or re-download the image"
            ) from exc
        if max_pixels and img.width * img.height > max_pixels:
            img.close()
            raise ImageError(
                f"{name} is {img.width}x{img.height} pixels, more than {max_pixels:,}; "
                "downscale it first"
            )
        with img:
            try:
                img.seek(0)
                img.load()
            # Decoders raise many types (OSError, SyntaxError, ValueError, struct.error,
            # zlib.error, DecompressionBombError...) on bad files: all mean "unusable file".
            except Exception as exc:
                raise ImageError(
                    f"{name} is truncated or corrupt ({exc}); re-export or re-download the image"
                ) from exc
            return _upright(img)


@functools.cache
def _quiet_libtiff() -> None:
    """Stop libtiff printing its own errors on stderr (``TIFFReadDirectory: ...``).

    Pillow reports them as an exception, which :func:`decode_image` turns into one
    :class:`ImageError` line; libtiff's default handlers would print lines of their own
    before it, straight to file descriptor 2. Pillow's wheels bundle libtiff, found here
    among the loaded libraries; where it is not found, nothing changes.
    """
    import ctypes
    import re

    from PIL import _imaging  # noqa: F401  (loads libtiff)

    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return
    for path in sorted(set(re.findall(r"(/\S*/libtiff[^/\s]*\.so[^/\s]*)$", maps, re.M))):
        try:
            libtiff = ctypes.CDLL(path)
            libtiff.TIFFSetErrorHandler(None)
            libtiff.TIFFSetWarningHandler(None)
        except (OSError, AttributeError):
            continue


def _upright(img: Image.Image) -> Image.Image:
    """A copy of a decoded image turned by its EXIF orientation; bad EXIF is ignored."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # a malformed EXIF block should not make the pixels unusable
        return img.copy()


def read_pixels(
    path: str | os.PathLike[str], channels: int | None = None, *, background: Background = 0
) -> np.ndarray:
    """Load an image file as uint8 pixels (see :func:`to_pixels`), naming the file in errors."""
    img = load_image(path)
    try:
        return to_pixels(img, channels, background=background)
    except ImageError as exc:
        raise ImageError(f"{Path(path)}: {exc}") from exc


# --------------------------------------------------------------------------- conversion


def to_pixels(
    img: Image.Image, channels: int | None = None, *, background: Background = 0
) -> np.ndarray:
    """Convert a Pillow image of any mode to uint8 ``H x W`` or ``H x W x 3`` pixels.

    ``channels`` is 1 (gray), 3 (RGB) or None to keep the image's own kind (gray
    modes give ``H x W``, everything else ``H x W x 3``). Alpha is composited over
    ``background`` (a gray level or an RGB triple); see the module docstring for the
    bit-depth policy.
    """
    if img.width == 0 or img.height == 0:
        raise ImageError(
            f"the image is {img.width}x{img.height} pixels; an image needs a non-zero size"
        )
    want = natural_channels(img) if channels is None else _check_channels(channels)
    pixels = _decode(img, _background_rgb(background))
    return match_channels(pixels, want)


def natural_channels(img: Image.Image) -> int:
    """1 for gray modes (including 16/32-bit and float), 3 for everything else."""
    mode = img.mode
    return 1 if mode in _GRAY_MODES or mode.startswith("I;") else 3


def match_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """Bring uint8 ``H x W``, ``H x W x 1`` or ``H x W x 3`` pixels to 1 or 3 channels."""
    _check_channels(channels)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim == 2:
        return np.ascontiguousarray(pixels) if channels == 1 else np.stack([pixels] * 3, axis=2)
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        if channels == 3:
            return np.ascontiguousarray(pixels)
        return np.array(Image.fromarray(np.ascontiguousarray(pixels)).convert("L"))
    raise ImageError(
        f"expected pixels H x W or H x W x 3, got shape {tuple(pixels.shape)}; "
        "convert the image with convscope.data.images.to_pixels first"
    )


def _check_channels(channels: int) -> int:
    """Reject channel counts other than 1 and 3."""
    if channels not in (1, 3):
        raise ImageError(f"channels must be 1 (gray) or 3 (RGB), got {channels}")
    return channels


def _background_rgb(background: Background) -> tuple[int, int, int]:
    """Validate a gray level or RGB triple and return it as RGB."""
    values = (background,) * 3 if isinstance(background, int) else tuple(background)
    if len(values) != 3 or not all(isinstance(v, int) and 0 <= v <= 255 for v in values):
        raise ImageError(
            f"background must be a gray level 0-255 or an (R, G, B) triple, got {background!r}"
        )
    return values  # type: ignore[return-value]


def _has_alpha(img: Image.Image) -> bool:
    """Whether the image carries alpha, palette transparency or a colour key."""
    return img.mode in _ALPHA_MODES or (img.mode in _KEYED_MODES and "transparency" in img.info)


def _decode(img: Image.Image, background: tuple[int, int, int]) -> np.ndarray:
    """Pixels as uint8 ``H x W`` (gray modes) or ``H x W x 3``, alpha composited."""
    mode = img.mode
    if _has_alpha(img):
        return _composite(img, background)
    if mode in ("L", "RGB"):
        return np.array(img)
    if mode == "1":
        return np.array(img.convert("L"))
    if mode.startswith("I;16"):
        return _scale_16bit(np.array(img))
    if mode in ("I", "F") or mode.startswith("I;"):
        return _scale_min_max(np.array(img, dtype=np.float64))
    try:
        return np.array(img.convert("RGB"))
    except (ValueError, OSError) as exc:
        raise ImageError(
            f"cannot convert image mode {mode!r} to RGB or gray ({exc}); save it as PNG or JPEG"
        ) from exc


def _composite(img: Image.Image, background: tuple[int, int, int]) -> np.ndarray:
    """Composite an image with alpha over a solid background; returns ``H x W x 3``."""
    if img.mode == "La":
        img = img.convert("LA")
    try:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32)
    except (ValueError, OSError) as exc:
        raise ImageError(f"cannot read the alpha of image mode {img.mode!r} ({exc})") from exc
    alpha = rgba[:, :, 3:4] / 255.0
    bg = np.asarray(background, dtype=np.float32)
    out = rgba[:, :, :3] * alpha + bg * (1.0 - alpha)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _scale_16bit(values: np.ndarray) -> np.ndarray:
    """Scale 16-bit values by the type's full range: ``round(v / 257)``."""
    return np.rint(values.astype(np.float64) / 257.0).astype(np.uint8)


def _scale_min_max(values: np.ndarray) -> np.ndarray:
    """Scale 32-bit or float values by the image's finite range to 0..255."""
    finite = np.isfinite(values)
    if not finite.any():
        raise ImageError(
            "the image has no finite pixel value (all NaN or infinite); nothing to scale to 8 bits"
        )
    lo = float(values[finite].min())
    hi = float(values[finite].max())
    if hi == lo:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (np.where(np.isnan(values), lo, values) - lo) / (hi - lo) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- sizing


def fit_to_spec(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Bring uint8 pixels to ``spec.height x spec.width`` and ``spec.channels``.

    The size follows ``spec.resize`` (see :class:`ResizePolicy`); padding is zeros.
    Returns ``H x W`` for a gray spec and ``H x W x 3`` for an RGB one.
    """
    pixels = _check_pixels(pixels)
    if spec.channels == 1:
        pixels = match_channels(pixels, 1)
    h, w = pixels.shape[:2]
    target = (spec.height, spec.width)
    policy = spec.resize
    if policy is ResizePolicy.RESIZE:
        fitted = _resize(pixels, target)
    elif policy is ResizePolicy.CENTER_CROP:
        fitted = _place(_resize(pixels, _cover_size(h, w, target, spec.resize_to)), target)
    elif policy is ResizePolicy.PAD and h <= target[0] and w <= target[1]:
        fitted = _place(pixels, target)
    else:
        fitted = _place(_resize(pixels, _inside_size(h, w, target)), target)
    return match_channels(fitted, spec.channels)


UPSCALE_NOTE_FACTOR = 2.0
"""Scaling an image up by more than this is said: the model sees interpolated pixels."""


def upscale_factor(shape: tuple[int, ...], spec: InputSpec) -> float:
    """How much :func:`fit_to_spec` enlarges an image of ``shape`` (H, W[, C]); 1 if not."""
    h, w = int(shape[0]), int(shape[1])
    target = (spec.height, spec.width)
    policy = spec.resize
    if policy is ResizePolicy.RESIZE:
        size = target
    elif policy is ResizePolicy.CENTER_CROP:
        size = _cover_size(h, w, target, spec.resize_to)
    elif policy is ResizePolicy.PAD and h <= target[0] and w <= target[1]:
        return 1.0
    else:
        size = _inside_size(h, w, target)
    return max(1.0, size[0] / h, size[1] / w)


def upscale_note(name: str, shape: tuple[int, ...], spec: InputSpec) -> str | None:
    """A note when an image is scaled up by more than 2x to the model's input, else None."""
    factor = upscale_factor(shape, spec)
    if factor <= UPSCALE_NOTE_FACTOR:
        return None
    return (
        f"{name} is {shape[1]}x{shape[0]}, scaled up {factor:.1f}x to the model's "
        f"{spec.width}x{spec.height} input: the model sees interpolated pixels"
    )


def _check_pixels(pixels: np.ndarray) -> np.ndarray:
    """Reject arrays that are not non-empty uint8 ``H x W [x 1|3]`` pixels."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise ImageError(
            f"expected uint8 pixels, got {pixels.dtype}; convert with "
            "convscope.data.images.to_pixels first"
        )
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise ImageError(
            f"expected pixels H x W or H x W x 3, got shape {tuple(pixels.shape)}; "
            "composite alpha with convscope.data.images.to_pixels first"
        )
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise ImageError(f"the image is {pixels.shape[1]}x{pixels.shape[0]} pixels; it is empty")
    return pixels


def _inside_size(h: int, w: int, target: tuple[int, int]) -> tuple[int, int]:
    """Largest size with the image's aspect ratio that fits inside ``target``."""
    th, tw = target
    if h * tw >= w * th:
        return th, max(1, min(tw, round(w * th / h)))
    return max(1, min(th, round(h * tw / w))), tw


def _cover_size(h: int, w: int, target: tuple[int, int], resize_to: int | None) -> tuple[int, int]:
    """Size after scaling the shorter side to ``resize_to`` (default: just cover ``target``)."""
    th, tw = target
    if resize_to is not None:
        # torchvision's Resize(int): the longer side is truncated, not rounded.
        if h <= w:
            return resize_to, int(resize_to * w / h)
        return int(resize_to * h / w), resize_to
    if h * tw >= w * th:
        return max(th, round(h * tw / w)), tw
    return th, max(tw, round(w * th / h))


def _resize(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resample pixels to ``size`` (H, W) with antialiased bilinear filtering."""
    if pixels.shape[:2] == size:
        return pixels
    img = Image.fromarray(np.ascontiguousarray(pixels))
    return np.array(img.resize((size[1], size[0]), RESAMPLE, reducing_gap=REDUCING_GAP))


def _place(pixels: np.ndarray, target: tuple[int, int]) -> np.ndarray:
    """Centre pixels on a zero canvas of ``target`` size, cropping what overhangs."""
    h, w = pixels.shape[:2]
    th, tw = target
    if (h, w) == (th, tw):
        return pixels
    out = np.zeros((th, tw, *pixels.shape[2:]), dtype=np.uint8)
    src_y, dst_y, n_y = _overlap(h, th)
    src_x, dst_x, n_x = _overlap(w, tw)
    out[dst_y : dst_y + n_y, dst_x : dst_x + n_x] = pixels[src_y : src_y + n_y, src_x : src_x + n_x]
    return out


def _overlap(size: int, target: int) -> tuple[int, int, int]:
    """Source start, destination start and length when centring ``size`` in ``target``."""
    if size <= target:
        return 0, (target - size) // 2, size
    return round((size - target) / 2.0), 0, target


# --------------------------------------------------------------------------- tensors


def image_to_tensor(
    source: ImageSource, spec: InputSpec, *, background: Background = 0
) -> torch.Tensor:
    """Turn an image file, Pillow image or uint8 array into the model input ``1 x C x H x W``."""
    if isinstance(source, np.ndarray):
        pixels = source
    elif isinstance(source, Image.Image):
        pixels = to_pixels(source, spec.channels, background=background)
    else:
        pixels = read_pixels(source, spec.channels, background=background)
    fitted = fit_to_spec(pixels, spec)
    batch = fitted[None, :, :, None] if fitted.ndim == 2 else fitted[None]
    return spec.normalize(batch)


# --------------------------------------------------------------------------- folders


def is_image_file(path: Path) -> bool:
    """Whether ``path`` is a visible file with an image extension."""
    return (
        path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS
    )


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly inside ``folder`` (not recursive), sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if is_image_file(p))


class ImageFolder:
    """Images in ``ROOT/<class>/<image>``: sorted sub-folder names are the class names.

    Class folders are searched recursively; hidden files and folders are skipped.
    Items are loaded on access, so this suits folders too large to hold in memory.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        channels: int | None = None,
        background: Background = 0,
    ) -> None:
        self.root = Path(root)
        self.channels = None if channels is None else _check_channels(channels)
        self.background = _background_rgb(background)
        self._class_names, self._paths, self._labels = _scan_folder(self.root)

    @property
    def class_names(self) -> tuple[str, ...]:
        """The class names: the sorted names of the class sub-folders."""
        return self._class_names

    @property
    def paths(self) -> tuple[Path, ...]:
        """Every image file, grouped by class and sorted within a class."""
        return self._paths

    @property
    def labels(self) -> np.ndarray:
        """The int64 class index of every image, aligned with :attr:`paths`."""
        return self._labels.copy()

    def __len__(self) -> int:
        return len(self._paths)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        """The uint8 pixels (see :func:`to_pixels`) and class index of one image."""
        index = self._check_index(index)
        pixels = read_pixels(self._paths[index], self.channels, background=self.background)
        return pixels, int(self._labels[index])

    def __repr__(self) -> str:
        return (
            f"ImageFolder(root={str(self.root)!r}, n={len(self)}, classes={len(self._class_names)})"
        )

    def _check_index(self, index: int) -> int:
        """Normalise a possibly negative index, raising IndexError outside the folder."""
        n = len(self._paths)
        if not -n <= index < n:
            raise IndexError(f"index {index} is out of range for {n} images")
        return index % n

    def as_torch_dataset(self, spec: InputSpec) -> ImageFolderDataset:
        """A torch ``Dataset`` giving ``(C x H x W float tensor, label)`` fitted to ``spec``."""
        return ImageFolderDataset(self._paths, self._labels, spec, self.background)


class ImageFolderDataset(Dataset):
    """A torch ``Dataset`` over image files, loading and normalising one item at a time."""

    def __init__(
        self,
        paths: Sequence[Path],
        labels: np.ndarray,
        spec: InputSpec,
        background: Background = 0,
    ) -> None:
        self.paths = tuple(paths)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.spec = spec
        self.background = background

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x = image_to_tensor(self.paths[index], self.spec, background=self.background)
        return x[0], int(self.labels[index])


def _scan_folder(root: Path) -> tuple[tuple[str, ...], tuple[Path, ...], np.ndarray]:
    """Find the class folders and their image files under ``root``."""
    layout = "expected ROOT/<class name>/<image files>, one sub-folder per class"
    if not root.exists():
        raise ImageError(f"image folder not found: {root}; {layout}")
    if not root.is_dir():
        raise ImageError(f"{root} is not a folder; {layout}")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise ImageError(f"{root} has no class sub-folders; {layout}")
    paths: list[Path] = []
    labels: list[int] = []
    for label, folder in enumerate(class_dirs):
        files = _images_under(folder)
        if not files:
            raise ImageError(
                f"class folder {folder} has no image files ({_extensions()}); "
                "add images or remove the folder"
            )
        paths.extend(files)
        labels.extend([label] * len(files))
    names = tuple(p.name for p in class_dirs)
    return names, tuple(paths), np.asarray(labels, dtype=np.int64)


def _images_under(folder: Path) -> list[Path]:
    """Image files anywhere under ``folder``, skipping hidden files and folders, sorted."""
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if is_image_file(path):
            found.append(path)
    return sorted(found)


def _extensions() -> str:
    """The accepted image extensions, for messages."""
    return " ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
