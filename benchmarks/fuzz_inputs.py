"""Fuzz the readers and parsers that take user input, with hypothesis.

Each family generates small inputs and hands each to convscope as a user would:

- ``idx``: IDX files, raw and gzipped (magic, dimension counts, sizes, truncation);
- ``image``: PNG, JPEG, GIF, BMP, TIFF and WebP files of every mode (16-bit, 32-bit int
  and float, CMYK, LA/PA, palette with transparency and palette without its PLTE chunk),
  animated GIF/APNG/WebP, huge sizes in the header, bytes flipped and cut;
- ``keras``: ``.keras`` archives (config.json mutated into other JSON, members missing),
  loaded with ``load_model`` (read, then the model its config describes built);
- ``h5``: Keras-made Keras 2 and Keras 3 ``.h5`` files, a Keras 3 ``model.weights.h5``
  alone and zipped back into a ``.keras``, edited with h5py (groups and attributes
  deleted or of the wrong type, the model config edited, datasets of the wrong shape or
  dtype, NaN, huge declared sizes, links) or damaged byte by byte, loaded with ``load_model``;
- ``checkpoint``: convscope checkpoints (truncated, other pickles, wrong keys);
- ``spec`` and ``classes``: SPEC strings and the class grammar (unicode, huge numbers,
  negative ranges, empty);
- ``cli``: argv lists for ``convscope predict/kernels/features/data show/maximize/runs
  show/embed/examples/summary/layers``, run in-process in a fresh working folder with a
  CONVSCOPE_HOME holding the local datasets (no network), some naming a damaged image.

It checks that:

- every failure is a :class:`convscope.errors.ConvscopeError` (any other exception is a
  *crash*; hypothesis shrinks it to the smallest input, printed as repr / hex); for the
  CLI, the exit status is 0 or 2 and a failure is exactly one ``convscope: error:`` line
  on stderr (file descriptor 2 included, where C libraries write), nothing on stdout;
- no case runs past ``--case-timeout`` seconds (a *hang*; bounded with ``SIGALRM``; a
  case stuck in C code past three times that ends the run, see :func:`stuck_watch`);
- memory stays bounded: inputs are a few KB (huge sizes are *declared*), and the long run
  caps the address space (``--memory-gb``), so an allocation past it is a crash;
- nothing is left behind: the case's folder holds only the input it was given (for the
  CLI: no ``*.part`` or other hidden temporary file in the folder or the home).

Run::

    .venv/bin/python benchmarks/fuzz_inputs.py [--cases 10000] [--seed 0] [--family h5]

Each family prints its cases, crashes (with the smallest input), hangs and slowest case;
the last line is one JSON object: ``{"cases", "crashes", "hangs", "slowest_ms",
"slowest_family", "seconds", "load", "families": {name: cases}}``.
``tests/fuzz/test_fuzz_inputs.py`` runs the same properties briefly, and keeps each
crash found as a regression test with its smallest input.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import faulthandler
import gzip
import io
import json
import os
import pickle
import shutil
import signal
import socket
import struct
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hypothesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convscope.errors import ConvscopeError

CASE_TIMEOUT_S = 5.0
MEMORY_GB = 10.0
"""The long run's address-space limit: torch alone maps about 3.5 GB, the rest is the cases'."""
SHOWN_BYTES = 96


class CaseTimeout(BaseException):
    """A case ran past its deadline (a BaseException, so ``except Exception`` can't eat it)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`CaseTimeout` in the main thread after ``seconds``."""

    def expire(signum: int, frame: Any) -> None:
        raise CaseTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def limit_memory(gigabytes: float) -> None:
    """Cap the process's address space (``RLIMIT_AS``) so a case cannot take all memory."""
    import resource

    limit = int(gigabytes * (1 << 30))
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


STUCK_LOG = Path(tempfile.gettempdir()) / f"convscope-fuzz-stuck-{os.getpid()}.txt"
"""Where a case stuck in C code (where SIGALRM cannot reach) leaves its input and stack."""
STUCK_FACTOR = 3


@contextlib.contextmanager
def stuck_watch(value: Any, seconds: float) -> Iterator[None]:
    """End the process (exit 1) if the case is still running after ``seconds``.

    The last resort for a hang inside a C library that holds the GIL (HDF5 looping on a
    corrupt heap): faulthandler's own thread writes the case's input and every thread's
    stack to :data:`STUCK_LOG`, since nothing else can run.
    """
    try:
        with STUCK_LOG.open("w") as log:
            log.write(f"a fuzz case stuck past {seconds:g} s; its input:\n{shown(value)}\n")
            log.flush()
            faulthandler.dump_traceback_later(seconds, exit=True, file=log)
            try:
                yield
            finally:
                faulthandler.cancel_dump_traceback_later()
    finally:  # the case ended, failing or not: nothing to tell
        STUCK_LOG.unlink(missing_ok=True)


def shown(value: Any) -> str:
    """A short printable form of an input: hex for bytes, repr otherwise."""
    if isinstance(value, (bytes, bytearray)):
        data = bytes(value)
        more = f"... ({len(data)} bytes)" if len(data) > SHOWN_BYTES else ""
        return f"hex:{data[:SHOWN_BYTES].hex()}{more}"
    text = repr(_abbrev(value))
    return text if len(text) <= 240 else f"{text[:240]}... ({len(text)} chars)"


def _abbrev(value: Any) -> Any:
    """``value`` with tensors and long byte strings replaced by a short description."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"<{type(value).__name__} {tuple(value.shape)}>"
    if isinstance(value, (bytes, bytearray)) and len(value) > SHOWN_BYTES:
        return f"<{len(value)} bytes: {bytes(value[:SHOWN_BYTES]).hex()}...>"
    if isinstance(value, dict):
        if len(value) > 4 and all(hasattr(v, "shape") for v in value.values()):
            return f"<state dict of {len(value)} tensors>"
        return {k: _abbrev(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_abbrev(v) for v in value)
    return value


def _where(exc: BaseException) -> str:
    """The innermost frame of ``exc`` inside convscope (else the innermost), as file:line."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "convscope" in f.filename and "fuzz_inputs" not in f.filename]
    frame = (ours or frames or [None])[-1]
    return f"{Path(frame.filename).name}:{frame.lineno}" if frame else "?"


@dataclass
class Crash:
    kind: str  # exception type, or "stray files"
    where: str
    message: str
    smallest: str


@dataclass
class FamilyResult:
    name: str
    cases: int = 0
    crashes: dict[tuple[str, str], Crash] = field(default_factory=dict)
    hangs: list[str] = field(default_factory=list)
    slowest_ms: float = 0.0
    slowest_input: str = ""


# A family: a strategy of inputs, and a function that writes the input into the case's
# folder (returning that folder's expected contents) and hands it to convscope.
Target = Callable[[Any, Path], None]


@dataclass(frozen=True)
class Family:
    name: str
    strategy: st.SearchStrategy
    target: Target
    warm: Callable[[], None] | None = None  # set-up before the first case, untimed


def warm_up() -> None:
    """Import what the targets import, so that no case's time includes an import."""
    import convscope.data.idx
    import convscope.data.images
    import convscope.data.spec
    import convscope.models.checkpoint
    import convscope.models.keras.files
    import convscope.probe.classes  # noqa: F401


def run_family(
    family: Family,
    cases: int,
    *,
    seed: int | None = None,
    case_timeout: float = CASE_TIMEOUT_S,
    tmp_root: Path | None = None,
) -> FamilyResult:
    """Run ``cases`` examples of one family; return what they found (never raises)."""
    warm_up()
    if family.warm is not None:
        family.warm()
    result = FamilyResult(family.name)

    def check(value: Any) -> None:
        result.cases += 1
        with tempfile.TemporaryDirectory(dir=tmp_root, prefix="fuzz-") as folder:
            tmp = Path(folder)
            start = time.perf_counter()
            try:
                with stuck_watch(value, STUCK_FACTOR * case_timeout), time_limit(case_timeout):
                    family.target(value, tmp)
            except ConvscopeError:
                pass
            except CaseTimeout:
                result.hangs.append(shown(value))
                return
            except Exception as exc:
                key = (type(exc).__name__, _where(exc))
                # Hypothesis replays the shrunk example last: the last one kept is the smallest.
                message = " ".join(str(exc).split())[:160]
                result.crashes[key] = Crash(key[0], key[1], message, shown(value))
                raise
            finally:
                elapsed = (time.perf_counter() - start) * 1000
                if elapsed > result.slowest_ms:
                    result.slowest_ms, result.slowest_input = elapsed, shown(value)
            given_names = {p.name for p in tmp.iterdir() if p.name.startswith("input")}
            stray = sorted(p.name for p in tmp.iterdir() if p.name not in given_names)
            if stray:
                key = ("stray files", ",".join(stray)[:80])
                result.crashes[key] = Crash(key[0], "", f"left {stray}", shown(value))
                raise AssertionError(f"stray files {stray}")

    test = settings(
        max_examples=cases,
        deadline=None,  # the per-case bound is time_limit, a hard one
        database=None,
        derandomize=seed is None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=True,
        print_blob=False,
        verbosity=hypothesis.Verbosity.quiet,
    )(given(family.strategy)(check))
    if seed is not None:
        test = hypothesis.seed(seed)(test)
    # Crashes are recorded by check; a dependency's warnings (numpy casts) are not failures.
    with contextlib.suppress(Exception), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        test()
    return result


# --------------------------------------------------------------------------- mutations


@st.composite
def mutated(draw: st.DrawFn, data: bytes, max_edits: int = 4) -> bytes:
    """``data`` with a few bytes flipped or set, a slice cut out, truncated or extended."""
    out = bytearray(data)
    for _ in range(draw(st.integers(0, max_edits))):
        op = draw(st.sampled_from(["flip", "set", "truncate", "cut", "append"]))
        if not out and op != "append":
            continue
        i = draw(st.integers(0, max(len(out) - 1, 0)))
        if op == "flip":
            out[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            out[i] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, draw(st.integers(0, 255))]))
        elif op == "truncate":
            del out[i:]
        elif op == "cut":
            del out[i : i + draw(st.integers(1, 16))]
        else:
            out += draw(st.binary(max_size=16))
    return bytes(out)


