"""One grammar for class targets, shared by every probe that takes one.

A class is named by its index (``7``), its name (``"Trouser"``, case ignored), an
inclusive range (``"0-4"``), a comma-separated list (``"1,7,Sandal"``) or ``"all"``.
``maximize`` climbs every class named; ``attribute`` explains one and refuses more.
Every mistake gives the same message, which lists the classes.
"""

from __future__ import annotations

from collections.abc import Sequence

from convscope.errors import ConvscopeError
from convscope.naming import close_matches

ClassSpec = int | str | Sequence[int | str]


def class_indices(spec: ClassSpec, classes: Sequence[str]) -> list[int]:
    """The class indices ``spec`` names, in order, each once."""
    classes = tuple(classes)
    if isinstance(spec, bool):
        raise ConvscopeError(f"a class is an index or a name, not {spec!r}; {class_list(classes)}")
    if isinstance(spec, int) or hasattr(spec, "__index__"):
        items: list[int | str] = [int(spec)]  # type: ignore[arg-type]
    elif isinstance(spec, str):
        items = [spec] if _named(spec, classes) is not None else spec.split(",")
    else:
        items = list(spec)
    indices = [index for item in items for index in _item_indices(item, classes)]
    if not indices:
        raise ConvscopeError(f"no classes given; {class_list(classes)}")
    return list(dict.fromkeys(indices))


def one_class(spec: int | str, classes: Sequence[str], *, what: str = "target class") -> int:
    """The one class index ``spec`` names; naming several is an error."""
    indices = class_indices(spec, classes)
    if len(indices) != 1:
        raise ConvscopeError(
            f"{spec!r} names {len(indices)} classes; the {what} is one class (an index or a name)"
        )
    return indices[0]


def class_list(classes: Sequence[str], limit: int = 20) -> str:
    """``"the classes are 0 T-shirt/top, 1 Trouser, ..."`` (long lists shortened)."""

    def named(i: int, name: str) -> str:
        return f"{i} {name}" if name != str(i) else name

    shown = ", ".join(named(i, name) for i, name in enumerate(classes[:limit]))
    if len(classes) > limit:
        shown += f", ... ({len(classes)} classes; give an index 0-{len(classes) - 1})"
    return f"the classes are {shown}"


def _named(text: str, classes: tuple[str, ...]) -> int | None:
    """The index of a class named ``text`` (exactly, else ignoring case), or None."""
    if text in classes:
        return classes.index(text)
    folded = [c.casefold() for c in classes]
    return folded.index(text.casefold()) if text.casefold() in folded else None


def _item_indices(item: int | str, classes: tuple[str, ...]) -> list[int]:
    """The class indices one item names: an index, a name, ``all`` or an inclusive range."""
    count = len(classes)
    text = str(int(item)) if not isinstance(item, str) else item.strip()
    named = _named(text, classes)
    if named is not None:
        return [named]
    if text.casefold() == "all":
        return list(range(count))
    lo, sep, hi = text.partition("-")
    try:
        first, last = (int(lo), int(hi)) if sep and lo else (int(text), int(text))
    except ValueError:
        hint = close_matches(text, classes)
        raise ConvscopeError(f"unknown class {text!r}{hint}; {class_list(classes)}") from None
    if first > last:
        raise ConvscopeError(
            f"class range {text!r} is empty; write it low-high, e.g. {last}-{first}; "
            f"{class_list(classes)}"
        )
    if not (0 <= first <= last < count):
        raise ConvscopeError(f"class {text!r} is out of range; {class_list(classes)}")
    return list(range(first, last + 1))
