"""Evaluation: one confusion matrix, mIoU and friends; datasets through any backend."""

from __future__ import annotations

from .evaluate import EvalResult, evaluate, evaluate_checkpoint
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
    "EvalResult",
    "confusion_matrix",
    "evaluate",
    "evaluate_checkpoint",
    "fw_iou",
    "iou_per_class",
    "mean_iou",
    "pixel_accuracy",
]