HUGE = [0, 1, 255, 65535, 1 << 16, (1 << 31) - 1, (1 << 32) - 1]


# --------------------------------------------------------------------------- IDX


@st.composite
def idx_files(draw: st.DrawFn) -> tuple[str, bytes]:
    from convscope.data.idx import IDX_DTYPES

    code = draw(st.sampled_from(sorted(IDX_DTYPES)))
    shape = draw(st.lists(st.integers(0, 4), min_size=1, max_size=4))
    size = IDX_DTYPES[code].itemsize
    count = 1
    for dim in shape:
        count *= dim
    raw = bytearray(bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape))
    raw += draw(st.binary(min_size=count * size, max_size=count * size))
    header = draw(st.sampled_from(["keep", "magic", "ndim", "dim"]))
    if header == "magic":
        raw[draw(st.integers(0, 3))] = draw(st.integers(0, 255))
    elif header == "ndim":
        raw[3] = draw(st.sampled_from([0, 5, 255, draw(st.integers(0, 255))]))
    elif header == "dim":
        at = 4 + 4 * draw(st.integers(0, len(shape) - 1))
        raw[at : at + 4] = struct.pack(">I", draw(st.sampled_from(HUGE)))
    data = draw(mutated(bytes(raw), max_edits=2))
    if draw(st.booleans()):
        return "gz", draw(mutated(gzip.compress(data, mtime=0), max_edits=2))
    return "raw", data


def idx_target(value: tuple[str, bytes], tmp: Path) -> None:
    from convscope.data.idx import read_idx

    kind, data = value
    path = tmp / ("input-ubyte.gz" if kind == "gz" else "input-ubyte")
    path.write_bytes(data)
    read_idx(path)


# --------------------------------------------------------------------------- images

IMAGE_MODES = {
    "PNG": ["L", "RGB", "RGBA", "P", "I;16", "I;16B", "1", "LA", "P-trns", "P-noplte"],
    "JPEG": ["L", "RGB", "CMYK"],
    "GIF": ["P", "L"],
    "BMP": ["1", "L", "P", "RGB", "RGBA"],
    "TIFF": ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "I;16", "I;16B", "I", "F"],
    "WEBP": ["RGB", "RGBA"],
}
ANIMATED = {"PNG": ["L", "RGB", "RGBA"], "GIF": ["P", "L"], "WEBP": ["RGB", "RGBA"]}
BYTES_PER_PIXEL = {"RGB": 3, "RGBA": 4, "CMYK": 4, "LA": 2, "PA": 2, "I;16": 2, "I;16B": 2}
SUFFIX = {"JPEG": "jpg", "TIFF": "tif"}


def _png_with_size(data: bytes, width: int, height: int) -> bytes:
    """The PNG with its IHDR size replaced (and the chunk's CRC fixed, to pass it)."""
    body = b"IHDR" + struct.pack(">II", width, height) + data[24:29]
    return data[:16] + body[4:] + struct.pack(">I", zlib.crc32(body)) + data[33:]


def _without_png_chunk(data: bytes, kind: bytes) -> bytes:
    """The PNG without its ``kind`` chunks (``PLTE``: a palette image with no palette)."""
    out, at = bytearray(data[:8]), 8
    while at + 8 <= len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        end = at + 12 + length
        if data[at + 4 : at + 8] != kind:
            out += data[at:end]
        at = end
    return bytes(out + data[at:])


