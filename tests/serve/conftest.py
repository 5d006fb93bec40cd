"""Fixtures of the dashboard's server tests: a small real run store and a test client.

The store holds two tiny runs of one study (a few seconds to train), so API tests
compare the server's answers with what the library reads from the same store.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from convscope.serve.app import create_app
from convscope.serve.state import ServeConfig
from tests.stores import build_tiny_store


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with study ``tiny``: a 2-epoch run of each of ``tests.stores.TINY_MODELS``."""
    return build_tiny_store(tmp_path_factory.mktemp("tiny-store") / "runs")


@pytest.fixture(scope="session")
def tiny_ids(tiny_store: Path) -> dict[str, str]:
    """Model name -> run id in :func:`tiny_store`."""
    from convscope.store import open_store

    with open_store(tiny_store, create=False) as store:
        return {run.model: run.id for run in store.runs()}


def make_client(config: ServeConfig, **kwargs: Any) -> TestClient:
    """A test client of the app for ``config`` (enter it so the lifespan runs)."""
    kwargs.setdefault("base_url", "http://127.0.0.1")
    return TestClient(create_app(config), **kwargs)


@pytest.fixture
def client(tiny_store: Path) -> Iterator[TestClient]:
    """A client of the dashboard serving :func:`tiny_store`."""
    with make_client(ServeConfig(store=tiny_store)) as test_client:
        yield test_client


def raw_request(
    port: int, path: str, host: str = "127.0.0.1", headers: str = ""
) -> tuple[int, str]:
    """Send ``GET path`` byte for byte (no client normalises it); ``(status, body)``."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}Connection: close\r\n\r\n"
        sock.sendall(head.encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status_line, _, rest = data.decode("latin-1").partition("\r\n")
    return int(status_line.split()[1]), rest.partition("\r\n\r\n")[2]


class ThreadedServer:
    """A real uvicorn serving an app on a free port, in a thread of this process."""

    def __init__(self, config: ServeConfig) -> None:
        import socket
        import threading

        from convscope.serve.app import DashboardServer

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.app = create_app(config)
        self.server = DashboardServer(self.app, config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> ThreadedServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def get_json(client: TestClient, url: str, status: int = 200) -> Any:
    """The JSON answer of ``GET url``, which must come with ``status``."""
    response = client.get(url)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def error_of(client: TestClient, url: str, status: int = 400) -> str:
    """The one-line error of a request that must fail with ``status`` (a 4xx)."""
    assert 400 <= status < 500
    data = get_json(client, url, status)
    assert set(data) == {"error"} and "\n" not in data["error"]
    return data["error"]
