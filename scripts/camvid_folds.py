"""Leave-one-drive-out folds of CamVid, as CamVid-layout folders of symbolic links.

CamVid's standard val split (101 frames) is drive 0016E5, which also gives 204 of the
367 train frames: a model chosen on val is chosen on a drive it trained on, and val
overestimates frames of unseen drives by about 8 mIoU points. A fold here trains on
every train + val frame of the other drives and validates on one whole drive it never
saw, which is what the held-out test split (drives 0001TP and Seq05VD) asks of a model.

    python scripts/camvid_folds.py ../shared/data/camvid --hold-out 0006R0 --out DIR

writes DIR/train, DIR/trainannot, DIR/val, DIR/valannot (links to the source files),
so ``seglite train --dataset DIR`` and ``seglite eval MODEL DIR --split val`` work on it
unchanged. The drive is the frame name's prefix before the first underscore.
``--hold-out none`` puts every frame in train (the shipped model's data, once the
protocol has chosen its recipe) and leaves val empty.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
from pathlib import Path

SPLITS = ("train", "val")


def frames(root: Path) -> list[tuple[str, Path, Path]]:
    """(drive, image, annotation) for every frame of the train and val splits."""
    out = []
    for split in SPLITS:
        for image in sorted((root / split).glob("*.png")):
            annot = root / f"{split}annot" / image.name
            if not annot.is_file():
                raise SystemExit(f"camvid_folds: {image} has no annotation {annot}")
            out.append((image.name.split("_", 1)[0], image, annot))
    return out


def make_fold(root: Path, hold_out: str, out: Path) -> dict[str, int]:
    all_frames = frames(root)
    drives = collections.Counter(d for d, _, _ in all_frames)
    if hold_out != "none" and hold_out not in drives:
        raise SystemExit(
            f"camvid_folds: no drive {hold_out!r} in {root} (drives: "
            + ", ".join(f"{d} ({n})" for d, n in sorted(drives.items())) + ")"
        )  # fmt: skip
    for split in SPLITS:
        for sub in (split, f"{split}annot"):
            d = out / sub
            d.mkdir(parents=True, exist_ok=True)
            for old in d.glob("*.png"):
                old.unlink()
    names = collections.Counter(image.name for _, image, _ in all_frames)
    twice = sorted(n for n, k in names.items() if k > 1)
    if twice:
        raise SystemExit(f"camvid_folds: frames in both splits: {', '.join(twice[:5])}")
    counts = collections.Counter()
    for drive, image, annot in all_frames:
        split = "val" if drive == hold_out else "train"
        for src, sub in ((image, split), (annot, f"{split}annot")):
            os.symlink(os.path.relpath(src.resolve(), out / sub), out / sub / src.name)
        counts[split] += 1
    (out / "FOLD.txt").write_text(
        f"CamVid fold made by scripts/camvid_folds.py from {root.resolve()}\n"
        f"val = drive {hold_out} ({counts['val']} frames); "
        f"train = the other drives' train + val frames ({counts['train']})\n"
    )
    return dict(counts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("camvid", type=Path, help="a CamVid folder with train/ and val/ splits")
    ap.add_argument("--hold-out", required=True,
                    help="the drive to validate on, e.g. 0006R0; none: all frames in train")  # fmt: skip
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    counts = make_fold(args.camvid, args.hold_out, args.out)
    print(f"{args.out}: train {counts.get('train', 0)} frames, val {counts.get('val', 0)} "
          f"(drive {args.hold_out})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
