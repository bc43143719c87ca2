"""seglite segment: images and folders in, overlays, masks and JSON summaries out."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..cli import add_model_options, segmenter_kwargs
from ..errors import OptionError, SegliteError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("segment", help="segment images or folders")
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
    return p


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


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .. import viz
    from ..segmenter import Segmenter

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
