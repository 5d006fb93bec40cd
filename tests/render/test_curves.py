"""Training-curve figure: panels, line styles, colours, data and legend."""

from __future__ import annotations

import threading

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex

from convscope.render.curves import STUDY_COLORS, plot_training_curves, run_colors, run_labels
from tests.render import make_run, make_study


def _lines_by_label(ax):
    return {line.get_label(): line for line in ax.get_lines()}


def test_two_panels_with_labels_and_title() -> None:
    fig = plot_training_curves(make_study().runs, title="toy study")
    acc, loss = fig.axes
    assert (acc.get_xlabel(), acc.get_ylabel()) == ("epoch", "accuracy")
    assert (loss.get_xlabel(), loss.get_ylabel()) == ("epoch", "loss")
    assert fig.get_suptitle() == "toy study"
    assert all(ax.xaxis.get_gridlines()[0].get_linestyle() == "--" for ax in fig.axes)


def test_lines_styles_colours_and_data() -> None:
    runs = make_study().runs
    fig = plot_training_curves(runs)
    for ax, metric in zip(fig.axes, ("acc", "loss"), strict=True):
        lines = _lines_by_label(ax)
        assert len(ax.get_lines()) == 2 * len(runs)
        for run in runs:
            train, val = lines[f"{run.model} train"], lines[f"{run.model} validation"]
            assert train.get_linestyle() == "--"
            assert val.get_linestyle() == "-"
            assert train.get_marker() == val.get_marker() == "o"
            expected = to_hex(STUDY_COLORS[run.model])
            assert to_hex(train.get_color()) == to_hex(val.get_color()) == expected
            # NaN (train at epoch 0) is skipped, not drawn.
            np.testing.assert_allclose(train.get_xdata(), run.epochs[1:])
            np.testing.assert_allclose(train.get_ydata(), getattr(run, f"train_{metric}")[1:])
            np.testing.assert_allclose(val.get_xdata(), run.epochs)
            np.testing.assert_allclose(val.get_ydata(), getattr(run, f"val_{metric}"))


def test_reference_colours() -> None:
    runs = make_study().runs
    assert run_colors(runs) == ["red", "forestgreen", "royalblue", "orchid"]


def test_legend_explains_models_and_line_styles() -> None:
    runs = make_study().runs
    fig = plot_training_curves(runs)
    (legend,) = fig.legends
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == [*(run.model for run in runs), "train", "validation"]
    styles = {
        h.get_label(): (h.get_linestyle(), to_hex(h.get_color())) for h in legend.legend_handles
    }
    assert styles["train"] == ("--", to_hex("black"))
    assert styles["validation"] == ("-", to_hex("black"))
    assert all(ax.get_legend() is None for ax in fig.axes)


def test_legend_sits_below_the_axes() -> None:
    fig = plot_training_curves(make_study().runs)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    legend_box = fig.legends[0].get_window_extent(renderer)
    for ax in fig.axes:
        assert legend_box.y1 <= ax.get_window_extent(renderer).y0


def test_integer_epoch_ticks() -> None:
    fig = plot_training_curves(make_study().runs)
    FigureCanvasAgg(fig).draw()
    for ax in fig.axes:
        ticks = ax.get_xticks()
        assert np.all(ticks == np.round(ticks))


def test_other_and_repeated_models_get_distinct_colours_and_labels() -> None:
    runs = [
        make_run("sequential", name="seq-a"),
        make_run("sequential", name="seq-b"),
        make_run("lenet"),
        make_run("alexnet"),
    ]
    colors = [to_hex(c) for c in run_colors(runs)]
    assert colors[0] == to_hex("red")
    assert len(set(colors)) == 4
    assert not set(colors) & {to_hex(c) for c in STUDY_COLORS.values()} - {to_hex("red")}
    assert run_labels(runs) == ["seq-a", "seq-b", "lenet", "alexnet"]


def test_draws_in_threads() -> None:
    errors: list[BaseException] = []

    def draw() -> None:
        try:
            FigureCanvasAgg(plot_training_curves(make_study().runs)).draw()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=draw) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
