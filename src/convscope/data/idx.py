"""Read and write IDX files (the MNIST format), plain or gzip, with strict validation.

An IDX file is a 4-byte magic ``00 00 TT NN`` (``TT`` the element type, ``NN`` the number
of dimensions), ``NN`` big-endian uint32 sizes, then the elements, big-endian, row-major.
:func:`read_idx` never returns a wrong array: every defect is a :class:`DataError` that
names the file. Writes are atomic (:func:`convscope.files.atomic_write`) so a crash never leaves a
half-written file under the final name.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from types import MappingProxyType

import numpy as np

from convscope.errors import DataError
from convscope.files import atomic_write

GZIP_MAGIC = b"\x1f\x8b"
MAX_DIMS = 4

# IDX type code -> big-endian numpy dtype (read-only).
IDX_DTYPES = MappingProxyType(
    {
        0x08: np.dtype("u1"),
        0x09: np.dtype("i1"),
        0x0B: np.dtype(">i2"),
        0x0C: np.dtype(">i4"),
        0x0D: np.dtype(">f4"),
        0x0E: np.dtype(">f8"),
    }
)

_FIX = "the file is damaged or not an IDX file; delete it and fetch or copy it again"


def _fail(path: Path, problem: str, fix: str = _FIX) -> DataError:
    """Build the one-line error for a bad file."""
    return DataError(f"{path}: {problem}; {fix}")


def _read_raw(path: Path) -> bytes:
    """Return the file's bytes, gunzipped when it starts with the gzip magic."""
    try:
        with path.open("rb") as handle:
            head = handle.read(2)
            handle.seek(0)
            if head != GZIP_MAGIC:
                return handle.read()
            with gzip.GzipFile(fileobj=handle, mode="rb") as gz:
                return gz.read()
    except FileNotFoundError as exc:
        raise _fail(path, "no such file", "check the path") from exc
    except IsADirectoryError as exc:
        raise _fail(path, "is a directory, not an IDX file", "give the path of a file") from exc
    except EOFError as exc:
        raise _fail(path, "the gzip stream is truncated") from exc
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise _fail(path, f"corrupt gzip data ({exc})") from exc
    except OSError as exc:
        raise _fail(path, f"cannot read ({exc.strerror or exc})", "check the file") from exc


def _parse_header(path: Path, raw: bytes) -> tuple[np.dtype, tuple[int, ...], int]:
    """Validate the magic and sizes; return (big-endian dtype, shape, payload offset)."""
    if len(raw) < 4:
        raise _fail(path, f"only {len(raw)} bytes, too short for an IDX header")
    zero0, zero1, code, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero0 or zero1:
        raise _fail(path, f"bad IDX magic {raw[:4].hex()} (the first two bytes must be zero)")
    if code not in IDX_DTYPES:
        raise _fail(path, f"unknown IDX type code 0x{code:02X}")
    if not 1 <= ndim <= MAX_DIMS:
        raise _fail(path, f"{ndim} dimensions (convscope reads 1 to {MAX_DIMS})")
    offset = 4 + 4 * ndim
    if len(raw) < offset:
        raise _fail(path, f"header truncated: {ndim} dimensions need {offset} bytes")
    shape = struct.unpack(f">{ndim}I", raw[4:offset])
    # An empty collection (first size 0) is legitimate; an item with a zero size is not.
    if any(size == 0 for size in shape[1:]):
        raise _fail(path, f"zero-sized item dimension in shape {shape}")
    return IDX_DTYPES[code], shape, offset


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (plain or gzip, detected by magic bytes) into a native-endian array.

    Raises DataError naming the file for a bad magic or type code, a truncated header,
    a payload shorter or longer than the header says, and a truncated or corrupt gzip.
    """
    file = Path(path)
    raw = _read_raw(file)
    dtype, shape, offset = _parse_header(file, raw)
    expected = math.prod(shape) * dtype.itemsize
    actual = len(raw) - offset
    if actual < expected:
        raise _fail(file, f"truncated: {actual} payload bytes, shape {shape} needs {expected}")
    if actual > expected:
        extra = actual - expected
        raise _fail(file, f"{extra} trailing bytes after the {expected}-byte payload")
    array = np.frombuffer(raw, dtype=dtype, count=expected // dtype.itemsize, offset=offset)
    return array.reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def _type_code(path: Path, array: np.ndarray) -> int:
    """Return the IDX type code for the array's dtype, or fail naming the file."""
    for code, dtype in IDX_DTYPES.items():
        if array.dtype.kind == dtype.kind and array.dtype.itemsize == dtype.itemsize:
            return code
    raise DataError(
        f"{path}: cannot store dtype {array.dtype} in IDX; convert the array to uint8, "
        "int8, int16, int32, float32 or float64 first"
    )


def idx_header(array: np.ndarray, path: str | os.PathLike[str] = "<array>") -> bytes:
    """Return the IDX header (magic and sizes) that describes ``array``."""
    file = Path(path)
    if not 1 <= array.ndim <= MAX_DIMS:
        raise DataError(
            f"{file}: cannot write a {array.ndim}-dimensional array as IDX; "
            f"reshape it to 1 to {MAX_DIMS} dimensions"
        )
    if any(size >= 2**32 for size in array.shape):
        raise DataError(f"{file}: a dimension of {array.shape} exceeds IDX's 32-bit sizes")
    code = _type_code(file, array)
    return bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)


def write_idx(
    path: str | os.PathLike[str], array: np.ndarray, *, compress: bool | None = None
) -> Path:
    """Write ``array`` as an IDX file atomically; gzip when ``compress`` or the name ends .gz.

    The gzip output is deterministic (no timestamp, no embedded name). Returns the path.
    """
    file = Path(path)
    array = np.asarray(array)
    header = idx_header(array, file)
    payload = np.ascontiguousarray(array, dtype=IDX_DTYPES[header[2]])
    data = memoryview(payload.reshape(-1).view(np.uint8))
    gz = file.name.endswith(".gz") if compress is None else compress
    try:
        with atomic_write(file) as handle:
            if gz:
                with gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0) as out:
                    out.write(header)
                    out.write(data)
            else:
                handle.write(header)
                handle.write(data)
    except OSError as exc:
        raise DataError(
            f"{file}: cannot write ({exc.strerror or exc}); check the directory's "
            "permissions and free space"
        ) from exc
    return file
