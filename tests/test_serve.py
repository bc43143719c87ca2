"""seglite serve: the HTTP API against the real starter model, hostile input, backpressure,
graceful shutdown. The web page in a real browser is in test_serve_browser.py."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import GOLDEN, MODEL_DIR
from PIL import Image

pytest.importorskip("fastapi", reason="seglite[serve] is not installed")
httpx = pytest.importorskip("httpx", reason="httpx is needed by FastAPI's TestClient")

from fastapi.testclient import TestClient  # noqa: E402

from seglite import viz  # noqa: E402
from seglite.cli import main  # noqa: E402
from seglite.serve import render as render_mod  # noqa: E402
from seglite.serve.app import ServeConfig, create_app  # noqa: E402

GOLDEN_IMAGE = GOLDEN / "segmentation_input_rotation0.jpg"
GOOD = GOLDEN_IMAGE.read_bytes()
LIMIT_MB = 1.0  # upload limit of the test app, so oversize bodies stay small
LIMIT = int(LIMIT_MB * 1024 * 1024)
PERSON, HORSE = 15, 13  # VOC indices


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    """The starter model (default) and Coral's ArgMax model, two workers each."""
    app = create_app(
        ServeConfig(
            models=("deeplabv3", "coral-pascal"), workers=2, queue=64, max_upload_mb=LIMIT_MB
        )
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _post(
    c: TestClient,
    query: str = "",
    data: bytes = GOOD,
    ctype: str = "image/jpeg",
    headers: dict[str, str] | None = None,
):
    """POST the image as the raw body."""
    headers = {"content-type": ctype, **(headers or {})}
    return c.post(f"/v1/segment{query}", content=data, headers=headers)


def _labels(body: dict) -> set[str]:
    return {c["label"] for c in body["classes"]}


# -- the API ---------------------------------------------------------------------------------


def test_multipart_upload_gives_person_and_horse(client):
    r = client.post("/v1/segment", files={"file": ("golden.jpg", GOOD, "image/jpeg")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert r.headers["content-type"] == "application/json"
    assert body["model"] == "deeplabv3" and (body["width"], body["height"]) == (257, 257)
    assert {"person", "horse"} <= _labels(body)
    assert len(body["labels"]) == 21 and body["labels"][PERSON] == "person"
    shares = {c["label"]: c["fraction"] for c in body["classes"]}
    assert shares["person"] > 0.2 and shares["horse"] > 0.2
    assert abs(sum(shares.values()) - 1) < 1e-3
    t = body["timings_ms"]
    assert t["invocations"] == 1 and t["invoke"] > 0
    assert t["server"] >= t["total"] > 0 and t["queue"] >= 0
    assert "image" not in body
    assert "invoke;dur=" in r.headers["server-timing"]
    assert r.headers["cache-control"] == "no-store"


def test_options_as_form_fields(client):
    r = client.post(
        "/v1/segment",
        files={"file": ("g.jpg", GOOD, "image/jpeg")},
        data={"output": "mask", "embed": "true"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["output"] == "mask" and body["image_type"] == "image/png"
    mask = Image.open(io.BytesIO(base64.b64decode(body["image"])))
    assert mask.mode == "P" and mask.size == (257, 257)


def test_raw_body_mask_png(client):
    r = _post(client, "?output=mask")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.headers["x-seglite-model"] == "deeplabv3"
    assert r.headers["x-seglite-size"] == "257x257"
    assert {"person", "horse"} <= set(json.loads(r.headers["x-seglite-classes"]))
    mask = np.asarray(Image.open(io.BytesIO(r.content)))
    assert mask.shape == (257, 257)
    assert (mask == PERSON).mean() > 0.2 and (mask == HORSE).mean() > 0.2


def test_overlay_png_and_embedded(client):
    r = _post(client, "?output=overlay&alpha=0.7")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(r.content))
    assert img.mode == "RGB" and img.size == (257, 257)
    r = _post(client, "?output=overlay&legend=true&embed=true")
    body = r.json()
    with_legend = Image.open(io.BytesIO(base64.b64decode(body["image"])))
    assert with_legend.size[0] > 257  # the legend panel sits beside the image
    assert {"person", "horse"} <= _labels(body)


def test_confidence_for_one_class(client):
    r = _post(client, "?output=confidence&class=person")
    assert r.status_code == 200, r.text
    conf = np.asarray(Image.open(io.BytesIO(r.content)))
    assert conf.dtype == np.uint8 and conf.shape == (257, 257)
    mask = np.asarray(Image.open(io.BytesIO(_post(client, "?output=mask").content)))
    assert conf[mask == PERSON].mean() > 180 and conf[mask == HORSE].mean() < 60
    by_index = _post(client, f"?output=confidence&class={PERSON}")
    assert by_index.status_code == 200 and by_index.content == r.content


def test_confidence_of_a_large_photo_comes_back_at_full_size(client):
    """The maps are computed in bounded memory, then the one class is brought to full size."""
    big = Image.open(GOLDEN_IMAGE).resize((2400, 1800), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=85)
    r = _post(client, "?output=confidence&class=horse", data=buf.getvalue())
    assert r.status_code == 200, r.text
    assert r.headers["x-seglite-size"] == "2400x1800"
    conf = Image.open(io.BytesIO(r.content))
    assert conf.size == (2400, 1800)
    small = np.asarray(conf.resize((257, 257), Image.Resampling.BILINEAR)).astype(float)
    mask = np.asarray(Image.open(io.BytesIO(_post(client, "?output=mask").content)))
    assert small[mask == HORSE].mean() > 150 and small[mask == PERSON].mean() < 100


def test_accurate_mode(client):
    r = _post(client, "?accurate=true")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accurate"] is True and body["timings_ms"]["invocations"] > 1
    assert {"person", "horse"} <= _labels(body)


def test_second_model_and_argmax_limits(client):
    r = _post(client, "?model=coral-pascal")
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "coral-pascal" and {"person", "horse"} <= _labels(r.json())
    r = _post(client, "?model=coral-pascal&output=confidence&class=person")
    assert r.status_code == 422 and "ArgMax" in r.json()["detail"]


def test_concurrent_requests_give_identical_masks(client):
    """Interpreters are never shared between threads: 24 requests, 8 at a time, one answer."""
    with ThreadPoolExecutor(8) as ex:
        answers = list(ex.map(lambda _: _post(client, "?output=mask"), range(24)))
    assert {r.status_code for r in answers} == {200}
    assert len({r.content for r in answers}) == 1


def test_models_health_ready(client):
    r = client.get("/v1/models")
    assert r.status_code == 200
    body = r.json()
    assert body["default"] == "deeplabv3"
    assert [m["name"] for m in body["models"]] == ["deeplabv3", "coral-pascal"]
    starter = body["models"][0]
    assert starter["default"] and starter["confidence"] and starter["classes"] == 21
    assert starter["labels"][PERSON] == "person" and len(starter["colors"]) == 21
    assert re.fullmatch(r"#[0-9a-f]{6}", starter["colors"][PERSON])
    assert starter["accurate_scales"] == body["accurate_scales"] == [1.5, 2.0]  # the default
    assert body["models"][1]["output"] == "argmax" and not body["models"][1]["confidence"]
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert ready.json()["capacity"] == 2 + 64


def test_openapi_documents_the_api(client):
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/v1/segment"]["post"]
    assert {"multipart/form-data", "image/*"} <= set(op["requestBody"]["content"])
    params = {p["name"] for p in op["parameters"]}
    assert {"model", "output", "class", "alpha", "accurate", "embed"} <= params
    assert {"200", "400", "413", "415", "422", "503"} <= set(op["responses"])
    assert {"/v1/models", "/healthz", "/readyz"} <= set(spec["paths"])
    assert "SegmentResponse" in spec["components"]["schemas"]
    assert client.get("/docs").status_code == 200


def test_page_and_static_files_need_no_cdn(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    page = r.text
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert {"/static/app.js", "/static/style.css"} <= set(assets)
    external = re.compile(
        r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|url\(\s*["']?(?:https?:)?//|(?:fetch|import)\s*\(\s*["'](?:https?:)?//"""
    )
    for text in [page] + [client.get(a).text for a in assets]:
        assert not external.search(text)
    for a in assets:
        assert client.get(a).status_code == 200


# -- hostile input -----------------------------------------------------------------------------


def _png(width: int, height: int, *, rows: int | None = None) -> bytes:
    """A 1-bit greyscale PNG written by hand, so a huge one costs nothing to make.

    ``rows``: how many rows of (zero) pixel data to include; all by default.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\0" * (1 + (width + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    n = height if rows is None else rows
    block = row * 256
    parts = [comp.compress(block) for _ in range(n // 256)]
    parts += [comp.compress(row * (n % 256)), comp.flush()]
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts))
        + chunk(b"IEND", b"")
    )  # fmt: skip


def _jpeg_claiming(width: int, height: int) -> bytes:
    """The golden JPEG with its frame header edited to claim another size."""
    data = bytearray(GOOD)
    i = 2
    while i < len(data):
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            data[i + 5 : i + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        i += 2 + length
    raise AssertionError("no SOF marker in the golden JPEG")


@pytest.fixture(scope="module")
def bomb() -> bytes:
    data = _png(30000, 30000)  # 900 megapixels, mode '1': ~110 KB on disk
    assert len(data) < 200_000
    assert struct.unpack(">II", data[16:24]) == (30000, 30000)  # IHDR width, height
    return data


def _chunks(total: int) -> Iterator[bytes]:
    for _ in range(total // 65536 + 1):
        yield b"\xff" * 65536


def _multipart(data: bytes, ctype: str = "image/jpeg", **fields):
    return {"files": {"file": ("x", data, ctype)}, "data": fields}


GOOD_PNG = viz.png_bytes(Image.open(GOLDEN_IMAGE))
FIELDS_ONLY = b'--b\r\nContent-Disposition: form-data; name="output"\r\n\r\njson\r\n--b--\r\n'

# (expected status, id, how to send): query, body and Content-Type, or httpx arguments.
HOSTILE: list[tuple[int, str, dict]] = [
    (400, "empty-body", {"data": b""}),
    (400, "empty-body-no-type", {"data": b"", "ctype": ""}),
    (400, "empty-multipart-file", {"kw": _multipart(b"")}),
    (400, "truncated-jpeg", {"data": GOOD[: len(GOOD) // 2]}),
    (400, "truncated-jpeg-multipart", {"kw": _multipart(GOOD[:3000])}),
    (400, "jpeg-header-only", {"data": GOOD[:200]}),
    (400, "truncated-png", {"data": GOOD_PNG[: len(GOOD_PNG) // 2], "ctype": "image/png"}),
    (415, "random-bytes", {"data": os.urandom(4096)}),
    (415, "html-as-png", {"data": b"<html><body>hi</body></html>", "ctype": "image/png"}),
    (415, "svg", {"data": b"<svg xmlns='http://www.w3.org/2000/svg'/>", "ctype": "image/svg+xml"}),
    (400, "zero-width-png", {"data": _png(0, 10), "ctype": "image/png"}),
    (400, "malformed-multipart", {"data": b"--x\r\nnot multipart", "ctype": "multipart/form-data"}),
    (415, "text-plain", {"data": b"hello", "ctype": "text/plain"}),
    (415, "json", {"data": b'{"image": 1}', "ctype": "application/json"}),
    (415, "urlencoded", {"data": b"file=abc", "ctype": "application/x-www-form-urlencoded"}),
    (415, "multipart-text-part", {"kw": _multipart(b"just text", "text/plain")}),
    (415, "multipart-pdf-part", {"kw": _multipart(b"%PDF-1.4", "application/pdf")}),
    (413, "huge-declared-length", {"data": GOOD, "headers": {"content-length": str(10**12)}}),
    (413, "body-over-limit", {"data": b"\xff" * (LIMIT + 1)}),
    (413, "chunked-over-limit", {"stream": True}),
    (413, "multipart-over-limit", {"kw": _multipart(b"\xff" * (LIMIT + 200_000))}),
    (413, "png-bomb", {"bomb": "raw"}),
    (413, "png-bomb-multipart", {"bomb": "multipart"}),
    (413, "jpeg-claiming-4-gigapixels", {"data": _jpeg_claiming(65000, 65000)}),
    (413, "png-header-400-megapixels", {"data": _png(20000, 20000, rows=1), "ctype": "image/png"}),
    (422, "bad-output", {"query": "?output=xml"}),
    (422, "alpha-too-big", {"query": "?output=overlay&alpha=2"}),
    (422, "alpha-nan", {"query": "?output=overlay&alpha=nan"}),
    (422, "unknown-model", {"query": "?model=nope"}),
    (422, "confidence-without-class", {"query": "?output=confidence"}),
    (422, "unknown-class", {"query": "?output=confidence&class=unicorn"}),
    (422, "class-out-of-range", {"query": "?output=confidence&class=21"}),
    (422, "class-without-confidence", {"query": "?output=mask&class=person"}),
    (422, "unknown-option", {"query": "?outptu=mask"}),
    (422, "option-twice", {"query": "?output=json&output=mask"}),
    (422, "bad-boolean", {"query": "?accurate=maybe"}),
    (422, "bad-form-option", {"kw": _multipart(GOOD, alpha="-1")}),
    (
        422,
        "multipart-without-file",
        {"data": FIELDS_ONLY, "ctype": "multipart/form-data; boundary=b"},
    ),
    (
        422,
        "multipart-file-in-other-field",
        {"kw": {"files": {"image": ("x.jpg", GOOD, "image/jpeg")}}},
    ),
    (
        422,
        "file-as-text-field",
        {"kw": {"data": {"file": "not a file"}, "files": {"f2": ("", b"")}}},
    ),
    (405, "get-instead-of-post", {"method": "GET"}),
]


def test_decompression_bomb_is_refused_from_its_header(client, bomb):
    """Refused before decoding: the process's peak memory does not grow by the bomb's ~1 GB.

    (Runs before the other hostile cases, so that an earlier bomb cannot have set the peak.)
    """
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    for _ in range(3):
        r = _post(client, data=bomb, ctype="image/png")
        assert r.status_code == 413 and "900,000,000 pixels" in r.json()["detail"]
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200, f"peak memory grew by {grown_mb:.0f} MB"


def test_at_least_thirty_hostile_cases():
    assert len(HOSTILE) >= 30


@pytest.mark.parametrize(
    "status,case", [(s, c) for s, _, c in HOSTILE], ids=[n for _, n, _ in HOSTILE]
)
def test_hostile_request_gets_4xx_and_service_keeps_serving(client, bomb, status, case):
    if case.get("method") == "GET":
        r = client.get("/v1/segment")
    elif "kw" in case:
        r = client.post(f"/v1/segment{case.get('query', '')}", **case["kw"])
    elif "bomb" in case:
        if case["bomb"] == "raw":
            r = _post(client, data=bomb, ctype="image/png")
        else:
            r = client.post("/v1/segment", **_multipart(bomb, "image/png"))
    elif case.get("stream"):
        r = client.post(
            "/v1/segment", content=_chunks(LIMIT + 1), headers={"content-type": "image/jpeg"}
        )
        assert "content-length" not in r.request.headers
    else:
        r = _post(
            client,
            case.get("query", ""),
            data=case.get("data", GOOD),
            ctype=case.get("ctype", "image/jpeg"),
            headers=case.get("headers"),
        )
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "detail"} and isinstance(body["detail"], str)
    assert body["detail"] and "Traceback" not in r.text
    # ...and the service still answers a good request.
    ok = _post(client)
    assert ok.status_code == 200 and {"person", "horse"} <= _labels(ok.json())


# -- concurrency: the event loop stays free, the queue is bounded ------------------------------


def test_event_loop_free_while_workers_busy_and_full_queue_gets_503(monkeypatch):
    """One worker, one queue place: a third request is refused at once with 503."""
    gate = threading.Event()
    entered = threading.Semaphore(0)
    real_render = render_mod.render

    def slow_render(*args, **kwargs):
        entered.release()
        assert gate.wait(30)
        return real_render(*args, **kwargs)

    monkeypatch.setattr(render_mod, "render", slow_render)
    app = create_app(ServeConfig(models=("deeplabv3",), workers=1, queue=1))
    with TestClient(app, raise_server_exceptions=False) as c, ThreadPoolExecutor(2) as ex:
        first = ex.submit(_post, c)
        assert entered.acquire(timeout=10)  # the worker thread is inside the request
        second = ex.submit(_post, c)
        deadline = time.monotonic() + 10
        while c.get("/readyz").json()["in_progress"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        t0 = time.perf_counter()
        health = c.get("/healthz")
        ready = c.get("/readyz").json()
        assert health.status_code == 200 and time.perf_counter() - t0 < 1.0
        assert ready["running"] == 1 and ready["in_progress"] == 2
        third = _post(c)
        assert third.status_code == 503 and third.json()["error"] == "overloaded"
        assert third.headers["retry-after"] == "1"
        gate.set()
        assert first.result(30).status_code == 200
        assert second.result(30).status_code == 200
        assert c.get("/readyz").json()["rejected"] == 1
    assert app.state.service.draining  # the lifespan closed the pools


def test_slow_upload_gets_408_and_frees_its_place():
    """A client trickling its body cannot hold a queue place for ever (slowloris)."""
    import asyncio

    app = create_app(ServeConfig(models=("deeplabv3",), workers=1, queue=0, read_timeout=0.3))

    async def trickle():
        yield GOOD[:100]
        await asyncio.sleep(5)
        yield GOOD[100:]

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            headers = {"content-type": "image/jpeg"}
            t0 = time.perf_counter()
            slow = await c.post("/v1/segment", content=trickle(), headers=headers)
            assert time.perf_counter() - t0 < 3
            assert slow.status_code == 408 and slow.json()["error"] == "timeout"
            ok = await c.post("/v1/segment", content=GOOD, headers=headers)
            assert ok.status_code == 200  # the only place (workers 1, queue 0) was given back

    try:
        asyncio.run(scenario())
    finally:
        app.state.service.close()


# -- the command: startup errors, graceful shutdown on a real server ---------------------------


def test_serve_command_rejects_a_bad_model_in_one_line(capsys):
    assert main(["serve", "--model", "/nonexistent/model.tflite", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seglite: error:") and "does not exist" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["serve", "--workers", "0"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(proc: subprocess.Popen, base: str, log) -> None:
    """Until the `seglite serve` subprocess answers /readyz with 200 (60 s at most)."""
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log.seek(0) or log.read()
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)


@contextlib.contextmanager
def _served(tmp_path, *options: str) -> Iterator[tuple[subprocess.Popen, str, int]]:
    """A `seglite serve` subprocess on a free loopback port, ready; killed afterwards."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "seglite", "serve", "--port", str(port), "--log-level", "warning",
         *options],
        env={**os.environ, "SEGLITE_MODEL_DIR": str(MODEL_DIR)}, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        _wait_ready(proc, base, log)
        yield proc, base, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def test_slow_senders_do_not_lock_out_whole_uploads(tmp_path):
    """20 clients that announce a body and never send it: a normal request is still served
    within 2 s, /readyz counts them as uploads, and each is cut off at the read timeout."""
    socks = []
    options = ("--workers", "1", "--queue", "0", "--read-timeout", "3")
    with _served(tmp_path, *options) as (proc, base, port):
        try:
            for _ in range(20):
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(b"POST /v1/segment HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
                          b"Content-Length: 100000\r\n\r\n")  # fmt: skip
                socks.append(s)
            deadline = time.monotonic() + 20
            while httpx.get(f"{base}/readyz").json()["uploading"] < 20:
                assert time.monotonic() < deadline, (
                    "the slow senders were not all admitted as uploads"
                )
                time.sleep(0.05)
            t0 = time.monotonic()
            r = httpx.post(
                f"{base}/v1/segment", content=GOOD, headers={"content-type": "image/jpeg"}
            )
            assert r.status_code == 200 and time.monotonic() - t0 < 2, r.text
            ready = httpx.get(f"{base}/readyz").json()
            assert ready["status"] == "ready" and ready["in_progress"] == 0
            # bound to loopback, `seglite serve` answers loopback host names only (DNS rebinding)
            assert httpx.get(f"{base}/healthz", headers={"host": "evil.example"}).status_code == 400
            time.sleep(3.5)  # the read timeout cuts every slow sender off with a 408
            answers = [s.recv(200) for s in socks]
            assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[:2]
            assert httpx.get(f"{base}/readyz").json()["uploading"] == 0
        finally:
            for s in socks:
                s.close()


def test_graceful_shutdown_finishes_the_request_in_flight(tmp_path):
    """SIGTERM while an upload is half sent: the listener closes, the request still succeeds."""
    with _served(tmp_path, "--workers", "1", "--queue", "0") as (proc, base, _):
        go = threading.Event()

        def slow_body() -> Iterator[bytes]:
            yield GOOD[:1000]
            assert go.wait(30)
            yield GOOD[1000:]

        with ThreadPoolExecutor(1) as ex:
            inflight = ex.submit(
                httpx.post,
                f"{base}/v1/segment",
                content=slow_body(),
                headers={"content-type": "image/jpeg"},
                timeout=30,
            )
            while httpx.get(f"{base}/readyz").json()["uploading"] < 1:
                time.sleep(0.02)
            # The half-sent upload holds no inference place: a whole one is served meanwhile,
            # even with one worker and no queue.
            other = httpx.post(
                f"{base}/v1/segment", content=GOOD, headers={"content-type": "image/jpeg"}
            )
            assert other.status_code == 200, (other.text, other.headers)

            proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            while True:  # new connections are refused once shutdown begins
                try:
                    httpx.get(f"{base}/healthz", timeout=1)
                except httpx.TransportError:
                    break
                assert time.monotonic() < deadline, "server kept accepting connections"
                time.sleep(0.05)
            assert proc.poll() is None  # ...but it waits for the request in flight
            go.set()
            r = inflight.result(30)
        assert r.status_code == 200 and {"person", "horse"} <= _labels(r.json())
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)


def test_request_heads_sent_a_byte_at_a_time_are_cut_off(tmp_path):
    """Slowloris: clients that trickle (or never send) their request headers get a 408 and
    are disconnected at --header-timeout, while a normal request is served meanwhile; a
    kept-alive connection gets the same deadline for its next request head."""
    socks = []
    with _served(tmp_path, "--workers", "1", "--header-timeout", "1.5") as (_, base, port):
        try:
            silent = socket.create_connection(("127.0.0.1", port))
            trickle = socket.create_connection(("127.0.0.1", port))
            socks += [silent, trickle]
            t0 = time.monotonic()
            for byte in b"GET /healthz HTTP/1.1\r\nHost: 127":  # never finished
                trickle.sendall(bytes([byte]))
                time.sleep(0.02)
            r = httpx.post(
                f"{base}/v1/segment", content=GOOD, headers={"content-type": "image/jpeg"}
            )
            assert r.status_code == 200
            for s in (silent, trickle):
                s.settimeout(5)
                answer = s.recv(200)
                assert answer.startswith(b"HTTP/1.1 408"), answer
                assert s.recv(200) == b""  # closed
            assert time.monotonic() - t0 < 4
            # kept alive: one full request, then the next head never completes
            kept = socket.create_connection(("127.0.0.1", port))
            socks.append(kept)
            kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            kept.settimeout(5)
            answer = b""
            while not answer.endswith(b"}"):  # the whole response: head, then the JSON body
                answer += kept.recv(500)
            assert answer.startswith(b"HTTP/1.1 200")
            kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: 12")
            assert kept.recv(200).startswith(b"HTTP/1.1 408")
            assert httpx.get(f"{base}/healthz").status_code == 200
        finally:
            for s in socks:
                s.close()


def test_processes_share_the_port_and_stop_together(tmp_path):
    """--processes 2: two spawned server processes answer on one port, a burst of 16
    keep-alive clients is spread over both (each process accepts some of the
    connections, not the first to wake all of them), and SIGTERM to the parent stops
    both."""
    with _served(tmp_path, "--processes", "2", "--workers", "1") as (proc, base, port):

        def servers() -> list[int]:
            children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            return [int(c) for c in children
                    if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]  # fmt: skip

        def open_sockets(pid: int) -> int:
            fds = Path(f"/proc/{pid}/fd").iterdir()
            return sum(1 for fd in fds if os.readlink(fd).startswith("socket:"))

        def listening() -> int:  # each process listens once its models are loaded
            rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
            return sum(1 for r in rows
                       if r.split()[3] == "0A" and int(r.split()[1].rsplit(":", 1)[1], 16) == port)  # fmt: skip

        deadline = time.monotonic() + 60
        while len(servers()) < 2 or listening() < 2:
            assert time.monotonic() < deadline, "the second process did not start"
            time.sleep(0.2)
        assert httpx.get(f"{base}/readyz").status_code == 200
        time.sleep(1.0)  # the /readyz connection above is closed by now
        pids = servers()
        assert len(pids) == 2
        before = {p: open_sockets(p) for p in pids}

        async def burst() -> tuple[list[int], dict[int, int]]:
            limits = httpx.Limits(max_connections=16, max_keepalive_connections=16)
            async with httpx.AsyncClient(timeout=60, limits=limits) as client:
                rs = await asyncio.gather(*[
                    client.post(f"{base}/v1/segment?output=mask", content=GOOD,
                                headers={"content-type": "image/jpeg"}) for _ in range(16)
                ])  # fmt: skip
                held = {p: open_sockets(p) - before[p] for p in pids}  # still kept alive
            return [r.status_code for r in rs], held

        statuses, held = asyncio.run(burst())
        assert statuses == [200] * 16
        # 16 connections hashed over two sockets: all on one has odds 2 in 65,536
        assert all(n >= 1 for n in held.values()), held
        assert sum(held.values()) <= 16, held
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
        assert not any(Path(f"/proc/{p}").exists() for p in pids)
