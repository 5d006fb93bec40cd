"""Images in the dashboard's requests: which SPECs a request may give, and uploads.

A request names an image as ``DATASET:SPLIT:INDEX``, ``DATASET:SPLIT:A-B``,
``sample:NAME`` or ``upload:ID``, never as a file: a SPEC that is or looks like a path
is refused before anything is read. An upload is decoded with the CLI's guards
(Pillow's decompression-bomb limit, truncated and corrupt files, non-images, odd
modes; see :func:`convscope.data.images.load_image`) and kept in memory only, in a
bounded store on the app's state, never on disk.
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar
from urllib.parse import unquote

import numpy as np
from fastapi import HTTPException
from PIL import Image

from convscope.data.preprocess import InputSpec
from convscope.data.spec import InputImage
from convscope.errors import ImageError
from convscope.serve.errors import NotFoundError

UPLOAD_LIMIT = 10 * 1024 * 1024
"""Most bytes of one uploaded file (a larger request is answered 413)."""

UPLOAD_MAX_PIXELS = 4096 * 4096
"""Most pixels of an upload: it is kept decoded in memory (a model resizes it anyway)."""

MAX_UPLOADS = 64
MAX_UPLOAD_BYTES = 512 * 1024**2
"""Bounds of the upload store: images kept, and the bytes of their decoded pixels."""

FORMS = "DATASET:SPLIT:INDEX, DATASET:SPLIT:A-B, sample:NAME or upload:ID (POST /api/images)"
FILE_REFUSED = f"a request never names a file: give the image as {FORMS}"

_DATASET = re.compile(r"^[A-Za-z0-9][\w-]*(\.[\w-]+)*:[\w-]+:\d+(-\d+)?$")
_SAMPLE = re.compile(r"^sample:[\w-]+$")
_UPLOAD = re.compile(r"^upload:(?P<id>[0-9a-f]{1,64})$")

K = TypeVar("K")
V = TypeVar("V")


class BoundedStore(Generic[K, V]):
    """A thread-safe LRU map bounded by entries and by a size (bytes) of its values."""

    def __init__(self, max_items: int, max_size: int, size: Callable[[V], int]) -> None:
        self.max_items, self.max_size, self._size = max_items, max_size, size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            total = sum(self._size(v) for v in self._items.values())
            while len(self._items) > 1 and (
                len(self._items) > self.max_items or total > self.max_size
            ):
                _, old = self._items.popitem(last=False)
                total -= self._size(old)

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def upload_store() -> BoundedStore[str, np.ndarray]:
    """The store of decoded uploads, by id (see :data:`MAX_UPLOADS`)."""
    return BoundedStore(MAX_UPLOADS, MAX_UPLOAD_BYTES, lambda pixels: pixels.nbytes)


# --------------------------------------------------------------------------- SPECs


def looks_like_path(text: str) -> bool:
    """Whether an image SPEC is or could be a file path, also once percent-decoded."""
    forms, form = [], text
    for _ in range(3):  # %252e%252e is %2e%2e is ..
        forms.append(form)
        form = unquote(form)
    return any(
        "/" in form or "\\" in form or ".." in form or form.startswith((".", "~")) for form in forms
    )


def check_image_spec(spec: str | None) -> str:
    """``spec`` stripped, if a request may give it; otherwise a one-line error (400)."""
    text = (spec or "").strip()
    if not text:
        raise ImageError(f"give an image: image={FORMS}")
    if looks_like_path(text):
        raise ImageError(FILE_REFUSED)
    if _DATASET.match(text) and not text.startswith(("sample:", "upload:")):
        return text
    if _SAMPLE.match(text) or _UPLOAD.match(text):
        return text
    if text.startswith("upload:"):
        raise ImageError(f"{text!r} is not an upload: upload:ID takes the id POST /api/images gave")
    raise ImageError(f"{text!r} is not an image SPEC a request may give; give {FORMS}")


def resolve_images(
    spec: str,
    uploads: BoundedStore[str, np.ndarray],
    input_spec: InputSpec | None = None,
    *,
    limit: int = 1,
) -> list[InputImage]:
    """The first ``limit`` images an allowed SPEC names (pixels with ``input_spec``'s
    channel count); a range longer than ``limit`` gives its first ``limit``.

    Never reads a path: datasets, samples and uploads are read by name only.
    """
    from convscope.data.images import match_channels
    from convscope.data.spec import parse_dataset_spec, sample_image
    from convscope.data.stream import DatasetStream

    spec = check_image_spec(spec)
    channels = None if input_spec is None else input_spec.channels
    if spec.startswith(("sample:", "upload:")):
        kind, name = spec.split(":", 1)
        pixels = sample_image(name) if kind == "sample" else upload_pixels(uploads, name)
        if channels is not None:
            pixels = match_channels(pixels, channels)
        return [InputImage(spec, pixels)]
    dataset, split, start, stop = parse_dataset_spec(spec, limit=None)
    require_local(dataset, split)
    stream = DatasetStream(dataset, split, start, stop, channels)
    return stream.images(0, min(limit, len(stream)))


def require_local(dataset: str, split: str) -> None:
    """Refuse (409) a dataset split that would have to be downloaded first: a request
    never starts a download (``convscope data fetch`` does)."""
    from convscope.data.browse import is_local, not_local_line

    if not is_local(dataset, split):
        raise HTTPException(409, not_local_line(dataset))


def resolve_image(
    spec: str, uploads: BoundedStore[str, np.ndarray], input_spec: InputSpec | None = None
) -> InputImage:
    """The first image an allowed SPEC names (see :func:`resolve_images`)."""
    return resolve_images(spec, uploads, input_spec)[0]


def upload_pixels(uploads: BoundedStore[str, np.ndarray], upload_id: str) -> np.ndarray:
    """The decoded pixels of an upload; an unknown (or forgotten) id is a 404."""
    pixels = uploads.get(upload_id)
    if pixels is None:
        raise NotFoundError(
            f"no upload {upload_id!r}: it was never uploaded or has been forgotten "
            f"(the server keeps the last {uploads.max_items}); upload it again"
        )
    return pixels


# --------------------------------------------------------------------------- uploads


def decode_upload(data: bytes) -> np.ndarray:
    """Decode an uploaded file to uint8 pixels with the CLI's guards (and a pixel limit);
    a bad file is an :class:`ImageError` with the one-line reason."""
    from convscope.data.images import decode_image, to_pixels

    if not data:
        raise ImageError("the upload is empty; send a PNG, JPEG, BMP, GIF, WebP or TIFF file")
    return to_pixels(decode_image(io.BytesIO(data), "the upload", max_pixels=UPLOAD_MAX_PIXELS))


def upload_id(data: bytes) -> str:
    """The id of an upload: a digest of its bytes (the same file gets the same id)."""
    return hashlib.sha256(data).hexdigest()[:16]


def multipart_file(body: bytes, content_type: str, field: str = "file") -> bytes:
    """The bytes of form field ``field`` of a ``multipart/form-data`` body, parsed in
    memory (Starlette's form parser spools large files to disk)."""
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise ImageError("the multipart body has no boundary; send the file as form field file")
    parts: list[tuple[bytearray, bytearray]] = []  # (headers text, data)

    def begin() -> None:
        parts.append((bytearray(), bytearray()))

    def header(data: bytes, start: int, end: int) -> None:
        parts[-1][0].extend(data[start:end])

    def header_end() -> None:
        parts[-1][0].extend(b"\n")

    def part_data(data: bytes, start: int, end: int) -> None:
        parts[-1][1].extend(data[start:end])

    callbacks = {"on_part_begin": begin, "on_header_field": header,
                 "on_header_value": header, "on_header_end": header_end,
                 "on_part_data": part_data}  # fmt: skip
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        parser.write(body)
        parser.finalize()
    except Exception as exc:
        raise ImageError(f"the multipart body cannot be parsed ({exc})") from exc
    wanted = re.compile(rb'\bname="?' + re.escape(field.encode()) + rb'"?(;|\s|$)', re.I)
    for headers, data in parts:
        if wanted.search(bytes(headers)):
            return bytes(data)
    raise ImageError(f"the form has no field {field!r}; send the image as form field {field}")


def check_upload_size(size: int) -> None:
    """Refuse more than :data:`UPLOAD_LIMIT` bytes: 413 with ``{"error"}``."""
    if size > UPLOAD_LIMIT:
        raise HTTPException(
            413,
            f"the upload is more than the limit of {UPLOAD_LIMIT:,} bytes "
            f"({UPLOAD_LIMIT // 1024**2} MB); send a smaller image",
        )


# --------------------------------------------------------------------------- pictures


def png_of_pixels(pixels: np.ndarray) -> bytes:
    """PNG bytes of uint8 ``H x W`` or ``H x W x 3`` pixels."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG")
    return buffer.getvalue()
