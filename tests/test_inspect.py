"""seglite inspect: facts read from the files, and the MediaPipe verdict held to MediaPipe.

Every .tflite in the repo (the zoo files and seglite's own packaged export) is loaded in
``mediapipe.tasks.python.vision.ImageSegmenter``; inspect's "loads" must match what
create_from_options does, and its "works" what segment() gives.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import GOLDEN, MODEL_DIR, REPO

from seglite.cli import main
from seglite.errors import OptionError
from seglite.modelinfo import inspect_model

ASSETS = REPO / "src" / "seglite" / "assets"
TFLITE = sorted(MODEL_DIR.glob("*.tflite")) + sorted(ASSETS.glob("*.tflite"))
IMAGE = GOLDEN / "segmentation_input_rotation0.jpg"


# One child process per model: after a segment() that failed, MediaPipe can hang in the
# next create or at interpreter exit (its task runner is gone), so each child ends with _exit.
_CHILD = """
import json, os, sys
import mediapipe as mp
from mediapipe.tasks.python import BaseOptions, vision
out = {}
image = mp.Image.create_from_file(sys.argv[1])
for path in sys.argv[2:]:
    opts = vision.ImageSegmenterOptions(base_options=BaseOptions(model_asset_path=path),
                                        output_category_mask=True, output_confidence_masks=True)
    try:
        seg = vision.ImageSegmenter.create_from_options(opts)
    except Exception:
        out[path] = [False, None]
        continue
    try:
        res = seg.segment(image)
        shape = list(res.category_mask.numpy_view().shape[:2])
        out[path] = [True, [shape == [image.height, image.width], len(res.confidence_masks or [])]]
    except Exception:
        out[path] = [True, None]
