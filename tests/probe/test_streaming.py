"""convscope.activations: every image's layer outputs, in batches, equal to a direct forward."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor

import convscope
from convscope.cli import feature_cmds
from convscope.data.datasets import load_dataset
from convscope.data.spec import resolve_images, to_batch
from convscope.errors import ConvscopeError, ImageError, LayerError
from convscope.models.keras import load_keras
from convscope.models.loading import load_model
from convscope.probe import streaming
from convscope.probe.activations import capture
from convscope.probe.streaming import Activations, activations
from tests.models.test_keras import FIXTURES, META, TORCH_ORDER, keras_layout, keras_to_chw_flat


def _hook_count(module: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in module.modules())


def direct(model, spec: str, layers: list[str]) -> dict[str, np.ndarray]:
    """The layers' outputs from one forward pass over all images of ``spec``, eagerly."""
    batch = to_batch(resolve_images(spec, input_spec=model.input_spec), model.input_spec)
    model.module.eval()
    with torch.no_grad(), capture(model.module, layers) as got:
        model.module(batch)
    return {name: got.output(name).numpy() for name in layers}


def test_rows_equal_a_direct_forward_with_labels_and_specs() -> None:
    model = load_model("residual", seed=0)
    layers = ["conv2D_1", "pool1", "hidden"]
    result = activations(model, "fashion-mnist:test:5-75", layers, batch_size=32)
    assert isinstance(result, Activations) and result.count == 70
    assert result.shapes == {
        "conv2D_1": (70, 32, 28, 28),
        "pool1": (70, 32, 14, 14),
        "hidden": (70, 128),
    }
    expected = direct(model, "fashion-mnist:test:5-75", layers)
    for name in layers:
        assert result[name].dtype == np.float32
        np.testing.assert_allclose(result[name], expected[name], rtol=0, atol=2e-5, err_msg=name)
    test = load_dataset("fashion-mnist", "test")
    np.testing.assert_array_equal(result.labels, test.labels[5:75])
    assert result.specs[0] == "fashion-mnist:test:5" and result.specs[-1] == "fashion-mnist:test:74"
    assert result.label_names[0] == test.class_names[int(test.labels[5])]
    assert set(dict(result)) == set(layers) and _hook_count(model.module) == 0
    assert convscope.activations is activations


def test_to_dict_and_html_describe_rows_not_arrays() -> None:
    model = load_model("lenet5", seed=0)
    result = convscope.activations(model, "mnist:test:0-20", "conv2d_1,dense_3", batch_size=8)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["count"] == 20 and data["spec"] == "mnist:test:0-20"
    assert [(layer["name"], layer["shape"]) for layer in data["layers"]] == [
        ("conv2d_1", [20, 6, 24, 24]),
        ("dense_3", [20, 10]),
    ]
    assert data["labels"][:5] == [7, 2, 1, 0, 4]  # the MNIST test set starts 7 2 1 0 4
    assert data["specs"][3] == "mnist:test:3" and data["class_names"][7] == "7"
    page = result._repr_html_()
    assert "conv2d_1" in page and "20 x 6 x 24 x 24" in page and "in memory" in page
    assert len(json.dumps(data)) < 10_000  # the arrays are not in it


def test_reused_inplace_relu_equals_torchvision_feature_extractor() -> None:
    model = load_model("torchvision:resnet18", seed=0)
    module = model.module.eval()
    x = torch.randn(7, 3, 64, 64)
    nodes = ["maxpool", "layer1.0.bn1", "layer1.0.relu", "layer1.0.relu_1", "layer2"]
    with torch.no_grad():
        reference = create_feature_extractor(module, return_nodes=nodes)(x)
        block = module.layer1[0]
        true_bn1 = block.bn1(block.conv1(reference["maxpool"])).numpy()
    first = activations(model, x, ["layer1.0.bn1", "layer1.0.relu", "layer2"], batch_size=3, call=0)
    last = activations(model, x, ["layer1.0.relu"], batch_size=3)  # default: the last call
    # The in-place ReLU after bn1 overwrites bn1's output: the feature extractor hands back
    # the overwritten tensor (no negative values left), convscope the true one.
    assert (reference["layer1.0.bn1"] >= 0).all() and (true_bn1 < 0).any()
    np.testing.assert_allclose(first["layer1.0.bn1"], true_bn1, rtol=0, atol=1e-5)
    for ours, node in (
        (first["layer1.0.relu"], "layer1.0.relu"),
        (last["layer1.0.relu"], "layer1.0.relu_1"),
        (first["layer2"], "layer2"),
    ):
        np.testing.assert_allclose(ours, reference[node].numpy(), rtol=0, atol=1e-5, err_msg=node)
    assert first.calls["layer1.0.relu"] == (0, 2) and last.calls["layer1.0.relu"] == (1, 2)
    assert first.specs == [f"input[{i}]" for i in range(7)]
    assert (first.labels == -1).all() and _hook_count(module) == 0


def test_later_batches_stop_once_the_layers_have_run() -> None:
    model = load_model("torchvision:resnet18", seed=0)
    seen = []
    handle = model.module.fc.register_forward_hook(lambda m, i, o: seen.append(len(o)))
    try:
        result = activations(model, torch.randn(10, 3, 32, 32), ["layer1"], batch_size=4)
    finally:
        handle.remove()
    assert result["layer1"].shape == (10, 64, 8, 8)
    assert seen == [4]  # only the first batch ran the whole network


