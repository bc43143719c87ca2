"""seglite segment: images, folders, videos and live streams in; overlays, masks and summaries out.

Images go through the one per-image function in ``seglite.batch``, run in this process
(``--jobs 1``), in N worker processes (``--jobs N``) or on Ray (``--ray``). Re-running the
same command skips images whose outputs are complete, so a killed run resumes where it
stopped. Videos and streams go through ``seglite.video``.

Over 400 lines because it is the front end of three inputs (images, videos, a stream)
whose flags interlock (--out, --effect, --smooth); each path is a function calling into
batch/ or video.py, and the parser is a third of the file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..cli import add_model_options, segmenter_kwargs
from ..errors import OptionError

if TYPE_CHECKING:
    from ..batch import Outcome

DEFAULT_OUT = "seglite-out"
_LISTED_FAILURES = 20

EXAMPLES = """examples:
  seglite segment photo.jpg                       overlay, mask and JSON in seglite-out/
  seglite segment photos/ --out seg/ --jobs 2     a folder over 2 processes; re-run to resume
  seglite segment clip.mp4 --out clip.seg.mp4     overlay video (same size and frame rate)
  seglite segment --stream 0 --max-frames 300     webcam 0, live frames per second
  seglite segment me.jpg --model selfie --effect cutout      me.cutout.png (RGBA)
  seglite segment me.jpg --effect blur --classes person      background blurred
  seglite segment me.jpg --effect image:beach.jpg --feather 4   background replaced
  seglite segment s3://bkt/imgs --out s3://bkt/seg --ray auto   on a running Ray cluster
"""


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "segment",
        help="segment images, folders, videos or a live stream",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="image files, folders (walked), videos, or s3://... URIs",
    )
    add_model_options(p)
    p.add_argument(
        "--out",
        "-o",
        default=None,
        help=f"output folder (default: {DEFAULT_OUT}), or FILE.mp4 for one video or a stream",
    )
    p.add_argument("--overlay", action="store_true", help="write <name>.overlay.png")
    p.add_argument("--mask", action="store_true", help="write <name>.mask.png (palette PNG)")
    p.add_argument("--json", action="store_true", help="write <name>.json summary")
    p.add_argument("--alpha", type=float, default=0.55, help="overlay opacity (0..1)")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the summary")
    g = p.add_argument_group("effects (NAME.<effect>.png; only that file unless outputs are named)")
    g.add_argument(
        "--effect",
        metavar="SPEC",
        help="cutout (RGBA), blur, color:#RRGGBB or image:FILE (background replaced)",
    )
    g.add_argument(
        "--classes",
        type=_names,
        default=None,
        metavar="A,B",
        help="the subject's classes (default: all but background)",
    )
    g.add_argument(
        "--feather", type=float, default=None, metavar="PX", help="extra soft edge width in px"
    )
    g.add_argument("--strength", type=float, default=None, metavar="PX", help="blur radius in px")
    g.add_argument("--invert", action="store_true", help="keep the background, remove the subject")
    g = p.add_argument_group("many images")
    g.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=None,
        metavar="N",
        help="worker processes (default 1), each with its own model (1 thread unless --threads); "
        "with --ray: actors (default: one per CPU of the cluster)",
    )
    g.add_argument(
        "--ray",
        nargs="?",
        const="local",
        default=None,
        metavar="ADDRESS",
        help="run on Ray Data: no ADDRESS starts a local Ray; 'auto', HOST:6379 or "
        "ray://HOST:10001 join a cluster. Default outputs: masks + OUT/summary.jsonl",
    )
    g.add_argument("--files-from", metavar="FILE", help="read paths or URIs, one a line")
    g.add_argument(
        "--overwrite", action="store_true", help="redo inputs whose outputs already exist"
    )
    g = p.add_argument_group("video")
    g.add_argument("--stream", metavar="SOURCE", help="live source: camera number, URL, device")
    g.add_argument("--masks-dir", metavar="DIR", help="also write one mask PNG per frame")
    g.add_argument("--max-frames", type=int, default=None, metavar="N", help="stop after N frames")
    g.add_argument(
        "--smooth",
        type=float,
        default=None,
        metavar="S",
        help="temporal smoothing of the masks, 0 (off) to 0.95 (default 0.8, on for video)",
    )
    return p


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"--classes takes names separated by commas, got {text!r}")
    return names


def _effect_output(args: argparse.Namespace):
    """The --effect options as a batch output, or None; bad values are one line, now."""
    if args.effect is None:
        for flag in ("classes", "feather", "strength"):
            if getattr(args, flag) is not None:
                raise OptionError(f"--{flag} shapes an effect: give --effect too")
        if args.invert:
            raise OptionError("--invert shapes an effect: give --effect too")
        return None
    from ..effects import EffectOutput, parse

    if args.feather is not None and args.feather < 0:
        raise OptionError(f"--feather must be >= 0 px, got {args.feather}")
    effect = parse(args.effect, strength=args.strength, invert=args.invert).check()
    return EffectOutput(effect, args.classes, args.feather)


def _effect_segmenter(probe, kwargs: dict, effect) -> None:
    """Ask ``kwargs`` for what the effect needs from ``probe``'s model; check the classes."""
    if effect is None:
        return
    from ..effects import segmenter_options

    kwargs.update(segmenter_options(probe))
    for name in effect.classes or ():
        if name not in probe.label_set.names:
            shown = ", ".join(probe.labels[:12]) + (", ..." if len(probe.labels) > 12 else "")
            raise OptionError(f"--classes {name}: {probe.model_name} has no such class ({shown})")


