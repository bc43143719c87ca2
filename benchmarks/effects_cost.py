#!/usr/bin/env python
"""What the effects cost per video frame, beside the model: milliseconds at 640x480 and
1280x720, and each as a share of the model's own segment() time measured in the same run.

    python benchmarks/effects_cost.py [--models selfie,deeplabv3] [--sizes 640x480,1280x720]
        [--rounds 5] [--threads 2] [--json FILE]

Per model and frame size, one frame (the astronaut photo cover-cropped to the size) and
these steps, timed interleaved in rounds (every step once per round, order rotating) so
load from neighbours lands on all alike; the median per step is reported:

- ``segment, mask only``: ``Segmenter.segment`` of the frame without smoothing (the
  baseline, what video ran before smoothing);
- ``segment, video path``: what video runs now: the model-sized view of the frame (the same
  model input) segmented with its probabilities, the mask upsampled to the frame;
- ``smooth``: one :class:`~seglite.smoothing.TemporalSmoother` step;
- ``matte, video``: the matte from the smoothed probabilities, as video makes it (no guided
  filter), and with the guided filter (on a 256 grid) for comparison;
- ``matte, photo``: ``result.alpha(image=frame)`` as ``seglite segment PHOTO --effect``;
- ``segment, full-size probabilities``: the confidence masks at the frame's size, for scale;
- ``blur``, ``color``, ``image``, ``cutout``: :func:`seglite.effects.apply` on a matte.

An effect keeps video real time where ``segment + smooth + matte + effect`` stays within the
frame interval the model alone sustains plus what the machine has to spare.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parents[1]


def frame(size: tuple[int, int]) -> np.ndarray:
    img = Image.open(REPO / "examples" / "astronaut.jpg").convert("RGB")
    return np.asarray(ImageOps.fit(img, size, Image.Resampling.BILINEAR))


def steps(seg, plain, rgb: np.ndarray, background: Path) -> dict:
    from seglite import effects
    from seglite.matte import matte_from_probability
    from seglite.smoothing import TemporalSmoother
    from seglite.video import VIDEO_MATTE_GRID, _segment_frame, model_view

    h, w = rgb.shape[:2]
    view = model_view(seg, rgb)
    low = seg.segment(view)
    smoother = TemporalSmoother()
    smoother(low, view, size=(w, h))
    full = seg.segment(rgb)
    alpha = full.alpha(image=rgb)
    p = smoother.probability([len(seg.labels) - 1] if "person" in seg.labels[-1:] else
                             list(range(1, len(seg.labels))))  # fmt: skip
    image_fx = effects.parse(f"image:{background}")
    return {
        "segment, mask only (no smoothing)": lambda: plain.segment(rgb),
        "segment, video path (view + probabilities)": lambda: _segment_frame(
            seg, rgb, TemporalSmoother(0), True
        ),
        "smooth (one step)": lambda: smoother(low, view, size=(w, h)),
        "matte, video (no guided filter)": lambda: matte_from_probability(
            p, (w, h), rgb, grid=VIDEO_MATTE_GRID, refine=False
        ),
        "matte, video with guided filter": lambda: matte_from_probability(
            p, (w, h), rgb, grid=VIDEO_MATTE_GRID
        ),
        "matte, photo (grid 384)": lambda: full.alpha(image=rgb),
        "segment, full-size probabilities": lambda: seg.segment(rgb),
        "blur": lambda: effects.apply(rgb, alpha, "blur"),
        "color": lambda: effects.apply(rgb, alpha, "color:#00b140"),
        "image": lambda: effects.apply(rgb, alpha, image_fx),
        "cutout": lambda: effects.apply(rgb, alpha, "cutout"),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="selfie,deeplabv3")
    p.add_argument("--sizes", default="640x480,1280x720")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    from seglite import Segmenter
    from seglite.cli import format_table
    from seglite.effects import segmenter_options

    background = REPO / "tests" / "data" / "photos" / "rocket.jpg"
    rows = []
    for model in args.models.split(","):
        with Segmenter(model, num_threads=args.threads) as probe:
            options = segmenter_options(probe)
        seg = Segmenter(model, num_threads=args.threads, **options)
        plain = Segmenter(model, num_threads=args.threads)
        for text in args.sizes.split(","):
            w, h = (int(v) for v in text.lower().split("x"))
            todo = steps(seg, plain, frame((w, h)), background)
            for fn in todo.values():  # warm-up
                fn()
            samples: dict[str, list[float]] = {k: [] for k in todo}
            names = list(todo)
            for r in range(args.rounds):
                for name in names[r % len(names) :] + names[: r % len(names)]:
                    t0 = time.perf_counter()
                    todo[name]()
                    samples[name].append((time.perf_counter() - t0) * 1e3)
            base = float(np.median(samples["segment, mask only (no smoothing)"]))
            for name, ms in samples.items():
                med = float(np.median(ms))
                rows.append({"model": model, "size": f"{w}x{h}", "step": name,
                             "ms": round(med, 1), "x_segment": round(med / base, 2)})  # fmt: skip
            print(f"{model} {w}x{h} done", file=sys.stderr)
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
