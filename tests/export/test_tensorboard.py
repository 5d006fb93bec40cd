"""TensorBoard export, read back with TensorBoard's own reader and compared with the store."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

from convscope.data.classes import FASHION_MNIST_CLASSES
from convscope.data.datasets import load_dataset
from convscope.data.sampling import stratified_indices
from convscope.errors import ConvscopeError, LayerError
from convscope.export.tensorboard import (
    GAP_PIXELS,
    GAP_RGB,
    export_tensorboard,
    kernel_image,
    scalar_tag,
)
from convscope.probe.kernels import kernel_grid, kernel_set
from convscope.store import StoreError, open_store
from tests.stores import copy_store

KERNEL_LAYERS = [f"conv2D_{i}" for i in range(1, 7)]


def _events(run_dir: Path) -> EventAccumulator:
    sizes = {"scalars": 0, "images": 0, "tensors": 0, "histograms": 0}
    accumulator = EventAccumulator(str(run_dir), size_guidance=sizes)
    accumulator.Reload()
    return accumulator


@pytest.fixture(scope="module")
def exported(recorded_runs, tmp_path_factory: pytest.TempPathFactory):
    """The ``sequential`` run exported once: (store root, run id, result, events)."""
    root, (run_id, _) = recorded_runs
    out = tmp_path_factory.mktemp("tb")
    result = export_tensorboard(root, run_id, out)
    return root, run_id, result, _events(result.dir)


def test_scalars_equal_the_stored_metrics(exported) -> None:
    root, run_id, result, events = exported
    with open_store(root, create=False) as store:
        metrics = store.metrics(run_id)
    expected_count = 0
    for name, values in metrics.items():
        if name == "epoch":
            continue
        finite = np.isfinite(values)
        expected_count += int(finite.sum())
        read = events.Scalars(scalar_tag(name))
        assert [e.step for e in read] == [int(s) for s in metrics["epoch"][finite]]
        # TensorBoard keeps scalars as float32.
        assert [e.value for e in read] == [float(np.float32(v)) for v in values[finite]]
    assert result.scalars == expected_count
    tags = set(events.Tags()["scalars"])
    assert {"loss/train", "loss/val", "accuracy/train", "accuracy/val", "lr"} <= tags
    assert {"loss/test", "accuracy/test"} <= tags  # the test metrics, at the last epoch
    assert [e.step for e in events.Scalars("accuracy/test")] == [2]
    assert [e.step for e in events.Scalars("loss/val")] == [0, 1, 2]  # epoch 0: before training
    assert [e.step for e in events.Scalars("loss/train")] == [1, 2]


def test_scalar_tags() -> None:
    assert scalar_tag("train_loss") == "loss/train"
    assert scalar_tag("val_acc") == "accuracy/val"
    assert scalar_tag("test_acc") == "accuracy/test"
    assert scalar_tag("lr") == "lr"
    assert scalar_tag("seconds") == "time/seconds"
    assert scalar_tag("grad_norm") == "grad_norm"


def test_one_kernel_image_per_layer_and_epoch(exported) -> None:
    _, _, result, events = exported
    assert events.Tags()["images"] == [f"kernels/{name}" for name in KERNEL_LAYERS]
    assert result.images == len(KERNEL_LAYERS) * 3
    for name in KERNEL_LAYERS:
        images = events.Images(f"kernels/{name}")
        assert [e.step for e in images] == [0, 1, 2]
        # 32 kernels of 2x2 -> a 4 x 8 grid of 32-pixel tiles (2x2 enlarged 16 times).
        assert {(e.width, e.height) for e in images} == {(8 * 32 + 7 * 2, 4 * 32 + 3 * 2)}


def test_kernel_image_pixels_are_the_per_kernel_scaled_weights(exported) -> None:
    root, run_id, _, events = exported
    with open_store(root, create=False) as store:
        for epoch in (0, 2):
            (artifact,) = store.artifacts(run_id, kind="kernels", name="conv2D_1", epoch=epoch)
            weights = store.load_array(artifact)  # 32 x 1 x 2 x 2
            (deep,) = store.artifacts(run_id, kind="kernels", name="conv2D_2", epoch=epoch)
            deep_weights = store.load_array(deep)  # 32 x 32 x 2 x 2: shown as the channel mean
            for tag, kernels in (("conv2D_1", weights[:, 0]), ("conv2D_2", deep_weights.mean(1))):
                png = events.Images(f"kernels/{tag}")[epoch].encoded_image_string
                image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
                step = 32 + GAP_PIXELS
                for k, kernel in enumerate(kernels):
                    lo, hi = kernel.min(), kernel.max()
                    want = np.round((kernel - lo) / (hi - lo) * 255)
                    r, c = divmod(k, 8)
                    # the centre of each enlarged weight pixel
                    got = image[
                        r * step + 8 : r * step + 32 : 16, c * step + 8 : c * step + 32 : 16
                    ]
                    assert np.abs(got[..., 0].astype(float) - want).max() <= 1, (tag, k)
                    assert (got[..., 0] == got[..., 1]).all() and (got[..., 1] == got[..., 2]).all()
                assert (image[32 : 32 + GAP_PIXELS, :] == GAP_RGB).all()  # the gap below row 0
                assert (image[:, 32 : 32 + GAP_PIXELS] == GAP_RGB).all()


def test_rgb_kernels_become_colour_tiles() -> None:
    import torch

    conv = torch.nn.Conv2d(3, 5, 3)
    grid = kernel_grid(kernel_set(torch.nn.Sequential(conv), "0"), "per-kernel")
    image = kernel_image(grid, min_tile=9)
    rows, cols = grid.rows, grid.cols
    assert image.shape == (rows * 9 + (rows - 1) * 2, cols * 9 + (cols - 1) * 2, 3)
    w = conv.weight.detach().numpy()[0]  # 3 x 3 x 3, kernel 0 at the top left
    want = np.round((w - w.min()) / (w.max() - w.min()) * 255).transpose(1, 2, 0)
    got = image[1:9:3, 1:9:3].astype(float)
    assert np.abs(got - want).max() <= 1
    # the cells after the last kernel are gap colour
    if rows * cols > 5:
        assert (image[-1, -1] == GAP_RGB).all()


def test_projector_files_hold_the_snapshots_and_class_names(exported) -> None:
    root, run_id, result, _ = exported
    config = text_format.Parse(
        (result.dir / "projector_config.pbtxt").read_text(), ProjectorConfig()
    )
    assert [e.tensor_name for e in config.embeddings] == [
        "hidden:00000",
        "hidden:00001",
        "hidden:00002",
    ]
    assert result.embeddings == 3
    with open_store(root, create=False) as store:
        snapshots = store.snapshots(run_id, "hidden")
        labels = store.run_array(run_id, "probe", "labels")
        indices = store.run_array(run_id, "probe", "indices")
    for epoch, embedding in enumerate(config.embeddings):
        tensors = np.loadtxt(result.dir / embedding.tensor_path, dtype=np.float64, ndmin=2)
        assert tensors.shape == (100, 128)
        np.testing.assert_array_equal(tensors.astype(np.float32), snapshots[epoch])
        lines = (result.dir / embedding.metadata_path).read_text().splitlines()
        assert lines[0] == "class\tlabel\tindex"
        rows = [line.split("\t") for line in lines[1:]]
        assert [r[0] for r in rows] == [FASHION_MNIST_CLASSES[int(i)] for i in labels]
        assert [int(r[1]) for r in rows] == labels.tolist()
        assert [int(r[2]) for r in rows] == indices.tolist()
        assert list(embedding.sprite.single_image_dim) == [28, 28]


def test_sprites_are_the_probe_images(exported) -> None:
    """Rebuilt the way the run chose them: stratified subset of 2,000, then probe indices."""
    root, run_id, result, _ = exported
    assert result.sprites
    with open_store(root, create=False) as store:
        indices = store.run_array(run_id, "probe", "indices")
        labels = store.run_array(run_id, "probe", "labels")
    train = load_dataset("fashion-mnist", "train")
    keep = stratified_indices(train.labels, 200, seed=0)
    images, image_labels = train.images[keep][indices], train.labels[keep][indices]
    np.testing.assert_array_equal(image_labels, labels)
    sprite = np.asarray(Image.open(result.dir / "00001" / "hidden" / "sprite.png").convert("L"))
    assert sprite.shape == (280, 280)  # 10 x 10 images of 28 x 28
    for i in (0, 7, 55, 99):
        r, c = divmod(i, 10)
        np.testing.assert_array_equal(sprite[r * 28 : r * 28 + 28, c * 28 : c * 28 + 28], images[i])


def test_two_runs_side_by_side_and_layer_choice(recorded_runs, tmp_path: Path) -> None:
    root, (first, second) = recorded_runs
    export_tensorboard(root, first, tmp_path, layers=["conv2D_1"], sprites=False)
    result = export_tensorboard(root, second, tmp_path, layers=["hidden"], sprites=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first, second])
    assert (result.images, result.embeddings, result.sprites) == (0, 3, False)
    events = _events(tmp_path / first)
    assert events.Tags()["images"] == ["kernels/conv2D_1"]
    assert not (tmp_path / first / "projector_config.pbtxt").exists()
    config = (tmp_path / second / "projector_config.pbtxt").read_text()
    assert "sprite" not in config and config.count("tensor_name") == 3


def test_unknown_layer_names_the_recorded_ones(recorded_runs, tmp_path: Path) -> None:
    root, (run_id, _) = recorded_runs
    with pytest.raises(LayerError, match=r"'hiden'; did you mean hidden\?.*recorded: conv2D_1"):
        export_tensorboard(root, run_id, tmp_path, layers=["hiden"])
    assert list(tmp_path.iterdir()) == []


def test_an_earlier_export_is_kept_unless_forced(recorded_runs, tmp_path: Path) -> None:
    root, (run_id, _) = recorded_runs
    first = export_tensorboard(root, run_id, tmp_path, layers=["conv2D_1"], sprites=False)
    marker = first.dir / "mine.txt"
    marker.write_text("keep")
    with pytest.raises(ConvscopeError, match="--force"):
        export_tensorboard(root, run_id, tmp_path, sprites=False)
    assert marker.read_text() == "keep"
    again = export_tensorboard(root, run_id, tmp_path, layers=["hidden"], force=True, sprites=False)
    assert not marker.exists() and again.embeddings == 3
    assert [p.name for p in tmp_path.iterdir()] == [run_id]  # no temporary folders left


def test_a_failed_export_leaves_nothing(recorded_runs, tmp_path: Path) -> None:
    root, (run_id, _) = recorded_runs
    copy = tmp_path / "store"
    copy_store(root, copy)
    with open_store(copy, create=False) as store:
        (snapshot,) = store.artifacts(run_id, kind="snapshot", name="hidden", epoch=2)
        store.path_of(snapshot).write_bytes(b"damaged")
    out = tmp_path / "tb"
    out.mkdir()
    with pytest.raises(StoreError, match="sha256"):
        export_tensorboard(copy, run_id, out, sprites=False)
    assert list(out.iterdir()) == []
    with pytest.raises(StoreError, match="sha256"):  # folders it made itself are removed
        export_tensorboard(copy, run_id, tmp_path / "new" / "tb", sprites=False)
    assert not (tmp_path / "new").exists()


def test_unknown_run_and_missing_store(recorded_runs, tmp_path: Path) -> None:
    root, _ = recorded_runs
    with pytest.raises(StoreError, match="nosuchrun"):
        export_tensorboard(root, "nosuchrun", tmp_path)
    with pytest.raises(StoreError, match="no run store"):
        export_tensorboard(tmp_path / "nowhere", "x", tmp_path / "tb")


def test_missing_tensorboard_says_how_to_install(
    recorded_runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, (run_id, _) = recorded_runs
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.raises(ConvscopeError, match=r"pip install 'convscope\[tensorboard\]'"):
        export_tensorboard(root, run_id, tmp_path)
