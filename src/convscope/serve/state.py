"""What every route of the dashboard's server shares: its settings, workers, jobs and store.

One :class:`ServeState` lives on ``app.state.convscope`` for the app's lifetime (no
process-wide state). CPU work (model forwards, embeddings, pictures) runs in a bounded
thread pool off the event loop, so ``/api/health`` answers at once while a long
computation runs; long work runs as a :class:`~convscope.serve.jobs.Job` with progress.
The run store is SQLite in WAL mode: each call opens its own connection
(:meth:`ServeState.store`), never one shared across threads, so a training process can
write while the dashboard reads. Memory is bounded: the model pool by models and bytes,
the result cache (:mod:`convscope.serve.cache`) by bytes, uploads and pictures by both.
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

from convscope.models.loaded import LoadedModel
from convscope.serve.cache import CACHE_MB, ResultCache, result_key
from convscope.serve.images import BoundedStore, upload_store
from convscope.serve.jobs import KEEP_FINISHED, JobManager
from convscope.serve.modelpool import MAX_MB, MAX_MODELS, ModelPool
from convscope.serve.tracing import SharedOrAlone

T = TypeVar("T")

WORKERS = 2
"""Threads for CPU work: the machine's cores, so requests queue instead of thrashing."""

MODEL_WORKERS = 1
"""Threads for model work (forward passes): one, whose torch threads use every core. Two
threads taking turns make each pass slower (``resnet50`` at 224x224 on 2 cores: 95 ms on
one thread, 118 ms alternating between two; each thread has its own OpenMP team), and two
passes at once share the same cores anyway."""


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
    model_workers: int = MODEL_WORKERS
    max_models: int = MAX_MODELS
    """Most models the pool keeps loaded (least recently used dropped first)."""
    models_mb: int = MAX_MB
    """Most MB of parameters and buffers the pooled models hold together."""
    cache_mb: int = CACHE_MB
    """Most MB of results (maps, tiles, pictures) the result cache keeps."""


@dataclass
class ServeState:
    """The app's shared state: settings, the worker pool, the jobs, the loaded models,
    the uploaded images and the pictures of finished jobs (all bounded, in memory)."""

    config: ServeConfig
    executor: ThreadPoolExecutor = field(init=False)
    """Threads for work that runs no model (store reads, cached maps, uploads)."""
    model_executor: ThreadPoolExecutor = field(init=False)
    """The thread(s) for model work (:data:`MODEL_WORKERS`)."""
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
    cache: ResultCache = field(init=False)
    """Results the routes computed, by model identity, weights, route and parameters."""

    def __post_init__(self) -> None:
        self.executor = ThreadPoolExecutor(
            max_workers=self.config.workers, thread_name_prefix="convscope-worker"
        )
        self.model_executor = ThreadPoolExecutor(
            max_workers=self.config.model_workers, thread_name_prefix="convscope-model"
        )
        self.tracing = SharedOrAlone()
        self.job_executor = ThreadPoolExecutor(
            max_workers=self.config.workers, thread_name_prefix="convscope-job"
        )
        self.jobs = JobManager(self.job_executor)
        self.models = ModelPool(
            self.config.store,
            self.config.models,
            max_models=self.config.max_models,
            max_bytes=self.config.models_mb * 1024**2,
        )
        self.cache = ResultCache(self.config.cache_mb * 1024**2)
        self.uploads = upload_store()
        self.pictures = BoundedStore(KEEP_FINISHED, 256 * 1024**2, len)

    async def run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run model work ``function(*args, **kwargs)`` on the model thread; await its result."""
        return await self._in_pool(
            self.model_executor, self.tracing.shared, function, *args, **kwargs
        )

    async def run_io(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """As :meth:`run` for work that runs no model (store reads, cached maps), in the
        worker pool: it never waits for model work or a trace."""
        return await self._in_pool(self.executor, nullcontext, function, *args, **kwargs)

    async def run_alone(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Model work with no other model work running meanwhile (a torch.fx trace), in the
        worker pool: waiting for a job to finish never holds up the model thread."""
        return await self._in_pool(self.executor, self.tracing.alone, function, *args, **kwargs)

    async def _in_pool(
        self,
        executor: ThreadPoolExecutor,
        hold: Callable[[], Any],
        function: Callable[..., T],
        *args: Any,
        **kwargs: Any,
    ) -> T:
        def call() -> T:
            with hold():
                return function(*args, **kwargs)

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, call)

    def cached(
        self,
        spec: str,
        route: str,
        params: dict[str, Any],
        compute: Callable[[LoadedModel], T],
        size: Callable[[T], int] | None = None,
    ) -> T:
        """``compute(model)`` for the model ``spec`` names, from the result cache when
        this route was asked with these ``params`` before (blocking: call it in a worker).

        The key holds the model's identity (pool key, a file's stamp) and its weights, so
        another epoch or a changed ``--model`` file is another entry.
        """
        identity, model = self.models.entry(spec)
        key = result_key(identity, model.weights, route, **params)
        return self.cache.get_or_compute(key, lambda: compute(model), size)

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
        self.model_executor.shutdown(wait=False, cancel_futures=True)
        self.job_executor.shutdown(wait=False, cancel_futures=True)


def state_of(request: Request) -> ServeState:
    """The :class:`ServeState` of the app serving ``request``."""
    return request.app.state.convscope
