"""An explained unit as text and as a figure: patch, kernel, products, sum, bias, activation.

The text is what ``convscope explain`` prints; the figure puts the input map (with the
receptive field outlined, padding hatched) and the output map (the unit marked) above
the number grids of each input channel. Object API only (no pyplot).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from convscope.models.provenance import model_title
from convscope.probe.explain import ChannelTerm, Explanation

PAD_MARK = "*"
MAX_TEXT_CHANNELS = 8
MAX_FIGURE_CHANNELS = 4
MAX_EXPANDED_TERMS = 9  # write out "a·b + c·d + ..." when a unit has at most this many products
PATCH_CMAP = "viridis"
SIGNED_CMAP = "RdBu_r"
HIGHLIGHT = "#e8000b"


# --------------------------------------------------------------------------- numbers


def number(value: float | None, digits: int = 6) -> str:
    """A value as people write it: integers without decimals, others to ``digits`` significant."""
    if value is None or not math.isfinite(value):
        return "pad" if value is None or value < 0 else "inf"
    if float(value).is_integer() and abs(value) < 1e9:
        return str(int(value))
    return f"{value:.{digits}g}"


def _grid_lines(values: np.ndarray, padded: np.ndarray | None, digits: int = 4) -> list[str]:
    """Rows of a grid, right-aligned to a common width; padded cells end in ``*``."""
    cells = [
        [
            ("pad" if not math.isfinite(v) else number(float(v), digits))
            + (PAD_MARK if padded is not None and padded[i, j] and math.isfinite(v) else "")
            for j, v in enumerate(row)
        ]
        for i, row in enumerate(values.tolist())
    ]
    width = max((len(c) for row in cells for c in row), default=1)
    return ["  ".join(c.rjust(width) for c in row) for row in cells]


def _side_by_side(blocks: Sequence[tuple[str, list[str]]], indent: str = "  ") -> list[str]:
    """Titled text blocks next to each other (stacked when they would be too wide)."""
    widths = [max(len(title), *(len(line) for line in lines)) for title, lines in blocks]
    if sum(widths) + 4 * len(blocks) > 120:
        out: list[str] = []
        for title, lines in blocks:
            out += [indent + title, *(indent + line for line in lines)]
        return out
    height = max(len(lines) for _, lines in blocks)
    titles = "    ".join(t.ljust(w) for (t, _), w in zip(blocks, widths, strict=True))
    rows = [(indent + titles).rstrip()]
    for i in range(height):
        parts = [
            (lines[i] if i < len(lines) else "").ljust(w)
            for (_, lines), w in zip(blocks, widths, strict=True)
        ]
        rows.append((indent + "    ".join(parts)).rstrip())
    return rows


# --------------------------------------------------------------------------- text


def describe_layer(result: Explanation) -> str:
    """``Conv2dAct 5x5, stride 1, padding 0, relu`` — the settings that shape the arithmetic."""
    kh, kw = result.window
    if result.layer_type.startswith("Adaptive"):
        return f"{result.layer_type}, this unit's window {kh}x{kw}"
    parts = [f"{result.layer_type} {kh}x{kw}"]
    if result.stride != (1, 1) or result.kind != "conv":
        parts.append(f"stride {_pair_text(result.stride)}")
    left, right, top, bottom = result.padding
    if len({left, right, top, bottom}) == 1:
        parts.append(f"padding {left}")
    else:
        parts.append(f"padding left {left} right {right} top {top} bottom {bottom}")
    if result.dilation != (1, 1):
        parts.append(f"dilation {_pair_text(result.dilation)}")
    if result.groups != 1:
        parts.append(f"groups {result.groups}")
    if result.activation:
        parts.append(f"activation {result.activation}")
    return ", ".join(parts)


def _pair_text(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def _header(result: Explanation) -> list[str]:
    row, col = result.at
    source = result.input_name + (f" (label {result.label})" if result.label is not None else "")
    choice = (
        " — the most active channel there (choose one with --channel)"
        if result.channel_choice == "most active" and result.output_shape[0] > 1
        else ""
    )
    _, out_h, out_w = result.output_shape
    lines = [
        f"{model_title(result.model, result.model_weights)} · {result.layer} ({describe_layer(result)}) · input {source}",
        f"unit (row {row}, col {col}) of output channel {result.channel} "
        f"of {result.output_shape[0]}, map {out_h}x{out_w}{choice}",
        f"window: input rows {result.rows[0]}..{result.rows[-1]}, "
        f"cols {result.cols[0]}..{result.cols[-1]} of {result.input_shape[1]}x{result.input_shape[2]}"
        + (f"; {PAD_MARK} marks padding" if result.terms and result.terms[0].padded.any() else ""),
    ]
    if result.calls > 1:
        lines.append(f"call {result.call} of {result.calls} of this module in the forward pass")
    return lines


def _shown_terms(terms: Sequence[ChannelTerm], limit: int) -> list[ChannelTerm]:
    """All terms when few, else the ``limit`` with the largest absolute sums, in channel order."""
    if len(terms) <= limit:
        return list(terms)
    ranked = sorted(terms, key=lambda t: -abs(t.sum or 0.0))[:limit]
    return sorted(ranked, key=lambda t: t.channel)


def _expanded(term: ChannelTerm) -> str:
    """``0·8 + 1·7 + ...`` (kernel · input, in reading order) for a small kernel."""
    assert term.kernel is not None
    pairs = zip(term.kernel.ravel(), term.patch.ravel(), strict=True)
    return " + ".join(f"{number(float(k), 4)}·{number(float(p), 4)}" for k, p in pairs)


def _verdict(result: Explanation) -> str:
    difference = abs(result.value - result.actual)
    if result.matches:
        return f"✓ equal to the hand computation (difference {difference:.1e})"
    return (
        f"✗ differs from the hand computation by {difference:.3g}: the layer does more "
        "than this arithmetic"
    )


def explanation_text(result: Explanation, *, max_channels: int = MAX_TEXT_CHANNELS) -> str:
    """The unit's arithmetic as plain text, every number shown (up to ``max_channels`` inputs)."""
    lines = _header(result)
    lines.append("")
    if result.kind == "conv":
        lines += _conv_text(result, max_channels)
    else:
        lines += _pool_text(result)
    return "\n".join(lines)


