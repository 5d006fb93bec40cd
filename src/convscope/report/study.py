"""The study report: a results table, curves, confusion matrices, written as one folder.

:func:`write_study_folder` writes the pictures, ``results.csv``/``results.json`` and an
``index.html`` that needs no network or JavaScript; :func:`study_html` is the same page
body for a notebook (pictures embedded). Every file is written atomically.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from convscope.files import atomic_write, ensure_folder
from convscope.render.confusion import plot_confusion_grid, plot_confusion_matrix
from convscope.render.curves import plot_training_curves, run_labels
from convscope.render.figures import data_uri, save_figure
from convscope.report.classification import classification_report
from convscope.store.results import RunResult, StudyResult

COLUMNS = (
    "model",
    "name",
    "run_id",
    "test_acc",
    "test_loss",
    "best_val_acc",
    "best_val_epoch",
    "params",
    "seconds_per_epoch",
    "epochs",
)
HEADINGS = {
    "model": "Model",
    "name": "Run",
    "run_id": "Run id",
    "test_acc": "Test accuracy",
    "test_loss": "Test loss",
    "best_val_acc": "Best val. accuracy",
    "best_val_epoch": "at epoch",
    "params": "Parameters",
    "seconds_per_epoch": "s / epoch",
    "epochs": "Epochs",
}
FORMATS = {
    "test_acc": ".3f",
    "test_loss": ".3f",
    "best_val_acc": ".3f",
    "seconds_per_epoch": ".1f",
    "params": ",",
}
"""Each number column's one precision: accuracies and losses 3 decimals, seconds 1."""
CSS = """
.convscope-study { font-family: system-ui, sans-serif; color: #222; max-width: 1200px; }
.convscope-study h1 { font-size: 1.5em; margin-bottom: 0.2em; }
.convscope-study h2 { font-size: 1.15em; margin-top: 1.4em; border-bottom: 1px solid #ddd; }
.convscope-study table { border-collapse: collapse; margin: 0.5em 0; }
.convscope-study th, .convscope-study td { padding: 4px 10px; border-bottom: 1px solid #e4e4e4; }
.convscope-study th { background: #f3f3f3; text-align: left; }
.convscope-study td.num { text-align: right; font-variant-numeric: tabular-nums; }
.convscope-study tr.best td { background: #e3f4e1; font-weight: 600; }
.convscope-study img { max-width: 100%; height: auto; border: 1px solid #eee; }
.convscope-study ul.links { padding-left: 1.2em; }
.convscope-study table.per-class th.group { text-align: center; }
"""


def _finite_or_none(value: float | None) -> float | None:
    """A plain float, or None for a missing or NaN value (so JSON and CSV stay clean)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _best_val(run: RunResult) -> tuple[float | None, int | None]:
    """The highest validation accuracy and the epoch it was reached at."""
    acc = np.asarray(run.val_acc, dtype=float)
    if not np.isfinite(acc).any():
        return None, None
    index = int(np.nanargmax(acc))
    return float(acc[index]), int(np.asarray(run.epochs)[index])


def _row(run: RunResult) -> dict[str, Any]:
    """One run's line of the results table, with its per-class test numbers (``per_class``)."""
    best_acc, best_epoch = _best_val(run)
    epochs = np.asarray(run.epochs)
    per_class = (
        classification_report(run.confusion, run.class_names) if run.confusion is not None else None
    )
    return {
        "model": run.model,
        "name": run.name,
        "run_id": run.run_id,
        "test_acc": _finite_or_none(run.test_acc),
        "test_loss": _finite_or_none(run.test_loss),
        "best_val_acc": best_acc,
        "best_val_epoch": best_epoch,
        "params": int(run.params),
        "seconds_per_epoch": _finite_or_none(run.seconds_per_epoch),
        "epochs": int(epochs.max()) if epochs.size else 0,
        "per_class": per_class,
    }


def _rank_key(row: dict[str, Any]) -> tuple[float, float]:
    """Sort key: test accuracy first, best validation accuracy for ties and missing tests."""
    test = row["test_acc"] if row["test_acc"] is not None else -math.inf
    val = row["best_val_acc"] if row["best_val_acc"] is not None else -math.inf
    return (-test, -val)


def results_rows(study: StudyResult) -> list[dict[str, Any]]:
    """One dict per run (keys as in ``COLUMNS``, and ``per_class``), best test accuracy first."""
    return sorted((_row(run) for run in study.runs), key=_rank_key)


