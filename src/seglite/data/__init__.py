"""Segmentation datasets and DeepLab-style augmentation.

Datasets yield ``(image uint8 HxWx3, mask uint8/int HxW)`` numpy pairs; the training
transform turns them into normalized tensors. ``open_dataset`` reads every layout seglite
knows (``layouts``); ``check.check_dataset`` reports what is wrong with one.
"""

from __future__ import annotations

from .datasets import SegmentationDataset, camvid_dataset, voc_dataset
from .folders import folder_dataset
from .layouts import DATASET_KINDS, detect_kind, list_splits, open_dataset
from .transforms import EvalTransform, TrainTransform, normalize

__all__ = [
    "DATASET_KINDS",
    "EvalTransform",
    "SegmentationDataset",
    "TrainTransform",
    "camvid_dataset",
    "detect_kind",
    "folder_dataset",
    "list_splits",
    "normalize",
    "open_dataset",
    "voc_dataset",
]
