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
        "max_pooling2d_1.npy",
        "max_pooling2d_2.npy",
    ]
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
