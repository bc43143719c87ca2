"""Build tests/data from the project's development files, and write tests/data/SOURCES.md.

Kept so that anyone can see (and redo) how every test file was made. The tests never run
this: they read what it wrote, which is committed. Only files whose licenses allow
redistribution are copied; CamVid and VOC images (research-only / Flickr terms) stay out.

Usage: python scripts/make_test_data.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "data"

# (file, license, where it comes from): the zoo's TFLite models that the tests run and the
# repo may carry. The starter and the CamVid models ship in the package already.
MODELS = [
    ("lite-model_deeplabv3_1_metadata_2.tflite", "Apache-2.0",
     "tensorflow/tflite-support @ dd3362ea : tensorflow_lite_support/cc/test/testdata/task/vision/deeplabv3.tflite (TF Hub lite-model/deeplabv3/1/metadata/2)"),
    ("deeplabv3_mnv2_pascal_quant.tflite", "Apache-2.0",
     "google-coral/test_data @ 104342d2 : deeplabv3_mnv2_pascal_quant.tflite"),
    ("deeplabv3_mnv2_dm05_pascal_quant.tflite", "Apache-2.0",
     "google-coral/test_data @ 104342d2 : deeplabv3_mnv2_dm05_pascal_quant.tflite"),
    ("deeplab_mobilenet_edgetpu_slim_cityscapes_quant.tflite", "Apache-2.0",
     "google-coral/test_data @ 104342d2 : deeplab_mobilenet_edgetpu_slim_cityscapes_quant.tflite"),
    ("lite-model_deeplabv3-mobilenetv2-ade20k_1_default_1.tflite", "Apache-2.0 (TF Hub publisher sayakpaul; sha256 not tied to the TF Hub URL by independent evidence)",
     "ucalyptus/SIH-Stargazers @ 34dc5cb5 : models/segmentation/lite-model_deeplabv3-mobilenetv2-ade20k_1_default_1.tflite"),
    ("deeplabv3_mnv2_ade20k_uint8.tflite", "Apache-2.0",
     "mlcommons/mobile_models @ 1f996331 : v0_7/tflite/deeplabv3_mnv2_ade20k_uint8.tflite"),
    ("deeplabv3_mnv2_pascal_257_os8_quant.tflite", "BSD-3-Clause",
     "freedomtan/deeplabv3_tflite_for_nnapi_delegate @ 3c58d647 : pascal_voc_2012/deeplabv3_mnv2_pascal_257_os8_quant.tflite"),
    ("mobilenet_v2_1.0_224_quant.tflite", "Apache-2.0",
     "google-coral/test_data @ 104342d2 : mobilenet_v2_1.0_224_quant.tflite"),
    ("deeplabv3_labelmap.txt", "Apache-2.0",
     "tensorflow/tflite-support @ dd3362ea : tensorflow_lite_support/metadata/python/tests/testdata/image_segmenter/labelmap.txt"),
    ("pascal_voc_segmentation_labels.txt", "Apache-2.0",
     "google-coral/test_data @ 104342d2 : pascal_voc_segmentation_labels.txt"),
    ("cityscapes_segmentation_labels.txt", "Apache-2.0",
     "google-coral/test_data @ 104342d2 : cityscapes_segmentation_labels.txt"),
]

_TFLS = "tensorflow/tflite-support @ dd3362ea : tensorflow_lite_support/cc/test/testdata/task/vision/"
GOLDEN = [
    ("segmentation_input_rotation0.jpg", "Apache-2.0", _TFLS + "segmentation_input_rotation0.jpg"),
    ("segmentation_golden_rotation0.png", "Apache-2.0", _TFLS + "segmentation_golden_rotation0.png (Task Library CATEGORY_MASK, class x 10)"),
    ("segmentation_input_rotation90_flop.jpg", "Apache-2.0", _TFLS + "segmentation_input_rotation90_flop.jpg"),
    ("segmentation_golden_rotation90_flop.png", "Apache-2.0", _TFLS + "segmentation_golden_rotation90_flop.png"),
    ("cityscapes_segmentation.bmp", "Apache-2.0", "google-coral/test_data @ 104342d2 : cityscapes_segmentation.bmp"),
    ("cityscapes_segmentation_mask.bmp", "Apache-2.0", "google-coral/test_data @ 104342d2 : cityscapes_segmentation_mask.bmp (Coral's reference Cityscapes trainId mask)"),
    ("bird_segmentation.bmp", "Apache-2.0", "google-coral/test_data @ 104342d2 : bird_segmentation.bmp"),
    ("bird_segmentation_mask.bmp", "Apache-2.0", "google-coral/test_data @ 104342d2 : bird_segmentation_mask.bmp (Coral's expected VOC mask)"),
]

# Oxford-IIIT Pet pairs (CC BY-SA 4.0), small files, both species. Trimaps become VOC masks:
# pet -> cat (8) or dog (12), background -> 0, the unclassified border band -> 255 (ignore).
PETS = [
    "Abyssinian_14", "Abyssinian_50", "Abyssinian_62", "Abyssinian_30",
    "Bengal_95", "Bengal_31", "Bengal_1", "Bengal_5",
    "american_bulldog_34", "american_bulldog_9", "american_bulldog_13", "american_bulldog_74",
]
# Public-domain / CC0 photos from scikit-image's bundled data (scikit-image 0.26.0 wheel,
# skimage/data/), for variety where the pets are not enough (e.g. int8 calibration).
PHOTOS = [
    ("camera.png", "CC0 (photographer Lav Varshney)"),
    ("coffee.png", "CC0 (photographer Rachel Michetti)"),
    ("rocket.jpg", "public domain (SpaceX)"),
]
_PETS_SRC = "Oxford-IIIT Pet (Parkhi et al. 2012, CC BY-SA 4.0) via Naveen-Dodda/Sample_Pets_dataset @ 9281626a"


def voc_palette() -> list[int]:
    """The standard PASCAL VOC colour map (bit-interleaved class index), 256 entries."""
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--skimage-data", type=Path, default=None,
                    help="skimage/data/ of an unpacked scikit-image 0.26.0 wheel")
    args = ap.parse_args()
    rows: list[tuple[str, str, str]] = []

    for sub, table, src_dir in (("models", MODELS, "models"), ("golden", GOLDEN, "golden")):
        (OUT / sub).mkdir(parents=True, exist_ok=True)
        for name, lic, origin in table:
            dest = OUT / sub / name
            shutil.copyfile(args.shared / src_dir / name, dest)
            rows.append((f"{sub}/{name}", lic, origin + " (byte-for-byte)"))

    (OUT / "photos").mkdir(parents=True, exist_ok=True)
    for name, lic in PHOTOS:
        if args.skimage_data is not None:
            shutil.copyfile(args.skimage_data / name, OUT / "photos" / name)
        rows.append((f"photos/{name}", lic, f"scikit-image 0.26.0 wheel : skimage/data/{name} (byte-for-byte)"))

    pets = args.shared / "data" / "oxford_pets"
    voc = OUT / "pets_voc"
    (voc / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (voc / "SegmentationClass").mkdir(parents=True, exist_ok=True)
    for name in PETS:
        shutil.copyfile(pets / "images" / f"{name}.jpg", voc / "JPEGImages" / f"{name}.jpg")
        trimap = np.asarray(Image.open(pets / "annotations" / "trimaps" / f"{name}.png"))
        pet = 8 if name[0].isupper() else 12
        mask = np.select([trimap == 1, trimap == 2], [pet, 0], 255).astype(np.uint8)
        out = Image.fromarray(mask, mode="P")
        out.putpalette(voc_palette())
        out.save(voc / "SegmentationClass" / f"{name}.png", optimize=True)
        rows.append((f"pets_voc/JPEGImages/{name}.jpg", "CC BY-SA 4.0", f"{_PETS_SRC} : images/{name}.jpg (byte-for-byte)"))
        rows.append((f"pets_voc/SegmentationClass/{name}.png", "CC BY-SA 4.0 (derived)",
                     f"{_PETS_SRC} : trimaps/{name}.png, mapped 1 -> {pet}, 2 -> 0, 3 -> 255, VOC palette"))
    (voc / "val.txt").write_text("".join(f"{n}\n" for n in sorted(PETS)))

    lines = [
        "# Test data: what each file is, where it comes from, its license",
        "",
        "Everything the test suite reads. Made by `python scripts/make_test_data.py` from the",
        "project's development copies, whose provenance is in `shared/models/SOURCES.md`,",
        "`shared/golden/README.md` and `shared/data/oxford_pets/README.md`. Only files whose",
        "licenses allow redistribution are here; research-only data (CamVid, and VOC's Flickr",
        "images) is not: the tests build those layouts from these files instead.",
        "",
        "`pets_voc/` is a PASCAL VOC layout (`JPEGImages/`, `SegmentationClass/`, `val.txt`) of 12",
        "Oxford-IIIT Pet photos whose trimaps were mapped to VOC ids (cat 8, dog 12, background 0,",
        "the trimap's unclassified border band 255 = ignore), so a VOC model can be scored on them.",
        "",
        "| file | bytes | sha256 | license | origin |",
        "|---|---|---|---|---|",
    ]
    for rel, lic, origin in rows:
        p = OUT / rel
        lines.append(f"| {rel} | {p.stat().st_size} | {sha256(p)} | {lic} | {origin} |")
    p = voc / "val.txt"
    lines.append(f"| pets_voc/val.txt | {p.stat().st_size} | {sha256(p)} | CC0 | the 12 ids, sorted |")
    (OUT / "SOURCES.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
