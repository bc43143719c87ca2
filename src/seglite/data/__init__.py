"""Segmentation datasets and DeepLab-style augmentation.

Datasets yield ``(image uint8 HxWx3, mask uint8/int HxW)`` numpy pairs; the training
transform turns them into normalized tensors. See ``datasets.open_dataset``.
"""

from __future__ import annotations

from .datasets import (
    DATASET_KINDS,
    SegmentationDataset,
    camvid_dataset,
    folder_dataset,
    open_dataset,
    voc_dataset,
)
from .transforms import EvalTransform, TrainTransform, normalize

__all__ = [
    "DATASET_KINDS",
    "EvalTransform",
    "SegmentationDataset",
    "TrainTransform",
    "camvid_dataset",
    "folder_dataset",
    "normalize",
    "open_dataset",
    "voc_dataset",
]
