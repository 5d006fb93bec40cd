"""Image streams: any range or folder, read a slice at a time, equal to the eager SPEC path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from convscope.data.datasets import load_dataset
from convscope.data.preprocess import InputSpec, ResizePolicy
from convscope.data.spec import InputImage, resolve_images, to_batch
from convscope.data.stream import ArrayStream, DatasetStream, FolderStream, open_images
from convscope.errors import ImageError

MNIST_28 = InputSpec(channels=1, height=28, width=28)


def test_a_range_is_not_capped_and_slices_the_split() -> None:
    stream = open_images("fashion-mnist:train:0-60000", input_spec=MNIST_28)
    assert isinstance(stream, DatasetStream) and len(stream) == 60000
    data = load_dataset("fashion-mnist", "train")
    np.testing.assert_array_equal(stream.labels, data.labels)
    assert stream.names(59998) == ["fashion-mnist:train:59998", "fashion-mnist:train:59999"]
    np.testing.assert_array_equal(stream.pixels(100, 104), data.images[100:104])
    with pytest.raises(ImageError, match="more than 1024"):
        resolve_images("fashion-mnist:train:0-60000")  # the eager path keeps its cap


def test_dataset_batches_equal_the_eager_path() -> None:
    for spec in (MNIST_28, InputSpec(channels=3, height=28, width=28, mean=(0.5,), std=(0.25,))):
        stream = open_images("fashion-mnist:test:200-230", input_spec=spec)
        eager = resolve_images("fashion-mnist:test:200-230", input_spec=spec)
        torch.testing.assert_close(stream.batch(3, 17, spec), to_batch(eager[3:17], spec))
        image = stream.image(5)
        assert (image.name, image.label, image.label_name) == (
            eager[5].name,
            eager[5].label,
            eager[5].label_name,
        )
        np.testing.assert_array_equal(image.pixels, eager[5].pixels)


def test_resizing_specs_fit_image_by_image() -> None:
    padded = InputSpec(channels=1, height=32, width=32, resize=ResizePolicy.PAD)
    stream = open_images("mnist:test:0-5", input_spec=padded)
    batch = stream.batch(0, 5, padded)
    assert batch.shape == (5, 1, 32, 32)
    torch.testing.assert_close(batch, to_batch(resolve_images("mnist:test:0-5"), padded))


def test_folders_stream_lazily_with_labels(tmp_path: Path) -> None:
    for cls, value in (("cats", 10), ("dogs", 200)):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("L", (28, 28), value + i).save(tmp_path / cls / f"{i}.png")
    stream = open_images(str(tmp_path), input_spec=MNIST_28)
    assert isinstance(stream, FolderStream) and len(stream) == 6
    assert stream.class_names == ("cats", "dogs")
    assert stream.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert stream.names(2, 4) == ["cats/2.png", "dogs/0.png"]
    assert [int(p[0, 0]) for p in stream.pixels(2, 5)] == [12, 200, 201]
    flat = tmp_path / "cats"
    flat_stream = open_images(str(flat))
    assert len(flat_stream) == 3 and flat_stream.labels.tolist() == [-1, -1, -1]


def test_arrays_lists_and_errors() -> None:
    pixels = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
    stream = ArrayStream(pixels, labels=np.array([2, 0, 1]), class_names=("a", "b", "c"))
    assert stream.names() == ["pixels[0]", "pixels[1]", "pixels[2]"]
    assert stream.image(0).label_name == "c"
    torch.testing.assert_close(stream.batch(0, 3, MNIST_28), MNIST_28.normalize(pixels))
    listed = open_images([InputImage("x", pixels[0], 1, "one"), InputImage("y", pixels[1])])
    assert listed.labels.tolist() == [1, -1] and listed.class_names == ("0", "one")
    with pytest.raises(ImageError, match="out of range: mnist:test:0-4 names 4 image"):
        open_images("mnist:test:0-4").image(4)
    with pytest.raises(ImageError, match="out of range"):
        open_images("mnist:test:9990-10001")
    with pytest.raises(ImageError, match="no such file"):
        open_images("nothere.png")
    with pytest.raises(ImageError, match="uint8"):
        ArrayStream(pixels.astype(np.float32))


def test_pick_image_reads_only_the_chosen_image_and_counts_them() -> None:
    from convscope.data.stream import chosen_image_note, pick_image

    image, count = pick_image("mnist:test:100-200", 7)
    assert count == 100 and image.name == "mnist:test:107"
    test = load_dataset("mnist", "test")
    np.testing.assert_array_equal(image.pixels, test.images[107])
    assert image.label == int(test.labels[107])
    assert chosen_image_note("mnist:test:100-200", count, 7, image.name) == (
        "mnist:test:100-200 names 100 images; using image 7, mnist:test:107 "
        "(--index I picks another)"
    )
    assert chosen_image_note("mnist:test:5", 1, 0, "mnist:test:5") is None
    with pytest.raises(
        ImageError, match=r"--index 100 is out of range: .* so the index must be 0-99"
    ):
        pick_image("mnist:test:100-200", 100)
    with pytest.raises(ImageError, match="counts from 0"):
        pick_image("mnist:test:100-200", -1)
