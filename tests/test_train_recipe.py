"""Recipe options of issue #18: classifier rows from mapped classes, OHEM, bf16 autocast,
channels_last, and the leave-one-drive-out CamVid folds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import PETS_VOC, street_camvid  # noqa: E402
from PIL import Image  # noqa: E402

from seglite.errors import OptionError  # noqa: E402
from seglite.labels import LABEL_SETS  # noqa: E402
from seglite.models.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from seglite.models.pretrained import starter_model  # noqa: E402
from seglite.train import TrainConfig, train  # noqa: E402
from seglite.train.model_init import build_model  # noqa: E402
from seglite.train.step import segmentation_loss  # noqa: E402

REPO = Path(__file__).parents[1]
CAMVID11 = "camvid11"


@pytest.fixture(scope="module")
def voc_checkpoint(tmp_path_factory) -> Path:
    """The starter model's imported PASCAL VOC weights as a checkpoint (21 classes)."""
    path = tmp_path_factory.mktemp("ckpt") / "starter_voc.safetensors"
    save_checkpoint(starter_model(pretrained=True, decoder=False), path)
    return path


def pet_batch():
    """A real photo and its ground truth (cat/dog = VOC 8/12, border 255)."""
    name = sorted((PETS_VOC / "JPEGImages").glob("*.jpg"))[0].stem
    rgb = np.asarray(Image.open(PETS_VOC / "JPEGImages" / f"{name}.jpg").convert("RGB"))
    mask = np.asarray(Image.open(PETS_VOC / "SegmentationClass" / f"{name}.png"))
    h, w = (min(rgb.shape[0], 257), min(rgb.shape[1], 257))
    x = torch.from_numpy(rgb[:h, :w].astype(np.float32)).permute(2, 0, 1)[None] / 127.5 - 1
    return x, torch.from_numpy(mask[:h, :w].astype(np.int64))[None]


def test_class_map_copies_and_averages_classifier_rows(voc_checkpoint):
    cfg = TrainConfig(
        dataset="x", init=str(voc_checkpoint), output_stride=16,
        class_map={"pedestrian": ["person"], "car": ["car"], "bicyclist": ["bicycle", "person"]},
    )  # fmt: skip
    source = load_checkpoint(voc_checkpoint).set_output_stride(16).eval()
    mapped = build_model(cfg, 11, CAMVID11).eval()
    assert mapped.num_classes == 11 and "3 of 11 classes mapped" in mapped.pretrained_from
    x, _ = pet_batch()
    with torch.no_grad():
        old, new = source(x), mapped(x)
    names = list(LABEL_SETS[source.config["labels"]].names)
    person, bicycle, car = names.index("person"), names.index("bicycle"), names.index("car")
    torch.testing.assert_close(new[:, 9], old[:, person])  # pedestrian = person
    torch.testing.assert_close(new[:, 8], old[:, car])
    torch.testing.assert_close(new[:, 10], (old[:, bicycle] + old[:, person]) / 2)
    # an unmapped class starts at random: not any source row
    assert not any(torch.allclose(new[:, 0], old[:, c]) for c in range(old.shape[1]))


def test_class_map_names_must_exist(voc_checkpoint):
    cfg = TrainConfig(dataset="x", init=str(voc_checkpoint), class_map={"pedestrain": ["persn"]})
    with pytest.raises(OptionError) as err:
        build_model(cfg, 11, CAMVID11)
    msg = str(err.value)
    assert "\n" not in msg and "pedestrain" in msg and "persn" in msg
    with pytest.raises(OptionError):
        TrainConfig(dataset="x", class_map={"car": []}).validate()


def test_a_fresh_refiner_keeps_the_mapped_model_and_then_learns(voc_checkpoint, tmp_path):
    """A logit refiner added to a mapped checkpoint computes what the model computed
    without it; a few steps on a real photo move it, and its checkpoint reloads as is."""
    base = dict(dataset="x", init=str(voc_checkpoint), output_stride=16,
                class_map={"pedestrian": ["person"], "car": ["car"]})  # fmt: skip
    torch.manual_seed(0)
    plain = build_model(TrainConfig(**base), 11, CAMVID11).eval()
    torch.manual_seed(0)
    refined = build_model(TrainConfig(**base, refiner_channels=16), 11, CAMVID11)
    assert plain.refiner is None and refined.config["refiner_channels"] == 16
    x, y = pet_batch()
    y = torch.where((y == 8) | (y == 12), 9, 255)  # the pet as CamVid's pedestrian
    with torch.no_grad():
        torch.testing.assert_close(refined.eval()(x), plain(x), rtol=0, atol=1e-4)
    refined.train()
    opt = torch.optim.SGD(refined.refiner.parameters(), lr=0.05, momentum=0.9)
    xs, ys = torch.cat([x, x.flip(-1)]), torch.cat([y, y.flip(-1)])
    losses = []
    for _ in range(8):
        loss = segmentation_loss(refined(xs), ys, ignore_index=255)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] and float(refined.refiner.out.weight.abs().sum()) > 0
    path = tmp_path / "refined.safetensors"
    save_checkpoint(refined.eval(), path)
    again = load_checkpoint(path).eval()
    assert again.refiner is not None and again.refiner.channels == 16
    with torch.no_grad():
        torch.testing.assert_close(again(x), refined(x))
    with pytest.raises(OptionError):
        TrainConfig(dataset="x", refiner_channels=-1).validate()
    # the fresh refiner may learn faster than the start around it
    from seglite.train.optim import make_optimizer

    opt = make_optimizer(refined, TrainConfig(**base, refiner_channels=16, refiner_lr_mult=10))
    fast = {id(p) for g in opt.param_groups if g["lr_mult"] == 10 for p in g["params"]}
    assert fast == {id(p) for p in refined.refiner.parameters()}


