"""The README's dashboard screenshots: ``runs.png`` and ``explorer.png`` in this folder.

Serves STORE (a study of four runs, e.g. what ``make demo`` leaves in demo-out/runs)
with ``convscope serve --port 0`` and photographs the two views in Debian's Chromium:
the Runs view with every run ticked and the study's verdict, and the embedding
explorer with the four UMAP maps and one class picked in the legend (linked selection).
UMAP's first map takes about a minute and a half when the maps are not cached yet.

    python docs/dashboard/screenshots.py STORE [--class Bag]
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect, sync_playwright

HERE = Path(__file__).resolve().parent
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def serving(store: Path) -> Iterator[str]:
    """``convscope serve --port 0 --store STORE`` while the block runs; its URL."""
    server = subprocess.Popen(
        [sys.executable, "-m", "convscope", "serve", "--port", "0", "--store", str(store)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = re.search(r"(http://\S+/)", server.stdout.readline())[1]
        for _ in range(300):
            try:
                httpx.get(f"{url}api/health", timeout=5, trust_env=False)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@contextmanager
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, in a fresh profile, with a 1400x1000 window."""
    with tempfile.TemporaryDirectory() as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path="/usr/bin/chromium",
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--method", default="umap", choices=("umap", "pca", "tsne"))
    parser.add_argument("--class", dest="picked", default="Bag", help="the class to select")
    args = parser.parse_args()
    with serving(args.store) as url:
        shoot(url, args.method, args.picked)


def shoot(url: str, method: str, picked: str) -> None:
    with browser() as context:
        page = context.new_page()
        page.goto(f"{url}#/runs?method={method}")
        expect(page.locator("table.runs-table tbody tr")).to_have_count(4, timeout=30_000)
        expect(page.locator(".study .verdict")).to_be_visible(timeout=300_000)
        expect(page.locator(".chart-pair .chart canvas").first).to_be_visible()
        page.wait_for_timeout(1500)
        box = page.locator(".study .verdict").bounding_box()  # down to the verdict's end
        height = max(1000, round(box["y"] + box["height"] + 16))
        clip = {"x": 0, "y": 0, "width": 1400, "height": height}
        page.screenshot(path=HERE / "runs.png", full_page=True, clip=clip)

        page.get_by_role("link", name="Explore the embeddings of the ticked runs").click()
        expect(page.locator("article.map-card")).to_have_count(4, timeout=60_000)
        page.locator(f"#method-{method}").check()
        expect(page.locator(".map-card table.scores")).to_have_count(4, timeout=300_000)
        page.locator(".class-legend button", has_text=picked).first.click()
        page.wait_for_timeout(1500)
        last = page.locator("article.map-card").last.bounding_box()  # all four maps
        clip = {"x": 0, "y": 0, "width": 1400, "height": round(last["y"] + last["height"] + 16)}
        page.screenshot(path=HERE / "explorer.png", full_page=True, clip=clip)


if __name__ == "__main__":
    main()
