"""Every dataset format seglite reads, built from the repo's real pet photos and masks.

Each test writes one format as its tool exports it (COCO JSON from CVAT / Roboflow /
Label Studio, Cityscapes, ADE20K, Oxford-IIIT Pet trimaps, image+mask folders with index,
palette, binary and RGB masks) and reads it back through ``open_dataset``: the class ids
must be the pets' own labels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import GOLDEN, PETS_VOC
from PIL import Image

from seglite.data import detect_kind, list_splits, open_dataset
from seglite.errors import DatasetError
from seglite.labels import voc_colormap

NAMES = ["background", "cat", "dog"]
COLOURS = [(0, 0, 0), (255, 128, 0), (0, 64, 255)]


def pets(n: int = 4, scale: int = 4) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, RGB image, ids) for ``n`` pets, shrunk by ``scale``: 0 background, 1 cat,
    2 dog, 255 the unclassified border band."""
    out = []
    names = sorted(p.stem for p in (PETS_VOC / "JPEGImages").glob("*.jpg"))
    picks = [names[0], names[4], names[8], names[9], names[1], names[5]][:n]
    for name in picks:
        img = Image.open(PETS_VOC / "JPEGImages" / f"{name}.jpg").convert("RGB")
        size = (img.width // scale, img.height // scale)
        voc = np.array(Image.open(PETS_VOC / "SegmentationClass" / f"{name}.png").resize(size, 0))
        ids = np.select([voc == 8, voc == 12, voc == 255], [1, 2, 255], 0).astype(np.uint8)
        out.append((name, np.asarray(img.resize(size)), ids))
    return out


def save(path: Path, arr: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode).save(path)
    return path


# ------------------------------------------------------------------------------ COCO


def coco_json(samples, *, polygons: bool, roboflow: bool = False) -> dict:
    """COCO instances for the pets: one annotation per pet (RLE or polygons)."""
    import pycocotools.mask as mask_util

    images, anns = [], []
    cats = [
        {"id": 1, "name": "cat", "supercategory": "pets"},
        {"id": 2, "name": "dog", "supercategory": "pets"},
    ]
    if roboflow:  # Roboflow's project category, with no annotations
        cats.insert(0, {"id": 0, "name": "pets", "supercategory": "none"})
    for i, (name, _, ids) in enumerate(samples):
        h, w = ids.shape
        images.append({"id": i + 1, "file_name": f"{name}.jpg", "height": h, "width": w})
        for cls in (1, 2):
            m = np.asfortranarray((ids == cls).astype(np.uint8))
            if not m.any():
                continue
            if polygons:
                import cv2

                contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
                seg = [c.ravel().astype(float).tolist() for c in contours if len(c) >= 3]
            else:
                rle = mask_util.encode(m)
                seg = {"size": rle["size"], "counts": rle["counts"].decode()}
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": cls,
                         "segmentation": seg, "area": int(m.sum()), "iscrowd": 0,
                         "bbox": [0, 0, w, h]})  # fmt: skip
    return {"images": images, "annotations": anns, "categories": cats}


def truth(ids: np.ndarray) -> np.ndarray:
    return np.where(ids == 255, 0, ids)  # COCO has no ignore band: the border is background


def test_cvat_coco_rle_reads_exactly(tmp_path):
    pytest.importorskip("pycocotools")
    samples = pets(3)
    for name, img, _ in samples:
        save(tmp_path / "images" / f"{name}.jpg", img)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_default.json").write_text(
        json.dumps(coco_json(samples, polygons=False))
    )
    assert detect_kind(tmp_path) == "coco" and list_splits(tmp_path) == [""]
    ds = open_dataset(tmp_path, split="train")
    assert ds.layout == "coco" and ds.labels.names == tuple(NAMES) and len(ds) == 3
    for i, (_, _, ids) in enumerate(samples):
        np.testing.assert_array_equal(ds[i][1], truth(ids))


def test_roboflow_coco_polygons_per_split(tmp_path):
    pytest.importorskip("pycocotools")
    pytest.importorskip("cv2")
    samples = pets(4)
    for split, part in (("train", samples[:3]), ("valid", samples[3:])):
        for name, img, _ in part:
            save(tmp_path / split / f"{name}.jpg", img)
        (tmp_path / split / "_annotations.coco.json").write_text(
            json.dumps(coco_json(part, polygons=True, roboflow=True))
        )
    assert list_splits(tmp_path) == ["train", "valid"]
    val = open_dataset(tmp_path, split="val")  # "val" finds Roboflow's "valid"
    assert val.labels.names == tuple(NAMES) and len(val) == 1  # project category dropped
    got, want = val[0][1], truth(samples[3][2])
    for cls in (0, 1, 2):
        if (want == cls).any():
            inter = ((got == cls) & (want == cls)).sum()
            assert inter / ((got == cls) | (want == cls)).sum() > 0.9  # polygon outline
    assert len(open_dataset(tmp_path, split="train")) == 3


