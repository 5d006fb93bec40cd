"""Live events: every epoch another process commits reaches ``/api/events`` promptly."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from convscope.serve.events import Event, RunState, changes
from convscope.serve.state import ServeConfig
from convscope.store import open_store
from tests.serve.conftest import ThreadedServer


def describe(run_id: str, status: str = "running") -> dict[str, Any]:
    return {"run": run_id, "name": "n", "study": None, "model": "m", "status": status}


def test_changes_new_run_epochs_and_status() -> None:
    now = {"a": (RunState("running", 1), describe("a"))}
    assert changes({}, now) == [
        Event("run", describe("a")),
        Event(None, {"run": "a", "epoch": 0}),
        Event(None, {"run": "a", "epoch": 1}),
    ]
    later = {"a": (RunState("finished", 3), describe("a", "finished"))}
    assert changes({"a": RunState("running", 1)}, later) == [
        Event("status", {"run": "a", "status": "finished"}),
        Event(None, {"run": "a", "epoch": 2}),
        Event(None, {"run": "a", "epoch": 3}),
    ]
    assert changes({"a": RunState("finished", 3)}, later) == []


def test_event_encoding() -> None:
    assert Event(None, {"run": "a", "epoch": 2}).encode() == b'data: {"run": "a", "epoch": 2}\n\n'
    assert Event("status", {"run": "a"}).encode() == b'event: status\ndata: {"run": "a"}\n\n'


class EventReader:
    """Reads a server's ``/api/events`` in a thread: ``(arrival time, kind, data)`` items."""

    def __init__(self, url: str) -> None:
        self.items: queue.Queue[tuple[float, str | None, Any]] = queue.Queue()
        self.connected = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(url,), daemon=True)
        self.thread.start()
        assert self.connected.wait(10), "the event stream did not open"

    def _read(self, url: str) -> None:
        with httpx.Client(timeout=30) as client, client.stream("GET", url) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            kind = None
            for line in response.iter_lines():
                if self.stop.is_set():
                    return
                if line.startswith(": connected"):
                    self.connected.set()
                elif line.startswith(":"):
                    self.items.put((time.monotonic(), "comment", line))
                elif line.startswith("event: "):
                    kind = line.removeprefix("event: ")
                elif line.startswith("data: "):
                    self.items.put((time.monotonic(), kind, json.loads(line[6:])))
                    kind = None
            self.items.put((time.monotonic(), "end", None))

    def next(self, kind: str | None = None, timeout: float = 10) -> tuple[float, Any]:
        """The next item of ``kind`` (others skipped) and when it arrived."""
        deadline = time.monotonic() + timeout
        while True:
            at, got, data = self.items.get(timeout=max(0.01, deadline - time.monotonic()))
            if got == kind:
                return at, data


@pytest.fixture
def live(tmp_path: Path):
    """A real server on an empty store that the test writes to, as training would."""
    store_path = tmp_path / "runs"
    with ThreadedServer(ServeConfig(store=store_path)) as server:
        yield server, store_path


def test_epochs_status_and_new_runs_reach_the_stream(live) -> None:
    server, store_path = live
    reader = EventReader(f"{server.url}/api/events")
    with open_store(store_path) as store:  # the store appears after the server started
        run = store.create_run(name="r", model="lenet", dataset="mnist", config={})
        _, data = reader.next("run")
        assert data == {"run": run.id, "name": "r", "study": None, "model": "lenet"} | {
            "status": "running"
        }
        for epoch in range(3):
            arrays = {("snapshot", "hidden"): np.zeros((4, 2), dtype=np.float32)}
            store.commit_epoch(run.id, epoch, metrics={"val_acc": 0.5}, arrays=arrays)
            committed = time.monotonic()
            at, data = reader.next(None)
            assert data == {"run": run.id, "epoch": epoch}
            assert at - committed < 2
        store.set_status(run.id, "finished")
        _, data = reader.next("status")
        assert data == {"run": run.id, "status": "finished"}
    reader.stop.set()


def test_keepalive_and_a_client_that_leaves(live) -> None:
    server, _ = live
    watcher = server.app.state.events
    watcher.keepalive = 0.2
    reader = EventReader(f"{server.url}/api/events")
    _, line = reader.next("comment", timeout=5)
    assert line == ": keep-alive"
    assert len(watcher.subscribers) == 1
    reader.stop.set()
    reader.thread.join(5)
    deadline = time.monotonic() + 5
    while watcher.subscribers and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not watcher.subscribers


def test_stopping_the_server_ends_open_streams(tmp_path: Path) -> None:
    server = ThreadedServer(ServeConfig(store=tmp_path / "runs"))
    with server:
        reader = EventReader(f"{server.url}/api/events")
        started = time.monotonic()
    assert time.monotonic() - started < 3
    assert not server.thread.is_alive()
    _, data = reader.next("end", timeout=5)
    assert data is None


@pytest.mark.slow
def test_training_beside_the_server_streams_every_epoch(tmp_path: Path) -> None:
    store_path = tmp_path / "runs"
    with ThreadedServer(ServeConfig(store=store_path)) as server:
        reader = EventReader(f"{server.url}/api/events")
        command = [sys.executable, "-m", "convscope", "train", "sequential"]
        command += ["--data", "fashion-mnist", "--epochs", "2", "--subset", "300"]
        command += ["--batch-size", "100", "--probe-per-class", "2", "--record", "hidden"]
        command += ["--store", str(store_path)]
        training = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ)
        )
        try:
            _, new_run = reader.next("run", timeout=120)
            arrivals = {}
            for _ in range(3):
                at, data = reader.next(None, timeout=120)
                assert data["run"] == new_run["run"]
                arrivals[data["epoch"]] = at
            assert training.wait(timeout=300) == 0, (
                training.stderr.read() if training.stderr else ""
            )
        finally:
            if training.poll() is None:
                training.kill()
        assert sorted(arrivals) == [0, 1, 2]
        with open_store(store_path, create=False) as store:
            epochs = store.epochs(new_run["run"])
        for record in epochs:  # committed (wall clock) vs arrived (monotonic): compare gaps
            committed = _to_epoch_seconds(record.committed)
            lag = (arrivals[record.epoch] - time.monotonic()) - (committed - time.time())
            assert lag < 2, (record.epoch, lag)
        _, status = reader.next("status", timeout=30)
        assert status == {"run": new_run["run"], "status": "finished"}
        reader.stop.set()


def _to_epoch_seconds(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_a_client_too_slow_to_keep_up_gets_its_stream_ended(tmp_path: Path) -> None:
    """Its queue full, its stream ends (the page's EventSource reconnects), never hangs."""
    import asyncio

    from convscope.serve.events import Event, EventWatcher

    async def scenario() -> tuple[list[object], bool, int]:
        watcher = EventWatcher(tmp_path / "runs")
        slow, quick = watcher.subscribe(), watcher.subscribe()
        for epoch in range(slow.maxsize):
            slow.put_nowait(Event(None, {"run": "r", "epoch": epoch}))
        watcher.broadcast([Event(None, {"run": "r", "epoch": 99})])
        left = [slow.get_nowait() for _ in range(slow.qsize())]
        return left, slow in watcher.subscribers, quick.qsize()

    left, still_subscribed, quick_got = asyncio.run(scenario())
    assert left == [None] and not still_subscribed  # the stream's end marker, nothing else
    assert quick_got == 1  # the client that keeps up got the event
