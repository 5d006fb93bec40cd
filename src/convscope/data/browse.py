"""A dataset split as it lies on this machine, for browsing: its labels, and no download.

Browsing (the dashboard's thumbnail pages) needs the labels of a split, not its pixels,
and must never start a download: :func:`local_labels` reads the small IDX label file
(60,000 bytes for MNIST's train split) from the first place that holds the whole split
without the network (the cache, ``$CONVSCOPE_DATA_DIR``, Debian's package), checks it
against its digest, and returns None where the split would have to be fetched first.
The pixels are read later, image by image, by :func:`convscope.data.datasets.load_dataset`
(the cache, or a copy into it from the same local place).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from convscope.data.idx import read_idx
from convscope.data.registry import DatasetInfo, SplitInfo, cache_dir, check_labels, get_info
from convscope.errors import DataError
from convscope.paths import user_data_dir


def local_dirs(info: DatasetInfo) -> list[Path]:
    """Where a dataset may lie without the network, in the order :func:`fetch` tries them."""
    dirs = [cache_dir(info)]
    base = user_data_dir()
    if base is not None:
        dirs += [base / info.name, base]
    if info.debian_dir is not None:
        dirs.append(info.debian_dir)
    return dirs


def _file_in(directory: Path, file_name: str, *, gz: bool = True) -> Path | None:
    """``file_name`` (or, with ``gz``, ``file_name.gz``) in ``directory``, if there."""
    names = (file_name, f"{file_name}.gz") if gz else (file_name,)
    for candidate in (directory / name for name in names):
        if candidate.is_file():
            return candidate
    return None


def _holds(directory: Path, split: SplitInfo, *, gz: bool) -> bool:
    files = (split.images_file, split.labels_file)
    return all(_file_in(directory, f, gz=gz) is not None for f in files)


def local_labels(name: str | DatasetInfo, split: str) -> np.ndarray | None:
    """The int64 labels of a split that is on this machine (its images too), checked
    against their digest; None when the split would have to be fetched first.

    The cache holds uncompressed splits one by one; any other place is read whole by
    :func:`~convscope.data.datasets.fetch`, so it counts only when it holds every split.
    A place whose labels fail their digest (another dataset's files of the same names, a
    damaged file) is passed over, as ``fetch`` passes it over. An unknown dataset or split
    is a :class:`~convscope.errors.DataError` (the registry's).
    """
    info = get_info(name)
    split_info = info.split(split)
    for index, directory in enumerate(local_dirs(info)):
        cache = index == 0  # uncompressed files, split by split
        needed = [split_info] if cache else list(info.splits)
        path = _file_in(directory, split_info.labels_file, gz=not cache)
        if path is None or not all(_holds(directory, s, gz=not cache) for s in needed):
            continue
        try:
            labels = read_idx(path)
            check_labels(info, split_info, labels, str(path))
        except DataError:
            continue
        return labels.astype(np.int64)
    return None


def is_local(name: str | DatasetInfo, split: str) -> bool:
    """Whether a split can be read without the network (see :func:`local_labels`)."""
    return local_labels(name, split) is not None


def not_local_line(name: str | DatasetInfo) -> str:
    """The one line that says a dataset must be fetched first, and how."""
    info = get_info(name)
    return (
        f"dataset {info.name} is not on this machine yet and is not downloaded inside a "
        f"request; run `convscope data fetch {info.name}` (see `convscope data list`), "
        "then ask again"
    )
