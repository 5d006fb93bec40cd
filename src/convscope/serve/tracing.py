"""Forward passes and torch.fx tracing kept apart in the server's worker threads.

``torch.fx`` (the architecture diagram's graph) patches ``nn.Module.__call__`` for the
whole process while it traces, so a forward pass in another thread during a trace
fails ("module is not installed as a submodule"; seen under the 1,000-request load).
Every piece of model work in the server therefore holds this lock shared, and a trace
holds it alone: many forwards at once, or one trace. Writers are preferred, so a
trace waits only for the forwards already running.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class SharedOrAlone:
    """A readers-writer lock: ``shared()`` for many at once, ``alone()`` for one."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._sharing = 0
        self._alone = False
        self._waiting = 0
        self._mine = threading.local()

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Hold the lock with others (re-entrant in one thread)."""
        depth = getattr(self._mine, "depth", 0)
        with self._condition:
            if depth == 0:  # a thread already inside may go on, or it would wait on itself
                while self._alone or self._waiting:
                    self._condition.wait()
            self._sharing += 1
        self._mine.depth = depth + 1
        try:
            yield
        finally:
            self._mine.depth = depth
            with self._condition:
                self._sharing -= 1
                self._condition.notify_all()

    @contextmanager
    def alone(self) -> Iterator[None]:
        """Hold the lock by itself, once every shared holder has left."""
        if getattr(self._mine, "depth", 0):
            raise RuntimeError("a thread holding the lock shared cannot take it alone")
        with self._condition:
            self._waiting += 1
            while self._alone or self._sharing:
                self._condition.wait()
            self._waiting -= 1
            self._alone = True
        try:
            yield
        finally:
            with self._condition:
                self._alone = False
                self._condition.notify_all()