def _tiff_with_size(data: bytes, width: int, height: int) -> bytes:
    """The (little-endian) TIFF with its first IFD's ImageWidth and ImageLength replaced."""
    out = bytearray(data)
    if out[:2] != b"II" or len(out) < 8:
        return data
    (ifd,) = struct.unpack("<I", out[4:8])
    if ifd + 2 > len(out):
        return data
    (count,) = struct.unpack("<H", out[ifd : ifd + 2])
    for i in range(count):
        at = ifd + 2 + 12 * i
        if at + 12 > len(out):
            break
        tag, kind = struct.unpack("<HH", out[at : at + 4])
        if tag in (256, 257):
            value = width if tag == 256 else height
            if kind == 3:  # SHORT
                out[at + 8 : at + 12] = struct.pack("<HH", value & 0xFFFF, 0)
            else:
                out[at + 8 : at + 12] = struct.pack("<I", value & 0xFFFFFFFF)
    return bytes(out)


def _webp_with_size(data: bytes, width: int, height: int) -> bytes:
    """The WebP with its canvas (VP8X) or lossless (VP8L) size replaced."""
    out = bytearray(data)
    w, h = max(width - 1, 0), max(height - 1, 0)
    if out[12:16] == b"VP8X":  # 24-bit width-1 and height-1 at 24 and 27
        out[24:27] = (w & 0xFFFFFF).to_bytes(3, "little")
        out[27:30] = (h & 0xFFFFFF).to_bytes(3, "little")
    elif out[12:16] == b"VP8L" and len(out) >= 25:  # 14-bit sizes after the 0x2f signature
        bits = int.from_bytes(out[21:25], "little")
        bits = (bits & ~0xFFFFFFF) | (w & 0x3FFF) | ((h & 0x3FFF) << 14)
        out[21:25] = bits.to_bytes(4, "little")
    elif out[12:16] == b"VP8 " and len(out) >= 30:  # 14-bit sizes after the start code
        out[26:30] = struct.pack("<HH", w & 0x3FFF, h & 0x3FFF)
    return bytes(out)


def _set_size(fmt: str, data: bytes, width: int, height: int) -> bytes:
    if fmt == "PNG":
        return _png_with_size(data, width, height)
    if fmt == "TIFF":
        return _tiff_with_size(data, width, height)
    if fmt == "WEBP":
        return _webp_with_size(data, width, height)
    out = bytearray(data)
    if fmt == "GIF":  # the logical screen, little-endian uint16s at 6 and 8
        out[6:10] = struct.pack("<HH", width & 0xFFFF, height & 0xFFFF)
    elif fmt == "BMP":  # BITMAPINFOHEADER: int32 width and height at 18 and 22
        size = struct.pack("<iI", width & 0x7FFFFFFF, height & 0xFFFFFFFF)  # negative: top-down
        out[18:26] = size
    else:  # JPEG: the frame header after an SOF marker, big-endian uint16s
        for marker in (b"\xff\xc0", b"\xff\xc2"):
            at = out.find(marker)
            if at >= 0:
                out[at + 5 : at + 9] = struct.pack(">HH", height & 0xFFFF, width & 0xFFFF)
                break
    return bytes(out)


def _frame(draw: st.DrawFn, mode: str, width: int, height: int) -> Any:
    import numpy as np
    from PIL import Image

    if mode == "1":
        return Image.new("1", (width, height), draw(st.integers(0, 1)))
    if mode in ("I", "F"):  # 32-bit: any int32, or floats with NaN and infinities
        if mode == "I":
            values = draw(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=4))
            dtype = "int32"
        else:
            values = draw(st.lists(st.floats(width=32), min_size=1, max_size=4))
            dtype = "float32"
        array = np.resize(np.array(values, dtype=dtype), (height, width))
        return Image.fromarray(array, mode)
    channels = BYTES_PER_PIXEL.get(mode, 1)
    count = width * height * channels
    return Image.frombytes(mode, (width, height), draw(st.binary(min_size=count, max_size=count)))


@st.composite
def image_files(draw: st.DrawFn) -> tuple[str, bytes]:
    fmt = draw(st.sampled_from(sorted(IMAGE_MODES)))
    animated = fmt in ANIMATED and draw(st.integers(0, 3)) == 0
    mode = draw(st.sampled_from(ANIMATED[fmt] if animated else IMAGE_MODES[fmt]))
    width, height = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    base_mode = {"P-trns": "P", "P-noplte": "P"}.get(mode, mode)
    frames = [_frame(draw, base_mode, width, height) for _ in range(3 if animated else 1)]
    options: dict[str, Any] = {}
    if fmt == "JPEG":
        options["progressive"] = draw(st.booleans())
    if fmt == "TIFF":
        options["compression"] = draw(
            st.sampled_from([None, "tiff_lzw", "packbits", "tiff_adobe_deflate"])
        )
    if fmt == "WEBP":
        options["lossless"] = draw(st.booleans())
    if mode == "P-trns":
        options["transparency"] = draw(st.integers(0, 255))
    if animated:
        options.update(save_all=True, append_images=frames[1:], duration=draw(st.integers(0, 200)))
        options["loop"] = 0
    buffer = io.BytesIO()
    frames[0].save(buffer, format=fmt, **options)
    data = buffer.getvalue()
    if mode == "P-noplte":  # palette without palette
        data = _without_png_chunk(data, b"PLTE")
    if draw(st.booleans()):
        data = _set_size(fmt, data, draw(st.sampled_from(HUGE)), draw(st.sampled_from(HUGE[:4])))
    return fmt, draw(mutated(data))


def image_target(value: tuple[tuple[str, bytes], int | None], tmp: Path) -> None:
    from convscope.data.images import read_pixels

    (fmt, data), channels = value
    path = tmp / f"input.{SUFFIX.get(fmt, fmt.lower())}"
    path.write_bytes(data)
    read_pixels(path, channels)


# --------------------------------------------------------------------------- .keras

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

LAYER_CLASSES = ["Conv2D", "Dense", "InputLayer", "Flatten", "BatchNormalization", "Conv2d"]


