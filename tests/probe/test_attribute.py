"""Attribution against second implementations: hooks + autograd, analytic linear models."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from convscope.data.preprocess import InputSpec
from convscope.data.spec import resolve_images
from convscope.errors import ConvscopeError, LayerError
from convscope.models.loaded import LoadedModel
from convscope.models.loading import load_model
from convscope.probe.attribute import (
    METHODS,
    NOISE_LEVEL,
    attribute,
    parse_methods,
    place_map,
    receptive_field_centres,
    resolve_target,
)


def _input(model: LoadedModel, spec: str = "mnist:test:0") -> tuple[object, torch.Tensor]:
    image = resolve_images(spec, input_spec=model.input_spec)[0]
    return image, model.input_spec.normalize(image.pixels[None, ..., None])


def direct_gradcam(module: nn.Module, layer: str, x: torch.Tensor, target: int) -> torch.Tensor:
    """Grad-CAM by hand: w_k = mean over H x W of d score / d A_k; relu(sum_k w_k A_k)."""
    saved: list[torch.Tensor] = []
    handle = dict(module.named_modules())[layer].register_forward_hook(
        lambda _m, _i, out: saved.append(out)
    )
    try:
        score = module(x)[0, target]
    finally:
        handle.remove()
    activations = saved[-1]
    (grads,) = torch.autograd.grad(score, activations)
    weights = grads.mean(dim=(2, 3), keepdim=True)
    return F.relu((weights * activations).sum(dim=1))[0].detach()


def all_hooks(module: nn.Module) -> list[object]:
    hooks = []
    for sub in module.modules():
        for registry in (
            sub._forward_hooks,
            sub._forward_pre_hooks,
            sub._backward_hooks,
            sub._backward_pre_hooks,
        ):
            hooks += list(registry.values())
    return hooks


# --------------------------------------------------------------------------- Grad-CAM


def test_gradcam_equals_direct_computation_on_trained_lenet5(trained_lenet5) -> None:
    model = load_model(str(trained_lenet5))
    image, x = _input(model)
    result = attribute(model, image, "gradcam")
    entry = result.map("gradcam")
    assert entry.layer == "conv2d_2"  # the last convolution
    expected = direct_gradcam(model.module, "conv2d_2", x, result.target).numpy()
    assert entry.layer_values.shape == (8, 8)
    assert expected.max() > 0
    np.testing.assert_allclose(entry.layer_values, expected, rtol=1e-4, atol=1e-7)
    # conv2d_2 covers only the middle of the input (valid convolutions): placed, not stretched
    assert entry.options["placement"] == "receptive-field"
    assert entry.values.shape == (28, 28)
    assert result.target == result.predicted == 7


def test_gradcam_on_residual_equals_direct_computation_and_is_upsampled_bilinearly() -> None:
    model = load_model("residual", seed=3)
    image, x = _input(model, "fashion-mnist:test:0")
    for layer, default in ((None, "conv2D_6"), ("add2", "add2")):
        result = attribute(model, image, ["gradcam"], layer=layer)
        entry = result.map("gradcam")
        assert entry.layer == default
        expected = direct_gradcam(model.module, default, x, result.target)
        np.testing.assert_allclose(entry.layer_values, expected.numpy(), rtol=1e-4, atol=1e-7)
        upsampled = F.interpolate(expected[None, None], size=(28, 28), mode="bilinear")[0, 0]
        assert entry.options["placement"] == "stretched"  # 28 is a multiple of 7 and 14
        np.testing.assert_allclose(entry.values, upsampled.numpy(), rtol=1e-4, atol=1e-7)


def test_receptive_field_centres_of_lenet5_match_the_arithmetic() -> None:
    """conv 5x5 valid -> pool 2 -> conv 5x5 valid: cell i of conv2d_2 is centred on 2i + 6.5."""
    model = load_model("lenet5", seed=0)
    x = torch.zeros(1, 1, 28, 28)
    (row0, row_step), (col0, col_step) = receptive_field_centres(model.module, "conv2d_2", x)
    assert row_step == col_step == 2.0
    assert abs(row0 - 6.5) < 0.5 and abs(col0 - 6.5) < 0.5
    (row0, row_step), _ = receptive_field_centres(model.module, "conv2d_1", x)
    assert row_step == 1.0 and abs(row0 - 2.0) < 0.3


def test_place_map_puts_each_cell_at_its_centre() -> None:
    values = np.zeros((3, 3))
    values[1, 2] = 1.0
    placed = place_map(values, (4.0, 2.0), (4.0, 2.0), (12, 12))
    assert placed[6, 8] == pytest.approx(1.0)  # cell (1, 2) -> pixel (4 + 2, 4 + 4)
    assert placed[6, 7] == pytest.approx(0.5)  # half-way to the next cell centre
    assert placed[0, 0] == 0.0 and placed[11, 11] == 0.0  # no cell out there


def test_gradcam_layer_errors() -> None:
    model = load_model("lenet5", seed=0)
    image, _ = _input(model)
    with pytest.raises(LayerError, match="conv2d_2"):
        attribute(model, image, "gradcam", layer="conv2d_3")
    with pytest.raises(LayerError, match="N x C x H x W"):
        attribute(model, image, "gradcam", layer="dense_1")
    with pytest.raises(ConvscopeError, match="add gradcam"):
        attribute(model, image, "saliency", layer="conv2d_1")


# --------------------------------------------------------------------------- gradients


def test_integrated_gradients_are_complete_within_one_percent(trained_lenet5) -> None:
    model = load_model(str(trained_lenet5))
    image, x = _input(model, "mnist:test:3")
    result = attribute(model, image, "ig", steps=200)
    entry = result.map("ig")
    with torch.no_grad():
        scores = model.module(torch.cat([x, torch.zeros_like(x)]))[:, result.target]
    gap = float(scores[0] - scores[1])
    assert abs(gap) > 1.0
    assert entry.values.sum() == pytest.approx(gap, rel=0.01)
    assert entry.completeness_error < 0.01
    assert entry.options == {"steps": 200, "baseline": "black", "reduce": "sum over channels"}


def test_integrated_gradients_complete_on_residual_with_batch_norm() -> None:
    model = load_model("residual", seed=1)
    image, x = _input(model, "fashion-mnist:test:5")
    result = attribute(model, image, "ig", steps=100, baseline="white", target="Trouser")
    white = model.input_spec.normalize(np.full((1, 28, 28, 1), 255, np.uint8))
    with torch.no_grad():
        gap = float(model.module(x)[0, 1] - model.module(white)[0, 1])
    assert result.target == 1
    assert result.map("ig").values.sum() == pytest.approx(gap, rel=0.01)


def test_saliency_equals_abs_gradient_computed_directly(trained_lenet5) -> None:
    model = load_model(str(trained_lenet5))
    image, x = _input(model, "mnist:test:1")
    result = attribute(model, image, "saliency", target=3)
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.module(x)[0, 3], x)
    np.testing.assert_allclose(result.map("saliency").values, grad.abs()[0, 0].numpy(), rtol=1e-5)


class TinyRGB(nn.Module):
    """A 3-channel model small enough to check channel reductions by hand."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 8 * 8, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.conv(x)))


