"""Image SPECs: files, folders, DATASET:SPLIT:INDEX and DATASET:SPLIT:A-B."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from convscope.data import spec as spec_module
from convscope.data.preprocess import InputSpec, ResizePolicy
from convscope.data.spec import InputImage, parse_dataset_spec, resolve_images, to_batch
from convscope.errors import ConvscopeError, DataError, ImageError

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_28 = InputSpec(channels=1, height=28, width=28)


def raw_fashion_test() -> tuple[np.ndarray, np.ndarray] | None:
    """The Debian Fashion-MNIST test split read straight from its IDX files, if present."""
    images_gz = FASHION_DIR / "t10k-images-idx3-ubyte.gz"
    labels_gz = FASHION_DIR / "t10k-labels-idx1-ubyte.gz"
    if not (images_gz.exists() and labels_gz.exists()):
        return None
    with gzip.open(images_gz) as f:
        images = np.frombuffer(f.read()[16:], dtype=np.uint8).reshape(-1, 28, 28)
    with gzip.open(labels_gz) as f:
        labels = np.frombuffer(f.read()[8:], dtype=np.uint8)
    return images, labels


# --------------------------------------------------------------------------- files


def test_single_file(tmp_path: Path) -> None:
    path = tmp_path / "seven.png"
    Image.new("L", (20, 10), 99).save(path)
    (image,) = resolve_images(str(path))
    assert image.name == "seven.png"
    assert image.pixels.shape == (10, 20) and image.pixels.dtype == np.uint8
    assert image.label is None and image.label_name is None


def test_single_file_with_input_spec_channels(tmp_path: Path) -> None:
    path = tmp_path / "g.png"
    Image.new("L", (5, 5), 9).save(path)
    (image,) = resolve_images(str(path), input_spec=InputSpec(channels=3, height=8, width=8))
    assert image.pixels.shape == (5, 5, 3)  # channels converted, size left alone


def test_existing_path_with_colons_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Image.new("L", (3, 3), 1).save(tmp_path / "fashion-mnist:test:3", format="PNG")
    (image,) = resolve_images("fashion-mnist:test:3")
    assert image.name == "fashion-mnist:test:3" and image.label is None
    assert image.pixels.shape == (3, 3)


def test_flat_folder(tmp_path: Path) -> None:
    for name in ("b.png", "a.jpg", "c.bmp"):
        Image.new("RGB", (4, 4), (1, 2, 3)).save(tmp_path / name)
    (tmp_path / ".hidden.png").write_bytes(b"junk")
    (tmp_path / "notes.txt").write_text("no")
    (tmp_path / "sub").mkdir()
    Image.new("L", (4, 4)).save(tmp_path / "sub" / "ignored.png")
    images = resolve_images(str(tmp_path))
    assert [im.name for im in images] == ["a.jpg", "b.png", "c.bmp"]
    assert all(im.label is None for im in images)
    assert images[1].pixels.shape == (4, 4, 3)


def test_class_folder_layout(tmp_path: Path) -> None:
    for cls, value in (("zero", 0), ("one", 255)):
        (tmp_path / cls).mkdir()
        Image.new("L", (4, 4), value).save(tmp_path / cls / "x.png")
    images = resolve_images(str(tmp_path))
    assert [im.name for im in images] == ["one/x.png", "zero/x.png"]
    assert [(im.label, im.label_name) for im in images] == [(0, "one"), (1, "zero")]
    assert (images[0].pixels == 255).all()


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no image files"):
        resolve_images(str(tmp_path))


def test_folder_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spec_module, "MAX_IMAGES", 2)
    for i in range(3):
        Image.new("L", (2, 2)).save(tmp_path / f"{i}.png")
    with pytest.raises(ImageError, match="3 images, more than 2"):
        resolve_images(str(tmp_path))


@pytest.mark.parametrize(
    "text", ["missing.png", "C:\\data\\digit.png", "C:/data/digit.png", "d:\\x", "  "]
)
def test_missing_paths(text: str) -> None:
    with pytest.raises(ImageError) as info:
        resolve_images(text)
    message = str(info.value)
    assert "no such file" in message or "empty" in message
    assert "DATASET:SPLIT:INDEX" in message and "\n" not in message


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mnist:test:12", ("mnist", "test", 12, 13)),
        ("fashion-mnist:train:0-16", ("fashion-mnist", "train", 0, 16)),
        ("fashion-mnist:test:5-1029", ("fashion-mnist", "test", 5, 1029)),
    ],
)
def test_parse_dataset_spec(text: str, expected: tuple) -> None:
    assert parse_dataset_spec(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "fashion-mnist:test",
        "fashion-mnist:test:",
        "fashion-mnist:test:abc",
        "fashion-mnist:test:-1",
        "fashion-mnist:test:1-2-3",
        "fashion-mnist:test:3-",
        "fashion-mnist::3",
        ":test:3",
        "a:b:c:d",
        "data/x.png:3",
    ],
)
def test_malformed_specs(text: str) -> None:
    with pytest.raises(ImageError) as info:
        resolve_images(text)
    message = str(info.value)
    assert "DATASET:SPLIT:INDEX" in message and "mnist:test:12" in message


def test_empty_range() -> None:
    with pytest.raises(ImageError, match="A must be less than B"):
        resolve_images("fashion-mnist:test:5-5")
    with pytest.raises(ImageError, match="A must be less than B"):
        resolve_images("fashion-mnist:test:9-2")


def test_range_cap() -> None:
    with pytest.raises(ImageError, match="2000 images, more than 1024"):
        resolve_images("fashion-mnist:test:0-2000")


# --------------------------------------------------------------------------- datasets


def test_dataset_index() -> None:
    (image,) = resolve_images("fashion-mnist:test:12")
    assert image.name == "fashion-mnist:test:12"
    assert image.pixels.shape == (28, 28) and image.pixels.dtype == np.uint8
    assert isinstance(image.label, int) and isinstance(image.label_name, str)
    raw = raw_fashion_test()
    if raw is not None:
        np.testing.assert_array_equal(image.pixels, raw[0][12])
        assert image.label == int(raw[1][12])


def test_dataset_range() -> None:
    images = resolve_images("fashion-mnist:test:0-16")
    assert len(images) == 16
    assert [im.name for im in images] == [f"fashion-mnist:test:{i}" for i in range(16)]
    raw = raw_fashion_test()
    if raw is not None:
        assert [im.label for im in images] == raw[1][:16].tolist()
    assert not np.shares_memory(images[0].pixels, images[1].pixels)


def test_dataset_last_index_and_rgb_input_spec() -> None:
    rgb = InputSpec(channels=3, height=32, width=32)
    (image,) = resolve_images("fashion-mnist:test:9999", input_spec=rgb)
    assert image.pixels.shape == (28, 28, 3)


def test_dataset_index_out_of_range() -> None:
    with pytest.raises(ImageError, match="valid indices are 0-9999"):
        resolve_images("fashion-mnist:test:10000")


def test_dataset_range_out_of_range() -> None:
    with pytest.raises(ImageError, match="B at most 10000"):
        resolve_images("fashion-mnist:test:9990-10010")


def test_unknown_dataset_and_split_pass_through() -> None:
    with pytest.raises(DataError):
        resolve_images("no-such-dataset:test:0")
    with pytest.raises(DataError):
        resolve_images("fashion-mnist:nosplit:0")


# --------------------------------------------------------------------------- batches


def test_to_batch_matches_hand_computation() -> None:
    rng = np.random.default_rng(0)
    pixels = [rng.integers(0, 256, (28, 28), dtype=np.uint8) for _ in range(3)]
    images = [InputImage(f"x{i}", p) for i, p in enumerate(pixels)]
    s = InputSpec(channels=1, height=28, width=28, mean=(0.5,), std=(0.25,))
    batch = to_batch(images, s)
    assert batch.shape == (3, 1, 28, 28) and batch.dtype == torch.float32
    expected = (np.stack(pixels).astype(np.float32) / 255.0 - 0.5) / 0.25
    np.testing.assert_allclose(batch[:, 0].numpy(), expected, rtol=1e-5, atol=1e-5)


def test_to_batch_fits_mixed_sizes_and_channels() -> None:
    images = [
        InputImage("a", np.full((10, 20), 255, dtype=np.uint8)),
        InputImage("b", np.full((40, 40, 3), 255, dtype=np.uint8)),
    ]
    s = InputSpec(channels=3, height=28, width=28, resize=ResizePolicy.LETTERBOX)
    batch = to_batch(images, s)
    assert batch.shape == (2, 3, 28, 28)
    assert batch[0, :, 0].max() == 0 and batch[0, :, 14].min() == 1.0
    assert torch.all(batch[1] == 1.0)


def test_to_batch_of_dataset_spec() -> None:
    batch = to_batch(resolve_images("fashion-mnist:test:0-4"), MNIST_28)
    assert batch.shape == (4, 1, 28, 28)


def test_to_batch_empty() -> None:
    with pytest.raises(ImageError, match="at least one"):
        to_batch([], MNIST_28)


def test_all_errors_are_convscope_errors() -> None:
    assert issubclass(ImageError, ConvscopeError) and issubclass(DataError, ConvscopeError)


def test_scikit_image_photos_are_samples() -> None:
    pytest.importorskip("skimage")
    import skimage.data

    chelsea = resolve_images("sample:chelsea")[0]
    assert chelsea.name == "sample:chelsea" and chelsea.pixels.shape == (300, 451, 3)
    assert np.array_equal(chelsea.pixels, skimage.data.chelsea())
    rgb = InputSpec(channels=3, height=224, width=224)
    camera = resolve_images("sample:camera", input_spec=rgb)[0]  # a gray photo, as RGB
    assert camera.pixels.shape == (512, 512, 3)
    assert np.array_equal(camera.pixels[..., 1], skimage.data.camera())
    for name in ("astronaut", "coffee", "motorcycle", "rocket"):
        assert resolve_images(f"sample:{name}")[0].pixels.ndim == 3


def test_unknown_sample_lists_the_samples() -> None:
    with pytest.raises(ImageError, match=r"did you mean sample:chelsea|did you mean chelsea"):
        resolve_images("sample:chelsee")
    with pytest.raises(ImageError, match="sample:coffee"):
        resolve_images("sample:nothing")


def test_a_sample_of_a_missing_package_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "skimage" else real(name, *a)
    )
    with pytest.raises(ImageError, match=r"scikit-image, which is not installed.*pip install"):
        resolve_images("sample:chelsea")
