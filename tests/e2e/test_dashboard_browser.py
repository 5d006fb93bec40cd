"""``convscope serve`` end to end: a real server process, a real store, Debian's Chromium.

1. The Runs view shows the runs and the study as the API gives them (names, test
   accuracy, the verdict), the curves follow the ticked runs, and the explorer's PCA
   maps, epoch slider, scores and hover tooltip match the API's embedding and probe.
2. A page open on the Runs view follows a ``convscope train`` subprocess writing the
   store: the run appears, its epochs grow, it ends finished, its per-batch loss (the
   run records it) is drawn under the loss curves, and the page never reloads.
3. Under ``--base-url /proxy/PORT/`` with a token the same page works and every request
   it makes stays inside the prefix.

Every test fails on any console error, page error, failed request or 4xx/5xx answer.
Maps use PCA: UMAP's first call compiles for about 70 s.
"""

from __future__ import annotations

import io
import math
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.e2e.conftest import api_json, js_fixed, open_page
from tests.stores import TINY_MODELS

pytestmark = pytest.mark.slow

SCORE_LABELS = {
    "knn_hidden": "k-NN (layer)",
    "knn_map": "k-NN (map)",
    "linear_probe": "linear probe",
    "silhouette": "silhouette",
    "trustworthiness": "trustworthiness",
}
"""What the page calls each score (``SCORE_NAMES`` in ``frontend/src/types.ts``)."""

MAP_GRID = {"left": 42, "right": 12, "top": 36, "bottom": 26}
"""The map's plotting area inside its chart (``grid`` in ``frontend/src/explore/mapCard.ts``)."""


def words(text: str) -> str:
    return " ".join(text.split())


def assert_not_blank(png: bytes, what: str) -> None:
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    assert pixels.std() > 20, f"the screenshot of {what} is blank (std {pixels.std():.1f})"
    assert len(np.unique(pixels)) > 50, f"the screenshot of {what} has too few shades"


# --- the explorer's geometry ------------------------------------------------------------------


def shared_limits(point_sets: list[list[list[float]]], pad: float = 0.05) -> dict[str, float]:
    """The explorer's shared axes (``sharedLimits`` in ``frontend/src/explore/limits.ts``)."""
    xy = np.array([p for points in point_sets for p in points], dtype=np.float64)
    xy = xy[np.isfinite(xy).all(axis=1)]

    def rounded(v: float, direction: Any) -> float:
        if v == 0:
            return 0.0
        digits = 4 - math.ceil(math.log10(abs(v)))
        f = 10 ** max(0, digits)
        return direction(v * f) / f

    def widen(lo: float, hi: float) -> tuple[float, float]:
        span = hi - lo
        return (lo - 1, hi + 1) if span == 0 else (lo - span * pad, hi + span * pad)

    x0, x1 = widen(xy[:, 0].min(), xy[:, 0].max())
    y0, y1 = widen(xy[:, 1].min(), xy[:, 1].max())
    return {
        "xmin": rounded(x0, math.floor),
        "xmax": rounded(x1, math.ceil),
        "ymin": rounded(y0, math.floor),
        "ymax": rounded(y1, math.ceil),
    }


def screen_points(points: list[list[float]], limits: dict[str, float], box: dict) -> np.ndarray:
    """Where ECharts draws each point of a map whose chart element is ``box``."""
    width = box["width"] - MAP_GRID["left"] - MAP_GRID["right"]
    height = box["height"] - MAP_GRID["top"] - MAP_GRID["bottom"]
    xy = np.asarray(points, dtype=np.float64)
    x = (xy[:, 0] - limits["xmin"]) / (limits["xmax"] - limits["xmin"])
    y = (limits["ymax"] - xy[:, 1]) / (limits["ymax"] - limits["ymin"])
    return np.stack(
        [box["x"] + MAP_GRID["left"] + x * width, box["y"] + MAP_GRID["top"] + y * height], axis=1
    )


def most_isolated(pixels: np.ndarray) -> int:
    """The point farthest from its nearest neighbour on screen (a hover finds it alone)."""
    distance = np.linalg.norm(pixels[:, None] - pixels[None], axis=2)
    np.fill_diagonal(distance, np.inf)
    return int(distance.min(axis=1).argmax())


