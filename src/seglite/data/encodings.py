"""Mask encodings: how the pixels of a mask file become class ids.

Annotation tools save masks in four ways, and reading one as another is the most common
way to train on wrong labels:

- ``index``: a single-channel PNG whose pixel value is the class id (CamVid, ADE20K);
- ``palette``: a mode-P PNG whose palette index is the class id (VOC); colours only display;
- ``binary``: one foreground class saved as 0/255 (or 0/1): 255 (or 1) means class 1;
- ``rgb``: a colour per class, given by a colour table (``class_dict.csv`` etc.).

A ``MaskCodec`` reads a mask as *raw values* (one int per pixel; an RGB colour is packed as
``r << 16 | g << 8 | b``) and maps them to class ids with an explicit value map, so the
dataset checker can say what every value that occurs is taken to mean, and anything not in
the map is an error rather than a silent class.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DatasetError

ENCODINGS = ("index", "palette", "binary", "rgb")
SINGLE_CHANNEL_MODES = ("L", "P", "I;16", "I", "1")
IGNORE = 255  # what unlabelled pixels become where a layout has no ignore value of its own


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) int32 ``r << 16 | g << 8 | b``."""
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def colour_text(v: int) -> str:
    return f"({v >> 16 & 255},{v >> 8 & 255},{v & 255})"


def read_single_channel(path: Path) -> tuple[np.ndarray, str]:
    """A mask file's pixels as a 2-D array and its PIL mode; DatasetError if unreadable."""
    try:
        with Image.open(path) as m:
            mode = m.mode
            arr = np.array(m)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read mask ({exc})") from None
    if mode == "1":
        arr = arr.astype(np.uint8)
    return arr, mode


class MaskCodec:
    """Reads masks of one encoding and maps raw values to class ids (picklable).

    ``value_map``: raw value -> class id or the ignore value; ``ignore``: that value.
    """

    def __init__(
        self, encoding: str, value_map: dict[int, int], ignore: int | None, rule: str = ""
    ) -> None:
        self.encoding, self.value_map, self.ignore, self.rule = encoding, value_map, ignore, rule
        self._lut: np.ndarray | None = None

    def value_map_for(self, image_path: Path) -> dict[int, int]:
        return self.value_map

    def read_raw(self, image_path: Path, mask_path: Path) -> np.ndarray:
        arr, mode = read_single_channel(mask_path)
        if arr.ndim != 2:
            raise DatasetError(
                f"{mask_path}: mask mode {mode} is not a single-channel class-id PNG "
                "(RGB colour masks need a colour table such as class_dict.csv with name,r,g,b)"
            )
        return arr

    def value_text(self, value: int) -> str:
        return str(value)

    def to_ids(self, raw: np.ndarray, image_path: Path, mask_path: Path) -> np.ndarray:
        vmap = self.value_map_for(image_path)
        values = np.unique(raw)
        bad = [int(v) for v in values if int(v) not in vmap]
        if bad:
            shown = ", ".join(self.value_text(v) for v in bad[:8])
            raise DatasetError(f"{mask_path}: label values [{shown}] are outside {self.rule}")
        top = int(values[-1]) if values.size else 0
        if top < 65536:
            lut = np.zeros(top + 1, np.int64)
            for k, v in vmap.items():
                if k <= top:
                    lut[k] = v
            ids = lut[raw]
        else:  # packed colours: look up by sorting
            keys = np.array(sorted(vmap), np.int64)
            vals = np.array([vmap[k] for k in keys], np.int64)
            ids = vals[np.searchsorted(keys, raw)]
        dtype = np.uint8 if ids.size == 0 or ids.max() < 256 else np.uint16
        return ids.astype(dtype)

    def decode(self, image_path: Path, mask_path: Path) -> np.ndarray:
        return self.to_ids(self.read_raw(image_path, mask_path), image_path, mask_path)


