"""Where convscope keeps its files; read from the environment at call time (no globals)."""

from __future__ import annotations

import os
from pathlib import Path

DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

DEFAULT_STORE_DIR = "convscope-runs"
"""The run store's folder, relative to the working directory (``--store`` changes it)."""


def convscope_home() -> Path:
    """The cache root: ``$CONVSCOPE_HOME`` or ``~/.cache/convscope``."""
    env = os.environ.get("CONVSCOPE_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "convscope"


def user_data_dir() -> Path | None:
    """A directory the user points at with ``CONVSCOPE_DATA_DIR``, if any."""
    env = os.environ.get("CONVSCOPE_DATA_DIR")
    return Path(env).expanduser() if env else None
