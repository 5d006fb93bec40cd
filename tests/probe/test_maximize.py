"""Activation maximisation: real ascents on a trained LeNet-5, honest failures, the pieces."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from torch import nn

from convscope.data.preprocess import InputSpec
from convscope.errors import ConvscopeError, LayerError
from convscope.models.loaded import LoadedModel
from convscope.models.loading import load_model
from convscope.probe.maximize import (
    ROSE,
    ImageParam,
    MaximizeSettings,
    channel_targets,
    class_targets,
    color_decorrelation,
    default_settings,
    gaussian_blur,
    maximize,
    process_compute_mode,
    random_affine,
    rfft2d_freqs,
    total_variation,
)

FAST = {"steps": 48, "starts": 2, "patience": 16}


@pytest.fixture(scope="module")
def lenet5(trained_lenet5) -> LoadedModel:
    return load_model(str(trained_lenet5))


# ---- the real thing on a trained model ---------------------------------------------------------


def test_every_class_beats_its_start_and_every_other_class(lenet5: LoadedModel) -> None:
    result = maximize(lenet5, "all", **FAST)
    assert [t.target.index for t in result.targets] == list(range(10))
    # a second implementation of the scores: the plain model on the returned inputs
    with torch.no_grad():
        logits = lenet5.module(torch.from_numpy(result.inputs)).numpy()
    for k, target in enumerate(result.targets):
        assert target.status in ROSE, target.message
        assert target.score > target.start_score + 1.0
        assert logits[k].argmax() == k
        assert logits[k, k] == pytest.approx(target.score, rel=1e-4, abs=1e-4)
        probs = np.exp(logits[k] - logits[k].max())
        probs /= probs.sum()
        assert target.prob == pytest.approx(probs[k], rel=1e-4)
        assert target.top[0] == (str(k), pytest.approx(probs[k], rel=1e-4))
        assert [name for name, _ in target.top] == [str(i) for i in np.argsort(-probs)[:3]]
        assert target.trace.shape == (2, target.steps)
        assert target.image.shape == (28, 28)
        assert target.image.min() >= 0.0 and target.image.max() <= 1.0
    assert np.mean([t.prob for t in result.targets]) > 0.9


def test_input_is_the_normalised_image(lenet5: LoadedModel) -> None:
    result = maximize(lenet5, 3, steps=8, starts=1)
    target = result.targets[0]
    pixels = np.round(target.image * 255).astype(np.uint8)
    expected = lenet5.input_spec.normalize(pixels).numpy()[0]
    assert target.input.shape == (1, 28, 28)
    np.testing.assert_allclose(target.input, expected, atol=1 / 255)


def test_probability_objective_reaches_high_probability(lenet5: LoadedModel) -> None:
    result = maximize(lenet5, "7", objective="prob", **FAST)
    target = result.targets[0]
    assert target.status in ROSE
    assert target.score == pytest.approx(target.prob)
    assert target.prob > 0.9 and target.prob > target.start_score


def test_channel_objective_raises_the_channel_mean(lenet5: LoadedModel) -> None:
    result = maximize(lenet5, channels="conv2d_2:3", **FAST)
    target = result.targets[0]
    assert target.target.name == "conv2d_2:3" and target.prob is None
    # second implementation: the channel mean read by a hook-free forward pass
    x = torch.from_numpy(result.inputs)
    with torch.no_grad():
        conv = lenet5.module.conv2d_2(lenet5.module.max_pooling2d_1(lenet5.module.conv2d_1(x)))
    assert float(conv[0, 3].mean()) == pytest.approx(target.score, rel=1e-4)
    assert target.status in ROSE and target.score > target.start_score + 0.5


def test_results_are_seeded(lenet5: LoadedModel) -> None:
    first = maximize(lenet5, 5, steps=6, starts=1, seed=3)
    second = maximize(lenet5, 5, steps=6, starts=1, seed=3)
    other = maximize(lenet5, 5, steps=6, starts=1, seed=4)
    np.testing.assert_array_equal(first.targets[0].image, second.targets[0].image)
    assert not np.array_equal(first.targets[0].image, other.targets[0].image)


def test_model_and_process_are_left_as_found(lenet5: LoadedModel) -> None:
    lenet5.module.train()
    threads, onednn = torch.get_num_threads(), torch.backends.mkldnn.enabled
    rng = torch.random.get_rng_state()
    seen = []  # the process-wide settings while the ascent runs: never changed

    def progress(done: int, total: int) -> None:
        seen.append((torch.get_num_threads(), torch.backends.mkldnn.enabled))

    maximize(lenet5, 1, steps=2, starts=1, progress=progress)
    assert seen == [(threads, onednn)] * 2
    assert lenet5.module.training
    assert all(p.requires_grad for p in lenet5.module.parameters())
    assert torch.get_num_threads() == threads and torch.backends.mkldnn.enabled == onednn
    assert torch.equal(torch.random.get_rng_state(), rng)  # its own generator only
    lenet5.module.eval()


def test_process_compute_mode_is_one_thread_for_small_ascents_and_restores() -> None:
    threads, onednn = torch.get_num_threads(), torch.backends.mkldnn.enabled
    with process_compute_mode(10 * 4 * 28 * 28):
        assert torch.get_num_threads() == 1 and not torch.backends.mkldnn.enabled
    with process_compute_mode(10 * 4 * 3 * 224 * 224):
        assert torch.get_num_threads() == threads
    assert torch.get_num_threads() == threads and torch.backends.mkldnn.enabled == onednn


def test_step_limit_is_not_called_converged(lenet5: LoadedModel) -> None:
    # 4 steps: the logit is still rising when the ascent stops
    short = maximize(lenet5, 2, steps=4, starts=1).targets[0]
    assert short.status == "step-limit"
    assert "step limit reached at 4 steps" in short.message
    assert short.score > short.start_score
    # a patience of 2 steps stops a target whose objective levelled off
    flat = maximize(lenet5, 2, steps=256, starts=1, patience=2, lr=1e-6).targets[0]
    assert flat.status in ("converged", "stalled"), flat.message
    if flat.status == "converged":
        assert "levelled off" in flat.message and flat.steps < 256


# ---- honest failure -----------------------------------------------------------------------------


class Blind(nn.Module):
    """Scores that do not depend on the input: the input is multiplied by zero."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc((x * 0).flatten(1))