class RGBCodec(MaskCodec):
    """Colour masks: each (r, g, b) of the colour table is a class."""

    def read_raw(self, image_path: Path, mask_path: Path) -> np.ndarray:
        try:
            with Image.open(mask_path) as m:
                arr = np.array(m.convert("RGB"))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{mask_path}: cannot read mask ({exc})") from None
        return pack_rgb(arr)

    def value_text(self, value: int) -> str:
        return colour_text(value)


def index_codec(
    num_classes: int, ignore: int | None, encoding: str = "index", rule: str = ""
) -> MaskCodec:
    """Pixel value = class id; ``ignore`` (if any) marks unlabelled pixels."""
    vmap = {i: i for i in range(num_classes)}
    if ignore is not None:
        vmap[ignore] = ignore
    rule = rule or (
        f"the label set ({num_classes} classes 0..{num_classes - 1}"
        + (f", ignore {ignore})" if ignore is not None else ")")
    )
    return MaskCodec(encoding, vmap, ignore, rule)


def binary_codec(foreground: int) -> MaskCodec:
    """0 = background, ``foreground`` (255 or 1) = class 1; no ignore value."""
    return MaskCodec(
        "binary", {0: 0, foreground: 1}, None, f"a binary mask (0 and {foreground} only)"
    )


def rgb_codec(colours: np.ndarray, ids: list[int], ignore: int | None, source: str) -> RGBCodec:
    vmap = {int(c): i for c, i in zip(pack_rgb(colours[None])[0], ids)}
    return RGBCodec("rgb", vmap, ignore, f"the colour table {source}")


# ---------------------------------------------------------------------------- colour tables

COLOUR_TABLE_NAMES = (
    "class_dict.csv", "classes.csv", "colors.csv", "colours.csv", "class_dict.json",
    "classes.json", "colors.json", "colours.json", "label_colors.txt", "colors.txt",
    "colours.txt", "labelmap.txt",
)  # fmt: skip
# Names that mean "not annotated" in colour tables (CamVid's Void, Cityscapes' unlabeled).
IGNORE_NAMES = {"void", "ignore", "unlabeled", "unlabelled", "don't care", "dontcare"}


def find_colour_table(*folders: Path) -> Path | None:
    for folder in folders:
        for name in COLOUR_TABLE_NAMES:
            if (folder / name).is_file():
                return folder / name
    return None


def _rgb(value, path: Path) -> tuple[int, int, int]:
    if isinstance(value, str):
        v = value.strip().lstrip("#")
        parts = (
            v.split(",") if "," in v else [v[i : i + 2] for i in (0, 2, 4)] if len(v) == 6 else []
        )
        try:
            rgb = [int(p, 16) if "," not in v else int(p) for p in parts]
        except ValueError:
            rgb = []
    else:
        rgb = [int(x) for x in value] if isinstance(value, (list, tuple)) else []
    if len(rgb) != 3 or not all(0 <= x <= 255 for x in rgb):
        raise DatasetError(f"{path}: colour {value!r} is not r,g,b in 0..255")
    return rgb[0], rgb[1], rgb[2]


def _csv_table(text: str, path: Path) -> list[tuple[str, tuple[int, int, int]]]:
    import csv

    rows = list(csv.reader(text.splitlines()))
    if not rows:
        return []
    head = [h.strip().lower() for h in rows[0]]
    cols = {}
    for want, aliases in (
        ("name", ("name", "class", "class_name", "label")),
        ("r", ("r", "red")), ("g", ("g", "green")), ("b", ("b", "blue")),
    ):  # fmt: skip
        found = [i for i, h in enumerate(head) if h in aliases]
        if not found:
            raise DatasetError(f"{path}: a colour table needs the columns name,r,g,b; has {head}")
        cols[want] = found[0]
    out = []
    for row in rows[1:]:
        if not any(c.strip() for c in row):
            continue
        try:
            rgb = tuple(int(row[cols[c]]) for c in "rgb")
        except (ValueError, IndexError):
            raise DatasetError(f"{path}: row {row} does not give name,r,g,b") from None
        out.append((row[cols["name"]].strip(), _rgb(rgb, path)))
    return out


