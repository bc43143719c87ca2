"""Images per second of a folder run: 1 job, N jobs (process pool) and Ray Data, in one run.

The modes run interleaved (one of each per repeat, order rotated) so that load from other
users of a shared machine hits them alike; the table shows the median over repeats.

- wall img/s: images / wall time of the whole call, start-up included (what a user waits);
- steady img/s: the middle 80% of the images / the time they took (start-up excluded:
  spawning processes, Ray actors, loading models).

``--inline`` adds the same runs with decoding inline instead of on a helper thread, to
show what the overlap buys.

The header also says how many cores this session could get before and after (all cores
spun for a second): on a machine shared with other busy sessions, Linux's autogroup
scheduler gives each session an equal share, so 2 processes may get 1 core between them.

Every mode does the same work per image (same model, 1 interpreter thread per process or
actor, same outputs) through the same function, ``seglite.batch.pipeline``.

    python benchmarks/throughput.py                      # CamVid train (367 images)
    python benchmarks/throughput.py --repeats 3 --json throughput.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGES = REPO.parent / "shared" / "data" / "camvid" / "train"
INLINE = ", inline decode"


def measure(mode: str, items, spec, outputs, jobs: int) -> dict:
    """One run of ``mode`` into a fresh folder: wall time and result arrival times."""
    from seglite.batch import LocalSink, run_pool, run_serial

    out = Path(tempfile.mkdtemp(prefix=f"seglite-bench-{mode}-"))
    stamps: list[float] = []
    failed = 0

    def on_outcome(o) -> None:
        nonlocal failed
        stamps.append(time.perf_counter())
        failed += o.status == "failed"

    cpu0 = _cpu()
    t0 = time.perf_counter()
    try:
        if mode == "1 job":
            run_serial(spec, items, outputs, LocalSink(out), on_outcome)
        elif mode == "1 job" + INLINE:
            run_serial(spec, items, outputs, LocalSink(out), on_outcome, overlap=False)
        elif mode == f"{jobs} jobs":
            run_pool(spec, items, outputs, out, on_outcome, jobs=jobs)
        elif mode == f"{jobs} jobs" + INLINE:
            run_pool(spec, items, outputs, out, on_outcome, jobs=jobs, overlap=False)
        else:
            from seglite.raydata import run_ray

            run_ray(spec, items, outputs, out, on_outcome, jobs=jobs)
        wall = time.perf_counter() - t0
        cpu = _cpu() - cpu0
    finally:
        shutil.rmtree(out, ignore_errors=True)
    n = len(stamps)
    lo, hi = n // 10, n - 1 - n // 10  # the middle 80%: Ray returns results in batches
    span = stamps[hi] - stamps[lo] if n > 2 else 0.0
    steady = (hi - lo) / span if span > 0 else 0.0
    return {
        "images": n,
        "failed": failed,
        "wall_s": wall,
        "startup_s": stamps[0] - t0 if stamps else wall,
        "wall_ips": n / wall,
        "steady_ips": steady,
        # CPU seconds of this process and its (joined) workers; Ray actors are not ours.
        "cpu_ms_per_image": None if mode == "ray" else cpu / max(n, 1) * 1e3,
        "cores_used": None if mode == "ray" else cpu / wall,
    }


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def cores_available(seconds: float = 1.0) -> float:
    """CPU this session gets with every core busy: on a shared Linux box with autogroup
    scheduling, each busy session gets an equal share, however many processes it runs."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_spin, args=(seconds,)) for _ in range(os.cpu_count() or 1)]
    c0, t0 = _cpu(), time.perf_counter()
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return (_cpu() - c0) / (time.perf_counter() - t0)


