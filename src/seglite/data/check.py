"""The dataset checker: read every pair once and say what is wrong before training does.

Wrong labels cost more fine-tuning runs than anything else: masks saved as 0/255 read as
class ids, colour masks without a colour table, a stray 255 border, label ids off by one.
``check_dataset`` reads every image header and every mask of every split and returns a
``CheckReport``: the layout, pairs, mask encoding, the values that occur and what they
are taken to mean, per-class pixel and image counts, suggested class weights, and each
problem once, with the files concerned. An ``error`` is something that would make
training wrong or crash it; ``seglite train`` refuses to start on one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DatasetError
from .encodings import colour_text
from .layouts import detect_kind, list_splits, open_dataset

DOMINANT_SHARE = 0.9  # one class above this share of labelled pixels gets a warning


@dataclass
class Problem:
    level: str  # "error": training would be wrong; "warning": worth a look
    message: str
    files: list[str] = field(default_factory=list)

    def line(self, shown: int = 4) -> str:
        text = f"{self.level}: {self.message}"
        if self.files:
            more = f" (+{len(self.files) - shown} more)" if len(self.files) > shown else ""
            text += ": " + ", ".join(self.files[:shown]) + more
        return text

    def as_dict(self) -> dict:
        return {"level": self.level, "message": self.message, "files": self.files}


@dataclass
class CheckReport:
    root: str
    layout: str
    splits: dict[str, int]
    pairs: int
    mask_encoding: str | None
    ignore_index: int | None
    num_classes: int
    classes: list[dict]  # id, name, pixels, images (ids the checked masks use)
    values: list[dict]  # raw value (as text), meaning, pixels, images
    class_weights: dict[str, list[float]]
    images_without_masks: list[str]
    masks_without_images: list[str]
    size_mismatches: list[str]
    problems: list[Problem]
    notes: list[str]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict:
        return {
            "root": self.root, "layout": self.layout, "splits": self.splits,
            "pairs": self.pairs, "mask_encoding": self.mask_encoding,
            "ignore_index": self.ignore_index, "num_classes": self.num_classes,
            "classes": self.classes, "values": self.values,
            "never_occur": [c["name"] for c in self.classes if c["pixels"] == 0],
            "class_weights": self.class_weights,
            "images_without_masks": self.images_without_masks,
            "masks_without_images": self.masks_without_images,
            "size_mismatches": self.size_mismatches,
            "problems": [p.as_dict() for p in self.problems], "notes": self.notes,
            "ok": self.ok,
        }  # fmt: skip


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) upright, from the header (EXIF rotations swap them)."""
    with Image.open(path) as im:
        w, h = im.size
        if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
            w, h = h, w
    return w, h


