"""The dataset layouts seglite reads, by name (``--dataset-kind``); opened by ``layouts``."""

DATASET_KINDS = (
    "auto", "voc", "camvid", "folder", "coco", "cityscapes", "ade20k", "oxford_pets",
)  # fmt: skip
