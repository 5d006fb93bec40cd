"""The dashboard's result cache: probe results and pictures, LRU, bounded by bytes.

Every result the explorer asks for twice (feature maps, tiles, kernels, explanations,
attributions, their PNGs) comes from here the second time. Keys are tuples the routes
build from the model's identity (its pool key, plus the file's stamp for a ``--model``
file; see :meth:`~convscope.serve.modelpool.ModelPool.entry`), its ``weights``, the
route and the request's normalised parameters (:func:`result_key`), so two spellings
of one request (``run:ab12@3`` and the full id) share one entry.

Computing is single-flight: a request for a key another thread is computing waits
for that result instead of computing it again (the page asks a panel's JSON and its
PNG at once; both come from one forward pass). A failure is not cached: every waiter
gets the error, and the next request tries again.

Sizes are estimated by walking the value (:func:`approx_size`: arrays, bytes, strings,
containers, dataclasses); a value larger than the whole cache is returned but not kept.
The cache lives on the app's state (no module-level cache).
"""

from __future__ import annotations

import dataclasses
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

CACHE_MB = 256
"""Default bound of the result cache, in MB (``convscope serve --cache-mb``)."""

OVERHEAD = 64
"""Bytes counted for each object the size estimate visits (headers, pointers)."""


def approx_size(value: Any, _seen: set[int] | None = None) -> int:
    """About how many bytes ``value`` holds: arrays and tensors by their data, bytes and
    strings by length, containers, dataclasses and plain objects by their contents."""
    seen = set() if _seen is None else _seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return OVERHEAD + len(value)
    if isinstance(value, str):
        return OVERHEAD + len(value)
    if isinstance(value, np.ndarray):
        return OVERHEAD + value.nbytes
    if isinstance(value, (int, float, bool, complex)) or value is None:
        return OVERHEAD
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        return OVERHEAD + value.numel() * value.element_size()
    if torch is not None and isinstance(value, torch.nn.Module):
        tensors = [*value.parameters(), *value.buffers()]
        return OVERHEAD + sum(t.numel() * t.element_size() for t in tensors)
    if isinstance(value, Mapping):
        return OVERHEAD + sum(approx_size(k, seen) + approx_size(v, seen) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return OVERHEAD + sum(approx_size(item, seen) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return OVERHEAD + sum(approx_size(getattr(value, f.name), seen) for f in fields)
    contents = getattr(value, "__dict__", None)
    if isinstance(contents, dict):
        return OVERHEAD + approx_size(contents, seen)
    return OVERHEAD


def result_key(identity: str, weights: str, route: str, **params: Any) -> tuple[Hashable, ...]:
    """The cache key of a route's result: the model's identity and weights, the route,
    and its parameters in name order (a list becomes a tuple)."""
    items = tuple(
        (name, tuple(value) if isinstance(value, list) else value)
        for name, value in sorted(params.items())
    )
    return (identity, weights, route, items)


class _Flight:
    """A computation in progress: waiters block on ``done`` and read its outcome."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class ResultCache:
    """A thread-safe LRU map of results bounded by their estimated bytes, single-flight.

    ``hits``, ``misses`` (computations started) and ``waits`` (requests that joined a
    computation in progress) count what happened, for tests and benchmarks.
    """

    def __init__(self, max_bytes: int = CACHE_MB * 1024**2) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be at least 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._flights: dict[Hashable, _Flight] = {}
        self._lock = threading.Lock()
        self._nbytes = 0
        self.hits = self.misses = self.waits = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items

    @property
    def nbytes(self) -> int:
        """The estimated bytes of the kept results (never above :attr:`max_bytes`)."""
        with self._lock:
            return self._nbytes

    def get(self, key: Hashable) -> Any | None:
        """The result kept under ``key`` (now the most recently used), or None."""
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return entry[0]

    def put(self, key: Hashable, value: Any, size: int | None = None) -> None:
        """Keep ``value`` under ``key``, dropping the least recently used to stay in bounds."""
        size = approx_size(value) if size is None else size
        with self._lock:
            self._put(key, value, size)

    def get_or_compute(
        self, key: Hashable, compute: Callable[[], T], size: Callable[[T], int] | None = None
    ) -> T:
        """The result under ``key``; computed with ``compute()`` (blocking) when not kept.

        While one thread computes a key, others asking for it wait and share the result
        (or the error). ``size(value)`` overrides the estimate of :func:`approx_size`.
        """
        with self._lock:
            entry = self._items.get(key)
            if entry is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return entry[0]
            flight = self._flights.get(key)
            owner = flight is None
            if owner:
                flight = self._flights[key] = _Flight()
                self.misses += 1
            else:
                self.waits += 1
        assert flight is not None
        if not owner:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value
        try:
            value = compute()
        except BaseException as error:
            flight.error = error
            raise
        else:
            flight.value = value
            nbytes = approx_size(value) if size is None else size(value)
            with self._lock:
                self._put(key, value, nbytes)
            return value
        finally:
            with self._lock:
                self._flights.pop(key, None)
            flight.done.set()

    def clear(self) -> None:
        """Forget every kept result (computations in progress finish and are kept)."""
        with self._lock:
            self._items.clear()
            self._nbytes = 0

    def _put(self, key: Hashable, value: Any, size: int) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self._nbytes -= old[1]
        if size > self.max_bytes:
            return  # larger than the whole cache: answered, not kept
        self._items[key] = (value, size)
        self._nbytes += size
        while self._nbytes > self.max_bytes:
            _, (_, dropped) = self._items.popitem(last=False)
            self._nbytes -= dropped
