"""One input path: every probe takes a MODEL string, and a SPEC, a path or a Pillow image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

import convscope
from convscope.data.spec import resolve_images


def test_model_strings_and_pillow_images_give_the_same_numbers(tmp_path: Path) -> None:
    model = convscope.load_model("lenet5")
    digit = resolve_images("mnist:test:3")[0].pixels
    photo = Image.fromarray(digit)
    path = tmp_path / "digit.png"
    photo.save(path)
    np.testing.assert_array_equal(
        convscope.predict("lenet5", photo).probabilities,
        convscope.predict(model, "mnist:test:3").probabilities,
    )
    assert convscope.predict(model, path).predictions[0].input == "digit.png"
    by_string = convscope.feature_maps("lenet5", path, ["conv2d_1"]).layers[0].output
    by_array = convscope.feature_maps(model, digit, ["conv2d_1"]).layers[0].output
    np.testing.assert_array_equal(by_string, by_array)
    np.testing.assert_array_equal(
        convscope.attribute("lenet5", photo, "saliency").stacked(),
        convscope.attribute(model, digit, "saliency").stacked(),
    )
    assert convscope.explain("lenet5", "conv2d_1", photo, (2, 2)).actual == (
        convscope.explain(model, "conv2d_1", digit, (2, 2)).actual
    )
    rows = convscope.activations("lenet5", [photo, photo], ["dense_3"])["dense_3"]
    assert rows.shape == (2, 10) and np.array_equal(rows[0], rows[1])
    assert convscope.kernels("lenet5", "conv2d_1").weights.shape == (6, 1, 5, 5)
    assert convscope.summary("lenet5").total_params == 44_426
    assert convscope.diagram("lenet5").model == "lenet5"


def test_a_bare_module_takes_images_with_its_input_shape() -> None:
    import pytest
    import torch
    from torch import nn

    from convscope.errors import ConvscopeError

    torch.manual_seed(0)
    module = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
    loaded = convscope.LoadedModel(module, "net", convscope.InputSpec(1, 28, 28))
    shape = {"input_shape": (1, 28, 28)}
    np.testing.assert_array_equal(
        convscope.predict(module, "mnist:test:0", **shape).probabilities,
        convscope.predict(loaded, "mnist:test:0").probabilities,
    )
    np.testing.assert_array_equal(
        convscope.attribute(module, "mnist:test:0", "saliency", **shape).stacked(),
        convscope.attribute(loaded, "mnist:test:0", "saliency").stacked(),
    )
    assert convscope.maximize(module, 3, steps=2, starts=1, **shape).targets[0].target.index == 3
    for probe in (
        lambda: convscope.attribute(module, "mnist:test:0", "saliency"),
        lambda: convscope.predict(module, "mnist:test:0"),
        lambda: convscope.maximize(module, 3, steps=2, starts=1),
    ):
        with pytest.raises(ConvscopeError, match=r"input_shape=\(C, H, W\)"):
            probe()
