"""mIoU of several models whose class probabilities are averaged at the frame's full size,
beside each model's own: the measurement behind `seglite ensemble`'s choice of logits
(configs/README.md, "Three seeds averaged"). Any model files the Segmenter opens.

    python scripts/eval_prob_ensemble.py DATASET_DIR OUT.json MODEL MODEL [...] [--accurate]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from seglite import Segmenter
from seglite.data import open_dataset
from seglite.eval.metrics import ConfusionMatrix


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("out")
    ap.add_argument("models", nargs="+")
    ap.add_argument("--split", default="val")
    ap.add_argument("--accurate", action="store_true", help="each model in its --accurate mode")
    args = ap.parse_args()
    ds = open_dataset(args.dataset, split=args.split)
    segs = [Segmenter(m, num_threads=2, output_confidence_masks=True, accurate=args.accurate)
            for m in args.models]  # fmt: skip
    cms = [ConfusionMatrix(ds.num_classes, ds.ignore_index) for _ in range(len(segs) + 1)]
    for i in range(len(ds)):
        probs = [np.asarray(s.segment(ds.pairs[i][0]).confidence_masks) for s in segs]
        for cm, p in zip(cms, [*probs, sum(probs)], strict=True):
            pred = p.argmax(0).astype(np.uint8)
            cm.update(pred, ds.read_mask(i, (pred.shape[1], pred.shape[0])))
    names = [*args.models, "ensemble"]
    result = {
        n: round(cm.summary(ds.labels.names)["miou"], 2) for n, cm in zip(names, cms, strict=True)
    }
    for n, v in result.items():
        print(f"{v:6.2f}  {n}")
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
