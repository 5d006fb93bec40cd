"""The CLI contract: JSON keys, one-line errors with exit status 2, real subprocess runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from convscope import __version__
from convscope.data.datasets import load_dataset
from convscope.models.checkpoint import save_checkpoint
from convscope.models.loading import load_model
from tests.cli import assert_user_error, run

BIN = Path(sys.executable).parent


def test_version(capsys) -> None:
    status, out, _ = run(capsys, "--version")
    assert status == 0 and out.strip() == f"convscope {__version__}"


def test_models_json(capsys) -> None:
    status, out, _ = run(capsys, "models", "--json")
    assert status == 0
    models = {m["name"]: m for m in json.loads(out)}
    assert {"name", "params", "input_shape", "description"} <= set(models["lenet"])
    assert models["lenet"]["params"] == 656_080
    assert models["inception-residual"]["params"] == 106_410
    assert models["lenet5-classic"]["input_shape"] == [1, 32, 32]


def test_summary_json_contract(capsys) -> None:
    status, out, _ = run(capsys, "summary", "inception", "--json")
    data = json.loads(out)
    assert status == 0 and data["total_params"] == 169_130
    assert data["layers"][0] == {
        "name": "conv2D_1",
        "type": "SameConv2d",
        "depth": 1,
        "output_shape": [1, 32, 28, 28],
        "params": 160,
        "trainable_params": 160,
    }


def test_layers_lists_nested_names(capsys) -> None:
    status, out, _ = run(capsys, "layers", "torchvision:resnet18", "--json")
    names = [row["name"] for row in json.loads(out)]
    assert status == 0 and "layer4.1.bn2" in names and "fc" in names


def test_predict_json_contract(capsys, tmp_path: Path) -> None:
    model = load_model("sequential", seed=0)
    model.class_names = tuple(f"class {i}" for i in range(10))
    ckpt = save_checkpoint(model, tmp_path / "seq.ckpt")
    status, out, _ = run(
        capsys, "predict", str(ckpt), "--image", "fashion-mnist:test:0-3", "--json"
    )
    assert status == 0
    predictions = json.loads(out)["predictions"]
    assert [p["input"] for p in predictions] == [f"fashion-mnist:test:{i}" for i in range(3)]
    assert all(len(p["probs"]) == 10 and abs(sum(p["probs"]) - 1) < 1e-4 for p in predictions)
    assert predictions[0]["top"][0][0].startswith("class ")
    first = torch.from_numpy(load_dataset("fashion-mnist", "test").images[:1])
    expected = torch.softmax(model.module.eval()(model.input_spec.normalize(first)), 1)[0]
    assert predictions[0]["probs"] == pytest.approx(expected.tolist(), abs=1e-5)


def test_data_list_json_contract(capsys) -> None:
    status, out, _ = run(capsys, "data", "list", "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert status == 0 and set(rows) == {"mnist", "fashion-mnist"}
    assert set(rows["mnist"]) == {"name", "splits", "source", "path", "verified"}
    assert rows["fashion-mnist"]["splits"] == {"train": 60000, "test": 10000}


def test_train_json_on_a_subset(capsys, tmp_path: Path) -> None:
    ckpt = tmp_path / "l5.ckpt"
    status, out, _ = run(
        capsys,
        "train",
        "lenet5",
        "--data",
        "fashion-mnist",
        "--subset",
        "500",
        "--epochs",
        "1",
        "--save",
        str(ckpt),
        "--store",
        str(tmp_path / "runs"),
        "--json",
    )
    data = json.loads(out)
    assert status == 0 and 0 <= data["test_acc"] <= 1
    assert set(data["metrics"][0]) >= {"epoch", "train_loss", "train_acc", "val_loss", "val_acc"}
    reloaded = load_model(str(ckpt))
    assert reloaded.class_names[0] == "T-shirt/top" and reloaded.dataset == "fashion-mnist"


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["summary", "lenet9"], ["unknown model 'lenet9'", "did you mean lenet"]),
        (["summary"], ["required: MODEL"]),
        (["summary", "lenet", "--depth", "0"], ["--depth"]),
        (["summary", "lenet", "--input-shape", "3x32x32"], ["C,H,W"]),
        (["predict", "lenet", "--image", "mnist:test:99999"], ["out of range"]),
        (["predict", "lenet", "--image", "nowhere.png"], ["nowhere.png"]),
        (["predict", "lenet", "--image", "fashion-mnist:valid:0"], ["valid"]),
        (["data", "fetch", "cifar"], ["cifar"]),
        (["train", "lenet", "--data", "fashion-mnist", "--epochs", "0"], ["epochs"]),
        (["nosuchcommand"], ["nosuchcommand"]),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(
    capsys, argv: list[str], fragments: list[str]
) -> None:
    assert_user_error(run(capsys, *argv), *fragments)


def test_corrupt_checkpoint_and_bad_image(capsys, tmp_path: Path) -> None:
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"\x00" * 100)
    assert_user_error(run(capsys, "summary", str(broken)), "broken.ckpt")
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    assert_user_error(run(capsys, "predict", "lenet", "--image", str(not_an_image)), "notes.png")


def test_real_console_script_and_module_entry_points(tmp_path: Path) -> None:
    env = {**os.environ, "CONVSCOPE_DEBUG": ""}
    script = subprocess.run(
        [BIN / "convscope", "summary", "nope"], capture_output=True, text=True, env=env, check=False
    )
    assert script.returncode == 2
    assert script.stderr.startswith("convscope: error: unknown model 'nope'")
    module = subprocess.run(
        [sys.executable, "-m", "convscope", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert module.returncode == 0 and module.stdout.strip() == f"convscope {__version__}"


def test_debug_shows_the_traceback() -> None:
    env = {**os.environ, "CONVSCOPE_DEBUG": "1"}
    result = subprocess.run(
        [BIN / "convscope", "summary", "nope"], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode != 0 and "Traceback" in result.stderr


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--data", "cifar"], "cifar"),
        (["--data", "mnist", "--subset", "5"], "--subset must be at least 20"),
        (["--data", "mnist", "--seed", "-1"], "seed must be from 0"),
        (["--data", "mnist", "--weight-decay", "-1"], "weight decay must be 0 or more"),
        (["--data", "mnist", "--validation", "val"], "no split 'val'"),
    ],
)
def test_a_refused_train_leaves_no_run_behind(capsys, tmp_path: Path, extra, fragment) -> None:
    store = tmp_path / "runs"
    argv = ["train", "lenet5", "--epochs", "1", "--store", str(store), *extra]
    assert_user_error(run(capsys, *argv), fragment)
    if store.exists():
        assert run(capsys, "runs", "list", "--store", str(store), "--json")[1].strip() == "[]"


def test_a_diverged_run_warns_and_prints_strict_json(capsys, tmp_path: Path) -> None:
    status, out, err = run(
        capsys,
        "train",
        "lenet5",
        "--data",
        "mnist",
        "--subset",
        "500",
        "--epochs",
        "1",
        "--lr",
        "1e8",
        "--optimizer",
        "sgd",
        "--store",
        str(tmp_path / "runs"),
        "--json",
    )
    assert status == 0 and "the run diverged; train again with a lower --lr" in err
    assert json.loads(out)["metrics"][1]["train_loss"] is None  # NaN is not JSON
