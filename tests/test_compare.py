"""seglite compare: agreement of two models on a folder of the repo's pet photos."""

from __future__ import annotations

import json

import pytest
from conftest import PETS_VOC

from seglite.cli import main
from seglite.compare import compare_models
from seglite.errors import OptionError

PHOTOS = PETS_VOC / "JPEGImages"


def test_a_model_agrees_with_itself_and_its_metadata_twin():
    r = compare_models("deeplabv3", "deeplabv3-metadata", PHOTOS, num_threads=1, limit=2)
    assert r["images"] == 2 and r["pixel_agreement"] == 100.0 and r["miou_b_vs_a"] == 100.0
    assert all(c["share_change"] == 0 for c in r["classes"])


def test_quantized_model_against_float(capsys):
    r = compare_models("deeplabv3", "coral-pascal", PHOTOS, num_threads=1, limit=3)
    assert 30 < r["pixel_agreement"] < 100 and r["miou_b_vs_a"] < 100
    by = {c["class"]: c for c in r["classes"]}
    assert "background" in by and sum(c["pixels_a"] for c in r["classes"]) == sum(
        c["pixels_b"] for c in r["classes"]
    )
    assert [w["agreement"] for w in r["least_agreement"]] == sorted(
        w["agreement"] for w in r["least_agreement"]
    )
    assert (
        main(["compare", "deeplabv3", "coral-pascal", str(PHOTOS), "--limit", "1", "--json"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["images"] == 1


def test_models_with_other_classes_are_refused(tmp_path, capsys):
    with pytest.raises(OptionError, match="do not predict the same classes"):
        compare_models("deeplabv3", "cityscapes", PHOTOS, num_threads=1, limit=1)
    assert main(["compare", "deeplabv3", "deeplabv3", str(tmp_path)]) == 2
    assert "no images" in capsys.readouterr().err
