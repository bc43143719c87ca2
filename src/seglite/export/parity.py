"""After every export: does the exported file say what the PyTorch model says?

Both see the same uint8 pixels; the exported file runs through seglite's own runtime
backend (LiteRT or ONNX Runtime), so its metadata-driven normalization is part of what
is checked. Reported: argmax agreement over all pixels (and the worst image) and the
largest logit difference. Below the thresholds the report carries a warning; it never
deletes the file, since a user may still want a lossy int8 model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .core import list_images, load_pixels, normalize, synthetic_pixels

PARITY_IMAGES = 4


@dataclass(frozen=True)
class Thresholds:
    """Least argmax agreement (percent of pixels) and largest |logit difference| accepted."""

    min_agreement: float
    max_abs_diff: float | None = None


# Float32 conversion is exact up to summation order (~1e-5 here); fp16 weights move
# logits by ~0.1; int8 is judged on agreement only (its logits move by ~1).
THRESHOLDS = {
    "fp32": Thresholds(99.5, 1e-2),
    "fp16": Thresholds(99.0, 0.5),
    "int8": Thresholds(97.0, None),
}


@dataclass
class ParityReport:
    images: int
    images_from: str
    backend: str
    agreement: float  # percent of pixels where both pick the same class
    worst_image: float
    max_abs_diff: float | None  # None when the export outputs class ids
    mean_abs_diff: float | None
    logit_range: float
    thresholds: Thresholds
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.warnings

    def summary(self) -> str:
        line = (
            f"parity vs PyTorch on {self.images} image{'s' if self.images != 1 else ''} "
            f"({self.images_from}, {self.backend}): argmax agreement {self.agreement:.3f}% "
            f"(worst image {self.worst_image:.3f}%)"
        )
        if self.max_abs_diff is not None:
            line += (
                f", max |logit diff| {self.max_abs_diff:.3g} (mean {self.mean_abs_diff:.2g}, "
                f"logit range {self.logit_range:.3g})"
            )
        return line


def parity_pixels(
    input_size: tuple[int, int],
    folder: str | os.PathLike | None = None,
    fallback_files: list[Path] | None = None,
    n: int = PARITY_IMAGES,
) -> tuple[np.ndarray, str]:
    """A few real images at the model size: ``folder``, else ``fallback_files`` (the
    calibration folder's images not used for calibration), else the examples of a source
    checkout; synthetic images only when there is none."""
    from .core import default_parity_images

    if folder is not None:
        return load_pixels(list_images(folder, n), input_size), str(folder)
    if fallback_files:
        idx = np.linspace(0, len(fallback_files) - 1, min(n, len(fallback_files)))
        files = [fallback_files[int(round(i))] for i in idx]
        return load_pixels(files, input_size), "calibration folder"
    examples = default_parity_images()
    if examples is not None:
        return load_pixels(list_images(examples, n), input_size), str(examples)
    return synthetic_pixels(input_size), "synthetic images: pass --parity-images DIR"


def check_parity(
    model,
    exported: str | os.PathLike,
    pixels: np.ndarray,
    *,
    precision: str = "fp32",
    images_from: str = "",
    num_threads: int = 2,
    thresholds: Thresholds | None = None,
) -> ParityReport:
    """Compare ``model`` (PyTorch, NCHW logits) with the exported file on ``pixels``."""
    import torch

    from ..runtime import open_backend

    limits = thresholds or THRESHOLDS.get(precision, THRESHOLDS["fp32"])
    backend = open_backend(exported, num_threads=num_threads)
    model = model.eval()
    same = total = 0
    worst = 100.0
    max_diff = mean_sum = 0.0
    lo, hi = np.inf, -np.inf
    try:
        for p in pixels:
            with torch.no_grad():
                x = torch.from_numpy(normalize(p[None])).permute(0, 3, 1, 2)
                ref = model(x).permute(0, 2, 3, 1)[0].numpy()
            out = np.array(backend.run(p[None]))[0]
            ref_ids = ref.argmax(-1)
            lo, hi = min(lo, float(ref.min())), max(hi, float(ref.max()))
            if backend.output_kind == "argmax":
                ids = out
            else:
                ids = out.argmax(-1)
                if out.shape == ref.shape:
                    diff = np.abs(out.astype(np.float32) - ref)
                    max_diff = max(max_diff, float(diff.max()))
                    mean_sum += float(diff.mean())
            if ids.shape != ref_ids.shape:
                raise ValueError(f"exported output {out.shape} vs PyTorch {ref.shape}")
            k = int((ids == ref_ids).sum())
            same, total = same + k, total + ref_ids.size
            worst = min(worst, 100.0 * k / ref_ids.size)
    finally:
        backend.close()
    logits = backend.output_kind != "argmax"
    report = ParityReport(
        images=len(pixels),
        images_from=images_from,
        backend=backend.name,
        agreement=100.0 * same / max(total, 1),
        worst_image=worst,
        max_abs_diff=max_diff if logits else None,
        mean_abs_diff=mean_sum / max(len(pixels), 1) if logits else None,
        logit_range=hi - lo,
        thresholds=limits,
    )
    if report.agreement < limits.min_agreement:
        report.warnings.append(
            f"argmax agreement {report.agreement:.2f}% is below {limits.min_agreement}% "
            f"expected for {precision}"
        )
    if logits and limits.max_abs_diff is not None and max_diff > limits.max_abs_diff:
        report.warnings.append(
            f"max |logit diff| {max_diff:.3g} is above {limits.max_abs_diff:g} expected for "
            f"{precision}"
        )
    return report
