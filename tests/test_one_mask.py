"""One image, one mask: the category mask of a photo does not depend on the front end or on
which outputs are written (CLI output combinations, the Python API on every input type, the
service, the worker pool)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import EXAMPLES
from PIL import Image

from seglite import Segmenter
from seglite.cli import main

PHOTO = EXAMPLES / "astronaut.jpg"  # a JPEG: the decoder could have been asked to shrink it
MODELS = ["deeplabv3", "coral-pascal-dm05"]  # logits (lazy upsampling) and ArgMax outputs


def _png_ids(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


@pytest.fixture(scope="module", params=MODELS)
def reference(request):
    """The model's mask from the file's path, which every other route must reproduce."""
    with Segmenter(request.param, num_threads=2) as seg:
        return request.param, seg.segment(PHOTO).category_mask


def test_python_api_on_every_input_type(reference):
    name, want = reference
    data = PHOTO.read_bytes()
    with Segmenter(name, num_threads=2) as seg:
        inputs = {
            "str": str(PHOTO),
            "bytes": data,
            "bytearray": bytearray(data),
            "lazy PIL": Image.open(PHOTO),
            "loaded PIL": Image.open(PHOTO).convert("RGB"),
            "numpy": np.asarray(Image.open(PHOTO).convert("RGB")),
        }
        for kind, src in inputs.items():
            assert np.array_equal(seg.segment(src).category_mask, want), kind


@pytest.mark.parametrize(
    "flags", [["--mask"], ["--mask", "--json"], ["--mask", "--overlay"], []], ids=" ".join
)
def test_cli_output_combinations(reference, flags, tmp_path):
    name, want = reference
    out = tmp_path / "out"
    assert main(["segment", str(PHOTO), "--model", name, "--out", str(out), "-q", *flags]) == 0
    assert np.array_equal(np.asarray(Image.open(out / "astronaut.mask.png")), want)


def test_cli_single_file_out_and_worker_pool(reference, tmp_path):
    name, want = reference
    one = tmp_path / "one.png"
    assert main(["segment", str(PHOTO), "--model", name, "--mask", "--out", str(one), "-q"]) == 0
    assert np.array_equal(np.asarray(Image.open(one)), want)
    assert [p.name for p in tmp_path.iterdir()] == ["one.png"]  # that file and nothing else
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        (folder / f"p{i}.jpg").write_bytes(PHOTO.read_bytes())
    out = tmp_path / "pool"
    args = ["segment", str(folder), "--model", name, "--out", str(out), "--jobs", "2", "-q"]
    assert main([*args, "--overlay", "--mask"]) == 0
    for i in range(3):
        assert np.array_equal(np.asarray(Image.open(out / f"p{i}.mask.png")), want), i


def test_service_mask_and_json(reference):
    pytest.importorskip("fastapi", reason="seglite[serve] is not installed")
    from fastapi.testclient import TestClient

    from seglite.serve.app import ServeConfig, create_app

    name, want = reference
    with TestClient(create_app(ServeConfig(models=(name,), workers=1))) as c:
        for field in ("multipart", "raw"):
            if field == "multipart":
                r = c.post(
                    "/v1/segment?output=mask",
                    files={"file": ("a.jpg", PHOTO.read_bytes(), "image/jpeg")},
                )
            else:
                r = c.post(
                    "/v1/segment?output=mask",
                    content=PHOTO.read_bytes(),
                    headers={"content-type": "image/jpeg"},
                )
            assert r.status_code == 200, r.text
            assert np.array_equal(_png_ids(r.content), want), field
        body = c.post(
            "/v1/segment", content=PHOTO.read_bytes(), headers={"content-type": "image/jpeg"}
        ).json()
        fractions = {k["label"]: k["fraction"] for k in body["classes"]}
        labels = Segmenter(name).labels
        for cid in np.unique(want):
            share = float((want == cid).mean())
            assert abs(fractions[labels[cid]] - share) < 1e-3, labels[cid]
