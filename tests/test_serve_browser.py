"""The web page in a real headless Chromium against a real `seglite serve` on 127.0.0.1.

Needs Debian's chromium (/usr/bin/chromium) and the playwright Python package; Playwright's
own browser download is not used. Skips, saying why, only when one of them is missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import GOLDEN, MODEL_DIR

CHROMIUM = Path("/usr/bin/chromium")
GOLDEN_IMAGE = GOLDEN / "segmentation_input_rotation0.jpg"
SCREENSHOT_COPY = Path("/tmp/serve_screenshot.png")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # A synthetic camera, granted without a prompt, for the webcam test.
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]

if not CHROMIUM.exists():
    pytest.skip(
        "Debian chromium is missing: apt-get update && apt-get install -y chromium",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install playwright"
)
pytest.importorskip("fastapi", reason="seglite[serve] is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _server(tmp: Path) -> Iterator[str]:
    """`seglite serve` in a subprocess on a free loopback port; yields its base URL."""
    port = _free_port()
    env = {**os.environ, "SEGLITE_MODEL_DIR": str(MODEL_DIR), "HOME": str(tmp)}
    log = (tmp / "server.log").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "seglite", "serve", "--port", str(port), "--workers", "1",
         "--log-level", "warning"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                log.seek(0)
                pytest.fail(f"seglite serve exited with {proc.returncode}:\n{log.read()}")
            try:
                with urllib.request.urlopen(f"{base}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("seglite serve did not become ready within 60 s")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory) -> Iterator[tuple[object, str, list[str]]]:
    """One server, one browser, one page; HOME and caches pointed at a temporary folder."""
    tmp = tmp_path_factory.mktemp("browser")
    saved = {k: os.environ.get(k) for k in ("HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "TMPDIR")}
    for key, sub in (
        ("HOME", "home"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_CONFIG_HOME", "config"),
        ("TMPDIR", "tmp"),
    ):
        (tmp / sub).mkdir()
        os.environ[key] = str(tmp / sub)
    try:
        with _server(tmp) as base, sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                problems: list[str] = []
                page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
                page.on(
                    "console",
                    lambda msg: (
                        problems.append(f"console: {msg.text}") if msg.type == "error" else None
                    ),
                )
                page.goto(f"{base}/")
                # Waits use selectors, not wait_for_function: the page's CSP forbids eval.
                page.wait_for_selector("#model option[value='deeplabv3']", state="attached")
                yield page, base, problems
            finally:
                browser.close()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _legend(page) -> list[str]:
    return [t.strip().lower() for t in page.locator("#legend li .label").evaluate_all(
        "els => els.map(e => e.firstChild.textContent)"
    )]  # fmt: skip


def test_upload_shows_overlay_and_legend(browser_page, tmp_path):
    page, _, problems = browser_page
    page.set_input_files("#file", str(GOLDEN_IMAGE))
    page.wait_for_selector("body[data-state='done']", state="attached", timeout=30_000)
    labels = _legend(page)
    assert "person" in labels and "horse" in labels, labels

    # The overlay is drawn: the canvas shows the class colours, not just the photo.
    assert page.locator("#view").is_visible()
    size = page.evaluate(
        "[document.querySelector('#view').width, document.querySelector('#view').height]"
    )
    assert size == [257, 257]
    page.locator("#opacity").fill("100")
    assert page.locator("#opacity-value").inner_text() == "100%"
    person = page.evaluate(
        """() => {
            const c = document.querySelector('#view');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;  // pixels painted exactly in the VOC person colour #c08080
            for (let i = 0; i < d.length; i += 4)
                if (d[i] === 192 && d[i + 1] === 128 && d[i + 2] === 128) n++;
            return n / (c.width * c.height);
        }"""
    )
    assert person > 0.2, person
    page.locator("#opacity").fill("60")

    # Latency is shown, and the status names the classes.
    assert page.locator("#timings dd.main").inner_text().endswith("ms")
    assert "person" in page.locator("#status").inner_text()

    shot = tmp_path / "serve_page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    shutil.copyfile(shot, SCREENSHOT_COPY)
    assert not problems, problems


def test_bad_file_shows_the_servers_message(browser_page):
    page, _, problems = browser_page
    page.evaluate("() => { document.body.dataset.state = 'idle'; }")
    page.set_input_files(
        "#file", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a photo"}]
    )
    page.wait_for_selector("body[data-state='error']", state="attached", timeout=15_000)
    assert "not an image" in page.locator("#error").inner_text()
    problems.clear()  # the browser logs the 415 response itself as a console error


def test_webcam_frame_is_segmented(browser_page):
    page, _, problems = browser_page
    page.click("#webcam")
    page.wait_for_selector("#camera-bar", state="visible", timeout=15_000)  # after video.play()
    page.evaluate("() => { document.body.dataset.state = 'idle'; }")
    page.click("#capture")
    page.wait_for_selector("body[data-state='done']", state="attached", timeout=30_000)
    assert _legend(page), "a captured frame gives at least one class"
    assert page.locator("#video").is_hidden() and page.locator("#view").is_visible()
    assert not problems, problems


def test_api_docs_render_from_local_assets(browser_page, tmp_path):
    """/docs is Swagger UI from the package's own files: no CDN, so it works offline."""
    page, base, _ = browser_page
    outside: list[str] = []

    def watch(request) -> None:
        if not request.url.startswith((base, "data:")):
            outside.append(request.url)

    page.on("request", watch)
    try:
        page.goto(f"{base}/docs")
        page.wait_for_selector(".opblock-summary-path[data-path='/v1/segment']", timeout=20_000)
        assert "Segment an image" in page.inner_text(".swagger-ui")
        page.screenshot(path=str(tmp_path / "docs.png"))
    finally:
        page.remove_listener("request", watch)
        page.goto(f"{base}/")  # back to the app for whatever runs next
        page.wait_for_selector("#model option[value='deeplabv3']", state="attached")
    assert not outside, outside
