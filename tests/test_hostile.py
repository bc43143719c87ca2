"""Hostile input: every kind gets its exact error class (or status) in one line, nothing
else is lost, and nothing is written where it should not be. All generated here, no network.
"""

from __future__ import annotations

import io
import json
import threading
import time
import tracemalloc
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLES, photo_folder
from PIL import Image

from seglite.cli import main
from seglite.errors import (
    DownloadError,
    ImageError,
    ImageFormatError,
    ImageTooLargeError,
    ModelError,
    OptionError,
)
from seglite.image import load_image


def _encoded(fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((16, 16, 3), 120, np.uint8)).save(buf, fmt, **kw)
    return buf.getvalue()


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n(x) print showpage\n"
REFUSED = {
    "eps": EPS,
    "eps-binary-header": b"\xc5\xd0\xd3\xc6" + b"\x00" * 28,
    "pdf": b"%PDF-1.4\n1 0 obj<<>>endobj\n",
    "jpeg2000": b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x00" * 64,
    "jpeg2000-codestream": b"\xff\x4f\xff\x51" + b"\x00" * 64,
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    "psd": b"8BPS\x00\x01" + b"\x00" * 64,
    "ico": _encoded("ICO"),
    "tga": _encoded("TGA"),
    "text": b"hello, I am not an image",
    "html": b"<html><body>hi</body></html>",
}
CORRUPT = {
    "png-header-only": b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,
    "jpeg-truncated": _encoded("JPEG")[:200],
    "gif-truncated": b"GIF89a" + b"\x00" * 10,
    "avif-truncated": _encoded("AVIF")[:60],
    "webp-truncated": _encoded("WEBP")[:30],
    "bmp-truncated": _encoded("BMP")[:40],
    "tiff-truncated": _encoded("TIFF")[:20],
    "zeros": b"\x00" * 100,
}


@pytest.mark.parametrize("name", REFUSED)
def test_formats_outside_the_allowlist_are_refused_unparsed(name):
    with pytest.raises(ImageFormatError) as exc:
        load_image(REFUSED[name])
    assert "\n" not in str(exc.value) and "seglite reads" in str(exc.value)
    assert "JPEG, PNG, WEBP" in str(exc.value)


@pytest.mark.parametrize("name", CORRUPT)
def test_broken_files_of_accepted_formats_are_image_errors(name):
    with pytest.raises(ImageError) as exc:
        load_image(CORRUPT[name])
    assert "\n" not in str(exc.value)
    if name != "zeros":
        assert not isinstance(exc.value, ImageFormatError), exc.value


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "PPM", "AVIF"])
def test_every_accepted_format_decodes(fmt):
    assert load_image(_encoded(fmt)).size == (16, 16)


def test_importing_seglite_leaves_pillows_bomb_guard_alone():
    import PIL.Image

    import seglite.image  # noqa: F401

    assert PIL.Image.MAX_IMAGE_PIXELS == 89_478_485  # Pillow's own default, for other code


