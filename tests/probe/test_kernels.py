"""Kernels: extraction, display values exactly as stated, health numbers, epochs, responses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from convscope.errors import ConvscopeError, ImageError, LayerError
from convscope.models.layers import LECUN_TANH_AMPLITUDE, LECUN_TANH_SLOPE
from convscope.models.loading import load_model
from convscope.probe.activations import capture
from convscope.probe.kernels import (
    apply_kernel,
    conv_layer_names,
    conv_response,
    grid_shape,
    high_freq_energy,
    kernel_health,
    kernel_set,
    kernels_over_epochs,
    layer_input,
    normalize_diverging,
    normalize_layer,
    normalize_per_kernel,
    resolve_image,
    white_noise_distribution,
    white_noise_high_freq_energy,
)
from convscope.store import open_store


def _hooks(module: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())


def _minmax(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    return (a - a.min()) / (a.max() - a.min())


@pytest.fixture(scope="module")
def resnet50():
    return load_model("resnet50", seed=0)


@pytest.fixture(scope="module")
def lenet():
    return load_model("lenet", seed=0)


class _Net(nn.Module):
    def __init__(self, weight: np.ndarray) -> None:
        super().__init__()
        o, i, h, w = weight.shape
        self.conv = nn.Conv2d(i, o, (h, w), bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(weight))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


# --------------------------------------------------------------------------- layout


@pytest.mark.parametrize(
    ("n", "cols", "shape"),
    [(64, None, (8, 8)), (20, None, (4, 5)), (6, None, (2, 3)), (50, None, (5, 10)),
     (16, None, (4, 4)), (7, None, (3, 3)), (1, None, (1, 1)), (20, 3, (7, 3)), (5, 9, (1, 5))],
)  # fmt: skip
def test_grid_shape(n: int, cols: int | None, shape: tuple[int, int]) -> None:
    assert grid_shape(n, cols) == shape


def test_grid_shape_refuses_zero_columns() -> None:
    with pytest.raises(ConvscopeError, match="--cols"):
        grid_shape(10, 0)


# --------------------------------------------------------------------------- display values


def test_resnet50_conv1_is_an_8x8_rgb_mosaic_of_per_kernel_minmax(resnet50) -> None:
    kernels = kernel_set(resnet50, "conv1")
    weights = resnet50.module.conv1.weight.detach().numpy()
    assert kernels.weights.shape == (64, 3, 7, 7) and kernels.weights.dtype == np.float32
    np.testing.assert_array_equal(kernels.weights, weights)
    assert kernels.channel_order == "RGB" and kernels.stride == (2, 2)
    grid = kernels.grid()
    assert (grid.rows, grid.cols) == (8, 8) and grid.tiles.shape == (64, 7, 7, 3)
    mosaic = grid.mosaic()
    assert mosaic.shape == (8 * 8 - 1, 8 * 8 - 1, 4)
    for k in (0, 9, 63):
        r, c = divmod(k, 8)
        # By hand: H x W x C in the weight's own (RGB) order, min-max over all three channels.
        expected = _minmax(weights[k].transpose(1, 2, 0))
        cell = mosaic[r * 8 : r * 8 + 7, c * 8 : c * 8 + 7]
        np.testing.assert_allclose(cell[..., :3], expected, atol=1e-6)
        assert (cell[..., 3] == 1).all()
    assert (mosaic[7, :, 3] == 0).all() and (mosaic[:, 7, 3] == 0).all()  # the gaps


def test_bgr_shows_all_three_channels_reversed(resnet50) -> None:
    rgb = kernel_set(resnet50, "conv1").grid()
    bgr = kernel_set(resnet50, "conv1", channel_order="BGR").grid()
    assert bgr.channel_order == "BGR" and "BGR" in bgr.caption
    # All three channels, reversed (the reference's [:, :, :-1] drops one by mistake).
    np.testing.assert_allclose(bgr.tiles, rgb.tiles[..., ::-1])


def test_bgr_flip_with_a_kernel_whose_channels_differ() -> None:
    weight = np.zeros((2, 3, 3, 3), dtype=np.float32)
    weight[0, 0], weight[0, 1], weight[0, 2] = 0.1, 0.5, 0.9  # channel 0 weak ... 2 strong
    weight[1] = -weight[0]
    net = _Net(weight)
    rgb = kernel_set(net, "conv").grid("layer").tiles
    bgr = kernel_set(net, "conv", channel_order="BGR").grid("layer").tiles
    # layer scale: -0.9 -> 0, 0.9 -> 1; display red is the weight's channel 0 read as RGB ...
    np.testing.assert_allclose(rgb[0, 1, 1], [(0.1 + 0.9) / 1.8, (0.5 + 0.9) / 1.8, 1.0])
    # ... and its channel 2 read as BGR.
    np.testing.assert_allclose(bgr[0, 1, 1], [1.0, (0.5 + 0.9) / 1.8, (0.1 + 0.9) / 1.8])
    np.testing.assert_allclose(bgr[1, 0, 0], [0.0, (0.9 - 0.5) / 1.8, (0.9 - 0.1) / 1.8])


def test_bgr_needs_three_channels(lenet) -> None:
    with pytest.raises(ConvscopeError, match="needs three"):
        kernel_set(lenet, "conv2d_1", channel_order="BGR")


def test_gray_layer_normalisations(lenet) -> None:
    kernels = kernel_set(lenet, "conv2d_1")
    w = lenet.module.conv2d_1.weight.detach().numpy()[:, 0].astype(np.float64)
    assert kernels.channel_order == "gray"
    per_kernel = kernels.grid()
    assert (per_kernel.rows, per_kernel.cols) == (4, 5) and per_kernel.scale is None
    np.testing.assert_allclose(per_kernel.tiles, [_minmax(k) for k in w], atol=1e-6)
    layer = kernels.grid("layer")
    assert layer.scale == pytest.approx((w.min(), w.max()))
    np.testing.assert_allclose(layer.tiles, (w - w.min()) / (w.max() - w.min()), atol=1e-6)
    diverging = kernels.grid("diverging")
    m = np.abs(w).max()
    assert diverging.scale == pytest.approx((-m, m))
    np.testing.assert_allclose(diverging.tiles, w / m, atol=1e-6)
    assert (np.sign(diverging.tiles) == np.sign(w)).all()  # the sign survives
    mosaic = layer.mosaic()
    np.testing.assert_allclose(mosaic[6:11, 12:17], layer.tile(1, 2))  # tile (1, 2): kernel 7
    assert np.isnan(mosaic[5]).all() and np.isnan(mosaic[:, 5]).all()


def test_rgb_diverging_is_mid_gray_at_zero(resnet50) -> None:
    w = resnet50.module.conv1.weight.detach().numpy().astype(np.float64)
    m = np.abs(w).max()
    grid = kernel_set(resnet50, "conv1").grid("diverging")
    np.testing.assert_allclose(grid.tiles, 0.5 + 0.5 * w.transpose(0, 2, 3, 1) / m, atol=1e-6)


def test_deep_layer_one_row_per_output_channel(lenet) -> None:
    w = lenet.module.conv2d_2.weight.detach().numpy().astype(np.float64)
    grid = kernel_set(lenet, "conv2d_2").grid(per_channel=True)
    assert grid.layout == "channels" and (grid.rows, grid.cols) == (50, 20)
    assert grid.channel_order is None
    for o, i in ((0, 0), (7, 13), (49, 19)):
        # per-kernel: output channel o's 20 input channels share one min-max
        expected = (w[o, i] - w[o].min()) / (w[o].max() - w[o].min())
        np.testing.assert_allclose(grid.tile(o, i), expected, atol=1e-6)


def test_deep_layer_default_is_one_readable_tile_per_kernel(lenet) -> None:
    w = lenet.module.conv2d_2.weight.detach().numpy().astype(np.float64)
    grid = kernel_set(lenet, "conv2d_2").grid()  # 50 tiles, not 50 x 20
    assert grid.layout == "grid" and grid.reduce == "norm" and len(grid.tiles) == 50
    np.testing.assert_allclose(grid.tiles[7], _minmax(np.sqrt((w[7] ** 2).sum(axis=0))), atol=1e-6)
    assert "L2 norm over the kernel's 20 input channels" in grid.caption
    signed = kernel_set(lenet, "conv2d_2").grid("diverging")  # a norm has no sign to keep
    assert signed.reduce == "mean"
    assert kernel_set(lenet, "conv2d_1").grid().reduce is None  # one input channel: as is


def test_reduced_deep_layer(lenet) -> None:
    w = lenet.module.conv2d_2.weight.detach().numpy().astype(np.float64)
    mean = kernel_set(lenet, "conv2d_2").grid("layer", reduce="mean")
    assert mean.layout == "grid" and (mean.rows, mean.cols) == (5, 10)
    reduced = w.mean(axis=1)
    np.testing.assert_allclose(mean.tiles, _minmax(reduced), atol=1e-6)
    assert "mean over the kernel's 20 input channels" in mean.caption
    norm = kernel_set(lenet, "conv2d_2").grid(reduce="norm")
    expected = np.sqrt((w**2).sum(axis=1))
    np.testing.assert_allclose(norm.tiles, [_minmax(k) for k in expected], atol=1e-6)
    assert "L2 norm over the kernel's 20 input channels" in norm.caption
    with pytest.raises(ConvscopeError, match="never negative"):
        kernel_set(lenet, "conv2d_2").grid("diverging", reduce="norm")


def test_limit_keeps_the_first_kernels_and_shares_the_layer_scale(lenet) -> None:
    kernels = kernel_set(lenet, "conv2d_2")
    grid = kernels.grid("layer", limit=4, per_channel=True)
    assert grid.rows == 4 and grid.shown == 4 and "First 4 of 50 kernels." in grid.caption
    full = kernels.grid("layer", per_channel=True)
    np.testing.assert_allclose(grid.tiles, full.tiles[: 4 * 20])


def test_normalisation_functions_on_known_values() -> None:
    values = np.array([[[0.0, 2.0]], [[3.0, 3.0]], [[-1.0, 1.0]]])
    np.testing.assert_allclose(normalize_per_kernel(values), [[[0, 1]], [[0.5, 0.5]], [[0, 1]]])
    layer, scale = normalize_layer(values)
    assert scale == (-1.0, 3.0)
    np.testing.assert_allclose(layer, (values + 1) / 4)
    div, bound = normalize_diverging(values)
    assert bound == 3.0
    np.testing.assert_allclose(div, values / 3)
    zeros, _ = normalize_diverging(np.zeros((2, 2, 2)))
    assert (zeros == 0).all()


def test_nan_and_inf_kernels_are_reported_not_drawn() -> None:
    weight = np.random.default_rng(0).normal(size=(6, 1, 3, 3)).astype(np.float32)
    weight[2, 0, 1, 1] = np.nan
    weight[4, 0, 0, 0] = np.inf
    kernels = kernel_set(_Net(weight), "conv")
    assert kernels.nonfinite == (2, 4)
    for norm in ("per-kernel", "layer", "diverging"):
        grid = kernels.grid(norm)
        assert np.isnan(grid.tiles[[2, 4]]).all() and np.isfinite(grid.tiles[[0, 1, 3, 5]]).all()
        assert "Kernels 2, 4 hold NaN or infinite weights: not drawn" in grid.caption
    good = weight[[0, 1, 3, 5]]
    assert kernels.grid("layer").scale == pytest.approx((good.min(), good.max()))
    health = kernels.health()
    records = health.kernel_records()
    assert records[2]["norm"] is None and not records[2]["finite"] and not records[2]["dead"]
    assert health.summary()["nonfinite"] == 2


# --------------------------------------------------------------------------- extraction


def test_conv_layers_of_the_zoo(lenet) -> None:
    assert conv_layer_names(lenet.module) == ["conv2d_1", "conv2d_2"]
    classic = load_model("lenet5-classic", seed=0)
    assert conv_layer_names(classic.module) == ["C1", "C3", "C5"]
    c3 = kernel_set(classic, "C3")  # PartialConv2d: its dense .weight, zeros where unconnected
    assert c3.weights.shape == (16, 6, 5, 5) and c3.layer_type == "PartialConv2d"
    np.testing.assert_array_equal(c3.weights, classic.module.C3.weight.detach().numpy())
    assert (c3.weights[0, 3:] == 0).all() and (np.abs(c3.weights[0, :3]).sum() > 0)
    assert kernel_set(lenet, "conv2d_1").layer_type == "Conv2dAct"


def test_a_wrapper_with_one_conv_inside_and_errors() -> None:
    net = nn.Sequential()
    net.add_module("block", nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()))
    net.add_module("pair", nn.Sequential(nn.Conv2d(4, 4, 3), nn.Conv2d(4, 4, 1)))
    net.add_module("head", nn.Linear(4, 2))
    kernels = kernel_set(net, "block")
    assert kernels.source == "block.0" and kernels.weights.shape == (4, 1, 3, 3)
    with pytest.raises(LayerError, match=r"holds 2 convolutions; name one: pair\.0, pair\.1"):
        kernel_set(net, "pair")
    with pytest.raises(LayerError) as err:
        kernel_set(net, "head")
    assert (
        "'head' (Linear) has no convolution kernels; conv layers: block.0, pair.0, pair.1"
        in str(err.value)
    )
    with pytest.raises(LayerError, match="did you mean block"):
        kernel_set(net, "blok")


def test_non_conv_layer_of_resnet_lists_conv_layers(resnet50) -> None:
    with pytest.raises(LayerError, match=r"conv layers: conv1, layer1\.0\.conv1.*53 in all"):
        kernel_set(resnet50, "fc")


def test_transposed_convolution_is_out_by_in() -> None:
    net = nn.Sequential(nn.ConvTranspose2d(2, 5, 3))
    kernels = kernel_set(net, "0")
    assert kernels.weights.shape == (5, 2, 3, 3)
    np.testing.assert_array_equal(kernels.weights[1, 0], net[0].weight.detach().numpy()[0, 1])


# --------------------------------------------------------------------------- health


def test_health_on_synthetic_kernels_with_known_answers() -> None:
    rng = np.random.default_rng(1)
    w = rng.normal(size=(6, 2, 4, 4))
    w[1] = 0.0  # dead
    w[3] = w[0]  # identical: duplicate of 0
    w[4] = 2.5 * w[2]  # a scaled copy is a near-duplicate too (cosine 1)
    w[5] = -w[0]  # opposite sign: cosine -1, not a duplicate
    health = kernel_health(w)
    assert health.dead.tolist() == [False, True, False, False, False, False]
    assert health.duplicate_of.tolist() == [-1, -1, -1, 0, 2, -1]
    np.testing.assert_allclose(health.norms[0], np.sqrt((w[0] ** 2).sum()))
    assert health.similarity[0, 5] == pytest.approx(-1)
    s = health.summary()
    assert (s["kernels"], s["dead"], s["duplicates"], s["nonfinite"]) == (6, 1, 2, 0)
    assert s["max_cosine"] == pytest.approx(1.0)
    record = health.to_dict()["kernels"][3]
    assert record == {"index": 3, "norm": pytest.approx(health.norms[3]), "dead": False,
                      "duplicate_of": 0, "high_freq_energy": pytest.approx(health.high_freq[3]),
                      "noisy": bool(health.noisy[3]), "finite": True}  # fmt: skip


def test_dead_is_relative_to_the_median_norm() -> None:
    w = np.ones((5, 1, 3, 3))
    w[2] *= 1e-3  # norm 0.003 vs median 3: dead (threshold 0.03)
    w[3] *= 0.5  # alive
    assert kernel_health(w).dead.tolist() == [False, False, True, False, False]
    tiny = np.ones((3, 1, 3, 3)) * 1e-6  # all equally small: none dead
    assert not kernel_health(tiny).dead.any()


def test_high_frequency_share_on_known_patterns() -> None:
    y, x = np.mgrid[0:16, 0:16]
    checker = (-1.0) ** (x + y)
    constant = np.ones((16, 16))
    fine = np.cos(2 * np.pi * 0.4 * x)  # 0.4 cycles/pixel: high; 0.1: low (cutoff 0.25)
    coarse = np.cos(2 * np.pi * 0.1 * x)
    share = high_freq_energy(np.stack([checker, constant, fine, coarse])[:, None])
    assert share[0] > 0.95 and share[1] < 0.05 and share[2] > 0.9 and share[3] < 0.1
    assert np.isnan(high_freq_energy(np.zeros((1, 1, 5, 5)))[0])
    assert np.isnan(high_freq_energy(np.ones((1, 4, 1, 1)))[0])  # 1x1: no spatial frequency


def test_a_3x3_edge_detector_is_not_all_high_frequency() -> None:
    """At its own size a 3x3 kernel has only the frequencies 0 and 1/3; read finely it does."""
    sobel = np.array([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]])
    share = high_freq_energy(sobel[None, None])[0]
    mean, _, threshold = white_noise_distribution(1, 3, 3)
    assert share < mean < threshold
    y, x = np.mgrid[0:3, 0:3]
    assert high_freq_energy(((-1.0) ** (x + y))[None, None])[0] > threshold  # checkerboard


def test_white_noise_share_is_the_fraction_of_high_bins() -> None:
    low = 33 / 64  # fftfreq(64): 33 of the 64 bins are at or below 0.25 cycles/pixel
    for size in (3, 5, 7):
        assert white_noise_high_freq_energy(size, size) == pytest.approx(1 - low**2)
    assert np.isnan(white_noise_high_freq_energy(1, 1))
    noise = np.random.default_rng(0).normal(size=(4000, 1, 5, 5))
    assert high_freq_energy(noise).mean() == pytest.approx(1 - low**2, abs=0.01)
    # second implementation: the share by Parseval, the zero-padded DFT written out
    k = noise[0, 0]
    n = 64
    basis = np.exp(-2j * np.pi * np.outer(np.arange(n), np.arange(5)) / n)  # 64 x 5
    spectrum = np.abs(basis @ k @ basis.T) ** 2
    freq = np.abs(np.where(np.arange(n) < n / 2, np.arange(n), np.arange(n) - n) / n)
    high = np.maximum(freq[:, None], freq[None, :]) > 0.25
    assert spectrum.sum() == pytest.approx(n * n * (k**2).sum())
    assert high_freq_energy(noise[:1])[0] == pytest.approx(spectrum[high].sum() / spectrum.sum())


@pytest.mark.parametrize("shape", [(6, 1, 5, 5), (8, 3, 3, 3), (4, 16, 2, 2), (5, 2, 7, 3)])
def test_high_frequency_share_equals_the_zero_padded_fft(shape: tuple[int, ...]) -> None:
    # a second implementation: every kernel's spectra by numpy's FFT, summed over channels
    weights = np.random.default_rng(1).normal(size=shape)
    n = max(64, *shape[2:])
    power = np.abs(np.fft.fft2(weights, s=(n, n))) ** 2
    f = np.abs(np.fft.fftfreq(n))
    mask = np.maximum(f[:, None], f[None, :]) > 0.25
    expected = (power * mask).sum(axis=(1, 2, 3)) / power.sum(axis=(1, 2, 3))
    np.testing.assert_allclose(high_freq_energy(weights), expected, rtol=1e-9, atol=1e-12)


def test_the_health_of_a_wide_deep_layer_needs_no_spectra_in_memory() -> None:
    # resnet50's layer4 3x3 convolutions: 64x64 spectra of every slice would be 17 GB
    import tracemalloc

    weights = np.random.default_rng(2).normal(size=(512, 512, 3, 3)).astype(np.float32)
    tracemalloc.start()
    share = high_freq_energy(weights)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert share.shape == (512,) and np.all((share > 0) & (share < 1))
    assert peak < 20 * weights.nbytes


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(1, 3, 3), (3, 3, 3), (1, 5, 5), (3, 7, 7)])
def test_noise_threshold_is_the_95_percent_quantile_of_that_shape(shape) -> None:
    noise = np.random.default_rng(7).normal(size=(20_000, *shape))
    share = high_freq_energy(noise)
    mean, std, threshold = white_noise_distribution(*shape)
    assert share.mean() == pytest.approx(mean, abs=0.003)
    assert share.std() == pytest.approx(std, rel=0.03)
    assert np.mean(share > threshold) == pytest.approx(0.05, abs=0.006)


def test_noise_threshold_fits_the_kernel_size() -> None:
    small = white_noise_distribution(1, 3, 3)[2]
    large = white_noise_distribution(3, 7, 7)[2]
    mean = white_noise_high_freq_energy(3, 3)
    assert small - mean > 2.5 * (large - mean)  # 3x3 noise scatters far more than 7x7x3


def test_noisy_means_rougher_than_random_kernels() -> None:
    y, x = np.mgrid[0:5, 0:5]
    smooth = np.exp(-((x - 2) ** 2 + (y - 2) ** 2) / 4.0)
    rough = (-1.0) ** (x + y)
    health = kernel_health(np.stack([smooth, rough])[:, None])
    assert health.noisy.tolist() == [False, True]
    s = health.summary()
    assert s["high_freq_energy_white_noise"] == pytest.approx(1 - (33 / 64) ** 2)
    assert s["high_freq_noise_threshold"] == pytest.approx(white_noise_distribution(1, 5, 5)[2])
    random_layer = kernel_health(np.random.default_rng(3).normal(size=(400, 3, 3, 3)))
    assert abs(random_layer.summary()["high_freq_energy_z"]) < 3
    assert random_layer.noisy.mean() == pytest.approx(0.05, abs=0.03)


def test_health_tells_a_trained_stem_from_its_random_initialisation() -> None:
    """EfficientNet-Lite0's 3x3 stem, ImageNet-trained, against the same layer at random init."""
    from convscope.models.efficientnet import WEIGHTS_PACKAGE

    pytest.importorskip(WEIGHTS_PACKAGE)
    trained = kernel_set(load_model("efficientnet-lite0", weights="imagenet"), "conv_stem")
    random = kernel_set(load_model("efficientnet-lite0", seed=0), "conv_stem")
    t, r = trained.health().summary(), random.health().summary()
    assert t["dead"] == 4 and r["dead"] == 0  # four stem kernels of norm below 1e-6
    assert t["high_freq_energy_mean"] < r["high_freq_energy_mean"] - 0.15
    assert t["high_freq_energy_z"] < -8 and abs(r["high_freq_energy_z"]) < 3
    assert t["noisy"] <= 2  # of 28 live edge and colour detectors (the old measure: 14)
    assert t["max_cosine"] > r["max_cosine"] + 0.3  # trained kernels come in related pairs


