"""Figures out: files in the format a suffix names, PNG bytes for notebooks, data URIs for HTML.

Every picture convscope writes goes through :func:`save_figure`, so ``--out`` accepts
the same formats everywhere and a failed write never leaves half a file.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

from matplotlib.figure import Figure

from convscope.errors import ConvscopeError
from convscope.files import atomic_write, check_writable

DPI = 120
"""Resolution of raster output."""

FIGURE_FORMATS = ("png", "svg", "pdf")
"""The file formats ``--out`` accepts, by suffix."""


def figure_format(path: str | Path) -> str:
    """The format ``path``'s suffix names; anything else is a user's mistake."""
    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in FIGURE_FORMATS:
        allowed = ", ".join(f".{f}" for f in FIGURE_FORMATS)
        raise ConvscopeError(f"cannot write {path}: the file name must end in {allowed}")
    return fmt


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Save ``fig`` atomically in the format the suffix of ``path`` names; returns the path."""
    path = Path(path)
    fmt = figure_format(path)
    check_writable(path)
    with atomic_write(path) as handle:
        fig.savefig(handle, format=fmt, dpi=DPI, bbox_inches="tight")
    return path


def figure_png(fig: Figure) -> bytes:
    """PNG bytes of ``fig`` (what ``_repr_png_`` returns to Jupyter)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def data_uri(fig: Figure) -> str:
    """A PNG of ``fig`` as a ``data:`` URI, for pages that must carry their pictures."""
    return "data:image/png;base64," + base64.b64encode(figure_png(fig)).decode("ascii")