@st.composite
def keras_configs(draw: st.DrawFn) -> bytes:
    """config.json bytes: a Keras-like config with fields mutated, other JSON, or junk."""
    kind = draw(st.sampled_from(["keras", "json", "deep", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    if kind == "deep":
        depth = draw(st.integers(1, 50_000))
        return b"[" * depth + b"]" * draw(st.sampled_from([depth, 0]))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    layer = st.fixed_dictionaries(
        {},
        optional={
            "class_name": st.sampled_from(LAYER_CLASSES) | json_values,
            "name": st.text(max_size=8) | json_values,
            "config": st.fixed_dictionaries({}, optional={"name": json_values}) | json_values,
        },
    )
    entries = st.lists(layer | json_values, max_size=5)
    body = (
        entries
        | st.fixed_dictionaries({}, optional={"layers": entries | json_values})
        | json_values
    )
    config = draw(
        st.fixed_dictionaries(
            {},
            optional={"class_name": st.sampled_from(["Sequential", "Functional"]), "config": body},
        )
    )
    return json.dumps(config).encode()


@cache
def _weights_h5(named: bool) -> bytes:
    """A small ``model.weights.h5``: ``layers/conv2d/vars/0`` and ``layers/dense/vars/{0,1}``."""
    import h5py
    import numpy as np

    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        for key, shapes in {"conv2d": [(3, 3, 1, 2)], "dense": [(4, 2), (2,)]}.items():
            group = f.create_group(f"layers/{key}/vars")
            if named:
                group.attrs["name"] = key
            for i, shape in enumerate(shapes):
                group.create_dataset(str(i), data=np.zeros(shape, "float32"))
    return buffer.getvalue()


@st.composite
def keras_archives(draw: st.DrawFn) -> bytes:
    members = {
        "config.json": draw(keras_configs()),
        "metadata.json": json.dumps(draw(json_values)).encode(),
        "model.weights.h5": _weights_h5(draw(st.booleans())),
    }
    kept = draw(st.sets(st.sampled_from(sorted(members)), max_size=3))
    keep_all = draw(st.booleans())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            if keep_all or name in kept:
                archive.writestr(name, data)
    data = buffer.getvalue()
    return draw(mutated(data)) if draw(st.integers(0, 3)) == 0 else data


def keras_target(data: bytes, tmp: Path) -> None:
    from convscope.models.loading import load_model

    path = tmp / "input.keras"
    path.write_bytes(data)
    load_model(str(path))  # reads the file, then builds the model its config describes


# --------------------------------------------------------------------------- checkpoints


@cache
def _checkpoint() -> tuple[bytes, dict[str, Any]]:
    """A real convscope checkpoint of the small ``lenet`` zoo model: its bytes and payload."""
    import torch

    from convscope.models.checkpoint import save_checkpoint
    from convscope.models.loading import load_model

    with tempfile.TemporaryDirectory() as folder:
        path = save_checkpoint(load_model("lenet"), Path(folder) / "lenet.pt")
        data = path.read_bytes()
    return data, torch.load(io.BytesIO(data), weights_only=True)


# Only the zoo's small models and unknown sources: torchvision/timm recipes could download.
recipes = st.fixed_dictionaries(
    {},
    optional={
        "source": st.sampled_from(["zoo", "file", "nope"]) | json_values,
        "name": st.sampled_from(["lenet", "sequential", "no-such-model"]) | json_values,
    },
)


@st.composite
def checkpoint_payloads(draw: st.DrawFn) -> tuple[str, Any]:
    """('torch', payload dict), ('pickle', pickle bytes) or ('bytes', damaged file bytes)."""
    kind = draw(st.sampled_from(["torch", "pickle", "bytes"]))
    data, payload = _checkpoint()
    if kind == "bytes":
        return kind, draw(mutated(data, max_edits=3))
    fields = dict(payload)
    for key in draw(st.sets(st.sampled_from(sorted(fields)), max_size=4)):
        change = draw(st.sampled_from(["drop", "json"]))
        if change == "drop":
            del fields[key]
        else:
            fields[key] = draw(json_values)
    if draw(st.booleans()):
        fields["build"] = draw(recipes | json_values)
    if draw(st.booleans()):
        fields["format_version"] = draw(st.integers() | json_values)
    if kind == "pickle":
        fields.pop("state_dict", None)  # tensors pickled plainly are refused anyway
        protocol = draw(st.integers(0, pickle.HIGHEST_PROTOCOL))
        return kind, pickle.dumps(draw(st.just(fields) | json_values), protocol=protocol)
    return kind, fields


def checkpoint_target(value: tuple[str, Any], tmp: Path) -> None:
    import torch

    from convscope.models.checkpoint import load_checkpoint

    kind, content = value
    path = tmp / "input.pt"
    if kind == "torch":
        torch.save(content, path)
    else:
        path.write_bytes(content)
    load_checkpoint(path)


# --------------------------------------------------------------------------- .h5

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "keras"
H5_LAYOUTS = ("keras2", "keras3", "weights", "keras-zip")
"""Keras-made bases: a Keras 2 full-model ``.h5`` (bytes attributes, ``kernel:0``), a
Keras 3 one (str attributes, ``model/layer/kernel``), a Keras 3 ``model.weights.h5``
given alone as MODEL, and that weights file zipped back into a ``.keras`` archive."""


@dataclass(frozen=True)
class H5Base:
    data: bytes
    objects: tuple[str, ...]  # every group and dataset, "/" first
    attrs: tuple[tuple[str, str], ...]  # (object, attribute) pairs the file has
    datasets: tuple[str, ...]
    config: bytes | None  # the .keras archive's config.json (the two weights-file layouts)


@cache
def _h5_base(layout: str) -> H5Base:
    """One of :data:`H5_LAYOUTS`, read from the Keras-made fixtures of ``lenet``."""
    import h5py

    config = None
    if layout in ("weights", "keras-zip"):
        with zipfile.ZipFile(FIXTURES / "lenet.keras") as archive:
            data = archive.read("model.weights.h5")
            config = archive.read("config.json")
    else:
        data = (FIXTURES / ("lenet.keras2.h5" if layout == "keras2" else "lenet.h5")).read_bytes()
    objects, attrs, datasets = ["/"], [], []
    with h5py.File(io.BytesIO(data), "r") as handle:
        attrs += [("/", name) for name in handle.attrs]

        def visit(name: str, obj: Any) -> None:
            objects.append(name)
            attrs.extend((name, key) for key in obj.attrs)
            if isinstance(obj, h5py.Dataset):
                datasets.append(name)

        handle.visititems(visit)
    return H5Base(data, tuple(objects), tuple(attrs), tuple(datasets), config)


def _json_paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path into a JSON document, as tuples of keys and indices."""
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _json_paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _json_paths(inner, (*prefix, i))


@cache
def _config_paths(layout: str) -> tuple[tuple, ...]:
    return tuple(_json_paths(json.loads(_base_config(layout))))


def _base_config(layout: str) -> bytes:
    import h5py

    base = _h5_base(layout)
    if base.config is not None:
        return base.config
    with h5py.File(io.BytesIO(base.data), "r") as handle:
        raw = handle.attrs["model_config"]
    return raw if isinstance(raw, bytes) else str(raw).encode()


# Numbers a config or an attribute may hold: edges, overflows, negatives, and (as JSON
# has none) no NaN; sizes stay small or absurd, never a slow few GB.
config_numbers = st.sampled_from(
    [0, -1, 1, 2, 3, 7, 1000, 2**31 - 1, 2**63, -(2**63), 10**30, 1e308, -0.5, 0.5, 1e-300]
)
config_values = config_numbers | json_values | st.sampled_from(["same", "valid", "relu", ""])


DELETE = "<delete>"


@st.composite
def config_edits(draw: st.DrawFn, layout: str) -> tuple[tuple[tuple, Any], ...]:
    """A few (path, new value) edits of the base's model config; DELETE removes the key."""
    paths = _config_paths(layout)
    edits = []
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        value = DELETE if path and draw(st.integers(0, 4)) == 0 else draw(config_values)
        edits.append((path, value))
    return tuple(edits)


def edited_config(layout: str, edits: tuple[tuple[tuple, Any], ...]) -> bytes:
    """The base's model config with ``edits`` applied (those whose path is gone skipped)."""
    config = json.loads(_base_config(layout))
    for path, value in edits:
        if not path:
            config = value
            continue
        parent = config
        try:
            for key in path[:-1]:
                parent = parent[key]
            if value == DELETE:
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    return json.dumps(config).encode()


printable = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8)
attr_values = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),
    st.booleans(),
    printable,
    st.binary(max_size=12).filter(lambda b: b"\x00" not in b),
    st.sampled_from(["model", "{}", "[]", "null", '{"class_name": "Sequential"}']),
    st.lists(st.integers(-1000, 1000), max_size=4).map(lambda v: ("int-array", v)),
    st.lists(printable, max_size=4).map(lambda v: ("str-array", v)),
    st.lists(st.binary(min_size=1, max_size=6).filter(lambda b: b"\x00" not in b), max_size=4).map(
        lambda v: ("bytes-array", v)
    ),
    st.just(("float-matrix", [])),
)
ATTR_NAMES = ("model_config", "keras_version", "backend", "layer_names", "weight_names", "name")
DATASET_CHANGES = (
    "shape",
    "dtype",
    "nan",
    "inf",
    "scalar",
    "empty",
    "strings",
    "huge",
    "group",
    "softlink",
    "extlink",
)


