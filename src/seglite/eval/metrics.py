"""The one metrics implementation: a confusion matrix accumulated with ``np.bincount``.

Rows are ground truth, columns predictions. Pixels whose ground truth is the ignore
value (or any value outside ``0..num_classes-1``) are skipped. IoU of a class is
``TP / (TP + FP + FN)``; a class with no ground truth and no prediction in the whole
set has no IoU (NaN) and is left out of the mean, as in the PASCAL VOC devkit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def confusion_matrix(
    pred: np.ndarray, target: np.ndarray, num_classes: int, ignore_index: int | None = None
) -> np.ndarray:
    """(num_classes, num_classes) int64 counts; ``[t, p]`` = pixels of class t predicted as p."""
    pred = np.asarray(pred).ravel()
    target = np.asarray(target).ravel()
    if pred.shape != target.shape:
        raise ValueError(f"prediction has {pred.size} pixels but ground truth has {target.size}")
    keep = (target >= 0) & (target < num_classes)
    if ignore_index is not None:
        keep &= target != ignore_index
    t = target[keep].astype(np.int64)
    p = pred[keep].astype(np.int64)
    if p.size and (p.min() < 0 or p.max() >= num_classes):
        raise ValueError(f"predictions must be class ids in 0..{num_classes - 1}")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    tp = np.diag(cm).astype(np.float64)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.maximum(union, 1), np.nan)


def mean_iou(cm: np.ndarray) -> float:
    iou = iou_per_class(cm)
    return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")


def pixel_accuracy(cm: np.ndarray) -> float:
    total = cm.sum()
    return float(np.trace(cm) / total) if total else float("nan")


def mean_accuracy(cm: np.ndarray) -> float:
    gt = cm.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = np.where(gt > 0, np.diag(cm) / np.maximum(gt, 1), np.nan)
    return float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan")


def fw_iou(cm: np.ndarray) -> float:
    """Frequency-weighted IoU: IoU averaged with each class's share of ground-truth pixels."""
    freq = cm.sum(1) / max(cm.sum(), 1)
    iou = np.nan_to_num(iou_per_class(cm))
    return float((freq * iou).sum())


@dataclass
class ConfusionMatrix:
    """Accumulates over a dataset; ``summary()`` gives the numbers papers report."""

    num_classes: int
    ignore_index: int | None = None
    matrix: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.matrix is None:
            self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, pred: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Add one image (or batch); returns that image's own matrix."""
        cm = confusion_matrix(pred, target, self.num_classes, self.ignore_index)
        self.matrix += cm
        return cm

    def merge(self, other: ConfusionMatrix | np.ndarray) -> None:
        self.matrix += other.matrix if isinstance(other, ConfusionMatrix) else other

    @property
    def miou(self) -> float:
        return mean_iou(self.matrix)

    def summary(self, names: Sequence[str] | None = None) -> dict:
        """Percentages (0-100) rounded to 2 decimals; per-class IoU keyed by class name."""
        names = list(names) if names is not None else [str(i) for i in range(self.num_classes)]
        iou = iou_per_class(self.matrix)

        def pct(v: float) -> float | None:
            return None if not np.isfinite(v) else round(100.0 * float(v), 2)

        return {
            "miou": pct(mean_iou(self.matrix)),
            "pixel_acc": pct(pixel_accuracy(self.matrix)),
            "mean_acc": pct(mean_accuracy(self.matrix)),
            "fwiou": pct(fw_iou(self.matrix)),
            "per_class_iou": {n: pct(v) for n, v in zip(names, iou)},
            "pixels": int(self.matrix.sum()),
        }
