"""Imported PyTorch models vs LiteRT for every DeepLab in the zoo: argmax agreement, max logit diff.

    python benchmarks/import_parity.py [--models a,b] [--images f1,f2] [--markdown]

Models are found through the zoo (``$SEGLITE_MODEL_DIR``, the cache, or downloaded), so
anyone can rerun it; images default to the golden inputs in ``tests/data/golden`` and two
other real photos (``examples/astronaut.jpg``, ``examples/chelsea.jpg``). Quantized graphs
are compared with the quantized interpreter (LiteRT's default XNNPACK path for the mask;
the logits the ARG_MAX reads come from a run without delegates), twice: the float import
as it is, and with the graph's activation rounding simulated (see
``seglite.models.tflite_parity``); each image's cell gives both (float / simulated), and
"confident" the simulated agreement on pixels whose two best scores are more than two
quanta apart.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
IMAGES = [
    REPO / "tests/data/golden/segmentation_input_rotation0.jpg",
    REPO / "tests/data/golden/segmentation_input_rotation90_flop.jpg",
    REPO / "tests/data/golden/cityscapes_segmentation.bmp",
    REPO / "tests/data/golden/bird_segmentation.bmp",
    REPO / "examples/astronaut.jpg",
    REPO / "examples/chelsea.jpg",
]


def main(argv=None) -> int:
    import torch

    from seglite import zoo
    from seglite.errors import SegliteError
    from seglite.models import import_tflite
    from seglite.models.tflite_parity import parity

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--models", default=None, help="comma-separated zoo names (default: all DeepLabs)"
    )
    p.add_argument("--images", default=None, help="comma-separated image files")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--markdown", action="store_true", help="one Markdown table row per model")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = args.models.split(",") if args.models else [
        n for n, e in zoo.ZOO.items() if e.imports == "yes"
    ]  # fmt: skip
    images = [Path(f) for f in args.images.split(",")] if args.images else IMAGES
    pixels = [np.asarray(Image.open(f).convert("RGB")) for f in images]
    header = (
        "| model | weights | "
        + " | ".join(f.stem[:18] for f in images)
        + " | min | confident (min) | max logit diff |"
    )
    print(header)
    print("|" + "---|" * (len(images) + 5))
    for name in names:
        try:
            path = zoo.resolve(name, progress=False).path
        except SegliteError as exc:
            print(f"| {name} | not available: {exc} |")
            continue
        t0 = time.perf_counter()
        model, info = import_tflite(path)
        rows = parity(model, path, pixels, threads=args.threads)
        quantized = info["input_quantization"] is not None or "int8" in info["weights"]
        sim = parity(model, path, pixels, threads=args.threads, simulate_quantization=True)
        sim = sim if quantized else rows
        agree = [r["agreement"] for r in rows]
        sim_agree = [r["agreement"] for r in sim]
        diff = max(r["max_diff"] for r in rows)
        rng = max(r["logit_range"] for r in rows)
        cells = " | ".join(
            f"{a:.2%} / {s:.2%}" if quantized else f"{a:.2%}" for a, s in zip(agree, sim_agree)
        )
        low = f"{min(agree):.2%} / {min(sim_agree):.2%}" if quantized else f"{min(agree):.2%}"
        conf = min(r["confident_agreement"] for r in sim)
        print(f"| {name} | {info['weights']} | {cells} | {low} | {conf:.2%} | {diff:.3f} "
              f"(range {rng:.0f}) |", flush=True)  # fmt: skip
        print(f"  ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
