"""Keras model files on the command line: summary, layers, predict, kernels, --preprocess.

The numbers compared come from Keras itself (tests/fixtures/keras, made by
tools/make_keras_fixtures.py); bad files must give one error line and exit 2.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from tests.cli import assert_user_error, run

FIXTURES = Path(__file__).parents[1] / "fixtures" / "keras"
META = json.loads((FIXTURES / "fixtures.json").read_text())


@pytest.mark.parametrize("name", ["branches", "resnet_stem"])
def test_summary_gives_keras_parameter_totals(capsys, name: str) -> None:
    status, out, _ = run(capsys, "summary", str(FIXTURES / f"{name}.keras"), "--json")
    assert status == 0
    summary = json.loads(out)
    assert summary["total_params"] == META[name]["params"]
    assert summary["trainable_params"] == META[name]["trainable"]
    assert summary["non_trainable_params"] == META[name]["non_trainable"]
    assert summary["input_shape"] == [META[name]["input_shape"][2], *META[name]["input_shape"][:2]]


def test_layers_are_named_like_keras(capsys) -> None:
    status, out, _ = run(capsys, "layers", str(FIXTURES / "lenet.keras2.h5"), "--json")
    assert status == 0
    names = [row["name"] for row in json.loads(out)]
    assert names == META["lenet"]["layers"]
    assert names[0] == "conv2d_1"


def test_predict_gives_keras_probabilities(capsys, tmp_path: Path) -> None:
    data = np.load(FIXTURES / "lenet.npz")
    image = tmp_path / "digit.png"
    Image.fromarray(data["pixels"][1, :, :, 0], mode="L").save(image)
    status, out, _ = run(
        capsys, "predict", str(FIXTURES / "lenet.keras"), "--image", str(image), "--json"
    )
    assert status == 0
    probs = np.array(json.loads(out)["predictions"][0]["probs"])
    np.testing.assert_allclose(probs, data["final"][1], rtol=0, atol=1e-5)


def test_kernels_npy_holds_the_keras_kernels(capsys, tmp_path: Path) -> None:
    out_npy, out_png = tmp_path / "k.npy", tmp_path / "k.png"
    status, _, err = run(
        capsys,
        "kernels",
        str(FIXTURES / "resnet_stem.h5"),
        "--layer",
        "conv1_conv",
        "--npy",
        str(out_npy),
        "--out",
        str(out_png),
    )
    assert status == 0, err
    with h5py.File(FIXTURES / "resnet_stem.h5", "r") as handle:
        kernel = np.asarray(handle["model_weights/conv1_conv/conv1_conv/kernel"])
    np.testing.assert_array_equal(np.load(out_npy), kernel.transpose(3, 2, 0, 1))
    assert out_png.stat().st_size > 0


def test_preprocess_option_reaches_the_input_spec(capsys, tmp_path: Path) -> None:
    data = np.load(FIXTURES / "resnet_stem.npz")
    image = tmp_path / "rgb.png"
    Image.fromarray(data["pixels"][0]).save(image)
    status, _, err = run(
        capsys,
        "features",
        str(FIXTURES / "resnet_stem.keras"),
        "--image",
        str(image),
        "--layers",
        "conv2_block1_out",
        "--preprocess",
        "caffe",
        "--npy",
        str(tmp_path / "maps"),
    )
    assert status == 0, err
    maps = np.load(tmp_path / "maps" / "conv2_block1_out.npy")
    expected = np.moveaxis(data["final_caffe"][:1], -1, 1)
    np.testing.assert_allclose(maps, expected, atol=1e-5 * float(np.abs(expected).max()))
    assert_user_error(
        run(capsys, "summary", str(FIXTURES / "lenet.keras"), "--preprocess", "caffe"),
        "1-channel",
    )
    assert_user_error(
        run(capsys, "summary", str(FIXTURES / "lenet.keras"), "--preprocess", "bgr"),
        "--preprocess",
    )


def test_unsupported_layer_is_one_line_and_exit_2(capsys, tmp_path: Path) -> None:
    source = FIXTURES / "lenet.keras"
    target = tmp_path / "lstm.keras"
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    config["config"]["layers"][3]["class_name"] = "LSTM"
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    assert_user_error(run(capsys, "summary", str(target)), "'conv2d_2'", "LSTM")


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_corrupt_and_truncated_files_are_one_line_and_exit_2(
    capsys, tmp_path: Path, suffix: str
) -> None:
    data = (FIXTURES / f"branches{suffix}").read_bytes()
    truncated = tmp_path / f"truncated{suffix}"
    truncated.write_bytes(data[: len(data) * 2 // 3])
    assert_user_error(run(capsys, "summary", str(truncated)), f"truncated{suffix}")
    corrupt = tmp_path / f"corrupt{suffix}"
    corrupt.write_bytes(data[:100] + bytes(200) + data[300:])  # headers, not raw weights
    assert_user_error(run(capsys, "layers", str(corrupt)), f"corrupt{suffix}")
    missing = tmp_path / f"missing{suffix}"
    assert_user_error(run(capsys, "summary", str(missing)), "no such file")


def test_predict_on_a_feature_extractor_says_it_needs_a_classifier(capsys) -> None:
    result = run(
        capsys, "predict", str(FIXTURES / "resnet_stem.keras"), "--image", "fashion-mnist:test:0"
    )
    assert_user_error(result, "outputs 1x256x8x8", "predict needs a classifier")
