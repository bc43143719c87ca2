"""Parity on your own images: how far two models' masks agree (a checkpoint and its export,
float and int8), so a user sees what a conversion or quantization changed on their data.

Model A is the reference: mIoU is B's masks scored against A's as if A were ground truth,
and the per-class table says which classes B gains or loses pixels on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import DatasetError, OptionError


def image_paths(folder: str | Path, limit: int | None = None) -> list[Path]:
    from .data.datasets import IMAGE_SUFFIXES

    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such image folder")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DatasetError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    return paths[:limit] if limit else paths


def compare_models(
    model_a: str | Path, model_b: str | Path, images: str | Path, *,
    num_threads: int | None = None, limit: int | None = None, progress: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Pixel agreement, mIoU of B against A, per-class pixel counts and IoU, worst images."""
    from tqdm.auto import tqdm

    from .eval.metrics import ConfusionMatrix, iou_per_class
    from .labels import same_classes
    from .segmenter import Segmenter

    paths = image_paths(images, limit)
    a = Segmenter(model_a, num_threads=num_threads)
    b = Segmenter(model_b, num_threads=num_threads)
    try:
        if not same_classes(a.label_set, b.label_set):
            raise OptionError(
                f"{a.model_name} ({len(a.label_set)} classes) and {b.model_name} "
                f"({len(b.label_set)} classes) do not predict the same classes"
            )
        n = len(a.label_set)
        cm = ConfusionMatrix(n)
        per_image = []
        for p in tqdm(paths, desc="compare", unit="img", disable=not progress, leave=False):
            ma = a.segment(p).category_mask
            mb = b.segment(p).category_mask
            if ma.shape != mb.shape:  # both are at the image's size; guard anyway
                raise OptionError(f"{p.name}: masks of {ma.shape} and {mb.shape}")
            cm.update(mb, ma)
            per_image.append((float((ma == mb).mean()), p.name))
        mat = cm.matrix
        iou = iou_per_class(mat)
        px_a, px_b = mat.sum(1), mat.sum(0)
        total = max(int(mat.sum()), 1)
        classes = [
            {"class": a.label_set.names[i], "pixels_a": int(px_a[i]), "pixels_b": int(px_b[i]),
             "share_change": round(100.0 * (px_b[i] - px_a[i]) / total, 3),
             "iou": None if not np.isfinite(iou[i]) else round(100.0 * float(iou[i]), 2)}
            for i in range(n) if px_a[i] or px_b[i]
        ]  # fmt: skip
        classes.sort(key=lambda c: -abs(c["pixels_b"] - c["pixels_a"]))
        summary = cm.summary(a.label_set.names)
        return {
            "model_a": a.model_name, "model_b": b.model_name, "images": len(paths),
            "pixel_agreement": round(100.0 * float(np.trace(mat)) / total, 3),
            "miou_b_vs_a": summary["miou"], "classes": classes,
            "least_agreement": [
                {"image": name, "agreement": round(100 * v, 2)} for v, name in sorted(per_image)[:5]
            ],
        }  # fmt: skip
    finally:
        a.close()
        b.close()
