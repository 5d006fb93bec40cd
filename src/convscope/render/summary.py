"""Rendering a :class:`~convscope.probe.summary.ModelSummary` as a table: rich, HTML, text."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from rich.table import Table

if TYPE_CHECKING:
    from convscope.probe.summary import ModelSummary


def _shape(shape: object) -> str:
    return f"[{', '.join(str(v) for v in shape)}]" if isinstance(shape, list) else str(shape)


def _totals(summary: ModelSummary) -> list[tuple[str, int]]:
    return [
        ("Total params", summary.total_params),
        ("Trainable params", summary.trainable_params),
        ("Non-trainable params", summary.non_trainable_params),
    ]


def summary_table(summary: ModelSummary) -> Table:
    """A rich table like Keras' ``summary()``, with totals in the caption."""
    table = Table(
        title=f"{summary.model}  (input {_shape(summary.input_shape)})",
        caption="   ".join(f"{label}: {value:,}" for label, value in _totals(summary)),
        caption_justify="left",
    )
    table.add_column("Layer")
    table.add_column("Type", style="cyan")
    table.add_column("Output shape", style="magenta")
    table.add_column("Param #", justify="right", style="green")
    for row in summary.layers:
        table.add_row(
            "  " * (row.depth - 1) + row.name, row.type, _shape(row.output_shape), f"{row.params:,}"
        )
    return table


def summary_text(summary: ModelSummary) -> str:
    """Plain-text table (for ``print`` and logs)."""
    lines = [
        f"{summary.model}  (input {_shape(summary.input_shape)})",
        f"{'Layer (type)':<44}{'Output shape':<24}{'Param #':>12}",
        "=" * 80,
    ]
    for row in summary.layers:
        label = f"{'  ' * (row.depth - 1)}{row.name} ({row.type})"
        lines.append(f"{label:<44}{_shape(row.output_shape):<24}{row.params:>12,}")
    lines.append("=" * 80)
    lines += [f"{label}: {value:,}" for label, value in _totals(summary)]
    return "\n".join(lines)


def summary_html(summary: ModelSummary) -> str:
    """An HTML table for Jupyter."""
    head = "".join(f"<th>{h}</th>" for h in ("Layer", "Type", "Output shape", "Param #"))
    body = "".join(
        f"<tr><td style='text-align:left;padding-left:{(row.depth - 1) * 1.2}em'>"
        f"{html.escape(row.name)}</td><td>{html.escape(row.type)}</td>"
        f"<td>{_shape(row.output_shape)}</td><td style='text-align:right'>{row.params:,}</td></tr>"
        for row in summary.layers
    )
    totals = "<br>".join(f"{label}: <b>{value:,}</b>" for label, value in _totals(summary))
    return (
        f"<div><b>{html.escape(summary.model)}</b> (input {_shape(summary.input_shape)})"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{totals}</div>"
    )
