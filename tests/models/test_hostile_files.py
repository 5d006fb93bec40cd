"""Hostile files: pickles that would run code, Keras layers that are code, zip tricks.

Each is refused with one line, from every entry point that reads such a file, and the
payload never runs: the marker file it would create does not exist afterwards.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch

from convscope.errors import ModelError
from convscope.models.checkpoint import read_torch_file, save_checkpoint
from convscope.models.keras import load_keras
from convscope.models.keras.files import read_keras_file
from convscope.models.loading import load_model
from convscope.store import open_store
from tests.cli import assert_user_error, run

REFUSED_OS = "refused: the file's pickle would run code (os.system)"
WEIGHTS_ONLY = "convscope loads weights only — re-save it as a state dict or a convscope checkpoint"


class SystemPayload:
    """Unpickling this runs ``touch MARKER`` (pickled as posix.system / nt.system)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


class TouchPayload:
    """Unpickling this calls ``pathlib.Path(MARKER).touch()`` through a picklable callable."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def one_line(message: str) -> str:
    assert "\n" not in message and "\x1b" not in message, message
    return message


def hostile_checkpoint(path: Path, payload: Any) -> Path:
    """A file shaped like a convscope checkpoint whose pickle carries ``payload``."""
    state = load_model("lenet5").module.state_dict()
    torch.save({"format": "convscope-checkpoint", "state_dict": state, "extra": payload}, path)
    return path


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    path = tmp_path / "MARKER"
    yield path
    assert not path.exists(), "the hostile payload ran"


@pytest.fixture
def evil(tmp_path: Path, marker: Path) -> Path:
    return hostile_checkpoint(tmp_path / "evil.pth", SystemPayload(marker))


# --------------------------------------------------------------------------- pickles


def test_the_payloads_do_run_when_unpickled_without_weights_only(tmp_path: Path) -> None:
    """The payloads are real: a plain torch.load would have created the marker."""
    for payload_class in (SystemPayload, TouchPayload):
        marker = tmp_path / f"ran-{payload_class.__name__}"
        path = hostile_checkpoint(tmp_path / f"{payload_class.__name__}.pth", payload_class(marker))
        torch.load(path, weights_only=False)
        assert marker.exists()


def test_read_torch_file_refuses_and_names_what_would_run(tmp_path: Path, marker: Path) -> None:
    system = hostile_checkpoint(tmp_path / "system.pth", SystemPayload(marker))
    touch = hostile_checkpoint(tmp_path / "touch.pth", TouchPayload(marker))
    raw = tmp_path / "raw.pkl"  # a bare pickle, not a torch zip
    raw.write_bytes(__import__("pickle").dumps(SystemPayload(marker)))
    with pytest.raises(ModelError) as info:
        read_torch_file(system)
    assert one_line(str(info.value)) == f"{system}: {REFUSED_OS}; {WEIGHTS_ONLY}"
    with pytest.raises(ModelError) as info:
        read_torch_file(touch)
    assert "refused: the file's pickle would run code (getattr)" in one_line(str(info.value))
    with pytest.raises(ModelError) as info:
        read_torch_file(raw)
    assert "refused: " in one_line(str(info.value)) and WEIGHTS_ONLY in str(info.value)


def test_model_file_is_refused_by_the_library_and_the_cli(
    evil: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(
        ModelError, match=r"refused: the file's pickle would run code \(os\.system\)"
    ):
        load_model(str(evil))
    assert_user_error(run(capsys, "summary", str(evil)), REFUSED_OS, WEIGHTS_ONLY)


def test_weights_file_is_refused_by_the_library_and_the_cli(
    evil: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ModelError, match=r"refused: the file's pickle would run code"):
        load_model("lenet5", weights=evil)
    with pytest.raises(ModelError, match=r"refused: the file's pickle would run code"):
        load_model("lenet5", weights=str(evil))
    result = run(capsys, "kernels", "lenet5", "--weights", str(evil), "--layer", "conv2d_1")
    assert_user_error(result, REFUSED_OS)


def test_a_run_checkpoint_replaced_by_a_hostile_one_is_refused(
    tmp_path: Path, marker: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_dir = tmp_path / "store"
    status, _, err = run(
        capsys, "train", "lenet5", "--data", "mnist", "--epochs", "1", "--subset", "200",
        "--store", str(store_dir),
    )  # fmt: skip
    assert status == 0, err
    with open_store(store_dir, create=False) as store:
        (record,) = store.runs()
        checkpoints = store.checkpoints(record.id)
    for path in checkpoints.values():
        hostile_checkpoint(path, SystemPayload(marker))
    with pytest.raises(ModelError, match=r"refused: the file's pickle would run code"):
        load_model(f"run:{record.id}", store=store_dir)
    with pytest.raises(ModelError, match=r"refused: the file's pickle would run code"):
        load_model(f"run:{record.id}@0", store=store_dir)
    result = run(capsys, "summary", f"run:{record.id}", "--store", str(store_dir))
    assert_user_error(result, REFUSED_OS, WEIGHTS_ONLY)


def test_serve_refuses_a_hostile_model_at_start(tmp_path: Path, evil: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "convscope", "serve", "--model", str(evil), "--port", "0"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "CONVSCOPE_HOME": str(tmp_path / "home"), "CONVSCOPE_DEBUG": ""},
        timeout=300,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("convscope: error: --model ")
    assert REFUSED_OS in lines[0]


def test_a_real_checkpoint_still_loads(tmp_path: Path) -> None:
    path = save_checkpoint(load_model("lenet5"), tmp_path / "good.ckpt")
    assert load_model(str(path)).name == "lenet5"
    load_model("lenet5", weights=path)


# --------------------------------------------------------------------------- Keras layers


def keras_layer(class_name: str, name: str, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"module": "keras.layers", "class_name": class_name}
    entry.update(extra)
    entry.setdefault("config", {})
    entry["config"]["name"] = name
    entry.setdefault("registered_name", None)
    return entry


def sequential(*middle: dict[str, Any]) -> dict[str, Any]:
    layers = [
        keras_layer("InputLayer", "input", config={"batch_shape": [None, 8, 8, 1]}),
        *middle,
        keras_layer("Flatten", "flatten"),
        keras_layer("Dense", "dense", config={"units": 2, "activation": "linear"}),
    ]
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "m", "layers": layers},
    }


def weights_h5() -> bytes:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:  # the Dense layer's kernel and bias
        variables = handle.create_group("layers/dense/vars")
        variables.attrs["name"] = "dense"
        variables["0"] = np.ones((64, 2), dtype=np.float32)
        variables["1"] = np.zeros(2, dtype=np.float32)
    return buffer.getvalue()


def write_keras(path: Path, members: dict[str, bytes], *, deflate: bool = False) -> Path:
    compression = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def keras_file(path: Path, config: dict[str, Any], **more: bytes) -> Path:
    members = {"config.json": json.dumps(config).encode(), "model.weights.h5": weights_h5()}
    return write_keras(path, {**members, **more})


LAMBDA = keras_layer(
    "Lambda",
    "evil",
    config={"function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAA"}}},
)


def test_a_keras_lambda_layer_is_refused_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = keras_file(tmp_path / "lambda.keras", sequential(LAMBDA))
    with pytest.raises(ModelError) as info:
        load_keras(path)
    message = one_line(str(info.value))
    assert "layer 'evil' is a Lambda layer, which stores Python code" in message
    assert "convscope never runs code stored in or named by a model file" in message
    assert_user_error(run(capsys, "summary", str(path)), "Lambda", "never runs code")


def test_a_legacy_h5_lambda_layer_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "lambda.h5"
    with h5py.File(path, "w") as handle:
        handle.attrs["model_config"] = json.dumps(sequential(LAMBDA))
        handle.create_group("model_weights")
    with pytest.raises(ModelError, match=r"'evil' is a Lambda layer.*never runs code"):
        load_keras(path)


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        (keras_layer("TFOpLambda", "op", config={"function": "math.add"}), "TFOpLambda layer"),
        (keras_layer("MyLayer", "mine", module="mypackage.layers"), "mypackage.layers.MyLayer"),
        (
            keras_layer("Conv2D", "conv", module="mine", registered_name="Mine>Conv2D"),
            "Mine>Conv2D",
        ),
    ],
)
def test_layers_that_are_code_are_refused_by_name(
    tmp_path: Path, entry: dict[str, Any], named: str
) -> None:
    path = keras_file(tmp_path / "code.keras", sequential(entry))
    with pytest.raises(ModelError) as info:
        load_keras(path)
    message = one_line(str(info.value))
    assert named in message and "never runs code" in message


# --------------------------------------------------------------------------- zip tricks


def good_members() -> dict[str, bytes]:
    return {"config.json": json.dumps(sequential()).encode(), "model.weights.h5": weights_h5()}


def test_the_hand_made_keras_file_loads(tmp_path: Path) -> None:
    """The base of the zip-trick files is itself a valid model, so only the trick is refused."""
    model = load_keras(write_keras(tmp_path / "good.keras", good_members()))
    assert model.module(torch.zeros(1, 1, 8, 8)).shape == (1, 2)


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/x", "assets/../../evil.txt", "C:/x"])
def test_member_names_pointing_outside_are_refused(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "inside"
    folder.mkdir()
    path = write_keras(folder / "escape.keras", {**good_members(), name: b"pwned"})
    with pytest.raises(ModelError) as info:
        read_keras_file(path)
    message = one_line(str(info.value))
    assert "refused: the .keras archive has a member named" in message and name in message
    assert not (tmp_path / "evil.txt").exists() and not (folder / "evil.txt").exists()
    assert sorted(os.listdir(folder)) == ["escape.keras"]


def test_a_config_declared_past_its_limit_is_refused_unread(tmp_path: Path) -> None:
    members = {**good_members(), "config.json": bytes(65 << 20)}  # 65 MB of zeros, ~66 kB
    path = write_keras(tmp_path / "bomb.keras", members, deflate=True)
    assert path.stat().st_size < 1 << 20
    with pytest.raises(ModelError) as info:
        read_keras_file(path)
    message = one_line(str(info.value))
    assert "refused: the .keras member config.json inflates past 64 MB (a zip bomb" in message


def test_a_member_inflating_over_a_thousand_fold_is_refused(tmp_path: Path) -> None:
    members = {**good_members(), "model.weights.h5": bytes(8 << 20)}  # ~1028-fold
    path = write_keras(tmp_path / "ratio.keras", members, deflate=True)
    with pytest.raises(ModelError) as info:
        read_keras_file(path)
    message = one_line(str(info.value))
    assert "'model.weights.h5' inflates 10" in message and "more than 1000-fold" in message


def test_a_member_whose_declared_size_lies_is_still_refused(tmp_path: Path) -> None:
    """Declared 100 bytes, really 8 MB: nothing inflates past the claim (zipfile stops
    there, the CRC then fails) and the one line says the file is damaged."""
    path = write_keras(
        tmp_path / "liar.keras",
        {**good_members(), "model.weights.h5": bytes(8 << 20)},
        deflate=True,
    )
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("model.weights.h5")
    real = info.file_size.to_bytes(4, "little")
    assert data.count(real) == 2  # the local header and the central directory entry
    path.write_bytes(bytes(data).replace(real, (100).to_bytes(4, "little")))
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("model.weights.h5").file_size == 100
    with pytest.raises(ModelError) as info_error:
        read_keras_file(path)
    message = one_line(str(info_error.value))
    assert message.startswith(f"{path}: a damaged or truncated .keras file (Bad CRC-32")
