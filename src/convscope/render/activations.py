"""Activations of many images as a small table: per layer its shape, size and file.

The arrays themselves are not drawn (a figure of one image's maps is
:mod:`convscope.render.features`' job); the table says what was computed and where
it is, plus how the rows are spread over the classes.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np
from rich.markup import escape
from rich.table import Table

from convscope.models.provenance import model_title

if TYPE_CHECKING:
    from convscope.probe.streaming import Activations


def _size(nbytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"


def _rows(result: Activations) -> list[tuple[str, str, str, str, str, str]]:
    out = []
    for name, array in result.arrays.items():
        index, calls = result.calls.get(name, (0, 1))
        out.append(
            (
                name,
                result.types.get(name, ""),
                " x ".join(str(d) for d in array.shape),
                _size(int(array.nbytes)),
                f"{index} of {calls}" if calls > 1 else "",
                str(result.paths.get(name, "in memory")),
            )
        )
    return out


def class_counts(result: Activations) -> list[tuple[str, int]]:
    """(class name, rows) for every class present; unlabelled rows as ``(no label)``."""
    labels = np.asarray(result.labels)
    names = result.class_names or ()
    values, counts = np.unique(labels, return_counts=True)
    out = []
    for value, count in zip(values.tolist(), counts.tolist(), strict=True):
        if value < 0:
            out.append(("(no label)", count))
        else:
            out.append((names[value] if value < len(names) else str(value), count))
    return out


def _title(result: Activations) -> str:
    name = model_title(result.model, result.model_weights)
    return f"{name}: activations of {result.count:,} image(s), {result.spec}"


HEADERS = ("Layer", "Type", "Shape", "Size", "Call", "Where")


def activations_table(result: Activations) -> Table:
    """A rich table: one row per layer."""
    counts = ", ".join(f"{name} {n}" for name, n in class_counts(result))
    table = Table(title=escape(_title(result)), caption=escape(f"rows per class: {counts}"))
    for header in HEADERS:
        table.add_column(header, justify="right" if header in ("Shape", "Size") else "left")
    for row in _rows(result):
        table.add_row(*(escape(cell) for cell in row))
    return table


def activations_html(result: Activations) -> str:
    """The same table as HTML, for Jupyter."""
    head = "".join(f"<th>{h}</th>" for h in HEADERS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
        for row in _rows(result)
    )
    counts = ", ".join(f"{html.escape(name)}&nbsp;{n}" for name, n in class_counts(result))
    return (
        f"<b>{html.escape(_title(result))}</b>"
        f"<table><tr>{head}</tr>{body}</table>"
        f"<p>rows per class: {counts}; {result.seconds:.2f} s in batches of {result.batch_size}</p>"
    )
