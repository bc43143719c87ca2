"""Ensemble distillation (train/distill.py): a student learns the averaged probabilities of
real trained models, on a real street photo; bad teachers are one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import GOLDEN, street_camvid  # noqa: E402
from PIL import Image  # noqa: E402

from seglite.errors import OptionError  # noqa: E402
from seglite.models.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from seglite.models.deeplab import deeplab  # noqa: E402
from seglite.models.pretrained import starter_model  # noqa: E402
from seglite.train import TrainConfig, load_config, train  # noqa: E402
from seglite.train.distill import Teachers, distillation_loss  # noqa: E402

REPO = Path(__file__).parents[1]
CAMVID = REPO / "src" / "seglite" / "assets" / "camvid_edgetpu_cityscapes.safetensors"


def street_crop(size: int = 161):
    """A crop of a real street photo, normalized as the models take it."""
    rgb = np.asarray(Image.open(GOLDEN / "cityscapes_segmentation.bmp").convert("RGB"))
    rgb = rgb[100 : 100 + size, 100 : 100 + size].astype(np.float32)
    return torch.from_numpy(rgb).permute(2, 0, 1)[None] / 127.5 - 1


def tiny_student():
    torch.manual_seed(0)
    return deeplab(version="v3", backbone="mobilenet_v2", num_classes=11, depth_multiplier=0.25,
                   output_stride=16, labels="camvid11", aspp_channels=16,
                   atrous_rates=[])  # fmt: skip


def test_teachers_average_the_probabilities_of_real_models(tmp_path):
    x = street_crop()
    camvid = load_checkpoint(CAMVID).set_output_stride(16).eval()
    with torch.no_grad():
        own = torch.softmax(camvid(x), 1)
    one = Teachers([str(CAMVID)], num_classes=11, output_stride=16, temperature=1.0,
                   device=torch.device("cpu"))  # fmt: skip
    p = one.probabilities(x, lambda: torch.autocast("cpu", enabled=False))
    torch.testing.assert_close(p, own)
    # a second, different teacher: the average lies between the two
    other = tmp_path / "other.safetensors"
    save_checkpoint(tiny_student().eval(), other)
    two = Teachers([str(CAMVID), str(other)], num_classes=11, output_stride=16,
                   temperature=1.0, device=torch.device("cpu"))  # fmt: skip
    mean = two.probabilities(x, lambda: torch.autocast("cpu", enabled=False))
    with torch.no_grad():
        theirs = torch.softmax(load_checkpoint(other).set_output_stride(16).eval()(x), 1)
    torch.testing.assert_close(mean, (own + theirs) / 2)
    torch.testing.assert_close(mean.sum(1), torch.ones_like(mean[:, 0]))
    assert all(not q.requires_grad for m in two.models for q in m.parameters())


def test_a_student_learns_its_teachers_labels_without_any_ground_truth():
    """Distillation alone moves a random student towards the street model's answers."""
    x = street_crop()
    x = torch.cat([x, x.flip(-1)])  # two images: the student's batch norms train
    teachers = Teachers([str(CAMVID)], num_classes=11, output_stride=16, temperature=1.0,
                        device=torch.device("cpu"))  # fmt: skip
    target = teachers.probabilities(x, lambda: torch.autocast("cpu", enabled=False))
    valid = torch.ones(target.shape[0], *target.shape[2:], dtype=torch.bool)
    # the loss is 0 for the teacher's own scores, positive for anything else
    own = torch.log(target)
    assert float(distillation_loss(own, target, valid, 1.0)) == pytest.approx(0.0, abs=1e-5)
    assert float(distillation_loss(own, target, valid, 2.0)) > 0  # softened student only
    student = tiny_student().train()
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    losses, agree = [], []
    for _ in range(40):
        logits = student(x)
        loss = distillation_loss(logits, target, valid, 1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
        agree.append(float((logits.argmax(1) == target.argmax(1)).float().mean()))
    assert losses[-1] < 0.25 * losses[0]
    assert agree[-1] > 0.8 and agree[-1] > agree[0]
    # pixels without a label teach nothing, as in the cross-entropy
    none = torch.zeros_like(valid)
    assert float(distillation_loss(student(x), target, none, 1.0)) == 0.0


def test_training_with_teachers_runs_and_resumes(tmp_path):
    data = street_camvid(tmp_path / "camvid", split="train")
    cfg = TrainConfig.from_dict({
        "dataset": str(data), "dataset_kind": "camvid", "val_split": "", "init": "scratch",
        "version": "v3", "depth_multiplier": 0.25, "decoder": False,
        "model_options": {"aspp_channels": 16, "atrous_rates": []},
        "crop_size": [65, 65], "batch_size": 2, "iterations": 3, "threads": 1,
        "val_every": 0, "log_every": 1, "checkpoint_every": 1, "lr": 0.01,
        "teachers": [str(CAMVID)], "distill_weight": 0.7, "distill_temperature": 2.0,
    })  # fmt: skip
    out = tmp_path / "run"
    assert train(cfg, out, progress=False, stop_after=2)["iteration"] == 2
    result = train(cfg, out, resume=True, progress=False)
    assert result["iteration"] == 3
    model = load_checkpoint(result["final"])
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_teacher_paths_in_a_config_are_relative_to_it(tmp_path):
    (tmp_path / "cfgs").mkdir()
    (tmp_path / "cfgs" / "base.toml").write_text('[optim]\nteachers = ["../runs/a.safetensors"]\n')
    (tmp_path / "cfgs" / "variant.toml").write_text('base = "base.toml"\ndistill_weight = 0.3\n')
    cfg = load_config(tmp_path / "cfgs" / "variant.toml", dataset="x")
    assert cfg.teachers == [str((tmp_path / "runs" / "a.safetensors").resolve())]
    assert cfg.distill_weight == 0.3


def test_bad_teachers_are_one_line_errors(tmp_path):
    voc = tmp_path / "voc.safetensors"
    save_checkpoint(starter_model(pretrained=True, decoder=False), voc)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    cases = [
        ([str(tmp_path / "missing.safetensors")], "no such checkpoint"),
        ([str(voc)], "21 classes"),
        ([str(junk)], "teacher"),
    ]
    for paths, words in cases:
        with pytest.raises(OptionError) as err:
            Teachers(paths, num_classes=11, output_stride=16, temperature=1.0,
                     device=torch.device("cpu"))  # fmt: skip
        assert words in str(err.value) and "\n" not in str(err.value)
    for bad in ({"distill_weight": 1.5}, {"distill_temperature": 0}, {"teachers": "a.st"}):
        with pytest.raises(OptionError) as err:
            TrainConfig.from_dict({"dataset": "x", **bad})
        assert "\n" not in str(err.value)
