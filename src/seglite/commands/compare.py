"""seglite compare: what a conversion or quantization changed, on your own images."""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(sub) -> argparse.ArgumentParser:
    from ..cli import positive_int

    p = sub.add_parser(
        "compare",
        help="pixel agreement and mIoU of one model against another on a folder of images",
        description="Segment every image in IMAGES_DIR with MODEL_A and MODEL_B (zoo names or "
        "files: a checkpoint and its export, float and int8...) and report pixel agreement, "
        "the mIoU of B taking A's masks as the reference, and per-class differences.",
    )
    p.add_argument("model_a", metavar="MODEL_A")
    p.add_argument("model_b", metavar="MODEL_B")
    p.add_argument("images", metavar="IMAGES_DIR")
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N images")
    p.add_argument("--threads", type=positive_int, default=None, help="interpreter threads")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p


def run(args: argparse.Namespace) -> int:
    from ..cli import format_table
    from ..compare import compare_models

    r = compare_models(
        args.model_a, args.model_b, args.images, num_threads=args.threads, limit=args.limit,
        progress=sys.stderr.isatty(),
    )  # fmt: skip
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    rows = [
        {"class": c["class"], "pixels A": c["pixels_a"], "pixels B": c["pixels_b"],
         "share change %": f"{c['share_change']:+.3f}",
         "IoU %": "-" if c["iou"] is None else f"{c['iou']:.2f}"}
        for c in r["classes"]
    ]  # fmt: skip
    print(format_table(rows))
    worst = ", ".join(f"{w['image']} {w['agreement']:.1f}%" for w in r["least_agreement"])
    print(
        f"\n{r['model_b']} against {r['model_a']} on {r['images']} images: pixel agreement "
        f"{r['pixel_agreement']:.2f}%, mIoU {r['miou_b_vs_a']:.2f}\nleast agreement: {worst}"
    )
    return 0
