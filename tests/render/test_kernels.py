"""Kernel figures draw exactly the probe's display values, with colour bars where shared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import AxesImage
from PIL import Image
from torch import nn

from convscope.errors import ConvscopeError
from convscope.models.loading import load_model
from convscope.probe.kernels import (
    KernelEpochs,
    apply_kernel,
    kernel_health,
    kernel_set,
)
from convscope.render.kernels import (
    kernel_grid_figure,
    kernel_health_epochs_figure,
    kernel_response_figure,
    save_kernel_animation,
)


@pytest.fixture(scope="module")
def lenet():
    return load_model("lenet", seed=0)


def _images(fig) -> list[AxesImage]:
    return [im for ax in fig.axes for im in ax.get_images()]


def test_gray_grid_draws_the_mosaic_with_a_colour_bar_only_when_shared(lenet) -> None:
    kernels = kernel_set(lenet, "conv2d_1")
    for norm, colour_bar in (("per-kernel", False), ("layer", True), ("diverging", True)):
        grid = kernels.grid(norm)
        fig = kernel_grid_figure(grid)
        (image,) = _images(fig)
        drawn = np.ma.getdata(image.get_array())
        np.testing.assert_array_equal(
            np.isnan(grid.mosaic()), np.ma.getmaskarray(image.get_array())
        )
        mosaic = grid.mosaic()
        np.testing.assert_array_equal(drawn[~np.isnan(mosaic)], mosaic[~np.isnan(mosaic)])
        assert len(fig.axes) == (2 if colour_bar else 1), norm
        assert image.get_clim() == ((-1.0, 1.0) if norm == "diverging" else (0.0, 1.0))
        if colour_bar:
            bar_limits = fig.axes[1].get_ylim()
            assert bar_limits == pytest.approx(grid.scale)  # the colour bar is in weight units
        assert fig.get_suptitle().startswith(
            "lenet (untrained: random init, seed 0) · conv2d_1: 20 kernels of 1×5×5"
        )


def test_rgb_grid_draws_rgba_tiles() -> None:
    model = load_model("torchvision:resnet18", seed=0)
    grid = kernel_set(model, "conv1").grid()
    (image,) = _images(kernel_grid_figure(grid))
    np.testing.assert_array_equal(image.get_array(), grid.mosaic())
    assert grid.mosaic().shape == (63, 63, 4)


def test_grid_with_nan_kernels_renders(tmp_path: Path) -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3))
    net[0].weight.data[1, 0, 0, 0] = float("nan")
    grid = kernel_set(net, "0").grid("layer")
    path = grid.save(str(tmp_path / "nan.png"))
    assert Image.open(path).size[0] > 100
    assert (grid.mosaic()[0:3, 4:7, 3] == 0).all()  # kernel 1 not drawn: transparent


def test_png_and_svg_files(lenet, tmp_path: Path) -> None:
    grid = kernel_set(lenet, "conv2d_2").grid()
    png = grid.save(str(tmp_path / "k.png"))
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = grid.save(str(tmp_path / "k.svg"))
    assert "<svg" in Path(svg).read_text()[:500]
    with pytest.raises(ConvscopeError, match="must end in"):
        grid.save(str(tmp_path / "k.txt"))
    assert grid._repr_png_()[:4] == b"\x89PNG"


def test_health_figure_and_epochs_figure() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(8, 1, 5, 5))
    w[2] = 0
    w[5] = w[1]
    health = kernel_health(w, model="m", layer="c")
    fig = health.figure()
    assert "1 dead" in fig.get_suptitle() and "1 near-duplicates" in fig.get_suptitle()
    (similarity,) = _images(fig)
    np.testing.assert_allclose(np.ma.filled(similarity.get_array(), np.nan), health.similarity)
    bars = [p.get_height() for p in fig.axes[0].patches]
    np.testing.assert_allclose(bars, health.norms)
    fig2 = kernel_health_epochs_figure([0, 1], [health, health], title="t")
    dead_line = fig2.axes[0].lines[0]
    assert list(dead_line.get_ydata()) == [1, 1]


def test_response_figure_shows_the_response(lenet) -> None:
    result = apply_kernel(lenet, "conv2d_1", 4, "mnist:test:3")
    fig = kernel_response_figure(result)
    image, tile, response = _images(fig)
    np.testing.assert_array_equal(image.get_array(), result.pixels)
    np.testing.assert_array_equal(tile.get_array(), result.kernel_tile)
    np.testing.assert_array_equal(response.get_array(), result.response)
    low, high = response.get_clim()
    assert low == -high == -np.percentile(np.abs(result.response), 99.5)  # centred on zero
    full = _images(kernel_response_figure(result, percentile=100))[2]
    assert full.get_clim()[1] == np.abs(result.response).max()


def test_gif_animation_over_epochs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    history = KernelEpochs(
        model="m", run_id="r", layer="c", epochs=[0, 1, 2],
        weights=rng.normal(size=(3, 4, 3, 5, 5)).astype(np.float32), channel_order="RGB",
    )  # fmt: skip
    path = save_kernel_animation(history.frames("layer"), tmp_path / "k.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == 3 and gif.info["loop"] == 0
    with pytest.raises(ConvscopeError, match=r"\.gif"):
        save_kernel_animation(history.frames(), tmp_path / "k.png")
    grid = history.grid("diverging")
    assert (grid.rows, grid.cols) == (3, 4) and grid.tiles.shape == (12, 5, 5, 3)
    history.figure().savefig(tmp_path / "epochs.png")
