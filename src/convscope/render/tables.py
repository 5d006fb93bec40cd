"""Small tables for the terminal (rich) and Jupyter (HTML): predictions, model lists."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.table import Table

from convscope.models.provenance import model_title, untrained_caption

if TYPE_CHECKING:
    from convscope.probe.predict import Predictions


def predictions_table(predictions: Predictions) -> Table:
    """Input, true label (when known) and the top classes with their probabilities."""
    title = f"{model_title(predictions.model, predictions.model_weights)}: predictions"
    table = Table(
        title=escape(title),
        min_width=len(title),
        caption=escape(untrained_caption(predictions.model_weights)) or None,
        caption_justify="left",
    )
    table.add_column("Input")
    table.add_column("Label", style="cyan")
    table.add_column("Top classes (probability)", style="green")
    asked = any(p.chosen is not None for p in predictions.predictions)
    if asked:
        table.add_column("Asked classes (probability)", style="magenta")
    for p in predictions.predictions:
        tops = ",  ".join(f"{name} {prob:.3f}" for name, prob in p.top)
        cells = [escape(p.input), escape(p.label or ""), escape(tops)]
        if asked:
            cells.append(escape(",  ".join(f"{name} {prob:.3g}" for name, prob in p.chosen or ())))
        table.add_row(*cells)
    return table


def predictions_html(predictions: Predictions) -> str:
    """The predictions as an HTML table."""
    rows = "".join(
        f"<tr><td>{html.escape(p.input)}</td><td>{html.escape(p.label or '')}</td><td>"
        + ", ".join(f"{html.escape(name)} {prob:.3f}" for name, prob in p.top)
        + "</td></tr>"
        for p in predictions.predictions
    )
    return (
        f"<b>{html.escape(model_title(predictions.model, predictions.model_weights))}</b>"
        f"<p>{html.escape(untrained_caption(predictions.model_weights))}</p><table><tr><th>Input</th><th>Label</th>"
        f"<th>Top classes</th></tr>{rows}</table>"
    )


def records_table(
    title: str,
    records: list[dict[str, Any]],
    columns: list[str],
    headers: dict[str, str] | None = None,
    formats: dict[str, str] | None = None,
) -> Table:
    """A rich table of dict records (``convscope models``, ``convscope data list``).

    Columns are headed ``headers[column]`` or the column name in words; numbers are
    right-aligned and never cut, however narrow the terminal (text columns shrink).
    ``formats[column]`` (a format spec such as ``".3f"``) gives a column one precision.
    """
    table = Table(title=escape(title))
    formats = formats or {}
    cells = [[escape(_cell(record.get(c), formats.get(c))) for c in columns] for record in records]
    for index, column in enumerate(columns):
        numeric = bool(records) and all(
            isinstance(record.get(column), (int, float)) for record in records
        )
        widest = max((len(row[index]) for row in cells), default=0)
        table.add_column(
            (headers or {}).get(column, column.replace("_", " ").capitalize()),
            no_wrap=numeric or (index == 0 and widest <= 12),  # numbers and short ids
            justify="right" if numeric else "left",
            min_width=widest if numeric else None,
        )
    for row in cells:
        table.add_row(*row)
    return table


def _cell(value: Any, spec: str | None = None) -> str:
    if spec is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        return format(value, spec)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_cell(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return "" if value is None else str(value)


def result_table(kind: str, data: dict[str, Any]) -> Table:
    """A probe result's ``to_dict()`` as a two-column table: every scalar, and the size of
    every list or mapping (the arrays themselves go to ``--npy`` or ``--json``)."""
    title = data.get("model") or kind
    weights = data.get("weights")
    heading = model_title(str(title), str(weights or ""))
    table = Table(title=escape(heading), show_header=False, min_width=len(heading))
    table.add_column("key", style="cyan")
    table.add_column("value")
    for key, value in data.items():
        if key in ("model", "weights"):
            continue
        if (
            isinstance(value, (list, tuple))
            and value
            and not all(isinstance(v, (int, float, str)) for v in value)
        ):
            text = f"{len(value)} entries"
        elif isinstance(value, dict):
            text = f"{len(value)} entries ({', '.join(list(map(str, value))[:4])}...)"
        else:
            text = _cell(value)
        table.add_row(escape(str(key)), escape(text))
    return table