def test_saliency_takes_max_over_colour_channels_and_keeps_inplace_module() -> None:
    model = LoadedModel(TinyRGB(), "tiny", InputSpec(3, 8, 8, mean=(0.5,), std=(0.25,)))
    pixels = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    result = attribute(model, pixels, "saliency,ig", target=2, steps=100)
    x = model.input_spec.normalize(pixels[None]).requires_grad_(True)
    (grad,) = torch.autograd.grad(model.module(x)[0, 2], x)
    np.testing.assert_allclose(
        result.map("saliency").values, grad.abs().amax(dim=1)[0].numpy(), rtol=1e-5
    )
    assert result.map("ig").values.shape == (8, 8)
    assert model.module.act.inplace is True  # the copy was changed, not the user's module
    assert all_hooks(model.module) == []


# --------------------------------------------------------------------------- occlusion


class LinearScore(nn.Module):
    """f_c(x) = sum(W_c * x): occluding a window removes exactly sum(W_c * x) over it."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nchw,kchw->nk", x, self.weight)


def test_occlusion_of_a_linear_model_is_the_window_sum() -> None:
    rng = np.random.default_rng(1)
    weight = torch.from_numpy(rng.normal(size=(3, 1, 12, 12)).astype(np.float32))
    model = LoadedModel(LinearScore(weight), "linear", InputSpec(1, 12, 12))
    pixels = rng.integers(0, 256, (12, 12), dtype=np.uint8)
    contribution = weight[1, 0].numpy() * pixels / 255.0  # baseline black = 0

    result = attribute(model, pixels, "occlusion", target=1, window=4, stride=4)
    blocks = contribution.reshape(3, 4, 3, 4).sum(axis=(1, 3))
    np.testing.assert_allclose(result.map("occlusion").values, np.kron(blocks, np.ones((4, 4))),
                               rtol=1e-4, atol=1e-5)  # fmt: skip

    # overlapping windows: each pixel gets the mean of the sums of the windows covering it
    result = attribute(model, pixels, "occlusion", target=1, window=4, stride=2)
    total = np.zeros((12, 12))
    count = np.zeros((12, 12))
    for top in range(0, 9, 2):
        for left in range(0, 9, 2):
            total[top : top + 4, left : left + 4] += contribution[
                top : top + 4, left : left + 4
            ].sum()
            count[top : top + 4, left : left + 4] += 1
    np.testing.assert_allclose(result.map("occlusion").values, total / count, rtol=1e-4, atol=1e-5)
    assert result.map("occlusion").options == {"window": 4, "stride": 2, "baseline": "black"}


# --------------------------------------------------------------------------- contract


def test_methods_and_targets_are_parsed_with_helpful_errors() -> None:
    assert parse_methods("all") == list(METHODS)
    assert parse_methods("ig, saliency,ig") == ["ig", "saliency"]
    assert parse_methods("grad-cam") == ["gradcam"]
    with pytest.raises(ConvscopeError, match="saliency"):
        parse_methods("salency")
    with pytest.raises(ConvscopeError, match="empty method name"):
        parse_methods("saliency,")
    classes = ("T-shirt/top", "Trouser", "Pullover")
    assert resolve_target("trouser", classes) == 1
    assert resolve_target("2", classes) == 2
    assert resolve_target(None, classes) is None
    with pytest.raises(
        ConvscopeError, match="the classes are 0 T-shirt/top, 1 Trouser, 2 Pullover"
    ):
        resolve_target("Sandal", classes)
    with pytest.raises(ConvscopeError, match="class '7' is out of range"):
        resolve_target(7, classes)
    with pytest.raises(ConvscopeError, match="'0-2' names 3 classes; the target class is one"):
        resolve_target("0-2", classes)


def test_result_to_dict_and_stacked_maps() -> None:
    model = load_model("lenet5", seed=0)
    image, _ = _input(model)
    result = attribute(model, image, "all", steps=8)
    data = result.to_dict()
    assert {"model", "image", "target", "target_name", "predicted", "methods"} <= set(data)
    assert [m["method"] for m in data["methods"]] == list(METHODS)
    assert data["methods"][1]["layer"] == "conv2d_2"
    assert "completeness_error" in data["methods"][2]
    assert data["score"] == "logit" and data["label"] == "7"
    assert result.stacked().shape == (4, 28, 28)
    assert result.pixels.dtype == np.uint8 and result.pixels.shape == (28, 28)


class Flaky(nn.Module):
    """Runs normally once, then fails: the exception path must leave no hook behind."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * 6 * 6, 3))
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls > 1:
            raise RuntimeError("broken on purpose")
        return self.head(self.conv(x))


