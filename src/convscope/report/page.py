"""The report as one self-contained HTML file: pictures inlined, no network, opens from disk.

Sections (each an element with a stable id, which the browser test looks for):
``verdict``, ``models``, ``curves``, ``results``, ``per-class``, ``confusion``,
``embeddings``, ``separation``, ``kernels``, ``features``, ``settings``.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from pathlib import Path

from convscope.embed.scores import SCORE_LABELS, SCORE_NAMES
from convscope.files import atomic_write
from convscope.render.confusion import plot_confusion_grid
from convscope.render.curves import plot_training_curves
from convscope.render.figures import data_uri
from convscope.report.collect import ReportData
from convscope.report.study import (
    CSS,
    per_class_html,
    results_html,
    results_rows,
    settings_html,
)

SECTIONS = (
    ("verdict", "Verdict"),
    ("models", "Models"),
    ("curves", "Training curves"),
    ("results", "Results"),
    ("per-class", "Per class (test set)"),
    ("confusion", "Confusion matrices"),
    ("embeddings", "Hidden representation over epochs"),
    ("separation", "Separation scores"),
    ("kernels", "First-layer kernels over epochs"),
    ("features", "Sample feature maps"),
    ("settings", "Settings and versions"),
)

REPORT_CSS = """
.convscope-study nav a { margin-right: 0.9em; }
.convscope-study .verdict { background: #f4f8ff; border-left: 4px solid #4a78c2; padding: 0.6em 1em; }
.convscope-study .model { margin-bottom: 1.5em; }
.convscope-study .diagram { overflow-x: auto; max-height: 900px; border: 1px solid #eee; }
.convscope-study details summary { cursor: pointer; color: #345; }
.convscope-study .note { color: #666; font-size: 0.9em; }
"""


def report_html(data: ReportData, progress: Callable[[str, int, int], None] | None = None) -> str:
    """The whole report page."""
    builders = [
        _verdict,
        _models,
        _curves,
        _results,
        _per_class,
        _confusion,
        _embeddings,
        _separation,
        _kernels,
        _features,
        _settings,
    ]
    body = []
    for done, ((section, heading), build) in enumerate(zip(SECTIONS, builders, strict=True), 1):
        body.append(
            f"<section id='{section}'><h2>{html.escape(heading)}</h2>{build(data)}</section>"
        )
        if progress:
            progress("report", done, len(builders))
    nav = " ".join(f"<a href='#{s}'>{html.escape(h)}</a>" for s, h in SECTIONS)
    title = html.escape(f"convscope report: {data.title}")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{title}</title>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<style>{CSS}{REPORT_CSS}</style></head>\n<body><div class='convscope-study'>"
        f"<h1>{title}</h1><p class='note'>{len(data.study.runs)} runs on "
        f"{html.escape(data.study.dataset)} · written {html.escape(data.created)}</p>"
        f"<nav>{nav}</nav>\n" + "\n".join(body) + "\n</div></body></html>\n"
    )


def write_report(data: ReportData, path: str | Path, progress=None) -> Path:
    """Write the report atomically; returns the path."""
    path = Path(path)
    text = report_html(data, progress)
    with atomic_write(path) as handle:
        handle.write(text.encode("utf-8"))
    return path


def _img(src: str, alt: str) -> str:
    return f"<img src='{src}' alt='{html.escape(alt)}'>"


def _figure(fig, alt: str) -> str:
    return _img(data_uri(fig), alt)


def _verdict(data: ReportData) -> str:
    from convscope.report.verdict import verdict

    return f"<p class='verdict'>{html.escape(verdict(data.ranking))}</p>"


def _models(data: ReportData) -> str:
    parts = []
    for part in data.models:
        summary = part.summary
        parts.append(
            f"<div class='model'><h3>{html.escape(part.model)}</h3>"
            f"<p>{summary.total_params:,} parameters ({summary.trainable_params:,} trainable, "
            f"{summary.non_trainable_params:,} non-trainable); input "
            f"{' x '.join(map(str, summary.input_shape))}.</p>"
            f"<details><summary>layer summary</summary>{summary._repr_html_()}</details>"
            f"<div class='diagram'>{_inline_svg(part.graph.to_svg())}</div>"
            + "".join(f"<p class='note'>{html.escape(p)}</p>" for p in part.problems)
            + "</div>"
        )
    return "".join(parts)


def _inline_svg(svg: str) -> str:
    """An SVG document as inline markup (its XML declaration dropped)."""
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def _curves(data: ReportData) -> str:
    return _figure(plot_training_curves(data.study.runs, title=data.title), "training curves")


def _results(data: ReportData) -> str:
    return results_html(results_rows(data.study))


def _per_class(data: ReportData) -> str:
    return per_class_html(results_rows(data.study))


def _confusion(data: ReportData) -> str:
    if not any(run.confusion is not None for run in data.study.runs):
        return "<p class='note'>No test-set confusion matrices were recorded.</p>"
    return _figure(plot_confusion_grid(data.study.runs), "confusion matrices")


def _embeddings(data: ReportData) -> str:
    if not data.embeddings:
        return "<p class='note'>No layer was recorded: train with --record hidden.</p>"
    from convscope.render.embedding import plot_embedding_grid, write_animation

    grid = _figure(plot_embedding_grid(data.embeddings), "maps over epochs")
    buffer = io.BytesIO()
    _animation_bytes(data, buffer, write_animation)
    gif = "data:image/gif;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    method = data.embeddings[0].params.method
    return (
        f"<p>The <code>{html.escape(data.layer or '')}</code> layer of every run on the same "
        f"{len(data.embeddings[0].labels):,} probe images, mapped to 2-D with {method} each "
        "epoch (epoch 0 is before training), every map started from the previous one and "
        "aligned to it, all on one scale.</p>"
        f"{grid}<h3>Animation</h3>{_img(gif, 'animation of the maps over epochs')}"
    )


def _animation_bytes(data: ReportData, buffer: io.BytesIO, write_animation) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = write_animation(data.embeddings, Path(folder) / "maps.gif")
        buffer.write(path.read_bytes())


def _separation(data: ReportData) -> str:
    if not data.ranking:
        return "<p class='note'>No scores without a recorded layer.</p>"
    from convscope.render.embedding import plot_score_curves

    head = "".join(f"<th>{html.escape(SCORE_LABELS[s])}</th>" for s in SCORE_NAMES)
    rows = []
    for rank, scores in enumerate(data.ranking, start=1):
        cells = "".join(
            f"<td class='num'>{html.escape(scores.text(s))}<br><span class='note'>"
            f"from {scores.baseline[s]:.3f} ({html.escape(scores.gain_text(s))})"
            "</span></td>"
            for s in SCORE_NAMES
        )
        learned = "yes" if scores.learned else f"not yet: {scores.why_not}"
        css = " class='best'" if rank == 1 and scores.learned else ""
        rows.append(
            f"<tr{css}><td>{rank}</td><td>{html.escape(scores.model)}</td>"
            f"<td>{html.escape(learned)}</td>"
            f"<td class='num'>{html.escape(scores.test_text())}</td>"
            f"<td class='num'>{scores.mean_rank:.2f}</td><td class='num'>{scores.seeds}</td>"
            f"<td class='num'>{scores.epoch}</td>{cells}</tr>"
        )
    table = (
        "<table class='scores'><tr><th>Rank</th><th>Model</th><th>Learned</th>"
        "<th>Test accuracy</th><th>Mean rank of gains</th><th>Seeds</th><th>Epoch</th>"
        f"{head}</tr>{''.join(rows)}</table>"
    )
    curves = _figure(plot_score_curves(data.embeddings), "separation scores over epochs")
    note = (
        "<p class='note'>Each score at the epoch shown, with the same model's score at epoch 0 "
        "(before training) and the gain over it; an untrained network already separates the "
        "classes in part, so the ranking is by the gains. With several seeds: mean ± 95% "
        "interval.</p>"
    )
    return table + note + curves


def _kernels(data: ReportData) -> str:
    parts = []
    for part in data.models:
        if part.kernels is not None:
            parts.append(f"<h3>{html.escape(part.model)}</h3>")
            parts.append(_figure(part.kernels.figure(), f"{part.model} kernels over epochs"))
    return "".join(parts) or "<p class='note'>No convolution kernels were recorded.</p>"


def _features(data: ReportData) -> str:
    parts = []
    for part in data.models:
        if part.features is not None:
            parts.append(f"<h3>{html.escape(part.model)}</h3>")
            parts.append(_figure(part.features.figure(), f"{part.model} feature maps"))
    return "".join(parts) or "<p class='note'>No feature maps.</p>"


def _settings(data: ReportData) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in data.versions.items()
    )
    return f"{settings_html(data.study)}<h3>Versions</h3><table>{rows}</table>"
