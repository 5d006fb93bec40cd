"""Feature maps are the true layer outputs: a hand convolution in numpy gives the same numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view
from torch import nn

from convscope.data.datasets import load_dataset
from convscope.errors import ImageError, LayerError
from convscope.models.loading import load_model
from convscope.probe.features import feature_maps, most_active, parse_layers


def hand_conv(image: np.ndarray, weight: np.ndarray, bias: np.ndarray, pads) -> np.ndarray:
    """Cross-correlation of a C x H x W image with O x C x k x k weights, zero-padded, in numpy."""
    top, bottom, left, right = pads
    padded = np.pad(image, ((0, 0), (top, bottom), (left, right)))
    kh, kw = weight.shape[2:]
    windows = sliding_window_view(padded, (kh, kw), axis=(1, 2))  # C x H' x W' x kh x kw
    return np.einsum("chwij,ocij->ohw", windows, weight) + bias[:, None, None]


def mnist_pixels(index: int) -> np.ndarray:
    """MNIST test image ``index`` as the zoo models see it: 1 x 28 x 28 in [0, 1]."""
    return load_dataset("mnist", "test").images[index][None].astype(np.float64) / 255.0


def params(layer: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    return layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy()


def test_lenet5_maps_equal_a_numpy_convolution(trained_lenet5) -> None:
    model = load_model(str(trained_lenet5))
    result = feature_maps(model, "mnist:test:12", "conv2d_1,max_pooling2d_1,conv2d_2")
    image = mnist_pixels(12)
    w1, b1 = params(model.module.conv2d_1)
    conv1 = np.maximum(hand_conv(image, w1, b1, (0, 0, 0, 0)), 0)  # relu inside Conv2dAct
    got = result.layer("conv2d_1").output
    assert got.shape == (1, 6, 24, 24)
    np.testing.assert_allclose(got[0], conv1, atol=1e-5)
    pooled = conv1.reshape(6, 12, 2, 12, 2).max(axis=(2, 4))
    np.testing.assert_allclose(result.layer("max_pooling2d_1").output[0], pooled, atol=1e-5)
    w2, b2 = params(model.module.conv2d_2)
    conv2 = np.maximum(hand_conv(pooled, w2, b2, (0, 0, 0, 0)), 0)
    np.testing.assert_allclose(result.layer("conv2d_2").output[0], conv2, atol=1e-4)
    assert result.label == "9" and result.input_name == "mnist:test:12"
    assert result.pixels is not None and result.pixels.shape == (28, 28)


def test_lenet_same_padding_maps_equal_a_numpy_convolution(trained_lenet) -> None:
    model = load_model(str(trained_lenet))
    result = feature_maps(model, "mnist:test:3", ["conv2d_1"])
    w, b = params(model.module.conv2d_1)
    expected = np.maximum(hand_conv(mnist_pixels(3), w, b, (2, 2, 2, 2)), 0)
    got = result.layer("conv2d_1").output[0]
    assert got.shape == (20, 28, 28)  # 'same': the map keeps the input size
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_keras_same_conv_pads_bottom_right_for_even_kernels() -> None:
    """SameConv2d with a 2x2 kernel pads one row/column at the bottom/right only (as Keras)."""
    model = load_model("sequential", seed=0)
    pixels = load_dataset("mnist", "test").images[7]  # any 28x28 image will do
    result = feature_maps(model, pixels, ["conv2D_1"])
    w, b = params(model.module.conv2D_1)
    expected = hand_conv(pixels[None] / 255.0, w, b, (0, 1, 0, 1))
    np.testing.assert_allclose(result.layer("conv2D_1").output[0], expected, atol=1e-5)
    wrong = hand_conv(pixels[None] / 255.0, w, b, (1, 0, 1, 0))
    assert not np.allclose(result.layer("conv2D_1").output[0], wrong, atol=1e-5)


def test_whole_blocks_and_dense_layers_keep_the_batch_dimension() -> None:
    model = load_model("residual", seed=0)
    names = [n for n, _ in model.module.named_children()]
    result = feature_maps(model, "fashion-mnist:test:0", [names[0], "hidden"])
    assert result.layer("hidden").output.shape == (1, 128)
    assert result.layer(names[0]).output.ndim == 4
    data = json.loads(json.dumps(result.to_dict()))
    assert data["model"] == "residual" and data["input"] == "fashion-mnist:test:0"
    assert [layer["name"] for layer in data["layers"]] == [names[0], "hidden"]
    assert data["layers"][1]["shape"] == [1, 128]


def test_reused_module_gives_the_chosen_call() -> None:
    model = load_model("torchvision:resnet18", seed=0)
    x = torch.randn(1, 3, 64, 64)
    first = feature_maps(model, x, ["layer1.0.relu"], call=0).layer("layer1.0.relu")
    last = feature_maps(model, x, ["layer1.0.relu"]).layer("layer1.0.relu")
    assert (first.call, first.calls, last.call, last.calls) == (0, 2, 1, 2)
    assert not np.allclose(first.output, last.output)
    with pytest.raises(LayerError, match=r"ran 2 time\(s\).*0\.\.1"):
        feature_maps(model, x, ["layer1.0.relu"], call=2)


def test_unknown_layer_lists_close_matches_and_hooks_are_removed() -> None:
    model = load_model("lenet5", seed=0)
    with pytest.raises(LayerError, match=r"did you mean .*max_pooling2d_1"):
        feature_maps(model, "mnist:test:0", ["max_pooling2d_l"])
    with pytest.raises(LayerError, match="no layer named"):
        parse_layers(" , ")
    feature_maps(model, "mnist:test:0", ["conv2d_1"])
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.module.modules())


def test_bare_module_takes_a_tensor_and_refuses_pixels() -> None:
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU())
    x = torch.randn(2, 6, 6)
    result = feature_maps(net, x, ["0", "1"])
    torch.testing.assert_close(torch.from_numpy(result.layer("0").output), net[0](x[None]))
    assert result.model == "Sequential" and result.pixels is None
    with pytest.raises(ImageError, match="preprocessed tensor"):
        feature_maps(net, np.zeros((6, 6), np.uint8), ["0"])


def test_most_active_channels_and_top_selection() -> None:
    maps = np.zeros((5, 2, 2))
    maps[3] = 2.0
    maps[1] = 1.0
    maps[4, 0, 0] = 3.0  # mean 0.75
    assert most_active(maps, 3).tolist() == [3, 1, 4]
    model = load_model("lenet5", seed=0)
    layer = feature_maps(model, "mnist:test:12", ["conv2d_2"]).layer("conv2d_2")
    top = layer.shown_channels(top=4)
    means = layer.maps.mean(axis=(1, 2))
    assert len(top) == 4 and set(top) == set(np.argsort(-means)[:4])
    assert layer.shown_channels().tolist() == list(range(16))
    assert len(layer.shown_channels(max_maps=10)) == 10
