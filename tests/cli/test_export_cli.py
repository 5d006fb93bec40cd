"""``convscope export`` (TensorBoard) and ``export-model`` (ONNX): JSON, output, one-line errors."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import onnx
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from convscope.export.onnx import read_metadata
from tests.cli import assert_user_error, run


def test_export_json(capsys, recorded_runs, tmp_path: Path) -> None:
    root, (run_id, _) = recorded_runs
    result = run(
        capsys,
        "export",
        run_id[:5],
        "--tensorboard",
        str(tmp_path),
        "--store",
        str(root),
        "--layers",
        "conv2D_1,hidden",
        "--json",
    )
    status, out, _ = result
    assert status == 0
    data = json.loads(out)
    assert set(data) == {"run", "dir", "scalars", "images", "embeddings"}
    assert data["run"] == run_id and data["dir"] == str(tmp_path / run_id)
    assert (data["images"], data["embeddings"]) == (3, 3)
    events = EventAccumulator(data["dir"], size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    assert data["scalars"] == sum(len(events.Scalars(t)) for t in events.Tags()["scalars"])
    assert events.Tags()["images"] == ["kernels/conv2D_1"]


def test_export_for_people_and_the_errors(capsys, recorded_runs, tmp_path: Path) -> None:
    root, (_, run_id) = recorded_runs
    args = ("export", "tiny/residual", "--tensorboard", str(tmp_path), "--store", str(root))
    status, out, err = run(capsys, *args, "--no-images", "--layers", "hidden")
    assert status == 0 and f"wrote {tmp_path / run_id}" in err
    assert "3 embeddings" in out and f"tensorboard --logdir {tmp_path}" in out
    assert_user_error(run(capsys, *args), "already holds an export", "--force")
    status, _, _ = run(capsys, *args, "--force", "--no-images", "--layers", "conv2D_6")
    assert status == 0 and not (tmp_path / run_id / "projector_config.pbtxt").exists()
    assert_user_error(run(capsys, *args, "--force", "--layers", "hiddn"), "did you mean hidden")
    store = ("--store", str(root))
    assert_user_error(
        run(capsys, "export", "nosuchrun", "--tensorboard", str(tmp_path), *store), "nosuchrun"
    )
    assert_user_error(
        run(capsys, "export", "x", "--tensorboard", str(tmp_path), "--store", str(tmp_path / "no")),
        "no run store",
    )
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert_user_error(
        run(capsys, "export", run_id, "--tensorboard", str(blocker / "tb"), *store),
        "cannot write into",
    )
    assert_user_error(run(capsys, "export", run_id, *store), "--tensorboard")  # required


def test_export_help_points_to_runs_export(capsys) -> None:
    status, out, _ = run(capsys, "export", "--help")
    assert status == 0 and "runs export" in out and "tensorboard --logdir" in out
    status, out, _ = run(capsys, "export-model", "--help")
    assert status == 0 and "--no-check" in out and "--opset" in out


def test_export_model_json(capfd, tmp_path: Path) -> None:
    """capfd: the exporter's progress output must not reach stdout, not even at the fd level."""
    path = tmp_path / "residual.onnx"
    status, out, err = run(
        capfd,
        "export-model",
        "residual",
        "--onnx",
        str(path),
        "--image",
        "fashion-mnist:test:0-4",
        "--json",
    )
    assert status == 0, err
    data = json.loads(out)
    assert data["path"] == str(path) and data["model"] == "residual"
    assert data["input"] == "input" and data["output"] == "logits"
    assert data["input_shape"] == ["batch", 1, 28, 28]
    assert data["bytes"] == path.stat().st_size
    check = data["check"]
    assert check["inputs"] == "fashion-mnist:test:0-4" and check["n"] == 4 and check["ok"]
    assert check["max_abs_diff"] < 1e-4
    assert read_metadata(path)["class_names"][9] == "Ankle boot"


def test_export_model_for_people(capsys, tmp_path: Path) -> None:
    path = tmp_path / "lenet5.onnx"
    status, out, err = run(
        capsys,
        "export-model",
        "lenet5",
        "--onnx",
        str(path),
        "--exporter",
        "torchscript",
        "--opset",
        "17",
    )
    assert status == 0 and f"wrote {path}" in err
    assert "ONNX opset 17 (torchscript exporter)" in out
    assert "onnxruntime agrees with PyTorch" in out and "max difference" in out
    assert onnx.load(str(path)).opset_import[0].version == 17


def test_export_model_without_check(capsys, tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    status, out, _ = run(
        capsys, "export-model", "lenet5", "--onnx", str(path), "--no-check", "--json"
    )
    assert status == 0 and json.loads(out)["check"] is None and path.is_file()


def test_export_model_errors(capsys, tmp_path: Path) -> None:
    assert_user_error(
        run(capsys, "export-model", "lenet5", "--onnx", str(tmp_path / "m.pt")), ".onnx"
    )
    assert_user_error(
        run(capsys, "export-model", "lenet5", "--onnx", str(tmp_path / "no" / "m.onnx")),
        "does not exist",
    )
    assert_user_error(
        run(capsys, "export-model", "lenet55", "--onnx", str(tmp_path / "m.onnx")), "lenet5"
    )
    assert_user_error(
        run(capsys, "export-model", "lenet5", "--onnx", str(tmp_path / "m.onnx"), "--opset", "99"),
        "--opset must be from 7 to",
    )
    assert_user_error(
        run(
            capsys,
            "export-model",
            "lenet5",
            "--onnx",
            str(tmp_path / "m.onnx"),
            "--no-check",
            "--image",
            "fashion-mnist:test:0",
        ),
        "--no-check",
    )
    source = tmp_path / "eig_net.py"
    source.write_text(
        textwrap.dedent("""
        import torch
        from torch import nn

        class Eig(nn.Module):
            def forward(self, x):
                return torch.linalg.eigvals(x.flatten(1)[:, :4].reshape(-1, 2, 2)).real

        def build():
            return Eig()
        """)
    )
    assert_user_error(
        run(
            capsys,
            "export-model",
            f"{source}:build",
            "--input-shape",
            "1,8,8",
            "--onnx",
            str(tmp_path / "eig.onnx"),
        ),
        "aten.linalg_eig",
        "--exporter torchscript",
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eig_net.py"]
