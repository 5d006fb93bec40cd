"""The one class-target grammar: indices, names, ranges, lists, all; one error message."""

from __future__ import annotations

import numpy as np
import pytest

from convscope.errors import ConvscopeError
from convscope.probe.classes import class_indices, class_list, one_class

FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (3, [3]),
        (np.int64(2), [2]),
        ("3", [3]),
        ("trouser", [1]),
        ("T-shirt/top", [0]),  # a name holding a "-" is a name, not a range
        ("1-3", [1, 2, 3]),
        ("1,Coat,1", [1, 4]),
        (["Dress", 0], [3, 0]),
        ("all", [0, 1, 2, 3, 4]),
    ],
)
def test_grammar(spec, expected) -> None:
    assert class_indices(spec, FASHION) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("Sandal", "unknown class 'Sandal'"),
        (7, "class '7' is out of range"),
        ("3-1", "class range '3-1' is empty; write it low-high, e.g. 1-3"),
        ([], "no classes given"),
        (True, "a class is an index or a name"),
    ],
)
def test_every_mistake_lists_the_classes(spec, message) -> None:
    with pytest.raises(ConvscopeError, match=message) as error:
        class_indices(spec, FASHION)
    assert str(error.value).endswith(class_list(FASHION))


def test_one_class_refuses_several() -> None:
    assert one_class("Coat", FASHION) == 4
    with pytest.raises(ConvscopeError, match="'all' names 5 classes; the target class is one"):
        one_class("all", FASHION)
    long = tuple(str(i) for i in range(1000))
    assert class_list(long).endswith("... (1000 classes; give an index 0-999)")


def test_class_names_fall_back_to_indices() -> None:
    from convscope.data.classes import class_names_for

    assert class_names_for(FASHION, 5) == FASHION
    assert class_names_for(FASHION, 3) == ("0", "1", "2")  # names that do not fit the output
    assert class_names_for(None, 2) == ("0", "1")
