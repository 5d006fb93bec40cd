"""Every command refuses an unwritable output path before it does any work, and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import assert_user_error, run


@pytest.mark.parametrize(
    "argv",
    [
        ["kernels", "lenet5", "--layer", "conv2d_1", "--npy", "{ok}/k.npy", "--out", "{dir}"],
        ["maximize", "lenet5", "--class", "all", "--out", "{missing}/m.png"],
        ["maximize", "lenet5", "--class", "0", "--npy", "{file}/m.npy"],
        ["features", "lenet5", "--image", "mnist:test:1", "--layers", "conv2d_1", "--out", "{dir}"],
        [
            "attribute",
            "lenet5",
            "--image",
            "mnist:test:1",
            "--method",
            "saliency",
            "--out",
            "{dir}",
        ],
        ["diagram", "lenet5", "--out", "{missing}/d.svg"],
        ["export-model", "lenet5", "--onnx", "{file}/m.onnx"],
        ["report", "architectures", "--out", "{dir}"],
        ["embed", "abc", "--layer", "hidden", "--scores-out", "{missing}/s.png"],
    ],
    ids=lambda argv: argv[0],
)
def test_unwritable_output_is_refused_before_any_work(capsys, tmp_path: Path, argv) -> None:
    (tmp_path / "dir.png").mkdir()
    (tmp_path / "file").write_text("x")
    places = {
        "ok": str(tmp_path),
        "dir": str(tmp_path / "dir.png"),
        "missing": str(tmp_path / "missing"),
        "file": str(tmp_path / "file"),
    }
    assert_user_error(run(capsys, *(a.format(**places) for a in argv)), "cannot write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.png", "file"]
    assert not any((tmp_path / "dir.png").iterdir())


def test_features_npy_writes_no_layer_when_one_file_cannot_be_written(
    capsys, tmp_path: Path
) -> None:
    arrays = tmp_path / "arrays"
    (arrays / "conv2d_1.npy").mkdir(parents=True)
    result = run(
        capsys,
        "features",
        "lenet5",
        "--image",
        "mnist:test:1",
        "--layers",
        "max_pooling2d_1,conv2d_1",
        "--npy",
        str(arrays),
    )
    assert_user_error(result, "conv2d_1.npy", "it is a folder")
    assert sorted(p.name for p in arrays.iterdir()) == ["conv2d_1.npy"]


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "lenet5", "--data", "mnist", "--store", "{file}/runs"],
        ["study", "--models", "lenet5", "--data", "mnist", "--store", "{ok}/s", "--out", "{file}"],
    ],
    ids=["train-store", "study-out"],
)
def test_a_folder_under_a_file_is_refused_before_training(capsys, tmp_path: Path, argv) -> None:
    (tmp_path / "file").write_text("x")
    places = {"file": str(tmp_path / "file"), "ok": str(tmp_path)}
    assert_user_error(run(capsys, *(a.format(**places) for a in argv)), "is a file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # no store was made
