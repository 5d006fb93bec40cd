"""Tiles: a layer's maps (or kernels) as one 8-bit PNG the page colours itself.

The model explorer draws feature maps and kernels on a canvas with its own colour
maps, colour bars and clickable units, so the server sends the numbers, not a figure:
every tile side by side in one PNG, ``columns`` to a row (tile ``i`` at row
``i // columns``, column ``i % columns``, no gap; cells past the last tile are 0), and
the numbers to read the pixels back (docs/dashboard/api.md):

- feature maps are quantised each over its own range: pixel ``q`` of tile ``i`` stands
  for ``map_min[i] + q / 255 * (map_max[i] - map_min[i])`` (a constant map is all 0 and
  stands for its value), so a decoded value is within half a step, ``(map_max[i] -
  map_min[i]) / 510``, of the layer's true output. Non-finite values are 0 and their
  maps are listed in ``nonfinite``; the ranges are those of the finite values;
- kernel tiles are the kernel grid's display values (:class:`KernelGrid` ``tiles``, the
  output of :func:`~convscope.probe.kernels.kernel_images` normalised), 0..1 as 0..255
  (a diverging gray tile's -1..1 too), gray or RGB; ``range`` says what black and white
  stand for in weight units (null for ``per-kernel``, where every kernel has its own).

Pure numpy and Pillow: no model, no matplotlib. PNGs are written with zlib level 1 and
its run-length strategy (:data:`COMPRESS_LEVEL`, :data:`COMPRESS_TYPE`): on real maps
(``resnet50``'s ``layer1`` at 224x224, random init: 896 x 896 pixels) 18 ms for 518 KB
on 2 cores, where level 1 with zlib's default strategy takes 24 ms for 548 KB.
"""

from __future__ import annotations

import io
import math
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from convscope.errors import ConvscopeError

if TYPE_CHECKING:
    from convscope.probe.kernels.display import KernelGrid

COMPRESS_LEVEL = 1
"""zlib level of the tile PNGs: fast to write, the page decodes any level alike."""

COMPRESS_TYPE = zlib.Z_RLE
"""zlib strategy of the tile PNGs: run lengths, faster and smaller than the default on maps."""

MAX_VALUES = 4096
"""Most values a vector layer answers without ``top``."""

MAX_TILE_PIXELS = 64 * 1024**2
"""Most pixels of one tile PNG (64 M); a larger layer must be asked with ``top``."""


@dataclass(frozen=True, eq=False)
class Tiles:
    """A tile picture and its numbers: ``meta`` is the JSON answer without ``png``;
    ``pixels`` the PNG's ``uint8`` pixels (``H x W`` gray or ``H x W x 3``), None for a
    vector layer, and ``png`` their encoding."""

    meta: dict[str, Any]
    pixels: np.ndarray | None = None
    png: bytes | None = None


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of ``uint8`` ``H x W`` (gray) or ``H x W x 3`` (RGB) pixels, written fast."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(
        buffer, format="PNG", compress_level=COMPRESS_LEVEL, compress_type=COMPRESS_TYPE
    )
    return buffer.getvalue()


def tile_columns(n: int) -> int:
    """Columns of a tile picture of ``n`` tiles: the kernel grid's (8 for 64, 5 for 20)."""
    from convscope.probe.kernels.display import grid_shape

    return grid_shape(n)[1] if n > 0 else 1


def mosaic(tiles: np.ndarray, columns: int) -> np.ndarray:
    """``N x h x w`` (or ``N x h x w x 3``) tiles side by side, ``columns`` to a row,
    no gap; cells past the last tile are 0."""
    n, h, w = tiles.shape[:3]
    rows = max(1, math.ceil(n / columns))
    rest = tiles.shape[3:]
    padded = np.zeros((rows * columns, h, w, *rest), dtype=tiles.dtype)
    padded[:n] = tiles
    grid = padded.reshape(rows, columns, h, w, *rest).swapaxes(1, 2)
    return np.ascontiguousarray(grid.reshape(rows * h, columns * w, *rest))


