"""The study folder: rows, files, links, pictures and atomic writes."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from convscope.report.study import COLUMNS, results_rows, study_html, write_study_folder
from convscope.store.results import StudyResult
from tests.render import make_study

EXPECTED_FILES = {
    "curves.png",
    "curves.svg",
    "confusion_sequential.png",
    "confusion_inception.png",
    "confusion_residual.png",
    "confusion_all.png",
    "results.csv",
    "per_class.csv",
    "results.json",
    "index.html",
}


class _Links(HTMLParser):
    """Collects every href and src, and the text of <title> and table rows marked best."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.title = ""
        self.best_rows = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.targets += [values[k] for k in ("href", "src") if values.get(k)]
        self._in_title = tag == "title"
        if tag == "tr" and values.get("class") == "best":
            self.best_rows += 1

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    out = tmp_path_factory.mktemp("study") / "report"
    return out, write_study_folder(make_study(), out)


def test_rows_have_known_numbers_sorted_by_test_accuracy() -> None:
    rows = results_rows(make_study())
    assert [row["model"] for row in rows] == [
        "inception",
        "residual",
        "sequential",
        "inception-residual",  # no test accuracy: last
    ]
    first = rows[0]
    assert set(first) == set(COLUMNS) | {"per_class"}
    assert first["test_acc"] == 0.80
    assert first["test_loss"] == pytest.approx(0.51)
    assert first["best_val_acc"] == pytest.approx(0.66)  # val_acc [0.3,.45,.65,.6] + 0.01
    assert first["best_val_epoch"] == 2
    assert (first["params"], first["seconds_per_epoch"], first["epochs"]) == (1234, 2.5, 3)
    assert first["run_id"] == "id-inception-0.01"
    assert rows[-1]["test_acc"] is None


def test_writes_every_file_and_nothing_else(folder: tuple[Path, dict[str, Path]]) -> None:
    out, written = folder
    assert set(written) == EXPECTED_FILES
    assert all(path == out / name and path.is_file() for name, path in written.items())
    assert {p.name for p in out.iterdir()} == EXPECTED_FILES  # no temporary files left


def test_index_links_only_to_existing_files(folder: tuple[Path, dict[str, Path]]) -> None:
    out, written = folder
    parser = _Links()
    parser.feed(written["index.html"].read_text(encoding="utf-8"))
    assert parser.title == "toy study"
    assert parser.targets
    for target in parser.targets:
        assert "://" not in target and not target.startswith("/")
        assert (out / target).is_file(), target
    linked = set(parser.targets)
    assert EXPECTED_FILES - {"index.html"} <= linked
    assert parser.best_rows == 1


def test_index_shows_settings_and_results(folder: tuple[Path, dict[str, Path]]) -> None:
    page = folder[1]["index.html"].read_text(encoding="utf-8")
    for text in ("toy study", "batch_size", "32", "adam", "seed", "0.800", "<style>"):
        assert text in page
    assert "<script" not in page


def test_table_cells_have_one_precision_per_column(
    folder: tuple[Path, dict[str, Path]],
) -> None:
    page = folder[1]["index.html"].read_text(encoding="utf-8")
    table = page[
        page.index("<table class='results'>") : page.index(
            "</table>", page.index("<table class='results'>")
        )
    ]
    assert "<td class='num'>0.800</td>" in table and "<td class='num'>0.8000</td>" not in table
    assert "<td class='num'>2.5</td>" in table  # seconds per epoch: one decimal
    assert "<td class='num'>0.510</td>" in table  # test loss: three decimals


def test_per_class_numbers_match_the_confusion_matrix(
    folder: tuple[Path, dict[str, Path]],
) -> None:
    rows = {row["model"]: row for row in results_rows(make_study())}
    report = rows["sequential"]["per_class"]  # [[8, 1, 1], [2, 5, 3], [0, 1, 9]]
    dog = report["classes"][1]
    assert dog == {
        "class": "dog",
        "precision": round(5 / 7, 4),
        "recall": 0.5,
        "f1": round(2 * (5 / 7) * 0.5 / (5 / 7 + 0.5), 4),
        "support": 10,
    }
    assert report["accuracy"] == round(22 / 30, 4)
    assert rows["inception-residual"]["per_class"] is None  # no confusion matrix
    with folder[1]["per_class.csv"].open(newline="") as handle:
        records = list(csv.DictReader(handle))
    assert len(records) == 3 * 3  # three runs with a matrix, three classes each
    first_dog = next(r for r in records if r["model"] == "sequential" and r["class"] == "dog")
    assert float(first_dog["recall"]) == 0.5 and first_dog["support"] == "10"
    page = folder[1]["index.html"].read_text(encoding="utf-8")
    assert "Per class (test set)" in page and "<th>dog</th>" in page


def test_csv_matches_rows(folder: tuple[Path, dict[str, Path]]) -> None:
    with folder[1]["results.csv"].open(newline="") as handle:
        records = list(csv.DictReader(handle))
    rows = results_rows(make_study())
    assert len(records) == len(rows)
    for record, row in zip(records, rows, strict=True):
        assert list(record) == list(COLUMNS)
        for column in COLUMNS:
            value = row[column]
            if value is None:
                assert record[column] == ""
            elif isinstance(value, float):
                assert float(record[column]) == pytest.approx(value)
            else:
                assert record[column] == str(value)


def test_json_has_study_and_rows(folder: tuple[Path, dict[str, Path]]) -> None:
    document = json.loads(folder[1]["results.json"].read_text())
    study = make_study()
    assert document["study"] == study.name
    assert document["dataset"] == study.dataset
    assert document["settings"] == study.settings
    assert document["rows"] == results_rows(study)


def test_pictures_open_and_are_not_blank(folder: tuple[Path, dict[str, Path]]) -> None:
    for name, path in folder[1].items():
        if name.endswith(".png"):
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("L"), dtype=float)
            assert min(pixels.shape) > 200, name
            assert pixels.std() > 20, name
    assert folder[1]["curves.svg"].read_text().lstrip().startswith("<?xml")


def test_interrupted_save_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Figure.savefig

    def half_then_fail(self: Figure, handle: object, **kwargs: object) -> None:
        real(self, handle, **kwargs)
        raise OSError("no space left")

    monkeypatch.setattr(Figure, "savefig", half_then_fail)
    with pytest.raises(OSError):
        write_study_folder(make_study(), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_notebook_html_embeds_pictures() -> None:
    fragment = study_html(make_study())
    parser = _Links()
    parser.feed(fragment)
    assert parser.targets
    assert all(t.startswith("data:image/png;base64,") for t in parser.targets)
    assert "toy study" in fragment and "<html" not in fragment


def test_empty_study_still_writes_tables(tmp_path: Path) -> None:
    written = write_study_folder(StudyResult(name="empty", dataset="none", runs=[]), tmp_path)
    assert set(written) == {"results.csv", "results.json", "index.html"}
    assert json.loads(written["results.json"].read_text())["rows"] == []