def _json_table(text: str, path: Path) -> list[tuple[str, tuple[int, int, int]]]:
    import json

    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not JSON ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("classes"), list):
        data = data["classes"]
    if isinstance(data, dict):
        return [(str(k), _rgb(v, path)) for k, v in data.items()]
    out = []
    for item in data if isinstance(data, list) else []:
        colour = next((item[k] for k in ("color", "colour", "rgb") if k in item), None)
        name = item.get("name") or item.get("label") if isinstance(item, dict) else None
        if name is None or colour is None:
            raise DatasetError(f"{path}: each class needs a name and a color, got {item!r}")
        out.append((str(name), _rgb(colour, path)))
    return out


def _txt_table(text: str, path: Path) -> list[tuple[str, tuple[int, int, int]]]:
    """``r g b name``, ``name r g b`` or CVAT's labelmap ``name:r,g,b:parts:actions``."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if ":" in line:
            name, colour = line.split(":")[:2]
            out.append((name.strip(), _rgb(colour, path)))
            continue
        tok = line.replace(",", " ").split()
        if len(tok) >= 4 and all(t.isdigit() for t in tok[:3]):
            out.append((" ".join(tok[3:]), _rgb(tok[:3], path)))
        elif len(tok) >= 4 and all(t.isdigit() for t in tok[-3:]):
            out.append((" ".join(tok[:-3]), _rgb(tok[-3:], path)))
        else:
            raise DatasetError(f"{path}: line {line!r} is not 'r g b name' or 'name r g b'")
    return out


def read_colour_table(path: Path) -> tuple[list[str], np.ndarray, list[int], int | None]:
    """Class names, (N, 3) colours, each colour's class id, and the ignore value.

    Classes are numbered in table order; a row named void/unlabelled/ignore is not a class
    but the ignore value 255 (as CamVid's and Cityscapes' "void" are in their benchmarks).
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read colour table {path}: {exc}") from None
    suffix = Path(path).suffix.lower()
    parse = {".csv": _csv_table, ".json": _json_table}.get(suffix, _txt_table)
    rows = parse(text, Path(path))
    if not rows:
        raise DatasetError(f"{path}: colour table has no classes")
    seen: dict[tuple, str] = {}
    for name, rgb in rows:
        if rgb in seen:
            raise DatasetError(f"{path}: {name!r} and {seen[rgb]!r} share the colour {rgb}")
        seen[rgb] = name
    names, ids = [], []
    ignore = None
    for name, _ in rows:
        if name.strip().lower() in IGNORE_NAMES:
            ids.append(IGNORE)
            ignore = IGNORE
        else:
            ids.append(len(names))
            names.append(name)
    return names, np.array([rgb for _, rgb in rows], np.uint8), ids, ignore


# ---------------------------------------------------------------------------- sniffing


def sniff_encoding(
    mask_paths: list[Path], num_labels: int | None, samples: int = 24
) -> tuple[str, int | None]:
    """The encoding of a folder of masks, from up to ``samples`` files spread over it, and
    for ``binary`` the foreground value (255 or 1).

    Mode P is ``palette``, RGB is ``rgb``; single-channel masks whose values are only 0 and
    255 (or 0 and 1) are ``binary`` unless a label file names more than two classes (then
    they are index masks, and the checker reports that 255 reads as ignore).
    """
    if not mask_paths:
        return "index", None
    step = max(1, len(mask_paths) // samples)
    modes, values = set(), set()
    for p in mask_paths[::step][:samples]:
        try:
            with Image.open(p) as m:
                modes.add(m.mode)
                if m.mode not in ("RGB", "RGBA", "P"):
                    values.update(int(v) for v in np.unique(np.array(m)))
        except (OSError, ValueError):
            continue
    if modes & {"RGB", "RGBA"}:
        return "rgb", None
    if modes == {"P"}:
        return "palette", None
    if num_labels is None or num_labels <= 2:
        if values and values <= {0, 255} and 255 in values:
            return "binary", 255
        if values and values <= {0, 1} and 1 in values:
            return "binary", 1
    return "index", None