def quantize_maps(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``K x ...`` maps as ``uint8`` codes over each map's own finite range.

    Returns ``(codes, lo, hi, finite)``: ``codes`` the shape of ``maps``, ``lo``/``hi`` the
    per-map finite min and max (0 for a map with no finite value), ``finite`` whether
    each map is wholly finite. The arithmetic is float32 (a code is off by at most a
    rounding of its half step, never by a step).
    """
    k = maps.shape[0]
    flat = np.ascontiguousarray(maps, dtype=np.float32).reshape(k, -1)
    lo, hi = flat.min(axis=1), flat.max(axis=1)  # NaN or inf in a map shows here
    finite = np.isfinite(lo) & np.isfinite(hi)
    if not finite.all():
        ok = np.isfinite(flat)
        finite = ok.all(axis=1)
        lo = np.where(ok, flat, np.inf).min(axis=1)
        hi = np.where(ok, flat, -np.inf).max(axis=1)
        empty = ~ok.any(axis=1)
        lo[empty], hi[empty] = 0, 0
        flat = np.where(ok, flat, lo[:, None])  # coded 0 below, without NaN arithmetic
    span = hi.astype(np.float64) - lo.astype(np.float64)
    scale = np.divide(255.0, span, out=np.zeros_like(span), where=span > 0).astype(np.float32)
    work = np.subtract(flat, lo[:, None], dtype=np.float32)
    work *= scale[:, None]
    np.rint(work, out=work)
    np.clip(work, 0, 255, out=work)
    return work.astype(np.uint8).reshape(maps.shape), lo, hi, finite


def _number(value: float) -> float | None:
    """A JSON-ready float: None for NaN or infinity (JSON has neither)."""
    value = float(value)
    return value if math.isfinite(value) else None


def vector_answer(values: np.ndarray, top: int | None) -> tuple[dict[str, Any], list[int] | None]:
    """``{"values"}`` of a vector layer (all of them, or the ``top`` largest with their
    ``channels``); more than :data:`MAX_VALUES` without ``top`` is an error naming it."""
    from convscope.probe.features import most_active

    flat = values.reshape(-1)
    if top is None:
        if flat.size > MAX_VALUES:
            raise ConvscopeError(
                f"the layer outputs {flat.size:,} values, more than {MAX_VALUES:,} at once; "
                "ask top=K for the K largest"
            )
        return {"values": [_number(v) for v in flat]}, None
    channels = [int(c) for c in most_active(flat[:, None], top)]
    return {"values": [_number(flat[c]) for c in channels]}, channels


def feature_tiles(maps: np.ndarray, top: int | None = None) -> Tiles:
    """The tiles of one input's output of a layer (``C x H x W``, ``C x L`` or a vector).

    ``top`` keeps the ``top`` channels of highest mean, most active first; otherwise
    every channel in order. ``min``/``max`` are over the whole (finite) output, as
    ``features --json`` says them; ``map_*`` over each shown map.
    """
    from convscope.probe.features import most_active

    if top is not None and top < 1:
        raise ConvscopeError(f"top must be at least 1, got {top}")
    maps = np.asarray(maps)
    if maps.ndim <= 1:
        answer, channels = vector_answer(maps, top)
        meta = {"shape": [int(maps.size)], **answer}
        return Tiles(meta if channels is None else meta | {"channels": channels})
    if maps.ndim > 3:
        raise ConvscopeError(
            f"the layer's output has shape {list(maps.shape)} per input; tiles show "
            "C x H x W or C x L outputs"
        )
    shape = [int(s) for s in maps.shape]
    count = maps.shape[0]
    if top is None:
        channels = np.arange(count)
        shown = maps
    else:
        channels = most_active(maps, min(top, count))
        shown = maps[channels]
    tiles = shown if shown.ndim == 3 else shown[:, None, :]
    h, w = tiles.shape[1:]
    columns = tile_columns(len(channels))
    rows = math.ceil(len(channels) / columns)
    if rows * h * columns * w > MAX_TILE_PIXELS:
        raise ConvscopeError(
            f"the tiles of {len(channels)} maps of {h}x{w} would be "
            f"{rows * h} x {columns * w} pixels; ask top=K for fewer maps"
        )
    codes, lo, hi, finite = quantize_maps(tiles)
    flat = tiles.reshape(len(channels), -1)
    means = flat.mean(axis=1, dtype=np.float64) if finite.all() else _finite_means(flat)
    if len(channels) == count and finite.all():  # the maps' own ranges give the layer's
        whole = np.array([lo.min(), hi.max()]) if count else maps.reshape(-1)
    else:
        good = np.isfinite(maps)
        whole = maps if good.all() else maps[good]
    meta: dict[str, Any] = {
        "shape": shape,
        "channels": np.asarray(channels, dtype=np.int64).tolist(),
        "columns": columns,
        "tile": [int(h), int(w)],
        "min": _number(whole.min()) if whole.size else None,
        "max": _number(whole.max()) if whole.size else None,
        "map_min": lo.astype(np.float64).tolist(),  # float32 to float64 is exact
        "map_max": hi.astype(np.float64).tolist(),
        "map_mean": means.tolist() if np.isfinite(means).all() else [_number(v) for v in means],
    }
    if not finite.all():
        meta["nonfinite"] = [int(c) for c, ok in zip(channels, finite, strict=True) if not ok]
    pixels = mosaic(codes, columns)
    return Tiles(meta, pixels, encode_png(pixels))


def _finite_means(values: np.ndarray) -> np.ndarray:
    """Per-row means of the finite values (NaN for a row with none), without warnings."""
    ok = np.isfinite(values)
    counts = ok.sum(axis=1)
    sums = np.where(ok, values, 0).sum(axis=1, dtype=np.float64)
    return np.divide(sums, counts, out=np.full(len(values), np.nan), where=counts > 0)


def kernel_codes(grid: KernelGrid) -> np.ndarray:
    """The kernel grid's display tiles as ``uint8`` codes: 0..1 (a diverging gray
    tile's -1..1) to 0..255; undrawn (non-finite) kernels are 0."""
    values = grid.tiles.astype(np.float64)
    if not grid.colour and grid.normalization == "diverging":
        values = (values + 1.0) / 2.0
    codes = np.rint(values * 255.0)
    codes[~np.isfinite(codes)] = 0
    return np.clip(codes, 0, 255).astype(np.uint8)


def kernel_tiles(grid: KernelGrid) -> Tiles:
    """The tiles of a kernel grid: its display values as 8-bit gray or RGB, laid out as
    the grid (``grid`` rows x ``columns``) and what black and white stand for."""
    codes = kernel_codes(grid)
    h, w = codes.shape[1:3]
    meta: dict[str, Any] = {
        "model": grid.model,
        "weights": grid.model_weights,
        "layer": grid.layer,
        "shape": list(grid.shape),
        "normalization": grid.normalization,
        "reduce": grid.reduce,
        "layout": grid.layout,
        "channel_order": grid.channel_order,
        "rgb": grid.colour,
        "grid": [grid.rows, grid.cols],
        "columns": grid.cols,
        "tile": [int(h), int(w)],
        "shown": grid.shown,
        "range": None if grid.scale is None else [float(v) for v in grid.scale],
        "diverging": grid.normalization == "diverging",
        "caption": grid.caption,
        "nonfinite": list(grid.nonfinite),
    }
    pixels = mosaic(codes, grid.cols)
    return Tiles(meta, pixels, encode_png(pixels))
