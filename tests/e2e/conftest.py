"""Fixtures of the dashboard's end-to-end tests: the built page, a real store, a real
``convscope serve`` process and Debian's Chromium driven by Playwright.

Everything started here is stopped in a ``finally``: the server process (SIGTERM,
then SIGKILL after 15 s) and the browser context.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.stores import build_tiny_store

ROOT = Path(__file__).resolve().parents[2]
STATIC_INDEX = ROOT / "src" / "convscope" / "serve" / "static" / "index.html"
VIEWPORT = {"width": 1400, "height": 1000}
EXPECT_TIMEOUT_MS = 45_000
"""How long a check waits for the page (maps are computed on 2 busy cores meanwhile)."""


def js_fixed(value: float | None, digits: int = 3) -> str:
    """``value.toFixed(digits)`` as the page's ``fmt`` writes it (``–`` for no value).

    JavaScript rounds the exact binary value half away from zero; Python's ``format``
    rounds half to even, so the two differ on exact ties (0.0625).
    """
    if value is None:
        return "–"
    exact = Decimal(value if value != 0 else 0.0)
    return str(exact.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


@pytest.fixture(scope="session")
def dashboard_build() -> Path:
    """The built front end; ``make frontend`` once when it is missing."""
    if not STATIC_INDEX.is_file():
        if shutil.which("npm") is None:
            pytest.fail(
                "the dashboard's front end is not built and npm is missing: install "
                "Node >= 20.19 with npm, then run `make frontend` (make setup does it)"
            )
        done = subprocess.run(
            ["make", "--no-print-directory", "frontend"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0 or not STATIC_INDEX.is_file():
            pytest.fail(f"`make frontend` failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return STATIC_INDEX


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        pytest.fail("the browser tests need Debian's chromium at /usr/bin/chromium (make setup)")
    return CHROMIUM


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with study ``tiny``: a 2-epoch run of each of ``tests.stores.TINY_MODELS``."""
    return build_tiny_store(tmp_path_factory.mktemp("e2e-store") / "runs")


class Server:
    """``convscope serve`` as a subprocess; its output goes to a log file read for the URL."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.args = [sys.executable, "-m", "convscope", "serve", *args]
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> Server:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self.args, stdout=out, stderr=subprocess.STDOUT, cwd=self.log.parent
            )
        deadline = time.monotonic() + 60
        while True:
            found = re.search(r"convscope dashboard: (\S+)", self.log.read_text(errors="replace"))
            if found:
                self.url = found.group(1)
                break
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"convscope serve did not start:\n{self.output()}")
            time.sleep(0.05)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture
def serve(tmp_path: Path, dashboard_build: Path) -> Iterator[Any]:
    """``serve(*args)``: a started :class:`Server` (stopped after the test)."""
    servers: list[Server] = []

    def start(*args: str) -> Server:
        server = Server(list(args), tmp_path / f"serve-{len(servers)}.log")
        servers.append(server)
        return server.__enter__()

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


class PageWatch:
    """Every console error, page error, failed request and 4xx/5xx answer of a page."""

    def __init__(self, page: Any) -> None:
        self.problems: list[str] = []
        self.requests: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("request", lambda request: self.requests.append(request.url))
        page.on(
            "requestfailed",
            lambda request: self.problems.append(
                f"request failed: {request.method} {request.url} ({request.failure})"
            ),
        )
        page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.problems.append(f"console error: {message.text} at {message.location}")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.problems.append(
                f"HTTP {response.status}: {response.request.method} {response.url}"
            )

    def assert_clean(self) -> None:
        assert not self.problems, "the page had problems:\n" + "\n".join(self.problems)


@pytest.fixture
def browser(tmp_path: Path, chromium: Path) -> Iterator[Any]:
    """A fresh Chromium context (its own profile); closed after the test."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=str(chromium),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=VIEWPORT,
        )
        context.set_default_timeout(EXPECT_TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


def open_page(context: Any) -> tuple[Any, PageWatch]:
    """The context's page, watched from its first request."""
    page = context.pages[0] if context.pages else context.new_page()
    return page, PageWatch(page)


def api_json(client: httpx.Client, url: str, timeout: float = 120) -> Any:
    """The answer to ``GET url``; a ``202 {"job"}`` is polled until its result is there."""
    answer = client.get(url)
    deadline = time.monotonic() + timeout
    while answer.status_code == 202:
        job_id = answer.json()["job"]
        while True:
            job = client.get(f"/api/jobs/{job_id}").json()
            if job["status"] not in ("queued", "running"):
                break
            assert time.monotonic() < deadline, f"{url}: job {job_id} still {job['status']}"
            time.sleep(0.1)
        assert job["status"] == "done", job
        return job["result"]
    answer.raise_for_status()
    return answer.json()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Local servers only: no HTTP proxy from the environment for httpx or Chromium."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    assert "CONVSCOPE_HOME" in os.environ  # the suite's isolated cache (tests/conftest.py)
