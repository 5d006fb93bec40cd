"""show_images: a stratified grid of a dataset titled with class names, drawn apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

import convscope
from convscope.data.datasets import load_dataset
from convscope.data.grid import MAX_GRID, ImageGrid, show_images
from convscope.data.sampling import stratified_sample
from convscope.errors import ConvscopeError


def test_a_dataset_gives_ten_of_each_class_one_class_per_row() -> None:
    grid = convscope.show_images("fashion-mnist")
    assert isinstance(grid, ImageGrid) and grid.shape == (10, 10)
    train = load_dataset("fashion-mnist", "train")
    labels = [im.label for im in grid.images]
    assert labels == [c for c in range(10) for _ in range(10)]
    assert grid.titles[:10] == ["T-shirt/top"] * 10 and grid.titles[-1] == "Ankle boot"
    for image, index in zip(grid.images, grid.indices, strict=True):
        assert image.name == f"fashion-mnist:train:{index}"
        assert image.label == int(train.labels[index])
        np.testing.assert_array_equal(image.pixels, train.images[index])
    again = show_images("fashion-mnist:train", seed=0)
    other = show_images("fashion-mnist", seed=1)
    assert again.indices == grid.indices and other.indices != grid.indices
    assert "stratified sample of 100 of 60,000" in grid.title


def test_the_figure_has_class_titles_and_no_ticks(tmp_path: Path) -> None:
    grid = show_images("mnist", split="test", n=12, seed=3)
    fig = grid.figure()
    assert isinstance(fig, Figure)
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 12
    assert [ax.get_title() for ax in drawn] == grid.titles
    assert all(not ax.axison for ax in fig.axes)  # no axes, no ticks
    np.testing.assert_array_equal(drawn[0].images[0].get_array(), grid.images[0].pixels)
    path = grid.save(tmp_path / "grid.png")
    assert Path(path).read_bytes()[:4] == b"\x89PNG"
    assert grid._repr_png_()[:4] == b"\x89PNG"


def test_a_small_spec_is_shown_whole_and_in_order() -> None:
    grid = show_images("mnist:test:0-16")
    assert [im.name for im in grid.images] == [f"mnist:test:{i}" for i in range(16)]
    assert grid.titles[:5] == ["7", "2", "1", "0", "4"] and grid.shape == (4, 4)
    sampled = show_images("fashion-mnist:test:0-5000", n=20, stratified=False, seed=2)
    assert len(sampled.images) == 20 and sampled.indices == sorted(sampled.indices)
    assert max(sampled.indices) < 5000


def test_stratified_sample_spreads_the_remainder() -> None:
    labels = np.repeat(np.arange(4), [50, 50, 50, 2])
    picked = stratified_sample(labels, 21, seed=0)
    counts = np.bincount(labels[picked], minlength=4)
    assert counts.sum() == 21 and counts[3] == 2 and sorted(counts[:3]) == [6, 6, 7]
    assert list(picked) == sorted(picked, key=lambda i: (labels[i], i))
    np.testing.assert_array_equal(stratified_sample(labels, 500), np.arange(152))


def test_a_grid_keeps_a_cap_and_bad_input_is_one_line() -> None:
    with pytest.raises(ConvscopeError, match=f"1 to {MAX_GRID} images"):
        show_images("fashion-mnist", n=MAX_GRID + 1)
    with pytest.raises(ConvscopeError, match="no split 'tst'"):
        show_images("fashion-mnist", split="tst")
    with pytest.raises(ConvscopeError, match="unknown dataset"):
        show_images("cifar")
    with pytest.raises(ConvscopeError, match="a split goes with a dataset name"):
        show_images("mnist:test:0-4", split="test")
