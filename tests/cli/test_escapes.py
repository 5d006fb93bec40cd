"""Escapes found by trying convscope as a user would, each kept as a regression test."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convscope.cli.app import _warning_line
from convscope.errors import ConvscopeWarning
from tests.cli import assert_user_error, run


def test_a_factory_that_raises_is_one_line_naming_it(capsys, tmp_path: Path) -> None:
    factory = tmp_path / "bad.py"
    factory.write_text("def build():\n    raise ValueError('no weights for\\nthis size')\n")
    result = run(capsys, "summary", f"{factory}:build")
    assert_user_error(result, f"{factory}:build() raised ValueError: no weights for this size")


@pytest.mark.parametrize(
    ("name", "write", "kind"),
    [
        ("photo.png", lambda p: Image.new("RGB", (8, 8)).save(p), "a PNG image"),
        ("photo.jpg", lambda p: Image.new("RGB", (8, 8)).save(p), "a JPEG image"),
        ("photo.webp", lambda p: Image.new("RGB", (8, 8)).save(p), "a WebP image"),
        ("maps.npy", lambda p: np.save(p, np.zeros(3)), "a NumPy array"),
    ],
)
def test_a_file_that_is_not_a_model_says_what_it_is(capsys, tmp_path, name, write, kind) -> None:
    path = tmp_path / name
    write(path)
    assert_user_error(run(capsys, "summary", str(path)), f"is {kind}", "not a model; MODEL is")
    assert_user_error(
        run(capsys, "summary", "lenet5", "--weights", str(path)), f"is {kind}", "not a PyTorch file"
    )


def test_a_refused_foreign_pickle_is_one_line_without_torchs_warning(tmp_path: Path) -> None:
    path = tmp_path / "other.pkl"
    path.write_bytes(pickle.dumps({"weights": {1, 2}}, protocol=4))
    env = {k: v for k, v in os.environ.items() if k != "CONVSCOPE_DEBUG"}
    done = subprocess.run(
        [sys.executable, "-m", "convscope", "summary", str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convscope: error: "), done.stderr
    assert "refused" in lines[0] and "Warning" not in done.stderr


def _shown(capsys, category: type[Warning]) -> str:
    with warnings.catch_warnings():
        warnings.showwarning = _warning_line
        warnings.simplefilter("always")
        warnings.warn("a notice\nover two lines", category, stacklevel=1)
    return capsys.readouterr().err


def test_only_convscopes_own_warnings_reach_stderr(capsys, monkeypatch) -> None:
    monkeypatch.delenv("CONVSCOPE_DEBUG", raising=False)
    assert _shown(capsys, ConvscopeWarning) == "convscope: warning: a notice over two lines\n"
    assert _shown(capsys, UserWarning) == ""
    assert _shown(capsys, DeprecationWarning) == ""
    monkeypatch.setenv("CONVSCOPE_DEBUG", "1")
    assert "UserWarning: a notice" in _shown(capsys, UserWarning)
