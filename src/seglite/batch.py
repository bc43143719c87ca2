"""Many images, one way: the per-image work shared by the serial path, the process pool and Ray.

Every front end (``seglite segment``, the Ray actors in ``raydata``, the benchmark) hands
:func:`pipeline` a Segmenter and a stream of :class:`Item`; it decodes the next image on a
helper thread while the model runs on the current one, writes each output atomically, and
turns every failure into an :class:`Outcome` instead of an exception, so one bad file never
stops a run. What differs between front ends is only who owns the Segmenters:

- serial (``--jobs 1``): one Segmenter in this process;
- :func:`run_pool` (``--jobs N``): N spawned worker processes, each with its own Segmenter
  (one interpreter thread by default: processes scale across cores without sharing a GIL);
- ``seglite.raydata`` (``--ray``): an actor pool of Segmenters on a Ray cluster.

Resume: :func:`plan` skips images whose outputs all exist and are not older than the
image, so a run killed at any point (outputs are renamed into place complete or not at
all) picks up where it stopped, without recomputing finished images.
"""

from __future__ import annotations

import os
import queue
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Protocol

from .errors import OptionError, SegliteError
from .files import PART, write_atomic

if TYPE_CHECKING:
    from .effects import EffectOutput
    from .segmenter import Segmenter

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


@dataclass(frozen=True)
class Item:
    """One image to segment: where it is (path or URI) and the output stem relative to --out."""

    src: str
    name: str  # posix, no suffix: "sub/photo" -> sub/photo.mask.png


@dataclass(frozen=True)
class Outputs:
    """Which files each image gets, and how the overlay looks."""

    overlay: bool = True
    mask: bool = True
    json: bool = True
    alpha: float = 0.55
    effect: EffectOutput | None = None  # seglite.effects: also NAME.<effect>.png

    def files(self, name: str) -> list[str]:
        return [
            f"{name}{suffix}"
            for want, suffix in (
                (self.mask, ".mask.png"),
                (self.json, ".json"),
                (self.overlay, ".overlay.png"),
                (self.effect is not None, f".{self.effect.name if self.effect else ''}.png"),
            )
            if want
        ]


@dataclass
class Outcome:
    """What happened to one image; plain data so it crosses process and Ray boundaries."""

    src: str
    name: str
    status: str  # "done" | "failed" | "skipped"
    error: str = ""
    ms: float = 0.0
    summary: dict | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"


@dataclass
class SegmenterSpec:
    """How to build a Segmenter in another process or on another machine.

    ``model_bytes`` ships the model itself (Ray nodes then need no model folder or
    network); ``labels`` keeps the label names the zoo entry gave on the driver.
    """

    model: str | None = None
    kwargs: dict = field(default_factory=dict)
    model_bytes: bytes | None = None
    model_name: str | None = None
    labels: list[str] | None = None

    @classmethod
    def shipped(cls, seg: Segmenter, kwargs: dict) -> SegmenterSpec:
        """A spec carrying ``seg``'s model file and labels, for machines without the zoo."""
        return cls(
            model=seg.model_path.name,
            kwargs=dict(kwargs),
            model_bytes=seg.model_path.read_bytes(),
            model_name=seg.model_name,
            labels=seg.labels,
        )

    def build(self) -> Segmenter:
        from .segmenter import Segmenter

        if self.model_bytes is None:
            return Segmenter(self.model, labels=self.labels, **self.kwargs)
        import tempfile

        # The backend reads the file into memory, so the copy can go right away.
        with tempfile.TemporaryDirectory(prefix="seglite-model-") as tmp:
            path = Path(tmp) / Path(self.model or "model.tflite").name
            path.write_bytes(self.model_bytes)
            seg = Segmenter(path, labels=self.labels, **self.kwargs)
        seg.model_name = self.model_name or seg.model_name
        return seg


# -- where outputs go --------------------------------------------------------------------------


class Sink(Protocol):
    """Somewhere outputs are written whole: a local folder or an object store."""

    def existing(self) -> dict[str, float]: ...

    def write(self, rel: str, data: bytes | str) -> None: ...

    def read(self, rel: str) -> bytes | None: ...

    def describe(self, rel: str = "") -> str: ...


def is_uri(text: str) -> bool:
    return "://" in text and not text.startswith("file://")


