"""Confusion-matrix figures: tick labels, annotations, colour bar, accuracy."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
from matplotlib.colors import to_rgb

from convscope.render.confusion import plot_confusion_grid, plot_confusion_matrix, row_shares
from tests.render import CLASSES, confusion, make_run, make_study


def _cell_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def _title_accuracy(title: str) -> float:
    return float(re.search(r"accuracy ([0-9.]+)", title).group(1))


def test_ticks_labels_and_colour_bar() -> None:
    fig = plot_confusion_matrix(confusion(), CLASSES, title="toy")
    ax, colorbar_ax = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == list(CLASSES)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(CLASSES)
    assert all(t.get_rotation() == 45 and t.get_ha() == "right" for t in ax.get_xticklabels())
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")
    assert ax.images[0].colorbar is not None
    assert colorbar_ax is ax.images[0].colorbar.ax


def test_annotations_are_row_shares_and_counts() -> None:
    matrix = confusion()
    fig = plot_confusion_matrix(matrix, CLASSES, title="toy")
    texts = _cell_texts(fig.axes[0])
    shares = row_shares(matrix)
    expected = [f"{shares[i, j]:.2f}\n{matrix[i, j]}" for i in range(3) for j in range(3)]
    assert texts == expected
    assert texts[0] == "0.80\n8" and texts[3] == "0.20\n2"
    # The shown colours are the shares, not the counts.
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), shares)


def test_title_accuracy_is_trace_over_sum() -> None:
    matrix = confusion(7)
    fig = plot_confusion_matrix(matrix, CLASSES, title="toy")
    title = fig.axes[0].get_title()
    assert title.startswith("toy")
    assert _title_accuracy(title) == pytest.approx(np.trace(matrix) / matrix.sum(), abs=1e-4)


def test_text_colour_contrasts_with_cell() -> None:
    matrix = np.array([[100, 0], [0, 100]])
    fig = plot_confusion_matrix(matrix, ("a", "b"), title="t")
    colors = [to_rgb(t.get_color()) for t in fig.axes[0].texts]
    assert colors[0] == to_rgb("white")  # dark diagonal cell
    assert colors[1] == to_rgb("black")  # light empty cell


def test_counts_dropped_when_crowded_and_empty_rows_are_zero() -> None:
    n = 14
    matrix = np.eye(n, dtype=int) * 5
    matrix[3] = 0
    fig = plot_confusion_matrix(matrix, [f"c{i}" for i in range(n)], title="big")
    texts = _cell_texts(fig.axes[0])
    assert len(texts) == n * n
    assert all("\n" not in t for t in texts)
    assert texts[3 * n + 3] == "0.00"


def test_unnormalised_colours_are_counts() -> None:
    matrix = confusion()
    fig = plot_confusion_matrix(matrix, CLASSES, title="toy", normalize=False)
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), matrix)


def test_bad_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="square"):
        plot_confusion_matrix(np.zeros((2, 3)), ("a", "b"), title="t")
    with pytest.raises(ValueError, match="class names"):
        plot_confusion_matrix(np.zeros((2, 2)), ("a", "b", "c"), title="t")


def test_grid_one_panel_per_matrix_sharing_one_colour_bar() -> None:
    study = make_study()
    fig = plot_confusion_grid(study.runs)
    with_matrix = [run for run in study.runs if run.confusion is not None]
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == len(with_matrix) == 3
    assert len(fig.axes) == 4  # three panels and one colour bar
    assert len({id(ax.images[0].norm) for ax in panels}) == 1
    assert {ax.images[0].norm.vmin for ax in panels} == {0.0}
    assert {ax.images[0].norm.vmax for ax in panels} == {1.0}
    assert len({id(ax.images[0].colorbar) for ax in panels if ax.images[0].colorbar}) == 1
    for ax, run in zip(panels, with_matrix, strict=True):
        assert ax.get_title().startswith(run.model)
        matrix = run.confusion
        assert _title_accuracy(ax.get_title()) == pytest.approx(
            np.trace(matrix) / matrix.sum(), abs=1e-4
        )
        shares = row_shares(matrix)
        expected = [f"{s:.2f}\n{c}" for s, c in zip(shares.ravel(), matrix.ravel(), strict=True)]
        assert _cell_texts(ax) == expected


def test_grid_without_matrices_is_an_error() -> None:
    with pytest.raises(ValueError, match="confusion"):
        plot_confusion_grid([make_run("sequential")])


def test_grid_of_many_classes_shows_shares_only() -> None:
    names = tuple(f"class {i}" for i in range(8))
    run = replace(make_run("lenet", confusion=np.eye(8, dtype=int) * 3 + 1), class_names=names)
    (ax, _colorbar) = plot_confusion_grid([run]).axes
    assert all("\n" not in t for t in _cell_texts(ax))
    assert [t.get_text() for t in ax.get_xticklabels()] == list(names)