# --- the tests --------------------------------------------------------------------------------


def test_runs_study_and_explorer_show_what_the_api_gives(
    tiny_store: Path, serve: Any, browser: Any, tmp_path: Path
) -> None:
    server = serve("--port", "0", "--store", str(tiny_store))
    page, watch = open_page(browser)
    with httpx.Client(base_url=server.url, timeout=60) as api:
        runs = api.get("/api/runs").json()
        assert sorted(r["model"] for r in runs) == sorted(TINY_MODELS)
        by_model = {r["model"]: r for r in runs}

        # --- Runs: the table, the curves of the ticked runs, the study ---------------------
        page.goto(f"{server.url}#/runs?method=pca")
        rows = page.locator("table.runs-table tbody tr")
        expect(rows).to_have_count(len(runs))
        for run in runs:
            row = page.locator(f"tr[data-run='{run['id']}']")
            cells = row.locator("td")
            expect(cells.nth(1)).to_contain_text(run["name"])
            expect(cells.nth(5)).to_have_text(run["status"])
            expect(cells.nth(6)).to_have_text(f"{run['epochs_completed']} / {run['epochs']}")
            expect(cells.nth(7)).to_have_text(js_fixed(run["test_acc"]))

        legend = page.locator(".curve-legend .legend-item:not(.muted)")
        charts = page.locator(".chart-pair .chart:has(canvas)")
        expect(legend).to_have_text([r["name"] for r in runs])  # both ticked by default
        expect(charts).to_have_count(2)
        residual = by_model["residual"]
        page.get_by_label(f"compare {residual['name']}").uncheck()
        expect(legend).to_have_text([by_model["sequential"]["name"]])
        page.get_by_label(f"compare {residual['name']}").check()
        expect(legend).to_have_count(2)
        expect(legend.last).to_have_text(residual["name"])
        assert "sel=" in page.evaluate("location.hash")
        # The tiny store's runs kept no per-batch loss: the legend says so, nothing is drawn.
        assert not api.get(f"/api/runs/{residual['id']}/batch-loss").json()["recorded"]
        expect(page.locator(".curve-legend .batch-note")).to_have_text(
            "per-batch loss: not recorded"
        )

        study = api_json(api, "/api/studies/tiny?method=pca")
        verdict = page.locator(".study .verdict")
        expect(verdict).to_be_visible()
        assert words(verdict.inner_text()) == words(study["verdict"])
        ranking = page.locator(".study table.ranking tbody tr")
        expect(ranking).to_have_count(len(study["ranking"]))
        for i, row in enumerate(study["ranking"]):
            expect(ranking.nth(i).locator("th")).to_have_text(row["model"])
            expect(ranking.nth(i).locator("td").nth(1)).to_have_text(js_fixed(row["test_acc"]))
        expect(page.locator(".study select")).to_have_value("pca")
        watch.assert_clean()
        runs_png = page.screenshot(path=str(tmp_path / "runs.png"), full_page=True)
        assert_not_blank(runs_png, "the Runs view")

        # --- the explorer: PCA maps, the slider, the scores, a hovered point -----------------
        page.get_by_role("link", name="Explore the embeddings of the ticked runs").click()
        expect(page).to_have_url(re.compile(r"#/explore\?.*method=pca"))
        cards = page.locator("article.map-card")
        expect(cards).to_have_count(len(runs))
        expect(page.locator(".map-card .map-chart")).to_have_count(len(runs))
        expect(page.locator(".map-card table.scores")).to_have_count(len(runs))
        embeddings = {
            r["id"]: api_json(api, f"/api/runs/{r['id']}/embedding?layer=hidden&method=pca")
            for r in runs
        }
        epochs = embeddings[runs[0]["id"]]["epochs"]
        assert epochs == [0, 1, 2]
        label = page.locator("output.epoch-text")
        expect(label).to_have_text(f"epoch {epochs[-1]} of {epochs[-1]}")
        expect(page.locator("#method-pca")).to_be_checked()

        def check_scores(epoch: int) -> None:
            for run in runs:
                card = page.get_by_role("article", name=f"map of {run['name']}")
                table = card.locator("table.scores")
                expect(table.locator("caption")).to_have_text(f"Separation at epoch {epoch}")
                scores = api_json(
                    api, f"/api/runs/{run['id']}/embedding?layer=hidden&method=pca&epoch={epoch}"
                )["scores"]
                assert scores, f"no scores for {run['name']} at epoch {epoch}"
                # in the page's order: the known scores first, then any other by name
                keys = [k for k in SCORE_LABELS if k in scores] + sorted(
                    set(scores) - set(SCORE_LABELS)
                )
                shown = {SCORE_LABELS.get(k, k): js_fixed(scores[k]) for k in keys}
                expect(table.locator("th")).to_have_text(list(shown))
                expect(table.locator("td")).to_have_text(list(shown.values()))

        check_scores(epochs[-1])
        slider = page.locator("input#epoch")
        slider.focus()
        slider.press("ArrowLeft")
        expect(label).to_have_text(f"epoch 1 of {epochs[-1]}")
        expect(slider).to_have_value("1")
        check_scores(1)
        slider.press("Home")
        expect(label).to_have_text(f"epoch 0 (before training) of {epochs[-1]}")
        check_scores(0)
        slider.fill("1")  # a range input: fill sets the value and sends input
        expect(label).to_have_text(f"epoch 1 of {epochs[-1]}")
        assert "epoch=1" in page.evaluate("location.hash")

        # Hover the most isolated point of the sequential map at epoch 1, found where the
        # API's coordinates put it on the shared axes; its tooltip names that probe image.
        run = by_model["sequential"]
        probe = api.get(f"/api/runs/{run['id']}/probe").json()
        limits = shared_limits([p for e in embeddings.values() for p in e["points"].values()])
        chart = page.get_by_role("article", name=f"map of {run['name']}").locator(".map-chart")
        box = chart.bounding_box()
        assert box is not None
        points = embeddings[run["id"]]["points"]["1"]
        pixels = screen_points(points, limits, box)
        position = most_isolated(pixels)
        x, y = pixels[position]
        page.mouse.move(x - 30, y - 30)
        page.mouse.move(x, y, steps=6)
        tip = chart.locator(".tip")
        expect(tip).to_be_visible()
        classes = embeddings[run["id"]]["classes"]
        true_name = classes[embeddings[run["id"]]["labels"][position]]
        predicted = classes[probe["predictions"]["1"][position]]
        expect(tip.locator("b")).to_have_text(true_name)
        expect(tip).to_contain_text(f"predicted at epoch 1: {predicted}")
        expect(tip).to_contain_text(f"image #{probe['indices'][position]}")
        tip_png = chart.screenshot()
        assert_not_blank(tip_png, "a map with its tooltip")

        explorer_png = page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)
        assert_not_blank(explorer_png, "the explorer")
        watch.assert_clean()