@st.composite
def h5_edit(draw: st.DrawFn, layout: str) -> tuple:
    base = _h5_base(layout)
    kind = draw(st.sampled_from(["delete", "attr", "del-attr", "dataset", "config"]))
    if kind == "delete":
        return (kind, draw(st.sampled_from(base.objects[1:])))
    if kind in ("attr", "del-attr"):
        pairs = st.sampled_from(base.attrs) | st.tuples(
            st.sampled_from(base.objects), st.sampled_from(ATTR_NAMES)
        )
        where, name = draw(pairs)
        return (kind, where, name, draw(attr_values) if kind == "attr" else None)
    if kind == "dataset":
        change = draw(st.sampled_from(DATASET_CHANGES))
        target = draw(st.sampled_from(base.datasets))
        if change == "shape":
            return (kind, target, change, tuple(draw(st.lists(st.integers(0, 6), max_size=4))))
        if change == "dtype":
            dtype = ["int8", "int64", "uint8", "float16", "float64", "bool", "complex64", "S4"]
            return (kind, target, change, draw(st.sampled_from(dtype)))
        if change == "huge":  # declared, never written: the file stays small
            return (kind, target, change, draw(st.sampled_from([(1 << 40,), (1 << 24, 1 << 24)])))
        if change == "softlink":
            return (kind, target, change, draw(st.sampled_from(base.objects)))
        return (kind, target, change, None)
    config = draw(
        config_edits(layout) | keras_configs() | json_values.map(lambda v: json.dumps(v).encode())
    )
    return (kind, config, draw(st.sampled_from(["str", "bytes"])))


@st.composite
def h5_files(draw: st.DrawFn) -> tuple[str, str, Any]:
    """('edits', layout, [edit, ...]) applied with h5py, or ('bytes', layout, damaged bytes)."""
    layout = draw(st.sampled_from(H5_LAYOUTS))
    if draw(st.integers(0, 3)) == 0:
        data = _h5_base(layout).data
        # Most of a file is weights: aim half the edits at the metadata in its first 4 KB.
        head = draw(mutated(data[:4096], max_edits=3)) if draw(st.booleans()) else data[:4096]
        return "bytes", layout, draw(mutated(head + data[4096:], max_edits=2))
    return "edits", layout, draw(st.lists(h5_edit(layout), min_size=1, max_size=4))


def _attr_value(value: Any) -> Any:
    import numpy as np

    if isinstance(value, tuple):
        kind, items = value
        if kind == "int-array":
            return np.array(items, dtype="int64")
        if kind == "str-array":
            import h5py

            return np.array(items, dtype=h5py.string_dtype())
        if kind == "bytes-array":
            return np.array(items, dtype="S")
        return np.zeros((2, 3), "float32")
    if isinstance(value, bytes):
        return np.bytes_(value)
    return value


def _apply_h5_edit(handle: Any, layout: str, edit: tuple, folder: Path) -> None:
    import h5py
    import numpy as np

    kind = edit[0]
    if kind == "delete":
        if edit[1] in handle:
            del handle[edit[1]]
    elif kind in ("attr", "del-attr"):
        _, where, name, value = edit
        if where not in handle:
            return
        attrs = handle[where].attrs
        if kind == "del-attr":
            if name in attrs:
                del attrs[name]
        else:
            attrs[name] = _attr_value(value)
    elif kind == "config":
        _, config, as_type = edit
        config = config if isinstance(config, bytes) else edited_config(layout, config)
        if as_type == "bytes":
            handle.attrs["model_config"] = np.void(config) if b"\x00" in config else config
        else:
            handle.attrs["model_config"] = config.decode("utf-8", "replace").replace("\x00", "")
    else:
        _, target, change, arg = edit
        old = handle.get(target)
        if not isinstance(old, h5py.Dataset):
            return
        shape, dtype = old.shape, old.dtype
        if change in ("dtype", "nan", "inf") and (shape is None or np.prod(shape) > 1 << 20):
            return  # a huge dataset from an earlier edit: too large to fill
        del handle[target]
        if change == "shape":
            handle.create_dataset(target, data=np.zeros(arg, "float32"))
        elif change == "dtype":
            handle.create_dataset(target, data=np.zeros(shape, dtype=arg))
        elif change in ("nan", "inf"):
            fill = np.nan if change == "nan" else -np.inf
            handle.create_dataset(target, data=np.full(shape, fill, dtype=dtype))
        elif change == "scalar":
            handle.create_dataset(target, data=np.float32(1.5))
        elif change == "empty":
            handle.create_dataset(target, shape=None, dtype="float32")  # an empty dataspace
        elif change == "strings":
            handle.create_dataset(target, data=np.array(["a", "bc"], dtype=h5py.string_dtype()))
        elif change == "huge":
            handle.create_dataset(target, shape=arg, dtype="float32", chunks=True)
        elif change == "group":
            handle.create_group(target)
        elif change == "softlink":
            handle[target] = h5py.SoftLink(arg if arg.startswith("/") else f"/{arg}")
        else:
            handle[target] = h5py.ExternalLink(str(folder / "input-missing.h5"), "/x")


