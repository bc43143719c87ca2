#!/usr/bin/env python
"""Does squashing the photo inside the graph (plain bilinear after DCT / box reduction) cost
accuracy against Pillow's antialiased bilinear resize? mIoU of both on one dataset, with a
paired bootstrap over images for the difference.

    python benchmarks/squash_quality.py [--data ../shared/data/voc2012] [--model deeplabv3]
                                        [--boot 1000] [--limit N] [--json FILE]

Both runs go through the same Segmenter; the Pillow run hands the backend pixels already at
the model's size, which the graph's squash then leaves as they are.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def confusions(seg, dataset, prepare) -> np.ndarray:
    """One (C, C) confusion matrix per image (rows: truth), with ``prepare`` as model_pixels."""
    import seglite.segmenter as segmenter_module
    from seglite.eval.metrics import confusion_matrix

    saved = segmenter_module.model_pixels
    segmenter_module.model_pixels = prepare
    try:
        out = []
        for i in range(len(dataset)):
            mask = seg.segment(dataset.pairs[i][0]).category_mask
            out.append(confusion_matrix(mask, dataset.read_mask(i), len(dataset.labels)))
        return np.stack(out)
    finally:
        segmenter_module.model_pixels = saved


def miou(cm: np.ndarray) -> float:
    from seglite.eval.metrics import mean_iou

    return 100 * mean_iou(cm)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "voc2012"))
    p.add_argument("--model", default="deeplabv3")
    p.add_argument("--boot", type=int, default=1000)
    p.add_argument("--limit", type=int, default=None, help="the first N images only")
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)

    from seglite import Segmenter
    from seglite.data.datasets import open_dataset
    from seglite.image import model_pixels, resize, to_array

    dataset = open_dataset(a.data).subset(a.limit)
    seg = Segmenter(a.model, num_threads=2)
    pillow = confusions(seg, dataset, lambda img, size: to_array(resize(img, size)))
    graph = confusions(seg, dataset, model_pixels)
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(a.boot):
        pick = rng.integers(0, len(graph), len(graph))
        diffs.append(miou(graph[pick].sum(0)) - miou(pillow[pick].sum(0)))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    from seglite.eval.metrics import pixel_accuracy

    acc = [100 * pixel_accuracy(c.sum(0)) for c in (pillow, graph)]
    row = {"model": a.model, "images": len(graph), "miou_pillow": miou(pillow.sum(0)),
           "miou_graph": miou(graph.sum(0)), "ci95": [float(lo), float(hi)],
           "pixel_acc_pillow": acc[0], "pixel_acc_graph": acc[1]}  # fmt: skip
    print(
        f"{a.model} on {len(graph)} images: Pillow resize {row['miou_pillow']:.2f} mIoU, "
        f"in-graph squash {row['miou_graph']:.2f} (difference "
        f"{row['miou_graph'] - row['miou_pillow']:+.2f}, 95% bootstrap interval "
        f"{lo:+.2f} to {hi:+.2f}); pixel accuracy {acc[0]:.2f} -> {acc[1]:.2f}"
    )
    if a.json:
        Path(a.json).write_text(json.dumps(row, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
