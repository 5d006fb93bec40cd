"""``convscope maximize``: JSON keys, files out, and one-line errors with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.cli import assert_user_error, run

FAST = ("--steps", "24", "--starts", "2")


def test_json_contract(capsys, trained_lenet5: Path) -> None:
    status, out, err = run(capsys, "maximize", str(trained_lenet5), "--class", "7", "--json", *FAST)
    assert status == 0, err
    data = json.loads(out)
    assert {"model", "objective", "param", "seconds", "settings", "targets"} <= set(data)
    assert data["objective"] == "logit" and data["settings"]["steps"] == 24
    (target,) = data["targets"]
    assert {"target", "status", "message", "start_score", "score", "prob", "top", "steps"} <= set(
        target
    )
    assert target["target"] == "7" and target["status"] == "step-limit"  # 24 steps: still rising
    assert target["score"] > target["start_score"]
    assert target["top"][0][0] == "7" and len(target["top"]) == 3
    assert data["mean_target_prob"] == target["prob"]


def test_all_classes_with_figure_trace_and_npy(capsys, trained_lenet5: Path, tmp_path: Path):
    out_png, trace_png, npy = tmp_path / "m.png", tmp_path / "t.png", tmp_path / "m.npy"
    status, out, err = run(
        capsys,
        "maximize",
        str(trained_lenet5),
        "--classes",
        "0-9",
        "--objective",
        "prob",
        "--out",
        str(out_png),
        "--trace-out",
        str(trace_png),
        "--npy",
        str(npy),
        *FAST,
    )
    assert status == 0, err
    assert out_png.read_bytes()[:4] == b"\x89PNG" and trace_png.read_bytes()[:4] == b"\x89PNG"
    inputs = np.load(npy)
    assert inputs.shape == (10, 1, 28, 28) and inputs.dtype == np.float32
    assert f"wrote {out_png}" in err
    assert "activation maximisation" in out  # the table for people


def test_channel_json(capsys, trained_lenet5: Path) -> None:
    status, out, _ = run(
        capsys, "maximize", str(trained_lenet5), "--channel", "conv2d_2:0-1", "--json", *FAST
    )
    data = json.loads(out)
    assert status == 0 and data["objective"] == "mean"
    assert [t["target"] for t in data["targets"]] == ["conv2d_2:0", "conv2d_2:1"]
    assert all(t["prob"] is None for t in data["targets"])


def test_vanishing_gradient_is_said_on_stderr(capsys, tmp_path: Path) -> None:
    factory = tmp_path / "blind.py"
    factory.write_text(
        "from torch import nn\n"
        "class Blind(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(784, 10)\n"
        "    def forward(self, x):\n"
        "        return self.fc((x * 0).flatten(1))\n"
        "def build():\n"
        "    return Blind()\n"
    )
    argv = ("maximize", f"{factory}:build", "--input-shape", "1,28,28", "--class", "2", "--json")
    status, out, err = run(capsys, *argv, *FAST)
    assert status == 0
    assert json.loads(out)["targets"][0]["status"] == "vanishing-gradient"
    assert "convscope: warning: 2: no gradient" in err


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (("--class", "eleven"), ("unknown class 'eleven'", "the classes are 0, 1, 2")),
        (("--class", "10"), ("out of range",)),
        (("--channel", "conv2d_9:0"), ("no layer 'conv2d_9'", "did you mean")),
        (("--channel", "conv2d_2:16"), ("conv2d_2 has 16 channels",)),
        (("--channel", "conv2d_2"), ("LAYER:CHANNEL",)),
        (("--class", "1", "--objective", "mean"), ("for channels",)),
        (("--class", "1", "--steps", "0"), ("steps must be at least 1",)),
        (("--class", "1", "--channel", "conv2d_1:0"), ("not allowed with",)),
        ((), ("one of the arguments --class/--classes --channel is required",)),
        (("--class", "1", "--out", "x.gif"), ("must end in",)),
    ],
)
def test_user_mistakes(capsys, argv: tuple[str, ...], fragments: tuple[str, ...]) -> None:
    assert_user_error(run(capsys, "maximize", "lenet5", "--steps", "2", *argv), *fragments)
