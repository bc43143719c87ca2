"""Video in, overlay video out, with PyAV (FFmpeg) doing all decoding and encoding.

Two ways in:

- a file (:func:`segment_video`): every frame is segmented; the output keeps the size and
  the timestamps of the input (so the frame rate, constant or variable, is kept); the file
  appears under its name only when complete. Audio is not copied.
- a live source (:func:`run_stream`): a webcam (``0`` = the first camera), an RTSP/HTTP
  URL, or anything FFmpeg opens. Frames that arrive while the model is busy are dropped
  (the newest frame is always the one segmented), and the frame rate is reported live.

Masks are smoothed over time (:mod:`seglite.smoothing`, ``smooth``: on by default, 0 = off)
so they do not flicker; ``effect`` (:mod:`seglite.effects`: blur, color:, image:) makes the
video of the effect instead of the overlay.

Decoding runs on a helper thread, so it overlaps inference. PyAV is the ``video`` extra.

Over 400 lines because files and live streams share one frame pipeline (decode thread,
model view, smoothing, effects, overlay); what differs (the writer, the live report) is
small and lives beside it.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import OptionError, SegliteError, require
from .files import write_atomic
from .smoothing import DEFAULT_SMOOTH, TemporalSmoother

if TYPE_CHECKING:
    from fractions import Fraction

    from .effects import EffectOutput
    from .segmenter import Segmenter

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".wmv"}
# Encoders to try per output container, best first (libx264 is in PyAV's wheels).
_CODECS = {".webm": ("libvpx-vp9", "libvpx"), ".avi": ("mpeg4",)}
_DEFAULT_CODECS = ("libx264", "h264", "mpeg4")
# Video mattes skip the guided filter: on the benchmarks it moves the outline by little
# (benchmarks/matte_quality.py: IoU +0.0-0.5, boundary F +0.0-3.7) and costs 1-4x the model
# per frame (benchmarks/effects_cost.py); photos keep it.
VIDEO_MATTE_GRID = 256
_FORMATS = {".mkv": "matroska", ".m4v": "mp4", ".ts": "mpegts", ".mpg": "mpeg", ".wmv": "asf"}


class VideoError(SegliteError):
    """A video or stream cannot be opened, decoded or written."""


@dataclass
class VideoStats:
    """What a video run did; ``fps`` is frames segmented per second of wall time."""

    frames: int = 0
    dropped: int = 0
    seconds: float = 0.0
    width: int = 0
    height: int = 0
    rate: Fraction | None = None
    out: str | None = None
    interrupted: bool = False

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def require_av():
    """PyAV, or a one-line error naming the ``video`` extra."""
    return require("av", "video")


def _first_line(exc: BaseException) -> str:
    text = (getattr(exc, "strerror", None) or str(exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _open(url: str, name: str, *, fmt: str | None = None, options: dict | None = None):
    av = require_av()
    try:
        container = av.open(url, format=fmt, options=options or {}, timeout=(15.0, 15.0))
    except FileNotFoundError:
        raise VideoError(f"{name}: no such file") from None
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise VideoError(f"{name}: not a video FFmpeg can open ({_first_line(exc)})") from None
    if not container.streams.video:
        container.close()
        raise VideoError(f"{name}: has no video stream")
    return container


def open_stream_source(source: str):
    """Open a live source: ``0``, ``1``... is a camera; anything else goes to FFmpeg as is."""
    if source.isdigit():
        if sys.platform.startswith("linux"):
            return _open(f"/dev/video{source}", f"camera {source}", fmt="v4l2")
        if sys.platform == "darwin":
            return _open(
                source, f"camera {source}", fmt="avfoundation", options={"framerate": "30"}
            )
        raise VideoError(
            f"camera {source}: on this system give the camera as FFmpeg names it "
            "(e.g. --stream 'video=Integrated Camera' with DirectShow)"
        )
    if source.startswith("video="):
        return _open(source, source, fmt="dshow")
    options = {"rtsp_transport": "tcp"} if source.startswith("rtsp://") else None
    return _open(source, source, options=options)


class _Writer:
    """Encodes RGB frames into a temporary file beside ``path``; renamed into place on close."""

    def __init__(self, path: Path, width: int, height: int, rate: Fraction, time_base: Fraction):
        av = require_av()
        self.path = path
        suffix = path.suffix.lower() or ".mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(f".{path.stem}.*.part{suffix}"):  # left by a kill
            stale.unlink(missing_ok=True)
        # The muxer is chosen from the name, so the temporary name keeps the suffix.
        self.tmp = path.parent / f".{path.stem}.{os.urandom(4).hex()}.part{suffix}"
        self.container = av.open(str(self.tmp), "w", format=_FORMATS.get(suffix))
        codec = next((c for c in _CODECS.get(suffix, _DEFAULT_CODECS) if _has_encoder(c)), None)
        if codec is None:
            self.abort()
            raise VideoError(f"{path}: no encoder for {suffix} in this FFmpeg build; use .mp4")
        self.stream = self.container.add_stream(codec, rate=rate)
        self.stream.width, self.stream.height = width, height
        even = width % 2 == 0 and height % 2 == 0
        self.stream.pix_fmt = "yuv420p" if even or codec == "mpeg4" else "yuv444p"
        self.stream.time_base = time_base
        if codec == "libx264":
            self.stream.options = {"preset": "veryfast", "crf": "20"}
        elif codec == "mpeg4":
            self.stream.bit_rate = 4_000_000
        self.time_base = time_base
        self._last = -1

    def write(self, rgb: np.ndarray, pts: int) -> None:
        frame = require_av().VideoFrame.from_ndarray(rgb, format="rgb24")
        pts = max(pts, self._last + 1)  # the muxer needs strictly rising timestamps
        frame.pts, frame.time_base, self._last = pts, self.time_base, pts
        self.container.mux(self.stream.encode(frame))

    def close(self) -> None:
        try:
            self.container.mux(self.stream.encode(None))
            self.container.close()
        except BaseException:
            self.abort()
            raise
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self.container.close()
        except Exception:
            pass
        self.tmp.unlink(missing_ok=True)


def _has_encoder(name: str) -> bool:
    try:
        require_av().codec.Codec(name, "w")
    except Exception:
        return False
    return True


_END = object()


class _Frames:
    """(rgb array, pts, time_base) per frame, decoded on a helper thread.

    A file fills a small queue (no frame lost); a live source keeps only the newest
    frame. ``close()`` stops the helper before the container may be closed.
    """

    def __init__(self, container, name: str, *, live: bool, stats: VideoStats):
        self.container, self.name, self.live, self.stats = container, name, live, stats
        self.stop = threading.Event()
        self.q: queue.Queue = queue.Queue(maxsize=1 if live else 4)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        self.helper = threading.Thread(target=self._feed, name="seglite-video", daemon=True)
        self.helper.start()

    def _put(self, value) -> bool:
        while not self.stop.is_set():
            try:
                self.q.put(value, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _feed(self) -> None:
        av = require_av()
        try:
            for frame in self.container.decode(self.container.streams.video[0]):
                if self.stop.is_set():
                    return
                value = (frame.to_ndarray(format="rgb24"), frame.pts, frame.time_base)
                if self.live:
                    try:  # drop the frame the model did not get to
                        self.q.get_nowait()
                        self.stats.dropped += 1
                    except queue.Empty:
                        pass
                if not self._put(value):
                    return
            self._put(_END)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            self._put(VideoError(f"{self.name}: decoding failed ({_first_line(exc)})"))
        except BaseException as exc:  # pragma: no cover - surfaced on the main thread
            self._put(exc)

    def __iter__(self) -> Iterator[tuple[np.ndarray, int | None, Fraction | None]]:
        while True:
            got = self.q.get()
            if got is _END:
                return
            if isinstance(got, BaseException):
                raise got
            yield got

    def close(self) -> None:
        self.stop.set()
        self.helper.join(timeout=10)


def _segment_frames(
    seg: Segmenter,
    frames,
    stats: VideoStats,
    *,
    rate: Fraction,
    alpha: float,
    out: Path | None,
    masks_dir: Path | None,
    max_frames: int | None,
    on_frame: Callable[[VideoStats], None],
    live: bool = False,
    smooth: float = DEFAULT_SMOOTH,
    effect: EffectOutput | None = None,
) -> _Writer | None:
    """Segment, smooth, overlay (or apply the effect) and encode each frame; returns the
    still-open writer.

    Ctrl-C ends a live run with what it has; it discards a file's unfinished output.
    """
    from PIL import Image

    from . import viz

    smoother = TemporalSmoother(smooth)
    # Smoothing and effects work on probabilities: those of the model-sized view of the
    # frame (the pixels the model sees anyway) cost a twentieth of full-size ones.
    reduced = (smoother.enabled or effect is not None) and not seg.accurate
    writer: _Writer | None = None
    first_pts: int | None = None
    t0 = time.perf_counter()
    try:
        for rgb, pts, time_base in frames:
            if max_frames is not None and stats.frames >= max_frames:
                break
            result, view = _segment_frame(seg, rgb, smoother, reduced)
            if effect is not None:
                picture = frame_effect(effect, rgb, result, smoother, view)
            else:
                picture = viz.overlay(Image.fromarray(rgb), result, alpha=alpha, legend=False)
            stats.height, stats.width = rgb.shape[:2]
            if out is not None:
                if writer is None:
                    timed = pts is not None and time_base is not None
                    tb = _fraction(time_base) if timed else 1 / rate
                    writer = _Writer(out, stats.width, stats.height, rate, tb)
                    first_pts = pts if timed else None
                ts = stats.frames if first_pts is None or pts is None else pts - first_pts
                writer.write(np.asarray(picture), ts)
            if masks_dir is not None:
                name = masks_dir / f"frame_{stats.frames:06d}.png"
                write_atomic(name, viz.png_bytes(viz.mask_image(result)))
            stats.frames += 1
            stats.seconds = time.perf_counter() - t0
            on_frame(stats)
    except KeyboardInterrupt:
        if not live:
            if writer is not None:
                writer.abort()
            raise
        stats.interrupted = True
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return writer


def check_video_effect(effect: EffectOutput | None) -> None:
    if effect is not None and effect.effect.rgba:
        raise OptionError(
            "--effect cutout makes RGBA pictures, which video files do not hold: use blur, "
            "color:#RRGGBB or image:FILE for video (or --masks-dir for per-frame masks)"
        )


def model_view(seg: Segmenter, rgb: np.ndarray) -> np.ndarray:
    """The frame as the model sees it (its input size, uint8): segment()'s whole-factor box
    reduction, then the graph's bilinear squash, done here. Segmenting this view gives the
    frame's own masks, with probabilities at the model's size: no full-size planes."""
    from PIL import Image

    from .image import model_pixels
    from .postprocess.bilinear import squash

    h_in, w_in = seg.input_size
    px = model_pixels(Image.fromarray(rgb), (w_in, h_in))
    return np.clip(squash(px[None], (h_in, w_in))[0] + 0.5, 0, 255).astype(np.uint8)


def _segment_frame(seg: Segmenter, rgb: np.ndarray, smoother: TemporalSmoother, reduced: bool):
    """(result at the frame's size with the smoothed mask, the view it was segmented on)."""
    if not reduced:
        result = seg.segment(rgb)
        return (smoother(result, rgb) if smoother.enabled else result), None
    view = model_view(seg, rgb)
    low = seg.segment(view)
    return smoother(low, view, size=(rgb.shape[1], rgb.shape[0])), view


def frame_effect(
    effect: EffectOutput, rgb: np.ndarray, result, smoother: TemporalSmoother, view=None
):
    """The effect on one frame, its matte from the (smoothed) probabilities of the view."""
    from .effects import apply
    from .matte import matte_from_probability, subject_classes

    if view is None or smoother.state is None:
        return effect.render(rgb, result)
    ids = subject_classes(result, effect.classes)
    p = smoother.probability(ids)
    alpha = matte_from_probability(
        p, result.size, rgb, soft=smoother.soft, feather=effect.feather, grid=VIDEO_MATTE_GRID,
        refine=False,
    )  # fmt: skip
    return apply(rgb, alpha, effect.effect)


def _rate(stream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return _fraction(rate) if rate else _fraction(30)


def _fraction(value) -> Fraction:
    import fractions  # here: a run on images never needs it (fractions loads decimal)

    return fractions.Fraction(value)


def segment_video(
    seg: Segmenter,
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    alpha: float = 0.55,
    masks_dir: str | os.PathLike | None = None,
    max_frames: int | None = None,
    progress: bool = False,
    smooth: float = DEFAULT_SMOOTH,
    effect: EffectOutput | None = None,
) -> VideoStats:
    """Write the overlay video of ``src`` to ``out`` (same size, timestamps and frame rate).

    ``masks_dir`` also gets one palette PNG mask per frame (frame_000000.png, ...).
    ``smooth`` is the temporal smoothing strength (0 = off); ``effect`` writes the video of
    the effect (blur, color:, image:) instead of the overlay.
    """
    check_video_effect(effect)
    from tqdm import tqdm

    name = str(src)
    container = _open(name, name)
    try:
        stream = container.streams.video[0]
        rate = _rate(stream)
        stats = VideoStats(rate=rate, out=str(out))
        frames = _Frames(container, name, live=False, stats=stats)
        total = stream.frames or None
        try:
            with tqdm(total=total, unit="frame", disable=not progress, leave=False) as bar:
                writer = _segment_frames(
                    seg,
                    frames,
                    stats,
                    rate=rate,
                    alpha=alpha,
                    out=Path(out),
                    masks_dir=Path(masks_dir) if masks_dir else None,
                    max_frames=max_frames,
                    on_frame=lambda s: bar.update(1),
                    smooth=smooth,
                    effect=effect,
                )
        finally:
            frames.close()
        if writer is None:
            raise VideoError(f"{name}: no frames could be decoded")
        writer.close()
    finally:
        container.close()
    return stats


class LiveReport:
    """Prints frames and frames per second about once a second (in place on a terminal)."""

    def __init__(self, stream=None, *, every: float = 1.0):
        self.stream = stream or sys.stderr
        self.tty = getattr(self.stream, "isatty", lambda: False)()
        self.every = every if self.tty else max(every, 5.0)
        self._next = time.perf_counter() + self.every
        self._last = (0, time.perf_counter())

    def __call__(self, stats: VideoStats) -> None:
        now = time.perf_counter()
        if now < self._next:
            return
        n0, t0 = self._last
        fps = (stats.frames - n0) / max(now - t0, 1e-9)
        self._last, self._next = (stats.frames, now), now + self.every
        line = f"{stats.frames} frames  {fps:5.1f} fps  {stats.dropped} dropped"
        print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=self.stream)
        self.stream.flush()

    def done(self) -> None:
        if self.tty:
            print(file=self.stream)


def run_stream(
    seg: Segmenter,
    source: str,
    *,
    out: str | os.PathLike | None = None,
    masks_dir: str | os.PathLike | None = None,
    alpha: float = 0.55,
    max_frames: int | None = None,
    report: Callable[[VideoStats], None] | None = None,
    smooth: float = DEFAULT_SMOOTH,
    effect: EffectOutput | None = None,
) -> VideoStats:
    """Segment a live source until it ends, ``max_frames`` or Ctrl-C; the output is kept.

    ``smooth`` and ``effect`` as for :func:`segment_video`.
    """
    check_video_effect(effect)
    container = open_stream_source(source)
    try:
        stream = container.streams.video[0]
        rate = _rate(stream)
        stats = VideoStats(rate=rate, out=str(out) if out else None)
        frames = _Frames(container, source, live=True, stats=stats)
        try:
            writer = _segment_frames(
                seg,
                frames,
                stats,
                rate=rate,
                alpha=alpha,
                out=Path(out) if out else None,
                masks_dir=Path(masks_dir) if masks_dir else None,
                max_frames=max_frames,
                on_frame=report or (lambda s: None),
                live=True,
                smooth=smooth,
                effect=effect,
            )
        finally:
            frames.close()
        if writer is not None:
            writer.close()
    finally:
        container.close()
    return stats
