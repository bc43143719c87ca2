"""Evaluation: one confusion matrix, mIoU and friends; datasets through any backend."""

from __future__ import annotations

from .metrics import (
    ConfusionMatrix,
    confusion_matrix,
    fw_iou,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
)

__all__ = [
    "ConfusionMatrix",
    "confusion_matrix",
    "fw_iou",
    "iou_per_class",
    "mean_iou",
    "pixel_accuracy",
]