def _conv_text(result: Explanation, max_channels: int) -> list[str]:
    lines: list[str] = []
    shown = _shown_terms(result.terms, max_channels)
    small = len(result.terms) * result.terms[0].patch.size <= MAX_EXPANDED_TERMS
    for term in shown:
        assert term.kernel is not None and term.products is not None
        lines.append(f"input channel {term.channel}")
        lines += _side_by_side(
            [
                ("patch (layer input)", _grid_lines(term.patch, term.padded)),
                ("kernel", _grid_lines(term.kernel, None)),
                ("products", _grid_lines(term.products, None)),
            ]
        )
        if small:
            lines.append(f"  {_expanded(term)} = {number(term.sum)}")
        else:
            lines.append(f"  sum of products = {number(term.sum)}")
        lines.append("")
    hidden = [t for t in result.terms if t not in shown]
    if hidden:
        rest = math.fsum(t.sum or 0.0 for t in hidden)
        lines.append(
            f"… {len(hidden)} more input channels (all of them in --json), together {number(rest)}"
        )
    count = len(result.terms)
    conv_sum = math.fsum(t.sum or 0.0 for t in result.terms)
    label = f"sum over {count} input channel{'s' if count != 1 else ''}"
    rows = [(label, number(conv_sum))]
    if result.bias is not None:
        rows += [("+ bias", number(result.bias)), ("= total", number(result.total))]
    if result.activation:
        rows.append((f"{result.activation}(total)", number(result.value)))
    rows.append(("layer output", number(result.actual)))
    width = max(len(name) for name, _ in rows)
    lines += [f"{name.ljust(width)}  {value}" for name, value in rows]
    lines.append(_verdict(result))
    return lines


