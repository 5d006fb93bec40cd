"""The model explorer's screenshots: ``model-*.png`` in this folder (docs/dashboard/model-explorer.md).

Serves STORE with ``convscope serve --port 0`` and photographs each state of the model
explorer in Debian's Chromium, for the run named RUN (a LeNet-5 trained on MNIST with
a few epochs, e.g. ``convscope train lenet5 --data mnist --epochs 3 --subset 2000
--store STORE --name lenet5-mnist``) and for ``torchvision:resnet50``: the kernels and
their health over epochs, a unit's arithmetic, the kernels at epoch 0, a Grad-CAM, an
activation maximisation, the dataset examples of a channel, an upload, and ResNet-50's
diagram with its RGB first-layer kernels. Fails on any console error or failed request.

    python docs/dashboard/model_screenshots.py STORE [--run lenet5-mnist]
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image
from playwright.sync_api import expect
from screenshots import browser, serving  # this folder's script, run beside it

HERE = Path(__file__).resolve().parent
WAIT_MS = 120_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--run", default="lenet5-mnist", help="the run's name or id")
    args = parser.parse_args()
    with serving(args.store) as url:
        runs = httpx.get(f"{url}api/runs", trust_env=False).json()
        run = next(r for r in runs if args.run in (r["name"], r["id"]))
        shoot(url, run["id"])


def watch(page: Any) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url} {r.failure}"))
    page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status}: {r.url}"))
    return problems


def settle(page: Any) -> None:
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(600)


def shot(page: Any, name: str, *testids: str) -> None:
    """The union of the elements ``testids`` (whole page when none), as ``name``."""
    settle(page)
    if not testids:
        page.screenshot(path=HERE / name, full_page=True)
        return
    sx, sy = page.evaluate("[window.scrollX, window.scrollY]")  # boxes are in the viewport
    boxes = [page.get_by_test_id(t).first.bounding_box() for t in testids]
    x0 = min(b["x"] for b in boxes) + sx - 8
    y0 = min(b["y"] for b in boxes) + sy - 8
    x1 = max(b["x"] + b["width"] for b in boxes) + sx + 8
    y1 = max(b["y"] + b["height"] for b in boxes) + sy + 8
    clip = {"x": max(0, x0), "y": max(0, y0), "width": x1 - max(0, x0), "height": y1 - max(0, y0)}
    page.screenshot(path=HERE / name, full_page=True, clip=clip)
    print(f"wrote {HERE / name}")


def shoot(url: str, run: str) -> None:
    with browser() as context:
        context.set_default_timeout(WAIT_MS)
        expect.set_options(timeout=WAIT_MS)
        page = context.new_page()
        problems = watch(page)
        page.goto(f"{url}#/model?model=run:{run}&layer=conv2d_1&image=mnist:test:12")
        expect(page.get_by_test_id("kernel-canvas")).to_be_visible()
        shot(page, "model-explorer.png", "model-bar", "layer-panel")

        page.get_by_test_id("tab-features").click()
        maps = page.get_by_test_id("feature-canvas")
        expect(maps).to_be_visible()
        maps.click(position={"x": 6 + 30, "y": 15 + 30})
        expect(page.get_by_test_id("explain-value")).to_be_visible()
        shot(page, "model-unit.png", "layer-panel")

        page.get_by_test_id("tab-kernels").click()
        page.get_by_test_id("epoch-slider").focus()
        page.keyboard.press("Home")
        expect(page.get_by_test_id("epoch-value")).to_contain_text("0")
        expect(page.get_by_test_id("kernel-canvas")).to_be_visible()
        shot(page, "model-epoch0.png", "model-bar", "layer-panel")
        page.keyboard.press("End")

        page.get_by_test_id("tab-attribution").click()
        shot(page, "model-attribution.png", "layer-panel")

        page.get_by_test_id("tab-maximize").click()
        page.get_by_test_id("maximize-start").click()
        expect(page.get_by_test_id("maximize-result")).to_be_visible()
        shot(page, "model-maximize.png", "layer-panel")

        page.get_by_test_id("tab-examples").click()
        expect(page.get_by_test_id("examples-top")).to_be_visible()
        shot(page, "model-examples.png", "layer-panel")

        page.locator('label[for$="-upload"]').click()
        with tempfile.NamedTemporaryFile(suffix=".png") as picture:
            picture.write(seven_png())
            picture.flush()
            page.get_by_test_id("upload-input").set_input_files(picture.name)
            expect(page.get_by_test_id("input-spec")).to_contain_text("upload:")
        shot(page, "model-upload.png", "input-chooser", "prediction", "input-preview")

        page.goto(f"{url}#/model?model=torchvision:resnet50&layer=conv1&image=sample:chelsea")
        expect(page.get_by_test_id("kernel-canvas")).to_be_visible()
        shot(page, "model-resnet50.png")
        if problems:
            raise SystemExit("the page had problems:\n" + "\n".join(problems))


def seven_png() -> bytes:
    """A hand-drawn 7 (28x28 grayscale), as a user might upload."""
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[5:8, 6:22] = 255
    for row in range(8, 24):
        col = 21 - (row - 8) // 2
        pixels[row, col - 1 : col + 2] = 255
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


if __name__ == "__main__":
    main()