def _counts(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if raw.dtype.kind in "ub" and raw.dtype.itemsize <= 2:
        c = np.bincount(raw.ravel())
        v = np.flatnonzero(c)
        return v, c[v]
    return np.unique(raw, return_counts=True)


def weights_from_counts(pixels: np.ndarray, present: np.ndarray) -> list[float]:
    """SegNet's median frequency balancing, as ``seglite train`` computes it."""
    freq = np.where(present > 0, pixels / np.maximum(present, 1), 0)
    if not (freq > 0).any():
        return [0.0] * len(freq)
    med = float(np.median(freq[freq > 0]))
    return [float(round(med / f, 4)) if f > 0 else 0.0 for f in freq]


class _Scan:
    """Accumulates one pass over the pairs of every split."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.groups: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.value_px: dict[int, int] = defaultdict(int)
        self.value_img: dict[int, int] = defaultdict(int)
        self.value_meaning: dict[int, dict[str, None]] = defaultdict(dict)
        self.outside: dict[int, list[str]] = defaultdict(list)
        self.fixed: list[Problem] = []  # problems the layouts found, as they worded them

    def rel(self, p: Path | str) -> str:
        try:
            return str(Path(p).relative_to(self.root))
        except ValueError:
            return str(p)

    def add(self, level: str, message: str, path: Path | str | None = None) -> None:
        files = self.groups[(level, message)]
        if path is not None and self.rel(path) not in files:
            files.append(self.rel(path))


def check_dataset(
    root: str | Path,
    *,
    kind: str = "auto",
    splits: list[str] | None = None,
    labels=None,
    ignore_index: int | None = None,
    progress: bool = False,
) -> CheckReport:
    """Check every pair of ``splits`` (default: every split the layout has) of ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such dataset folder")
    layout = detect_kind(root) if kind == "auto" else kind
    available = list_splits(root, layout) or [""]
    names = available if splits is None or available == [""] else splits
    scan = _Scan(root)
    datasets = []
    for split in dict.fromkeys(names):
        try:
            ds = open_dataset(
                root, kind=layout, split=split, labels=labels, ignore_index=ignore_index,
                strict=False,
            )  # fmt: skip
        except DatasetError as exc:
            scan.add("error", str(exc).replace(f"{root}: ", "", 1))
            continue
        datasets.append(ds)
    if len({d.labels.names for d in datasets}) > 1:
        a, b = datasets[0], next(d for d in datasets if d.labels.names != datasets[0].labels.names)
        scan.add(
            "error",
            f"splits {a.split or 'all'} and {b.split} number their classes differently "
            f"({len(a.labels)} vs {len(b.labels)} classes: {', '.join(a.labels.names[:3])}... vs "
            f"{', '.join(b.labels.names[:3])}...): give every split the same classes",
        )
    seen: dict[Path, str] = {}
    no_mask, no_image, mismatched = [], [], []
    n_classes = max((d.num_classes for d in datasets), default=0)
    pixels, images = np.zeros(n_classes, np.int64), np.zeros(n_classes, np.int64)
    train_px, train_present = np.zeros(n_classes), np.zeros(n_classes)
    all_ignore = []
    for ds in datasets:
        for level, msg, files in ds.open_problems:
            scan.fixed.append(Problem(level, msg, [scan.rel(f) for f in files]))
        no_mask += [scan.rel(p) for p in ds.unpaired_images]
        no_image += [scan.rel(p) for p in ds.unpaired_masks]
        is_train = ds.split in ("train", "training") or len(datasets) == 1
        known = bool(ds.codec.value_map)
        pairs = ds.pairs
        if progress:
            from tqdm.auto import tqdm

            pairs = tqdm(pairs, desc=f"check {ds.split or 'pairs'}", unit="pair", leave=False)
        for img, mask in pairs:
            if img in seen and seen[img] != ds.split:
                scan.add("warning", f"images in both {seen[img]} and {ds.split}", img)
            seen[img] = ds.split
            try:
                w, h = _image_size(img)
            except (OSError, ValueError) as exc:
                scan.add("error", f"images that cannot be read ({type(exc).__name__})", img)
                continue
            try:
                raw = ds.codec.read_raw(img, mask)
            except DatasetError as exc:
                reason = str(exc).split(": ", 1)[-1]
                scan.add("error", f"masks that cannot be used: {reason}", mask)
                continue
            if raw.shape != (h, w):
                mismatched.append(f"{scan.rel(mask)} ({raw.shape[1]}x{raw.shape[0]} vs {w}x{h})")
            vmap = ds.codec.value_map_for(img)
            vals, counts = _counts(raw)
            ids_px = np.zeros(n_classes, np.int64)
            labelled = 0
            for v, c in zip(vals.tolist(), counts.tolist()):
                scan.value_px[v] += c
                scan.value_img[v] += 1
                cls = vmap.get(v)
                if cls is None:
                    if known:
                        scan.outside[v].append(scan.rel(mask))
                    meaning = "not in " + ds.codec.rule if known else f"? ({ds.codec.rule})"
                    scan.value_meaning[v][meaning] = None
                    continue
                if cls == ds.ignore_index or cls >= n_classes:
                    scan.value_meaning[v]["ignore"] = None
                    continue
                name = ds.labels.name(cls)
                same = v == cls and ds.codec.encoding != "rgb"
                scan.value_meaning[v][name if same else f"{name} (class {cls})"] = None
                ids_px[cls] += c
                labelled += c
            if known and labelled == 0 and not any(vmap.get(v) is None for v in vals.tolist()):
                all_ignore.append(scan.rel(mask))
            pixels += ids_px
            images += ids_px > 0
            if is_train:
                train_px += ids_px
                train_present += (ids_px > 0) * raw.size
    ref = datasets[0] if datasets else None
    encoding = ref.codec.encoding if ref else None
    text = (lambda v: colour_text(v)) if encoding == "rgb" else str
    rule = ref.codec.rule if ref else ""
    if scan.outside:
        vals = sorted(scan.outside)
        files = sorted({f for v in vals for f in scan.outside[v]})
        hint = _outside_hint(vals, ref)
        shown = ", ".join(text(v) for v in vals[:8]) + (" ..." if len(vals) > 8 else "")
        scan.add("error", f"values [{shown}] are outside {rule}{hint}")
        scan.groups[("error", f"values [{shown}] are outside {rule}{hint}")] = files
    occurring = set(scan.value_px)
    if ref is not None and encoding == "index" and ref.ignore_index == 255 and n_classes > 2:
        if occurring <= {0, 255} and 255 in occurring:
            scan.add(
                "error",
                "masks hold only 0 and 255: read as index masks, 255 is ignore and every "
                "pixel is class 0 or ignored; binary masks? give labels.txt two names "
                "(background, your class) so 255 reads as class 1",
            )
    if all_ignore:
        for f in all_ignore:
            scan.add("warning", "masks with no labelled pixel (all ignore)", f)
    if mismatched:
        for f in mismatched:
            scan.add("error", "masks sized differently from their images", f)
    for f in no_mask:
        scan.add("error", "images without a mask", f)
    for f in no_image:
        scan.add("warning", "masks without an image", f)
    if n_classes and pixels.sum():
        never = [
            ref.labels.name(i) for i in range(n_classes) if pixels[i] == 0 and i != ref.ignore_index
        ]
        if never:
            scan.add("warning", f"classes that never occur: {', '.join(never)}")
        top = int(np.argmax(pixels))
        share = pixels[top] / pixels.sum()
        if share > DOMINANT_SHARE and n_classes > 1:
            scan.add(
                "warning",
                f"{ref.labels.name(top)} is {100 * share:.1f}% of labelled pixels: a model that "
                "predicts it everywhere scores well on pixel accuracy; consider "
                "--class-weights sqrt_median_frequency",
            )
    elif datasets and not pixels.sum() and known_any(datasets):
        scan.add("error", "no labelled pixel in any mask")
    problems = scan.fixed + [
        Problem(level, _count(msg, len(files)), files)
        for (level, msg), files in scan.groups.items()
    ]
    problems.sort(key=lambda p: p.level != "error")
    classes = [
        {"id": i, "name": ref.labels.name(i), "pixels": int(pixels[i]), "images": int(images[i])}
        for i in range(n_classes) if ref is not None and i != ref.ignore_index
    ]  # fmt: skip
    weights = {}
    if n_classes and train_px.sum():
        w = weights_from_counts(train_px, train_present)
        weights = {
            "median_frequency": w, "sqrt_median_frequency": [round(x**0.5, 4) for x in w],
        }  # fmt: skip
    values = [
        {"value": text(v), "meaning": " or ".join(scan.value_meaning[v]), "pixels": scan.value_px[v],
         "images": scan.value_img[v]}
        for v in sorted(scan.value_px)
    ]  # fmt: skip
    notes = list(dict.fromkeys(n for d in datasets for n in d.notes))
    if datasets and datasets[0].split == "" and len(datasets) == 1:
        notes.append("one set of pairs: every split name (train, val) reads all of them")
    return CheckReport(
        str(root), layout, {d.split: len(d) for d in datasets}, sum(len(d) for d in datasets),
        encoding, ref.ignore_index if ref else None, n_classes, classes, values, weights,
        no_mask, no_image, mismatched, problems, notes,
    )  # fmt: skip


def known_any(datasets) -> bool:
    return any(d.codec.value_map for d in datasets)


def _count(msg: str, n: int) -> str:
    """ "3 masks ..." for messages about files; "1 mask ..." for one."""
    first, _, rest = msg.partition(" ")
    if first not in ("masks", "images") or not n:
        return msg
    return f"{n} {first if n > 1 else first[:-1]} {rest}"


def _outside_hint(values: list[int], ds) -> str:
    if ds is None:
        return ""
    n = ds.num_classes
    if ds.codec.encoding == "rgb":
        return "; add those colours to the colour table (or mark them void)"
    if values == [n] and ds.layout == "folder":
        return f"; ids start at 1? class ids are 0-based: labels.txt needs a line for 0 ({n} names give 0..{n - 1})"
    if ds.codec.encoding == "binary":
        return "; antialiased edges? save masks without smoothing"
    if 255 in values:
        return "; is 255 a border to ignore? that needs ignore_index 255"
    return ""


def require_clean(root, *, kind: str = "auto", splits=None, labels=None) -> CheckReport:
    """The check ``seglite train`` runs before its first step: raise on any error."""
    report = check_dataset(root, kind=kind, splits=splits, labels=labels)
    if report.errors:
        first = report.errors[0].line(2)
        raise DatasetError(
            f"dataset check found {len(report.errors)} error(s) that would make training "
            f"wrong, first: {first} (run: seglite check {root})"
        )
    return report
