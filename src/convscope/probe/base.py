"""What every probe result shares: it draws itself, in a notebook and on request.

Probes compute; :meth:`FigureResult.figure` hands the result to :mod:`convscope.render`
(imported lazily so computing never needs matplotlib), and Jupyter shows the PNG.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class FigureResult:
    """Mixin for probe results: ``figure()`` renders, ``_repr_png_`` shows it in Jupyter."""

    def figure(self, **options: Any) -> Figure:
        """The result drawn as a matplotlib figure (see the render function it calls)."""
        raise NotImplementedError

    def save(self, path: str, **options: Any) -> str:
        """Draw the result into ``path`` (.png, .svg or .pdf); returns the path."""
        from convscope.render.figures import save_figure

        return str(save_figure(self.figure(**options), path))

    def _repr_png_(self) -> bytes:
        from convscope.render.figures import figure_png

        return figure_png(self.figure())