class LocalSink:
    """A local (or shared, e.g. NFS) folder; files appear by rename, complete or not at all."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def existing(self) -> dict[str, float]:
        """Relative posix name -> mtime of every output already there.

        Also removes temporary files a killed run left behind (one run per folder).
        """
        found: dict[str, float] = {}
        if not self.root.is_dir():
            return found
        for dirpath, _dirs, files in os.walk(self.root):
            base = Path(dirpath)
            for f in files:
                p = base / f
                if f.startswith(".") and f.endswith(PART):
                    p.unlink(missing_ok=True)
                    continue
                try:
                    found[p.relative_to(self.root).as_posix()] = p.stat().st_mtime
                except OSError:
                    pass
        return found

    def write(self, rel: str, data: bytes | str) -> None:
        # Lexical check on purpose: a folder the user linked into --out is theirs to use.
        write_atomic(self.root / _safe_rel(rel), data)

    def read(self, rel: str) -> bytes | None:
        try:
            return (self.root / rel).read_bytes()
        except OSError:
            return None

    def describe(self, rel: str = "") -> str:
        return str(self.root / rel) if rel else f"{self.root}/"


class ArrowSink:
    """An object store or remote file system (s3://, gs://, abfs://, hdfs://) via pyarrow.fs.

    A single PUT is atomic on object stores, so no rename is needed there.
    """

    def __init__(self, uri: str):
        fs_mod = _arrow_fs()
        self.uri = uri.rstrip("/")
        self.fs, self.base = fs_mod.FileSystem.from_uri(self.uri)

    def existing(self) -> dict[str, float]:
        fs_mod = _arrow_fs()
        sel = fs_mod.FileSelector(self.base, recursive=True, allow_not_found=True)
        found: dict[str, float] = {}
        for info in self.fs.get_file_info(sel):
            if info.type == fs_mod.FileType.File:
                rel = info.path[len(self.base) :].lstrip("/")
                found[rel] = info.mtime.timestamp() if info.mtime else 0.0
        return found

    def write(self, rel: str, data: bytes | str) -> None:
        path = f"{self.base}/{_safe_rel(rel)}"
        self.fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
        payload = data.encode("utf-8") if isinstance(data, str) else data
        with self.fs.open_output_stream(path) as fh:
            fh.write(payload)

    def read(self, rel: str) -> bytes | None:
        try:
            with self.fs.open_input_stream(f"{self.base}/{rel}") as fh:
                return fh.read()
        except OSError:
            return None

    def describe(self, rel: str = "") -> str:
        return f"{self.uri}/{rel}"


def make_sink(out: str | os.PathLike) -> Sink:
    text = str(out)
    if is_uri(text):
        return ArrowSink(text)
    return LocalSink(text.removeprefix("file://"))


def _arrow_fs():
    from .errors import require

    return require("pyarrow.fs", "ray")


def read_uri(uri: str) -> bytes:
    """The bytes of a remote file (s3://, gs://, ...)."""
    fs, path = _arrow_fs().FileSystem.from_uri(uri)
    with fs.open_input_stream(path) as fh:
        return fh.read()


# -- what to do --------------------------------------------------------------------------------


def walk_images(
    paths: Sequence[str | os.PathLike], *, exclude: str | os.PathLike | None = None
) -> list[Item]:
    """Every image under ``paths`` (files or folders, walked), named relative to its folder.

    ``exclude`` (the output folder) is not walked, so outputs written inside an input
    folder are not segmented again on the next run.
    """
    skip = Path(exclude).resolve() if exclude is not None else None
    found: list[Item] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for dirpath, dirs, files in os.walk(path):
                base = Path(dirpath)
                dirs[:] = sorted(
                    d
                    for d in dirs
                    if not d.startswith(".") and (skip is None or (base / d).resolve() != skip)
                )
                for f in sorted(files):
                    if Path(f).suffix.lower() in IMAGE_SUFFIXES and not f.startswith("."):
                        rel = (base / f).relative_to(path)
                        found.append(Item(str(base / f), rel.with_suffix("").as_posix()))
        else:
            found.append(Item(str(path), path.stem))
    return found


def walk_uris(uris: Sequence[str]) -> list[Item]:
    """Images under remote prefixes or single remote files, named relative to the prefix."""
    if not uris:
        return []
    fs_mod = _arrow_fs()
    found: list[Item] = []
    for uri in uris:
        fs, base = fs_mod.FileSystem.from_uri(uri.rstrip("/"))
        scheme = uri.split("://", 1)[0]
        info = fs.get_file_info(base)
        if info.type == fs_mod.FileType.Directory:
            infos = fs.get_file_info(fs_mod.FileSelector(base, recursive=True))
            for i in sorted(infos, key=lambda i: i.path):
                if i.type == fs_mod.FileType.File and i.extension.lower() in {
                    s[1:] for s in IMAGE_SUFFIXES
                }:
                    rel = i.path[len(base) :].split("/")
                    found.append(Item(f"{scheme}://{i.path}", output_name(rel)))
        else:
            found.append(Item(uri, PurePosixPath(base).stem))
    return found


def items_from_list(lines: Iterable[str]) -> list[Item]:
    """Items for a list of paths/URIs (--files-from), named relative to their common folder."""
    srcs = [s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")]
    parts = [s.split("://", 1)[-1].split("/") for s in srcs]
    common = 0
    if parts:
        shortest = min(len(p) for p in parts) - 1
        while common < shortest and all(p[common] == parts[0][common] for p in parts):
            common += 1
    return [Item(s, output_name(p[common:])) for s, p in zip(srcs, parts)]


def output_name(parts: Sequence[str]) -> str:
    """An image's output name (a relative posix path, no suffix) from its path's parts.

    '..', '.' and empty parts are dropped, so a list entry such as '../../etc/x.jpg' is
    written as 'etc/x.*' under --out, never beside it.
    """
    kept = [p for p in parts if p not in ("", ".", "..")]
    if not kept:
        raise OptionError(f"{'/'.join(parts)!r} names no file")
    return PurePosixPath(*kept).with_suffix("").as_posix()


def _safe_rel(rel: str) -> str:
    """Refuse an output name that would climb out of the output root (absolute, or '..')."""
    if rel.startswith("/") or ".." in PurePosixPath(rel).parts:
        raise OptionError(f"output name {rel!r} would leave the output folder")
    return rel


RUN_RECORD = ".seglite-run.json"  # in the output root: what made the outputs there


def run_record(seg: Segmenter, outputs: Outputs) -> dict:
    """What decides the pixels of the outputs: the model's bytes and the options that change
    results. Which outputs were asked for is not in it: each file is checked on its own."""
    from .zoo import file_sha256

    return {
        "model": seg.model_name,
        "model_sha256": file_sha256(seg.model_path),
        "scales": list(seg.scales),
        "flip": seg.flip,
        "labels": seg.labels,
        "alpha": outputs.alpha,
    } | ({"effect": outputs.effect.record()} if outputs.effect is not None else {})


def claim_output(sink: Sink, record: dict, *, overwrite: bool) -> None:
    """Refuse to resume into outputs another model or other options made; then record ours.

    Without this, a re-run with model B would skip every image model A already did.
    """
    import json

    old = sink.read(RUN_RECORD)
    if old is not None and not overwrite:
        try:
            before = json.loads(old)
        except ValueError:
            before = None
        if before != record:
            what = sorted(
                k for k in record if not isinstance(before, dict) or before.get(k) != record[k]
            )
            made = before.get("model", "?") if isinstance(before, dict) else "?"
            raise OptionError(
                f"{sink.describe()} holds outputs made by {made} with other settings "
                f"({', '.join(what)} differ): pass --overwrite to redo them, or choose another --out"
            )
    sink.write(RUN_RECORD, json.dumps(record, indent=1) + "\n")


def plan(
    items: Sequence[Item], outputs: Outputs, sink: Sink, *, overwrite: bool = False
) -> tuple[list[Item], list[Outcome]]:
    """Split ``items`` into work to do and outcomes already known (skipped, name clashes).

    An image is done when every requested output exists and is not older than the image;
    outputs are written whole, so existence means complete.
    """
    existing = {} if overwrite else sink.existing()
    todo: list[Item] = []
    known: list[Outcome] = []
    owner: dict[str, str] = {}
    for item in items:
        if item.name in owner:
            known.append(
                Outcome(
                    item.src,
                    item.name,
                    "failed",
                    f"{item.src}: same output name as {owner[item.name]}: rename one of them",
                )
            )
            continue
        owner[item.name] = item.src
        stamps = [existing.get(f) for f in outputs.files(item.name)]
        if stamps and all(s is not None for s in stamps) and min(stamps) >= _mtime(item.src):
            known.append(Outcome(item.src, item.name, "skipped"))
        else:
            todo.append(item)
    return todo, known


def _mtime(src: str) -> float:
    if is_uri(src):
        return 0.0
    try:
        return os.stat(src).st_mtime
    except OSError:
        return 0.0


# -- the per-image work ------------------------------------------------------------------------


def prepare(item: Item, max_pixels: int | None):
    """Read and decode one image (the part that overlaps inference); errors are returned.

    Returns the decoded upright PIL image that both the mask and the overlay are made from.
    """
    from .image import load_image

    try:
        uri = is_uri(item.src)
        data = read_uri(item.src) if uri else None
        src = data if data is not None else item.src
        return load_image(src, max_pixels=max_pixels).image
    except Exception as exc:  # reported per image by finish()
        return exc


def finish(seg: Segmenter, item: Item, source, outputs: Outputs, sink: Sink) -> Outcome:
    """Segment a prepared image and write its outputs; never raises for a bad image."""
    from . import viz

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
            img = viz.overlay(source, result, alpha=outputs.alpha)
            sink.write(f"{item.name}.overlay.png", viz.png_bytes(img))
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
) -> None:
    """All items with one Segmenter in this process."""
    with spec.build() as seg:
        for outcome in pipeline(seg, items, outputs, sink, overlap=overlap):
            on_outcome(outcome)


# -- the local process pool --------------------------------------------------------------------

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