print(json.dumps(out), flush=True)
os._exit(0)
"""


def mediapipe_run(*paths: Path) -> dict[str, tuple]:
    """path -> (created, None if segment() failed else (mask of the image's size, number of
    confidence masks))."""
    import subprocess
    import sys

    pytest.importorskip("mediapipe")
    out = {}
    for path in paths:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(IMAGE), str(path)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        line = proc.stdout.strip().splitlines()[-1]
        for p, (c, r) in json.loads(line).items():
            out[p] = (c, tuple(r) if r else None)
    return out


@pytest.fixture(scope="module")
def mediapipe_results():
    return mediapipe_run(*TFLITE)


@pytest.mark.parametrize("path", TFLITE, ids=lambda p: p.name)
def test_mediapipe_verdict_matches_mediapipe(path, mediapipe_results):
    r = inspect_model(path, try_import=False)
    created, ran = mediapipe_results[str(path)]
    assert r["mediapipe"]["loads"] == created, r["mediapipe"]
    if r["mediapipe"]["works"]:
        assert ran == (True, r["classes"])  # a mask of the image's size, one score map a class
    elif created and ran:  # runs, but reads class ids or a vector as score maps
        assert ran[1] != r["classes"] or len(r["outputs"][-1]["shape"]) != 4


def test_starter_model_report():
    r = inspect_model("deeplabv3")
    assert r["zoo"] == "deeplabv3" and r["format"] == "tflite"
    assert r["inputs"][0]["shape"] == [1, 257, 257, 3] and r["inputs"][0]["dtype"] == "float32"
    assert (
        r["normalization"]["source"] == "inferred" and r["normalization"]["confidence"] == "guess"
    )
    assert r["outputs"][0]["kind"] == "logits" and r["classes"] == 21
    assert r["labels_source"] == "zoo entry deeplabv3" and r["labels"][15] == "person"
    assert r["ops"]["CONV_2D"] == 38 and 0.6e9 < r["macs"] < 0.9e9
    assert r["mediapipe"] == {
        "loads": False, "works": False,
        "missing": ["NormalizationOptions metadata (input mean/std) for its float32 input"],
        "notes": ["no labels in the metadata: category names unknown",
                  "no output activation metadata: confidence masks are raw scores"],
    }  # fmt: skip
    assert r["pytorch_import"]["ok"] is True


def test_quantized_argmax_model_report():
    r = inspect_model("coral-pascal", try_import=False)
    n = r["normalization"]
    assert (n["mean"], n["std"], n["source"]) == ([128], [128.0], "quantization parameters")
    assert r["outputs"][0]["kind"] == "argmax" and r["outputs"][0]["dtype"] == "int64"
    assert r["task_library"]["missing"] == ["a 4-D [1, H, W, classes] output (has [1, 513, 513])"]
    assert r["mediapipe"]["loads"] and not r["mediapipe"]["works"]


def test_metadata_model_and_seglite_export():
    r = inspect_model("deeplabv3-metadata", try_import=False)
    assert r["normalization"]["source"] == "metadata" and r["labels_source"] == "metadata"
    assert r["mediapipe"]["works"] and r["task_library"]["loads"]
    r = inspect_model("camvid-lite", try_import=False)  # seglite's own int8 export
    assert r["classes"] == 11 and r["labels"][0] == "sky" and r["mediapipe"]["works"]
    # it runs on frames enlarged 1.5x, and its metadata says what --accurate means for it
    assert r["accurate_scales"] == [1.0, 1.3333]
    assert inspect_model("deeplabv3-metadata", try_import=False)["accurate_scales"] is None


def test_checkpoint_report():
    pytest.importorskip("torch")
    r = inspect_model("camvid")
    assert r["format"] == "safetensors" and r["classes"] == 11 and r["params"] > 1e5
    assert r["accurate_scales"] == [1.0, 1.3333]
    assert r["pytorch_import"]["ok"] and not r["mediapipe"]["loads"]


def test_fix_adds_what_mediapipe_needs(tmp_path, capsys):
    out = tmp_path / "starter_fixed.tflite"
    assert main(["inspect", "deeplabv3", "--fix", str(out), "--labels", "voc21",
                 "--mean", "127.5", "--std", "127.5", "--activation", "softmax",
                 "--no-import"]) == 0  # fmt: skip
    assert "MediaPipe   loads and works" in capsys.readouterr().out
    r = inspect_model(out, try_import=False)
    assert r["normalization"]["source"] == "metadata" and r["labels"][15] == "person"
    assert r["metadata"]["output_activation"] == "SOFTMAX"
    assert mediapipe_run(out)[str(out)] == (True, (True, 21))


def test_fix_refuses_what_it_cannot_know(tmp_path):
    from seglite.modelinfo.fix import fix_metadata

    with pytest.raises(OptionError, match="--mean and --std"):
        fix_metadata("deeplabv3", tmp_path / "x.tflite", labels="voc21")
    with pytest.raises(OptionError, match="20 labels for 21 output classes"):
        labels = tmp_path / "l.txt"
        labels.write_text("\n".join(f"c{i}" for i in range(20)))
        fix_metadata(
            "deeplabv3", tmp_path / "x.tflite", labels=str(labels), mean="127.5", std="127.5"
        )


def test_cli_json_and_bad_input(tmp_path, capsys):
    assert main(["inspect", "coral-pascal-dm05", "--json", "--no-import"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["classes"] == 21 and doc["op_count"] > 50 and doc["size_bytes"] == 760904
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(np.arange(100, dtype=np.uint8).tobytes())
    assert main(["inspect", str(bad)]) == 2
    assert "seglite: error:" in capsys.readouterr().err


def test_onnx_file_with_bad_accurate_scales_is_a_one_line_error(tmp_path, capsys):
    """Another writer's ONNX property is input too: not JSON, or out of range, is an error
    line from inspect (as it is from the backend), not a traceback."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 8, 8, 3])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 8, 8, 3])
    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["out"])], "g", [x], [y])
    for value, ok in (("[1, 1.25]", True), ("{not json", False), ("[0.01]", False)):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        prop = model.metadata_props.add()
        prop.key, prop.value = "seglite.accurate_scales", value
        path = tmp_path / "scales.onnx"
        onnx.save(model, str(path))
        assert main(["inspect", str(path), "--json"]) == (0 if ok else 2)
        out, err = capsys.readouterr()
        if ok:
            assert json.loads(out)["accurate_scales"] == [1.0, 1.25]
        else:
            assert "accurate_scales" in err and err.count("\n") == 1 and "Traceback" not in err
