"""The service's output=cutout and output=effect on the real selfie, starter and ArgMax models."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from conftest import EXAMPLES
from PIL import Image

pytest.importorskip("fastapi", reason="seglite[serve] is not installed")
pytest.importorskip("httpx", reason="httpx is needed by FastAPI's TestClient")

from fastapi.testclient import TestClient  # noqa: E402

from seglite import Segmenter  # noqa: E402
from seglite.serve.app import ServeConfig, create_app  # noqa: E402

ASTRONAUT = (EXAMPLES / "astronaut.jpg").read_bytes()


@pytest.fixture(scope="module")
def client():
    app = create_app(ServeConfig(models=("selfie", "deeplabv3", "coral-pascal"), workers=1))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def post(c, query: str, data: bytes = ASTRONAUT):
    return c.post(f"/v1/segment{query}", content=data, headers={"content-type": "image/jpeg"})


@pytest.fixture(scope="module")
def person():
    return Segmenter("selfie", num_threads=2).segment(EXAMPLES / "astronaut.jpg").category_mask == 1


def test_cutout_is_an_rgba_png_of_the_person(client, person):
    r = post(client, "?output=cutout")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-seglite-size"] == "512x512"
    img = Image.open(io.BytesIO(r.content))
    assert img.mode == "RGBA" and img.size == (512, 512)
    alpha = np.asarray(img)[..., 3]
    assert ((alpha >= 128) == person).mean() > 0.95
    assert ((alpha > 0) & (alpha < 255)).mean() > 0.005  # soft edges
    assert (alpha[:64, :64] == 0).all()


def test_effects_and_options(client, person):
    r = post(client, "?output=effect&effect=color:%2300ff00&embed=true")
    assert r.status_code == 200, r.text
    body = json.loads(r.content)
    assert body["output"] == "effect" and body["width"] == 512
    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["image"]))))
    assert img.shape == (512, 512, 3)
    green = np.abs(img.astype(int) - (0, 255, 0)).sum(-1) < 10
    assert green[~person].mean() > 0.9 and green[person].mean() < 0.05
    r = post(client, "?output=effect&effect=blur&strength=20&invert=true")
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).mode == "RGB"
    for model in ("deeplabv3", "coral-pascal"):  # multi-class logits, and an ArgMax model
        r = post(client, f"?model={model}&output=cutout&classes=person&feather=3")
        assert r.status_code == 200, r.text
        alpha = np.asarray(Image.open(io.BytesIO(r.content)))[..., 3]
        own = np.asarray(
            Image.open(io.BytesIO(post(client, f"?model={model}&output=mask").content))
        )
        assert ((alpha >= 128) == (own == 15)).mean() > 0.95  # that model's own person mask


@pytest.mark.parametrize(
    "query, words",
    [
        ("?output=effect", "needs effect="),
        ("?output=effect&effect=sparkle", "unknown effect"),
        ("?output=effect&effect=color:red", "#RRGGBB"),
        ("?output=effect&effect=image:/etc/passwd", "would read a file on the server"),
        ("?output=mask&feather=2", "only used with output=cutout"),
        ("?output=cutout&classes=unicorn", "no class 'unicorn'"),
    ],
)
def test_bad_effect_requests_are_422_with_one_line(client, query, words):
    r = post(client, query)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert words in detail and "\n" not in detail
