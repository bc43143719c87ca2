"""seglite.download against a local HTTP server: every failure leaves nothing behind.

The server runs on 127.0.0.1 in a thread; nothing here reaches another host.
"""

from __future__ import annotations

import hashlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import MODEL_DIR

from seglite.download import download, sha256_file
from seglite.errors import DownloadError

_PAYLOAD_FILE = MODEL_DIR / "deeplabv3_mnv2_dm05_pascal_quant.tflite"  # 760 KB, a real model
PAYLOAD = _PAYLOAD_FILE.read_bytes()
SHA = hashlib.sha256(PAYLOAD).hexdigest()
WRONG_SHA = "0" * 64


class _Handler(BaseHTTPRequestHandler):
    """Routes: /file, /nolength, /truncated, /truncated-nolength, /status/<code>, /slow."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.server.hits.append(self.path)
        body = PAYLOAD
        if self.path == "/file":
            self._send(body, len(body))
        elif self.path == "/nolength":
            self._send(body, None)
        elif self.path == "/truncated":  # promises the whole file, sends half, hangs up
            self._send(body[: len(body) // 2], len(body))
        elif self.path == "/truncated-nolength":
            self._send(body[: len(body) // 2], None)
        elif self.path.startswith("/status/"):
            self.send_error(int(self.path.rsplit("/", 1)[1]))
        elif self.path == "/slow":
            self.server.release.wait(10)
        else:
            self.send_error(404)

    def _send(self, body: bytes, length: int | None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.hits = []
    srv.release = threading.Event()
    srv.handle_error = lambda request, client_address: None  # client hang-ups in /slow
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{srv.server_address[1]}", hits=srv.hits)
    srv.release.set()
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def _assert_clean_failure(exc: DownloadError, url: str, folder: Path) -> None:
    message = str(exc)
    assert "\n" not in message and url in message and "SEGLITE_MODEL_DIR" in message
    assert list(folder.iterdir()) == [], "a failed download left files behind"


def test_good_download(server, tmp_path):
    dest = tmp_path / "sub" / "model.tflite"
    assert download(f"{server.url}/file", dest, SHA, progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert [p.name for p in dest.parent.iterdir()] == ["model.tflite"]
    assert dest.stat().st_mode & 0o777 == 0o644


def test_download_without_content_length_uses_size(server, tmp_path):
    dest = tmp_path / "model.tflite"
    download(f"{server.url}/nolength", dest, SHA, size=len(PAYLOAD), progress=False)
    assert sha256_file(dest) == SHA


@pytest.mark.parametrize(
    ("route", "sha", "reason"),
    [
        ("/status/404", SHA, "HTTP 404"),
        ("/status/500", SHA, "HTTP 500"),
        ("/file", WRONG_SHA, "sha256 mismatch"),
        ("/truncated", SHA, "truncated transfer"),
        ("/truncated-nolength", SHA, "truncated transfer"),
    ],
    ids=["404", "500", "checksum", "truncated", "truncated-no-length"],
)
def test_failure_leaves_nothing_and_retry_works(server, tmp_path, route, sha, reason):
    dest = tmp_path / "model.tflite"
    url = f"{server.url}{route}"
    with pytest.raises(DownloadError, match=reason) as info:
        download(url, dest, sha, size=len(PAYLOAD), progress=False)
    _assert_clean_failure(info.value, url, tmp_path)
    download(f"{server.url}/file", dest, SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    assert [p.name for p in tmp_path.iterdir()] == ["model.tflite"]


def test_failure_keeps_an_existing_file_untouched(server, tmp_path):
    dest = tmp_path / "model.tflite"
    dest.write_bytes(b"old")
    with pytest.raises(DownloadError):
        download(f"{server.url}/truncated", dest, SHA, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["model.tflite"]
    assert dest.read_bytes() == b"old"


def test_connection_refused(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago and has no listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/model.tflite"
    with pytest.raises(DownloadError, match="refused") as info:
        download(url, tmp_path / "model.tflite", SHA, progress=False, timeout=5)
    _assert_clean_failure(info.value, url, tmp_path)


def test_timeout(server, tmp_path):
    url = f"{server.url}/slow"
    with pytest.raises(DownloadError, match="timed out") as info:
        download(url, tmp_path / "model.tflite", SHA, progress=False, timeout=0.3)
    _assert_clean_failure(info.value, url, tmp_path)


def test_file_url(tmp_path):
    dest = tmp_path / "out" / "model.tflite"
    download(_PAYLOAD_FILE.as_uri(), dest, SHA, progress=False)
    assert dest.read_bytes() == PAYLOAD
    missing = (tmp_path / "nope.tflite").as_uri()
    with pytest.raises(DownloadError) as info:
        download(missing, tmp_path / "other" / "model.tflite", SHA, progress=False)
    _assert_clean_failure(info.value, missing, tmp_path / "other")


def test_bad_url(tmp_path):
    with pytest.raises(DownloadError) as info:
        download("nonsense://x/y", tmp_path / "m.tflite", SHA, progress=False)
    _assert_clean_failure(info.value, "nonsense://x/y", tmp_path)


def test_progress_bar_off_without_tty(server, tmp_path, capsys):
    download(f"{server.url}/file", tmp_path / "m.tflite", SHA, progress=True)
    assert capsys.readouterr().err == ""