# --------------------------------------------------------------------------- over epochs


def _store_with_kernels(root: Path, weights: list[np.ndarray]) -> str:
    with open_store(root) as store:
        run = store.create_run(name="k-test", model="lenet", dataset="mnist", config={})
        for epoch, w in enumerate(weights):
            store.commit_epoch(run.id, epoch, metrics={"val_acc": 0.5},
                               arrays={("kernels", "conv2d_1"): w})  # fmt: skip
        return run.id


def test_kernels_over_epochs_from_a_run_store(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(6, 1, 5, 5)).astype(np.float32) * (e + 1) for e in range(3)]
    weights[2][1] = 0.0
    run_id = _store_with_kernels(tmp_path / "runs", weights)
    history = kernels_over_epochs(tmp_path / "runs", run_id, "conv2d_1")
    assert history.epochs == [0, 1, 2] and history.channel_order == "gray"
    np.testing.assert_array_equal(history.weights, np.stack(weights))
    health = history.health()
    assert [h.summary()["dead"] for h in health] == [0, 0, 1]
    grid = history.grid("layer")
    assert grid.layout == "epochs" and (grid.rows, grid.cols) == (3, 6)
    everything = np.stack(weights)
    lo, hi = everything.min(), everything.max()
    assert grid.scale == pytest.approx((lo, hi))  # one scale over every epoch
    np.testing.assert_allclose(grid.tile(2, 4), (weights[2][4, 0] - lo) / (hi - lo), atol=1e-6)
    frames = history.frames("layer")
    assert len(frames) == 3 and all(f.scale == grid.scale for f in frames)
    from PIL import Image

    with Image.open(history.save(str(tmp_path / "k.gif"))) as gif:
        assert gif.n_frames == 3  # one frame per epoch
    some = kernels_over_epochs(tmp_path / "runs", run_id, "conv2d_1", epochs=[0, 2])
    np.testing.assert_array_equal(some.weights[1], weights[2])
    with pytest.raises(ConvscopeError, match="no kernels of epoch 5; recorded epochs: 0, 1, 2"):
        kernels_over_epochs(tmp_path / "runs", run_id, "conv2d_1", epochs=[5])
    with pytest.raises(LayerError, match=r"recorded: conv2d_1"):
        kernels_over_epochs(tmp_path / "runs", run_id, "conv2d_2")