def _slug(text: str) -> str:
    """A file-name-safe form of a model or run name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "run"


def confusion_file_names(runs: Sequence[RunResult]) -> dict[int, str]:
    """``confusion_<model>.png`` for each run with a matrix (keyed by ``id(run)``), unique."""
    names: dict[int, str] = {}
    for run, label in zip(runs, run_labels(runs), strict=True):
        if run.confusion is None:
            continue
        stem, suffix = f"confusion_{_slug(run.model if label == run.model else label)}", 1
        name = f"{stem}.png"
        while name in names.values() or name == "confusion_all.png":
            suffix += 1
            name = f"{stem}-{suffix}.png"
        names[id(run)] = name
    return names


# ----------------------------------------------------------------------------- HTML


def _format(column: str, value: Any) -> str:
    """A table cell's text, in its column's one precision (:data:`FORMATS`)."""
    if value is None:
        return "–"
    return format(value, FORMATS[column]) if column in FORMATS else str(value)


def _setting_text(value: Any) -> str:
    """A settings value as short text (dicts as ``k=v``, sequences comma-separated)."""
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_setting_text(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_setting_text(v) for v in value)
    return str(value)


def settings_html(study: StudyResult) -> str:
    """The settings as a two-column table, dataset first."""
    items = {"dataset": study.dataset, **study.settings}
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_setting_text(v))}</td></tr>"
        for k, v in items.items()
    )
    return f"<table class='settings'>{rows}</table>"


def results_html(rows: list[dict[str, Any]]) -> str:
    """The results table; the run(s) with the best test accuracy get class ``best``."""
    scores = [row["test_acc"] for row in rows if row["test_acc"] is not None]
    best = max(scores) if scores else None
    head = "".join(f"<th>{html.escape(HEADINGS[c])}</th>" for c in COLUMNS)
    body = []
    for row in rows:
        css = " class='best'" if best is not None and row["test_acc"] == best else ""
        cells = "".join(
            f"<td class='num'>{html.escape(_format(c, row[c]))}</td>"
            if c not in ("model", "name", "run_id")
            else f"<td>{html.escape(_format(c, row[c]))}</td>"
            for c in COLUMNS
        )
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table class='results'><tr>{head}</tr>{''.join(body)}</table>"


def per_class_html(rows: list[dict[str, Any]]) -> str:
    """Test-set precision, recall and F1 per class: a row per class, a column group per run."""
    reported = [row for row in rows if row.get("per_class")]
    if not reported:
        return "<p class='note'>No test-set confusion matrices were recorded.</p>"
    groups = "".join(
        f"<th colspan='3' class='group'>{html.escape(row['name'])}</th>" for row in reported
    )
    subheads = "<th>precision</th><th>recall</th><th>F1</th>" * len(reported)
    body = []
    first = reported[0]["per_class"]
    for index, entry in enumerate(first["classes"]):
        cells = "".join(
            "".join(
                f"<td class='num'>{row['per_class']['classes'][index][k]:.3f}</td>"
                for k in ("precision", "recall", "f1")
            )
            for row in reported
        )
        body.append(
            f"<tr><th>{html.escape(entry['class'])}</th>"
            f"<td class='num'>{entry['support']:,}</td>{cells}</tr>"
        )
    for key, label in (("macro_avg", "macro average"), ("weighted_avg", "weighted average")):
        cells = "".join(
            "".join(
                f"<td class='num'>{row['per_class'][key][k]:.3f}</td>"
                for k in ("precision", "recall", "f1")
            )
            for row in reported
        )
        body.append(f"<tr><th>{label}</th><td></td>{cells}</tr>")
    return (
        "<table class='per-class'>"
        f"<tr><th rowspan='2'>Class</th><th rowspan='2'>Test images</th>{groups}</tr>"
        f"<tr>{subheads}</tr>{''.join(body)}</table>"
    )


def _figure_html(src: str, alt: str, href: str | None) -> str:
    """An image, wrapped in a link to the full file when there is one."""
    img = f"<img src='{html.escape(src)}' alt='{html.escape(alt)}'>"
    return f"<a href='{html.escape(href)}'>{img}</a>" if href else img


def _link_list(links: Sequence[tuple[str, str]]) -> str:
    """A bullet list of ``(href, text)`` links."""
    items = "".join(
        f"<li><a href='{html.escape(href)}'>{html.escape(text)}</a></li>" for href, text in links
    )
    return f"<ul class='links'>{items}</ul>"


def _embedded_sources(study: StudyResult) -> dict[str, str]:
    """The page's pictures rendered in memory (for a notebook, where no files exist)."""
    sources = {}
    if study.runs:
        sources["curves.png"] = data_uri(plot_training_curves(study.runs, title=study.name))
    if any(run.confusion is not None for run in study.runs):
        sources["confusion_all.png"] = data_uri(plot_confusion_grid(study.runs))
    return sources