def run(args: argparse.Namespace) -> int:
    if not 0.0 <= args.alpha <= 1.0:
        raise OptionError(f"--alpha must be between 0 and 1, got {args.alpha}")
    for flag, value in (("--jobs", args.jobs), ("--max-frames", args.max_frames)):
        if value is not None and value < 1:
            raise OptionError(f"{flag} must be a positive integer, got {value}")
    if args.stream is not None:
        if args.paths or args.files_from:
            raise OptionError("--stream reads only its SOURCE: give no PATH with it")
        return _stream(args)
    listed = _read_list(args.files_from) if args.files_from else []
    if not args.paths and not listed:
        raise OptionError("nothing to segment: give image files, folders or videos (or --stream)")
    from ..batch import is_uri
    from ..video import is_video

    videos = [s for s in args.paths if not is_uri(s) and is_video(s) and not Path(s).is_dir()]
    images = [s for s in args.paths if s not in videos]
    if args.smooth is not None and not videos:
        raise OptionError("--smooth is for videos and streams: give a video or --stream")
    if videos and (args.jobs or args.ray):
        raise OptionError("--jobs and --ray are for images; a video runs on one model (--threads)")
    failed = 0
    if videos:
        failed += _videos(args, videos, alone=not (images or listed))
    if images or listed:
        failed += _images(args, images, listed)
    return 1 if failed else 0


def _read_list(path: str) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise OptionError(f"--files-from {path}: cannot read it ({exc.strerror})") from None
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


# -- images ------------------------------------------------------------------------------------


def _images(args: argparse.Namespace, paths: list[str], listed: list[str]) -> int:
    from ..batch import (  # here, not at the top: a one-image run never needs the pool
        Outputs,
        SegmenterSpec,
        claim_output,
        is_uri,
        items_from_list,
        make_sink,
        plan,
        run_record,
        walk_images,
        walk_uris,
    )
    from ..segmenter import Segmenter
    from ..video import is_video

    out = args.out or DEFAULT_OUT
    if is_video(out):
        raise OptionError(f"--out {out} is a video name: give a folder for images")
    effect = _effect_output(args)
    if Path(out).suffix.lower() in _FILE_OUTPUTS and not Path(out).is_dir():
        return _one_file(args, paths, listed, Path(out), effect)
    named = args.overlay or args.mask or args.json
    if effect is not None:  # the effect alone, unless other outputs are named too
        outputs = Outputs(args.overlay, args.mask, args.json, args.alpha, effect)
    elif args.ray:
        outputs = Outputs(args.overlay, args.mask or not named, args.json, args.alpha)
    else:
        every = not named
        outputs = Outputs(args.overlay or every, args.mask or every, args.json or every, args.alpha)

    local = [s.removeprefix("file://") for s in paths if not is_uri(s)]
    items = walk_images(local, exclude=None if is_uri(out) else out.removeprefix("file://"))
    items += walk_uris([s for s in paths if is_uri(s)]) + items_from_list(listed)
    if not items:
        raise OptionError("no images found under the given paths")

    kwargs = segmenter_kwargs(args)
    parallel = bool(args.ray) or (args.jobs or 1) > 1
    if parallel and args.threads is None:
        kwargs["num_threads"] = 1  # processes, not threads, share the cores
    asked = dict(kwargs)
    probe = Segmenter(args.model, **kwargs)  # bad model or options: one line, now
    try:
        _effect_segmenter(probe, kwargs, effect)
        # A cluster's nodes find zoo models themselves; a model file of the user's travels.
        remote = args.ray not in (None, "local")
        spec = (
            SegmenterSpec.shipped(probe, kwargs)
            if remote and probe.entry is None
            else SegmenterSpec(args.model, kwargs, labels=probe.labels)
        )
        record = run_record(probe, outputs)
        if parallel or kwargs != asked:  # the pool builds its own; the effect asked for more
            probe.close()
            probe = None
        sink = make_sink(out)
        claim_output(sink, record, overwrite=args.overwrite)
        todo, known = plan(items, outputs, sink, overwrite=args.overwrite)
        report = _Report(args, total=len(items))
        try:
            _run_images(args, spec, todo, known, outputs, out, sink, report, probe)
        except KeyboardInterrupt:
            report.finish(sink.describe(), interrupted=True)
            raise
        except BaseException:
            report.bar.close()
            raise
    finally:
        if probe is not None:
            probe.close()
    report.finish(sink.describe())
    return report.counts["failed"]


