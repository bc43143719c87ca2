"""Accurate mode's trade-off: mIoU and milliseconds per image for each scale set, with and
without flip, against the one-window squash path, measured in one run.

    python benchmarks/accurate_modes.py [--data ../shared/data/voc2012] [--models deeplabv3 ...]
                                        [--limit N] [--json FILE]

Each model's squash row is the baseline of its cost ratios. Evaluation goes through
``seglite.eval.evaluate``, the same code path as ``seglite eval``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = [
    ("squash", (1.0,), False),
    ("squash + flip", (1.0,), True),
    ("1.5x tiles", (1.5,), False),
    ("2x tiles", (2.0,), False),
    ("1.5x + flip", (1.5,), True),
    ("1.5x + 2x", (1.5, 2.0), False),
    ("1.5x + 2x, each flipped", (1.5, 2.0), True),
    ("0.75x + 1x, each flipped", (0.75, 1.0), True),
    ("preset", None, None),  # --accurate: the model's own scales (zoo entry or file), flipped
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "voc2012"))
    parser.add_argument(
        "--models", nargs="+", default=["deeplabv3", "coral-pascal", "coral-pascal-dm05"]
    )
    parser.add_argument("--configs", nargs="+", default=None, help="names from the list above")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)

    from seglite.data.datasets import open_dataset
    from seglite.eval.evaluate import evaluate

    dataset = open_dataset(args.data)
    configs = [c for c in CONFIGS if args.configs is None or c[0] in args.configs]
    rows = []
    for model in args.models:
        base_ms = None
        for name, scales, flip in configs:
            mode = {"accurate": True} if scales is None else {"scales": scales, "flip": flip}
            res = evaluate(model, dataset, num_threads=args.threads, limit=args.limit, **mode)
            scales, flip = res.settings["scales"], res.settings["flip"]
            ms = 1e3 * res.seconds / res.images
            base_ms = base_ms or ms
            row = {"model": model, "mode": name, "scales": list(scales), "flip": flip,
                   "miou": res.miou, "ms_per_image": round(ms, 1), "cost": round(ms / base_ms, 1),
                   "images": res.images}  # fmt: skip
            rows.append(row)
            print(f"{model:20s} {name:26s} mIoU {res.miou:5.2f}  {ms:7.1f} ms/img  x{row['cost']}",
                  flush=True)  # fmt: skip
    print()
    print("| model | mode | mIoU | ms / image | cost vs squash |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['mode']} | {r['miou']:.1f} | {r['ms_per_image']:.0f} | {r['cost']}x |"
        )
    if args.json:
        meta = {"machine": platform.platform(), "processor": platform.processor(),
                "threads": args.threads, "dataset": args.data}  # fmt: skip
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
