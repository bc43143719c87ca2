"""The per-image work, shared by every front end: decode ahead on a helper thread,
segment, write atomically, and turn every failure into an Outcome."""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from ..errors import SegliteError

if TYPE_CHECKING:
    from ..segmenter import Segmenter

from .jobs import Item, Outcome, Outputs, SegmenterSpec
from .sinks import Sink, is_uri, read_uri


def prepare(item: Item, max_pixels: int | None):
    """Read and decode one image (the part that overlaps inference); errors are returned.

    Returns the decoded upright PIL image that both the mask and the overlay are made from.
    """
    from ..image import load_image

    try:
        uri = is_uri(item.src)
        data = read_uri(item.src) if uri else None
        src = data if data is not None else item.src
        return load_image(src, max_pixels=max_pixels).image
    except Exception as exc:  # reported per image by finish()
        return exc


def finish(seg: Segmenter, item: Item, source, outputs: Outputs, sink: Sink) -> Outcome:
    """Segment a prepared image and write its outputs; never raises for a bad image."""
    from .. import viz

    t0 = time.perf_counter()
    try:
        if isinstance(source, BaseException):
            raise source
        result = seg.segment(source)
        result.source = item.src
        summary = result.summary()
        if outputs.mask:
            sink.write(f"{item.name}.mask.png", viz.png_bytes(viz.mask_image(result)))
        if outputs.json:
            sink.write(f"{item.name}.json", viz.summary_json(result))
        if outputs.overlay:
            # band by band: half of Pillow's encode time, and no second full picture
            png = viz.overlay_png(source, result, alpha=outputs.alpha)
            sink.write(f"{item.name}.overlay.png", png)
        if outputs.effect is not None:
            sink.write(f"{item.name}.{outputs.effect.name}.png", outputs.effect.png(source, result))
    except Exception as exc:
        return Outcome(item.src, item.name, "failed", _message(item, exc))
    return Outcome(
        item.src, item.name, "done", ms=(time.perf_counter() - t0) * 1e3, summary=summary
    )


def _message(item: Item, exc: BaseException) -> str:
    if isinstance(exc, SegliteError):
        msg = str(exc)
    elif isinstance(exc, FileNotFoundError):
        msg = "no such file"
    elif isinstance(exc, OSError):
        msg = f"cannot read or write ({exc.strerror or exc})"
    else:
        msg = f"{type(exc).__name__}: {exc}"
    msg = re.sub(r"^<\d+ bytes>: ", "", msg)  # the loader's name for in-memory data
    return msg if msg.startswith(item.src) else f"{item.src}: {msg}"


_END = object()


def pipeline(
    seg: Segmenter,
    items: Iterable[Item],
    outputs: Outputs,
    sink: Sink,
    *,
    stop: threading.Event | None = None,
    overlap: bool = True,
) -> Iterator[Outcome]:
    """Outcomes for ``items`` in order; the next image is decoded while this one is segmented.

    Decoding (Pillow) and inference (LiteRT) both release the GIL, so a helper thread
    overlaps them (``overlap=False`` decodes inline, for comparison). ``stop`` ends the run
    before the next image (its owner went away).
    """
    stop = stop or threading.Event()
    max_pixels = seg.max_pixels
    if not overlap:
        for item in items:
            if stop.is_set():
                return
            yield finish(seg, item, prepare(item, max_pixels), outputs, sink)
        return
    ready: queue.Queue = queue.Queue(maxsize=1)

    def put(value) -> bool:
        while not stop.is_set():
            try:
                ready.put(value, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def feed() -> None:
        try:
            for item in items:
                if not put((item, prepare(item, max_pixels))):
                    return
        finally:
            put(_END)

    helper = threading.Thread(target=feed, name="seglite-decode", daemon=True)
    helper.start()
    try:
        while not stop.is_set():
            try:
                got = ready.get(timeout=0.2)
            except queue.Empty:
                continue
            if got is _END:
                break
            item, source = got
            if stop.is_set():
                break
            yield finish(seg, item, source, outputs, sink)
    finally:
        stop.set()
        helper.join(timeout=5)


def run_serial(
    spec: SegmenterSpec,
    items: Iterable[Item],
    outputs: Outputs,
    sink: Sink,
    on_outcome: Callable[[Outcome], None],
    *,
    overlap: bool = True,
    seg: Segmenter | None = None,
) -> None:
    """All items with one Segmenter in this process: ``seg`` when the caller has one open
    already (a one-image run then loads its model once), else one built from ``spec``."""
    if seg is not None:
        for outcome in pipeline(seg, items, outputs, sink, overlap=overlap):
            on_outcome(outcome)
        return
    with spec.build() as seg:
        for outcome in pipeline(seg, items, outputs, sink, overlap=overlap):
            on_outcome(outcome)
