"""Summaries: Keras-style totals for every zoo model, the JSON contract, rendering."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from convscope.errors import ModelError
from convscope.models.loading import load_model
from convscope.models.registry import zoo
from convscope.probe.summary import summarize
from tests.conftest import check_expected
from tests.models.test_zoo import TOTALS

EXPECTED = Path(__file__).parent / "expected"
CONTRACT_KEYS = {
    "model",
    "input_shape",
    "layers",
    "total_params",
    "trainable_params",
    "non_trainable_params",
    "weights",
    "mult_adds",
    "input_bytes",
    "forward_backward_bytes",
    "params_bytes",
    "estimated_total_bytes",
}
LAYER_KEYS = {"name", "type", "depth", "output_shape", "params", "trainable_params"}


@pytest.mark.parametrize("name", sorted(TOTALS))
def test_summary_json_of_every_zoo_model(name: str) -> None:
    data = summarize(load_model(name)).to_dict()
    assert set(data) == CONTRACT_KEYS
    total, non_trainable = TOTALS[name]
    assert data["total_params"] == total
    assert data["non_trainable_params"] == non_trainable
    assert data["trainable_params"] == total - non_trainable
    assert all(set(row) == LAYER_KEYS for row in data["layers"])
    top = [row for row in data["layers"] if row["depth"] == 1]
    assert sum(row["params"] for row in top) == total
    assert data["layers"][-1]["output_shape"] == [1, 10]


def test_mult_adds_and_memory_are_torchinfos_for_a_hand_computed_model() -> None:
    # conv 1->2 of 3x3 on 5x5: 3x3 outputs, each 9 products + a bias per channel:
    # (18 + 2) * 9 = 180; linear 18->4: 72 + 4 = 76. torchinfo counts biases too.
    module = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(18, 4))
    summary = summarize(module, (1, 5, 5))
    assert summary.mult_adds == 180 + 76
    assert summary.params_bytes == 96 * 4  # 96 float32 parameters
    assert summary.estimated_total_bytes == (
        summary.input_bytes + summary.forward_backward_bytes + summary.params_bytes
    )
    assert summary.forward_backward_bytes >= (18 + 18 + 4) * 4  # every output, float32
    assert summary.model_weights == ""  # a bare module: nothing known about its weights
    text = str(summary)
    assert "Total mult-adds (M): 0.00" in text and "Params size (MB): 0.00" in text


def test_summary_of_an_untrained_model_says_so() -> None:
    summary = summarize(load_model("lenet5"))
    assert summary.model_weights == "random init (seed 0)"
    assert "untrained" in str(summary).splitlines()[0]
    assert "Untrained weights (random init, seed 0)" in str(summary)
    assert summary.mult_adds > 280_000  # conv1 alone: (150 + 6) * 24 * 24 = 89,856


def test_batchnorm_statistics_are_non_trainable_rows() -> None:
    rows = {row.name: row for row in summarize(load_model("residual")).layers}
    assert (rows["batc1"].params, rows["batc1"].trainable_params) == (128, 64)
    assert rows["pool3"].output_shape == [1, 32, 3, 3]
    assert rows["hidden"].output_shape == [1, 128]


def test_nested_torchvision_model_uses_dotted_module_names() -> None:
    summary = summarize(load_model("resnet50"), depth=3)
    names = [row.name for row in summary.layers]
    assert "layer1.0.conv1" in names and "fc" in names
    module = load_model("resnet50").module
    buffers = sum(
        m.running_mean.numel() * 2 for m in module.modules() if isinstance(m, nn.BatchNorm2d)
    )
    assert summary.total_params == sum(p.numel() for p in module.parameters()) + buffers
    assert summary.non_trainable_params == buffers


def test_summary_text_matches_expected_file(overwrite: bool) -> None:
    for name in ("residual", "lenet5-classic"):
        check_expected(
            EXPECTED / f"summary_{name}.txt", str(summarize(load_model(name))) + "\n", overwrite
        )


def test_summary_renders_for_jupyter_and_rich() -> None:
    summary = summarize(load_model("lenet"))
    html = summary._repr_html_()
    assert "<table>" in html and "656,080" in html and "conv2d_1" in html
    from rich.console import Console

    console = Console(record=True, width=120)
    console.print(summary)
    assert "Total params: 656,080" in console.export_text()


def test_bare_module_needs_an_input_shape_and_reports_a_wrong_one() -> None:
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    assert summarize(net, (1, 8, 8)).total_params == 40 + 4 * 36 * 2 + 2
    with pytest.raises(ModelError, match="does not run through the model"):
        summarize(net, (1, 9, 9))
    assert not any(m._forward_hooks for m in net.modules())
    assert net(torch.zeros(1, 1, 8, 8)).shape == (1, 2)


def test_every_zoo_entry_summarises() -> None:
    for name in zoo():
        assert summarize(load_model(name), depth=1).total_params > 0
