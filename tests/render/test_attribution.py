"""Drawing attribution maps: panels, colour scales, overlay opacity, the terminal table."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from convscope.probe.attribute import AttributionResult, MethodMap
from convscope.render.attribution import attribution_figure, attribution_table, overlay


def make_result(rgb: bool = False) -> AttributionResult:
    rng = np.random.default_rng(0)
    shape = (16, 16, 3) if rgb else (16, 16)
    values = rng.normal(size=(16, 16)).astype(np.float32)
    return AttributionResult(
        model="net",
        image="digit.png",
        pixels=rng.integers(0, 256, shape, dtype=np.uint8),
        target=3,
        target_name="Dress",
        predicted=3,
        predicted_name="Dress",
        score="logit",
        target_score=4.2,
        target_probability=0.8,
        maps=[
            MethodMap("saliency", np.abs(values)),
            MethodMap("gradcam", np.maximum(values, 0), layer="conv2", note="a note"),
            MethodMap("ig", values, completeness_error=0.004, options={"steps": 50}),
            MethodMap("occlusion", values * 2, options={"window": 4, "stride": 2}),
        ],
        class_names=tuple(f"c{i}" for i in range(10)),
        label="Dress",
    )


def test_figure_has_input_and_one_panel_with_colour_bar_per_method() -> None:
    results = [make_result(), make_result(rgb=True)]
    fig = attribution_figure(results)
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert len(titled) == 2 * 5  # input + 4 methods, per row
    titles = [ax.get_title() for ax in titled[:5]]
    assert "digit.png" in titles[0] and "target Dress" in titles[0]
    assert titles[1].startswith("Saliency") and "layer conv2" in titles[2]
    assert "50 steps" in titles[3] and "0.40%" in titles[3] and "window 4" in titles[4]
    visible_bars = [ax for ax in fig.axes if not ax.get_title() and ax.get_visible()]
    assert len(visible_bars) == 2 * 4
    assert "logit" in fig._suptitle.get_text()


def test_signed_maps_get_a_symmetric_diverging_scale() -> None:
    result = make_result()
    _, ig = overlay(result.map("ig"))
    limit = float(np.abs(result.map("ig").values).max())
    assert (ig.norm.vmin, ig.norm.vmax) == pytest.approx((-limit, limit))
    assert ig.get_cmap().name == "RdBu_r"
    _, sal = overlay(result.map("saliency"))
    assert sal.norm.vmin == 0 and sal.get_cmap().name == "inferno"


def test_overlay_is_transparent_where_the_map_is_zero() -> None:
    values = np.zeros((4, 4), np.float32)
    values[1, 2] = -3.0
    values[3, 3] = 1.5
    rgba, _ = overlay(MethodMap("ig", values))
    assert rgba[0, 0, 3] == 0.0
    assert rgba[1, 2, 3] == pytest.approx(0.85)  # the strongest value is the most opaque
    assert 0 < rgba[3, 3, 3] < rgba[1, 2, 3]
    assert rgba[1, 2, 2] > rgba[1, 2, 0]  # negative -> blue


def test_table_lists_each_method() -> None:
    console = Console(width=120, record=True)
    console.print(attribution_table([make_result()]))
    text = console.export_text()
    for word in ("Saliency", "Grad-CAM", "Integrated gradients", "Occlusion", "conv2", "0.40%"):
        assert word in text
