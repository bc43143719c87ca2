"""Your own data as folders: ``images/`` + ``masks/`` (+ ``labels.txt`` or a colour table).

The mask of ``images/cat1.jpg`` is ``masks/cat1.png`` (also ``cat1_mask.png``,
``cat1_L.png`` and the like, as Kaggle datasets name them). Both folders may have one
subfolder per split (``images/train/``). The Kaggle style ``train/`` + ``train_labels/``
(CamVid's 32-class release) is the same layout with the split outside.

Masks may be index PNGs, palette PNGs, binary 0/255 or 0/1, or RGB colour masks; which
one is found by looking at the files (``encodings.sniff_encoding``). Class names come from
``labels.txt`` (one a line, in id order), else from the colour table, else binary masks
are ``background``/``foreground``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import DatasetError
from ..labels import LABEL_SETS, LabelSet, label_set_from_names, parse_label_lines
from .datasets import IMAGE_SUFFIXES, SegmentationDataset, keep_paired
from .encodings import (
    IGNORE,
    MaskCodec,
    RGBCodec,
    binary_codec,
    find_colour_table,
    index_codec,
    read_colour_table,
    rgb_codec,
    sniff_encoding,
)

MASK_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".gif")
# Endings mask files add to their image's name, in the wild.
MASK_NAME_TAILS = ("", "_mask", "_masks", "_label", "_labels", "_L", "_gt", "_seg", "_annotation")
SPLIT_MASK_DIRS = ("_labels", "_masks", "_mask", "_annot", "_gt")


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def match_masks(images: list[Path], mask_dir: Path) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """Each image with its mask (by name), and the mask files no image claims."""
    masks = (
        {p.name: p for p in mask_dir.iterdir() if p.suffix.lower() in MASK_SUFFIXES}
        if mask_dir.is_dir()
        else {}
    )
    pairs, used = [], set()
    for img in images:
        found = None
        for tail in MASK_NAME_TAILS:
            for suf in MASK_SUFFIXES:
                cand = masks.get(f"{img.stem}{tail}{suf}")
                if cand is not None and cand not in used:
                    found = cand
                    break
            if found:
                break
        pairs.append((img, found or mask_dir / f"{img.stem}.png"))
        if found:
            used.add(found)
    return pairs, sorted(set(masks.values()) - used)


def _label_names(labels: str | Path | Sequence[str]) -> LabelSet:
    if isinstance(labels, str) and labels in LABEL_SETS:
        return LABEL_SETS[labels]
    if isinstance(labels, (str, Path)):
        try:
            names = parse_label_lines(Path(labels).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"cannot read label file {labels}: {exc}") from None
        if not names:
            raise DatasetError(f"{labels}: label file has no class names")
        return label_set_from_names(names)
    return label_set_from_names(list(labels))


def folder_dataset(
    images: str | Path,
    masks: str | Path,
    labels: str | Path | Sequence[str] | None = None,
    *,
    ignore_index: int | None = 255,
    split: str = "",
    colour_table: str | Path | None = None,
    strict: bool = True,
    root: Path | None = None,
) -> SegmentationDataset:
    """Every image in ``images`` with its mask in ``masks``.

    ``labels``: a label file (one class name per line, in class-index order), a known
    label-set key ("camvid11", "voc21"...) or a list of names. ``colour_table`` maps RGB
    mask colours to classes (``class_dict.csv`` with name,r,g,b; JSON or txt).
    """
    images, masks = Path(images), Path(masks)
    if not images.is_dir():
        raise DatasetError(f"{images}: no such image folder")
    files = image_files(images)
    if not files:
        raise DatasetError(f"{images}: no images ({', '.join(IMAGE_SUFFIXES)})")
    pairs, extra = match_masks(files, masks)
    kept, no_mask, no_image = keep_paired(pairs, str(images), strict)
    label_set = _label_names(labels) if labels is not None else None
    encoding, fg = sniff_encoding([m for _, m in kept], len(label_set) if label_set else None)
    notes: list[str] = []
    if encoding == "rgb":
        if colour_table is None:
            msg = (
                f"{masks}: masks are RGB colour images but there is no colour table to say which "
                "colour is which class: add class_dict.csv (name,r,g,b a row), or save masks as "
                "single-channel PNGs whose value is the class id"
            )
            if strict:
                raise DatasetError(msg)
            return _unreadable(kept, label_set, RGBCodec("rgb", {}, IGNORE, "no colour table"),
                               msg, split, images, masks, root, no_mask, no_image + extra)  # fmt: skip
        names, colours, ids, table_ignore = read_colour_table(Path(colour_table))
        if label_set is None or len(label_set) != len(names):
            label_set = label_set_from_names(names)
        codec = rgb_codec(colours, ids, table_ignore, Path(colour_table).name)
        ignore_index = IGNORE
        notes.append(f"colours from {Path(colour_table).name}")
    elif encoding == "binary":
        label_set = label_set or label_set_from_names(["background", "foreground"])
        codec = binary_codec(fg)
        ignore_index = IGNORE
        notes.append(f"binary masks: 0 is {label_set.names[0]}, {fg} is {label_set.name(1)}")
    else:
        if label_set is None and colour_table is not None:
            names, _, _, _ = read_colour_table(Path(colour_table))
            label_set = label_set_from_names(names)
        if label_set is None:
            msg = (
                f"{root or images.parent}: folder datasets need labels.txt (one class name a "
                "line, in class-id order) or a colour table such as class_dict.csv"
            )
            if strict:
                raise DatasetError(msg)
            return _unreadable(kept, None, MaskCodec(encoding, {}, IGNORE, "no labels.txt"),
                               msg, split, images, masks, root, no_mask, no_image + extra)  # fmt: skip
        codec = index_codec(len(label_set), ignore_index, encoding)
    return SegmentationDataset(
        f"folder:{images}", kept, label_set, ignore_index, split, [], codec, "folder",
        root or images.parent, no_mask, no_image + extra, notes,
    )  # fmt: skip


def _unreadable(pairs, label_set, codec, msg, split, images, masks, root, no_mask, no_image):
    """For the checker: the pairs, with the reason their values mean nothing yet."""
    ds = SegmentationDataset(
        f"folder:{images}", pairs, label_set or label_set_from_names([]), IGNORE, split, [],
        codec, "folder", root or images.parent, no_mask, no_image,
    )  # fmt: skip
    ds.open_problems.append(("error", msg.split(": ", 1)[1], [str(masks)]))
    return ds


def split_dirs(root: Path) -> dict[str, tuple[Path, Path]]:
    """Kaggle style ``<split>/`` + ``<split>_labels/`` (or _masks...): split -> dirs."""
    out = {}
    for d in sorted(root.iterdir()):
        if d.is_dir():
            for tail in SPLIT_MASK_DIRS:
                if (root / f"{d.name}{tail}").is_dir():
                    out[d.name] = (d, root / f"{d.name}{tail}")
    return out


def folder_splits(root: Path) -> list[str]:
    kaggle = split_dirs(root)
    if kaggle:
        return list(kaggle)
    subs = [d.name for d in sorted((root / "images").iterdir()) if d.is_dir()]
    return subs or [""]


def open_folder(
    root: Path,
    split: str,
    labels: str | Path | Sequence[str] | None,
    ignore_index: int | None,
    strict: bool = True,
) -> SegmentationDataset:
    kaggle = split_dirs(root)
    if kaggle:
        from .layouts import split_alias

        name = split_alias(split, kaggle)
        if name is None:
            raise DatasetError(f"{root}: no split {split!r} (found {', '.join(kaggle)})")
        img_dir, mask_dir = kaggle[name]
    else:
        img_dir, mask_dir = root / "images", root / "masks"
        if split and (img_dir / split).is_dir():
            img_dir, mask_dir = img_dir / split, mask_dir / split
    if labels is None and (root / "labels.txt").is_file():
        labels = root / "labels.txt"
    table = find_colour_table(root, mask_dir)
    return folder_dataset(
        img_dir, mask_dir, labels, ignore_index=255 if ignore_index is None else ignore_index,
        split=split, colour_table=table, strict=strict, root=root,
    )  # fmt: skip
