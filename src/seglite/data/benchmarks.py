"""Benchmark layouts as their archives unpack: Cityscapes, ADE20K, Oxford-IIIT Pet.

Each maps its files to class ids the way its benchmark does:
- Cityscapes: ``leftImg8bit/<split>/<city>/<x>_leftImg8bit.png`` with
  ``gtFine/<split>/<city>/<x>_gtFine_labelIds.png``; the 34 labelIds become the 19
  trainIds of the official table, everything else 255 = ignore. (``test`` has no real
  ground truth and is not listed as a split.)
- ADE20K (SceneParsing, ``ADEChallengeData2016``): ``images/{training,validation}/*.jpg``
  with ``annotations/...png``; values 1..150 are the classes, 0 is "other" and ignored in
  training and scoring, as the benchmark does (the label set keeps "other" at 0 so the
  151-output zoo models line up).
- Oxford-IIIT Pet: ``images/*.jpg`` with ``annotations/trimaps/*.png``; trimap 1 (pet)
  becomes VOC cat (8) or dog (12) by species, 2 (background) VOC background (0), 3 (the
  unclassified border) 255 = ignore, so a VOC model can be scored or fine-tuned on it.
  Species comes from ``list.txt`` where present, else from the dataset's naming rule
  (cat breeds are capitalized).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DatasetError
from ..labels import LABEL_SETS
from .datasets import SegmentationDataset, extra_files, keep_paired
from .encodings import MaskCodec, index_codec

# Cityscapes labelId -> trainId (cityscapesScripts labels.py); the rest is ignore.
CITYSCAPES_TRAIN_IDS = {
    7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11,
    25: 12, 26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18,
}  # fmt: skip
ADE_SPLITS = {"train": "training", "val": "validation"}


def cityscapes_root(root: Path) -> Path | None:
    for r in (root, root / "cityscapes"):
        if (r / "leftImg8bit").is_dir() and (r / "gtFine").is_dir():
            return r
    return None


def cityscapes_splits(root: Path) -> list[str]:
    r = cityscapes_root(root)
    return [d.name for d in sorted((r / "gtFine").iterdir()) if d.is_dir() and d.name != "test"]


def cityscapes_dataset(root: Path, split: str = "val", *, strict: bool = True):
    r = cityscapes_root(root) or root
    img_root, gt_root = r / "leftImg8bit" / split, r / "gtFine" / split
    if not img_root.is_dir():
        raise DatasetError(f"{r}: no Cityscapes split {split!r} (leftImg8bit/{split}/)")
    images = sorted(img_root.glob("*/*_leftImg8bit.png"))
    if not images:
        raise DatasetError(f"{img_root}: no <city>/*_leftImg8bit.png images")
    pairs = []
    for p in images:
        stem = p.name[: -len("_leftImg8bit.png")]
        pairs.append((p, gt_root / p.parent.name / f"{stem}_gtFine_labelIds.png"))
    kept, no_mask, no_image = keep_paired(pairs, str(r), strict)
    vmap = {i: CITYSCAPES_TRAIN_IDS.get(i, 255) for i in range(34)}
    vmap[255] = 255  # some tools write 255 for "unlabeled"
    codec = MaskCodec("index", vmap, 255, "the Cityscapes labelIds (0..33)")
    return SegmentationDataset(
        f"cityscapes:{r}", kept, LABEL_SETS["cityscapes19"], 255, split,
        [p.name[: -len("_leftImg8bit.png")] for p, _ in kept], codec, "cityscapes", r,
        no_mask, no_image, ["gtFine labelIds mapped to the 19 trainIds; the rest is ignore (255)"],
    )  # fmt: skip


def ade20k_root(root: Path) -> Path | None:
    for r in (root, root / "ADEChallengeData2016"):
        if (r / "images" / "training").is_dir() or (r / "images" / "validation").is_dir():
            if (r / "annotations").is_dir():
                return r
    return None


def ade20k_splits(root: Path) -> list[str]:
    r = ade20k_root(root)
    return [s for s, d in ADE_SPLITS.items() if (r / "images" / d).is_dir()]


def ade20k_dataset(root: Path, split: str = "val", *, strict: bool = True):
    r = ade20k_root(root) or root
    name = ADE_SPLITS.get(split, split)
    img_dir, ann_dir = r / "images" / name, r / "annotations" / name
    if not img_dir.is_dir():
        raise DatasetError(f"{r}: no ADE20K split {split!r} (images/{name}/)")
    pairs = [(p, ann_dir / f"{p.stem}.png") for p in sorted(img_dir.glob("*.jpg"))]
    kept, no_mask, no_image = keep_paired(pairs, str(r), strict)
    no_image += extra_files(ann_dir, {m for _, m in pairs})
    codec = index_codec(151, 0, rule="ADE20K's 150 classes (1..150, 0 = other)")
    return SegmentationDataset(
        f"ade20k:{r}", kept, LABEL_SETS["ade20k151"], 0, split, [], codec, "ade20k", r,
        no_mask, no_image, ["150 classes 1..150; 0 = other, ignored as the benchmark does"],
    )  # fmt: skip


def is_pets(root: Path) -> bool:
    return (root / "images").is_dir() and (root / "annotations" / "trimaps").is_dir()


class TrimapCodec(MaskCodec):
    """Trimap 1 -> the image's species (VOC cat 8 / dog 12), 2 -> 0, 3 -> ignore."""

    def __init__(self, species: dict[str, int]) -> None:
        super().__init__("index", {1: 8, 2: 0, 3: 255}, 255, "the trimap values 1, 2, 3")
        self.species = species  # image stem -> 1 cat, 2 dog

    def value_map_for(self, image_path: Path) -> dict[int, int]:
        stem = image_path.stem
        cat = self.species.get(stem, 1 if stem[:1].isupper() else 2) == 1
        return {1: 8 if cat else 12, 2: 0, 3: 255}


def pets_dataset(root: Path, split: str = "", *, strict: bool = True) -> SegmentationDataset:
    species: dict[str, int] = {}
    if (root / "list.txt").is_file():
        for line in (root / "list.txt").read_text().splitlines():
            tok = line.split()
            if len(tok) >= 3 and not line.startswith("#") and tok[2].isdigit():
                species[tok[0]] = int(tok[2])
    ann = root / "annotations" / "trimaps"
    pairs = [(p, ann / f"{p.stem}.png") for p in sorted((root / "images").glob("*.jpg"))]
    kept, no_mask, no_image = keep_paired(pairs, str(root), strict)
    no_image += [p for p in extra_files(ann, {m for _, m in pairs}) if not p.name.startswith("._")]
    return SegmentationDataset(
        f"oxford_pets:{root}", kept, LABEL_SETS["voc21"], 255, split, [],
        TrimapCodec(species), "oxford_pets", root, no_mask, no_image,
        ["trimaps: 1 = pet -> VOC cat (8) or dog (12) by species"
         + (" (list.txt)" if species else " (capitalized names are cats)"),
         "2 = background -> 0, 3 = unclassified border -> ignore (255)"],
    )  # fmt: skip
