"""``convscope data show``: a grid file with class names, JSON, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli import assert_user_error, run


def test_data_show_writes_a_stratified_grid(capsys, tmp_path) -> None:
    out = tmp_path / "grid.png"
    status, stdout, err = run(
        capsys, "data", "show", "fashion-mnist", "--split", "test", "--n", "20", "--seed", "4",
        "--out", str(out), "--json",
    )  # fmt: skip
    assert status == 0, err
    assert out.read_bytes()[:4] == b"\x89PNG" and f"wrote {out}" in err
    data = json.loads(stdout)
    assert data["count"] == 20 and (data["rows"], data["columns"]) == (4, 5)
    classes = [image["class"] for image in data["images"]]
    assert sorted(set(classes)) == sorted(data["class_names"])  # every class, two each
    assert all(classes.count(name) == 2 for name in data["class_names"])
    assert all(image["name"].startswith("fashion-mnist:test:") for image in data["images"])


def test_data_show_errors(capsys, tmp_path) -> None:
    out = str(tmp_path / "g.png")
    assert_user_error(
        run(capsys, "data", "show", "fashion-mnist", "--n", "401", "--out", out), "400"
    )
    assert_user_error(run(capsys, "data", "show", "nope", "--out", out), "unknown dataset 'nope'")
    assert_user_error(
        run(capsys, "data", "show", "mnist", "--out", str(tmp_path / "g.jpg")), ".png"
    )
    assert_user_error(
        run(capsys, "data", "show", "mnist", "--out", str(tmp_path / "no" / "g.png")),
        "does not exist",
    )
    assert not list(tmp_path.iterdir())


def test_show_a_sample_photo_and_json_without_a_picture(tmp_path: Path, capsys) -> None:
    status, _, err = run(capsys, "data", "show", "sample:chelsea", "--out", str(tmp_path / "c.png"))
    assert status == 0, err
    status, out, err = run(capsys, "data", "show", "mnist:test:0-4", "--json")
    assert status == 0, err
    data = json.loads(out)
    assert data["out"] is None and len(data["images"]) == 4
    assert_user_error(run(capsys, "data", "show", "mnist"), "give --out F")


def test_the_grid_title_stays_clear_of_the_first_row() -> None:
    from convscope.data.grid import show_images

    for n in (9, 150, 400):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        fig = show_images("fashion-mnist", n=n).figure()
        renderer = FigureCanvasAgg(fig).get_renderer()
        height = fig.get_figheight()
        title_bottom = fig._suptitle.get_window_extent(renderer).y0 / fig.dpi
        first_row_titles = max(ax.title.get_window_extent(renderer).y1 for ax in fig.axes) / fig.dpi
        assert title_bottom > first_row_titles, n  # the figure title is above every image title
        assert height - title_bottom < 0.5