H5PY_REFUSALS = (KeyError, ValueError, TypeError, RuntimeError, OSError)
"""What h5py raises for an edit it cannot make (an earlier edit left a link loop...)."""


def h5_target(value: tuple[str, str, Any], tmp: Path) -> None:
    import h5py

    from convscope.models.loading import load_model

    kind, layout, content = value
    base = _h5_base(layout)
    suffix = {"weights": ".weights.h5", "keras-zip": "-weights.h5"}.get(layout, ".h5")
    path = tmp / f"input{suffix}"
    config = base.config
    if kind == "bytes":
        path.write_bytes(content)
    else:
        path.write_bytes(base.data)
        with h5py.File(path, "r+") as handle:
            for edit in content:
                if edit[0] == "config" and layout == "keras-zip":  # config.json, not an attribute
                    config = (
                        edit[1] if isinstance(edit[1], bytes) else edited_config(layout, edit[1])
                    )
                    continue
                with contextlib.suppress(*H5PY_REFUSALS):  # an edit h5py cannot make
                    _apply_h5_edit(handle, layout, edit, tmp)
    if layout == "keras-zip":
        weights, path = path.read_bytes(), tmp / "input.keras"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("config.json", config)
            archive.writestr("model.weights.h5", weights)
    load_model(str(path))


# --------------------------------------------------------------------------- SPEC strings

digits = st.text("0123456789", min_size=1, max_size=24) | st.integers(4000, 6000).map(
    lambda n: "9" * n
)
unicode_digits = st.text(st.characters(categories=["Nd"]), min_size=1, max_size=6)
numbers = digits | unicode_digits | st.integers(-(10**30), 10**30).map(str)
selects = (
    numbers
    | st.tuples(numbers, numbers).map("-".join)
    | st.tuples(numbers, numbers).map(lambda ab: f"-{ab[0]}-{ab[1]}")
    | st.text(max_size=12)
)
specs = st.tuples(
    st.sampled_from(["mnist", "fashion-mnist", "cifar10", "x"]) | st.text(max_size=8),
    st.sampled_from(["test", "train"]) | st.text(max_size=6),
    selects,
).map(":".join) | st.text(max_size=40)


def spec_target(value: tuple[str, int | None], tmp: Path) -> None:
    from convscope.data.spec import parse_dataset_spec

    text, limit = value
    parse_dataset_spec(text, limit=limit)


# --------------------------------------------------------------------------- class grammar

class_items = (
    numbers
    | st.tuples(numbers, numbers).map("-".join)
    | st.sampled_from(["all", "ALL", " all ", "", ",", "-", "--"])
    | st.text(max_size=10)
)
class_specs = (
    st.lists(class_items, max_size=5).map(",".join)
    | st.integers(-(10**30), 10**30)
    | st.booleans()
    | st.lists(class_items | st.integers(-(10**6), 10**6), max_size=5)
    | st.text(max_size=20)
)
class_names = st.sampled_from(
    [("zero", "one", "two"), tuple(str(i) for i in range(10)), (), ("a", "A", "1-2", "all")]
) | st.lists(st.text(max_size=6), max_size=6).map(tuple)


def class_target(value: tuple[Any, tuple[str, ...], bool], tmp: Path) -> None:
    from convscope.probe.classes import class_indices, one_class

    spec, classes, one = value
    (one_class if one else class_indices)(spec, classes)


# --------------------------------------------------------------------------- CLI arguments

MODELS = ("lenet5", "lenet")
LONG = "x" * 300
"""A name longer than any file's (``ENAMETOOLONG``)."""
"""The zoo's small models: a valid argv may run a real (tiny) forward pass."""


def words(text: str) -> list[str]:
    return text.split()


def mostly(
    valid: st.SearchStrategy, other: st.SearchStrategy, weight: int = 3
) -> st.SearchStrategy:
    """``valid`` ``weight`` times for each ``other``: most argvs reach the command's work."""
    return st.one_of(*[valid] * weight, other)


cli_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8)
odd_ints = st.sampled_from(
    [
        *words("-1 10000000000 -99999999999999999999 1.5 1e3 0x10 ٣ ５ nan inf -inf 2-5 5-2 -3--1"),
        *("1" + "0" * 30, "9" * 5000, "", " "),
    ]
)
cli_ints = mostly(st.sampled_from(["0", "1", "2", "3"]), odd_ints | cli_text)
cli_floats = mostly(
    st.sampled_from(["0", "0.05", "1", "-1"]),
    st.sampled_from(words("nan inf -inf -0 1e308 1e-320")) | odd_ints | cli_text,
)
cli_models = mostly(
    st.sampled_from(MODELS),
    weight=7,
    other=st.sampled_from(
        [
            *words("Lenet5 nope run: run:abc run:abc@ run:abc@-1 x.py x.py:build missing.keras"),
            *words("missing.h5 missing.pt torchvision: timm:nope . input"),
            *(LONG, LONG + ".pt", LONG + ".keras", LONG + ".py:build", "x/" * 3000),
            "",
        ]
    )
    | cli_text,
)
LAYERS = words("conv2d_1 conv2d_2 max_pooling2d_1 max_pooling2d_2 flatten_1 dense_1 dense_2")
cli_layers = mostly(
    st.sampled_from(LAYERS),
    st.sampled_from(
        [
            *words("hidden , conv2d_1,conv2d_1 conv2d_1,nope Conv2D_1 conv2d_1:0 conv2d_2:0-2"),
            *words("conv2d_2:5-2 conv2d_1:-3--1 conv2d_2:3 conv2d_2:99"),
            "",
        ]
    )
    | cli_text,
)
cli_classes = mostly(
    st.sampled_from(["0", "7", "9", "all", "0-2"]),
    st.sampled_from(["10", "-1", "5-2", "-3--1", "", "Trouser"]) | odd_ints | cli_text,
)
cli_outs = mostly(
    st.sampled_from(words("out.png out.svg out.pdf out.npy out.gif")),
    st.sampled_from([*words("out.PNG out.txt out .png no/such/dir/out.png . é.png input"), ""])
    | cli_text.map(lambda t: t + ".png"),
)


IMAGE_FILE = "<image>"


def _small_spec(text: str) -> bool:
    """False for a SPEC naming more than a few dataset images (a slow but valid case)."""
    from convscope.data.spec import parse_dataset_spec

    try:
        _, _, start, stop = parse_dataset_spec(text, limit=None)
    except ConvscopeError:
        return True
    return stop - start <= 16


