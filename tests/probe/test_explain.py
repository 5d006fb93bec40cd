"""The explained arithmetic equals the layer's real output: the reference's cases and many layouts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from convscope.errors import ConvscopeError, LayerError
from convscope.models.layers import Conv2dAct, SameConv2d
from convscope.models.loading import load_model
from convscope.probe.explain import capture_io, explain
from convscope.probe.features import feature_maps


def reference_conv() -> tuple[nn.Sequential, torch.Tensor]:
    """conv-pool-layer-outputs: a 3x3 kernel 0..8 over a 7x7 input whose top-left patch is 8..0."""
    conv = nn.Conv2d(1, 1, 3, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.arange(9.0).view(1, 1, 3, 3))
    x = torch.zeros(1, 1, 7, 7)
    x[0, 0, :3, :3] = torch.arange(8.0, -1.0, -1.0).view(3, 3)
    x[0, 0, 3:, 3:] = torch.arange(16.0).view(4, 4)
    return nn.Sequential(conv), x


def test_reference_kernel_sum_is_84() -> None:
    net, x = reference_conv()
    result = explain(net, "0", x, (0, 0))
    term = result.terms[0]
    assert term.patch.tolist() == [[8, 7, 6], [5, 4, 3], [2, 1, 0]]
    assert term.kernel.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert term.products.tolist() == [[0, 7, 12], [15, 16, 15], [12, 7, 0]]
    assert result.total == 84 == result.value == result.actual
    assert result.matches and result.bias is None and result.activation is None
    assert "0·8 + 1·7 + 2·6 + 3·5 + 4·4 + 5·3 + 6·2 + 7·1 + 8·0 = 84" in result.text()
    # Every other unit of the 5x5 output is explained too, and equals the real output.
    output = net(x).detach()[0, 0]
    for row in range(5):
        for col in range(5):
            unit = explain(net, "0", x, (row, col))
            assert unit.actual == float(output[row, col]) and unit.matches


def test_reference_max_pooling_halves_24_to_12() -> None:
    pool = nn.Sequential(nn.MaxPool2d(2))
    x = torch.rand(1, 1, 24, 24)
    x[0, 0, :2, :2] = torch.tensor([[1.0, 2.0], [7.0, 8.0]])  # the reference's first window
    first = explain(pool, "0", x, (0, 0))
    assert first.output_shape == (1, 12, 12) and first.input_shape == (1, 24, 24)
    assert first.terms[0].patch.tolist() == [[1, 2], [7, 8]]
    assert first.value == 8 == first.actual and first.argmax == (1, 1)
    expected = x[0, 0].reshape(12, 2, 12, 2).amax(dim=(1, 3))
    for row, col in [(0, 5), (6, 6), (11, 11), (11, 0)]:
        unit = explain(pool, "0", x, (row, col))
        assert unit.value == float(expected[row, col]) == unit.actual and unit.matches
        assert list(unit.rows) == [2 * row, 2 * row + 1]


def test_trained_lenet5_units_match_the_feature_maps(trained_lenet5) -> None:
    model = load_model(str(trained_lenet5))
    maps = feature_maps(model, "mnist:test:12", ["conv2d_1", "max_pooling2d_1", "conv2d_2"])
    for layer, at in [("conv2d_1", (10, 12)), ("max_pooling2d_1", (5, 6)), ("conv2d_2", (3, 4))]:
        result = explain(model, layer, "mnist:test:12", at)
        output = maps.layer(layer).maps
        row, col = at
        assert result.channel == int(np.argmax(output[:, row, col]))  # the most active channel
        assert result.actual == pytest.approx(float(output[result.channel, row, col]), abs=1e-6)
        assert result.matches, result.text()
    conv2 = explain(model, "conv2d_2", "mnist:test:12", (3, 4), channel=5)
    assert [t.channel for t in conv2.terms] == list(range(6)) and conv2.activation == "relu"
    assert conv2.total == pytest.approx(math.fsum(t.sum for t in conv2.terms) + conv2.bias)
    assert conv2.value == max(conv2.total, 0.0)
    pooled = maps.layer("max_pooling2d_1").maps
    assert np.array_equal(conv2.input_maps, pooled)  # the pre-hook saw the pool's output


def test_same_padding_shows_the_padded_cells(trained_lenet) -> None:
    model = load_model(str(trained_lenet))
    result = explain(model, "conv2d_1", "mnist:test:3", (0, 27), channel=4)
    assert list(result.rows) == [-2, -1, 0, 1, 2] and list(result.cols) == [25, 26, 27, 28, 29]
    padded = result.terms[0].padded
    assert padded[:2].all() and padded[:, 3:].all() and not padded[2:, :3].any()
    assert (result.terms[0].patch[padded] == 0).all()
    assert result.padding == (2, 2, 2, 2) and result.matches


def test_keras_same_conv_pads_bottom_right() -> None:
    model = load_model("sequential", seed=0)
    x = torch.rand(1, 1, 28, 28)
    corner = explain(model, "conv2D_1", x, (27, 27), channel=0)
    assert corner.padding == (0, 1, 0, 1)
    assert corner.terms[0].padded.tolist() == [[False, True], [True, True]]
    top_left = explain(model, "conv2D_1", x, (0, 0), channel=0)
    assert not top_left.terms[0].padded.any()
    assert corner.matches and top_left.matches


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
def test_stride_dilation_groups_and_padding_modes(padding_mode: str) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2, padding_mode=padding_mode)
    net, x = nn.Sequential(conv), torch.randn(1, 4, 9, 11)
    output = net(x).detach()[0]
    for channel, at in [(0, (0, 0)), (5, (2, 3)), (3, (4, 5)), (2, (1, 0))]:
        result = explain(net, "0", x, at, channel=channel)
        assert result.matches, result.text()
        assert result.actual == float(output[(channel, *at)])
        group = channel // 3
        assert [t.channel for t in result.terms] == [2 * group, 2 * group + 1]
        assert list(result.rows) == [2 * at[0] - 2 + 2 * i for i in range(3)]


def test_activation_inside_the_conv() -> None:
    torch.manual_seed(1)
    x = torch.randn(1, 2, 6, 6)
    for activation in ("tanh", "sigmoid", "scaled_tanh", "softmax", "relu"):
        net = nn.Sequential(Conv2dAct(2, 3, 3, padding="same", activation="relu"))
        net[0].activation = activation  # (Conv2dAct's own check refuses softmax on a 1-D probe)
        result = explain(net, "0", x, (0, 5), channel=1)
        assert result.activation == activation and result.matches, result.text()
    same = nn.Sequential(SameConv2d(2, 3, 4))
    assert explain(same, "0", x, (5, 5), channel=2).padding == (1, 2, 1, 2)


@pytest.mark.parametrize(
    "pool",
    [
        nn.MaxPool2d(3, stride=2, padding=1),
        nn.MaxPool2d(3, stride=2, padding=1, dilation=2, ceil_mode=True),
        nn.AvgPool2d(3, stride=2, padding=1),
        nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False, ceil_mode=True),
        nn.AvgPool2d(2, divisor_override=3),
        nn.AdaptiveAvgPool2d((3, 4)),
        nn.AdaptiveMaxPool2d(2),
    ],
    ids=[
        "max-pad",
        "max-dilated-ceil",
        "avg-pad",
        "avg-nopad-ceil",
        "avg-divisor",
        "adaptive-avg",
        "adaptive-max",
    ],
)
def test_every_pooling_unit_matches(pool: nn.Module) -> None:
    torch.manual_seed(2)
    x = torch.randn(1, 2, 9, 10)
    net = nn.Sequential(pool)
    output = net(x)[0]
    _, height, width = output.shape
    for row in range(height):
        for col in range(width):
            result = explain(net, "0", x, (row, col), channel=1)
            assert result.matches and result.actual == float(output[1, row, col]), result.text()


def test_maxpool_padding_is_not_a_number_in_json() -> None:
    net, x = nn.Sequential(nn.MaxPool2d(3, stride=2, padding=1)), -torch.rand(1, 1, 6, 6)
    result = explain(net, "0", x, (0, 0))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["kind"] == "maxpool" and data["inputs"][0]["patch"][0] == [None, None, None]
    assert data["inputs"][0]["padded"][1] == [True, False, False]
    assert data["value"] == data["actual"] and data["matches"] is True
    assert data["receptive_field"] == {"rows": [-1, 1], "cols": [-1, 1]}


def test_json_keys_of_a_conv_unit() -> None:
    net, x = reference_conv()
    data = json.loads(json.dumps(explain(net, "0", x, (1, 2)).to_dict()))
    assert {"model", "layer", "kind", "at", "channel", "inputs", "bias", "total"} <= set(data)
    assert {"activation", "value", "actual", "matches"} <= set(data)
    assert data["at"] == [1, 2] and data["kind"] == "conv" and data["matches"] is True
    assert set(data["inputs"][0]) == {"channel", "patch", "kernel", "products", "sum", "padded"}


def test_user_mistakes_are_one_line_errors() -> None:
    model = load_model("lenet5", seed=0)
    with pytest.raises(ConvscopeError, match=r"outside conv2d_1's 24x24 output.*0\.\.23"):
        explain(model, "conv2d_1", "mnist:test:0", (24, 0))
    with pytest.raises(ConvscopeError, match=r"channel 6 does not exist.*0\.\.5"):
        explain(model, "conv2d_1", "mnist:test:0", (0, 0), channel=6)
    with pytest.raises(LayerError, match=r"cannot explain 'dense_1'.*MaxPool2d"):
        explain(model, "dense_1", "mnist:test:0", (0, 0))
    with pytest.raises(LayerError, match=r"did you mean .*conv2d_1"):
        explain(model, "conv2d_l", "mnist:test:0", (0, 0))
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.module.modules())


def test_capture_io_keeps_every_call_and_removes_its_hooks() -> None:
    pool = nn.MaxPool2d(2)
    net = nn.Sequential(pool, pool)  # one module, two calls
    x = torch.randn(1, 1, 8, 8)
    with capture_io(pool) as captured:
        net(x)
    assert [t.shape[-1] for t in captured.inputs] == [8, 4]
    assert not pool._forward_hooks and not pool._forward_pre_hooks
    first = explain(net, "0", x, (1, 1), call=0)
    assert (first.call, first.calls, first.input_shape) == (0, 2, (1, 8, 8))
    last = explain(net, "0", x, (1, 1))
    assert last.input_shape == (1, 4, 4) and last.matches and first.matches
    with pytest.raises(RuntimeError, match="boom"), capture_io(pool):
        raise RuntimeError("boom")
    assert not pool._forward_hooks and not pool._forward_pre_hooks


def test_figures_draw(tmp_path) -> None:
    net, x = reference_conv()
    conv = explain(net, "0", x, (0, 0))
    fig = conv.figure()
    texts = [t.get_text() for ax in fig.get_axes() for t in ax.texts]
    assert "84" in " ".join(texts) and "16" in texts  # the products grid has the numbers
    assert conv.save(str(tmp_path / "conv.png")) and (tmp_path / "conv.png").stat().st_size > 0
    pool = explain(nn.Sequential(nn.MaxPool2d(3, 2, 1)), "0", torch.rand(1, 2, 8, 8), (0, 0))
    texts = [t.get_text() for ax in pool.figure().get_axes() for t in ax.texts]
    assert texts.count("pad") == 5
    pool.save(str(tmp_path / "pool.svg"))
    assert (tmp_path / "pool.svg").read_text().startswith("<?xml")
