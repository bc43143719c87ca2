"""Label sets and palettes: the one place that knows each dataset's names and quirks.

Quirks handled here and nowhere else:
- PASCAL VOC has two spellings in the wild ("diningtable"/"dining table",
  "tvmonitor"/"tv", "pottedplant"/"potted plant"); lookups accept either.
- Coral's label files: the VOC one ends with a blank line and free text about
  label 255; the Cityscapes one starts with "background" although the model's
  output 0 is "road" (line i+1 names output i).
- ADE20K models output 151 channels: 0 is "other", then the 150 benchmark classes.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ModelError


def voc_colormap(n: int = 256) -> np.ndarray:
    """The PASCAL VOC colour map (bit-interleaved class id), shape (n, 3) uint8.

    A fresh copy each call (callers edit their palette); computed once per size, since
    every mask PNG asks for it."""
    return _voc_colormap(n).copy()


@functools.cache
def _voc_colormap(n: int) -> np.ndarray:
    c = np.arange(n, dtype=np.int64)
    cmap = np.zeros((n, 3), dtype=np.int64)
    for j in range(8):
        for channel in range(3):
            cmap[:, channel] |= ((c >> channel) & 1) << (7 - j)
        c = c >> 3
    cmap = cmap.astype(np.uint8)
    cmap.flags.writeable = False
    return cmap


VOC_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "dining table", "dog", "horse", "motorbike", "person", "potted plant",
    "sheep", "sofa", "train", "tv",
)  # fmt: skip

CITYSCAPES_NAMES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
    "motorcycle", "bicycle",
)  # fmt: skip

CITYSCAPES_COLORS = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
    (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
    (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
    (0, 80, 100), (0, 0, 230), (119, 11, 32),
)  # fmt: skip

ADE20K_NAMES = (
    "other", "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane",
    "grass", "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant",
    "curtain", "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror",
    "rug", "field", "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub",
    "railing", "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter",
    "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs",
    "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench",
    "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar",
    "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower", "chandelier",
    "awning", "streetlight", "booth", "television receiver", "airplane", "dirt track",
    "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet",
    "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer",
    "plaything", "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag",
    "minibike", "cradle", "oven", "ball", "food", "step", "tank", "trade name", "microwave",
    "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood",
    "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate",
    "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)  # fmt: skip

CAMVID_NAMES = (
    "sky", "building", "pole", "road", "pavement", "tree", "sign symbol", "fence", "car",
    "pedestrian", "bicyclist",
)  # fmt: skip

CAMVID_COLORS = (
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
    (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
)  # fmt: skip

# Other spellings seen in official label files, mapped to the names above.
_ALIASES = {
    "diningtable": "dining table",
    "pottedplant": "potted plant",
    "tvmonitor": "tv",
    "tv monitor": "tv",
    "sidewalk": "pavement",
    "signsymbol": "sign symbol",
}


def _key(name: str) -> str:
    k = re.sub(r"\s+", " ", name.strip().lower())
    return _ALIASES.get(k, _ALIASES.get(k.replace(" ", ""), k))


@dataclass(frozen=True)
class LabelSet:
    """Class names in output order, display colours, and the ignore value of ground truth."""

    key: str
    names: tuple[str, ...]
    palette: np.ndarray = field(repr=False, compare=False)
    ignore_index: int | None = None

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Class index by name; accepts every known spelling ("tvmonitor" or "tv")."""
        wanted = _key(name)
        for i, n in enumerate(self.names):
            if _key(n) == wanted:
                return i
        raise KeyError(f"no class named {name!r} in label set {self.key!r}")

    def name(self, index: int) -> str:
        return self.names[index] if 0 <= index < len(self.names) else f"class {index}"

    def color(self, index: int) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.palette[index % len(self.palette)])

    def palette_lut(self) -> np.ndarray:
        """(256 or more, 3) uint8 colours indexable by class id; ids past the palette cycle."""
        n = max(256, len(self.names))
        lut = np.resize(voc_colormap(256), (n, 3))
        lut[: len(self.names)] = self.palette[np.arange(len(self.names)) % len(self.palette)]
        return lut

    def palette_bytes(self) -> bytes:
        """A 256-entry RGB palette for palette-indexed mask PNGs."""
        pal = voc_colormap(256)
        pal[: len(self.names)] = self.palette[: len(self.names)]
        if self.ignore_index is not None and self.ignore_index < 256:
            pal[self.ignore_index] = (255, 255, 255) if self.ignore_index == 255 else (0, 0, 0)
        return pal.tobytes()