@pytest.mark.parametrize("name", ["lenet", "branches", "resnet_stem", "layer_zoo"])
def test_keras_rows_equal_keras_layer_outputs(name: str) -> None:
    data = dict(np.load(FIXTURES / f"{name}.npz"))
    model = load_keras(FIXTURES / f"{name}.keras")
    layers = META[name]["recorded"]
    result = activations(model, data["pixels"], layers, batch_size=2)  # uint8 N x H x W x C
    for layer in layers:
        ours, theirs = result[layer], data[f"layer/{layer}"]
        assert ours.shape[0] == len(data["pixels"])
        if theirs.ndim == 4:  # conv layers come out N x C x H x W
            assert ours.shape == (theirs.shape[0], theirs.shape[3], *theirs.shape[1:3])
        if layer in TORCH_ORDER.get(name, {}):
            theirs = keras_to_chw_flat(theirs, TORCH_ORDER[name][layer])
        tol = 1e-5 * max(1.0, float(np.abs(theirs).max()))
        np.testing.assert_allclose(
            keras_layout(torch.from_numpy(np.asarray(ours))),
            theirs,
            rtol=0,
            atol=tol,
            err_msg=layer,
        )
    dense = [layer for layer in layers if data[f"layer/{layer}"].ndim == 2]
    assert all(result[layer].ndim == 2 for layer in dense)  # dense layers: N x features


def test_out_streams_npy_files_and_leaves_no_temporaries(tmp_path: Path) -> None:
    model = load_model("lenet5", seed=0)
    folder = tmp_path / "new" / "acts"
    in_memory = activations(model, "mnist:test:0-50", ["conv2d_1", "dense_3"], batch_size=16)
    seen: list[tuple[str, int, int]] = []
    written = activations(
        model,
        "mnist:test:0-50",
        ["conv2d_1", "dense_3"],
        batch_size=16,
        out=folder,
        progress=lambda *report: seen.append(report),
    )
    assert seen == [("activations", done, 50) for done in (16, 32, 48, 50)]
    assert sorted(p.name for p in folder.iterdir()) == [
        "_labels.npy",
        "_rows.txt",
        "conv2d_1.npy",
        "dense_3.npy",
    ]
    # which image each row is: the labels and SPECs beside the arrays
    np.testing.assert_array_equal(np.load(folder / "_labels.npy"), in_memory.labels)
    assert (folder / "_rows.txt").read_text().splitlines() == in_memory.specs
    assert in_memory.specs[:2] == ["mnist:test:0", "mnist:test:1"]
    assert written.paths == {
        "conv2d_1": folder / "conv2d_1.npy",
        "dense_3": folder / "dense_3.npy",
    }
    for name in ("conv2d_1", "dense_3"):
        assert isinstance(written[name], np.memmap)
        np.testing.assert_array_equal(np.load(folder / f"{name}.npy"), in_memory[name])
    assert "conv2d_1.npy" in written._repr_html_()


def test_a_failure_midway_writes_nothing(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        Image.new("L", (28, 28), 50 * i).save(images / f"{i}.png")
    (images / "3.png").write_bytes(b"not a png at all")
    model = load_model("lenet5", seed=0)
    out = tmp_path / "out"
    with pytest.raises(ImageError):
        activations(model, str(images), ["conv2d_1"], batch_size=2, out=out)
    assert not out.exists()  # made for the run, removed with its temporary files
    existing = tmp_path / "existing"
    existing.mkdir()
    with pytest.raises(ImageError):
        activations(model, str(images), ["conv2d_1"], batch_size=2, out=existing)
    assert list(existing.iterdir()) == []


def test_bad_input_is_one_clear_error(tmp_path: Path) -> None:
    model = load_model("lenet5", seed=0)
    with pytest.raises(ConvscopeError, match=r"batch size must be .* at least 1, got 0"):
        activations(model, "mnist:test:0-4", ["conv2d_1"], batch_size=0)
    with pytest.raises(LayerError, match="did you mean"):
        activations(model, "mnist:test:0-4", ["conv2d_l"])
    with pytest.raises(ConvscopeError, match=r"no split .tset."):
        activations(model, "mnist:tset:0-4", ["conv2d_1"])
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConvscopeError, match="needs a folder"):
        activations(model, "mnist:test:0-4", ["conv2d_1"], out=blocker)
    with pytest.raises(ConvscopeError, match="is a file"):
        activations(model, "mnist:test:0-4", ["conv2d_1"], out=blocker / "sub")
    (tmp_path / "dir" / "conv2d_1.npy").mkdir(parents=True)
    with pytest.raises(ConvscopeError, match="it is a folder"):
        activations(model, "mnist:test:0-4", ["conv2d_1"], out=tmp_path / "dir")
    with pytest.raises(LayerError, match=r"ran 1 time\(s\)"):
        activations(model, "mnist:test:0-4", ["conv2d_1"], call=1)
    net = nn.Sequential(nn.Conv2d(1, 2, 3))
    with pytest.raises(ImageError, match=r"bare nn\.Module"):
        activations(net, "mnist:test:0-4", ["0"])
    x = torch.randn(5, 1, 8, 8)
    got = activations(net, x, ["0"], batch_size=2)
    torch.testing.assert_close(torch.from_numpy(got["0"]), net(x).detach())
    assert feature_cmds.DEFAULT_BATCH_SIZE == streaming.DEFAULT_BATCH_SIZE


@pytest.mark.slow
def test_all_60000_training_images_stream_to_disk(tmp_path: Path) -> None:
    model = load_model("lenet5", seed=0)
    result = activations(model, "fashion-mnist:train:0-60000", ["dense_3"], out=tmp_path)
    assert result["dense_3"].shape == (60000, 10)
    np.testing.assert_array_equal(result.labels, load_dataset("fashion-mnist", "train").labels)
    rows = [0, 12345, 59999]
    expected = np.concatenate(
        [direct(model, f"fashion-mnist:train:{i}", ["dense_3"])["dense_3"] for i in rows]
    )
    np.testing.assert_allclose(result["dense_3"][rows], expected, rtol=0, atol=1e-5)
