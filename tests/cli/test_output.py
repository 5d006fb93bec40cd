"""What the CLI prints: strict JSON documents."""

from __future__ import annotations

import json

from convscope.cli.output import print_json


def test_json_has_no_nan_or_infinity(capsys) -> None:
    print_json({"train_loss": float("nan"), "curve": [0.5, float("inf")], "name": "x"})
    text = capsys.readouterr().out

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    assert json.loads(text, parse_constant=refuse) == {
        "train_loss": None,
        "curve": [0.5, None],
        "name": "x",
    }
