"""Feature-map figures: one panel per map, the input beside them, colour bars, honest titles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.image import AxesImage

from convscope.errors import ConvscopeError
from convscope.models.loading import load_model
from convscope.probe.features import FeatureMaps, LayerMaps, feature_maps
from convscope.render.features import plot_feature_maps


def images_of(fig) -> list[AxesImage]:
    return [image for ax in fig.get_axes() for image in ax.get_images()]


def titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.get_axes()]


def sub_titles(fig) -> list[str]:
    """Titles of the layer blocks (subfigure suptitles)."""
    found = []

    def walk(figure) -> None:
        for sub in figure.subfigs:
            if sub._suptitle is not None:
                found.append(sub._suptitle.get_text())
            walk(sub)

    walk(fig)
    return found


@pytest.fixture(scope="module")
def lenet5_maps() -> FeatureMaps:
    model = load_model("lenet5", seed=0)
    return feature_maps(model, "mnist:test:12", ["max_pooling2d_1", "max_pooling2d_2"])


def test_reference_figure_has_every_map_and_the_input(lenet5_maps, tmp_path) -> None:
    fig = plot_feature_maps(lenet5_maps)
    images = images_of(fig)
    assert len(images) == 1 + 6 + 16  # the input, then every map
    assert images[0].get_array().shape == (28, 28)
    assert [im.get_array().shape for im in images[1:7]] == [(12, 12)] * 6
    assert [im.get_array().shape for im in images[7:]] == [(4, 4)] * 16
    assert "input (label 9)" in titles(fig)
    blocks = sub_titles(fig)
    assert any("max_pooling2d_1 (MaxPool2d) · 6 maps 12x12" in t for t in blocks)
    assert any("max_pooling2d_2 (MaxPool2d) · 16 maps 4x4" in t for t in blocks)
    # Shared scale: all maps of a layer use one norm, and each layer has its colour bar.
    first = {(im.norm.vmin, im.norm.vmax) for im in images[1:7]}
    assert len(first) == 1
    assert first.pop()[1] == pytest.approx(float(lenet5_maps.layer("max_pooling2d_1").maps.max()))
    assert sum(ax.get_label() == "<colorbar>" for ax in fig.get_axes()) == 2
    path = tmp_path / "maps.png"
    lenet5_maps.save(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_per_map_scale_and_top_channels(lenet5_maps) -> None:
    fig = plot_feature_maps(lenet5_maps, scale="per-map", top=3)
    images = images_of(fig)[1:]
    assert len(images) == 6
    maps = lenet5_maps.layer("max_pooling2d_2").maps
    chosen = np.argsort(-maps.mean(axis=(1, 2)))[:3]
    for image, channel in zip(images[3:], chosen, strict=True):
        assert np.array_equal(image.get_array(), maps[channel])
        assert image.norm.vmax == pytest.approx(float(maps[channel].max()))
    assert any("the 3 most active channels" in t for t in sub_titles(fig))


def test_signed_layers_get_a_diverging_scale_centred_on_zero() -> None:
    maps = np.linspace(-1.0, 3.0, 2 * 3 * 3).reshape(1, 2, 3, 3)
    result = FeatureMaps(
        model="toy",
        input_name="x",
        layers=[LayerMaps(name="conv", type="Conv2d", output=maps)],
        input_tensor=np.zeros((1, 5, 5)),
    )
    image = images_of(plot_feature_maps(result))[1]
    assert (image.norm.vmin, image.norm.vmax) == (-3.0, 3.0)
    assert image.get_cmap().name == "RdBu_r"


def test_dense_layers_are_bars_and_rgb_inputs_show_in_colour() -> None:
    model = load_model("torchvision:resnet18", seed=0)
    result = feature_maps(model, torch.rand(1, 3, 32, 32), ["layer1", "fc"])
    fig = plot_feature_maps(result, top=4)
    assert images_of(fig)[0].get_array().shape == (32, 32, 3)
    bars = [ax for ax in fig.get_axes() if ax.patches]
    assert len(bars) == 1 and len(bars[0].patches) == 1000


def test_bad_scale_is_a_user_error(lenet5_maps) -> None:
    with pytest.raises(ConvscopeError, match="unknown scale"):
        plot_feature_maps(lenet5_maps, scale="global")
    with pytest.raises(ConvscopeError, match="--top must be at least 1"):
        plot_feature_maps(lenet5_maps, top=0)