def test_eps_in_a_folder_is_one_line_and_the_rest_is_done(tmp_path, capsys):
    photo_folder(tmp_path / "in", 2)
    (tmp_path / "in" / "evil.jpg").write_bytes(EPS)  # a PostScript file named .jpg
    rc = main(["segment", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--mask", "-q"])
    err = capsys.readouterr().err
    assert rc == 1 and "PostScript/EPS files are not accepted" in err and "Traceback" not in err
    assert len(list((tmp_path / "out").glob("*.mask.png"))) == 2


# -- paths -------------------------------------------------------------------------------------


def test_files_from_entries_with_dotdot_stay_inside_out(tmp_path, capsys):
    deep = tmp_path / "a" / "b"
    photo_folder(deep, 1)
    src = next(deep.iterdir())
    listing = tmp_path / "list.txt"
    listing.write_text(f"{deep}/../b/../../a/b/{src.name}\n")
    out = tmp_path / "a" / "out"
    assert main(["segment", "--files-from", str(listing), "--out", str(out), "--mask", "-q"]) == 0
    written = [p for p in tmp_path.rglob("*.mask.png")]
    assert written and all(out in p.parents for p in written), written


def test_sinks_refuse_names_that_climb_out(tmp_path):
    from seglite.batch import LocalSink

    sink = LocalSink(tmp_path / "out")
    for bad in ("../x.png", "a/../../x.png", "/etc/x.png"):
        with pytest.raises(OptionError, match="would leave the output folder"):
            sink.write(bad, b"x")
    assert not (tmp_path / "x.png").exists() and not Path("/etc/x.png").exists()


# -- model files -------------------------------------------------------------------------------


def _starter_bytes() -> bytes:
    from seglite.zoo import resolve

    return resolve("deeplabv3").path.read_bytes()


def _with_label_zip(zip_bytes: bytes) -> bytes:
    """The starter with metadata naming labelmap.txt, its zip replaced by ``zip_bytes``."""
    from seglite.metadata import SegmentationMetadata, write_metadata

    meta = SegmentationMetadata(
        name="x", input_mean=(127.5,), input_std=(127.5,), labels=[f"c{i}" for i in range(21)]
    )
    data = write_metadata(_starter_bytes(), meta)
    return data[: data.rfind(b"PK\x03\x04")] + zip_bytes


def _zip(name: str, payload: bytes, method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        zf.writestr(name, payload)
    return buf.getvalue()


def test_label_zip_bomb_is_refused_fast_and_small(tmp_path):
    from seglite.metadata import read_metadata

    bomb = _with_label_zip(_zip("labelmap.txt", b"a\n" * (200 << 20)))  # 400 MB inflated
    assert len(bomb) < 4_000_000
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(ModelError, match="refusing to inflate|inflates past"):
        read_metadata(bomb)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seconds < 2 and peak < 64 << 20, (seconds, peak)


def test_label_zip_whose_directory_lies_is_still_bounded():
    from seglite.metadata import read_metadata

    good = _zip("labelmap.txt", b"a\n" * (4 << 20))
    # Patch both size fields of the central directory to claim 100 bytes.
    cd = good.rfind(b"PK\x01\x02")
    lying = bytearray(good)
    lying[cd + 24 : cd + 28] = (100).to_bytes(4, "little")
    with pytest.raises(ModelError, match="inflates past|cannot be read"):
        read_metadata(_with_label_zip(bytes(lying)))


@pytest.mark.parametrize(
    "payload",
    [
        b"PK\x03\x04garbage" + b"\x00" * 30,  # no central directory
        _zip("other.txt", b"a\nb\n"),  # names the wrong file
        _zip("labelmap.txt", b"\xff\xfe\x00bad utf8", zipfile.ZIP_STORED),
    ],
    ids=["no-directory", "missing-member", "not-utf8"],
)
def test_corrupt_label_zips_are_one_line_model_errors(payload):
    from seglite.metadata import read_metadata

    with pytest.raises(ModelError) as exc:
        read_metadata(_with_label_zip(payload))
    assert "\n" not in str(exc.value)


def test_unknown_compression_method_is_a_model_error():
    from seglite.metadata import read_metadata

    data = bytearray(_zip("labelmap.txt", b"a\nb\n", zipfile.ZIP_STORED))
    data[8:10] = (99).to_bytes(2, "little")  # local header: method 99
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 10 : cd + 12] = (99).to_bytes(2, "little")
    with pytest.raises(ModelError, match="cannot be read"):
        read_metadata(_with_label_zip(bytes(data)))


# -- downloads ---------------------------------------------------------------------------------

PAYLOAD = b"m" * 50_000
SHA = __import__("hashlib").sha256(PAYLOAD).hexdigest()


class _Hostile(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        if self.path == "/lies-about-length":
            self.send_response(200)
            self.send_header("Content-Length", str(10 << 30))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path == "/endless":  # no length, keeps sending
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(10_000):
                    self.wfile.write(b"x" * 65536)
            except OSError:
                pass
        elif self.path == "/trickle":
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
        elif self.path == "/to-ftp":
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1/model.tflite")
            self.end_headers()
        elif self.path == "/to-file":
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.end_headers()
        else:
            self.send_error(404)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def hostile_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_known_size_beats_the_servers_content_length(hostile_server, tmp_path):
    from seglite.download import download

    with pytest.raises(DownloadError, match="announces 10737418240 bytes, expected 50000"):
        download(f"{hostile_server}/lies-about-length", tmp_path / "m", SHA, size=50_000)
    assert _left(tmp_path) == []


def test_endless_body_stops_at_the_known_size(hostile_server, tmp_path):
    from seglite.download import download

    with pytest.raises(DownloadError, match="more than 50000 bytes"):
        download(f"{hostile_server}/endless", tmp_path / "m", SHA, size=50_000, progress=False)
    assert _left(tmp_path) == []


def test_a_trickle_hits_the_total_deadline(hostile_server, tmp_path):
    from seglite.download import download

    t0 = time.monotonic()
    with pytest.raises(DownloadError, match="not finished within 1 s"):
        download(f"{hostile_server}/trickle", tmp_path / "m", SHA, timeout=5, deadline=1)
    assert time.monotonic() - t0 < 4 and _left(tmp_path) == []


@pytest.mark.parametrize("route", ["/to-ftp", "/to-file"])
def test_redirects_leave_http_only(hostile_server, tmp_path, route):
    from seglite.download import download

    with pytest.raises(
        DownloadError, match="refused a redirect to a ftp://|file:///etc/passwd. is not allowed"
    ):
        download(f"{hostile_server}{route}", tmp_path / "m", SHA, progress=False)
    assert _left(tmp_path) == []


def test_stale_partial_files_are_cleaned_fresh_ones_kept(tmp_path):
    import os

    from seglite.download import download

    stale, fresh = tmp_path / ".m.tflite.abc.part", tmp_path / ".m.tflite.def.part"
    stale.write_bytes(b"old")
    fresh.write_bytes(b"another process")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    src = tmp_path / "src.bin"
    src.write_bytes(PAYLOAD)
    download(src.as_uri(), tmp_path / "m.tflite", SHA, progress=False)
    assert _left(tmp_path) == [".m.tflite.def.part", "m.tflite", "src.bin"]


# -- the service -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from seglite.serve.app import ServeConfig, create_app

    with TestClient(create_app(ServeConfig(models=("deeplabv3",), workers=1))) as c:
        yield c


@pytest.mark.parametrize("name", ["eps", "pdf", "jpeg2000", "svg", "ico", "text"])
def test_service_answers_415_for_refused_formats_and_keeps_serving(client, name):
    r = client.post(
        "/v1/segment", content=REFUSED[name], headers={"content-type": "application/octet-stream"}
    )
    assert r.status_code == 415, r.text
    assert r.json()["error"] == "unsupported_media_type" and "\n" not in r.json()["detail"]
    ok = client.post(
        "/v1/segment",
        content=(EXAMPLES / "chelsea.jpg").read_bytes(),
        headers={"content-type": "image/jpeg"},
    )
    assert ok.status_code == 200 and json.loads(ok.text)["classes"]


@pytest.mark.parametrize("name", ["avif-truncated", "png-header-only", "jpeg-truncated"])
def test_service_answers_400_for_broken_images(client, name):
    r = client.post("/v1/segment", content=CORRUPT[name], headers={"content-type": "image/png"})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "bad_image"


def test_pixel_bomb_png_is_refused_from_its_header(client):
    import struct
    import zlib

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    png = b"\x89PNG\r\n\x1a\n" + chunk(
        b"IHDR", struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)
    )
    png += chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")
    r = client.post("/v1/segment", content=png, headers={"content-type": "image/png"})
    assert r.status_code == 413
    with pytest.raises(ImageTooLargeError):
        load_image(png)


# -- checkpoints -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    from seglite.models import deeplab
    from seglite.models.checkpoint import save_checkpoint

    model = deeplab(version="v3", backbone="mobilenet_v2", num_classes=3, depth_multiplier=0.35)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    return save_checkpoint(model, path, {"seglite.input_size": [64, 64]})


def _tampered(src: Path, dst: Path, *, meta: dict | None = None, int8: bool = False) -> Path:
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(src), framework="pt") as f:
        metadata = dict(f.metadata())
    metadata.update(meta or {})
    tensors = load_file(str(src))
    if int8:
        tensors = {k: v.to(torch.int8) if v.is_floating_point() else v for k, v in tensors.items()}
    save_file(tensors, str(dst), metadata=metadata)
    return dst


CHECKPOINT_CASES = {
    "nested-config": ({"seglite.config": "[" * 100_000 + "]" * 100_000}, "not valid JSON"),
    "config-not-object": ({"seglite.config": "[1, 2]"}, "not a JSON object"),
    "config-unknown-backbone": (
        {"seglite.config": json.dumps({"version": "v3", "backbone": "nope", "num_classes": 3})},
        "unknown backbone .nope.",
    ),
    "stride-text": ({"seglite.eval_output_stride": '"abc"'}, "must be 8, 16 or 32"),
    "size-fraction": ({"seglite.input_size": "[0.5, 0.5]"}, "whole numbers from 16"),
    "size-huge": ({"seglite.input_size": "[100000, 100000]"}, "whole numbers from 16"),
    "huge-metadata": ({"seglite.train": '"' + "x" * (2 << 20) + '"'}, "not a checkpoint"),
}


@pytest.mark.parametrize("case", CHECKPOINT_CASES)
def test_tampered_checkpoint_metadata_is_one_line(tiny_checkpoint, tmp_path, case):
    from seglite import Segmenter

    meta, message = CHECKPOINT_CASES[case]
    path = _tampered(tiny_checkpoint, tmp_path / f"{case}.safetensors", meta=meta)
    with pytest.raises(ModelError, match=message) as exc:
        Segmenter(path)
    assert "\n" not in str(exc.value)


def test_int8_weights_are_not_a_checkpoint(tiny_checkpoint, tmp_path):
    from seglite.models.checkpoint import load_checkpoint

    path = _tampered(tiny_checkpoint, tmp_path / "int8.safetensors", int8=True)
    with pytest.raises(ModelError, match="torch.int8, the model needs torch.float32"):
        load_checkpoint(path)


def test_the_untampered_checkpoint_still_segments(tiny_checkpoint):
    from seglite import Segmenter

    result = Segmenter(tiny_checkpoint, num_threads=1).segment(EXAMPLES / "chelsea.jpg")
    assert result.category_mask.shape == (300, 451)


# -- exposure ----------------------------------------------------------------------------------

KEY = "k" * 24


@pytest.fixture(scope="module")
def guarded():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from seglite.serve.app import ServeConfig, create_app

    config = ServeConfig(
        models=("deeplabv3",), workers=1, api_key=KEY,
        allowed_hosts=("127.0.0.1", "localhost"), cors_origins=("https://app.example",),
    )  # fmt: skip
    with TestClient(create_app(config), base_url="http://127.0.0.1") as c:
        yield c


def _segment(c, **headers):
    return c.post(
        "/v1/segment",
        content=(EXAMPLES / "chelsea.jpg").read_bytes(),
        headers={"content-type": "image/jpeg", **headers},
    )


def test_api_key_is_required_on_the_api_only(guarded):
    assert _segment(guarded).status_code == 401
    assert _segment(guarded, **{"x-api-key": "wrong"}).status_code == 401
    assert guarded.get("/v1/models").status_code == 401
    assert _segment(guarded, **{"x-api-key": KEY}).status_code == 200
    assert _segment(guarded, authorization=f"Bearer {KEY}").status_code == 200
    for open_route in ("/", "/healthz", "/docs", "/openapi.json"):
        assert guarded.get(open_route).status_code == 200, open_route


def test_dns_rebinding_hosts_are_refused(guarded):
    r = guarded.get("/healthz", headers={"host": "evil.example"})
    assert r.status_code == 400
    assert guarded.get("/healthz", headers={"host": "localhost:8000"}).status_code == 200


def test_cors_allows_only_the_listed_origin(guarded):
    pre = {"access-control-request-method": "POST", "access-control-request-headers": "x-api-key"}
    ok = guarded.options("/v1/segment", headers={"origin": "https://app.example", **pre})
    assert ok.headers.get("access-control-allow-origin") == "https://app.example"
    bad = guarded.options("/v1/segment", headers={"origin": "https://evil.example", **pre})
    assert "access-control-allow-origin" not in bad.headers


def test_a_model_name_outside_latin1_keeps_image_responses_working(tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from seglite.metadata import SegmentationMetadata, write_metadata
    from seglite.serve.app import ServeConfig, create_app
    from seglite.zoo import resolve

    named = tmp_path / "модель-σ.tflite"  # not a zoo file (its own metadata): named by its file
    meta = SegmentationMetadata(name="x", input_mean=(127.5,), input_std=(127.5,))
    named.write_bytes(write_metadata(resolve("deeplabv3").path.read_bytes(), meta))
    with TestClient(create_app(ServeConfig(models=(str(named),), workers=1))) as c:
        r = c.post(
            "/v1/segment?output=mask",
            content=(EXAMPLES / "chelsea.jpg").read_bytes(),
            headers={"content-type": "image/jpeg"},
        )
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    from urllib.parse import unquote

    assert unquote(r.headers["x-seglite-model"]) == named.name


def test_serve_refuses_a_short_api_key(monkeypatch, capsys):
    monkeypatch.setenv("SEGLITE_TEST_KEY", "short")
    assert main(["serve", "--port", "0", "--api-key-env", "SEGLITE_TEST_KEY"]) == 2
    assert "16 characters or more" in capsys.readouterr().err
