"""The web page's effect picker in headless Chromium: a cutout over a checkerboard, a colour
background, against a real `seglite serve` (the fixture of test_serve_browser.py)."""

from __future__ import annotations

from conftest import EXAMPLES
from test_serve_browser import browser_page  # noqa: F401  (the fixture: server, browser, page)

PIXEL = """([x, y]) => {
    const c = document.querySelector('#view');
    return Array.from(c.getContext('2d').getImageData(x, y, 1, 1).data);
}"""


def _segment(page, path) -> None:
    page.evaluate("() => { document.body.dataset.state = 'idle'; }")
    page.set_input_files("#file", str(path))
    page.wait_for_selector("body[data-state='done']", state="attached", timeout=60_000)


def test_cutout_over_a_checkerboard_and_a_colour_background(browser_page):  # noqa: F811
    page, _, problems = browser_page
    page.select_option("#effect", "cutout")
    _segment(page, EXAMPLES / "astronaut.jpg")
    assert page.evaluate("document.querySelector('#view').classList.contains('checker')")
    assert page.evaluate("[document.querySelector('#view').width, "
                         "document.querySelector('#view').height]") == [512, 512]  # fmt: skip
    assert page.evaluate(PIXEL, [10, 10])[3] == 0  # the wall: transparent
    assert page.evaluate(PIXEL, [256, 400])[3] == 255  # her suit: opaque
    assert "person" in page.locator("#legend").inner_text().lower()

    page.select_option("#effect", "color")  # re-sent with the picked colour
    page.wait_for_selector("#effect-color", state="visible")
    page.evaluate("() => { document.body.dataset.state = 'idle'; }")
    page.wait_for_selector("body[data-state='done']", state="attached", timeout=60_000)
    assert not page.evaluate("document.querySelector('#view').classList.contains('checker')")
    r, g, b, a = page.evaluate(PIXEL, [10, 10])
    assert (abs(r - 0x00) + abs(g - 0xB1) + abs(b - 0x40)) < 12 and a == 255
    page.select_option("#effect", "")
    assert not problems, problems


HASH = """() => {
    const c = document.querySelector('#view');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let h = 0;
    for (let i = 0; i < d.length; i += 97) h = (h * 31 + d[i]) >>> 0;
    return h;
}"""


def test_live_camera_over_one_websocket_keeps_its_latency_flat(browser_page):  # noqa: F811
    """Chromium's fake camera (a moving test pattern) in live mode: frames per second on
    screen, the picture follows the video, and the latency does not grow (20 s here;
    SEGLITE_LIVE_SECONDS=60 for a minute)."""
    import os
    import time

    page, _, problems = browser_page
    page.click("#webcam")
    page.wait_for_selector("#camera-bar", state="visible", timeout=15_000)
    page.check("#live")
    deadline = time.monotonic() + 60
    while int(page.get_attribute("#fps", "data-frames") or 0) < 5:  # a count, not one value
        assert time.monotonic() < deadline, page.locator("#error").inner_text()
        time.sleep(0.2)
    early = float(page.get_attribute("#fps", "data-latency"))
    seen = {page.evaluate(HASH)}
    frames0, t0 = int(page.get_attribute("#fps", "data-frames")), time.monotonic()
    seconds = float(os.environ.get("SEGLITE_LIVE_SECONDS", "20"))  # 60 for the README figure
    while time.monotonic() - t0 < seconds:
        time.sleep(2)
        seen.add(page.evaluate(HASH))
    frames = int(page.get_attribute("#fps", "data-frames")) - frames0
    late = float(page.get_attribute("#fps", "data-latency"))
    fps = float(page.get_attribute("#fps", "data-fps"))
    print(f"live: {fps} fps, median latency {early} -> {late} ms, {frames} frames in {seconds} s")
    assert "fps" in page.locator("#fps").inner_text() and fps > 0.5, fps
    assert frames >= 10, frames  # a continuous view, at the rate the server sustains
    assert len(seen) >= 5  # the drawn picture follows the moving camera image
    assert late <= 2 * early + 150, (early, late)  # no queue builds up
    page.uncheck("#live")
    page.click("#camera-close")
    assert not problems, problems