def _run_images(args, spec, todo, known, outputs, out, sink, report, seg=None) -> None:
    """The same work three ways: here (on ``seg``, the probe, when it was kept open), in
    worker processes, or on Ray."""
    from ..batch import run_pool, run_serial

    if args.ray:
        from ..raydata import connect, run_ray

        started = connect(None if args.ray == "local" else args.ray)
        try:
            run_ray(spec, todo, outputs, out, report, jobs=args.jobs, known=known)
        finally:
            if started:
                import ray

                ray.shutdown()
        return
    for outcome in known:
        report(outcome)
    if (args.jobs or 1) > 1 and len(todo) > 1:
        run_pool(spec, todo, outputs, out, report, jobs=args.jobs)
    else:
        run_serial(spec, todo, outputs, sink, report, seg=seg)


_FILE_OUTPUTS = {".png", ".json"}  # --out suffixes that name one file, not a folder


def _one_file(
    args: argparse.Namespace, paths: list[str], listed: list[str], out: Path, effect=None
) -> int:
    """``--out NAME.png`` (or ``.json``) for one image: exactly that file, nothing beside it.

    A .png is the overlay, the mask when only --mask is asked for, or the effect with
    --effect; a .json the summary.
    """
    from .. import viz
    from ..files import write_atomic
    from ..segmenter import Segmenter

    if len(paths) + len(listed) != 1 or not Path((paths or listed)[0]).is_file():
        raise OptionError(f"--out {out} names one file: give one image, or a folder for several")
    if args.jobs or args.ray:
        raise OptionError("--jobs and --ray are for folders; one image needs neither")
    want = [
        k for k, on in (("overlay", args.overlay), ("mask", args.mask), ("json", args.json)) if on
    ]
    if effect is not None:
        want.append("effect")
    png = "mask" if want == ["mask"] else ("effect" if want == ["effect"] else "overlay")
    kind = "json" if out.suffix.lower() == ".json" else png
    if len(want) > 1 or (want and want != [kind]):
        raise OptionError(
            f"--out {out} holds one output ({kind}): give a folder for {', '.join(want)}"
        )
    src = (paths or listed)[0]
    kwargs = segmenter_kwargs(args)
    if effect is not None:
        with Segmenter(args.model, **kwargs) as probe:
            _effect_segmenter(probe, kwargs, effect)
    with Segmenter(args.model, **kwargs) as seg:
        from ..image import load_image

        loaded = load_image(src, max_pixels=seg.max_pixels)
        result = seg.segment(loaded.image)
        result.source = src
    if kind == "effect":
        data: bytes | str = effect.png(loaded.image, result)
    elif kind == "json":
        data = viz.summary_json(result)
    elif kind == "mask":
        data = viz.png_bytes(viz.mask_image(result))
    else:
        data = viz.overlay_png(loaded.image, result, alpha=args.alpha)
    write_atomic(out, data)
    if not args.quiet:
        print(f"{src} -> {out} ({kind})", file=sys.stderr)
    return 0