def test_label_studio_result_json_and_overlap_rule(tmp_path):
    pytest.importorskip("pycocotools")
    name, img, _ = pets(1)[0]
    h, w = img.shape[:2]
    save(tmp_path / "images" / f"{name}.jpg", img)
    big = [[0, 0, w, 0, w, h, 0, h]]  # the whole image as "cat", listed first
    small = [[10, 10, 30, 10, 30, 30, 10, 30]]  # a "dog" inside it
    data = {
        "images": [{"id": 7, "file_name": f"images/{name}.jpg", "height": h, "width": w}],
        "categories": [{"id": 3, "name": "cat"}, {"id": 5, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 5, "segmentation": small},
            {"id": 2, "image_id": 7, "category_id": 3, "segmentation": big},
        ],
    }
    (tmp_path / "result.json").write_text(json.dumps(data))
    ds = open_dataset(tmp_path)
    mask = ds.read_mask(0)
    assert ds.labels.names == ("background", "cat", "dog")
    assert mask[20, 20] == 2 and mask[5, 5] == 1 and mask[h - 5, w - 5] == 1  # smaller wins


# ------------------------------------------------------------------------------ benchmarks


CS_LABEL_IDS = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]


def test_cityscapes_label_ids_become_train_ids(tmp_path):
    image = np.asarray(Image.open(GOLDEN / "cityscapes_segmentation.bmp").convert("RGB"))
    train_ids = np.asarray(Image.open(GOLDEN / "cityscapes_segmentation_mask.bmp"))
    lut = np.zeros(256, np.uint8)  # trainId -> labelId; the rest "unlabeled" (0)
    lut[:19] = CS_LABEL_IDS
    label_ids = lut[train_ids]
    label_ids[:4, :] = 1  # ego vehicle: ignore
    city = "frankfurt"
    save(tmp_path / "leftImg8bit" / "val" / city / f"{city}_000000_000294_leftImg8bit.png", image)
    save(
        tmp_path / "gtFine" / "val" / city / f"{city}_000000_000294_gtFine_labelIds.png", label_ids
    )
    (tmp_path / "gtFine" / "test").mkdir()  # test has no ground truth: not a split
    assert detect_kind(tmp_path) == "cityscapes" and list_splits(tmp_path) == ["val"]
    ds = open_dataset(tmp_path, split="val")
    assert ds.labels.key == "cityscapes19" and ds.ignore_index == 255
    want = np.where(train_ids < 19, train_ids, 255)
    want[:4, :] = 255
    np.testing.assert_array_equal(ds[0][1], want)


def test_ade20k_layout_ignores_other(tmp_path):
    from seglite.labels import ADE20K_NAMES

    animal, floor = ADE20K_NAMES.index("animal"), ADE20K_NAMES.index("floor")
    root = tmp_path / "ADEChallengeData2016"
    for split in ("training", "validation"):
        for name, img, ids in pets(2):
            save(root / "images" / split / f"ADE_{split}_{name}.jpg", img)
            ade = np.select([ids == 255, ids == 0], [0, floor], animal).astype(np.uint8)
            save(root / "annotations" / split / f"ADE_{split}_{name}.png", ade)
    assert detect_kind(tmp_path) == "ade20k" and list_splits(tmp_path) == ["train", "val"]
    ds = open_dataset(tmp_path, split="val")
    assert ds.num_classes == 151 and ds.ignore_index == 0 and len(ds) == 2
    assert set(np.unique(ds[0][1])) == {0, floor, animal}


def pets_layout(root: Path, samples) -> Path:
    lines = ["# name CLASS-ID SPECIES BREED-ID"]
    for name, img, ids in samples:
        save(root / "images" / f"{name}.jpg", img)
        tri = np.select([ids == 255, ids == 0], [3, 2], 1).astype(np.uint8)
        save(root / "annotations" / "trimaps" / f"{name}.png", tri)
        lines.append(f"{name} 1 {1 if (ids == 1).any() else 2} 1")
    (root / "list.txt").write_text("\n".join(lines) + "\n")
    return root


def test_oxford_pets_trimaps_map_to_voc_by_species(tmp_path):
    samples = pets(3)
    ds = open_dataset(pets_layout(tmp_path, samples))
    assert ds.layout == "oxford_pets" and ds.labels.key == "voc21" and ds.ignore_index == 255
    for i, (_, _, ids) in enumerate(samples):
        want = np.select([ids == 1, ids == 2, ids == 255], [8, 12, 255], 0)
        np.testing.assert_array_equal(ds[i][1], want)


# ------------------------------------------------------------------------------ folders


def folder(root: Path, samples, encode, labels: list[str] | None = NAMES, suffix=".png") -> Path:
    for name, img, ids in samples:
        save(root / "images" / f"{name}.jpg", img)
        arr, mode = encode(ids)
        save(root / "masks" / f"{name}{suffix}", arr, mode)
    if labels is not None:
        (root / "labels.txt").write_text("\n".join(labels) + "\n")
    return root


