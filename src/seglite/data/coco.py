"""COCO-style JSON as annotation tools export it, rasterized to semantic masks.

Where the JSON is (first match wins):
- Roboflow: ``<split>/_annotations.coco.json`` beside the split's images, or one
  ``_annotations.coco.json`` beside all images;
- CVAT and COCO: ``annotations/instances_<split>.json`` (CVAT's single subset is
  ``instances_default.json``) with the images in ``images/`` (or ``images/<split>/``);
- Label Studio: ``result.json`` with the images in ``images/``.

Rules, stated because every converter picks its own:
- classes: 0 is background (every pixel no annotation covers); the categories follow in
  the order of their COCO ids as 1..N. A category named "background" is class 0 instead.
  Roboflow's extra category for the project itself (a category with no annotations whose
  name is the supercategory of the others) is dropped.
- overlaps: annotations are painted largest first, so where two overlap the smaller one
  wins (it is nearly always the object in front); crowd (``iscrowd``) regions are painted
  like any other.
- polygons and RLE (compressed or not) are rasterized with pycocotools at the size the JSON
  gives for the image; annotations without a segmentation (boxes only) are skipped and
  reported.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import DatasetError, require
from ..labels import label_set_from_names
from .datasets import SegmentationDataset
from .encodings import IGNORE, MaskCodec

ROBOFLOW_JSON = "_annotations.coco.json"
OVERLAP_RULE = "overlapping annotations: the smaller one wins (painted largest first)"


def _is_coco(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            head = f.read(4096)
    except OSError:
        return False
    return '"images"' in head or '"annotations"' in head or '"categories"' in head


def coco_sources(root: Path) -> dict[str, tuple[Path, list[Path]]]:
    """split -> (JSON file, folders its images may be in); "" for a single split."""
    out: dict[str, tuple[Path, list[Path]]] = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if (d / ROBOFLOW_JSON).is_file():
            out[d.name] = (d / ROBOFLOW_JSON, [d, d / "images"])
    if out:
        return out
    if (root / ROBOFLOW_JSON).is_file():
        return {"": (root / ROBOFLOW_JSON, [root, root / "images"])}
    ann = root / "annotations"
    if ann.is_dir():
        for j in sorted(ann.glob("*.json")):
            if not _is_coco(j):
                continue
            name = j.stem.removeprefix("instances_")
            split = "" if name == "default" else name
            dirs = [root / "images" / name, root / "images", root / name, root]
            out[split] = (j, dirs)
        if out:
            return out
    if (root / "result.json").is_file() and _is_coco(root / "result.json"):
        return {"": (root / "result.json", [root / "images", root])}
    return {}


def _find_image(file_name: str, dirs: list[Path]) -> Path | None:
    rel = Path(file_name.replace("\\", "/"))
    for d in dirs:
        for cand in (d / rel, d / rel.name):
            if cand.is_file():
                return cand
    return None


def _categories(data: dict, path: Path) -> tuple[list[str], dict[int, int]]:
    cats = sorted(data.get("categories") or [], key=lambda c: c.get("id", 0))
    if not cats:
        raise DatasetError(f"{path}: no categories: COCO JSON needs a categories list")
    used = {a.get("category_id") for a in data.get("annotations") or []}
    supers = {c.get("supercategory") for c in cats}
    cats = [c for c in cats if c["id"] in used or c.get("name") not in supers]
    names, mapping = ["background"], {}
    for c in cats:
        if str(c.get("name", "")).strip().lower() == "background":
            mapping[c["id"]] = 0
            continue
        mapping[c["id"]] = len(names)
        names.append(str(c.get("name", f"category {c['id']}")))
    return names, mapping


class CocoCodec(MaskCodec):
    """Rasterizes an image's annotations into class ids (the raw values are the ids)."""

    def __init__(self, num_classes: int, source: str, by_image: dict[str, tuple]) -> None:
        vmap = {i: i for i in range(num_classes)}
        vmap[IGNORE] = IGNORE
        super().__init__("coco", vmap, IGNORE, f"the categories of {source}")
        self.by_image = by_image  # image path -> (height, width, [(class, segmentation)])

    def read_raw(self, image_path: Path, mask_path: Path) -> np.ndarray:
        mask_util = require("pycocotools.mask", "coco")
        h, w, anns = self.by_image[str(image_path)]
        layers = []
        for cls, seg in anns:
            try:
                if isinstance(seg, list):
                    polys = [p for p in seg if len(p) >= 6]
                    if not polys:
                        continue
                    rle = mask_util.merge(mask_util.frPyObjects(polys, h, w))
                elif isinstance(seg.get("counts"), list):
                    rle = mask_util.frPyObjects(seg, *seg.get("size", (h, w)))
                else:
                    rle = seg
                m = mask_util.decode(rle)
            except (TypeError, ValueError, KeyError) as exc:
                raise DatasetError(
                    f"{mask_path}: bad segmentation for {image_path.name} ({exc})"
                ) from None
            if m.shape != (h, w):
                raise DatasetError(
                    f"{mask_path}: an RLE of {image_path.name} is {m.shape[1]}x{m.shape[0]}, "
                    f"the image entry says {w}x{h}"
                )
            layers.append((int(m.sum()), cls, m))
        out = np.zeros((h, w), np.uint8)
        for _, cls, m in sorted(layers, key=lambda t: -t[0]):
            out[m > 0] = cls
        return out