def test_runs_view_follows_a_training_process_without_a_reload(
    tmp_path: Path, serve: Any, browser: Any
) -> None:
    store = tmp_path / "live" / "runs"  # nothing yet: the training below makes it
    server = serve("--port", "0", "--store", str(store))
    page, watch = open_page(browser)
    page.goto(f"{server.url}#/runs")
    expect(page.get_by_text("No runs yet")).to_be_visible()
    expect(page.locator(".live-state")).to_have_text("live")
    # A marker that a reload would wipe, and every (epochs, status) the table shows.
    page.evaluate(
        """() => {
            window.__e2e = { marker: 'kept', seen: [] };
            const record = () => {
                for (const row of document.querySelectorAll('tr[data-run]')) {
                    const cells = row.querySelectorAll('td');
                    const now = `${cells[6].textContent}|${cells[5].textContent}`;
                    if (window.__e2e.seen.at(-1) !== now) window.__e2e.seen.push(now);
                }
            };
            new MutationObserver(record).observe(document.body,
                { subtree: true, childList: true, characterData: true });
        }"""
    )
    command = [
        *(sys.executable, "-m", "convscope", "train", "sequential", "--data", "fashion-mnist"),
        *("--epochs", "3", "--subset", "3000", "--batch-size", "100"),
        *("--probe-per-class", "2", "--record", "hidden", "--record-batch-loss"),
        *("--store", str(store)),
    ]
    log = tmp_path / "train.log"
    with log.open("wb") as out:
        training = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        row = page.locator("tr[data-run]")
        expect(row).to_have_count(1, timeout=90_000)
        cells = row.locator("td")
        expect(cells.nth(5)).to_have_text("finished", timeout=120_000)
        expect(cells.nth(6)).to_have_text("3 / 3")
        assert training.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        if training.poll() is None:
            training.kill()
            training.wait(timeout=10)

    with httpx.Client(base_url=server.url, timeout=30) as api:
        (run,) = api.get("/api/runs").json()
    assert run["status"] == "finished" and run["epochs_completed"] == 3
    expect(cells.nth(1)).to_contain_text(run["name"])
    expect(cells.nth(7)).to_have_text(js_fixed(run["test_acc"]))
    # The new run is drawn in the curves (the newest runs are ticked by default).
    expect(page.locator(".curve-legend .legend-item:not(.muted)")).to_have_text([run["name"]])
    # Its per-batch loss, read again at each live epoch, is drawn: every batch of the 3 epochs.
    with httpx.Client(base_url=server.url, timeout=30) as api:
        batches = api.get(f"/api/runs/{run['id']}/batch-loss").json()
    assert batches["recorded"] and batches["epochs"] == [1, 2, 3], batches["epochs"]
    count = len(batches["loss"])
    assert count == sum(batches["batches"]) and count > 3
    expect(page.locator(".curve-legend .batch-note")).to_have_text("per batch")
    expect(page.get_by_role("img", name=re.compile(r"^loss per epoch"))).to_have_attribute(
        "aria-label",
        re.compile(rf"per-batch training loss of {re.escape(run['name'])} \({count} batches\)"),
    )
    state = page.evaluate("window.__e2e")
    assert state is not None and state["marker"] == "kept", "the page was reloaded"
    seen = [(int(s.split(" / ")[0]), s.split("|")[1]) for s in state["seen"]]
    counts = [count for count, _ in seen]
    assert counts == sorted(counts) and counts[0] < 3 and counts[-1] == 3, seen
    assert len(set(counts)) >= 2, f"the epochs count never grew on the page: {seen}"
    assert seen[0][1] == "running" and seen[-1][1] == "finished", seen
    assert_not_blank(page.screenshot(full_page=True), "the live Runs view")
    watch.assert_clean()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_page_works_under_a_path_prefix_with_a_token(
    tiny_store: Path, serve: Any, browser: Any
) -> None:
    port = free_port()
    prefix = f"/proxy/{port}/"
    token = "e2e-secret-token"
    serve(
        *("--host", "0.0.0.0", "--port", str(port), "--token", token),
        *("--base-url", prefix, "--store", str(tiny_store)),
    )
    origin = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=origin, timeout=30) as api:
        assert api.get(f"{prefix}api/runs").status_code == 401  # no token, no answer
        runs = api.get(f"{prefix}api/runs", headers={"X-Convscope-Token": token}).json()
    page, watch = open_page(browser)
    page.goto(f"{origin}{prefix}?token={token}#/runs?method=pca")
    expect(page.locator("table.runs-table tbody tr")).to_have_count(len(runs))
    expect(page.locator(".study .verdict")).to_be_visible()
    expect(page.locator(".live-state")).to_have_text("live")
    page.get_by_role("link", name="Explore the embeddings of the ticked runs").click()
    expect(page.locator(".map-card .map-chart")).to_have_count(len(runs))
    expect(page.locator(".map-card table.scores")).to_have_count(len(runs))
    watch.assert_clean()
    outside = [url for url in watch.requests if not url.startswith(f"{origin}{prefix}")]
    assert not outside, f"requests left the prefix {prefix}: {outside}"
    assert any("/api/events" in url for url in watch.requests)
