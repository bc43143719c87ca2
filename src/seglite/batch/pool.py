"""The local process pool (``--jobs N``): N spawned workers, each with its own Segmenter,
fed a few images ahead."""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from ..errors import SegliteError
from .jobs import Item, Outcome, Outputs, SegmenterSpec
from .sinks import make_sink
from .work import pipeline

_DEPTH = 3  # images queued per worker: one segmenting, one decoded, one decoding


def _worker(
    spec: SegmenterSpec, outputs: Outputs, root: str, tasks, results, overlap: bool = True
) -> None:
    """A pool worker: its own Segmenter; ends when the parent closes the pipe or dies."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what Ctrl-C means
    try:
        seg = spec.build()
    except Exception as exc:
        msg = str(exc) if isinstance(exc, SegliteError) else f"{type(exc).__name__}: {exc}"
        results.send(("fatal", msg))
        return
    results.send(("ready", None))
    stop = threading.Event()
    parent = os.getppid()

    def orphaned() -> None:  # parent killed: stop before the next image, keep finished ones
        while not stop.wait(0.2):
            if os.getppid() != parent:
                stop.set()

    threading.Thread(target=orphaned, name="seglite-orphan", daemon=True).start()

    def incoming() -> Iterator[Item]:
        while True:
            try:
                item = tasks.recv()
            except (EOFError, OSError):  # parent killed: finish nothing more
                stop.set()
                return
            if item is None:
                return
            yield item

    sink = make_sink(root)
    for outcome in pipeline(seg, incoming(), outputs, sink, stop=stop, overlap=overlap):
        try:
            results.send(("outcome", outcome))
        except OSError:
            return


@dataclass
class _Slot:
    proc: object
    tasks: object  # parent's sending end
    results: object  # parent's receiving end
    queued: deque = field(default_factory=deque)
    ready: bool = False
    closed: bool = False  # told there is no more work


def run_pool(
    spec: SegmenterSpec,
    items: Sequence[Item],
    outputs: Outputs,
    out: str | os.PathLike,
    on_outcome: Callable[[Outcome], None],
    *,
    jobs: int,
    overlap: bool = True,
) -> None:
    """All items over ``jobs`` worker processes; a worker that crashes fails one image only.

    Each worker holds at most a few images at a time, so fast workers take more and the
    parent always knows which images a dead worker held: the oldest failed it, the rest
    go to a fresh worker.
    """
    import multiprocessing as mp
    from multiprocessing.connection import wait

    ctx = mp.get_context("spawn")  # never fork a process that may hold threads
    pending = deque(items)
    slots: list[_Slot] = []

    def start() -> _Slot:
        task_r, task_w = ctx.Pipe(duplex=False)
        res_r, res_w = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_worker,
            args=(spec, outputs, str(out), task_r, res_w, overlap),
            name="seglite-worker",
            daemon=True,
        )
        proc.start()
        task_r.close()  # only the worker holds these ends: a dead parent means EOF there
        res_w.close()
        return _Slot(proc, task_w, res_r)

    def receive(slot: _Slot) -> None:
        while slot.results.poll():
            try:
                kind, payload = slot.results.recv()
            except (EOFError, OSError):
                return
            if kind == "fatal":
                raise SegliteError(payload)
            if kind == "ready":
                slot.ready = True
            else:
                slot.queued.popleft()
                on_outcome(payload)

    def bury(slot: _Slot) -> None:
        """A worker exited: fail the image it was on, hand the rest to a new worker."""
        slot.proc.join()
        slots.remove(slot)
        slot.tasks.close()
        slot.results.close()
        code = slot.proc.exitcode
        if not slot.ready:
            raise SegliteError(f"a worker process failed to start (exit code {code})")
        if slot.queued:
            item = slot.queued.popleft()
            msg = f"{item.src}: the worker process died on this image (exit code {code})"
            on_outcome(Outcome(item.src, item.name, "failed", msg))
            pending.extendleft(reversed(slot.queued))
        if pending:
            slots.append(start())

    try:
        slots.extend(start() for _ in range(max(1, min(jobs, len(pending)))))
        while slots:
            for slot in slots:
                while pending and len(slot.queued) < _DEPTH:
                    item = pending.popleft()
                    slot.queued.append(item)
                    slot.tasks.send(item)
                if not pending and not slot.queued and not slot.closed:
                    slot.tasks.send(None)
                    slot.closed = True
            wait([s.results for s in slots] + [s.proc.sentinel for s in slots], timeout=1.0)
            for slot in list(slots):
                receive(slot)
                if not slot.proc.is_alive():
                    receive(slot)  # anything sent just before it exited
                    bury(slot)
    finally:
        for slot in slots:
            slot.tasks.close()
        deadline = time.monotonic() + 10
        for slot in slots:
            slot.proc.join(timeout=max(0.1, deadline - time.monotonic()))
            if slot.proc.is_alive():
                slot.proc.terminate()
                slot.proc.join(timeout=2)
            slot.results.close()
