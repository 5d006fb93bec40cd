"""The report opens from disk in a real browser (Debian's Chromium driven by Playwright).

It checks every section is there and visible, every picture decoded, nothing was
fetched from a network, and a screenshot of the page is not blank.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convscope.cli.app import main
from convscope.embed.projection import ProjectionParams
from convscope.report.collect import collect_ranking
from convscope.report.page import SECTIONS
from convscope.store import open_store
from tests.browser import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="module")
def report(recorded_runs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root, _ = recorded_runs
    out = tmp_path_factory.mktemp("report") / "report.html"
    status = main(["report", "tiny", "--store", str(root), "--out", str(out), "--method", "pca"])
    assert status == 0
    return out


def test_report_opens_in_chromium_with_every_section(
    report: Path, tmp_path: Path, recorded_runs
) -> None:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "the browser test needs Debian's chromium (make setup installs it)"
    requests: list[str] = []
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = context.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.goto(report.as_uri())
            page.wait_for_load_state("load")
            for section, heading in SECTIONS:
                element = page.locator(f"section#{section}")
                assert element.count() == 1, section
                assert element.is_visible(), section
                assert element.locator("h2").inner_text() == heading
            images_ok = page.evaluate(
                "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
            )
            n_images = page.evaluate("document.images.length")
            verdict = page.locator("#verdict").inner_text()
            svg_boxes = page.locator("#models svg").count()
            shot = page.screenshot(full_page=True)
            models_shot = page.locator("#embeddings").screenshot()
        finally:
            context.close()
    assert images_ok and n_images >= 8
    assert svg_boxes == 2  # one architecture diagram per model
    with open_store(recorded_runs[0], create=False) as store:  # the page says what --json says
        ranked = collect_ranking(store, ["tiny"], params=ProjectionParams(method="pca"))
    assert ranked.to_dict()["verdict"] in verdict
    external = [u for u in requests if not u.startswith(("file:", "data:"))]
    assert external == [], f"the report fetched {external}"
    for png in (shot, models_shot):
        pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
        assert pixels.std() > 20, "the screenshot is blank"
        assert len(np.unique(pixels)) > 50


def test_report_is_self_contained(report: Path) -> None:
    text = report.read_text()
    assert "src='http" not in text and 'src="http' not in text
    assert text.count("data:image/png;base64,") >= 6
    assert "data:image/gif;base64," in text
    for section, _ in SECTIONS:
        assert f"id='{section}'" in text


def test_report_refuses_a_bad_output_name(recorded_runs, tmp_path: Path, capsys) -> None:
    root, _ = recorded_runs
    status = main(["report", "tiny", "--store", str(root), "--out", str(tmp_path / "r.pdf")])
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("convscope: error:") and err.count("\n") == 1
    assert not (tmp_path / "r.pdf").exists()


def test_report_on_an_unknown_study_says_what_exists(recorded_runs, tmp_path: Path, capsys) -> None:
    root, _ = recorded_runs
    status = main(["report", "nosuch", "--store", str(root), "--out", str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert status == 2 and "nosuch" in err
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(
    ("image", "message"), [("nosuch:test:0", "unknown dataset"), ("mnist:test:99999", "range")]
)
def test_report_refuses_an_image_that_names_nothing(
    recorded_runs, tmp_path: Path, capsys, image: str, message: str
) -> None:
    root, _ = recorded_runs
    argv = ["report", "tiny", "--store", str(root), "--out", str(tmp_path / "r.html")]
    status = main([*argv, "--image", image])
    err = capsys.readouterr().err
    assert status == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "r.html").exists()