class Saturated(nn.Module):
    """Class 0 peaks at mid-gray, where starts of a small ``init_std`` are: nothing to gain."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        peak = -((x - 0.5) ** 2).flatten(1).sum(dim=1)
        return torch.stack([peak, torch.zeros_like(peak)], dim=1)


def small_model(module: nn.Module, channels: int = 1, side: int = 4, **spec) -> LoadedModel:
    return LoadedModel(
        module=module.eval(),
        name=type(module).__name__.lower(),
        input_spec=InputSpec(channels=channels, height=side, width=side, **spec),
    )


def test_vanishing_gradient_is_reported_not_drawn() -> None:
    result = maximize(small_model(Blind()), "all", steps=20, starts=2)
    for target in result.targets:
        assert target.status == "vanishing-gradient"
        assert not target.drawn
        assert "no gradient" in target.message
        assert target.steps == 1
    data = result.to_dict()
    assert {t["status"] for t in data["targets"]} == {"vanishing-gradient"}
    assert not result.ok


def test_an_objective_that_cannot_rise_is_stalled() -> None:
    result = maximize(small_model(Saturated()), 0, steps=64, starts=2, patience=8, init_std=0.01)
    target = result.targets[0]
    assert target.status == "stalled"
    assert "stopped rising" in target.message
    assert target.score <= target.start_score + 1e-3
    assert not target.drawn


# ---- RGB: Fourier parameterisation with decorrelated colour --------------------------------------


class ColourNet(nn.Module):
    """A conv model whose classes want blue, green, red (in the model's BGR input) and dark."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        self.head = nn.Linear(3, 4, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            for c in range(3):
                self.conv.weight[c, c] = 1 / 9  # a box blur per channel
            self.head.weight.copy_(
                5 * torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [-1, -1, -1]])
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).mean(dim=(2, 3)))


