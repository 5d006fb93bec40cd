"""Terminal tables: numbers are never cut, user text is shown literally."""

from __future__ import annotations

import io

from rich.console import Console

from convscope.render.tables import records_table


def _render(table, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, emoji=False).print(table)
    return out.getvalue()


def test_numbers_stay_whole_in_a_narrow_table() -> None:
    records = [
        {
            "run": "architectures/inception-residual-with-a-long-name",
            "knn_hidden": 0.80712,
            "n": 1000,
        }
    ]
    text = _render(records_table("scores", records, ["run", "knn_hidden", "n"]), width=48)
    assert "0.8071" in text and "1,000" in text  # the run name shrinks instead


def test_headers_can_be_named_and_markup_is_literal() -> None:
    records = [{"name": "[red]b:smile:", "knn_hidden": 0.5}]
    text = _render(
        records_table("t", records, ["name", "knn_hidden"], {"knn_hidden": "k-NN hidden"}), 80
    )
    assert "[red]b:smile:" in text and "k-NN hidden" in text