def _pool_text(result: Explanation) -> list[str]:
    term = result.terms[0]
    lines = [f"window of input channel {term.channel}"]
    lines += ["  " + line for line in _grid_lines(term.patch, term.padded)]
    lines.append("")
    if result.kind == "maxpool":
        assert result.argmax is not None
        r, c = result.argmax
        lines.append(f"max of the window = {number(result.total)} (at input row {r}, col {c})")
    else:
        kept = np.where(np.isfinite(term.patch), term.patch, 0.0)
        lines.append(
            f"mean of the window = {number(float(kept.sum()))} / {result.divisor} "
            f"= {number(result.total)}"
        )
    lines.append(f"layer output = {number(result.actual)}")
    lines.append(_verdict(result))
    return lines


# --------------------------------------------------------------------------- figure


def _cell_font(texts: list[str], cell_inches: float) -> float:
    """A font size that fits the longest number in a cell (0: no numbers, cells too small)."""
    longest = max((len(t) for t in texts), default=1)
    size = min(11.0, 72 * cell_inches * 0.85 / (0.62 * max(longest, 2)))
    return size if size >= 5 else 0


def _text_color(rgba: Sequence[float]) -> str:
    r, g, b = rgba[:3]
    return "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"


def _number_grid(
    ax: Axes,
    values: np.ndarray,
    *,
    norm: Normalize,
    cmap: str,
    padded: np.ndarray | None = None,
    title: str,
    width: float,
    highlight: tuple[int, int] | None = None,
    font: float | None = None,
) -> None:
    """A small matrix as coloured cells with its numbers; padded cells hatched grey.

    ``width`` is the panel's width in inches, to size the numbers to the cells (or
    ``font`` when given, so that neighbouring grids share one size).
    """
    shown = np.where(np.isfinite(values), values, np.nan)
    image = ax.imshow(shown, cmap=cmap, norm=norm, interpolation="nearest")
    h, w = values.shape
    texts = ["pad" if not math.isfinite(v) else _cell_number(v) for v in values.ravel().tolist()]
    font = _cell_font(texts, width / max(h, w)) if font is None else font
    colormap = image.get_cmap()
    for i in range(h):
        for j in range(w):
            is_pad = padded is not None and bool(padded[i, j])
            if is_pad:
                ax.add_patch(
                    Rectangle(
                        (j - 0.5, i - 0.5), 1, 1, facecolor="0.85", edgecolor="0.6", hatch="///"
                    )
                )
            if font:
                v = float(values[i, j])
                color = "0.25" if is_pad else _text_color(colormap(norm(v)))
                text = texts[i * w + j]
                ax.text(j, i, text, ha="center", va="center", fontsize=font, color=color)
    if highlight is not None:
        r, c = highlight
        ax.add_patch(
            Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor=HIGHLIGHT, linewidth=2.5)
        )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def _cell_number(value: float) -> str:
    """A number short enough for a cell: ``16``, ``0.70``, ``-0.024``, ``-0.0035``, ``-0.0009``, ``4e-05``."""
    size = abs(value)
    if value.is_integer() and size < 1e5:
        return str(int(value))
    if size >= 100:
        return f"{value:.0f}"
    if size >= 0.1:
        return f"{value:.2f}"
    if size >= 0.001:
        return f"{value:.2g}"
    if size >= 0.0001:
        return f"{value:.1g}"
    return f"{value:.0e}"


def _signed_norm(values: np.ndarray) -> Normalize:
    finite = values[np.isfinite(values)]
    bound = float(np.abs(finite).max()) if finite.size else 1.0
    return Normalize(-bound or -1.0, bound or 1.0)


def _range_norm(values: np.ndarray) -> Normalize:
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return Normalize(lo, hi if hi > lo else lo + 1.0)


