"""Server memory for one large request: how much RSS one 16 MP upload adds, per output.

Starts ``seglite serve`` on loopback (one worker), warms it with a small photo, then
sends one large JPEG (a real photo scaled to ``--megapixels``) for each output in turn,
sampling the server's resident memory every 10 ms: the peak growth over the warm
server, and what stays after the response. ``json`` (no picture back) is the baseline
the picture outputs are compared with in the same run.

    python benchmarks/serve_memory.py [--megapixels 16] [--outputs json,mask,overlay]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_serve import (  # noqa: E402
    free_port,
    rss_mb,
    rss_sampled,
    start_server,
    stop_server,
    wait_ready,
)

REPO = Path(__file__).resolve().parents[1]


def big_jpeg(megapixels: float) -> tuple[bytes, tuple[int, int]]:
    from PIL import Image

    photo = Image.open(REPO / "examples" / "astronaut.jpg").convert("RGB")
    side = (megapixels * 1e6 * 4 / 3) ** 0.5  # 4:3, as cameras take them
    size = (int(side), int(side * 3 / 4))  # at most the megapixels asked (the service's limit)
    buf = io.BytesIO()
    photo.resize(size, Image.Resampling.BICUBIC).save(buf, "JPEG", quality=90)
    return buf.getvalue(), size


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--megapixels", type=float, default=16.0)
    p.add_argument("--outputs", default="json,mask,overlay")
    p.add_argument("--model", default="deeplabv3")
    args = p.parse_args(argv)
    import httpx

    data, size = big_jpeg(args.megapixels)
    small = (REPO / "examples" / "astronaut.jpg").read_bytes()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server_args = argparse.Namespace(model=args.model, concurrency=1, threads=1, workers=1)
    proc = start_server(server_args, port)
    rows = []
    try:
        wait_ready(proc, base, timeout=60)
        headers = {"content-type": "image/jpeg"}
        for output in ("json", "mask", "overlay"):  # warm every path on a small photo
            httpx.post(f"{base}/v1/segment?output={output}", content=small, headers=headers)
        for output in [o.strip() for o in args.outputs.split(",") if o.strip()]:
            time.sleep(0.5)
            before = rss_mb(proc.pid)
            t0 = time.perf_counter()
            with rss_sampled(proc.pid, every=0.01) as samples:
                r = httpx.post(f"{base}/v1/segment?output={output}", content=data,
                               headers=headers, timeout=120)  # fmt: skip
            seconds = time.perf_counter() - t0
            time.sleep(0.5)
            after = rss_mb(proc.pid)
            rows.append((output, r.status_code, len(r.content), max(samples, default=after) - before,
                         after - before, seconds))  # fmt: skip
    finally:
        stop_server(proc)
    print(f"one {size[0]}x{size[1]} JPEG ({len(data) / 1e6:.1f} MB), model {args.model}, 1 worker")
    print(
        f"{'output':<9} {'status':>6} {'response MB':>11} {'peak +MB':>9} {'kept +MB':>9} {'s':>6}"
    )
    for output, status, n, peak, kept, s in rows:
        print(f"{output:<9} {status:>6} {n / 1e6:>11.1f} {peak:>9.0f} {kept:>9.0f} {s:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