def test_rgb_fourier_path_gives_valid_pixels_in_the_models_order() -> None:
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    model = small_model(ColourNet(), 3, 16, mean=mean, std=std, channel_order="BGR")
    result = maximize(model, "all", steps=128, starts=2)
    assert result.param == "fourier"
    for target in result.targets:
        assert target.status in ROSE, target.message
        assert target.image.shape == (16, 16, 3)
        assert target.image.min() >= 0.0 and target.image.max() <= 1.0
        bgr = target.image[..., ::-1].transpose(2, 0, 1)
        expected = (bgr - np.array(mean)[:, None, None]) / np.array(std)[:, None, None]
        np.testing.assert_allclose(target.input, expected, rtol=1e-5, atol=1e-5)
        assert target.top[0][0] == target.target.label
    colour = np.array([t.image.mean(axis=(0, 1)) for t in result.targets])  # RGB means
    assert colour[0].argmax() == 2 and colour[1].argmax() == 1 and colour[2].argmax() == 0
    assert colour[3].sum() < colour[:3].sum(axis=1).min()


def test_decorrelated_fourier_images_stay_in_range_and_mix_colours() -> None:
    generator = torch.Generator().manual_seed(0)
    param = ImageParam((2, 3, 12, 10), "fourier", True, generator, sd=0.5)
    with torch.no_grad():
        param.tensor.mul_(50)  # far from the start: the sigmoid still keeps pixels valid
        pixels = param.pixels()
        pre = param.pre_sigmoid()
    assert pixels.shape == (2, 3, 12, 10)
    assert float(pixels.min()) >= 0.0 and float(pixels.max()) <= 1.0
    # the RGB channels are one colour matrix times independent Fourier images
    spectrum = torch.view_as_complex(param.scale * param.tensor.detach())
    raw = torch.fft.irfft2(spectrum, s=(12, 10), norm="ortho") / 4.0
    np.testing.assert_allclose(
        pre.numpy(),
        np.einsum("nchw,dc->ndhw", raw.numpy(), color_decorrelation().numpy()),
        atol=1e-5,
    )


def test_color_decorrelation_matrix() -> None:
    matrix = color_decorrelation().numpy()
    assert np.linalg.norm(matrix, axis=0).max() == pytest.approx(1.0)
    # first column (luminance) mixes all three channels about equally
    assert np.ptp(matrix[:, 0]) < 0.05 * matrix[0, 0]


# ---- the pieces, against hand computations ------------------------------------------------------


def test_rfft2d_freqs_by_hand() -> None:
    freqs = rfft2d_freqs(4, 6)
    assert freqs.shape == (4, 4)
    assert freqs[0, 0] == 0
    assert freqs[0, 1] == pytest.approx(1 / 6)
    assert freqs[1, 0] == pytest.approx(1 / 4)
    assert freqs[3, 0] == pytest.approx(1 / 4)  # negative frequency -1/4
    assert freqs[2, 3] == pytest.approx(math.hypot(0.5, 0.5))


def test_total_variation_by_hand() -> None:
    image = torch.tensor([[[[0.0, 1.0, 1.0], [0.0, 0.0, 0.5]]]])
    # horizontal: |1-0|,|1-1|,|0-0|,|0.5-0| -> mean 1.5/4; vertical: |0|,|-1|,|-0.5| -> 1.5/3
    assert float(total_variation(image)[0]) == pytest.approx(1.5 / 4 + 1.5 / 3)


def test_pixel_blur_matches_scipy() -> None:
    images = torch.rand(2, 3, 9, 11, generator=torch.Generator().manual_seed(1))
    ours = gaussian_blur(images, 1.0).numpy()
    theirs = gaussian_filter(images.numpy(), sigma=(0, 0, 1.0, 1.0), mode="mirror", truncate=2.0)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_fourier_blur_is_a_circular_gaussian_blur() -> None:
    generator = torch.Generator().manual_seed(2)
    param = ImageParam((1, 1, 32, 32), "fourier", False, generator, sd=0.3)
    before = param.pre_sigmoid().detach().numpy()
    param.blur_(1.5)
    after = param.pre_sigmoid().detach().numpy()
    expected = gaussian_filter(before, sigma=(0, 0, 1.5, 1.5), mode="wrap", truncate=6.0)
    np.testing.assert_allclose(after, expected, atol=2e-3 * np.abs(before).max())