class _NoBar:
    """The progress bar's place when none is shown (one image, --quiet, not a terminal)."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class _Report:
    """Progress bar, one line per image (unless --quiet), failures, and the closing summary."""

    def __init__(self, args: argparse.Namespace, *, total: int):
        self.quiet = args.quiet
        self.counts = {"done": 0, "failed": 0, "skipped": 0}
        self.failures: list[str] = []
        live = total > 1 and not args.quiet and sys.stderr.isatty()
        if live:
            from tqdm import tqdm  # imported only for a bar (~25 ms of a one-image run)

            self.bar = tqdm(total=total, unit="img", smoothing=0.1)
            self.write = tqdm.write  # clears and redraws the bar around the line
        else:
            self.bar = _NoBar()
            self.write = print

    def __call__(self, o: Outcome) -> None:
        self.counts[o.status] += 1
        self.bar.update(1)
        if o.status == "failed":
            self.failures.append(o.error)
            self.write(f"seglite: {o.error}", file=sys.stderr)
        elif o.status == "done" and not self.quiet and o.summary:
            s = o.summary
            top = ", ".join(f"{c['label']} {c['fraction'] * 100:.0f}%" for c in s["classes"][:3])
            ms = s["timings_ms"]["total"]
            self.write(f"{o.src}  {s['width']}x{s['height']}  {top}  {ms:.0f} ms")

    def finish(self, where: str, *, interrupted: bool = False) -> None:
        """Done, failed (with reasons) and skipped counts, after the progress bar."""
        self.bar.close()
        c = self.counts
        line = f"{c['done']} segmented, {c['failed']} failed, {c['skipped']} skipped -> {where}"
        if interrupted:
            line += " (interrupted: run the same command again to go on)"
        elif c["skipped"]:
            line += " (skipped: outputs already there; --overwrite redoes them)"
        print(line, file=sys.stderr)
        if self.failures:
            print("failed:", file=sys.stderr)
            for msg in self.failures[:_LISTED_FAILURES]:
                print(f"  {msg}", file=sys.stderr)
            if len(self.failures) > _LISTED_FAILURES:
                print(f"  ... and {len(self.failures) - _LISTED_FAILURES} more", file=sys.stderr)


# -- video -------------------------------------------------------------------------------------


def _smooth(args: argparse.Namespace) -> float:
    from ..smoothing import DEFAULT_SMOOTH, check_strength

    return check_strength(DEFAULT_SMOOTH if args.smooth is None else args.smooth)


def _video_segmenter(args: argparse.Namespace, effect=None):
    """The video's Segmenter: with confidence masks where smoothing or an effect uses them."""
    from ..segmenter import Segmenter
    from ..video import check_video_effect, require_av

    require_av()  # the extra's message before the model loads
    check_video_effect(effect)
    kwargs = segmenter_kwargs(args)
    if _smooth(args) > 0 or effect is not None:
        with Segmenter(args.model, **kwargs) as probe:
            from ..effects import segmenter_options

            kwargs.update(segmenter_options(probe))
            if effect is not None:
                _effect_segmenter(probe, kwargs, effect)
    return Segmenter(args.model, **kwargs)


def _videos(args: argparse.Namespace, videos: list[str], *, alone: bool) -> int:
    from ..video import VideoError, is_video, segment_video

    out = Path(args.out or DEFAULT_OUT)
    single_file = is_video(out)
    if single_file and (len(videos) > 1 or not alone):
        raise OptionError(f"--out {out} names one video: give a folder for several inputs")
    failed = 0
    progress = not args.quiet and sys.stderr.isatty()
    effect = _effect_output(args)
    smooth = _smooth(args)
    kind = effect.name if effect is not None else "overlay"
    with _video_segmenter(args, effect) as seg:
        for src in videos:
            stem = Path(src).stem
            dest = out if single_file else out / f"{stem}.{kind}.mp4"
            masks = args.masks_dir
            if masks and len(videos) > 1:
                masks = str(Path(masks) / stem)
            if _fresh(dest, src) and not args.overwrite:
                print(f"{src}: {dest} is already there (--overwrite redoes it)", file=sys.stderr)
                continue
            try:
                stats = segment_video(
                    seg,
                    src,
                    dest,
                    alpha=args.alpha,
                    masks_dir=masks,
                    max_frames=args.max_frames,
                    progress=progress,
                    smooth=smooth,
                    effect=effect,
                )
            except VideoError as exc:
                if alone and len(videos) == 1:
                    raise
                print(f"seglite: {exc}", file=sys.stderr)
                failed += 1
                continue
            print(
                f"{src}: {stats.frames} frames {stats.width}x{stats.height} at "
                f"{float(stats.rate or 0):.3g} fps, segmented at {stats.fps:.1f} fps -> {dest}",
                file=sys.stderr,
            )
    return failed


def _fresh(dest: Path, src: str) -> bool:
    try:
        return dest.stat().st_mtime >= Path(src).stat().st_mtime
    except OSError:
        return False


def _stream(args: argparse.Namespace) -> int:
    from ..video import LiveReport, is_video, run_stream

    out = args.out if args.out and is_video(args.out) else None
    if args.out and out is None:
        raise OptionError(f"--out {args.out}: a stream is written to a video file, e.g. live.mp4")
    report = None if args.quiet else LiveReport()
    effect = _effect_output(args)
    with _video_segmenter(args, effect) as seg:
        stats = run_stream(
            seg,
            args.stream,
            out=out,
            masks_dir=args.masks_dir,
            alpha=args.alpha,
            max_frames=args.max_frames,
            report=report,
            smooth=_smooth(args),
            effect=effect,
        )
    if report:
        report.done()
    end = " (interrupted)" if stats.interrupted else ""
    print(
        f"{stats.frames} frames in {stats.seconds:.1f} s: {stats.fps:.1f} fps, "
        f"{stats.dropped} dropped{end}" + (f" -> {out}" if out else ""),
        file=sys.stderr,
    )
    return 0
