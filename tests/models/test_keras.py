"""Keras import: outputs, weights and parameter counts match Keras' own (recorded) numbers.

The fixtures in tests/fixtures/keras were made by tools/make_keras_fixtures.py in a
separate TensorFlow venv: each model as ``.keras``, Keras 3 ``.h5`` and a Keras 2
layout ``.keras2.h5``, plus Keras' outputs for fixed inputs (``.npz``) and its
parameter totals (``fixtures.json``). No TensorFlow is needed here.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch
from torch import fx

from convscope.errors import ModelError
from convscope.models.checkpoint import save_checkpoint
from convscope.models.keras import KerasGraph, build_keras, load_keras
from convscope.models.keras.config import parse_model_config
from convscope.models.keras.files import read_keras_file, to_snake_case
from convscope.models.keras.graph import build_graph, load_graph_weights
from convscope.models.keras.modules import tf_same_pads
from convscope.models.loading import load_model
from convscope.probe.activations import capture
from convscope.probe.kernels.weights import kernel_set
from convscope.probe.predict import probabilities
from convscope.probe.summary import summarize

FIXTURES = Path(__file__).parents[1] / "fixtures" / "keras"
META = json.loads((FIXTURES / "fixtures.json").read_text())
MODELS = ["lenet", "branches", "resnet_stem", "layer_zoo"]
FORMATS = [".keras", ".h5", ".keras2.h5"]
TOL = 1e-5

# Flatten outputs (and the order-free layers after them) that convscope keeps in
# PyTorch's (C, H, W) order, reordering the next Dense layer's rows instead;
# value: the Keras shape that was flattened.
TORCH_ORDER = {
    "lenet": {"flatten_1": (5, 5, 8), "dropout_1": (5, 5, 8)},
    "branches": {"flatten": (7, 7, 8)},
    "layer_zoo": {"flatten": (2, 2, 4), "flat_seq": (4, 3)},
}


def keras_layout(value: torch.Tensor) -> np.ndarray:
    """A channels-first tensor in Keras' channels-last layout."""
    array = value.detach().numpy()
    if array.ndim >= 3:
        array = np.moveaxis(array, 1, -1)
    return array