cli_specs = mostly(
    st.sampled_from(words("mnist:test:3 mnist:test:0-4 fashion-mnist:test:7 mnist:train:59999"))
    | st.just(IMAGE_FILE),
    st.sampled_from(
        [
            *words("mnist:test mnist:test:10000 mnist:test:-1 mnist:test:5-2 mnist::1 sample:nope"),
            *words(". input missing.png"),
            *(LONG, LONG + ".png", "mnist:" + LONG),
            "",
        ]
    )
    | specs.filter(_small_spec),
)
"""SPECs; IMAGE_FILE stands for the case's image file (one of the image family's)."""


def _options(draw: st.DrawFn, pool: dict[str, st.SearchStrategy]) -> list[str]:
    """Some of ``pool``'s options with drawn values, in any order, one maybe repeated."""
    names = draw(st.lists(st.sampled_from(sorted(pool)), max_size=3))
    argv: list[str] = []
    for name in names:
        value = pool[name]
        argv += [name] if value is None else [name, draw(value)]
    return argv


FLAG = None
COMMON = {
    "--seed": cli_ints,
    "--json": FLAG,
    "--input-shape": mostly(
        st.sampled_from(["1,28,28", "3,32,32"]),
        st.sampled_from(["0,0,0", "-1,28,28", "1,28", "1,99999999,99999999"]) | cli_ints,
    ),
    "--preprocess": mostly(st.sampled_from(words("scale none tf caffe torch")), cli_text),
    # Files and names only: a URL would download. lenet5 and lenet have no library weights.
    "--weights": st.sampled_from([*words("input missing.pt . imagenet nope"), LONG, LONG + ".pt"]),
}


@st.composite
def cli_argvs(draw: st.DrawFn) -> list[str]:
    """An argv for one of a few commands whose argument checks are cheap."""
    command = draw(
        st.sampled_from(
            [
                "predict",
                "kernels",
                "features",
                "data show",
                "maximize",
                "runs show",
                "embed",
                "examples",
                "summary",
                "layers",
            ]
        )
    )
    model = draw(cli_models)
    if command == "predict":
        top = draw(mostly(st.sampled_from(["1", "2", "3"]), cli_ints))
        argv = ["predict", model, "--image", draw(cli_specs), "--top", top]
        pool = {"--class": cli_classes, "--top": cli_ints, **COMMON}
    elif command == "kernels":
        argv = ["kernels", model, "--layer", draw(cli_layers)]
        pool = {"--out": cli_outs, "--cols": cli_ints, "--limit": cli_ints, "--health": FLAG,
                "--epochs": cli_ints, "--norm": cli_text, **COMMON}  # fmt: skip
    elif command == "features":
        argv = ["features", model, "--layers", draw(cli_layers), "--image", draw(cli_specs)]
        argv += ["--index", draw(cli_ints)]
        pool = {"--top": cli_ints, "--batch-size": cli_ints, "--call": cli_ints,
                "--npy": cli_outs, "--out": cli_outs, **COMMON}  # fmt: skip
    elif command == "data show":
        argv = ["data", "show", draw(cli_specs | st.sampled_from(["mnist", "fashion-mnist"]))]
        argv += ["--n", draw(st.sampled_from(["1", "4", "0", "-1", "401", "10" * 15]) | cli_text)]
        pool = {"--split": st.sampled_from(["test", "train", ""]) | cli_text,
                "--seed": cli_ints, "--columns": cli_ints, "--random": FLAG,
                "--out": cli_outs, "--json": FLAG}  # fmt: skip
    elif command == "maximize":
        target = draw(st.sampled_from(["--class", "--channel"]))
        argv = ["maximize", model, target, draw(cli_classes if target == "--class" else cli_layers)]
        argv += ["--steps", draw(st.sampled_from(["1", "2"]) | cli_ints), "--starts", "1"]
        pool = {"--lr": cli_floats, "--jitter": cli_ints, "--scale": cli_floats,
                "--rotate": cli_floats, "--blur-every": cli_ints, "--blur-sigma": cli_floats,
                "--tv": cli_floats, "--l2": cli_floats, "--patience": cli_ints,
                "--init-std": cli_floats, "--objective": cli_text, "--steps": cli_ints,
                "--starts": st.sampled_from(["0", "-1", "1"]), **COMMON}  # fmt: skip
    elif command == "runs show":
        argv = ["runs", "show", draw(cli_text | st.sampled_from(["abc", "", "-"])), "--store"]
        argv.append(draw(st.sampled_from(["store", "input-empty-store", "input", "", "."])))
        pool = {"--json": FLAG}
    elif command == "embed":
        argv = ["embed", draw(cli_text | st.sampled_from(["abc", "architectures"]))]
        argv += [
            "--layer",
            draw(cli_layers),
            "--store",
            draw(st.sampled_from(["store", "input-empty-store"])),
        ]
        pool = {"--method": cli_text | st.sampled_from(["pca", "umap"]), "--n-neighbors": cli_ints,
                "--perplexity": cli_floats, "--seed": cli_ints, "--out": cli_outs}  # fmt: skip
    elif command == "examples":
        argv = ["examples", model, "--layer", draw(cli_layers), "--channel", draw(cli_ints)]
        argv += ["--image", draw(cli_specs), "--top", draw(st.sampled_from(["1", "2"]) | cli_ints)]
        pool = {"--batch-size": cli_ints, "--call": cli_ints, "--out": cli_outs, **COMMON}
    else:
        argv = [command, model]
        pool = {"--depth": cli_ints, **COMMON} if command == "summary" else {"--json": FLAG}
    return argv + _options(draw, pool)


@cache
def _cli_home() -> Path:
    """A CONVSCOPE_HOME for the CLI cases whose datasets are already there (nothing downloads).

    The files are hard-linked (a file the CLI replaces is not replaced in the original)
    or copied from the current CONVSCOPE_HOME or the user's cache; a dataset found in
    neither is fetched into the current home once, before any case runs.
    """
    from convscope.data.datasets import fetch
    from convscope.paths import convscope_home

    home = Path(tempfile.mkdtemp(prefix="convscope-fuzz-home-"))
    atexit.register(shutil.rmtree, home, True)
    sources = [convscope_home() / "datasets", Path.home() / ".cache" / "convscope" / "datasets"]
    for name in ("mnist", "fashion-mnist"):
        folder = home / "datasets" / name
        found = next(
            (s / name for s in sources if len(list((s / name).glob("*-ubyte"))) == 4), None
        )
        if found is None:  # fetched once into the current home, as the other tests do
            fetch(name)
            found = convscope_home() / "datasets" / name
        folder.mkdir(parents=True)
        for file in found.glob("*-ubyte"):
            try:
                os.link(file, folder / file.name)
            except OSError:
                shutil.copyfile(file, folder / file.name)
    return home


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _no_network(*args: Any, **kwargs: Any) -> None:
    raise OSError("the fuzz run has no network")