def _map_panel(
    ax: Axes,
    values: np.ndarray,
    title: str,
    *,
    rows: tuple[int, int],
    cols: tuple[int, int],
    norm: Normalize,
    cmap: str = PATCH_CMAP,
) -> None:
    """A whole map with a rectangle around ``rows`` x ``cols`` (extending into padding)."""
    h, w = values.shape
    ax.set_facecolor("0.88")
    ax.imshow(values, cmap=cmap, norm=norm, interpolation="nearest")
    r0, r1 = rows
    c0, c1 = cols
    ax.add_patch(
        Rectangle(
            (c0 - 0.5, r0 - 0.5),
            c1 - c0 + 1,
            r1 - r0 + 1,
            fill=False,
            edgecolor=HIGHLIGHT,
            linewidth=2,
        )
    )
    ax.set_xlim(min(-0.5, c0 - 0.7), max(w - 0.5, c1 + 0.7))
    ax.set_ylim(max(h - 0.5, r1 + 0.7), min(-0.5, r0 - 0.7))
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    ax.set_xticks(np.arange(0, w, max(1, math.ceil(w / 6))))
    ax.set_yticks(np.arange(0, h, max(1, math.ceil(h / 6))))


def plot_explanation(result: Explanation, *, max_channels: int = MAX_FIGURE_CHANNELS) -> Figure:
    """The unit's arithmetic: input map with its window, output map with the unit, number grids."""
    if result.kind == "conv":
        return _conv_figure(result, max_channels)
    return _pool_figure(result)


def _title(result: Explanation) -> str:
    row, col = result.at
    return (
        f"{model_title(result.model, result.model_weights)} · {result.layer} ({describe_layer(result)})\n"
        f"unit (row {row}, col {col}) of channel {result.channel} for {result.input_name}"
    )


def _conv_figure(result: Explanation, max_channels: int) -> Figure:
    shown = _shown_terms(result.terms, max_channels)
    kh, kw = result.window
    cell = 0.5 if max(kh, kw) <= 5 else 0.38 if max(kh, kw) <= 7 else 0.2
    panel = max(1.9, cell * max(kh, kw) + 0.4)
    fig = Figure(figsize=(3 * panel + 0.6, 3.1 + panel * len(shown) + 0.4), layout="constrained")
    fig.suptitle(_title(result), fontsize=11)
    heights = [2.7] + [panel] * len(shown)
    top, *rows = fig.subfigures(1 + len(shown), 1, height_ratios=heights, hspace=0.03)
    biggest = max(result.terms, key=lambda t: abs(t.sum or 0.0))
    _overview(top, result, biggest.channel)
    grids = [g for t in shown for g in (t.patch, t.kernel, t.products) if g is not None]
    texts = [_cell_number(v) for g in grids for v in g.ravel().tolist()]
    font = _cell_font(texts, panel * 0.9 / max(kh, kw))
    for sub, term in zip(rows, shown, strict=True):
        assert term.kernel is not None and term.products is not None
        axes = sub.subplots(1, 3)
        assert result.input_maps is not None
        grids = (
            (term.patch, _range_norm(result.input_maps[term.channel]), PATCH_CMAP, term.padded,
             f"input channel {term.channel}: patch"),
            (term.kernel, _signed_norm(term.kernel), SIGNED_CMAP, None, "× kernel"),
            (term.products, _signed_norm(term.products), SIGNED_CMAP, None,
             f"= products, sum {number(term.sum, 4)}"),
        )  # fmt: skip
        for ax, (values, norm, cmap, padded, title) in zip(axes, grids, strict=True):
            _number_grid(
                ax,
                values,
                norm=norm,
                cmap=cmap,
                padded=padded,
                title=title,
                width=panel * 0.9,
                font=font,
            )
    if len(result.terms) * kh * kw <= MAX_EXPANDED_TERMS:
        sums = " + ".join(_expanded(term) for term in result.terms)
        fig.supxlabel(f"{sums} = {number(result.total, 6)}", fontsize=10, family="monospace")
    return fig