def _cpu() -> float:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", default=str(DEFAULT_IMAGES), help="folder of images")
    p.add_argument("--limit", type=int, default=None, help="use the first N images")
    p.add_argument("--jobs", type=int, default=2, help="processes / Ray actors (default 2)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--model", default=None)
    p.add_argument("--overlay", action="store_true", help="also write overlays")
    p.add_argument("--no-ray", action="store_true", help="skip the Ray mode")
    p.add_argument("--inline", action="store_true", help="add runs without decode overlap")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = p.parse_args(argv)

    from seglite.batch import Outputs, SegmenterSpec, walk_images
    from seglite.cli import format_table

    items = walk_images([args.images])[: args.limit]
    if len(items) < 2:
        p.error(f"{args.images}: need images")
    spec = SegmenterSpec(args.model, {"num_threads": 1})
    outputs = Outputs(overlay=args.overlay, mask=True, json=True)
    modes = ["1 job", f"{args.jobs} jobs"]
    if args.inline:
        modes += ["1 job" + INLINE, f"{args.jobs} jobs" + INLINE]
    if not args.no_ray:
        from seglite.raydata import connect

        t = time.perf_counter()
        connect(None, num_cpus=os.cpu_count())
        print(f"ray started in {time.perf_counter() - t:.1f} s (not counted)", file=sys.stderr)
        modes.append("ray")

    available = [cores_available()]
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    for r in range(args.repeats):
        order = modes[r % len(modes) :] + modes[: r % len(modes)]
        for mode in order:
            res = measure(mode, items, spec, outputs, args.jobs)
            runs[mode].append(res)
            cores = f", {res['cores_used']:.2f} cores" if res["cores_used"] is not None else ""
            print(
                f"repeat {r + 1} {mode:>7}: {res['wall_ips']:6.2f} img/s wall, "
                f"{res['steady_ips']:6.2f} steady, start-up {res['startup_s']:.1f} s{cores}, "
                f"load {os.getloadavg()[0]:.1f}",
                file=sys.stderr,
            )

    available.append(cores_available())

    def med(mode: str, key: str) -> float:
        return statistics.median(x[key] for x in runs[mode])

    def opt(mode: str, key: str, fmt: str) -> str:
        return "n/a" if runs[mode][0][key] is None else format(med(mode, key), fmt)

    base, pool = modes[0], modes[1]
    rows = []
    for mode in modes:
        rows.append(
            {
                "mode": mode,
                "wall img/s": f"{med(mode, 'wall_ips'):.2f}",
                "steady img/s": f"{med(mode, 'steady_ips'):.2f}",
                "start-up s": f"{med(mode, 'startup_s'):.1f}",
                "cores used": opt(mode, "cores_used", ".2f"),
                "CPU ms/img": opt(mode, "cpu_ms_per_image", ".1f"),
                "wall vs 1 job": f"{med(mode, 'wall_ips') / med(base, 'wall_ips'):.2f}x",
                f"wall vs {pool}": f"{med(mode, 'wall_ips') / med(pool, 'wall_ips'):.2f}x",
                f"steady vs {pool}": f"{med(mode, 'steady_ips') / med(pool, 'steady_ips'):.2f}x",
            }
        )
    print(
        f"{len(items)} images from {args.images}, {args.repeats} repeats (median), "
        f"{os.cpu_count()} CPUs, of which this session got {available[0]:.2f} before and "
        f"{available[1]:.2f} after (load average {os.getloadavg()[0]:.1f}), "
        f"1 interpreter thread per process/actor, outputs: {', '.join(outputs.files('IMG'))}"
    )
    print(format_table(rows))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "images": len(items),
                    "folder": args.images,
                    "cpus": os.cpu_count(),
                    "cores_available_before_after": available,
                    "repeats": args.repeats,
                    "jobs": args.jobs,
                    "outputs": outputs.files("IMG"),
                    "median": {
                        m: {k: med(m, k) if runs[m][0][k] is not None else None for k in runs[m][0]}
                        for m in modes
                    },
                    "runs": runs,
                },
                indent=2,
            )
        )
    if "ray" in modes:
        import ray

        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
