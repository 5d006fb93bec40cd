"""Activation-maximisation figures: panels, failure panels, traces, files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.text import Text
from torch import nn

from convscope.data.preprocess import InputSpec
from convscope.models.loaded import LoadedModel
from convscope.models.loading import load_model
from convscope.probe.maximize import maximize
from convscope.render.maximize import grid_shape, panel_title, plot_maximize, plot_traces, smooth


@pytest.fixture(scope="module")
def digits(trained_lenet5):
    return maximize(load_model(str(trained_lenet5)), "all", steps=24, starts=2)


class Blind(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc((x * 0).flatten(1))


def texts(fig: Figure) -> list[str]:
    return [" ".join(t.get_text().split()) for t in fig.findobj(Text)]


def test_ten_classes_make_a_2x5_grid_with_trace_and_colour_bar(digits) -> None:
    fig = plot_maximize(digits)
    images = [ax for ax in fig.axes if ax.images and ax.get_title().startswith("class")]
    assert len(images) == 10
    assert {ax.get_subplotspec().get_geometry()[:2] for ax in images} == {(2, 5)}
    first = images[0].images[0]
    assert first.get_cmap().name == "gray" and first.get_clim() == (0.0, 1.0)
    np.testing.assert_array_equal(first.get_array(), digits.targets[0].image)
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)
    trace = [ax for ax in fig.axes if ax.get_xlabel() == "step"]
    assert len(trace) == 1 and len(trace[0].get_legend().get_texts()) == 10
    assert f"p = {digits.targets[3].prob:.3f}" in images[3].get_title()
    assert "lenet5" in fig._suptitle.get_text()


def test_figure_without_trace(digits) -> None:
    fig = plot_maximize(digits, trace=False, ncols=10)
    assert not [ax for ax in fig.axes if ax.get_xlabel() == "step"]
    images = [ax for ax in fig.axes if ax.images]
    assert {ax.get_subplotspec().get_geometry()[:2] for ax in images} == {(1, 10)}


def test_failed_target_gets_a_message_not_an_image() -> None:
    model = LoadedModel(Blind().eval(), "blind", InputSpec(1, 4, 4))
    result = maximize(model, 0, steps=4, starts=1)
    fig = result.figure()
    (panel,) = [ax for ax in fig.axes if ax.get_title().startswith("class")]
    assert "no gradient" in panel.get_title()
    assert any("gradient vanishes" in t for t in texts(fig))
    # no colour bar for a figure with nothing drawn on the pixel scale
    assert not any(ax.get_label() == "<colorbar>" for ax in fig.axes)


def test_trace_figure_has_a_panel_per_target(digits) -> None:
    fig = plot_traces(digits)
    panels = [ax for ax in fig.axes if ax.lines]
    assert len(panels) == 10
    assert len(panels[0].lines) == 2  # one line per start
    best = digits.targets[0].best_start
    np.testing.assert_array_equal(panels[0].lines[best].get_ydata(), digits.targets[0].trace[best])


def test_panel_title_for_a_channel(trained_lenet5) -> None:
    result = maximize(load_model(str(trained_lenet5)), channels="conv2d_1:2", steps=8, starts=1)
    title = panel_title(result.targets[0])
    assert title.startswith("conv2d_1:2\nmean = ")


def test_save_png(digits, tmp_path: Path) -> None:
    path = digits.save(str(tmp_path / "digits.png"))
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert digits._repr_png_()[:4] == b"\x89PNG"


def test_grid_shape_and_smoothing() -> None:
    assert grid_shape(10) == (2, 5)
    assert grid_shape(3) == (1, 3)
    assert grid_shape(16) == (2, 8)
    assert grid_shape(7, ncols=3) == (3, 3)
    steps, means = smooth(np.array([0.0, 2.0, 4.0, 6.0]), 2)
    np.testing.assert_allclose(means, [1.0, 3.0, 5.0])
    np.testing.assert_allclose(steps, [1.5, 2.5, 3.5])