@pytest.mark.parametrize("method", ["gradcam", "saliency", "ig", "occlusion"])
def test_no_hooks_remain_after_an_exception(method: str) -> None:
    model = LoadedModel(Flaky(), "flaky", InputSpec(1, 8, 8))
    with pytest.raises(RuntimeError, match="on purpose"):
        attribute(model, np.zeros((8, 8), np.uint8), method)
    assert all_hooks(model.module) == []


def test_no_hooks_remain_and_training_mode_is_restored(trained_lenet5) -> None:
    model = load_model(str(trained_lenet5))
    image, _ = _input(model)
    model.module.train()
    first = attribute(model, image, "all", steps=8)
    second = attribute(model, image, "all", steps=8)
    assert model.module.training  # restored
    assert all_hooks(model.module) == []
    np.testing.assert_array_equal(first.stacked(), second.stacked())  # ran in eval mode


def test_torchvision_resnet_with_inplace_relu() -> None:
    from torchvision.models import resnet18

    torch.manual_seed(0)
    module = resnet18(num_classes=4).eval()
    model = LoadedModel(module, "resnet18", InputSpec(3, 64, 64, mean=(0.5,), std=(0.25,)))
    pixels = np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    result = attribute(model, pixels, "gradcam,saliency", layer="layer4")
    x = model.input_spec.normalize(pixels[None])
    expected = direct_gradcam(module, "layer4", x, result.target)
    np.testing.assert_allclose(result.map("gradcam").layer_values, expected.numpy(), rtol=1e-4,
                               atol=1e-6)  # fmt: skip
    assert module.relu.inplace is True and all_hooks(module) == []
    reused = attribute(model, pixels, "gradcam", layer="layer4.1.relu")
    assert "runs 2 times" in reused.map("gradcam").note


