"""IDX reading and writing: round trips, and every malformed file is a DataError naming it."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from convscope.data.idx import idx_header, read_idx, write_idx
from convscope.errors import DataError
from convscope.files import atomic_write, atomic_write_bytes

DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]
SHAPES = [(7,), (3, 5), (2, 3, 4), (2, 1, 3, 2)]


def _sample(dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """A deterministic array that uses the dtype's extremes."""
    rng = np.random.default_rng(0)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        values = rng.normal(size=shape) * 1e3
    else:
        info = np.iinfo(dt)
        values = rng.integers(info.min, info.max, size=shape, endpoint=True)
        values.flat[0] = info.min
        values.flat[-1] = info.max
    return values.astype(dt)


def _listing(directory: Path) -> list[str]:
    """Every entry in a directory, hidden ones included."""
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip(tmp_path: Path, dtype: str, shape: tuple[int, ...], gz: bool) -> None:
    array = _sample(dtype, shape)
    path = write_idx(tmp_path / ("a.idx.gz" if gz else "a.idx"), array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") is gz
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype)
    assert back.dtype.isnative
    assert back.shape == shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable
    assert _listing(tmp_path) == [path.name]


def test_big_endian_on_disk(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "x", np.array([1, 256], dtype=np.int16))
    assert path.read_bytes() == bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0, 1, 1, 0])


def test_gzip_detected_by_magic_not_suffix(tmp_path: Path) -> None:
    array = _sample("int32", (4, 3))
    gz_no_suffix = write_idx(tmp_path / "data.idx", array, compress=True)
    plain_with_suffix = write_idx(tmp_path / "data.gz", array, compress=False)
    assert gz_no_suffix.read_bytes()[:2] == b"\x1f\x8b"
    np.testing.assert_array_equal(read_idx(gz_no_suffix), array)
    np.testing.assert_array_equal(read_idx(plain_with_suffix), array)


def test_gzip_output_is_deterministic(tmp_path: Path) -> None:
    array = _sample("uint8", (10, 4, 4))
    first = write_idx(tmp_path / "a.gz", array).read_bytes()
    second = write_idx(tmp_path / "b.gz", array).read_bytes()
    assert first == second


def test_empty_collection_is_legitimate(tmp_path: Path) -> None:
    array = np.zeros((0, 28, 28), dtype=np.uint8)
    back = read_idx(write_idx(tmp_path / "empty", array))
    assert back.shape == (0, 28, 28)


def test_standard_mnist_header(tmp_path: Path) -> None:
    header = idx_header(np.zeros((60000, 28, 28), dtype=np.uint8))
    assert header.hex() == "000008030000ea600000001c0000001c"


# -- malformed files --------------------------------------------------------------------

GOOD = bytes([0, 0, 0x08, 2]) + struct.pack(">2I", 2, 3) + bytes(range(6))


def _truncated_gzip() -> bytes:
    return gzip.compress(GOOD * 50, mtime=0)[:-12]


def _crc_error_gzip() -> bytes:
    blob = bytearray(gzip.compress(GOOD, mtime=0))
    blob[-8] ^= 0xFF  # the CRC32 field of the trailer
    return bytes(blob)


MALFORMED = {
    "empty": (b"", "too short"),
    "short-magic": (b"\x00\x00\x08", "too short"),
    "bad-magic": (b"\x01" + GOOD[1:], "magic"),
    "bad-magic-2": (b"\x00\x07" + GOOD[2:], "magic"),
    "bad-type-code": (GOOD[:2] + b"\x0a" + GOOD[3:], "type code"),
    "zero-dims": (bytes([0, 0, 8, 0]), "dimensions"),
    "five-dims": (bytes([0, 0, 8, 5]) + struct.pack(">5I", 1, 1, 1, 1, 1) + b"\0", "dimensions"),
    "header-shorter-than-dims": (bytes([0, 0, 8, 3]) + struct.pack(">2I", 2, 3), "header"),
    "zero-item-dim": (bytes([0, 0, 8, 2]) + struct.pack(">2I", 2, 0), "zero-sized"),
    "truncated-payload": (GOOD[:-1], "truncated"),
    "trailing-bytes": (GOOD + b"\x00", "trailing"),
    "truncated-float-payload": (
        bytes([0, 0, 0x0D, 1]) + struct.pack(">I", 3) + b"\0" * 11,
        "truncated",
    ),
    "truncated-gzip": (_truncated_gzip(), "gzip"),
    "gzip-crc-error": (_crc_error_gzip(), "gzip"),
    "gzip-then-garbage": (gzip.compress(GOOD, mtime=0) + b"garbage", "gzip"),
    "gzip-of-truncated-payload": (gzip.compress(GOOD[:-2], mtime=0), "truncated"),
    "not-gzip-header": (b"\x1f\x8b\x00\x00junk", "gzip"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_is_data_error_naming_it(tmp_path: Path, case: str) -> None:
    blob, fragment = MALFORMED[case]
    path = tmp_path / f"bad-{case}-idx3-ubyte"
    path.write_bytes(blob)
    with pytest.raises(DataError) as caught:
        read_idx(path)
    message = str(caught.value)
    assert path.name in message
    assert fragment in message
    assert "\n" not in message


def test_good_fixture_reads(tmp_path: Path) -> None:
    path = tmp_path / "good"
    path.write_bytes(GOOD)
    np.testing.assert_array_equal(read_idx(path), np.arange(6, dtype=np.uint8).reshape(2, 3))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nothere"):
        read_idx(tmp_path / "nothere")


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=tmp_path.name):
        read_idx(tmp_path)


# -- writing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "array",
    [np.zeros(3, dtype=np.int64), np.zeros(3, dtype=bool), np.zeros((1,) * 5, np.uint8)],
    ids=["int64", "bool", "5d"],
)
def test_unwritable_arrays(tmp_path: Path, array: np.ndarray) -> None:
    with pytest.raises(DataError, match=r"out.idx"):
        write_idx(tmp_path / "out.idx", array)
    assert _listing(tmp_path) == []


def test_atomic_write_keeps_old_content_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write(b"new, half written")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert _listing(tmp_path) == ["file"]


def test_write_idx_failure_leaves_no_temp_file(tmp_path: Path, monkeypatch) -> None:
    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("convscope.data.idx.os.replace", broken_replace)
    with pytest.raises(DataError, match=r"out.idx.*No space left"):
        write_idx(tmp_path / "out.idx", np.zeros(4, np.uint8))
    assert _listing(tmp_path) == []


def test_atomic_write_bytes_creates_parents(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c.bin"
    atomic_write_bytes(target, b"hello")
    assert target.read_bytes() == b"hello"
    assert _listing(target.parent) == ["c.bin"]
    assert target.stat().st_mode & 0o777 == 0o644
