"""Live events: ``GET /api/events`` tells the page what changed in the store, as it happens.

Another process (``convscope train`` or ``study``) writes the store; an
:class:`EventWatcher` polls it about every half second, on a connection of its own in a
thread of its own (never the event loop, never the workers busy with maps), and sends
each subscriber, as server-sent events:

- ``data: {"run": ID, "epoch": N}`` for every epoch committed,
- ``event: run`` with the new run's ``{"run", "name", "study", "model", "status"}``,
- ``event: status`` with ``{"run", "status"}`` when a run's status changes.

A comment line keeps idle connections open; a client that leaves is dropped. The page
reads what is new with a cursor read (``/api/runs/{id}/metrics``) on each event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

router = APIRouter()

POLL_SECONDS = 0.5
KEEPALIVE_SECONDS = 15.0
QUEUE_SIZE = 1000
"""Events waiting for one client; a client that falls this far behind is dropped."""


@dataclass(frozen=True)
class Event:
    """One server-sent event: its type (None: the default ``message``) and JSON data."""

    kind: str | None
    data: dict[str, Any]

    def encode(self) -> bytes:
        head = f"event: {self.kind}\n" if self.kind else ""
        return f"{head}data: {json.dumps(self.data)}\n\n".encode()


@dataclass(frozen=True)
class RunState:
    """What the watcher remembers of a run between polls."""

    status: str
    epochs_completed: int


def read_runs(store_path: Path) -> dict[str, tuple[RunState, dict[str, Any]]] | None:
    """Every run's state and description, on a fresh connection; None without a store."""
    from convscope.store import open_store
    from convscope.store.files import DB_NAME

    if not (Path(store_path).expanduser() / DB_NAME).is_file():
        return None
    with open_store(store_path, create=False) as store:
        return {
            r.id: (
                RunState(r.status, r.epochs_completed),
                {
                    "run": r.id,
                    "name": r.name,
                    "study": r.study,
                    "model": r.model,
                    "status": r.status,
                },
            )
            for r in store.runs()
        }


def changes(
    before: dict[str, RunState], now: dict[str, tuple[RunState, dict[str, Any]]]
) -> list[Event]:
    """The events that take the store from ``before`` to ``now``."""
    events: list[Event] = []
    for run_id, (state, description) in now.items():
        old = before.get(run_id)
        if old is None:
            events.append(Event("run", description))
        elif old.status != state.status:
            events.append(Event("status", {"run": run_id, "status": state.status}))
        first = -1 if old is None else old.epochs_completed
        for epoch in range(first + 1, state.epochs_completed + 1):
            events.append(Event(None, {"run": run_id, "epoch": epoch}))
    return events


class EventWatcher:
    """Polls the store and fans what changed out to every subscriber's queue."""

    def __init__(
        self,
        store_path: Path,
        interval: float = POLL_SECONDS,
        keepalive: float = KEEPALIVE_SECONDS,
    ) -> None:
        self.store_path = store_path
        self.interval = interval
        self.keepalive = keepalive
        self.subscribers: set[asyncio.Queue[Event | None]] = set()
        self._known: dict[str, RunState] | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="convscope-events")

    def start(self) -> None:
        """Start polling (inside the running event loop)."""
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        """Stop polling and end every subscriber's stream."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.end_streams()
        self._thread.shutdown(wait=False, cancel_futures=True)

    def end_streams(self) -> None:
        """Tell every subscriber's stream to end (the server is stopping)."""
        for queue in list(self.subscribers):
            _end(queue)

    def subscribe(self) -> asyncio.Queue[Event | None]:
        queue: asyncio.Queue[Event | None] = asyncio.Queue(QUEUE_SIZE)
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event | None]) -> None:
        self.subscribers.discard(queue)

    async def poll(self) -> list[Event]:
        """Read the store once (in the watcher's thread) and return what changed."""
        loop = asyncio.get_running_loop()
        now = await loop.run_in_executor(self._thread, read_runs, self.store_path)
        if now is None:  # no store yet: every run it will hold is new
            self._known = {}
            return []
        known, self._known = self._known, {run_id: state for run_id, (state, _) in now.items()}
        return [] if known is None else changes(known, now)

    async def _watch(self) -> None:
        while True:
            try:
                events = await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception:  # a store mid-migration or locked: try again next time
                events = []
            self.broadcast(events)
            await asyncio.sleep(self.interval)

    def broadcast(self, events: list[Event]) -> None:
        """Queue ``events`` for every subscriber; one too slow to keep up is ended."""
        for event in events:
            for queue in list(self.subscribers):
                if not _offer(queue, event):  # its stream ends and the page reconnects
                    self.unsubscribe(queue)
                    _end(queue)


def _offer(queue: asyncio.Queue[Any], item: Any) -> bool:
    """Put ``item`` without waiting; False when the queue is full."""
    try:
        queue.put_nowait(item)
    except asyncio.QueueFull:
        return False
    return True


def _end(queue: asyncio.Queue[Any]) -> None:
    """End a stream: drop what it has not read and put the end marker (None) in its place.

    The page's EventSource then reconnects and reloads what it shows, instead of keeping
    an open stream that no longer gets events.
    """
    while not queue.empty():
        queue.get_nowait()
    queue.put_nowait(None)


def watcher_of(request: Request) -> EventWatcher:
    return request.app.state.events


async def event_stream(watcher: EventWatcher, request: Request) -> AsyncIterator[bytes]:
    """The bytes of one client's stream, until it leaves or the server stops."""
    queue = watcher.subscribe()
    try:
        yield b": connected\n\n"
        while not await request.is_disconnected():
            try:
                event = await asyncio.wait_for(queue.get(), timeout=watcher.keepalive)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if event is None:  # the server is stopping
                return
            yield event.encode()
    finally:
        watcher.unsubscribe(queue)


@router.get("/api/events")
async def events(request: Request) -> StreamingResponse:
    """Server-sent events: one per committed epoch, new run and status change."""
    return StreamingResponse(
        event_stream(watcher_of(request), request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
