"""Bounded pools of Segmenters, and the admission gate in front of them.

LiteRT interpreters are not thread-safe, so a Segmenter is used by one thread at a time.
The service keeps ``workers`` Segmenters per model, all loaded at start-up (model files are
read once, never per request), and runs at most ``workers`` inferences at once across all
models, in worker threads, never on the event loop. Requests beyond that wait, at most
``queue`` of them; past that the service answers 503 at once instead of queueing without
bound. Memory is therefore bounded by (workers + queue) requests in flight.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue as queue_mod
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from ..errors import OptionError, SegliteError
from ..image import DEFAULT_MAX_PIXELS
from ..segmenter import Segmenter

log = logging.getLogger("seglite.serve")
T = TypeVar("T")


class Overloaded(SegliteError):
    """Every worker is busy and the queue is full, or the service is shutting down."""

    http_status = 503


def available_cpus() -> int:
    """CPUs this process may run on (the affinity mask, not the host's core count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class ModelPool:
    """``size`` Segmenters for one model; each is leased to one thread at a time."""

    def __init__(
        self,
        model: str | os.PathLike | None,
        *,
        size: int,
        num_threads: int = 1,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ):
        if size < 1:
            raise OptionError(f"a model pool needs at least one Segmenter, got {size}")
        segs: list[Segmenter] = []
        try:
            for _ in range(size):
                segs.append(Segmenter(model, num_threads=num_threads, max_pixels=max_pixels))
        except BaseException:
            for s in segs:
                s.close()
            raise
        first = segs[0]
        self.size = size
        self.num_threads = num_threads
        self.name: str = first.model_name
        self.entry = first.entry
        self.model_path = first.model_path
        self.label_set = first.label_set
        self.input_size = first.input_size
        self.accurate_scales = first.accurate_scales
        self.output_kind: str = first.backend.output_kind
        self.max_pixels = max_pixels
        # LIFO: the most recently used interpreter has the warmest caches.
        self._free: queue_mod.LifoQueue[Segmenter] = queue_mod.LifoQueue()
        for s in segs:
            self._free.put(s)
        self._closed = False

    @property
    def confidence(self) -> bool:
        """Whether the model gives class scores (ArgMax models give only ids)."""
        return self.output_kind != "argmax"

    @contextlib.contextmanager
    def lease(self, *, timeout: float = 60.0) -> Iterator[Segmenter]:
        """Borrow a Segmenter (blocking; call from a worker thread). Per-request options
        (accurate mode, confidence masks) go to its ``segment()`` call."""
        if self._closed:
            raise Overloaded("the service is shutting down")
        try:
            seg = self._free.get(timeout=timeout)
        except queue_mod.Empty:
            raise Overloaded(
                f"no free interpreter for {self.name} within {timeout:.0f} s"
            ) from None
        try:
            yield seg
        finally:
            self._free.put(seg)

    def info(self) -> dict[str, Any]:
        """What /v1/models says about this model."""
        ls = self.label_set
        e = self.entry
        return {
            "name": self.name,
            "description": e.description if e else f"model file {self.model_path.name}",
            "file": self.model_path.name,
            "input_size": list(self.input_size),
            "accurate_scales": list(self.accurate_scales),
            "classes": len(ls),
            "labels": list(ls.names),
            "colors": ["#%02x%02x%02x" % ls.color(i) for i in range(len(ls))],
            "output": self.output_kind,
            "confidence": self.confidence,
            "quantized": e.quantized if e else None,
            "workers": self.size,
            "threads": self.num_threads,
        }

    def close(self, timeout: float = 30.0) -> bool:
        """Wait for every leased Segmenter to come back, then free them all.

        Returns False if some were still in use after ``timeout`` seconds (those are left
        open rather than closed under a running thread).
        """
        self._closed = True
        deadline = time.monotonic() + timeout
        closed = 0
        while closed < self.size:
            try:
                seg = self._free.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue_mod.Empty:
                log.warning(
                    "%s: %d interpreter(s) still busy at shutdown", self.name, self.size - closed
                )
                return False
            seg.close()
            closed += 1
        return True


class Service:
    """All model pools behind one concurrency limit and one bounded queue."""

    def __init__(
        self,
        models: Sequence[str | os.PathLike | None],
        *,
        workers: int,
        threads: int = 1,
        queue: int = 16,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
    ):
        if workers < 1:
            raise OptionError(f"workers must be at least 1, got {workers}")
        if queue < 0:
            raise OptionError(f"queue must be 0 or more, got {queue}")
        if not models:
            models = [None]
        self.workers = workers
        self.queue = queue
        self.capacity = workers + queue
        self.pools: dict[str, ModelPool] = {}
        try:
            for m in models:
                pool = ModelPool(m, size=workers, num_threads=threads, max_pixels=max_pixels)
                if pool.name in self.pools:
                    pool.close(0)
                    raise OptionError(f"model {pool.name!r} is listed twice")
                self.pools[pool.name] = pool
        except BaseException:
            for p in self.pools.values():
                p.close(0)
            raise
        self.default = next(iter(self.pools))
        self.in_progress = 0  # admitted requests: waiting or running (event loop only)
        self.uploading = 0  # requests whose body is still arriving (event loop only)
        self.served = 0
        self.rejected = 0
        self.draining = False
        self.ready = False
        self._running = 0
        self._lock = threading.Lock()
        self._limiter: Any = None

    # -- lifecycle (called from the app's lifespan) --------------------------------------------

    def start(self) -> None:
        """Bind the concurrency limit to the running event loop and accept requests."""
        import anyio

        self._limiter = anyio.CapacityLimiter(self.workers)
        self.draining = False
        self.ready = True

    def close(self, timeout: float = 30.0) -> None:
        """Stop admitting, wait for worker threads to hand their interpreters back, free them."""
        self.draining = True
        self.ready = False
        for p in self.pools.values():
            p.close(timeout)

    # -- per request ---------------------------------------------------------------------------

    def pool(self, name: str | None) -> ModelPool:
        """The pool for a model name (None: the default model); 422 for one not served."""
        if name is None or name == "":
            return self.pools[self.default]
        try:
            return self.pools[name]
        except KeyError:
            raise OptionError(
                f"model {name!r} is not served here; choose one of: {', '.join(self.pools)}"
            ) from None

    @contextlib.contextmanager
    def receiving(self, limit: int) -> Iterator[None]:
        """Hold one of ``limit`` upload places while a body arrives, or fail fast with 503."""
        if self.draining:
            self.rejected += 1
            raise Overloaded("the service is shutting down; retry on another instance")
        if self.uploading >= limit:
            self.rejected += 1
            raise Overloaded(f"busy: {self.uploading} uploads arriving; retry shortly")
        self.uploading += 1
        try:
            yield
        finally:
            self.uploading -= 1

    def status(self) -> str:
        """For /readyz: 'ready' only while a new request would be admitted."""
        if self.draining:
            return "draining"
        if not self.ready:
            return "starting"
        return "saturated" if self.in_progress >= self.capacity else "ready"

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one of ``workers + queue`` places while a received image waits or runs.

        No draining check here: a request whose upload began before shutdown is in flight,
        and shutdown waits for it (``receiving`` refuses new ones).
        """
        if self.in_progress >= self.capacity:
            self.rejected += 1
            raise Overloaded(
                f"busy: {self.in_progress} requests in progress ({self.workers} running, "
                f"up to {self.queue} waiting); retry shortly"
            )
        self.in_progress += 1
        try:
            yield
        finally:
            self.in_progress -= 1

    async def run(
        self,
        pool: ModelPool,
        work: Callable[[Segmenter], T],
    ) -> T:
        """Run ``work(segmenter)`` in a worker thread once one of ``workers`` is free.

        The await is not cancellable once the thread runs, so a client that hangs up cannot
        hand an interpreter back to the pool while a thread still uses it.
        """
        import anyio.to_thread

        if self._limiter is None:  # an app used without its lifespan (e.g. a bare TestClient)
            self.start()

        def job() -> T:
            with self._lock:
                self._running += 1
            try:
                with pool.lease() as seg:
                    return work(seg)
            finally:
                with self._lock:
                    self._running -= 1

        out = await anyio.to_thread.run_sync(job, limiter=self._limiter)
        self.served += 1
        return out

    def stats(self) -> dict[str, int]:
        """Live load figures for /readyz."""
        return {
            "workers": self.workers,
            "queue": self.queue,
            "capacity": self.capacity,
            "in_progress": self.in_progress,
            "uploading": self.uploading,
            "running": self._running,
            "served": self.served,
            "rejected": self.rejected,
        }