def test_index_png_folder(tmp_path):
    samples = pets(2)
    ds = open_dataset(folder(tmp_path, samples, lambda m: (m, "L")))
    assert ds.mask_encoding == "index" and ds.labels.names == tuple(NAMES)
    np.testing.assert_array_equal(ds[1][1], samples[1][2])


def test_palette_png_folder_with_split_subfolders(tmp_path):
    samples = pets(3)

    for split, part in (("train", samples[:2]), ("val", samples[2:])):
        for name, img, ids in part:
            save(tmp_path / "images" / split / f"{name}.jpg", img)
            im = Image.fromarray(ids, "P")
            im.putpalette(voc_colormap(256).tobytes())
            (tmp_path / "masks" / split).mkdir(parents=True, exist_ok=True)
            im.save(tmp_path / "masks" / split / f"{name}.png")
    (tmp_path / "labels.txt").write_text("\n".join(NAMES))
    assert list_splits(tmp_path) == ["train", "val"]
    ds = open_dataset(tmp_path, split="val")
    assert ds.mask_encoding == "palette" and len(ds) == 1
    np.testing.assert_array_equal(ds[0][1], samples[2][2])


@pytest.mark.parametrize("fg", [255, 1])
def test_binary_masks(tmp_path, fg):
    samples = pets(2)
    labels = None if fg == 255 else ["background", "pet"]
    root = folder(
        tmp_path, samples, lambda m: (((m == 1) | (m == 2)).astype(np.uint8) * fg, "L"), labels
    )
    ds = open_dataset(root)
    assert ds.mask_encoding == "binary"
    assert ds.labels.names == (("background", "foreground") if fg == 255 else ("background", "pet"))
    np.testing.assert_array_equal(ds[0][1], np.isin(samples[0][2], (1, 2)).astype(np.uint8))


def test_binary_mode_1_masks_named_like_kaggle(tmp_path):
    samples = pets(1)
    root = folder(tmp_path, samples, lambda m: (np.isin(m, (1, 2)), None), None, suffix="_mask.png")
    ds = open_dataset(root)
    assert ds.mask_encoding == "binary" and ds.pairs[0][1].name.endswith("_mask.png")
    assert ds[0][1].max() == 1


def rgb(m: np.ndarray) -> tuple[np.ndarray, str]:
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(COLOURS)] = COLOURS
    lut[255] = (255, 255, 255)
    return lut[m], "RGB"


@pytest.mark.parametrize("table", ["class_dict.csv", "classes.json", "label_colors.txt"])
def test_rgb_masks_with_a_colour_table(tmp_path, table):
    samples = pets(2)
    root = folder(tmp_path, samples, rgb, labels=None)
    rows = [*zip(NAMES, COLOURS), ("void", (255, 255, 255))]
    if table.endswith(".csv"):
        text = "name,r,g,b\n" + "".join(f"{n},{r},{g},{b}\n" for n, (r, g, b) in rows)
    elif table.endswith(".json"):
        text = json.dumps([{"name": n, "color": list(c)} for n, c in rows])
    else:
        text = "".join(f"{r} {g} {b}\t{n}\n" for n, (r, g, b) in rows)
    (root / table).write_text(text)
    ds = open_dataset(root)
    assert ds.mask_encoding == "rgb" and ds.labels.names == tuple(NAMES) and ds.ignore_index == 255
    np.testing.assert_array_equal(ds[0][1], samples[0][2])  # white "void" is ignore


def test_kaggle_split_folders_with_class_dict(tmp_path):
    samples = pets(3)
    for split, part in (("train", samples[:2]), ("val", samples[2:])):
        for name, img, ids in part:
            save(tmp_path / split / f"{name}.png", img)
            save(tmp_path / f"{split}_labels" / f"{name}_L.png", rgb(ids)[0])
    (tmp_path / "class_dict.csv").write_text(
        "name,r,g,b\n"
        + "".join(f"{n},{r},{g},{b}\n" for n, (r, g, b) in zip(NAMES, COLOURS))
        + "Void,255,255,255\n"
    )
    assert detect_kind(tmp_path) == "folder" and list_splits(tmp_path) == ["train", "val"]
    ds = open_dataset(tmp_path, split="train")
    assert len(ds) == 2 and ds.mask_encoding == "rgb"
    np.testing.assert_array_equal(ds[1][1], samples[1][2])


def test_rgb_masks_without_a_colour_table_is_one_clear_error(tmp_path):
    root = folder(tmp_path, pets(1), rgb, labels=None)
    with pytest.raises(DatasetError, match="RGB colour images but there is no colour table"):
        open_dataset(root)


def test_unknown_layout_names_every_layout(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(DatasetError, match="not a known dataset layout.*COCO.*Cityscapes.*ADE20K"):
        open_dataset(tmp_path)