def _make(key, names, colors=None, ignore_index=None) -> LabelSet:
    pal = np.asarray(colors, dtype=np.uint8) if colors is not None else voc_colormap(len(names))
    return LabelSet(key, tuple(names), pal, ignore_index)


LABEL_SETS: dict[str, LabelSet] = {
    "voc21": _make("voc21", VOC_NAMES, ignore_index=255),
    "cityscapes19": _make("cityscapes19", CITYSCAPES_NAMES, CITYSCAPES_COLORS, 255),
    "ade20k151": _make("ade20k151", ADE20K_NAMES),
    "camvid11": _make("camvid11", CAMVID_NAMES, CAMVID_COLORS, 11),
    # MLPerf Mobile's ADE20K-Top31: 0 = other, then ADE20K classes 1..31 (names as in the
    # class list of freedomtan/coreml_models_for_mlperf mosaic/mosaic_multi_arrays.py).
    "ade20k32": _make("ade20k32", ADE20K_NAMES[:32]),
    # MediaPipe's person models: one sigmoid channel, read as background / person.
    "person2": _make("person2", ("background", "person"), ((0, 0, 0), (192, 128, 128))),
}


def get_label_set(key: str) -> LabelSet:
    try:
        return LABEL_SETS[key]
    except KeyError:
        raise ModelError(f"unknown label set {key!r}; known: {', '.join(LABEL_SETS)}") from None


def parse_label_lines(text: str, num_classes: int | None = None) -> list[str]:
    """Class names from a label file's text, one per line, in output order.

    Stops at the first blank line (Coral's VOC file appends free text after one).
    Where the file has exactly one name more than the model has outputs and starts
    with "background", the first line is dropped (Coral's Cityscapes file).
    """
    names: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            if names:
                break
            continue
        names.append(line)
    if num_classes is not None:
        if len(names) == num_classes + 1 and _key(names[0]) == "background":
            names = names[1:]
        if len(names) < num_classes:
            names += [f"class {i}" for i in range(len(names), num_classes)]
        names = names[:num_classes]
    return names


def same_classes(a: LabelSet, b: LabelSet) -> bool:
    """Whether two label sets name the same classes in the same order (spellings aside).

    Generic sets ("class 0", "class 1", ...) know no names, so they agree with any set of
    their size; otherwise at least half the ids must carry the same class.
    """
    if len(a) != len(b):
        return False

    def generic(s: LabelSet) -> bool:
        return all(n == f"class {i}" for i, n in enumerate(s.names))

    if generic(a) or generic(b):
        return True
    same = sum(_key(x) == _key(y) for x, y in zip(a.names, b.names))
    return 2 * same >= len(a)


def read_label_file(path: str | Path, num_classes: int | None = None) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read label file {path}: {exc}") from None
    return parse_label_lines(text, num_classes)


def label_set_from_names(names: list[str] | tuple[str, ...], key: str = "custom") -> LabelSet:
    """A label set for names read from a model; reuses a known palette where names match one."""
    keys = [_key(n) for n in names]
    for known in LABEL_SETS.values():
        if len(known) == len(names) and [_key(n) for n in known.names] == keys:
            return LabelSet(known.key, tuple(names), known.palette, known.ignore_index)
    return _make(key, names)


def default_label_set(num_classes: int) -> LabelSet:
    """Best guess from the class count alone, for models that carry no labels."""
    for ls in LABEL_SETS.values():
        if len(ls) == num_classes:
            return ls
    return _make(f"generic{num_classes}", [f"class {i}" for i in range(num_classes)])
