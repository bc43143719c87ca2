"""seglite check: the exact report for good and broken datasets built from the repo's pets.

Each broken dataset is one of the mistakes that make people train on wrong labels; the
report must name it in one line with its files, and ``seglite train`` must refuse it.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import PETS_VOC, street_camvid
from PIL import Image
from test_dataset_formats import coco_json, folder, pets, rgb, save

from seglite.cli import main
from seglite.data import open_dataset
from seglite.data.check import check_dataset
from seglite.errors import DatasetError


def lines(report) -> list[str]:
    return [p.line() for p in report.problems]


def index_folder(root, samples=None):
    return folder(root, samples or pets(3), lambda m: (m, "L"))


def test_clean_folder_report(tmp_path):
    samples = pets(3)
    r = check_dataset(index_folder(tmp_path, samples))
    assert r.ok and lines(r) == []
    assert (r.layout, r.pairs, r.mask_encoding, r.ignore_index, r.num_classes) == (
        "folder", 3, "index", 255, 3,
    )  # fmt: skip
    ids = np.concatenate([s[2].ravel() for s in samples])
    assert [(c["name"], c["pixels"], c["images"]) for c in r.classes] == [
        ("background", int((ids == 0).sum()), 3),
        ("cat", int((ids == 1).sum()), 2),
        ("dog", int((ids == 2).sum()), 1),
    ]
    assert [(v["value"], v["meaning"]) for v in r.values] == [
        ("0", "background"), ("1", "cat"), ("2", "dog"), ("255", "ignore"),
    ]  # fmt: skip


def test_weights_match_what_train_computes(tmp_path):
    from seglite.train.sampling import median_frequency_weights

    root = street_camvid(tmp_path, "train")
    r = check_dataset(root)
    assert r.class_weights["median_frequency"] == median_frequency_weights(
        open_dataset(root, split="train")
    )


def test_missing_pairs(tmp_path):
    samples = pets(3)
    root = index_folder(tmp_path, samples)
    (root / "masks" / f"{samples[0][0]}.png").unlink()
    shutil.copy(root / "masks" / f"{samples[1][0]}.png", root / "masks" / "stray.png")
    r = check_dataset(root)
    assert lines(r) == [
        "error: 1 image without a mask: images/Abyssinian_14.jpg",
        "warning: 1 mask without an image: masks/stray.png",
    ]
    assert r.pairs == 2 and r.images_without_masks == ["images/Abyssinian_14.jpg"]


def test_size_mismatch(tmp_path):
    samples = pets(3)
    root = index_folder(tmp_path, samples)
    Image.fromarray(samples[1][2][:20, :30]).save(root / "masks" / f"{samples[1][0]}.png")
    assert lines(check_dataset(root)) == [
        "error: 1 mask sized differently from their images: masks/Bengal_1.png (30x20 vs 150x225)"
    ]


def test_binary_0_255_masks_given_as_index_masks(tmp_path):
    root = folder(tmp_path, pets(3), lambda m: (np.isin(m, (1, 2)).astype(np.uint8) * 255, "L"))
    r = check_dataset(root)
    assert r.mask_encoding == "index" and not r.ok
    assert lines(r) == [
        "error: masks hold only 0 and 255: read as index masks, 255 is ignore and every pixel "
        "is class 0 or ignored; binary masks? give labels.txt two names (background, your "
        "class) so 255 reads as class 1",
        "warning: classes that never occur: cat, dog",
        "warning: background is 100.0% of labelled pixels: a model that predicts it everywhere "
        "scores well on pixel accuracy; consider --class-weights sqrt_median_frequency",
    ]
    (root / "labels.txt").write_text("background\npet\n")  # the fix the error suggests
    r = check_dataset(root)
    assert r.ok and r.mask_encoding == "binary" and r.classes[1]["pixels"] > 0


def test_rgb_masks_without_a_colour_table(tmp_path):
    r = check_dataset(folder(tmp_path, pets(2), rgb, labels=None))
    assert r.mask_encoding == "rgb" and r.num_classes == 0
    assert lines(r) == [
        "error: masks are RGB colour images but there is no colour table to say which colour "
        "is which class: add class_dict.csv (name,r,g,b a row), or save masks as single-channel "
        "PNGs whose value is the class id: masks"
    ]
    assert [v["value"] for v in r.values] == ["(0,0,0)", "(255,128,0)", "(255,255,255)"]


def test_rgb_colour_missing_from_the_table(tmp_path):
    root = folder(tmp_path, pets(3), rgb, labels=None)
    (root / "class_dict.csv").write_text(
        "name,r,g,b\nbackground,0,0,0\ncat,255,128,0\nvoid,255,255,255\n"
    )
    assert lines(check_dataset(root)) == [
        "error: values [(0,64,255)] are outside the colour table class_dict.csv; add those "
        "colours to the colour table (or mark them void): masks/american_bulldog_13.png"
    ]


def test_ids_starting_at_1(tmp_path):
    root = folder(
        tmp_path, pets(3), lambda m: ((np.where(m == 255, 0, m) + 1).astype(np.uint8), "L")
    )
    assert lines(check_dataset(root)) == [
        "error: values [3] are outside the label set (3 classes 0..2, ignore 255); ids start at "
        "1? class ids are 0-based: labels.txt needs a line for 0 (3 names give 0..2): "
        "masks/american_bulldog_13.png",
        "warning: classes that never occur: background",
    ]


def test_coco_boxes_only_and_missing_image(tmp_path):
    pytest.importorskip("pycocotools")
    samples = pets(2)
    save(tmp_path / "images" / f"{samples[0][0]}.jpg", samples[0][1])  # the 2nd is missing
    data = coco_json(samples, polygons=False)
    for a in data["annotations"]:
        a["segmentation"] = []
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_default.json").write_text(json.dumps(data))
    r = check_dataset(tmp_path)
    assert r.layout == "coco" and r.mask_encoding == "coco" and r.pairs == 1
    assert lines(r) == [
        "error: 2 annotations have no segmentation (boxes only) and were skipped: export "
        "polygons or masks, not boxes: annotations/instances_default.json",
        "warning: 1 mask without an image: images/Bengal_1.jpg",
        "warning: classes that never occur: cat, dog",
        "warning: background is 100.0% of labelled pixels: a model that predicts it everywhere "
        "scores well on pixel accuracy; consider --class-weights sqrt_median_frequency",
    ]


def test_voc_and_camvid_splits(tmp_path):
    r = check_dataset(PETS_VOC)
    assert (r.layout, r.splits, r.mask_encoding) == ("voc", {"val": 12}, "palette")
    assert lines(r)[0].startswith("warning: classes that never occur: aeroplane, bicycle")
    root = street_camvid(tmp_path, "train")
    street_camvid(tmp_path, "val")
    r = check_dataset(root)
    assert r.splits == {"train": 4, "val": 4} and r.ignore_index == 11
    assert "warning: 4 images in both train and val" not in lines(r)  # different files


def test_cli_exit_code_and_json(tmp_path, capsys):
    good = index_folder(tmp_path / "good")
    assert main(["check", str(good), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "layout    folder" in out and "ok: no errors, 0 warning(s)" in out
    doc = json.loads((tmp_path / "r.json").read_text())
    for key in ("layout", "pairs", "mask_encoding", "ignore_index", "num_classes", "classes",
                "problems"):  # fmt: skip
        assert key in doc
    assert set(doc["classes"][0]) >= {"name", "pixels", "images"}
    bad = folder(tmp_path / "bad", pets(2), rgb, labels=None)
    assert main(["check", str(bad), "--json", "-"]) == 1
    assert json.loads(capsys.readouterr().out)["problems"][0]["level"] == "error"
    assert main(["check", str(tmp_path / "nope")]) == 2
    assert "no such dataset folder" in capsys.readouterr().err


def test_train_refuses_a_dataset_with_errors(tmp_path):
    pytest.importorskip("torch")
    from seglite.train import load_config, train

    root = folder(
        tmp_path / "d", pets(3), lambda m: (np.isin(m, (1, 2)).astype(np.uint8) * 255, "L")
    )
    cfg = load_config(None, dataset=str(root), iterations=1, batch_size=2, init="scratch")
    with pytest.raises(DatasetError, match=r"dataset check found 1 error\(s\).*only 0 and 255"):
        train(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "state.json").exists()


# ---------------------------------------------------------------------- collapse guard
# (the training-side end of the same labels problem)


def test_collapse_guard_names_one_class_everywhere_and_stuck_classes():
    from seglite.train.collapse import CollapseGuard

    g = CollapseGuard(["background", "cat", "dog"])
    assert g.update(np.array([[80, 5, 5], [3, 6, 1], [2, 1, 7]])) is None  # alive
    everywhere = np.array([[70, 0, 0], [20, 0, 0], [10, 0, 0]])
    msg = g.update(everywhere)
    assert msg.startswith("collapse: predicts background for 100.0% of pixels (it is 70.0% of")
    assert "likely causes: labels" in msg and "class weights" in msg and "learning rate" in msg
    msg = g.update(everywhere)  # second validation in a row: cat and dog stuck at IoU 0
    assert "IoU stays 0 for common classes: cat (20% of pixels), dog (10% of pixels)" in msg