def test_a_spec_string_is_an_image_and_bad_windows_are_refused() -> None:
    model = load_model("lenet5", seed=0)
    (image,) = resolve_images("mnist:test:12", input_spec=model.input_spec)
    by_spec = attribute(model, "mnist:test:12", ["saliency"])
    by_image = attribute(model, image, ["saliency"])
    np.testing.assert_array_equal(by_spec.maps[0].values, by_image.maps[0].values)
    with pytest.raises(ConvscopeError, match="--window must be at least 1 pixel, got 0"):
        attribute(model, image, ["occlusion"], window=0)


# --------------------------------------------------------------------------- more methods


def _linear_model(seed: int = 2) -> tuple[LoadedModel, torch.Tensor, np.ndarray]:
    rng = np.random.default_rng(seed)
    weight = torch.from_numpy(rng.normal(size=(3, 1, 12, 12)).astype(np.float32))
    model = LoadedModel(LinearScore(weight), "linear", InputSpec(1, 12, 12))
    return model, weight, rng.integers(0, 256, (12, 12), dtype=np.uint8)


def test_smoothgrad_of_a_linear_model_is_its_weight_and_leaves_the_global_rng() -> None:
    model, weight, pixels = _linear_model()
    before = torch.random.get_rng_state()
    result = attribute(model, pixels, "smoothgrad", target=1, samples=8, seed=5)
    assert torch.equal(torch.random.get_rng_state(), before)
    # the gradient of a linear score is its weight everywhere, noise or not
    np.testing.assert_allclose(
        result.map("smoothgrad").values, weight[1, 0].abs().numpy(), rtol=1e-6
    )
    assert result.map("smoothgrad").options["samples"] == 8


def test_gradshap_and_deeplift_of_a_linear_model_are_weight_times_input() -> None:
    model, weight, pixels = _linear_model()
    exact = weight[1, 0].numpy() * pixels / 255.0  # w * (x - black baseline)
    deeplift = attribute(model, pixels, "deeplift", target=1).map("deeplift")
    np.testing.assert_allclose(deeplift.values, exact, rtol=1e-4, atol=1e-5)
    assert deeplift.completeness_error < 1e-5
    # GradientSHAP: exact up to the mean of its input noise, w * mean(noise)
    shap = attribute(model, pixels, "gradshap", target=1, samples=64, seed=0).map("gradshap")
    spread = NOISE_LEVEL * (pixels.max() - pixels.min()) / 255.0
    assert np.abs(shap.values - exact).max() < 4 * spread / np.sqrt(64) * np.abs(weight[1]).max()
    again = attribute(model, pixels, "gradshap", target=1, samples=64, seed=0).map("gradshap")
    np.testing.assert_array_equal(shap.values, again.values)  # seeded


def test_deeplift_sums_to_the_score_gap_on_a_relu_network() -> None:
    model = LoadedModel(TinyRGB(), "tiny", InputSpec(3, 8, 8, mean=(0.5,), std=(0.25,)))
    pixels = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    entry = attribute(model, pixels, "deeplift", target=2).map("deeplift")
    assert entry.completeness_error < 1e-4 and entry.signed
    assert all_hooks(model.module) == []


def test_guided_gradcam_uses_gradcams_layer_and_leaves_no_hook() -> None:
    model = load_model("lenet5", seed=0)
    image, _ = _input(model)
    result = attribute(model, image, "gradcam,guided-gradcam")
    guided = result.map("guided-gradcam")
    gradcam = result.map("gradcam")
    assert guided.layer == gradcam.layer == "conv2d_2"
    assert guided.values.shape == (28, 28) and np.abs(guided.values).max() > 0
    # guided backprop x the drawn Grad-CAM map: nothing where the CAM is zero
    assert (guided.values[gradcam.values == 0] == 0).all()
    x = model.input_spec.normalize(image.pixels[None, ..., None]).requires_grad_(True)
    from captum.attr import GuidedBackprop

    backprop = GuidedBackprop(model.module).attribute(x, target=result.target).detach()[0, 0]
    np.testing.assert_allclose(
        guided.values, backprop.numpy() * gradcam.values, rtol=1e-5, atol=1e-9
    )
    assert parse_methods("Guided-Grad-CAM,smooth-grad") == ["guided-gradcam", "smoothgrad"]
    assert parse_methods("all") == list(METHODS)  # the classic four
    assert all_hooks(model.module) == []
    with pytest.raises(ConvscopeError, match="--samples must be at least 1"):
        attribute(model, image, "smoothgrad", samples=0)
