"""What every route of the dashboard's server shares: its settings, workers, jobs and store.

One :class:`ServeState` lives on ``app.state.convscope`` for the app's lifetime (no
process-wide state). CPU work (model forwards, embeddings, pictures) runs in a bounded
thread pool off the event loop, so ``/api/health`` answers at once while a long
computation runs; long work runs as a :class:`~convscope.serve.jobs.Job` with progress.
The run store is SQLite in WAL mode: each call opens its own connection
(:meth:`ServeState.store`), never one shared across threads, so a training process can
write while the dashboard reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from fastapi import Request

from convscope.serve.images import BoundedStore, upload_store
from convscope.serve.jobs import KEEP_FINISHED, JobManager
from convscope.serve.modelpool import ModelPool
from convscope.serve.tracing import SharedOrAlone

T = TypeVar("T")

WORKERS = 2
"""Threads for CPU work: the machine's cores, so requests queue instead of thrashing."""


@dataclass(frozen=True)
class ServeConfig:
    """The server's settings, from ``convscope serve``'s options."""

    store: Path = Path("convscope-runs")
    models: tuple[str, ...] = ()
    """Extra models named with ``--model`` at start (the only paths the server reads)."""
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    """Every request must carry it (query ``token=``, cookie or header) when set."""
    base_url: str = "/"
    """The path prefix the app is served under (``/proxy/8765/`` behind JupyterHub)."""
    workers: int = WORKERS


@dataclass
class ServeState:
    """The app's shared state: settings, the worker pool, the jobs, the loaded models,
    the uploaded images and the pictures of finished jobs (all bounded, in memory)."""

    config: ServeConfig
    executor: ThreadPoolExecutor = field(init=False)
    job_executor: ThreadPoolExecutor = field(init=False)
    """Long jobs get threads of their own, so maps being computed for every run of a page
    never hold up the quick requests (the run list, metrics, cached maps)."""
    tracing: SharedOrAlone = field(init=False)
    """Model work holds it shared, a torch.fx trace alone (see :mod:`convscope.serve.tracing`)."""
    jobs: JobManager = field(init=False)
    models: ModelPool = field(init=False)
    uploads: BoundedStore[str, Any] = field(init=False)
    pictures: BoundedStore[str, bytes] = field(init=False)
    """PNG bytes by job id (a maximisation's picture)."""

    def __post_init__(self) -> None:
        self.executor = ThreadPoolExecutor(
            max_workers=self.config.workers, thread_name_prefix="convscope-worker"
        )
        self.tracing = SharedOrAlone()
        self.job_executor = ThreadPoolExecutor(
            max_workers=self.config.workers, thread_name_prefix="convscope-job"
        )
        self.jobs = JobManager(self.job_executor)
        self.models = ModelPool(self.config.store, self.config.models)
        self.uploads = upload_store()
        self.pictures = BoundedStore(KEEP_FINISHED, 256 * 1024**2, len)

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run model work ``function(*args, **kwargs)`` in the worker pool; await its result."""
        return await self._in_pool(self.tracing.shared, function, *args, **kwargs)

    async def run_io(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """As :meth:`run` for work that runs no model (store reads, cached maps): it never
        waits for a trace."""
        return await self._in_pool(nullcontext, function, *args, **kwargs)

    async def run_alone(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """As :meth:`run`, with no other model work running meanwhile (a torch.fx trace)."""
        return await self._in_pool(self.tracing.alone, function, *args, **kwargs)

    async def _in_pool(
        self, hold: Callable[[], Any], function: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        def call() -> T:
            with hold():
                return function(*args, **kwargs)

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, call)

    @contextmanager
    def store(self) -> Iterator[Any]:
        """A fresh read connection to the run store, closed afterwards (one per call)."""
        from convscope.store import open_store

        with open_store(self.config.store, create=False) as store:
            yield store

    def close(self) -> None:
        """Stop the workers (running jobs finish; queued ones are dropped)."""
        self.jobs.cancel_all()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.job_executor.shutdown(wait=False, cancel_futures=True)


def state_of(request: Request) -> ServeState:
    """The :class:`ServeState` of the app serving ``request``."""
    return request.app.state.convscope