# --------------------------------------------------------------------------- responses


def test_first_layer_response_is_the_layers_output_channel(resnet50) -> None:
    module = resnet50.module
    result = apply_kernel(resnet50, "conv1", 5, "sample:china")
    assert result.pixels.shape == (224, 224, 3) and result.response.shape == (112, 112)
    assert result.first_layer and result.bias is None
    x = resnet50.input_spec.normalize(result.pixels[None])
    with torch.no_grad():
        expected = module.conv1(x)[0, 5].numpy()
    np.testing.assert_allclose(result.response, expected, rtol=1e-4, atol=1e-5)
    assert _hooks(module) == 0


def test_bgr_input_flips_the_image_channels(resnet50) -> None:
    rgb = apply_kernel(resnet50, "conv1", 2, "sample:flower")
    bgr = apply_kernel(resnet50, "conv1", 2, "sample:flower", channel_order="BGR")
    spec = resnet50.input_spec
    from dataclasses import replace

    x = replace(spec, channel_order="BGR").normalize(rgb.pixels[None])
    with torch.no_grad():
        expected = resnet50.module.conv1(x)[0, 2].numpy()
    np.testing.assert_allclose(bgr.response, expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(bgr.response, rgb.response)
    np.testing.assert_allclose(bgr.kernel_tile, rgb.kernel_tile[..., ::-1])


def test_deep_layer_response_before_the_activation(lenet) -> None:
    image = resolve_image("mnist:test:0", lenet.input_spec)
    result = apply_kernel(lenet, "conv2d_2", 7, image)
    assert not result.first_layer and result.kernel_reduced and result.activation == "relu"
    x = lenet.input_spec.normalize(image.pixels[None, :, :, None])
    with capture(lenet.module, ["conv2d_2"]) as got, torch.no_grad():
        lenet.module(x)
    expected = got.output("conv2d_2")[0, 7].numpy()
    np.testing.assert_allclose(np.maximum(result.response, 0), expected, rtol=1e-5, atol=1e-6)
    assert result.bias == pytest.approx(float(lenet.module.conv2d_2.bias[7].detach()))
    assert _hooks(lenet.module) == 0


def test_same_padding_and_partial_connections() -> None:
    inception = load_model("inception", seed=0)  # conv2D_1: SameConv2d, 2x2 kernel, 'same'
    x = torch.randn(1, 1, 28, 28)
    conv = inception.module.conv2D_1
    with torch.no_grad():
        expected = conv(x)
    np.testing.assert_allclose(conv_response(conv, x, 3)[0], expected[0, 3], atol=1e-6)
    classic = load_model("lenet5-classic", seed=0)
    c3 = classic.module.C3
    s2 = torch.randn(1, 6, 14, 14)
    with torch.no_grad():
        out = c3(s2)
    squashed = LECUN_TANH_AMPLITUDE * torch.tanh(LECUN_TANH_SLOPE * conv_response(c3, s2, 9))
    np.testing.assert_allclose(squashed[0], out[0, 9], atol=1e-6)


def test_grouped_reflect_padded_strided_conv() -> None:
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2, padding_mode="reflect")
    x = torch.randn(2, 4, 11, 11)
    with torch.no_grad():
        expected = conv(x)
    for k in (0, 4):
        np.testing.assert_allclose(conv_response(conv, x, k), expected[:, k], atol=1e-6)


