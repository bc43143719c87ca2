"""Segmentation datasets and DeepLab-style augmentation.

Datasets yield ``(image uint8 HxWx3, mask uint8/int HxW)`` numpy pairs; the training
transform turns them into normalized tensors. ``open_dataset`` reads every layout seglite
knows (``layouts``); ``check.check_dataset`` reports what is wrong with one.
"""

from __future__ import annotations

import importlib

# name -> submodule: loaded on first use (PEP 562), so that the CLI, which asks only for
# DATASET_KINDS to build its parser, does not import every dataset reader at start-up.
_WHERE = {
    "SegmentationDataset": "datasets", "camvid_dataset": "datasets", "voc_dataset": "datasets",
    "folder_dataset": "folders", "DATASET_KINDS": "kinds", "detect_kind": "layouts",
    "list_splits": "layouts", "open_dataset": "layouts", "EvalTransform": "transforms",
    "TrainTransform": "transforms", "normalize": "transforms",
}  # fmt: skip


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
