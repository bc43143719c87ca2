"""Where the tests find their real models, golden outputs and datasets: all inside the repo.

``tests/data`` holds everything the suite reads (see ``tests/data/SOURCES.md``); nothing
here looks beside the clone. The zoo sees ``tests/data/models`` first, then any model
folders the user already set, and never downloads during tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"
MODEL_DIR = DATA / "models"
GOLDEN = DATA / "golden"
PETS_VOC = DATA / "pets_voc"  # VOC layout, 12 Oxford-IIIT Pet photos, cat/dog/background
PHOTOS = DATA / "photos"  # three CC0 / public-domain photos: a person, a cup, a rocket
EXAMPLES = REPO / "examples"

# Zoo models the repo may not carry, and why; the tests run every other zoo model.
NOT_IN_REPO = {"coco-voc-fp16": "third-party copy whose license is not verified"}

_user_dirs = os.environ.get("SEGLITE_MODEL_DIR", "")
os.environ["SEGLITE_MODEL_DIR"] = os.pathsep.join(p for p in (str(MODEL_DIR), _user_dirs) if p)
os.environ["SEGLITE_OFFLINE"] = "1"


def model_file(name: str) -> Path:
    """A model by zoo name or file name: the repo's copy, else the zoo's (model dir, cache).

    Skips the test, with the reason, only when no copy is reachable; every model the suite
    runs is in the repo or the package, so a fresh clone skips nothing.
    """
    if (MODEL_DIR / name).is_file():
        return MODEL_DIR / name
    from seglite import zoo
    from seglite.errors import SegliteError

    by_file = {e.filename: n for n, e in zoo.ZOO.items()}
    try:
        return zoo.resolve(by_file.get(name, name)).path
    except SegliteError as e:
        pytest.skip(f"model {name} not available: {e}")


def _available(name: str) -> bool:
    """Whether ``model_file(name)`` would find a copy (repo, model dir or cache)."""
    from seglite import zoo
    from seglite.errors import SegliteError

    if (MODEL_DIR / name).is_file():
        return True
    try:
        return zoo.find_local(zoo.ZOO[name]) is not None
    except (KeyError, SegliteError):
        return False


model_file.available = _available  # type: ignore[attr-defined]


def street_camvid(root: Path, split: str = "val") -> Path:
    """A CamVid-layout dataset (``<split>/``, ``<split>annot/``) built from a real street photo.

    CamVid itself is research-only, so it stays out of the repo; the code path is tested on
    Coral's Cityscapes test image and its reference mask, with trainIds mapped to CamVid's
    11 classes (11 = void). Four frames: the photo, its mirror, and two crops.
    """
    from PIL import Image

    # Cityscapes trainId -> CamVid id (road, sidewalk, building, wall, fence, pole, light,
    # sign, vegetation, terrain, sky, person, rider, car, truck, bus, train, motorcycle, bicycle)
    to_camvid = np.array([3, 4, 1, 1, 7, 2, 6, 6, 5, 5, 0, 9, 10, 8, 8, 8, 11, 10, 10], np.uint8)
    image = np.asarray(Image.open(GOLDEN / "cityscapes_segmentation.bmp").convert("RGB"))
    ids = np.asarray(Image.open(GOLDEN / "cityscapes_segmentation_mask.bmp"))
    ids = np.where(ids < len(to_camvid), to_camvid[np.minimum(ids, len(to_camvid) - 1)], 11)
    frames = {
        "0001TP_000001": (image, ids),
        "0001TP_000002": (image[:, ::-1], ids[:, ::-1]),
        "0006R0_000003": (image[40:400, 10:490], ids[40:400, 10:490]),
        "0006R0_000004": (image[100:460, 20:500], ids[100:460, 20:500]),
    }
    (root / split).mkdir(parents=True, exist_ok=True)
    (root / f"{split}annot").mkdir(parents=True, exist_ok=True)
    for name, (rgb, mask) in frames.items():
        Image.fromarray(np.ascontiguousarray(rgb)).save(root / split / f"{name}.png")
        Image.fromarray(np.ascontiguousarray(mask.astype(np.uint8))).save(
            root / f"{split}annot" / f"{name}.png"
        )
    return root


@pytest.fixture(scope="session")
def camvid_dir(tmp_path_factory) -> Path:
    return street_camvid(tmp_path_factory.mktemp("camvid"))


@pytest.fixture(scope="session")
def starter():
    from seglite import Segmenter

    return Segmenter("deeplabv3", num_threads=2)


def photo_folder(dst: Path, n: int, size: tuple[int, int] | None = None) -> list[Path]:
    """``n`` real photos in a folder, as PNG: the pet photos, then their mirrors, then crops.

    Batch, resume and Ray tests need folders of a few dozen distinct images; the repo holds
    12 photos, so the rest are mirrored or cropped copies (every file's pixels differ).
    ``size`` (width, height) crops and scales each to that size, as a camera's frames are.
    """
    from PIL import Image, ImageOps

    dst.mkdir(parents=True, exist_ok=True)
    sources = sorted((PETS_VOC / "JPEGImages").glob("*.jpg"))
    out = []
    for i in range(n):
        src, variant = sources[i % len(sources)], i // len(sources)
        with Image.open(src) as im:
            im = im.convert("RGB")
            if variant % 2 == 1:
                im = ImageOps.mirror(im)
            if variant >= 2:
                w, h = im.size
                im = im.crop((variant, variant, w - variant, h - variant))
            if size is not None:
                im = ImageOps.fit(im, size)
            path = dst / f"{src.stem}_{variant}.png"
            im.save(path)
        out.append(path)
    return out


def pan_frames(n: int = 100, size: tuple[int, int] = (480, 360)) -> list[np.ndarray]:
    """``n`` RGB frames of a camera panning across a real street photo, ``size`` = (w, h).

    Coral's Cityscapes test photo is enlarged to 640x640 and a ``size`` window slides along
    it one step per frame: real content, known motion (the shift of frame ``i`` is
    ``pan_offset(i, n, size)``), for video round trips and flicker measures.
    """
    from PIL import Image

    big = np.asarray(
        Image.open(GOLDEN / "cityscapes_segmentation.bmp").convert("RGB").resize((640, 640))
    )
    w, h = size
    return [
        np.ascontiguousarray(big[y : y + h, x : x + w])
        for x, y in (pan_offset(i, n, size) for i in range(n))
    ]


def pan_offset(i: int, n: int, size: tuple[int, int]) -> tuple[int, int]:
    """Top-left corner (x, y) of frame ``i`` of ``pan_frames``: left to right, fixed height."""
    w, h = size
    return round(i * (640 - w) / max(n - 1, 1)), (640 - h) // 2
