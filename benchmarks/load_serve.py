"""Load test for `seglite serve`, on loopback only, bounded in count and time.

Starts the server in a subprocess on 127.0.0.1, sends N requests (default 500) at a fixed
concurrency (default 16) and reports failures, p50/p90/p99 latency, throughput against the
single-thread ``Segmenter.segment()`` rate measured in the same run (before the server starts,
so the two do not compete for the CPU), and the server's resident memory: idle, after warm-up,
sampled peak, and after the load. The load generator runs on the same cores as the
server, so its own CPU per request is reported too; the default ``raw`` client writes a
request prepared once to keep-alive sockets (a fraction of httpx's CPU, ``--client httpx``).

    python benchmarks/load_serve.py [--requests 500] [--concurrency 16] [--json out.json]

Needs seglite[serve] and httpx; memory is read from /proc (Linux).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = (
    REPO.parent / "shared" / "golden" / "segmentation_input_rotation0.jpg",
    REPO / "examples" / "astronaut.jpg",
)
ANSWER_TIMEOUT_S = 60  # either client counts a request unanswered after this as failed


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants (--processes) in MB (/proc)."""

    def one(p: int) -> float:
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024 / 1e6
        except OSError:
            pass
        return 0.0

    def tree(p: int) -> list[int]:
        try:
            with open(f"/proc/{p}/task/{p}/children") as fh:
                kids = [int(c) for c in fh.read().split()]
        except OSError:
            kids = []
        return [p] + [d for k in kids for d in tree(k)]

    return sum(one(p) for p in tree(pid)) if Path(f"/proc/{pid}").exists() else float("nan")


