"""Rendering a :class:`~convscope.probe.summary.ModelSummary` as a table: rich, HTML, text."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from rich.table import Table

from convscope.models.provenance import model_title, untrained_caption

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


def _costs(summary: ModelSummary) -> list[tuple[str, str]]:
    """What one forward pass costs, as torchinfo prints it (mult-adds, sizes in MB)."""
    mb = 1e-6
    return [
        ("Total mult-adds (M)", f"{summary.mult_adds * mb:,.2f}"),
        ("Input size (MB)", f"{summary.input_bytes * mb:,.2f}"),
        ("Forward/backward pass size (MB)", f"{summary.forward_backward_bytes * mb:,.2f}"),
        ("Params size (MB)", f"{summary.params_bytes * mb:,.2f}"),
        ("Estimated total size (MB)", f"{summary.estimated_total_bytes * mb:,.2f}"),
    ]


def _heading(summary: ModelSummary) -> str:
    name = model_title(summary.model, summary.model_weights)
    return f"{name} · input {_shape(summary.input_shape)}"


def summary_table(summary: ModelSummary) -> Table:
    """A rich table like Keras' ``summary()``, with totals in the caption."""
    caption = "\n".join(f"{label}: {value:,}" for label, value in _totals(summary))
    caption += "\n" + "\n".join(f"{label}: {value}" for label, value in _costs(summary))
    if untrained_caption(summary.model_weights):
        caption += "\n" + untrained_caption(summary.model_weights)
    heading = _heading(summary)  # the table is at least as wide as its title: no wrapped title
    table = Table(title=heading, caption=caption, caption_justify="left", min_width=len(heading))
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
        _heading(summary),
        f"{'Layer (type)':<44}{'Output shape':<24}{'Param #':>12}",
        "=" * 80,
    ]
    for row in summary.layers:
        label = f"{'  ' * (row.depth - 1)}{row.name} ({row.type})"
        lines.append(f"{label:<44}{_shape(row.output_shape):<24}{row.params:>12,}")
    lines.append("=" * 80)
    lines += [f"{label}: {value:,}" for label, value in _totals(summary)]
    lines += [f"{label}: {value}" for label, value in _costs(summary)]
    if untrained_caption(summary.model_weights):
        lines.append(untrained_caption(summary.model_weights))
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
    totals += "<br>" + "<br>".join(f"{label}: <b>{value}</b>" for label, value in _costs(summary))
    if untrained_caption(summary.model_weights):
        totals += f"<br><i>{html.escape(untrained_caption(summary.model_weights))}</i>"
    return (
        f"<div><b>{html.escape(_heading(summary))}</b>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{totals}</div>"
    )
