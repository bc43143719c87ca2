#!/usr/bin/env python
"""Which model gives the better subject matte? IoU and boundary F-score of each model's alpha
matte (thresholded at 0.5) against real ground truth, with and without the guided filter.

    python benchmarks/matte_quality.py [--data ../shared/data/voc2012 ../shared/data/oxford_pets]
        [--models deeplabv3,selfie,selfie-landscape,coral-pascal] [--limit N] [--json FILE]

Datasets (layout detected):
- VOC (``JPEGImages/`` + ``SegmentationClass/``, e.g. ../shared/data/voc2012): the subject is
  the person class (images where people cover at least 2% of the picture); the void band
  (255) is ignored. A VOC folder of pets (tests/data/pets_voc: cat/dog/255) counts every
  non-background class as the subject.
- Oxford-IIIT Pet trimaps (``images/`` + ``annotations/trimaps/``): the pet is the subject,
  the trimap's "not classified" band (3) is ignored.

The matte is made as ``seglite segment --effect`` makes it: ``classes=["person"]`` on person
data, the default (every class but background) on pets. Boundary F (as in DAVIS): the
outline of the thresholded matte against the ground truth's outline, each matched within
0.75% of the image diagonal; a predicted outline pixel inside the ignored band counts as
matched (the true edge is somewhere in it).
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
SHARED = REPO.parent / "shared"
DEFAULT_DATA = [SHARED / "data" / "voc2012", SHARED / "data" / "oxford_pets"]
DEFAULT_MODELS = "deeplabv3,selfie,selfie-landscape,coral-pascal"
PERSON = 15


def pairs(root: Path) -> tuple[str, list[tuple[Path, np.ndarray, np.ndarray]]]:
    """(kind, [(image, subject mask, valid mask)]) for a VOC or Oxford-trimap folder."""
    out = []
    if (root / "annotations" / "trimaps").is_dir():
        for img in sorted((root / "images").glob("*.jpg")):
            t = np.asarray(Image.open(root / "annotations" / "trimaps" / f"{img.stem}.png"))
            out.append((img, t == 1, t != 3))
        return "pets", out
    masks = [np.asarray(Image.open(m)) for m in sorted((root / "SegmentationClass").glob("*.png"))]
    images = [
        root / "JPEGImages" / f"{m.stem}.jpg"
        for m in sorted((root / "SegmentationClass").glob("*.png"))
    ]
    pets = all(set(np.unique(m).tolist()) <= {0, 8, 12, 255} for m in masks)
    for img, m in zip(images, masks):
        valid = m != 255
        if pets:  # a VOC folder of pets: every object is the subject
            out.append((img, (m > 0) & valid, valid))
        elif (m == PERSON).mean() >= 0.02:
            out.append((img, m == PERSON, valid))
    return ("pets" if pets else "person"), out


def outline(mask: np.ndarray) -> np.ndarray:
    edge = np.zeros(mask.shape, bool)
    edge[1:] |= mask[1:] != mask[:-1]
    edge[:-1] |= mask[1:] != mask[:-1]
    edge[:, 1:] |= mask[:, 1:] != mask[:, :-1]
    edge[:, :-1] |= mask[:, 1:] != mask[:, :-1]
    return edge & mask


def dilate(mask: np.ndarray, r: int) -> np.ndarray:
    from seglite.matte import box_mean

    return box_mean(mask.astype(np.float32), r) > 1e-6


def scores(alpha: np.ndarray, truth: np.ndarray, valid: np.ndarray) -> tuple[float, float]:
    """(IoU, boundary F) of ``alpha >= 0.5`` against ``truth`` over ``valid`` pixels."""
    mine = alpha >= 0.5
    inter = (mine & truth & valid).sum()
    union = ((mine | truth) & valid).sum()
    iou = inter / union if union else 1.0
    d = max(2, round(0.0075 * float(np.hypot(*truth.shape))))
    pe, te = outline(mine), outline(truth)
    matched_p = pe & (dilate(te, d) | ~valid)
    matched_t = te & dilate(pe, d)
    precision = matched_p.sum() / pe.sum() if pe.sum() else float(te.sum() == 0)
    recall = matched_t.sum() / te.sum() if te.sum() else float(pe.sum() == 0)
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(iou), float(f)


def measure(model: str, kind: str, data, *, threads: int) -> list[dict]:
    from seglite import Segmenter
    from seglite.effects import segmenter_options

    with Segmenter(model, num_threads=threads) as probe:
        options = segmenter_options(probe)
        has_person = "person" in probe.labels
    if kind == "person" and not has_person:
        return []
    classes = ["person"] if kind == "person" else None
    rows = {v: {"iou": [], "bf": [], "ms": []} for v in ("guided", "plain")}
    with Segmenter(model, num_threads=threads, **options) as seg:
        for img, truth, valid in data:
            photo = Image.open(img).convert("RGB")
            result = seg.segment(photo)
            for variant, refine in (("guided", True), ("plain", False)):
                t0 = time.perf_counter()
                alpha = result.alpha(classes, image=photo, refine=refine)
                ms = (time.perf_counter() - t0) * 1e3
                iou, bf = scores(alpha, truth, valid)
                r = rows[variant]
                r["iou"].append(iou), r["bf"].append(bf), r["ms"].append(ms)
    return [
        {
            "model": model,
            "data": kind,
            "matte": variant,
            "images": len(r["iou"]),
            "iou": round(100 * float(np.mean(r["iou"])), 1),
            "boundary_f": round(100 * float(np.mean(r["bf"])), 1),
            "matte_ms": round(float(np.median(r["ms"])), 1),
        }
        for variant, r in rows.items()
    ]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=[str(d) for d in DEFAULT_DATA])
    p.add_argument("--models", default=DEFAULT_MODELS)
    p.add_argument("--limit", type=int, default=None, help="images per dataset")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    from seglite.cli import format_table

    rows = []
    for root in map(Path, args.data):
        kind, data = pairs(root)
        data = data[: args.limit] if args.limit else data
        if not data:
            print(f"{root}: no usable images", file=sys.stderr)
            continue
        for model in args.models.split(","):
            got = measure(model, kind, data, threads=args.threads)
            for row in got:
                row["dataset"] = root.name
            rows += got
            for row in got:
                print(f"{root.name} {model} {row['matte']}: IoU {row['iou']} "
                      f"BF {row['boundary_f']}", file=sys.stderr)  # fmt: skip
    cols = ["dataset", "data", "model", "matte", "images", "iou", "boundary_f", "matte_ms"]
    print(format_table(rows, cols))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
