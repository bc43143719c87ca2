"""Ensembles (models/ensemble.py, `seglite ensemble`): real CamVid models combined into one
checkpoint whose scores are the members' average, through every path a checkpoint takes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import GOLDEN  # noqa: E402
from PIL import Image  # noqa: E402

from seglite import Segmenter  # noqa: E402
from seglite.cli import main  # noqa: E402
from seglite.errors import ModelError  # noqa: E402
from seglite.models.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from seglite.models.ensemble import (  # noqa: E402
    DeepLabEnsemble,
    combine_checkpoints,
    save_member,
)
from seglite.models.pretrained import starter_model  # noqa: E402
from seglite.train import TrainConfig  # noqa: E402
from seglite.train.model_init import build_model  # noqa: E402

REPO = Path(__file__).parents[1]
CAMVID = REPO / "src" / "seglite" / "assets" / "camvid_edgetpu_cityscapes.safetensors"
STREET = GOLDEN / "cityscapes_segmentation.bmp"


def _member(shipped, i: int, path: Path, *, input_size) -> Path:
    """Member ``i`` of the shipped ensemble on its own, claiming another input size."""
    drop = ("seglite.format", "seglite.config", "seglite.preprocess", "seglite.members")
    meta = {k: v for k, v in shipped.checkpoint_metadata.items()
            if k.startswith("seglite.") and k not in drop}  # fmt: skip
    meta["seglite.input_size"] = input_size
    return save_checkpoint(shipped.members[i], path, extra_metadata=meta)


@pytest.fixture(scope="module")
def shipped():
    """The zoo's camvid: three seeds of configs/camvid_cityscapes.toml, averaged."""
    return load_checkpoint(CAMVID)


@pytest.fixture(scope="module")
def pair(shipped, tmp_path_factory) -> tuple[Path, Path, Path]:
    d = tmp_path_factory.mktemp("ensemble")
    first = save_member(CAMVID, 0, d / "seed0.safetensors")
    second = save_member(CAMVID, 1, d / "seed1.safetensors")
    return first, second, combine_checkpoints([first, second], d / "pair.safetensors")


def street(h: int = 180, w: int = 240) -> np.ndarray:
    return np.asarray(Image.open(STREET).convert("RGB").resize((w, h)))


def test_the_shipped_camvid_model_is_three_seeds_averaged(shipped):
    assert isinstance(shipped, DeepLabEnsemble) and len(shipped.members) == 3
    assert shipped.checkpoint_metadata["seglite.input_size"] == [537, 713]
    x = torch.from_numpy(street(97, 129).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        each = [m(x) for m in shipped.members]
        torch.testing.assert_close(shipped(x), sum(each) / 3, rtol=1e-4, atol=1e-4)


def test_the_ensemble_averages_its_members_scores(pair):
    first, second, combined = pair
    model = load_checkpoint(combined)
    assert isinstance(model, DeepLabEnsemble) and model.config["ensemble"] == 2
    assert model.checkpoint_metadata["seglite.input_size"] == [537, 713]
    members = [load_checkpoint(p).set_output_stride(8) for p in (first, second)]
    model.set_output_stride(8)
    x = torch.from_numpy(street(97, 129).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        a, b, both = members[0](x), members[1](x), model(x)
    torch.testing.assert_close(both, (a + b) / 2, rtol=1e-4, atol=1e-4)
    assert float((a.argmax(1) != b.argmax(1)).float().mean()) > 0.001  # two different models


def test_an_ensemble_checkpoint_segments_like_any_other(pair, tmp_path):
    first, second, combined = pair
    image = street()
    probs = []
    for p in (first, second):
        seg = Segmenter(str(p), num_threads=2, output_confidence_masks=True)
        probs.append(seg.segment(image))
    seg = Segmenter(str(combined), num_threads=2, output_confidence_masks=True)
    result = seg.segment(image)
    assert result.category_mask.shape == image.shape[:2]
    agree = [float((result.category_mask == r.category_mask).mean()) for r in probs]
    assert min(agree) > 0.9  # close to both members, identical to neither
    assert seg.backend.output_stride == 8  # the members' inference stride
    # the CLI takes it as it takes a single checkpoint
    out = tmp_path / "mask.png"
    assert main(["segment", str(STREET), "--model", str(combined), "--mask", "--out", str(out),
                 "--quiet"]) == 0  # fmt: skip
    assert out.is_file()


def test_the_cli_combines_and_refuses_mismatched_members(shipped, pair, tmp_path, capsys):
    first, second, _ = pair
    out = tmp_path / "e.safetensors"
    assert main(["ensemble", str(first), str(second), "--out", str(out)]) == 0
    assert "2 members" in capsys.readouterr().out and out.is_file()
    voc = tmp_path / "voc.safetensors"
    save_checkpoint(starter_model(pretrained=True, decoder=False), voc)
    bigger = _member(shipped, 2, tmp_path / "bigger.safetensors", input_size=[721, 961])
    bad = [
        ([str(first)], "at least two"),
        ([str(first), str(voc)], "architecture"),
        ([str(first), str(bigger)], "input size"),
        ([str(first), str(tmp_path / "missing.safetensors")], "does not exist"),
        ([str(first), str(out)], "ensemble"),
        ([str(first), "--member", "0"], "not an ensemble"),
        ([str(out), "--member", "2"], "out of 0-1"),
        ([str(out), str(first), "--member", "0"], "one ensemble"),
    ]
    for paths, words in bad:
        assert main(["ensemble", *paths, "--out", str(tmp_path / "x.safetensors")]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and "\n" not in err, err
    assert main(["ensemble", str(first), str(second), "--out", str(tmp_path / "x.pt")]) == 2
    assert ".safetensors" in capsys.readouterr().err


def test_an_ensemble_starts_training_from_its_first_member(pair):
    first, _, combined = pair
    start = build_model(TrainConfig(dataset="x", init=str(combined), output_stride=16), 11,
                        "camvid11")  # fmt: skip
    assert not isinstance(start, DeepLabEnsemble) and "member 0" in start.pretrained_from
    reference = load_checkpoint(first).state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in start.state_dict().items())
    with pytest.raises(ModelError):  # an ensemble itself is for inference
        load_checkpoint(combined).reset_classifier(5)


def test_an_ensemble_evaluates_and_exports(pair, tmp_path, capsys):
    """`seglite eval` on street frames with ground truth, and a TFLite export whose
    scores match PyTorch's (two small members, so the conversion stays quick)."""
    import json

    from conftest import street_camvid

    from seglite.models.deeplab import deeplab

    _, _, combined = pair
    data = street_camvid(tmp_path / "camvid", split="val")
    report = tmp_path / "eval.json"
    assert main(["eval", str(combined), str(data), "--split", "val", "--json", str(report),
                 "--no-progress"]) == 0  # fmt: skip
    assert json.loads(report.read_text())["miou"] > 30  # a street model on a street
    members = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        m = deeplab(version="v3", backbone="mobilenet_v2", num_classes=11, labels="camvid11",
                    depth_multiplier=0.25, output_stride=16, aspp_channels=16, atrous_rates=[])  # fmt: skip
        members.append(save_checkpoint(m.eval(), tmp_path / f"m{seed}.safetensors",
                                       extra_metadata={"seglite.input_size": [65, 97]}))  # fmt: skip
    small = combine_checkpoints(members, tmp_path / "small.safetensors")
    out = tmp_path / "small.tflite"
    assert main(["export", str(small), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert out.is_file() and "argmax agreement 100" in printed, printed
