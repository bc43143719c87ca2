"""The CamVid model seglite ships (trained by configs/camvid_mnv2_v3plus*.toml) works out
of the box: `seglite eval camvid DIR --split ...` and `seglite segment --model camvid-lite`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import DATA

from seglite import Segmenter
from seglite.cli import main
from seglite.zoo import resolve

CAMVID = DATA / "camvid"
pytest.importorskip("torch")  # the checkpoint entry runs on the torch backend


def test_both_entries_ship_in_the_package():
    for name in ("camvid", "camvid-lite"):
        resolved = resolve(name)
        assert resolved.origin == "packaged", name
        assert resolved.entry.labels == "camvid11" and resolved.entry.input_size == (360, 480)


def _eval(args, capsys) -> dict:
    assert main(["eval", *args, "--no-progress", "--json", "-"]) == 0
    out = capsys.readouterr().out
    return json.loads(out[out.index("{") :])


def test_eval_by_zoo_name_on_val(capsys):
    result = _eval(["camvid", str(CAMVID), "--split", "val", "--limit", "6"], capsys)
    assert result["images"] == 6
    # Measured on all 101 val frames: see configs/README.md; a trained model, not chance
    # (chance is about 9% mIoU, "always road" about 30% pixel accuracy).
    assert result["pixel_acc"] > 80 and result["miou"] > 45


def test_eval_any_split_name_of_a_camvid_layout_folder(tmp_path, capsys):
    """The held-out test split (and any other) only needs <split>/ and <split>annot/."""
    ids = sorted(p.stem for p in (CAMVID / "val").glob("*.png"))[:3]
    for sub, src in (("seq05", "val"), ("seq05annot", "valannot")):
        (tmp_path / sub).mkdir()
        for i in ids:
            (tmp_path / sub / f"{i}.png").symlink_to(CAMVID / src / f"{i}.png")
    result = _eval(["camvid-lite", str(tmp_path), "--split", "seq05"], capsys)
    assert result["images"] == 3 and result["pixel_acc"] > 80


def test_lite_export_agrees_with_the_checkpoint():
    image = next(iter(sorted((CAMVID / "val").glob("*.png"))))
    torch_mask = Segmenter("camvid", num_threads=2).segment(image).category_mask
    lite_mask = Segmenter("camvid-lite", num_threads=2).segment(image).category_mask
    assert torch_mask.shape == lite_mask.shape == (360, 480)
    assert (torch_mask == lite_mask).mean() > 0.99


def test_segment_cli_with_the_camvid_model(tmp_path):
    image = sorted((CAMVID / "val").glob("*.png"))[10]
    assert main(["segment", str(image), "--model", "camvid-lite", "--out", str(tmp_path),
                 "--overlay", "--json"]) == 0  # fmt: skip
    summary = json.loads(next(tmp_path.glob("*.json")).read_text())
    found = {c["label"] for c in summary["classes"]}
    assert {"road", "sky"} <= {f.lower() for f in found}
    assert next(tmp_path.glob("*overlay*.png")).stat().st_size > 10_000
    assert np.isfinite(summary["classes"][0]["fraction"])