def study_html(study: StudyResult, *, files: Mapping[str, str] | None = None) -> str:
    """The report as an HTML fragment with inline CSS, for ``index.html`` or a notebook.

    With ``files`` (file name → relative href of files already written) the pictures
    point at those files and link to them; without it the pictures are rendered and
    embedded, so ``IPython.display.HTML(study_html(study))`` shows everything.
    """
    linked = files is not None
    sources = dict(files) if files is not None else _embedded_sources(study)
    parts = [
        f"<style>{CSS}</style><div class='convscope-study'>",
        f"<h1>{html.escape(study.name)}</h1>",
        "<h2>Settings</h2>",
        settings_html(study),
        "<h2>Results</h2>",
        results_html(results_rows(study)),
        "<h2>Per class (test set)</h2>",
        per_class_html(results_rows(study)),
    ]
    data_links = [
        (sources[n], n) for n in ("results.csv", "per_class.csv", "results.json") if n in sources
    ]
    if linked and data_links:
        parts.append(_link_list(data_links))
    if "curves.png" in sources:
        parts += ["<h2>Training curves</h2>", _curves_html(sources, linked)]
    if "confusion_all.png" in sources:
        parts += ["<h2>Confusion matrices</h2>", _confusion_html(study, sources, linked)]
    parts.append("</div>")
    return "\n".join(parts)


def _curves_html(sources: Mapping[str, str], linked: bool) -> str:
    """The curves picture, linked to its PNG (and SVG) when files exist."""
    picture = _figure_html(
        sources["curves.png"], "training curves", sources["curves.png"] if linked else None
    )
    if linked and "curves.svg" in sources:
        picture += _link_list([(sources["curves.svg"], "curves.svg (vector)")])
    return picture


def _confusion_html(study: StudyResult, sources: Mapping[str, str], linked: bool) -> str:
    """The combined confusion picture and links to each run's own matrix."""
    src = sources["confusion_all.png"]
    picture = _figure_html(src, "confusion matrices", src if linked else None)
    if not linked:
        return picture
    labels = dict(zip((id(r) for r in study.runs), run_labels(study.runs), strict=True))
    names = confusion_file_names(study.runs)
    links = [
        (sources[name], f"{labels[key]}: {name}") for key, name in names.items() if name in sources
    ]
    return picture + _link_list(links)


def _page(study: StudyResult, body: str) -> str:
    """A complete, self-contained HTML document around the report body."""
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(study.name)}</title>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


# ----------------------------------------------------------------------------- files


def _write_atomic(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Write ``path`` through ``write(handle)`` via a temporary file and ``os.replace``."""
    with atomic_write(path) as handle:
        write(handle)
    return path


def _write_text(path: Path, text: str) -> Path:
    """Write UTF-8 text atomically."""
    return _write_atomic(path, lambda h: h.write(text.encode("utf-8")))


def _csv_text(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV with a header (missing values empty)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows({c: "" if row[c] is None else row[c] for c in COLUMNS} for row in rows)
    return buffer.getvalue()


PER_CLASS_COLUMNS = ("model", "name", "run_id", "class", "precision", "recall", "f1", "support")


def _per_class_csv_text(rows: list[dict[str, Any]]) -> str:
    """One line per run and class: the test-set precision, recall, F1 and support."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(PER_CLASS_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        for entry in (row.get("per_class") or {}).get("classes", []):
            writer.writerow(
                {"model": row["model"], "name": row["name"], "run_id": row["run_id"], **entry}
            )
    return buffer.getvalue()


def _json_text(study: StudyResult, rows: list[dict[str, Any]]) -> str:
    """Study name, dataset, settings and rows as indented JSON."""
    document = {
        "study": study.name,
        "dataset": study.dataset,
        "settings": study.settings,
        "rows": rows,
    }
    return json.dumps(document, indent=2, default=str) + "\n"


def _write_figures(study: StudyResult, out_dir: Path) -> dict[str, Path]:
    """Curves (PNG and SVG) and confusion matrices (per run and combined)."""
    written: dict[str, Path] = {}
    if study.runs:
        curves = plot_training_curves(study.runs, title=study.name)
        for name in ("curves.png", "curves.svg"):
            written[name] = save_figure(curves, out_dir / name)
    labels = dict(zip((id(r) for r in study.runs), run_labels(study.runs), strict=True))
    names = confusion_file_names(study.runs)
    for run in study.runs:
        name = names.get(id(run))
        if name is None:
            continue
        fig = plot_confusion_matrix(run.confusion, run.class_names, title=labels[id(run)])
        written[name] = save_figure(fig, out_dir / name)
    if any(run.confusion is not None for run in study.runs):
        written["confusion_all.png"] = save_figure(
            plot_confusion_grid(study.runs), out_dir / "confusion_all.png"
        )
    return written


def write_study_folder(study: StudyResult, out_dir: Path) -> dict[str, Path]:
    """Write the study's pictures, tables and ``index.html`` into ``out_dir``; name → path."""
    out_dir = Path(out_dir)
    ensure_folder(out_dir)
    written = _write_figures(study, out_dir)
    rows = results_rows(study)
    written["results.csv"] = _write_text(out_dir / "results.csv", _csv_text(rows))
    if any(row["per_class"] for row in rows):
        written["per_class.csv"] = _write_text(out_dir / "per_class.csv", _per_class_csv_text(rows))
    written["results.json"] = _write_text(out_dir / "results.json", _json_text(study, rows))
    body = study_html(study, files={name: name for name in written})
    written["index.html"] = _write_text(out_dir / "index.html", _page(study, body))
    return written