def test_jitter_alone_is_an_integer_shift_with_black_borders() -> None:
    settings = MaximizeSettings(jitter=1, scale=0.0, rotate=0.0)
    images = torch.rand(6, 1, 5, 7, generator=torch.Generator().manual_seed(3))
    moved = random_affine(images, settings, torch.Generator().manual_seed(4), "zeros").numpy()
    for original, shifted in zip(images.numpy(), moved, strict=True):
        candidates = []
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                padded = np.pad(original, ((0, 0), (1, 1), (1, 1)))
                candidates.append(padded[:, 1 + dy : 6 + dy, 1 + dx : 8 + dx])
        assert any(np.allclose(shifted, c, atol=1e-6) for c in candidates)


def test_default_settings_fit_the_input_size() -> None:
    mnist = default_settings(InputSpec(1, 28, 28))
    imagenet = default_settings(InputSpec(3, 224, 224))
    assert mnist.jitter == 2 and imagenet.jitter == 16
    assert mnist.starts == 8 and imagenet.starts == 4
    assert imagenet.blur_sigma > mnist.blur_sigma
    assert default_settings(InputSpec(1, 28, 28), steps=10, tv=None).steps == 10
    with pytest.raises(ConvscopeError, match="steps"):
        default_settings(InputSpec(1, 28, 28), steps=0)


# ---- naming targets -----------------------------------------------------------------------------


def test_class_targets_by_index_name_range_and_list() -> None:
    fashion = load_model("sequential")
    assert [t.index for t in class_targets(fashion, "Trouser")] == [1]
    assert [t.index for t in class_targets(fashion, "trouser")] == [1]
    assert [t.index for t in class_targets(fashion, "T-shirt/top")] == [0]
    assert [t.index for t in class_targets(fashion, "all")] == list(range(10))
    assert [t.index for t in class_targets(fashion, "0-9")] == list(range(10))
    assert [t.index for t in class_targets(fashion, "2-4,Bag")] == [2, 3, 4, 8]
    assert [t.index for t in class_targets(fashion, [7, "Bag", 7])] == [7, 8]
    assert class_targets(fashion, 9)[0].label == "Ankle boot"


def test_unknown_class_lists_the_classes() -> None:
    fashion = load_model("sequential")
    with pytest.raises(ConvscopeError) as info:
        class_targets(fashion, "Trousers")
    message = str(info.value)
    assert "did you mean Trouser" in message and "1 Trouser" in message and "\n" not in message
    with pytest.raises(ConvscopeError, match="out of range"):
        class_targets(fashion, 10)
    with pytest.raises(ConvscopeError, match="'5-2' is empty; write it low-high"):
        class_targets(fashion, "5-2")


def test_channel_targets_and_their_errors() -> None:
    model = load_model("lenet5")
    assert [t.index for t in channel_targets(model, "conv2d_2:3")] == [3]
    assert [t.index for t in channel_targets(model, "conv2d_1:all")] == list(range(6))
    assert [t.index for t in channel_targets(model, "dense_2:0-2")] == [0, 1, 2]
    with pytest.raises(LayerError, match="did you mean conv2d_2"):
        channel_targets(model, "conv2d_3:0")
    with pytest.raises(ConvscopeError, match="has 16 channels"):
        channel_targets(model, "conv2d_2:16")
    with pytest.raises(ConvscopeError, match="LAYER:CHANNEL"):
        channel_targets(model, "conv2d_2")


def test_objective_must_fit_the_target() -> None:
    model = load_model("lenet5")
    with pytest.raises(ConvscopeError, match="for channels"):
        maximize(model, 1, objective="mean", steps=1)
    with pytest.raises(ConvscopeError, match="channels take 'mean'"):
        maximize(model, channels="conv2d_1:0", objective="prob", steps=1)
    with pytest.raises(ConvscopeError, match="one of them"):
        maximize(model)