def _overview(sub: Figure, result: Explanation, channel: int) -> None:
    """Top row: input map with the window, output map with the unit, and the final sum."""
    ax_in, ax_out, ax_text = sub.subplots(1, 3, width_ratios=[1, 1, 1.1])
    assert result.input_maps is not None and result.output_map is not None
    data = result.input_maps[channel]
    _map_panel(
        ax_in,
        data,
        f"layer input, channel {channel}",
        rows=(int(result.rows[0]), int(result.rows[-1])),
        cols=(int(result.cols[0]), int(result.cols[-1])),
        norm=_range_norm(data),
    )
    row, col = result.at
    out = result.output_map
    _map_panel(
        ax_out,
        out,
        f"layer output, channel {result.channel}",
        rows=(row, row),
        cols=(col, col),
        norm=_signed_norm(out) if out.min() < 0 < out.max() else _range_norm(out),
        cmap=SIGNED_CMAP if out.min() < 0 < out.max() else PATCH_CMAP,
    )
    ax_text.set_axis_off()
    ax_text.text(
        0.0,
        0.5,
        _summary_lines(result),
        fontsize=9,
        family="monospace",
        va="center",
        ha="left",
        transform=ax_text.transAxes,
    )


def _summary_lines(result: Explanation) -> str:
    """The closing arithmetic for the figure: sums, bias, activation, output, verdict."""
    if result.kind == "conv":
        count = len(result.terms)
        lines = [
            f"Σ products ({count} ch) = {number(math.fsum(t.sum or 0 for t in result.terms), 5)}"
        ]
        if result.bias is not None:
            lines.append(f"+ bias = {number(result.bias, 5)}")
            lines.append(f"total = {number(result.total, 5)}")
        if result.activation:
            lines.append(f"{result.activation}(total) = {number(result.value, 5)}")
    elif result.kind == "maxpool":
        lines = [f"max of window = {number(result.total, 5)}"]
    else:
        lines = [f"mean = sum / {result.divisor}", f"     = {number(result.total, 5)}"]
    lines.append(f"layer output = {number(result.actual, 5)}")
    lines.append("✓ equal" if result.matches else "✗ differs")
    if result.kind == "conv" and len(result.terms) > MAX_FIGURE_CHANNELS:
        lines.append(f"(grids: {MAX_FIGURE_CHANNELS} largest of {len(result.terms)} ch)")
    return "\n".join(lines)


def _pool_figure(result: Explanation) -> Figure:
    term = result.terms[0]
    kh, kw = term.patch.shape
    panel = min(max(2.4, 0.5 * max(kh, kw) + 0.4), 4.0)
    fig = Figure(figsize=(3 * 2.6 + panel, max(3.6, panel + 1.0)), layout="constrained")
    fig.suptitle(_title(result), fontsize=11)
    ax_in, ax_window, ax_out, ax_text = fig.subplots(1, 4, width_ratios=[2.6, panel, 2.6, 2.6])
    assert result.input_maps is not None and result.output_map is not None
    data = result.input_maps[term.channel]
    norm = _range_norm(data)
    _map_panel(
        ax_in,
        data,
        f"layer input, channel {term.channel}",
        rows=(int(result.rows[0]), int(result.rows[-1])),
        cols=(int(result.cols[0]), int(result.cols[-1])),
        norm=norm,
    )
    highlight = None
    if result.argmax is not None:
        r, c = result.argmax
        highlight = (
            int(np.flatnonzero(result.rows == r)[0]),
            int(np.flatnonzero(result.cols == c)[0]),
        )
    op = "max" if result.kind == "maxpool" else "mean"
    _number_grid(
        ax_window,
        term.patch,
        norm=norm,
        cmap=PATCH_CMAP,
        padded=term.padded,
        title=f"{kh}x{kw} window → {op}",
        width=panel * 0.9,
        highlight=highlight,
    )
    row, col = result.at
    out = result.output_map
    h, w = out.shape
    _map_panel(
        ax_out,
        out,
        f"layer output {h}x{w}, channel {result.channel}",
        rows=(row, row),
        cols=(col, col),
        norm=_range_norm(out),
    )
    ax_text.set_axis_off()
    ax_text.text(
        0.0,
        0.5,
        _summary_lines(result),
        fontsize=9,
        family="monospace",
        va="center",
        transform=ax_text.transAxes,
    )
    return fig
