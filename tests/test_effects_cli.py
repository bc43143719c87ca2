"""seglite segment --effect as a user runs it: cutouts, photo effects, folders, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLES, PETS_VOC, PHOTOS, model_file, photo_folder
from PIL import Image
from test_cli import run

from seglite import Segmenter

ASTRONAUT = EXAMPLES / "astronaut.jpg"


def test_cutout_of_the_astronaut_is_the_person_with_soft_edges(tmp_path):
    proc = run("segment", str(ASTRONAUT), "--effect", "cutout", "--classes", "person",
               "--out", str(tmp_path))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "astronaut.cutout.png"
    ]  # the effect alone unless other outputs are named
    cut = Image.open(tmp_path / "astronaut.cutout.png")
    assert cut.mode == "RGBA" and cut.size == (512, 512)
    rgba = np.asarray(cut)
    alpha = rgba[..., 3]
    person = Segmenter("deeplabv3", num_threads=2).segment(ASTRONAUT).category_mask == 15
    opaque = alpha >= 128
    assert (opaque == person).mean() >= 0.95
    band = (alpha > 0) & (alpha < 255)
    assert band.mean() > 0.005  # soft edges: a band of partial alpha along the outline
    assert band[person].mean() < 0.2 and band[~person].mean() < 0.2
    background = ~person
    assert (alpha[background] == 0).mean() > 0.9  # fully transparent, not hazy
    assert (alpha[:64, :64] == 0).all()
    np.testing.assert_array_equal(rgba[..., :3], np.asarray(Image.open(ASTRONAUT).convert("RGB")))


def test_photo_effects_beside_other_outputs_and_inverted(tmp_path):
    bg = PHOTOS / "rocket.jpg"
    specs = {"blur": "blur", "color": "color:#00b140", "image": f"image:{bg}"}
    for name, spec in specs.items():
        out = tmp_path / name
        proc = run("segment", str(ASTRONAUT), "--model", "selfie", "--effect", spec,
                   "--mask", "--out", str(out))  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        img = Image.open(out / f"astronaut.{name}.png")
        assert img.mode == "RGB" and img.size == (512, 512)
        assert (out / "astronaut.mask.png").is_file()
    photo = np.asarray(Image.open(ASTRONAUT).convert("RGB")).astype(int)
    green = np.asarray(Image.open(tmp_path / "color" / "astronaut.color.png")).astype(int)
    person = np.asarray(Image.open(tmp_path / "color" / "astronaut.mask.png")) == 1
    is_green = np.abs(green - (0, 0xB1, 0x40)).sum(-1) < 10
    assert is_green[~person].mean() > 0.9 and is_green[person].mean() < 0.05
    proc = run("segment", str(ASTRONAUT), "--model", "selfie", "--effect", "color:#00b140",
               "--invert", "--out", str(tmp_path / "inv"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    inv = np.asarray(Image.open(tmp_path / "inv" / "astronaut.color-inverted.png")).astype(int)
    kept = np.abs(inv - photo).sum(-1) < 10
    assert kept[~person].mean() > 0.9 and kept[person].mean() < 0.1


def test_a_folder_over_two_processes_and_an_argmax_model(tmp_path):
    photos = photo_folder(tmp_path / "in", 4)
    proc = run("segment", str(tmp_path / "in"), "--effect", "cutout", "--jobs", "2",
               "--out", str(tmp_path / "out"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for p in photos:
        cut = Image.open(tmp_path / "out" / f"{p.stem}.cutout.png")
        assert cut.mode == "RGBA" and cut.size == Image.open(p).size
    again = run("segment", str(tmp_path / "in"), "--effect", "cutout", "--out",
                str(tmp_path / "out"))  # fmt: skip
    assert again.returncode == 0 and "4 skipped" in again.stderr
    coral = model_file("deeplabv3_mnv2_pascal_quant.tflite")
    pet = sorted((PETS_VOC / "JPEGImages").glob("*.jpg"))[0]
    one = tmp_path / "pet.png"
    proc = run("segment", str(pet), "--model", str(coral), "--effect", "blur", "--out", str(one))
    assert proc.returncode == 0, proc.stderr
    assert Image.open(one).size == Image.open(pet).size


@pytest.mark.parametrize(
    "args, message",
    [
        (["--effect", "sparkle"], "unknown effect 'sparkle'"),
        (["--effect", "color:#1234"], "color:#RRGGBB"),
        (["--effect", "image:/no/such.jpg"], "no such file"),
        (["--effect", "blur", "--classes", "unicorn"], "--classes unicorn"),
        (["--feather", "3"], "give --effect too"),
        (["--effect", "cutout", "--feather", "-2"], "--feather must be"),
        (["--smooth", "0.5"], "--smooth is for videos and streams"),
    ],
)
def test_bad_effect_options_are_one_line(tmp_path, args, message):
    proc = run("segment", str(ASTRONAUT), *args, "--out", str(tmp_path))
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
