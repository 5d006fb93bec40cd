"""Long work the dashboard starts and polls: embeddings not yet cached, maximisation.

A job runs in the server's worker pool, reports ``progress`` (0..1) and ends ``done``
with a JSON-ready ``result``, ``failed`` with the one-line error a user's mistake gives,
or ``cancelled``. Jobs are keyed: asking again for work already running (the same map
requested by many pages at once) returns the same job, so it is computed once.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Executor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from convscope.errors import ConvscopeError

KEEP_FINISHED = 200
"""Finished jobs remembered (oldest forgotten first), so polling pages find their result."""


class JobCancelled(Exception):
    """Raised inside a job's work by :meth:`Job.report` once the job was cancelled."""


@dataclass
class Job:
    """One piece of long work: its status, progress and result."""

    id: str
    key: str
    status: str = "queued"
    progress: float = 0.0
    message: str = ""
    result: Any = None
    error: str | None = None
    _cancelled: threading.Event = field(default_factory=threading.Event, repr=False)

    def report(self, done: float, total: float = 1.0, message: str = "") -> None:
        """Progress callback for the work: ``done`` of ``total``; stops a cancelled job."""
        if self._cancelled.is_set():
            raise JobCancelled
        self.progress = max(0.0, min(1.0, done / total if total else 1.0))
        if message:
            self.message = message

    def cancel(self) -> None:
        self._cancelled.set()
        if self.status == "queued":
            self.status = "cancelled"

    def to_dict(self) -> dict[str, Any]:
        """``{"status", "progress", "result"}`` (and ``error``/``message`` when there is one)."""
        data: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "progress": round(self.progress, 4),
            "result": self.result,
        }
        if self.message:
            data["message"] = self.message
        if self.error:
            data["error"] = self.error
        return data


class JobManager:
    """Starts keyed jobs in an executor and keeps them for polling."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._running: dict[str, Job] = {}

    def submit(
        self,
        key: str,
        work: Callable[[Job], Any],
        hold: Callable[[], AbstractContextManager[Any]] = nullcontext,
    ) -> Job:
        """Start ``work(job)`` unless a job with ``key`` is queued or running (then that job).

        The work runs holding ``hold()`` (model work: the server's tracing lock, shared).
        """
        with self._lock:
            running = self._running.get(key)
            if running is not None:
                return running
            job = Job(id=uuid.uuid4().hex[:12], key=key)
            self._jobs[job.id] = job
            self._running[key] = job
            self._forget_old()
        self._executor.submit(self._run, job, work, hold)
        return job

    def running(self, key: str) -> Job | None:
        """The queued or running job with ``key``, if any."""
        with self._lock:
            return self._running.get(key)

    def get(self, job_id: str) -> Job:
        """The job with ``job_id``; an unknown id is a :class:`ConvscopeError`."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise ConvscopeError(f"no job {job_id!r}: it finished long ago or never existed")
        return job

    def cancel_all(self) -> None:
        with self._lock:
            jobs = list(self._running.values())
        for job in jobs:
            job.cancel()

    def _run(
        self, job: Job, work: Callable[[Job], Any], hold: Callable[[], AbstractContextManager[Any]]
    ) -> None:
        if job.status == "cancelled":
            self._finish(job)
            return
        job.status = "running"
        try:
            with hold():
                job.result = work(job)
            job.progress, job.status = 1.0, "done"
        except JobCancelled:
            job.status = "cancelled"
        except ConvscopeError as error:
            job.status, job.error = "failed", str(error)
        except Exception as error:  # a bug: say so in one line, never a traceback
            job.status, job.error = "failed", f"internal error: {type(error).__name__}"
        finally:
            self._finish(job)

    def _finish(self, job: Job) -> None:
        with self._lock:
            if self._running.get(job.key) is job:
                del self._running[job.key]

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.status not in ("queued", "running")]
        for job in finished[: max(0, len(self._jobs) - KEEP_FINISHED)]:
            self._jobs.pop(job.id, None)
