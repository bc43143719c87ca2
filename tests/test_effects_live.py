"""The /v1/live WebSocket: options once, frames in, summaries and PNGs out, nothing queued."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from conftest import EXAMPLES, GOLDEN
from PIL import Image

pytest.importorskip("fastapi", reason="seglite[serve] is not installed")
pytest.importorskip("httpx", reason="httpx is needed by FastAPI's TestClient")

from fastapi.testclient import TestClient  # noqa: E402

from seglite.serve.app import ServeConfig, create_app  # noqa: E402

FRAME = (GOLDEN / "segmentation_input_rotation0.jpg").read_bytes()


@pytest.fixture(scope="module")
def client():
    app = create_app(ServeConfig(models=("deeplabv3", "selfie"), workers=1))
    with TestClient(app) as c:
        yield c


def test_frames_in_masks_out_over_one_connection(client):
    with client.websocket_connect("/v1/live") as ws:
        ws.send_text(json.dumps({"output": "mask"}))
        hello = json.loads(ws.receive_text())
        assert hello["ready"] and hello["model"] == "deeplabv3" and "person" in hello["labels"]
        for i in range(1, 4):
            ws.send_bytes(FRAME)
            summary = json.loads(ws.receive_text())
            png = ws.receive_bytes()
            assert summary["frame"] == i and summary["output"] == "mask"
            assert {c["label"] for c in summary["classes"]} >= {"person", "horse"}
            mask = np.asarray(Image.open(io.BytesIO(png)))
            assert mask.shape == (summary["height"], summary["width"])


def test_effects_live_and_frames_sent_faster_than_served_are_dropped(client):
    astronaut = (EXAMPLES / "astronaut.jpg").read_bytes()
    with client.websocket_connect("/v1/live") as ws:
        ws.send_text(json.dumps({"model": "selfie", "output": "effect", "effect": "blur"}))
        assert json.loads(ws.receive_text())["ready"]
        for _ in range(6):  # a burst: no answer awaited in between
            ws.send_bytes(astronaut)
        answers = []
        while not answers or answers[-1]["frame"] < 6:
            answers.append(json.loads(ws.receive_text()))
            assert Image.open(io.BytesIO(ws.receive_bytes())).size == (512, 512)
        assert answers[-1]["frame"] == 6  # the newest frame is always served
        assert len(answers) + answers[-1]["dropped"] == 6  # every other frame was dropped
        assert len(answers) < 6 or answers[-1]["dropped"] == 0


@pytest.mark.parametrize(
    "hello, words",
    [
        ("not json", "options as JSON"),
        (json.dumps({"output": "json"}), "live output must be one of"),
        (json.dumps({"output": "effect", "effect": "image:/etc/passwd"}), "server"),
        (json.dumps({"model": "nope"}), "nope"),
    ],
)
def test_bad_options_are_one_line_and_close(client, hello, words):
    with client.websocket_connect("/v1/live") as ws:
        ws.send_text(hello)
        reply = json.loads(ws.receive_text())
        assert "error" in reply and words in reply["detail"], reply


def test_cross_site_pages_and_missing_keys_are_refused():
    app = create_app(ServeConfig(models=("deeplabv3",), workers=1, api_key="s3cret"))
    with TestClient(app) as c:
        with c.websocket_connect("/v1/live") as ws:
            ws.send_text(json.dumps({"output": "mask"}))
            assert json.loads(ws.receive_text())["error"] == "unauthorized"
        with c.websocket_connect("/v1/live") as ws:
            ws.send_text(json.dumps({"output": "mask", "api_key": "s3cret"}))
            assert json.loads(ws.receive_text())["ready"]
        from starlette.websockets import WebSocketDisconnect

        with pytest.raises(WebSocketDisconnect):
            with c.websocket_connect("/v1/live", headers={"origin": "https://evil.example"}) as ws:
                ws.receive_text()
