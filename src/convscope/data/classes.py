"""Class names of the built-in datasets (shared by the data loaders and the model zoo)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

MNIST_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

DATASET_CLASSES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"mnist": MNIST_CLASSES, "fashion-mnist": FASHION_MNIST_CLASSES}
)


def dataset_class_names(dataset: str | None) -> tuple[str, ...] | None:
    """Class names of a built-in dataset, or None for an unknown one."""
    return DATASET_CLASSES.get(dataset or "")


def class_names_for(names: Sequence[str] | None, count: int) -> tuple[str, ...]:
    """``names`` when there is one per class, else ``"0"`` ... ``"count-1"``.

    The one fallback for a model or a run without class names (or with names that
    do not match its output size): classes are then called by their index.
    """
    if names is not None and len(names) == count:
        return tuple(names)
    return tuple(str(i) for i in range(count))
