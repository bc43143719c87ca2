#!/usr/bin/env python
"""Does temporal smoothing stop the masks flickering without costing accuracy? Flicker and
mIoU of video clips made from real photos with known motion, at several --smooth values.

    python benchmarks/flicker.py [--data ../shared/data/voc2012] [--model deeplabv3]
        [--clips 8] [--frames 40] [--smooth 0,0.5,0.7,0.85] [--noise 3] [--json FILE]

Each clip is one photo of the dataset (those whose objects cover at least 10% of it) filmed
by a virtual camera: ``pan`` slides a window of 75% of the photo from left to right
(integer shifts, about 3 px a frame), ``zoom`` narrows the window from 100% to 70% around the
centre (each frame resized back to one size). Every frame gets camera noise (Gaussian, sigma
``--noise`` grey levels, seeded). The ground truth moves with the frames (nearest neighbour).

- **flicker**: the share of pixels whose label differs from the label the previous frame
  gave the same point of the scene (the known motion undone), averaged over frame pairs;
- **mIoU**: over all frames of all clips against the moved ground truth (void ignored).

Smoothing is seglite.smoothing.TemporalSmoother, as ``seglite segment VIDEO --smooth S`` runs
it (on the model-sized view of each frame); ``--smooth 0`` is every frame on its own.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "voc2012"


def photos(root: Path, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for mask_path in sorted((root / "SegmentationClass").glob("*.png")):
        truth = np.asarray(Image.open(mask_path))
        if ((truth > 0) & (truth < 255)).mean() < 0.10:
            continue
        img = np.asarray(Image.open(root / "JPEGImages" / f"{mask_path.stem}.jpg").convert("RGB"))
        out.append((img, truth))
        if len(out) == n:
            break
    return out


def camera(kind: str, n: int, size: tuple[int, int]) -> list[tuple[float, float, float]]:
    """(x0, y0, s) per frame: frame pixel (x, y) shows photo point (x0 + s x, y0 + s y)."""
    w, h = size
    fw, fh = round(0.75 * w), round(0.75 * h)
    if kind == "pan":
        return [(round(i * (w - fw) / max(n - 1, 1)), (h - fh) // 2, 1.0) for i in range(n)]
    views = []
    for i in range(n):
        s = 1.0 - 0.3 * i / max(n - 1, 1)  # the window's width as a share of the photo's
        views.append(((w - s * w) / 2, (h - s * h) / 2, s * w / fw))
    return views


def film(img, truth, views, out_size, rng, noise):
    """Frames and moved ground truth for ``views``; frames get camera noise."""
    fw, fh = out_size
    frames, truths = [], []
    for x0, y0, s in views:
        box = (x0, y0, x0 + s * fw, y0 + s * fh)
        if s == 1.0 and float(x0).is_integer() and float(y0).is_integer():
            x0, y0 = int(x0), int(y0)
            f = img[y0 : y0 + fh, x0 : x0 + fw].astype(np.float32)
            t = truth[y0 : y0 + fh, x0 : x0 + fw]
        else:
            f = np.asarray(
                Image.fromarray(img).transform((fw, fh), Image.Transform.EXTENT, box,
                                               Image.Resampling.BILINEAR), np.float32)  # fmt: skip
            t = np.asarray(
                Image.fromarray(truth).transform((fw, fh), Image.Transform.EXTENT, box,
                                                 Image.Resampling.NEAREST))  # fmt: skip
        if noise:
            f = f + rng.normal(0, noise, f.shape)
        frames.append(np.clip(f + 0.5, 0, 255).astype(np.uint8))
        truths.append(np.ascontiguousarray(t))
    return frames, truths


def previous_labels(prev: np.ndarray, view_prev, view_now) -> tuple[np.ndarray, np.ndarray]:
    """The previous frame's labels at each pixel of this frame (motion undone), and validity."""
    h, w = prev.shape
    (xa, ya, sa), (xb, yb, sb) = view_prev, view_now
    xs = (xb + sb * (np.arange(w) + 0.5) - xa) / sa - 0.5
    ys = (yb + sb * (np.arange(h) + 0.5) - ya) / sa - 0.5
    xi, yi = np.rint(xs).astype(int), np.rint(ys).astype(int)
    okx, oky = (xi >= 0) & (xi < w), (yi >= 0) & (yi < h)
    warped = prev[np.clip(yi, 0, h - 1)][:, np.clip(xi, 0, w - 1)]
    return warped, oky[:, None] & okx[None, :]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--model", default="deeplabv3")
    p.add_argument("--clips", type=int, default=8, help="photos (one pan and one zoom each)")
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--smooth", default="0,0.5,0.7,0.85")
    p.add_argument("--noise", type=float, default=3.0, help="camera noise, grey levels")
    p.add_argument("--motion", type=float, default=None, help="the smoother's motion gate")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    from seglite import Segmenter
    from seglite.cli import format_table
    from seglite.effects import segmenter_options
    from seglite.eval.metrics import confusion_matrix, mean_iou
    from seglite.smoothing import DEFAULT_SMOOTH, TemporalSmoother
    from seglite.video import model_view

    strengths = [float(s) for s in args.smooth.split(",")]
    with Segmenter(args.model, num_threads=args.threads) as probe:
        options = segmenter_options(probe)
    seg = Segmenter(args.model, num_threads=args.threads, **options)
    n_classes = len(seg.label_set)
    data = photos(Path(args.data), args.clips)
    if not data:
        print(f"{args.data}: no photos with enough objects", file=sys.stderr)
        return 1
    rows = []
    for kind in ("pan", "zoom"):
        stats = {s: {"flicker": [], "cm": np.zeros((n_classes, n_classes), np.int64), "ms": []}
                 for s in strengths}  # fmt: skip
        for k, (img, truth) in enumerate(data):
            h, w = truth.shape
            out_size = (round(0.75 * w), round(0.75 * h))
            cams = camera(kind, args.frames, (w, h))
            rng = np.random.default_rng(k)
            frames, truths = film(img, truth, cams, out_size, rng, args.noise)
            # As seglite segment VIDEO runs: the model-sized view of each frame is segmented
            # (the same model input as the full frame), once for every S.
            views = [model_view(seg, f) for f in frames]
            results = [seg.segment(v) for v in views]
            for s in strengths:
                smoother = TemporalSmoother(s, **({"motion": args.motion} if args.motion else {}))
                prev = None
                for i, (view, result) in enumerate(zip(views, results)):
                    t0 = time.perf_counter()
                    labels = smoother(result, view, size=out_size).category_mask
                    stats[s]["ms"].append((time.perf_counter() - t0) * 1e3)
                    stats[s]["cm"] += confusion_matrix(labels, truths[i], n_classes, 255)
                    if prev is not None:
                        warped, ok = previous_labels(prev, cams[i - 1], cams[i])
                        stats[s]["flicker"].append(float((warped != labels)[ok].mean()))
                    prev = labels
            print(f"{kind} clip {k + 1}/{len(data)}", file=sys.stderr)
        base = stats[strengths[0]]
        for s in strengths:
            st = stats[s]
            rows.append({
                "motion": kind,
                "smooth": s if s != DEFAULT_SMOOTH else f"{s} (default)",
                "clips": len(data),
                "frames": args.frames,
                "flicker_%": round(100 * float(np.mean(st["flicker"])), 2),
                "vs_off": round(float(np.mean(st["flicker"])) / max(float(np.mean(base["flicker"])), 1e-12), 2),
                "miou": round(100 * mean_iou(st["cm"]), 2),
                "smooth_ms": round(float(np.median(st["ms"])), 1),
            })  # fmt: skip
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