def coco_dataset(
    json_path: Path, dirs: list[Path], split: str = "", *, strict: bool = True,
    root: Path | None = None,
) -> SegmentationDataset:  # fmt: skip
    try:
        data = json.loads(Path(json_path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"cannot read COCO JSON {json_path}: {exc}") from None
    if not isinstance(data, dict) or "images" not in data:
        raise DatasetError(f"{json_path}: not COCO JSON (no images list)")
    names, mapping = _categories(data, json_path)
    if len(names) > 255:
        raise DatasetError(f"{json_path}: {len(names) - 1} categories; at most 254 are supported")
    anns: dict[int, list] = {}
    boxes_only, unknown = 0, 0
    for a in data.get("annotations") or []:
        seg = a.get("segmentation")
        if a.get("category_id") not in mapping:
            unknown += 1
            continue
        if not seg:
            boxes_only += 1
            continue
        anns.setdefault(a.get("image_id"), []).append((mapping[a["category_id"]], seg))
    pairs, by_image, missing = [], {}, []
    base = next((d for d in dirs if d.is_dir()), dirs[0])
    for im in data["images"]:
        path = _find_image(str(im.get("file_name", "")), dirs)
        if path is None:
            if strict:
                raise DatasetError(f"{json_path}: image {im.get('file_name')} is missing")
            missing.append(base / Path(str(im.get("file_name", ""))).name)
            continue
        pairs.append((path, Path(json_path)))
        by_image[str(path)] = (int(im["height"]), int(im["width"]), anns.get(im.get("id"), []))
    listed = {p for p, _ in pairs}
    stray = sorted(
        p for p in (base.iterdir() if base.is_dir() else ())
        if p.suffix.lower() in (".jpg", ".jpeg", ".png") and p not in listed
    )  # fmt: skip
    ds = SegmentationDataset(
        f"coco:{json_path}", pairs, label_set_from_names(names), IGNORE, split, [],
        CocoCodec(len(names), Path(json_path).name, by_image), "coco", root or json_path.parent,
        stray, missing, [f"classes from {Path(json_path).name}: 0 = background, "
                         f"then {len(names) - 1} categories by COCO id", OVERLAP_RULE],
    )  # fmt: skip
    if boxes_only:
        level = "error" if not anns else "warning"
        ds.open_problems.append(
            (level, f"{boxes_only} annotations have no segmentation (boxes only) and were "
             "skipped: export polygons or masks, not boxes", [str(json_path)])
        )  # fmt: skip
    if unknown:
        ds.open_problems.append(
            ("error", f"{unknown} annotations name a category_id not in categories",
             [str(json_path)])
        )  # fmt: skip
    return ds
