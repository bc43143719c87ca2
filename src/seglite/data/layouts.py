"""Which layout a dataset folder is, its splits, and opening it: ``open_dataset``.

Detection looks only at names of folders and files, in this order: VOC
(``JPEGImages/`` + ``SegmentationClass/``), Cityscapes (``leftImg8bit/`` + ``gtFine/``),
ADE20K (``images/training`` + ``annotations/``), Oxford-IIIT Pet
(``images/`` + ``annotations/trimaps/``), COCO JSON (see ``coco``), CamVid
(``<split>/`` + ``<split>annot/``), then folders (``images/`` + ``masks/``, or
``<split>/`` + ``<split>_labels/``). A folder that is none of them gets one error that
lists what each layout looks like.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import DatasetError
from . import benchmarks, coco, folders
from .datasets import SegmentationDataset, camvid_dataset, voc_dataset
from .kinds import DATASET_KINDS

LAYOUT_HELP = (
    "VOC: JPEGImages/ + SegmentationClass/; CamVid: <split>/ + <split>annot/; "
    "folder: images/ + masks/ + labels.txt or class_dict.csv; COCO: annotations/*.json or "
    "_annotations.coco.json; Cityscapes: leftImg8bit/ + gtFine/; ADE20K: ADEChallengeData2016/"
    "; Oxford-IIIT Pet: images/ + annotations/trimaps/"
)
# Names the same split goes by in different exports.
SPLIT_ALIASES = {
    "val": ("valid", "validation", "val2017", "val2014", "test"),
    "train": ("training", "train2017", "train2014"),
}


def split_alias(split: str, available) -> str | None:
    """The name ``split`` has among ``available`` (exact, alias, then prefix), or None."""
    names = list(available)
    if split in names:
        return split
    for alias in SPLIT_ALIASES.get(split, ()):
        if alias in names:
            return alias
    starts = [n for n in names if n.startswith(split)] if split else []
    return starts[0] if len(starts) == 1 else None


def detect_kind(root: Path) -> str:
    root = Path(root)
    if (root / "JPEGImages").is_dir() and (root / "SegmentationClass").is_dir():
        return "voc"
    if benchmarks.cityscapes_root(root):
        return "cityscapes"
    if benchmarks.ade20k_root(root):
        return "ade20k"
    if benchmarks.is_pets(root):
        return "oxford_pets"
    if coco.coco_sources(root):
        return "coco"
    if any(
        d.name.endswith("annot") and d.is_dir() and (root / d.name[: -len("annot")]).is_dir()
        for d in root.iterdir()
    ):
        return "camvid"  # <split>/ beside <split>annot/, whatever the split is called
    if (root / "images").is_dir() and (root / "masks").is_dir() or folders.split_dirs(root):
        return "folder"
    raise DatasetError(f"{root}: not a known dataset layout ({LAYOUT_HELP})")


def list_splits(root: str | Path, kind: str = "auto") -> list[str]:
    """The splits a dataset has ("" where it has just one set of pairs)."""
    root = Path(root)
    kind = detect_kind(root) if kind == "auto" else kind
    if kind == "voc":
        found = [
            p.stem
            for d in (root / "ImageSets" / "Segmentation", root)
            if d.is_dir()
            for p in sorted(d.glob("*.txt"))
            if p.stem in ("train", "val", "trainval", "test") or d != root
        ]
        found = list(dict.fromkeys(found))
        if {"train", "val"} <= set(found) and "trainval" in found:
            found.remove("trainval")
        return found
    if kind == "camvid":
        return [
            d.name[: -len("annot")]
            for d in sorted(root.iterdir())
            if d.name.endswith("annot") and (root / d.name[: -len("annot")]).is_dir()
        ]
    if kind == "coco":
        return list(coco.coco_sources(root))
    if kind == "cityscapes":
        return benchmarks.cityscapes_splits(root)
    if kind == "ade20k":
        return benchmarks.ade20k_splits(root)
    if kind == "folder":
        return folders.folder_splits(root)
    return [""]


def open_dataset(
    root: str | Path,
    *,
    kind: str = "auto",
    split: str = "val",
    labels: str | Path | Sequence[str] | None = None,
    ignore_index: int | None = None,
    strict: bool = True,
) -> SegmentationDataset:
    """Open ``root`` in any layout seglite reads (``kind="auto"`` detects it).

    Layouts with a single set of pairs (a CVAT export, a folder without split subfolders,
    Oxford-IIIT Pet) give the same pairs for every split. ``labels``/``ignore_index``
    override a folder's ``labels.txt`` and 255. ``strict=False`` leaves out pairs with a
    missing file (listed in ``unpaired_images``/``unpaired_masks``) instead of raising.
    """
    root = Path(root)
    if kind not in DATASET_KINDS:
        raise DatasetError(
            f"unknown dataset kind {kind!r}: choose one of {', '.join(DATASET_KINDS)}"
        )
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder")
    if kind == "auto":
        kind = detect_kind(root)
    if kind == "voc":
        return voc_dataset(root, split, strict=strict)
    if kind == "camvid":
        return camvid_dataset(root, split, strict=strict)
    if kind == "cityscapes":
        return benchmarks.cityscapes_dataset(root, split, strict=strict)
    if kind == "ade20k":
        return benchmarks.ade20k_dataset(root, split, strict=strict)
    if kind == "oxford_pets":
        return benchmarks.pets_dataset(root, split, strict=strict)
    if kind == "coco":
        sources = coco.coco_sources(root)
        if not sources:
            raise DatasetError(f"{root}: no COCO JSON ({LAYOUT_HELP})")
        name = "" if "" in sources else split_alias(split, sources)
        if name is None:
            raise DatasetError(f"{root}: no split {split!r} (found {', '.join(sources)})")
        json_path, dirs = sources[name]
        return coco.coco_dataset(json_path, dirs, split, strict=strict, root=root)
    return folders.open_folder(root, split, labels, ignore_index, strict)
