"""``convscope serve`` as a user starts it: a real process, its printed URL, Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from convscope.cli.serve_cmds import dashboard_url, is_loopback
from tests.serve.conftest import raw_request

URL_LINE = re.compile(
    r"^convscope dashboard: (?P<url>http://(?P<host>[^/:]+|\[[^\]]+\]):(?P<port>\d+)"
    r"(?P<path>/[^ ?]*)(?:\?token=(?P<token>[^ ]+))?) \(Ctrl-C stops it\)$"
)


class Served:
    """A running ``convscope serve`` process and what it printed."""

    def __init__(self, process: subprocess.Popen[str], match: re.Match[str]) -> None:
        self.process = process
        self.url = match["url"]
        self.port = int(match["port"])
        self.path = match["path"]
        self.token = match["token"]
        self.local = f"http://127.0.0.1:{self.port}{self.path}"

    def stop(self, sig: int = signal.SIGINT) -> tuple[int, str]:
        """Send ``sig``; the exit status and everything it wrote on stderr."""
        self.process.send_signal(sig)
        try:
            _, err = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        return self.process.returncode, err


@contextmanager
def serve(*args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    """Start ``convscope serve --port 0 ARGS`` and wait for its URL line."""
    command = [sys.executable, "-m", "convscope", "serve", "--port", "0", *args]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or dict(os.environ),
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()))
    reader.start()
    reader.join(60)
    try:
        assert lines and lines[0], f"no URL printed; stderr: {process.stderr.read()}"
        match = URL_LINE.match(lines[0].rstrip("\n"))
        assert match, lines[0]
        yield Served(process, match)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_prints_its_url_answers_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    with serve("--store", str(tmp_path / "missing")) as served:
        assert served.url == f"http://127.0.0.1:{served.port}/" and served.token is None
        health = httpx.get(f"{served.local}api/health", timeout=10)
        assert health.status_code == 200 and health.json()["ok"] is True
        page = httpx.get(served.local, timeout=10)
        assert page.status_code == 200 and "<html" in page.text
        assert httpx.get(f"{served.local}api/runs", timeout=10).json() == []
        # the guards, with requests no client library would send as they are
        assert raw_request(served.port, "/api/health", host="evil.example")[0] == 403
        assert raw_request(served.port, "/api/health", host=f"localhost:{served.port}")[0] == 200
        assert raw_request(served.port, "/assets/../../etc/passwd")[0] == 400
        assert raw_request(served.port, "/assets/%2e%2e/%2E%2E/etc/passwd")[0] == 400
        assert raw_request(served.port, "/api/runs/a%2fb")[0] == 400
        # an open event stream does not hold up the stop
        with httpx.stream("GET", f"{served.local}api/events", timeout=10) as events:
            assert events.status_code == 200
            status, err = served.stop(signal.SIGINT)
    assert status == 0, err
    assert "Traceback" not in err


def test_sigterm_stops_it_cleanly(tmp_path: Path) -> None:
    with serve("--store", str(tmp_path)) as served:
        assert httpx.get(f"{served.local}api/health", timeout=10).status_code == 200
        status, err = served.stop(signal.SIGTERM)
    assert status == 0 and "Traceback" not in err


def test_token_protected_server_on_every_address(tmp_path: Path) -> None:
    with serve("--host", "0.0.0.0", "--token", "T0ken", "--store", str(tmp_path)) as served:
        assert served.token == "T0ken"
        health = f"http://127.0.0.1:{served.port}/api/health"
        refused = httpx.get(health, timeout=10)
        assert refused.status_code == 401 and "token" in refused.json()["error"]
        assert httpx.get(health, params={"token": "nope"}, timeout=10).status_code == 401
        bearer = httpx.get(health, headers={"Authorization": "Bearer T0ken"}, timeout=10)
        assert bearer.status_code == 200
        page = httpx.get(f"http://127.0.0.1:{served.port}/?token=T0ken", timeout=10)
        assert page.status_code == 200 and "HttpOnly" in page.headers["set-cookie"]
        status, _ = raw_request(served.port, "/api/health", headers="X-Convscope-Token: T0ken\r\n")
        assert status == 200
        assert raw_request(served.port, "/api/health")[0] == 401
        assert (
            raw_request(served.port, "/assets/%2e%2e/x", headers="X-Convscope-Token: T0ken\r\n")[0]
            == 400
        )
        status, err = served.stop()
    assert status == 0 and "Traceback" not in err


def test_non_loopback_host_gets_a_generated_token_and_base_url(tmp_path: Path) -> None:
    args = ("--host", "0.0.0.0", "--base-url", "proxy/8765", "--store", str(tmp_path))
    with serve(*args) as served:
        assert served.token is not None and len(served.token) >= 32
        assert served.path == "/proxy/8765/"
        base = f"http://127.0.0.1:{served.port}/proxy/8765/"
        assert httpx.get(f"{base}api/health", timeout=10).status_code == 401
        answer = httpx.get(f"{base}api/health", params={"token": served.token}, timeout=10)
        assert answer.status_code == 200
        served.stop()


def test_open_starts_the_browser(tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    browser.chmod(0o755)
    env = dict(os.environ, BROWSER=f"{browser} %s")
    with serve("--open", "--store", str(tmp_path / "runs"), env=env) as served:
        for _ in range(100):
            if opened.exists() and opened.read_text().strip():
                break
            threading.Event().wait(0.1)
        assert opened.read_text().strip() == served.url
        served.stop()


def test_store_that_is_a_file_is_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    done = subprocess.run(
        [sys.executable, "-m", "convscope", "serve", "--port", "0", "--store", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convscope: error: ")
    assert "is a file" in lines[0]


def test_port_in_use_is_one_line(tmp_path: Path, capsys) -> None:
    import socket

    from convscope.cli.app import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status = main(["serve", "--port", str(port), "--store", str(tmp_path)])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("convscope: error: cannot listen on") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("10.0.0.2", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_dashboard_url() -> None:
    assert dashboard_url("127.0.0.1", 8765, "/", None) == "http://127.0.0.1:8765/"
    assert dashboard_url("::1", 1, "/p/", "t") == "http://[::1]:1/p/?token=t"


def test_help_states_the_memory_bounds_and_their_defaults() -> None:
    from convscope.cli import serve_cmds
    from convscope.serve.cache import CACHE_MB
    from convscope.serve.modelpool import MAX_MB, MAX_MODELS

    assert (serve_cmds.DEFAULT_MAX_MODELS, serve_cmds.DEFAULT_MODELS_MB) == (MAX_MODELS, MAX_MB)
    assert serve_cmds.DEFAULT_CACHE_MB == CACHE_MB
    done = subprocess.run(
        [sys.executable, "-m", "convscope", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    text = " ".join(done.stdout.split())
    assert done.returncode == 0
    assert f"--max-models N most models kept loaded at once ({MAX_MODELS})" in text
    assert f"together ({MAX_MB})" in text and f"0 keeps none ({CACHE_MB})" in text


def test_the_bounds_reach_the_server(tmp_path: Path) -> None:
    from convscope.cli.app import build_parser
    from convscope.cli.serve_cmds import serve_config
    from convscope.serve.state import ServeState

    argv = ["serve", "--store", str(tmp_path), "--max-models", "2", "--models-mb", "64",
            "--cache-mb", "16"]  # fmt: skip
    config = serve_config(build_parser().parse_args(argv), 8765, None)
    assert (config.max_models, config.models_mb, config.cache_mb) == (2, 64, 16)
    state = ServeState(config)
    try:
        assert state.models.max_models == 2 and state.models.max_bytes == 64 * 1024**2
        assert state.cache.max_bytes == 16 * 1024**2
    finally:
        state.close()


@pytest.mark.parametrize(
    ("option", "value"), [("--max-models", "0"), ("--models-mb", "0"), ("--cache-mb", "-1")]
)
def test_bounds_that_leave_no_room_are_exit_2(tmp_path: Path, capsys, option, value) -> None:
    from convscope.cli.app import main

    assert main(["serve", "--port", "0", "--store", str(tmp_path), option, value]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"convscope: error: {option} must be at least") and err.count("\n") == 1


def test_a_server_with_a_pool_of_one_serves_two_models_in_turn(tmp_path: Path) -> None:
    from convscope.data.datasets import load_dataset

    load_dataset("mnist", "test")  # a request never downloads one
    with serve("--store", str(tmp_path), "--max-models", "1", "--cache-mb", "0") as served:
        for model, layer in [("lenet5", "conv2d_1"), ("lenet", "conv2d_1"), ("lenet5", "conv2d_1")]:
            url = f"{served.local}api/models/{model}/features/tiles"
            answer = httpx.get(url, params={"layer": layer, "image": "mnist:test:0"}, timeout=60)
            assert answer.status_code == 200, answer.text
            assert answer.json()["model"] == model
        status, err = served.stop()
    assert status == 0 and "Traceback" not in err