def test_ohem_keeps_the_hard_pixels_of_a_real_prediction():
    model = starter_model(pretrained=True, decoder=False).eval()
    x, y = pet_batch()
    with torch.no_grad():
        logits = model(x)
    logits = torch.nn.functional.interpolate(logits, size=y.shape[-2:], mode="bilinear")
    valid = y != 255
    ce = segmentation_loss(logits, y, ignore_index=255)
    p_true = torch.softmax(logits, 1).gather(1, torch.where(valid, y, 0)[:, None])[:, 0]
    hard = valid & (p_true < 0.7)
    assert 0 < int(hard.sum()) < int(valid.sum())  # the starter gets most of a pet right
    ohem = segmentation_loss(logits, y, ignore_index=255, loss="ohem", ohem_min_kept=0)
    per_pixel = torch.nn.functional.cross_entropy(logits, y, ignore_index=255, reduction="none")
    torch.testing.assert_close(ohem, per_pixel[hard].mean(), rtol=1e-4, atol=1e-5)
    assert float(ohem) > float(ce)
    # min_kept: at least that many of the hardest, even where they pass the threshold
    n = int(valid.sum())
    everything = segmentation_loss(logits, y, ignore_index=255, loss="ohem", ohem_min_kept=n)
    torch.testing.assert_close(everything, ce, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "options",
    [{"precision": "bf16"}, {"channels_last": True}, {"loss": "ohem", "ohem_min_kept": 50}],
    ids=["bf16", "channels_last", "ohem"],
)
def test_training_runs_and_resumes_with_recipe_options(tmp_path, options):
    data = street_camvid(tmp_path / "camvid", split="train")
    street_camvid(data, split="val")
    cfg = TrainConfig.from_dict({
        "dataset": str(data), "dataset_kind": "camvid", "init": "scratch", "version": "v3",
        "depth_multiplier": 0.25, "decoder": False,
        "model_options": {"aspp_channels": 16, "atrous_rates": []},
        "crop_size": [49, 49], "batch_size": 2, "iterations": 3, "threads": 1, "val_every": 0,
        "val_limit": 1, "log_every": 1, "checkpoint_every": 1, "lr": 0.01, **options,
    })  # fmt: skip
    out = tmp_path / "run"
    assert train(cfg, out, progress=False, stop_after=2)["iteration"] == 2
    result = train(cfg, out, resume=True, progress=False)
    assert result["iteration"] == 3 and Path(result["final"]).is_file()
    model = load_checkpoint(result["final"])
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_bad_numerics_options_are_one_line_errors():
    for bad in ({"precision": "fp8"}, {"loss": "focal"}, {"ohem_threshold": 0.0}):
        with pytest.raises(OptionError) as err:
            TrainConfig.from_dict({"dataset": "x", **bad})
        assert "\n" not in str(err.value)


def test_camvid_folds_hold_out_one_drive(tmp_path):
    data = street_camvid(tmp_path / "camvid", split="train")
    (data / "val").mkdir()
    (data / "valannot").mkdir()
    for sub in ("", "annot"):  # one frame of each drive moves to val
        for name in ("0001TP_000002.png", "0006R0_000004.png"):
            (data / f"train{sub}" / name).rename(data / f"val{sub}" / name)
    out = tmp_path / "fold"
    cmd = [sys.executable, str(REPO / "scripts/camvid_folds.py"), str(data), "--out", str(out)]
    done = subprocess.run([*cmd, "--hold-out", "0006R0"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    val = sorted(p.name for p in (out / "val").iterdir())
    train_ = sorted(p.name for p in (out / "train").iterdir())
    assert val and all(n.startswith("0006R0_") for n in val)
    assert train_ and not any(n.startswith("0006R0_") for n in train_)
    assert sorted(p.name for p in (out / "valannot").iterdir()) == val
    # every frame of train + val lands in exactly one side, links resolve to the source
    assert len(val) + len(train_) == 4 and len(val) == 2
    assert (out / "val" / val[0]).resolve() == (data / "train" / val[0]).resolve()
    assert (out / "train" / "0001TP_000002.png").resolve() == (data / "val" / "0001TP_000002.png")
    bad = subprocess.run([*cmd, "--hold-out", "Seq05VD"], capture_output=True, text=True)
    assert bad.returncode != 0 and "0001TP" in bad.stderr and "Traceback" not in bad.stderr