@contextlib.contextmanager
def _fd_stderr() -> Iterator[io.StringIO]:
    """Capture what is written to file descriptor 2 itself (C libraries), not sys.stderr."""
    captured = io.StringIO()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.write(sink.read().decode("utf-8", "replace"))


class CliFailure(AssertionError):
    """The CLI broke its contract: a status other than 0 and 2, or not one error line."""


def _half_written(folder: Path) -> list[str]:
    """Temporary files left under ``folder``: ``*.part`` and hidden names."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.name.endswith(".part") or (p.name.startswith(".") and p.name != ".")
    )


def cli_target(value: tuple[list[str], tuple[str, bytes] | None], tmp: Path) -> None:
    """Run ``convscope ARGV`` in-process in ``tmp``; IMAGE_FILE in argv is ``image``."""
    from convscope.cli.app import main

    argv, image = value
    home = _cli_home()
    (tmp / "input").write_bytes(b"not an image, nor a model\n")
    (tmp / "input-empty-store").mkdir()
    if image is not None:
        fmt, data = image
        path = tmp / f"input.{SUFFIX.get(fmt, fmt.lower())}"
        path.write_bytes(data)
        argv = [path.name if a == IMAGE_FILE else a for a in argv]
    out, err = io.StringIO(), io.StringIO()
    cwd, stdin, connect = os.getcwd(), sys.stdin, socket.socket.connect
    os.chdir(tmp)
    sys.stdin, socket.socket.connect = io.StringIO(""), _no_network
    try:
        with (
            _environ(CONVSCOPE_HOME=str(home)),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            _fd_stderr() as c_err,
        ):
            try:
                status = main(argv)
            except SystemExit as exc:  # argparse: usage errors, --help
                status = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    finally:
        os.chdir(cwd)
        sys.stdin, socket.socket.connect = stdin, connect
    if c_err.getvalue():  # a C library's own lines (libtiff, libjpeg) beside ours
        err.write(c_err.getvalue())
    lines = err.getvalue().strip().splitlines()
    if status not in (0, 2):
        raise CliFailure(f"exit status {status}: {err.getvalue()[-200:]!r}")
    if "Traceback" in err.getvalue():
        raise CliFailure(f"a traceback on stderr: {err.getvalue()[-200:]!r}")
    if status == 2:
        errors = [line for line in lines if not line.startswith("convscope: warning:")]
        if len(errors) != 1 or not errors[0].startswith("convscope: error: "):
            raise CliFailure(f"stderr is not one error line: {err.getvalue()[:300]!r}")
        if out.getvalue():
            raise CliFailure(f"exit status 2 with output on stdout: {out.getvalue()[:200]!r}")
    left = _half_written(tmp) + _half_written(home)
    if left:
        raise CliFailure(f"half-written files left: {left[:5]}")
    # What the command wrote (figures, arrays, stores) may stay: it is not half-written.
    for path in list(tmp.iterdir()):
        if not path.name.startswith("input"):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def warm_cli() -> None:
    """Make the CLI's home and run a few commands, so no case's time includes an import."""
    for argv in (
        ["predict", "lenet5", "--image", "mnist:test:0"],
        ["kernels", "lenet5"],
        ["maximize", "lenet5", "--class", "0", "--steps", "1", "--starts", "1"],
    ):
        with (
            tempfile.TemporaryDirectory(prefix="fuzz-warm-") as folder,
            contextlib.suppress(Exception),
        ):
            cli_target((argv, None), Path(folder))


FAMILIES = (
    Family("idx", idx_files(), idx_target),
    Family("image", st.tuples(image_files(), st.sampled_from([None, 1, 3])), image_target),
    Family("keras", keras_archives(), keras_target),
    Family("checkpoint", checkpoint_payloads(), checkpoint_target),
    Family("spec", st.tuples(specs, st.sampled_from([-1, None, 0, 16])), spec_target),
    Family("classes", st.tuples(class_specs, class_names, st.booleans()), class_target),
    Family("h5", h5_files(), h5_target),
    Family(
        "cli",
        st.tuples(cli_argvs(), image_files()).map(
            lambda case: case if IMAGE_FILE in case[0] else (case[0], None)
        ),
        cli_target,
        warm=warm_cli,
    ),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases in all (default 10000)")
    parser.add_argument("--seed", type=int, default=None, help="default: derandomized")
    parser.add_argument("--case-timeout", type=float, default=CASE_TIMEOUT_S)
    parser.add_argument("--family", action="append", help="run only these families")
    parser.add_argument(
        "--memory-gb",
        type=float,
        default=MEMORY_GB,
        help=f"address-space limit of the process (default {MEMORY_GB:g}; 0: none): a case "
        "that allocates past it fails with MemoryError, counted as a crash",
    )
    args = parser.parse_args(argv)
    families = [f for f in FAMILIES if not args.family or f.name in args.family]
    per_family = max(1, -(-args.cases // len(families)))
    if args.memory_gb:
        limit_memory(args.memory_gb)
    faulthandler.enable()  # a crash of a C library (HDF5, a decoder) says where it was
    print(
        f"(a case stuck in C code past {STUCK_FACTOR * args.case_timeout:g} s ends the run; "
        f"its input and stack are then in {STUCK_LOG})",
        flush=True,
    )
    results = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="convscope-fuzz-") as root:
        for family in families:
            start = time.perf_counter()
            result = run_family(
                family,
                per_family,
                seed=args.seed,
                case_timeout=args.case_timeout,
                tmp_root=Path(root),
            )
            took = time.perf_counter() - start
            results.append(result)
            print(
                f"{family.name:<11} {result.cases:>6} cases  {len(result.crashes)} crashes  "
                f"{len(result.hangs)} hangs  slowest {result.slowest_ms:.0f} ms  ({took:.1f} s)",
                flush=True,
            )
            for crash in result.crashes.values():
                print(f"  CRASH {crash.kind} at {crash.where}: {crash.message}")
                print(f"        smallest input: {crash.smallest}")
            for hang in result.hangs[:5]:
                print(f"  HANG  input: {hang}")
    slowest = max(results, key=lambda r: r.slowest_ms)
    print(f"slowest case: {slowest.name}, {slowest.slowest_ms:.0f} ms, {slowest.slowest_input}")
    summary = {
        "cases": sum(r.cases for r in results),
        "crashes": sum(len(r.crashes) for r in results),
        "hangs": sum(len(r.hangs) for r in results),
        "slowest_ms": round(slowest.slowest_ms, 1),
        "slowest_family": slowest.name,
        "seconds": round(time.perf_counter() - started, 1),
        "load": round(os.getloadavg()[0], 2),
        "families": {r.name: r.cases for r in results},
    }
    print(json.dumps(summary))
    return 1 if summary["crashes"] or summary["hangs"] else 0


if __name__ == "__main__":
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    sys.exit(main())