@contextlib.contextmanager
def rss_sampled(pid: int, every: float = 0.05) -> Iterator[list[float]]:
    """Sample the process tree's RSS every ``every`` seconds while the block runs."""
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(every):
            samples.append(rss_mb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield samples
    finally:
        stop.set()
        sampler.join()


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM (a graceful stop), then SIGKILL after 30 s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def single_thread_rate(model: str, data: bytes, seconds: float, max_runs: int) -> dict:
    """Images per second of one Segmenter with one interpreter thread, in this process."""
    from seglite import Segmenter

    seg = Segmenter(model, num_threads=1)
    for _ in range(3):
        seg.segment(data)
    times = []
    t_end = time.perf_counter() + seconds
    while len(times) < max_runs and time.perf_counter() < t_end:
        t0 = time.perf_counter()
        seg.segment(data)
        times.append(time.perf_counter() - t0)
    seg.close()
    return {
        "runs": len(times),
        "rate": len(times) / sum(times),
        "mean_ms": statistics.mean(times) * 1e3,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen:
    cmd = [
        sys.executable, "-m", "seglite", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--model", args.model, "--queue", str(max(args.concurrency, 1)), "--threads", str(args.threads),
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    if getattr(args, "processes", 1) > 1:
        cmd += ["--processes", str(args.processes)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def listening(port: int) -> int:
    """Sockets listening on ``port`` on loopback (/proc/net/tcp, state 0A): one per ready
    ``--processes`` server process, each listening only once its models are loaded."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as fh:
            for line in fh.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                count += state == "0A" and int(local.rsplit(":", 1)[1], 16) == port
    return count


def wait_listening(port: int, processes: int, timeout: float) -> None:
    """Until every process listens: keep-alive clients that connect earlier all stay on
    the processes that were up, and the load would measure fewer processes than asked."""
    deadline = time.monotonic() + timeout
    while listening(port) < processes:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {listening(port)} of {processes} server processes listen")
        time.sleep(0.1)


def wait_ready(proc: subprocess.Popen, base: str, timeout: float) -> dict:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            r = httpx.get(f"{base}/readyz", timeout=2)
            if r.status_code == 200:
                return r.json()
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"server not ready within {timeout:.0f} s")


class RawConnection:
    """One keep-alive HTTP/1.1 connection that sends a request prepared once, as bytes.

    A load generator shares the CPU with the server it measures: httpx spends about a
    millisecond of Python per request building and parsing, which on a 2-core machine is
    CPU taken from the server. wrk-style tools are not installable everywhere, and the
    request here is one fixed POST, so this client is written out: it writes the bytes and
    reads the status line, the headers and a Content-Length or chunked body."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        try:
            self.writer.write(raw)
            await self.writer.drain()
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length, chunked, close = 0, False, False
            for line in head.split(b"\r\n")[1:]:
                key, _, value = line.partition(b":")
                key, value = key.strip().lower(), value.strip().lower()
                if key == b"content-length":
                    length = int(value)
                elif key == b"transfer-encoding":
                    chunked = b"chunked" in value
                elif key == b"connection":
                    close = value == b"close"
            if chunked:
                parts = []
                while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                    parts.append(await self.reader.readexactly(size + 2))
                await self.reader.readuntil(b"\r\n")
                body = b"".join(p[:-2] for p in parts)
            else:
                body = await self.reader.readexactly(length)
        except BaseException:
            self.close()
            raise
        if close:
            self.close()
        return status, body

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@contextlib.asynccontextmanager
async def senders(kind: str, base: str, data: bytes, args: argparse.Namespace):
    """(new_sender, errors): ``new_sender()`` gives one worker's ``send()``, a coroutine
    that POSTs the image once and returns (status, body); ``errors`` are the exceptions
    that count as a failed request."""
    if kind == "raw":
        host, port = base.removeprefix("http://").rsplit(":", 1)
        raw = (
            f"POST /v1/segment?output={args.output} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: image/jpeg\r\nContent-Length: {len(data)}\r\n\r\n"
        ).encode() + data
        conns: list[RawConnection] = []

        def new_raw():
            conn = RawConnection(host, int(port))
            conns.append(conn)
            return lambda: asyncio.wait_for(conn.request(raw), timeout=ANSWER_TIMEOUT_S)

        try:
            yield new_raw, (
                OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError
            )  # fmt: skip
        finally:
            for c in conns:
                c.close()
        return
    import httpx

    url = f"{base}/v1/segment?output={args.output}"
    headers = {"content-type": "image/jpeg"}
    limits = httpx.Limits(
        max_connections=args.concurrency, max_keepalive_connections=args.concurrency
    )
    async with httpx.AsyncClient(limits=limits, timeout=ANSWER_TIMEOUT_S) as client:

        async def send() -> tuple[int, bytes]:
            r = await client.post(url, content=data, headers=headers)
            return r.status_code, r.content

        yield (lambda: send), (httpx.HTTPError,)


async def load(base: str, data: bytes, args: argparse.Namespace) -> dict:
    """N requests, `concurrency` at a time; stops issuing new ones at the time limit."""
    latencies: list[float] = []
    server: list[dict] = []  # the server's own timings_ms of each answer
    errors: dict[str, int] = {}
    issued = 0
    deadline = time.monotonic() + args.max_seconds

    async with senders(args.client, base, data, args) as (new_sender, failures):

        async def worker() -> None:
            nonlocal issued
            send = new_sender()
            while issued < args.requests and time.monotonic() < deadline:
                issued += 1
                t0 = time.perf_counter()
                try:
                    status, body = await send()
                    ok, key = status == 200, f"HTTP {status}"
                except failures as exc:
                    ok, key, body = False, type(exc).__name__, b""
                if ok:
                    latencies.append(time.perf_counter() - t0)
                    if args.output == "json":
                        server.append(json.loads(body)["timings_ms"])
                else:
                    errors[key] = errors.get(key, 0) + 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        wall = time.perf_counter() - t0
    not_run = args.requests - issued
    if not_run:
        errors["not run (time limit)"] = not_run
    return {"latencies": latencies, "server": server, "errors": errors, "wall": wall}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))
    return s[k]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--model", default="deeplabv3")
    p.add_argument("--image", type=Path, default=None, help="default: the golden test image")
    p.add_argument("--output", default="json", choices=("json", "mask", "overlay"))
    p.add_argument("--workers", type=int, default=None, help="server workers (default: its own)")
    p.add_argument("--threads", type=int, default=1, help="threads per interpreter")
    p.add_argument("--processes", type=int, default=1, help="server processes (--processes)")
    p.add_argument("--max-seconds", type=float, default=180, help="stop issuing requests after")
    p.add_argument(
        "--single-seconds", type=float, default=5, help="time for the single-thread rate"
    )
    p.add_argument(
        "--client",
        default="raw",
        choices=("raw", "httpx"),
        help="raw: a request prepared once, written to keep-alive sockets (least client "
        "CPU on the machine under test); httpx: a full HTTP client",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = p.parse_args(argv)
    if not (1 <= args.requests <= 100_000 and 1 <= args.concurrency <= 256):
        p.error("--requests must be 1..100000 and --concurrency 1..256")

    image = args.image or next((i for i in DEFAULT_IMAGES if i.is_file()), None)
    if image is None or not image.is_file():
        p.error("no image found; pass --image")
    data = image.read_bytes()

    print(f"single-thread Segmenter.segment() on {image.name} ...", file=sys.stderr)
    single = single_thread_rate(args.model, data, args.single_seconds, max_runs=500)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(args, port)
    try:
        ready = wait_ready(proc, base, timeout=60)
        wait_listening(port, args.processes, timeout=60)
        rss_idle = rss_mb(proc.pid)
        import httpx

        for _ in range(2 * ready["workers"]):  # every interpreter runs once
            httpx.post(f"{base}/v1/segment", content=data, headers={"content-type": "image/jpeg"})
        rss_warm = rss_mb(proc.pid)

        print(f"{args.requests} requests, concurrency {args.concurrency} ...", file=sys.stderr)
        cpu0 = time.process_time()
        with rss_sampled(proc.pid, every=0.05) as samples:
            result = asyncio.run(load(base, data, args))
        client_cpu = time.process_time() - cpu0
        rss_after = rss_mb(proc.pid)
        served = httpx.get(f"{base}/readyz").json()
    finally:
        stop_server(proc)

    lat = result["latencies"]
    failures = sum(result["errors"].values())
    throughput = len(lat) / result["wall"] if result["wall"] else float("nan")
    report = {
        "image": f"{image.name} ({len(data)} bytes)",
        "model": args.model,
        "output": args.output,
        "cpus": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "server_processes": args.processes,
        "server_workers": served["workers"],
        "server_threads": args.threads,
        "client": args.client,
        "requests": args.requests,
        "concurrency": args.concurrency,
        "ok": len(lat),
        "failures": failures,
        "errors": result["errors"],
        "wall_s": round(result["wall"], 2),
        "throughput_rps": round(throughput, 1),
        "latency_p50_ms": round(percentile(lat, 50) * 1e3, 1),
        "latency_p90_ms": round(percentile(lat, 90) * 1e3, 1),
        "latency_p99_ms": round(percentile(lat, 99) * 1e3, 1),
        "latency_max_ms": round(max(lat, default=float("nan")) * 1e3, 1),
        **{
            f"server_mean_{k}_ms": round(statistics.mean(t[k] for t in result["server"]), 1)
            for k in ("queue", "total", "server")
            if result["server"]
        },
        "single_thread_rate_ips": round(single["rate"], 1),
        "single_thread_mean_ms": round(single["mean_ms"], 1),
        "throughput_vs_single": round(throughput / single["rate"], 2),
        # the load generator's own CPU, taken from the same cores as the server's
        "client_cpu_ms_per_request": round(client_cpu / max(1, len(lat)) * 1e3, 2),
        "client_cores": round(client_cpu / result["wall"], 2) if result["wall"] else None,
        "rss_idle_mb": round(rss_idle, 1),
        "rss_warm_mb": round(rss_warm, 1),
        "rss_mid_mb": round(samples[len(samples) // 2], 1) if samples else None,
        "rss_peak_mb": round(max(samples, default=rss_after), 1),
        "rss_after_mb": round(rss_after, 1),
    }
    from seglite.cli import format_table

    rows = [
        {"metric": k, "value": json.dumps(v) if isinstance(v, dict) else v}
        for k, v in report.items()
    ]
    print(format_table(rows, ["metric", "value"]))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
