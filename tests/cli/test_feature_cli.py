"""``convscope features`` and ``convscope explain``: files out, JSON, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.cli import assert_user_error, run


def test_features_writes_the_figure_and_raw_arrays(capsys, trained_lenet5, tmp_path) -> None:
    out, arrays = tmp_path / "maps.png", tmp_path / "new" / "arrays"
    status, stdout, err = run(
        capsys,
        "features",
        str(trained_lenet5),
        "--image",
        "mnist:test:12",
        "--layers",
        "max_pooling2d_1,max_pooling2d_2",
        "--out",
        str(out),
        "--npy",
        str(arrays),
    )
    assert status == 0 and stdout == ""
    assert out.read_bytes()[:4] == b"\x89PNG"
    pool1 = np.load(arrays / "max_pooling2d_1.npy")
    pool2 = np.load(arrays / "max_pooling2d_2.npy")
    assert pool1.shape == (1, 6, 12, 12) and pool2.shape == (1, 16, 4, 4)
    assert pool1.dtype == np.float32 and pool1.min() >= 0  # relu before the pool
    assert f"wrote {out}" in err and sorted(p.name for p in arrays.iterdir()) == [
        "_labels.npy",
        "_rows.txt",
        "max_pooling2d_1.npy",
        "max_pooling2d_2.npy",
    ]
    assert (arrays / "_rows.txt").read_text() == "mnist:test:12\n"
    # explain agrees with the saved map at the unit it explains.
    status, stdout, _ = run(
        capsys,
        "explain",
        str(trained_lenet5),
        "--layer",
        "max_pooling2d_1",
        "--image",
        "mnist:test:12",
        "--at",
        "5,6",
        "--json",
    )
    data = json.loads(stdout)
    assert status == 0 and data["kind"] == "maxpool" and data["matches"] is True
    assert data["actual"] == pytest.approx(float(pool1[0, data["channel"], 5, 6]))
    assert data["channel"] == int(np.argmax(pool1[0, :, 5, 6]))


def test_features_json_and_several_images(capsys, tmp_path) -> None:
    status, stdout, err = run(
        capsys,
        "features",
        "lenet5",
        "--image",
        "mnist:test:10-14",
        "--layers",
        "conv2d_1,dense_3",
        "--json",
    )
    data = json.loads(stdout)
    assert status == 0 and data["input"] == "mnist:test:10"
    assert [layer["shape"] for layer in data["layers"]] == [[1, 6, 24, 24], [1, 10]]
    assert "names 4 images; using the first, mnist:test:10" in err


def test_features_npy_writes_every_image_and_index_picks_the_figure(capsys, tmp_path) -> None:
    from convscope.data.datasets import load_dataset
    from convscope.models.loading import load_model
    from convscope.probe.features import feature_maps

    arrays, figure = tmp_path / "arrays", tmp_path / "maps.png"
    status, stdout, err = run(
        capsys, "features", "residual", "--seed", "0", "--image", "fashion-mnist:test:0-70",
        "--layers", "conv2D_1,hidden", "--npy", str(arrays), "--batch-size", "32",
        "--index", "3", "--out", str(figure), "--json",
    )  # fmt: skip
    assert status == 0, err
    conv, hidden = np.load(arrays / "conv2D_1.npy"), np.load(arrays / "hidden.npy")
    assert conv.shape == (70, 32, 28, 28) and hidden.shape == (70, 128)
    assert sorted(p.name for p in arrays.iterdir()) == [
        "_labels.npy",
        "_rows.txt",
        "conv2D_1.npy",
        "hidden.npy",
    ]
    model = load_model("residual", seed=0)
    for i in (0, 3, 31, 32, 69):  # rows across the batch boundaries are their images' outputs
        maps = feature_maps(model, f"fashion-mnist:test:{i}", ["conv2D_1", "hidden"])
        np.testing.assert_allclose(conv[i], maps.layer("conv2D_1").output[0], atol=1e-5)
        np.testing.assert_allclose(hidden[i], maps.layer("hidden").output[0], atol=1e-5)
    data = json.loads(stdout)
    label = load_dataset("fashion-mnist", "test").class_names[
        int(load_dataset("fashion-mnist", "test").labels[3])
    ]
    # The figure and the JSON are about image 3, and its numbers are row 3 of the arrays.
    assert data["input"] == "fashion-mnist:test:3" and data["label"] == label
    assert (data["index"], data["count"]) == (3, 70)
    assert data["layers"][1]["max"] == pytest.approx(float(hidden[3].max()), abs=1e-5)
    assert data["npy_shapes"] == {"conv2D_1": [70, 32, 28, 28], "hidden": [70, 128]}
    assert figure.read_bytes()[:4] == b"\x89PNG"
    assert "using image 3, fashion-mnist:test:3" in err and "--npy gets all of them" in err
    assert f"wrote {arrays / 'hidden.npy'}" in err


def test_features_npy_of_a_folder_and_a_range_beyond_the_old_cap(capsys, tmp_path) -> None:
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    for i in range(5):
        Image.new("L", (28, 28), 40 * i).save(images / f"{i}.png")
    status, _, err = run(
        capsys, "features", "lenet5", "--image", str(images), "--layers", "dense_3",
        "--npy", str(tmp_path / "a"), "--batch-size", "2",
    )  # fmt: skip
    assert status == 0, err
    assert np.load(tmp_path / "a" / "dense_3.npy").shape == (5, 10)
    assert "note" not in err  # --npy alone draws nothing, so there is no "using the first"
    status, _, err = run(
        capsys, "features", "lenet5", "--image", "mnist:test:0-1500", "--layers", "dense_3",
        "--npy", str(tmp_path / "b"), "--batch-size", "500",
    )  # fmt: skip
    assert status == 0, err
    assert np.load(tmp_path / "b" / "dense_3.npy").shape == (1500, 10)


def test_features_npy_failure_leaves_nothing(capsys, tmp_path) -> None:
    from PIL import Image

    images = tmp_path / "images"
    images.mkdir()
    for i in range(3):
        Image.new("L", (28, 28), 40 * i).save(images / f"{i}.png")
    (images / "3.png").write_bytes(b"broken")
    out = tmp_path / "out"
    result = run(
        capsys, "features", "lenet5", "--image", str(images), "--layers", "conv2d_1",
        "--npy", str(out), "--batch-size", "2",
    )  # fmt: skip
    assert_user_error(result, "3.png")
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--index", "4"], ["--index 4 is out of range", "names 4 image(s)", "0-3"]),
        (["--index", "-1"], ["--index counts from 0"]),
        (["--batch-size", "0", "--npy", "x"], ["--batch-size must be at least 1, got 0"]),
        (["--index", "two"], ["--index", "invalid int"]),
    ],
)
def test_features_bad_index_and_batch_size(capsys, argv, fragments) -> None:
    result = run(
        capsys, "features", "lenet5", "--image", "mnist:test:0-4", "--layers", "conv2d_1", *argv
    )
    assert_user_error(result, *fragments)


def test_features_unwritable_npy_folder(capsys, tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    base = ["features", "lenet5", "--image", "mnist:test:0-4", "--layers", "conv2d_1", "--npy"]
    assert_user_error(run(capsys, *base, str(blocker / "sub")), "cannot make folder", "is a file")
    (tmp_path / "d" / "conv2d_1.npy").mkdir(parents=True)
    assert_user_error(run(capsys, *base, str(tmp_path / "d")), "it is a folder")
    assert list((tmp_path / "d").iterdir()) == [tmp_path / "d" / "conv2d_1.npy"]


def test_features_help_says_what_index_and_npy_do(capsys) -> None:
    status, out, _ = run(capsys, "features", "--help")
    assert status == 0
    text = " ".join(out.split())
    assert "--index I" in text and "--batch-size B" in text
    assert "EVERY image the SPEC names" in text and "default 0, the first" in text


def test_explain_prints_the_arithmetic_and_draws_it(capsys, trained_lenet5, tmp_path) -> None:
    figure = tmp_path / "unit.png"
    status, stdout, err = run(
        capsys,
        "explain",
        str(trained_lenet5),
        "--layer",
        "conv2d_1",
        "--image",
        "mnist:test:12",
        "--at",
        "10,12",
        "--channel",
        "2",
        "--out",
        str(figure),
    )
    assert status == 0 and figure.stat().st_size > 0 and f"wrote {figure}" in err
    assert "unit (row 10, col 12) of output channel 2" in stdout
    assert "relu(total)" in stdout and "✓ equal" in stdout
    status, stdout, _ = run(
        capsys, "explain", str(trained_lenet5), "--layer", "conv2d_2", "--image",
        "mnist:test:12", "--at", "3,4", "--channel", "7", "--json",
    )  # fmt: skip
    data = json.loads(stdout)
    assert data["channel"] == 7 and data["at"] == [3, 4] and len(data["inputs"]) == 6
    assert data["total"] == pytest.approx(sum(i["sum"] for i in data["inputs"]) + data["bias"])
    assert data["matches"] is True and data["activation"] == "relu"


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--image", "mnist:tset:12", "--at", "0,0"], ["no split 'tset'"]),
        (["--image", "nothere.png", "--at", "0,0"], ["no such file"]),
        (["--image", "mnist:test:12", "--at", "24,3"], ["outside conv2d_1's 24x24", "0..23"]),
        (["--image", "mnist:test:12", "--at", "3"], ["--at", "ROW,COL"]),
        (["--image", "mnist:test:12", "--at", "1,1", "--channel", "9"], ["channels 0..5"]),
    ],
)
def test_explain_user_errors(capsys, argv: list[str], fragments: list[str]) -> None:
    result = run(capsys, "explain", "lenet5", "--layer", "conv2d_1", *argv)
    assert_user_error(result, *fragments)


def test_layer_errors(capsys, tmp_path: Path) -> None:
    result = run(
        capsys, "explain", "lenet5", "--layer", "dense_1", "--image", "mnist:test:0", "--at", "0,0"
    )
    assert_user_error(result, "cannot explain 'dense_1'", "Conv2d", "MaxPool2d")
    result = run(capsys, "features", "lenet5", "--image", "mnist:test:0", "--layers", "conv2d_l")
    assert_user_error(result, "no layer 'conv2d_l'", "did you mean")
    result = run(capsys, "features", "lenet5", "--image", "mnist:tst:0", "--layers", "conv2d_1")
    assert_user_error(result, "no split 'tst'")
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = run(
        capsys, "features", "lenet5", "--image", "mnist:test:0", "--layers", "conv2d_1",
        "--npy", str(blocker),
    )  # fmt: skip
    assert_user_error(result, "--npy needs a folder")
    result = run(
        capsys, "features", "lenet5", "--image", "mnist:test:0", "--layers", "conv2d_1",
        "--out", str(tmp_path / "maps.jpg"),
    )  # fmt: skip
    assert_user_error(result, ".png")


@pytest.mark.slow
def test_sigterm_mid_stream_leaves_nothing_behind(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "acts"
    command = [sys.executable, "-m", "convscope", "features", "residual", "--image",
               "fashion-mnist:train:0-60000", "--layers", "conv2D_1", "--npy", str(out)]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(out.glob(".*.part")) and time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        time.sleep(0.2)
    assert list(out.glob(".*.part")), "the stream never started"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143 and "convscope: terminated" in err
    assert not out.exists()  # partial files and the folder it made are gone


def test_batch_size_without_npy_is_noted(capsys) -> None:
    argv = ["features", "lenet5", "--image", "mnist:test:0", "--layers", "conv2d_1"]
    status, _, err = run(capsys, *argv, "--batch-size", "4", "--json")
    assert status == 0 and "--batch-size applies to --npy only" in err
    status, _, err = run(capsys, *argv, "--json")
    assert status == 0 and "--batch-size" not in err
