"""The pictures of the reference tutorials, end to end through the CLI, with their true numbers.

From the trained ``lenet`` and ``lenet5`` fixtures and from ``resnet50`` with a weights
file made here: its ``conv1`` kernel 0 is set to a "\\" edge detector, as the ResNet-50
reference observes, and must show as such and respond along a "\\" edge in a photo.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from convscope.cli.app import main
from convscope.models.loading import load_model

pytestmark = pytest.mark.slow


def _json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _png(path: Path) -> np.ndarray:
    assert path.is_file() and path.stat().st_size > 5_000
    pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    assert pixels.std() > 10  # not blank
    return pixels


def test_lenet_kernel_grids(trained_lenet: Path, tmp_path: Path, capsys) -> None:
    ckpt = str(trained_lenet)
    for layer, shape in (("conv2d_1", [20, 1, 5, 5]), ("conv2d_2", [50, 20, 5, 5])):
        out, npy = tmp_path / f"{layer}.png", tmp_path / f"{layer}.npy"
        argv = ["kernels", ckpt, "--layer", layer, "--out", str(out), "--npy", str(npy), "--json"]
        data = _json(capsys, argv)
        assert data["shape"] == shape and data["normalization"] == "per-kernel"
        weights = load_model(ckpt).module.get_submodule(layer).weight.detach().numpy()
        np.testing.assert_array_equal(np.load(npy), weights)
        _png(out)


def test_lenet5_feature_maps_of_test_image_12(trained_lenet5: Path, tmp_path: Path) -> None:
    out, npy = tmp_path / "features.png", tmp_path / "maps"
    layers = "max_pooling2d_1,max_pooling2d_2"
    argv = ["features", str(trained_lenet5), "--image", "mnist:test:12", "--layers", layers]
    assert main([*argv, "--out", str(out), "--npy", str(npy)]) == 0
    assert np.load(npy / "max_pooling2d_1.npy").shape == (1, 6, 12, 12)
    assert np.load(npy / "max_pooling2d_2.npy").shape == (1, 16, 4, 4)
    _png(out)


def test_lenet5_activation_maximisation_of_every_class(
    trained_lenet5: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "classes.png"
    data = _json(
        capsys, ["maximize", str(trained_lenet5), "--class", "all", "--out", str(out), "--json"]
    )
    targets = data["targets"]
    assert [t["index"] for t in targets] == list(range(10))
    for target in targets:  # each synthesised digit is classified as its own class
        assert target["status"] in ("converged", "step-limit"), target["message"]
        assert target["top"][0][0] == target["target"] and target["score"] > target["start_score"]
    assert data["mean_target_prob"] > 0.9
    _png(out)


@pytest.fixture(scope="module")
def edge_resnet50(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ResNet-50 weights file whose conv1 kernel 0 detects "\\" edges in every channel."""
    module = load_model("resnet50", seed=0).module
    kernel = -np.ones((7, 7), dtype=np.float32) * 0.02
    for offset in (-1, 0, 1):
        kernel += np.eye(7, k=offset, dtype=np.float32) * (0.1 if offset == 0 else 0.05)
    kernel -= kernel.mean()
    with torch.no_grad():
        module.conv1.weight[0] = torch.from_numpy(np.stack([kernel * s for s in (1.0, 0.8, 0.6)]))
    path = tmp_path_factory.mktemp("r50") / "resnet50-edge.pth"
    torch.save(module.state_dict(), path)
    return path


def test_resnet50_conv1_mosaic_shows_the_kernels_it_was_given(
    edge_resnet50: Path, tmp_path: Path, capsys
) -> None:
    out, npy = tmp_path / "conv1.png", tmp_path / "conv1.npy"
    argv = ["kernels", "resnet50", "--weights", str(edge_resnet50), "--layer", "conv1"]
    data = _json(capsys, [*argv, "--out", str(out), "--npy", str(npy), "--json"])
    assert data["shape"] == [64, 3, 7, 7] and data["channel_order"] == "RGB"
    weights = np.load(npy)
    assert weights.shape == (64, 3, 7, 7)
    band = np.abs(np.subtract.outer(np.arange(7), np.arange(7))) <= 1
    assert weights[0, 0][band].min() > weights[0, 0][~band].max()  # a diagonal edge detector
    _png(out)


def test_resnet50_kernel_responds_along_a_backslash_edge(
    edge_resnet50: Path, tmp_path: Path, capsys
) -> None:
    photo = np.zeros((224, 224, 3), dtype=np.uint8)
    rows, cols = np.indices((224, 224))
    photo[np.abs(rows - cols) <= 2] = 255  # a bright "\" line
    source = tmp_path / "line.png"
    Image.fromarray(photo).save(source)
    npy, out = tmp_path / "response.npy", tmp_path / "response.png"
    argv = ["apply-kernel", "resnet50", "--weights", str(edge_resnet50), "--layer", "conv1"]
    argv += ["--kernel", "0", "--image", str(source), "--npy", str(npy), "--out", str(out)]
    assert main(argv) == 0
    response = np.load(npy)
    assert response.shape == (112, 112)
    on_line = response[np.eye(112, dtype=bool)][5:-5].mean()
    off_line = response[np.abs(np.subtract.outer(np.arange(112), np.arange(112))) > 10].mean()
    assert on_line > off_line + 0.5 * np.abs(response).max()
    _png(out)
