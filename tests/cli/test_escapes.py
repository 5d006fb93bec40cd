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


def _shown(capsys, category: type[Warning], filename: str) -> str:
    _warning_line(Warning("a notice\nover two lines"), category, filename, 7)
    return capsys.readouterr().err


def test_only_convscopes_and_the_users_warnings_reach_stderr(capsys, monkeypatch, tmp_path):
    import torch

    monkeypatch.delenv("CONVSCOPE_DEBUG", raising=False)
    dependency, ours = torch.__file__, str(Path(_warning_line.__code__.co_filename))
    users = tmp_path / "net.py"
    users.write_text("")
    line = "convscope: warning: a notice over two lines\n"
    assert _shown(capsys, ConvscopeWarning, ours) == line
    assert _shown(capsys, UserWarning, str(users)) == line  # a file.py:factory's own warning
    assert _shown(capsys, UserWarning, dependency) == ""
    assert _shown(capsys, DeprecationWarning, ours) == ""  # e.g. numpy's, raised at our line
    assert _shown(capsys, UserWarning, warnings.__file__) == ""  # the standard library
    monkeypatch.setenv("CONVSCOPE_DEBUG", "1")
    assert f"{dependency}:7: UserWarning: a notice" in _shown(capsys, UserWarning, dependency)


def test_a_factory_that_exits_is_one_line(capsys, tmp_path: Path) -> None:
    factory = tmp_path / "quits.py"
    factory.write_text("import sys\ndef build():\n    sys.exit(3)\n")
    assert_user_error(run(capsys, "summary", f"{factory}:build"), "build() raised SystemExit: 3")


@pytest.mark.parametrize(
    ("name", "write", "says"),
    [
        ("notes.txt", lambda p: p.write_text("hello"), "neither a zip archive nor a pickle"),
        ("empty.pth", lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
        ("zeros.pth", lambda p: p.write_bytes(bytes(1000)), "neither a zip archive nor a pickle"),
        ("other.zip", lambda p: _zip(p, "a.txt"), "zip archive but not a PyTorch file"),
        ("model.pth", lambda p: _zip(p, "config.json"), "is a Keras archive"),
        ("folder.pth", lambda p: p.mkdir(), "is a folder"),
    ],
)
def test_weights_that_are_no_pytorch_file_say_what_they_are(capsys, tmp_path, name, write, says):
    path = tmp_path / name
    write(path)
    assert_user_error(run(capsys, "summary", "lenet5", "--weights", str(path)), says)


def _zip(path: Path, member: str) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(member, "{}")