def keras_to_chw_flat(flat: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A Keras flat vector (channels-last order) reordered as a channels-first flatten."""
    return np.stack([np.moveaxis(row.reshape(shape), -1, 0).ravel() for row in flat])


def nchw(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(array, -1, 1)))


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    return {name: dict(np.load(FIXTURES / f"{name}.npz")) for name in MODELS}


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("name", MODELS)
def test_outputs_match_keras(name: str, suffix: str, recorded: dict[str, Any]) -> None:
    data = recorded[name]
    model = load_keras(FIXTURES / f"{name}{suffix}")
    layers = META[name]["recorded"]
    with torch.no_grad(), capture(model.module, layers) as captured:
        final = model.module(nchw(data["inputs"]))
    np.testing.assert_allclose(keras_layout(final), data["final"], rtol=0, atol=TOL)
    for layer in layers:
        ours, theirs = keras_layout(captured.output(layer)), data[f"layer/{layer}"]
        if layer in TORCH_ORDER.get(name, {}):
            theirs = keras_to_chw_flat(theirs, TORCH_ORDER[name][layer])
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOL, err_msg=layer)


@pytest.mark.parametrize("name", MODELS)
def test_default_preprocessing_feeds_what_keras_was_fed(
    name: str, recorded: dict[str, Any]
) -> None:
    data = recorded[name]
    model = load_keras(FIXTURES / f"{name}.keras")
    batch = model.input_spec.normalize(data["pixels"])
    # pixels / 255, or raw pixels for the model that starts with Rescaling (layer_zoo);
    # InputSpec's (x / 255 - 0) / (1 / 255) is within a float32 rounding of x.
    np.testing.assert_allclose(keras_layout(batch), data["inputs"], rtol=1e-6, atol=1e-7)
    expected = "none" if name == "layer_zoo" else "scale"
    assert model.input_spec.extra["preprocess"] == expected
    with torch.no_grad():
        output = model.module(batch)
    np.testing.assert_allclose(keras_layout(output), data["final"], rtol=0, atol=TOL)


@pytest.mark.parametrize("name", ["lenet", "branches", "layer_zoo"])
def test_softmax_models_are_not_softmaxed_again(name: str, recorded: dict[str, Any]) -> None:
    data = recorded[name]
    model = load_keras(FIXTURES / f"{name}.h5")
    assert model.outputs_probabilities
    probs = probabilities(model, nchw(data["inputs"])).numpy()
    np.testing.assert_allclose(probs, data["final"], rtol=0, atol=TOL)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_resnet_stem_does_not_end_in_softmax() -> None:
    assert not load_keras(FIXTURES / "resnet_stem.keras").outputs_probabilities


@pytest.mark.parametrize("name", MODELS)
def test_parameter_totals_are_keras_count_params(name: str) -> None:
    expected = META[name]
    for suffix in (".keras", ".keras2.h5"):
        summary = summarize(load_keras(FIXTURES / f"{name}{suffix}"))
        assert summary.total_params == expected["params"]
        assert summary.trainable_params == expected["trainable"]
        assert summary.non_trainable_params == expected["non_trainable"]


@pytest.mark.parametrize("name", MODELS)
def test_module_names_are_the_keras_layer_names(name: str) -> None:
    model = load_keras(FIXTURES / f"{name}.keras")
    children = [n for n, _ in model.module.named_children()]
    keras_layers = [n for n in META[name]["layers"] if n not in ("image", "input_layer_1")]
    assert children == keras_layers
    assert isinstance(model.module, KerasGraph)


def test_kernels_are_keras_kernels_in_oihw() -> None:
    path = FIXTURES / "lenet.h5"
    with h5py.File(path, "r") as handle:  # Keras 3 layout: <layer>/<model>/<layer>/kernel
        keras_kernel = np.asarray(handle["model_weights/conv2d_1/lenet/conv2d_1/kernel"])
        keras_bias = np.asarray(handle["model_weights/conv2d_1/lenet/conv2d_1/bias"])
    kernels = kernel_set(load_model(str(path)), "conv2d_1")
    assert keras_kernel.shape == (5, 5, 1, 6)
    np.testing.assert_array_equal(kernels.weights, keras_kernel.transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(kernels.bias, keras_bias)
    assert kernels.channel_order == "gray"


def test_depthwise_kernels_follow_tensorflow_channel_order() -> None:
    with h5py.File(FIXTURES / "layer_zoo.keras2.h5", "r") as handle:
        kernel = np.asarray(handle["model_weights/depthwise/depthwise/depthwise_kernel:0"])
    weight = kernel_set(load_keras(FIXTURES / "layer_zoo.keras2.h5"), "depthwise").weights
    kh, kw, channels, multiplier = kernel.shape
    assert weight.shape == (channels * multiplier, 1, kh, kw)
    for c in range(channels):
        for m in range(multiplier):
            np.testing.assert_array_equal(weight[c * multiplier + m, 0], kernel[:, :, c, m])


def test_keras_batchnorm_keeps_its_epsilon_momentum_and_statistics() -> None:
    module = load_keras(FIXTURES / "layer_zoo.keras").module
    bn = module.bn
    assert bn.eps == pytest.approx(1e-2) and bn.momentum == pytest.approx(0.1)
    assert bn.weight is None and bn.bias is not None  # scale=False: no gamma, as in Keras
    stem = load_keras(FIXTURES / "resnet_stem.keras").module.conv1_bn
    assert stem.eps == pytest.approx(1.001e-5)
    assert float(stem.running_var.min()) > 0.5  # the fixture's non-trivial statistics


def test_three_file_layouts_hold_identical_weights() -> None:
    for name in MODELS:
        states = [load_keras(FIXTURES / f"{name}{s}").module.state_dict() for s in FORMATS]
        for state in states[1:]:
            assert state.keys() == states[0].keys()
            for key, value in state.items():
                torch.testing.assert_close(value, states[0][key], rtol=0, atol=0)


def test_the_fixture_layouts_are_the_ones_claimed() -> None:
    with h5py.File(FIXTURES / "branches.h5", "r") as handle:  # Keras 3, Functional
        names = list(handle["model_weights/hidden"].attrs["weight_names"])
        assert names == ["hidden/kernel", "hidden/bias"]
    with h5py.File(FIXTURES / "lenet.h5", "r") as handle:  # Keras 3, with the model name
        names = list(handle["model_weights/dense_1"].attrs["weight_names"])
        assert names == ["lenet/dense_1/kernel", "lenet/dense_1/bias"]
    with h5py.File(FIXTURES / "lenet.keras2.h5", "r") as handle:  # Keras 2
        assert handle["model_weights/dense_1"].attrs["weight_names"][0] == b"dense_1/kernel:0"
        config = json.loads(handle.attrs["model_config"])
        assert config["config"]["layers"][0]["class_name"] == "Conv2D"  # no InputLayer
    with h5py.File(FIXTURES / "branches.keras2.h5", "r") as handle:
        config = json.loads(handle.attrs["model_config"])
        assert config["config"]["layers"][1]["inbound_nodes"] == [[["image", 0, 0, {}]]]


def test_checkpoint_rebuilds_without_the_keras_file(tmp_path: Path) -> None:
    copy = tmp_path / "branches.keras"
    shutil.copy(FIXTURES / "branches.keras", copy)
    model = load_model(str(copy), preprocess="tf")
    checkpoint = save_checkpoint(model, tmp_path / "branches.ckpt")
    copy.unlink()
    again = load_model(str(checkpoint))
    x = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(again.module(x), model.module(x), rtol=0, atol=0)
    assert again.input_spec == model.input_spec and again.input_spec.mean == (0.5,)
    assert again.outputs_probabilities and again.build["source"] == "keras"
    assert [n for n, _ in again.module.named_children()] == META["branches"]["layers"][
        1:
    ]  # no input


def test_caffe_preprocessing_matches_keras_applications(recorded: dict[str, Any]) -> None:
    data = recorded["resnet_stem"]
    model = load_model(str(FIXTURES / "resnet_stem.keras"), preprocess="caffe")
    batch = model.input_spec.normalize(data["pixels"])
    # x / 255 then (x - m / 255) / (1 / 255): float32 rounding on values up to ~150
    np.testing.assert_allclose(keras_layout(batch), data["inputs_caffe"], rtol=0, atol=1e-4)
    with torch.no_grad():
        exact = model.module(nchw(data["inputs_caffe"]))
        fed = model.module(batch)
    # Unscaled 0..255 inputs make every sum ~100x larger: the same float32 accuracy,
    # relative to the size of the outputs (up to ~130 here).
    scale = float(np.abs(data["final_caffe"]).max())
    np.testing.assert_allclose(keras_layout(exact), data["final_caffe"], atol=TOL * scale)
    np.testing.assert_allclose(keras_layout(fed), data["final_caffe"], atol=TOL * scale)


def test_preprocess_overrides_any_model_and_refuses_impossible_modes() -> None:
    lenet = load_model("lenet", preprocess="none")
    assert lenet.input_spec.std == (pytest.approx(1 / 255),)
    pixels = np.full((1, 28, 28), 200, dtype=np.uint8)
    assert float(lenet.input_spec.normalize(pixels).max()) == pytest.approx(200, rel=1e-6)
    torch_mode = load_model(str(FIXTURES / "resnet_stem.h5"), preprocess="torch").input_spec
    assert torch_mode.mean == pytest.approx((0.485, 0.456, 0.406))
    with pytest.raises(ModelError, match=r"1-channel"):
        load_model(str(FIXTURES / "lenet.keras"), preprocess="caffe")
    with pytest.raises(ModelError, match="unknown preprocessing"):
        load_model("lenet", preprocess="sideways")


@pytest.mark.parametrize("name", MODELS)
def test_graph_traces_with_torch_fx(name: str, recorded: dict[str, Any]) -> None:
    model = load_keras(FIXTURES / f"{name}.keras")
    traced = fx.symbolic_trace(model.module)
    x = nchw(recorded[name]["inputs"])
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model.module(x), rtol=0, atol=0)


# --------------------------------------------------------------------------- hand-made configs


def layer(class_name: str, name: str, inbound: list[str] | None = None, **config: Any) -> dict:
    """A Keras 2 style Functional layer entry."""
    entry = {"class_name": class_name, "config": {"name": name, **config}, "name": name}
    entry["inbound_nodes"] = [[[src, 0, 0, {}] for src in inbound]] if inbound else []
    return entry


def functional(layers: list[dict], output: str, shape: list[Any]) -> dict:
    layers = [layer("InputLayer", "in", batch_input_shape=[None, *shape]), *layers]
    return {
        "class_name": "Functional",
        "config": {
            "name": "handmade",
            "layers": layers,
            "input_layers": [["in", 0, 0]],
            "output_layers": [[output, 0, 0]],
        },
    }


def test_merges_and_activations_from_a_keras2_config() -> None:
    config = functional(
        [
            layer("Activation", "tanh", ["in"], activation="tanh"),
            layer("ReLU", "thr", ["in"], max_value=0.8, negative_slope=0.1, threshold=0.2),
            layer("Subtract", "sub", ["tanh", "thr"]),
            layer("Multiply", "mul", ["tanh", "thr"]),
            layer("Average", "avg", ["sub", "mul", "in"]),
            layer("Maximum", "max", ["avg", "tanh"]),
            layer("Minimum", "min", ["max", "thr"]),
            layer("ELU", "elu", ["min"], alpha=0.5),
            layer("Softmax", "rows", ["elu"], axis=1),
        ],
        "rows",
        [5, 4, 3],
    )
    model = build_keras({"config": config})
    x = np.random.default_rng(0).normal(size=(2, 5, 4, 3)).astype(np.float32)
    tanh = np.tanh(x)
    # Keras ReLU: x above the threshold (clipped to max_value), else slope * (x - threshold)
    thr = np.where(x > 0.2, np.minimum(x, 0.8), 0.0) - 0.1 * np.maximum(0.2 - x, 0)
    avg = ((tanh - thr) + tanh * thr + x) / 3
    low = np.minimum(np.maximum(avg, tanh), thr)
    elu = np.where(low > 0, low, 0.5 * (np.exp(low) - 1))
    expected = np.exp(elu) / np.exp(elu).sum(axis=1, keepdims=True)  # Keras axis 1 = rows
    with torch.no_grad():
        out = model.module(nchw(x))
    np.testing.assert_allclose(keras_layout(out), expected, rtol=1e-5, atol=1e-6)
    assert not model.outputs_probabilities  # softmax over rows is not class probabilities


def test_same_padding_at_run_time_for_models_of_any_size() -> None:
    conv = {"filters": 2, "kernel_size": [3, 3], "strides": [2, 2], "padding": "same"}
    pool = {"pool_size": [2, 2], "strides": [2, 2], "padding": "same"}
    layers = [
        layer("Conv2D", "conv", ["in"], **conv),
        layer("MaxPooling2D", "maxp", ["conv"], **pool),
        layer("AveragePooling2D", "avgp", ["conv"], **pool),
        layer("Add", "sum", ["maxp", "avgp"]),
    ]
    with pytest.raises(ModelError, match=r"any size.*--input-shape"):
        build_keras({"config": functional(layers, "sum", [None, None, 3])})
    any_size = functional(layers, "sum", [None, None, 3])
    dynamic = build_keras({"config": any_size, "input_shape": [3, 10, 10]})
    static = build_keras({"config": functional(layers, "sum", [10, 10, 3])})
    assert dynamic.input_spec.shape == (3, 10, 10)
    assert static.module.conv.pad.pads == (0, 1, 0, 1) and dynamic.module.conv.pad.pads is None
    assert static.module.maxp.pad.pads == (0, 1, 0, 1) and static.module.avgp.pads == (0, 1, 0, 1)
    static.module.load_state_dict(dynamic.module.state_dict())
    x = torch.randn(1, 3, 10, 10)
    with torch.no_grad():
        torch.testing.assert_close(dynamic.module(x), static.module(x), rtol=0, atol=0)


def test_inputs_without_a_channel_axis_flatten_like_keras() -> None:
    """A model on (H, W) inputs (an MNIST MLP): Flatten + Dense, checked against numpy."""
    config = functional(
        [
            layer("Flatten", "flat", ["in"]),
            layer("Dense", "dense", ["flat"], units=3, activation="softmax"),
        ],
        "dense",
        [4, 5],
    )
    spec = parse_model_config(config, source="mlp")
    plan = build_graph(spec, source="mlp")
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(20, 3)).astype(np.float32)
    bias = rng.normal(size=3).astype(np.float32)
    load_graph_weights(plan, spec, {"dense": [kernel, bias]}, source="mlp")
    model = build_keras({"config": config})
    assert model.input_spec.shape == (1, 4, 5) and model.outputs_probabilities
    x = rng.normal(size=(2, 4, 5)).astype(np.float32)
    logits = x.reshape(2, 20) @ kernel + bias
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    with torch.no_grad():
        out = plan.module(torch.from_numpy(x)[:, None])
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_tensorflow_same_padding_formula() -> None:
    # 28 -> 14 with a 3x3 stride-2 kernel needs one row: TensorFlow puts it at the bottom.
    assert tf_same_pads((28, 28), (3, 3), (2, 2), (1, 1)) == (0, 1, 0, 1)
    assert tf_same_pads((7, 8), (3, 3), (2, 2), (1, 1)) == (0, 1, 1, 1)
    assert tf_same_pads((5, 5), (2, 2), (1, 1), (1, 1)) == (0, 1, 0, 1)
    assert tf_same_pads((6, 6), (1, 1), (2, 2), (1, 1)) == (0, 0, 0, 0)
    assert to_snake_case("BatchNormalization") == "batch_normalization"
    assert to_snake_case("ReLU") == "re_lu" and to_snake_case("Conv2D") == "conv2d"


# --------------------------------------------------------------------------- bad files


def rewrite_keras(source: Path, target: Path, edit) -> Path:
    """Copy a .keras archive with its config.json edited by ``edit(config)``."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    edit(config)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


def test_unsupported_layer_names_the_layer_and_class(tmp_path: Path) -> None:
    def to_conv3d(config: dict) -> None:
        config["config"]["layers"][2]["class_name"] = "Conv3D"

    path = rewrite_keras(FIXTURES / "lenet.keras", tmp_path / "odd.keras", to_conv3d)
    with pytest.raises(ModelError, match=r"'max_pooling2d_1' is a Conv3D.*supported: "):
        load_keras(path)


def test_weights_from_the_old_class_position_layout(tmp_path: Path) -> None:
    """Early Keras 3 files have no layer names in model.weights.h5: map conv2d_1 by order."""
    with zipfile.ZipFile(FIXTURES / "branches.keras") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    buffer = io.BytesIO(members["model.weights.h5"])
    with h5py.File(buffer, "r+") as handle:
        for key in handle["layers"]:
            if "vars" in handle["layers"][key]:
                del handle["layers"][key]["vars"].attrs["name"]
    members["model.weights.h5"] = buffer.getvalue()
    target = tmp_path / "unnamed.keras"
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    old = load_keras(target).module.state_dict()
    new = load_keras(FIXTURES / "branches.keras").module.state_dict()
    for key, value in new.items():
        torch.testing.assert_close(old[key], value, rtol=0, atol=0)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_truncated_and_garbage_files_are_one_clear_error(tmp_path: Path, suffix: str) -> None:
    data = (FIXTURES / f"branches{suffix}").read_bytes()
    for label, content in {
        "truncated": data[: len(data) // 2],
        "garbage": b"this is not a model" * 10,
        "empty": b"",
    }.items():
        path = tmp_path / f"{label}{suffix}"
        path.write_bytes(content)
        with pytest.raises(ModelError) as info:
            read_keras_file(path)
        message = str(info.value)
        assert "\n" not in message and str(path) in message


def test_weights_only_h5_and_mismatched_weights(tmp_path: Path) -> None:
    weights_only = tmp_path / "weights.h5"
    with h5py.File(weights_only, "w") as handle:
        handle.attrs["layer_names"] = np.array([b"dense"])
    with pytest.raises(ModelError, match="weights only"):
        load_keras(weights_only)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as handle:
        handle["data"] = np.zeros(3)
    with pytest.raises(ModelError, match="an HDF5 file but not a Keras model"):
        load_keras(other)

    def wider(config: dict) -> None:
        config["config"]["layers"][-1]["config"]["units"] = 11

    path = rewrite_keras(FIXTURES / "lenet.keras", tmp_path / "wider.keras", wider)
    with pytest.raises(ModelError, match=r"'dense_2'.*shape"):
        load_keras(path)


def test_missing_h5py_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py fails
    with pytest.raises(ModelError, match=r"convscope\[keras\]"):
        load_keras(FIXTURES / "lenet.keras")
