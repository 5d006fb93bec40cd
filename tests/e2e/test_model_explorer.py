"""The model explorer end to end: a real ``convscope serve`` process on a real store of
trained runs, Debian's Chromium, and the numbers checked against the library.

One walk through what a user does: open a study run from the Runs view, click a conv
node of the diagram, read its kernels, open the feature maps, click a unit and read its
arithmetic (equal to the map's value there, from the library), move the epoch slider
to 0 and see the kernels change, run an activation maximisation to its end, and upload
an image that the prediction then names. The page may not log a console error, a page
error, a failed request or a 4xx/5xx answer on the way.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

import convscope
from tests.e2e.conftest import open_page

pytestmark = pytest.mark.slow

LAYER = "conv2D_1"
"""The residual model's first convolution (SameConv2d, 32 kernels of 2x2)."""


def page_number(text: str) -> float:
    """A number as the page writes it (``−`` for minus, ``2.9e−4``)."""
    return float(text.strip().replace("−", "-"))


def canvas_png(page: Any, testid: str) -> bytes:
    """What a canvas of the page shows, as PNG bytes."""
    url = page.get_by_test_id(testid).evaluate("c => c.toDataURL('image/png')")
    return base64.b64decode(url.split(",", 1)[1])


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlparse(url).query).items()}


def digit_png() -> bytes:
    """A 28x28 grayscale picture of a bright vertical bar (a made-up 'trouser')."""
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[3:25, 9:12] = 230
    pixels[3:25, 16:19] = 230
    pixels[3:6, 9:19] = 230
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_study_run_explored_by_clicking(
    serve: Any, tiny_store: Path, browser: Any, tmp_path: Path
) -> None:
    server = serve("--store", str(tiny_store), "--port", "0")
    client = httpx.Client(base_url=server.url, timeout=120, trust_env=False)
    run = next(r for r in client.get("/api/runs").json() if r["model"] == "residual")
    page, watch = open_page(browser)

    # The Runs view opens the run in the explorer, pinned to its latest epoch.
    page.goto(f"{server.url}#/runs")
    page.locator(f'a[data-testid="open-in-model-explorer"][href*="{run["id"]}"]').click()
    expect(page.get_by_test_id("epoch-slider")).to_be_visible()
    expect(page.get_by_test_id("epoch-value")).to_contain_text("2")
    expect(page.get_by_test_id("prediction").locator("li").first).to_be_visible()

    # Click the conv node: its kernels, with the health the API gives.
    page.get_by_test_id(f"graph-node-{LAYER}").click()
    expect(page.get_by_test_id("layer-select")).to_have_value(LAYER)
    page.get_by_test_id("tab-kernels").click()
    expect(page.get_by_test_id("kernel-canvas")).to_be_visible()
    kernels_at_2 = canvas_png(page, "kernel-canvas")
    tiles = client.get(f"/api/models/run:{run['id']}@2/kernels/tiles?layer={LAYER}").json()
    assert tiles["shape"] == [32, 1, 2, 2]
    panel = page.get_by_test_id("layer-panel")
    expect(panel).to_contain_text(f"{tiles['shape'][0]}")

    # Feature maps, then a click on a unit of the first map: its arithmetic.
    page.get_by_test_id("tab-features").click()
    maps = page.get_by_test_id("feature-canvas")
    expect(maps).to_be_visible()
    box = maps.bounding_box()
    assert box is not None
    with page.expect_response(lambda r: "/explain?" in r.url) as answered:
        maps.click(position={"x": 6 + 14, "y": 15 + 20})
    explained = answered.value.json()
    ask = query_of(answered.value.url)
    row, col = (int(v) for v in ask["at"].split(","))
    channel, image = int(ask["channel"]), ask["image"]
    expect(page.get_by_test_id("unit-explain")).to_be_visible()
    expect(page.get_by_test_id("explain-value")).not_to_be_empty()

    model = convscope.load_model(f"run:{run['id']}@2", store=tiny_store)
    maps_of = convscope.feature_maps(model, unquote(image), [LAYER])
    true_value = float(np.asarray(maps_of.layers[0].output)[0, channel, row, col])
    assert explained["matches"] is True
    assert explained["value"] == pytest.approx(true_value, rel=1e-4, abs=1e-6)
    shown = page_number(page.get_by_test_id("explain-value").inner_text())
    assert shown == pytest.approx(true_value, rel=1e-3, abs=1e-4)
    mapped = page_number(page.get_by_test_id("map-value").inner_text())
    feature_tiles = client.get(
        f"/api/models/run:{run['id']}@2/features/tiles?layer={LAYER}&image={image}"
    ).json()
    i = feature_tiles["channels"].index(channel)
    step = (feature_tiles["map_max"][i] - feature_tiles["map_min"][i]) / 255
    assert abs(mapped - true_value) <= step / 2 + 1e-3 * abs(true_value) + 1e-4

    # The epoch slider to 0: the kernels redraw, and they are other kernels.
    page.get_by_test_id("tab-kernels").click()
    expect(page.get_by_test_id("kernel-canvas")).to_be_visible()
    with page.expect_response(lambda r: "kernels/tiles.png" in r.url and "%400" in r.url):
        page.get_by_test_id("epoch-slider").focus()
        page.keyboard.press("Home")
    expect(page.get_by_test_id("epoch-value")).to_contain_text("0")
    page.wait_for_function(
        "before => document.querySelector('[data-testid=kernel-canvas]').toDataURL() !== before",
        arg="data:image/png;base64," + base64.b64encode(kernels_at_2).decode(),
    )
    assert canvas_png(page, "kernel-canvas") != kernels_at_2
    at_0 = client.get(f"/api/models/run:{run['id']}@0/kernels/tiles?layer={LAYER}").json()
    assert at_0["health"] != tiles["health"]  # the trained kernels are not the initial ones

    # An activation maximisation for a class, to its end.
    page.get_by_test_id("tab-maximize").click()
    page.get_by_label("Steps").fill("16")
    page.get_by_label("Steps").dispatch_event("change")
    page.get_by_test_id("maximize-start").click()
    result = page.get_by_test_id("maximize-result")
    expect(result).to_be_visible(timeout=120_000)
    expect(result.locator("img")).to_be_visible()

    # An uploaded image becomes the input, and the prediction names a class of the run.
    page.locator('label[for$="-upload"]').click()
    upload = tmp_path / "bar.png"
    upload.write_bytes(digit_png())
    with page.expect_response(lambda r: r.url.endswith("/api/images")) as posted:
        page.get_by_test_id("upload-input").set_input_files(str(upload))
    spec = posted.value.json()["spec"]
    expect(page.get_by_test_id("input-spec")).to_have_text(spec)
    predicted = client.get(f"/api/models/run:{run['id']}@0/predict?image={spec}&top=5").json()
    first = page.get_by_test_id("prediction").locator("li").first
    expect(first).to_have_attribute(
        "aria-label", re.compile(f"^{re.escape(predicted['top'][0][0])}:")
    )

    watch.assert_clean()