def test_layer_input_hook_is_removed_even_on_error(lenet) -> None:
    conv = lenet.module.conv2d_2
    got = layer_input(lenet.module, conv, torch.randn(1, 1, 28, 28))
    assert got.shape == (1, 20, 14, 14) and _hooks(lenet.module) == 0
    with pytest.raises(RuntimeError):
        layer_input(lenet.module, conv, torch.randn(1, 3, 28, 28))  # wrong channels: fails early
    assert _hooks(lenet.module) == 0


def test_images_are_converted_or_refused(lenet, tmp_path: Path) -> None:
    china = resolve_image("sample:china", lenet.input_spec)
    assert china.pixels.shape == (427, 640)  # gray for a gray model
    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (40, 30), (255, 0, 0, 128)).save(rgba)
    result = apply_kernel(lenet, "conv2d_1", 0, str(rgba))
    assert result.pixels.shape == (28, 28) and result.response.shape == (28, 28)
    full = apply_kernel(lenet, "conv2d_1", 0, "sample:china", full_size=True)
    assert full.response.shape == (427, 640)
    tiny = np.zeros((4, 4), dtype=np.uint8)
    with pytest.raises(ImageError, match="too small"):
        apply_kernel(lenet, "conv2d_2", 0, tiny, full_size=True)
    with pytest.raises(ImageError, match="sample:china, sample:coffee"):
        resolve_image("sample:moon")
    with pytest.raises(ImageError, match="names 3 images"):
        resolve_image("mnist:test:0-3")
    with pytest.raises(LayerError, match=r"20 kernels \(0-19\); got 20"):
        apply_kernel(lenet, "conv2d_1", 20, "mnist:test:0")
    assert _hooks(lenet.module) == 0


def test_health_names_each_problem_and_renders_them() -> None:
    from rich.console import Console

    weights = np.zeros((4, 1, 3, 3))
    weights[0, 0, 1, 1] = 1.0
    weights[1] = weights[0] * 2  # same direction as kernel 0
    weights[2, 0] = np.random.default_rng(0).normal(size=(3, 3))
    weights[3, 0, 0, 0] = np.nan
    health = kernel_health(weights, model="toy", layer="c")
    problems = health.problems()
    assert problems[1] == "near-duplicate of 0" and problems[3] == "NaN/Inf"
    assert 0 not in problems
    console = Console(width=160, record=True)
    console.print(health)
    text = console.export_text()
    assert "kernel health" in text and "kernel 1: near-duplicate of 0" in text
