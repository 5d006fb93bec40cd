"""One source for JSON: what ``--json`` prints is the result's ``to_dict()``, and every
result draws itself in the terminal."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

import convscope
from tests.cli import run


def _json(data: object) -> object:
    """What print_json makes of a dict (strict JSON: tuples become lists)."""
    return json.loads(json.dumps(data, default=str))


CASES = [
    (
        ["predict", "lenet5", "--image", "mnist:test:0-3"],
        lambda m: convscope.predict(m, "mnist:test:0-3"),
    ),
    (["summary", "lenet5"], lambda m: convscope.summary(m)),
    (
        ["explain", "lenet5", "--layer", "conv2d_1", "--image", "mnist:test:2", "--at", "4,5"],
        lambda m: convscope.explain(m, "conv2d_1", "mnist:test:2", (4, 5)),
    ),
    (
        [
            "apply-kernel",
            "lenet5",
            "--layer",
            "conv2d_1",
            "--kernel",
            "2",
            "--image",
            "mnist:test:1",
        ],
        lambda m: convscope.apply_kernel(m, "conv2d_1", 2, "mnist:test:1"),
    ),
    (["diagram", "lenet5"], lambda m: convscope.diagram(m)),
]


@pytest.mark.parametrize(
    ("argv", "compute"), CASES, ids=lambda v: v[0] if isinstance(v, list) else ""
)
def test_cli_json_is_the_results_to_dict(argv, compute, capsys) -> None:
    status, out, err = run(capsys, *argv, "--json")
    assert status == 0, err
    expected = _json(compute(convscope.load_model("lenet5")).to_dict())
    assert json.loads(out) == expected


def test_features_json_is_to_dict_plus_which_image(capsys) -> None:
    status, out, err = run(
        capsys, "features", "lenet5", "--image", "mnist:test:0-4", "--index", "2",
        "--layers", "conv2d_1", "--json",
    )  # fmt: skip
    assert status == 0, err
    data = json.loads(out)
    maps = convscope.feature_maps("lenet5", "mnist:test:0-4", ["conv2d_1"], index=2)
    assert {k: v for k, v in data.items() if k not in ("index", "count")} == _json(maps.to_dict())
    assert (data["index"], data["count"]) == (2, 4)


def test_every_figure_result_draws_itself_in_the_terminal() -> None:
    model = convscope.load_model("lenet5")
    kernels = convscope.kernels(model, "conv2d_1")
    results = [
        kernels,
        kernels.grid(),
        kernels.health(),
        convscope.apply_kernel(model, "conv2d_1", 0, "mnist:test:0"),
        convscope.diagram(model),
        convscope.feature_maps(model, "mnist:test:0", ["conv2d_1"]),
        convscope.attribute(model, "mnist:test:0", "saliency"),
        convscope.maximize(model, 3, steps=4, starts=1),
    ]
    for result in results:
        console = Console(width=120, record=True)
        console.print(result)
        assert "lenet5" in console.export_text(), type(result).__name__
