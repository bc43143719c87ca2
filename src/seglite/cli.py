"""Command line: argument parsing and printing only; the work happens in the library.

Every SegliteError becomes one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .errors import OptionError, SegliteError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"}


def _scales(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--scales takes numbers separated by commas, got {text!r}"
        ) from None


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def add_model_options(p: argparse.ArgumentParser, *, accurate: bool = True) -> None:
    """Options every command that runs a Segmenter shares."""
    p.add_argument(
        "--model", "-m", default=None, help="zoo name or model file (default: deeplabv3)"
    )
    p.add_argument("--threads", type=_positive_int, default=None, help="interpreter threads")
    if accurate:
        p.add_argument(
            "--accurate",
            action="store_true",
            help="tiled inference at 1.5x and 2x the model size, each also mirrored (slower, sharper)",
        )
        p.add_argument(
            "--scales", type=_scales, default=None, help="e.g. 1.5,2 (long side / model size)"
        )
        p.add_argument("--flip", action="store_true", help="also run mirrored and fuse")
    p.add_argument("--max-pixels", type=_positive_int, default=None, help="refuse larger images")


def segmenter_kwargs(args: argparse.Namespace) -> dict:
    from .image import DEFAULT_MAX_PIXELS
    from .segmenter import ACCURATE_FLIP, ACCURATE_SCALES

    scales, flip = getattr(args, "scales", None), getattr(args, "flip", False)
    if getattr(args, "accurate", False):
        if scales is not None:
            raise OptionError("--accurate and --scales both set the scales: use one")
        scales, flip = ACCURATE_SCALES, ACCURATE_FLIP
    return {
        "num_threads": args.threads,
        "scales": scales or (1.0,),
        "flip": flip,
        "max_pixels": args.max_pixels or DEFAULT_MAX_PIXELS,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seglite", description="DeepLab semantic segmentation.")
    parser.add_argument("--version", action="version", version=f"seglite {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("segment", help="segment images, folders or videos")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (walked)")
    add_model_options(p)
    p.add_argument(
        "--out", "-o", default="seglite-out", help="output folder (default: seglite-out)"
    )
    p.add_argument("--overlay", action="store_true", help="write <name>.overlay.png")
    p.add_argument("--mask", action="store_true", help="write <name>.mask.png (palette PNG)")
    p.add_argument("--json", action="store_true", help="write <name>.json summary")
    p.add_argument("--alpha", type=float, default=0.55, help="overlay opacity (0..1)")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the summary")
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser("models", help="list the model zoo")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--describe",
        metavar="ARCH",
        nargs="?",
        const="all",
        default=None,
        help="describe PyTorch architectures (params, multiply-adds); needs seglite[torch]",
    )
    p.set_defaults(func=cmd_models)
    return parser


def walk_images(paths: Sequence[str]) -> list[tuple[Path, Path]]:
    """(file, name relative to the folder it was found in) for every image under ``paths``."""
    found: list[tuple[Path, Path]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                if f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."):
                    found.append((f, f.relative_to(path)))
        else:
            found.append((path, Path(path.name)))
    return found


def cmd_segment(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from . import viz
    from .segmenter import Segmenter

    if not 0.0 <= args.alpha <= 1.0:
        raise OptionError(f"--alpha must be between 0 and 1, got {args.alpha}")
    if not (args.overlay or args.mask or args.json):
        args.overlay = args.mask = args.json = True
    items = walk_images(args.paths)
    if not items:
        raise OptionError("no images found under the given paths")
    seg = Segmenter(args.model, **segmenter_kwargs(args))
    out = Path(args.out)
    ok, failed = 0, []
    many = len(items) > 1
    bar = tqdm(items, unit="img", disable=not many or args.quiet or not sys.stderr.isatty())
    for path, rel in bar:
        stem = out / rel.with_suffix("")
        try:
            result = seg.segment(path)
            if args.overlay:
                img = viz.overlay(path, result, alpha=args.alpha)
                viz.write_atomic(f"{stem}.overlay.png", viz.png_bytes(img))
            if args.mask:
                viz.write_atomic(f"{stem}.mask.png", viz.png_bytes(viz.mask_image(result)))
            if args.json:
                viz.write_atomic(f"{stem}.json", viz.summary_json(result))
        except SegliteError as exc:
            failed.append((path, str(exc)))
            tqdm.write(f"seglite: {exc}", file=sys.stderr)
            continue
        ok += 1
        if not args.quiet:
            top = ", ".join(f"{k} {v * 100:.0f}%" for k, v in list(result.fractions.items())[:3])
            tqdm.write(
                f"{path}  {result.size[0]}x{result.size[1]}  {top}  {result.timings.total:.0f} ms"
            )
    print(f"{ok} segmented, {len(failed)} failed -> {out}/", file=sys.stderr)
    return 1 if failed else 0


def cmd_models(args: argparse.Namespace) -> int:
    if args.describe:
        from .models.describe import describe_table

        print(describe_table(args.describe))
        return 0
    from .zoo import list_models

    rows = list_models()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(format_table(rows))
    return 0


def format_table(rows: list[dict], columns: Sequence[str] | None = None) -> str:
    """A plain aligned text table (also valid as a Markdown table body)."""
    if not rows:
        return "(none)"
    columns = list(columns or rows[0].keys())
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(columns), sep, *(line(r) for r in cells)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except SegliteError as exc:
        print(f"seglite: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("seglite: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
