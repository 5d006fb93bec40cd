"""What every probe result shares: it draws itself, in a notebook and on request.

Probes compute; :meth:`FigureResult.figure` hands the result to :mod:`convscope.render`
(imported lazily so computing never needs matplotlib), and Jupyter shows the PNG.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure


class FigureResult:
    """Mixin for probe results: ``figure()`` renders, ``_repr_png_`` shows it in Jupyter.

    Every subclass gets :func:`short_repr` (set before ``@dataclass`` runs, which then
    keeps it), so ``repr()`` never prints the arrays a result holds.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__repr__" not in cls.__dict__:
            cls.__repr__ = short_repr  # type: ignore[method-assign]

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

    def __rich__(self) -> Any:
        """For the terminal: the result's numbers and names (its ``to_dict()``), as a table.

        Results with a richer table of their own (features, attribution, maximize)
        override this.
        """
        from convscope.render.tables import result_table

        return result_table(type(self).__name__, self.to_dict())  # type: ignore[attr-defined]


class TableResult:
    """Mixin for results that are tables, not pictures (predictions, summaries,
    activations): ``save(path)`` writes their ``to_dict()`` as JSON, as ``--json`` prints it."""

    def save(self, path: str) -> str:
        """Write the result's JSON to ``path`` (must end in .json) atomically; returns the path."""
        import json
        from pathlib import Path

        from convscope.errors import ConvscopeError
        from convscope.files import atomic_write_bytes, check_writable

        if Path(path).suffix.lower() != ".json":
            raise ConvscopeError(f"cannot write {path}: a table result is saved as .json")
        check_writable(path)
        text = json.dumps(self.to_dict(), indent=2, default=str)  # type: ignore[attr-defined]
        atomic_write_bytes(path, (text + "\n").encode())
        return str(path)


def short_repr(result: Any) -> str:
    """A dataclass result in one line: its names and numbers, arrays as shape and dtype.

    The generated dataclass repr prints every weight and pixel; a result with a
    25-million-value kernel array should show ``array(64x3x7x7 float32)`` instead.
    """
    from dataclasses import fields

    parts = [f"{f.name}={_short(getattr(result, f.name))}" for f in fields(result) if f.repr]
    return f"{type(result).__name__}({', '.join(parts)})"


def _short(value: Any) -> str:
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "dtype"):  # numpy arrays and torch tensors
        dims = "x".join(str(int(s)) for s in shape) or "scalar"
        return f"array({dims} {str(value.dtype).removeprefix('torch.')})"
    if isinstance(value, (list, tuple)) and len(value) > 4:
        return f"[{len(value)} × {type(value[0]).__name__}]"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_short(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' * (len(value) == 1)})"
    if isinstance(value, dict) and len(value) > 4:
        return f"{{{len(value)} entries}}"
    if isinstance(value, str) and len(value) > 60:
        return repr(value[:57] + "...")
    if hasattr(value, "__dataclass_fields__") and not isinstance(value, type):
        return type(value).__name__ + "(...)"
    return repr(value)
