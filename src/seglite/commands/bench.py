"""seglite bench: latency and memory of models on this machine, as TFLite's benchmark_model reports.

Options are checked here and turned into one-line errors; the measuring is in seglite.bench.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import OptionError


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "bench",
        help="measure latency and memory (init, first run, p50/p90/p99, RSS)",
        description=(
            "Measure latency and memory of one or more models the way TFLite's benchmark_model "
            "does. Several models, thread counts and backends give one table; timed runs of all "
            "of them are interleaved so a noisy machine affects every row alike."
        ),
    )
    p.add_argument("models", nargs="+", metavar="MODEL", help="zoo names or model files")
    p.add_argument(
        "--threads",
        default=None,
        metavar="N[,N...]",
        help="thread counts, e.g. 1,2,4 (default: cores, at most 4)",
    )
    p.add_argument(
        "--runs", default="50", metavar="N", help="at least N timed runs each (default 50)"
    )
    p.add_argument("--warmup", default="1", metavar="N", help="warm-up runs (default 1)")
    p.add_argument(
        "--warmup-secs",
        default="0.5",
        metavar="S",
        help="warm up for at least S seconds (default 0.5)",
    )
    p.add_argument(
        "--min-secs",
        default="1",
        metavar="S",
        help="time each configuration for at least S seconds (default 1)",
    )
    p.add_argument(
        "--input",
        default=None,
        metavar="IMAGE|random",
        help="image file, or 'random' noise (default: a 640x480 JPEG of examples/astronaut.jpg)",
    )
    p.add_argument(
        "--stage",
        default="invoke",
        help="invoke: backend.run on a prepared input (default); "
        "end2end: Segmenter.segment from encoded bytes to the full-size mask",
    )
    p.add_argument(
        "--backend",
        default="auto",
        metavar="NAME[,NAME...]",
        help="litert, onnx, torch (default: from each model file's suffix)",
    )
    p.add_argument("--json", metavar="FILE", default=None, help="write every sample and setting")
    p.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    p.add_argument(
        "--plot", metavar="FILE.png", default=None, help="PNG of latency against threads"
    )
    p.add_argument(
        "--no-isolate",
        action="store_true",
        help="measure in this process (faster start; memory figures become process-wide)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines on stderr")
    return p


def _int(text: str, option: str, minimum: int) -> int:
    try:
        v = int(text)
    except (TypeError, ValueError):
        v = minimum - 1
    if v < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise OptionError(f"{option} takes {what}, got {text!r}")
    return v


def _secs(text: str, option: str) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        v = -1.0
    if not v >= 0 or v == float("inf"):
        raise OptionError(f"{option} takes a non-negative number of seconds, got {text!r}")
    return v


def parse_threads(text: str | None) -> list[int]:
    """'1,2,4' -> [1, 2, 4]; every count must be a positive integer."""
    from ..runtime import default_threads

    if text is None:
        return [default_threads()]
    out = []
    for part in text.split(","):
        try:
            v = int(part)
        except ValueError:
            v = 0
        if v < 1:
            raise OptionError(
                f"--threads takes positive integers separated by commas (e.g. 1,2,4), got {text!r}"
            )
        if v not in out:
            out.append(v)
    return out


def parse_backends(text: str) -> list[str]:
    from ..runtime import BACKENDS

    out = []
    for part in text.split(","):
        name = part.strip().lower()
        if name not in ("auto", *BACKENDS):
            raise OptionError(
                f"unknown backend {part.strip()!r}: choose from {', '.join(BACKENDS)} "
                "(or leave --backend out to pick by file suffix)"
            )
        if name not in out:
            out.append(name)
    return out


def run(args: argparse.Namespace) -> int:
    from .. import bench

    threads = parse_threads(args.threads)
    backends = parse_backends(args.backend)
    runs = _int(args.runs, "--runs", 1)
    warmup = _int(args.warmup, "--warmup", 0)
    warmup_secs = _secs(args.warmup_secs, "--warmup-secs")
    min_secs = _secs(args.min_secs, "--min-secs")
    if args.stage not in bench.STAGES:
        raise OptionError(f"--stage is one of {', '.join(bench.STAGES)}, got {args.stage!r}")
    if args.plot and not args.plot.lower().endswith(".png"):
        raise OptionError(f"--plot writes a PNG: give a file name ending in .png, got {args.plot}")
    if args.plot:
        import importlib.util

        if importlib.util.find_spec("matplotlib") is None:
            from ..errors import MissingExtraError

            raise MissingExtraError("--plot needs matplotlib: pip install 'seglite[plot]'")
    configs = bench.make_configs(args.models, threads=threads, backends=backends, stage=args.stage)
    inp = bench.make_input(args.input)
    show = not args.quiet and sys.stderr.isatty()
    report = bench.run_bench(
        configs,
        input=inp,
        runs=runs,
        warmup=warmup,
        warmup_secs=warmup_secs,
        min_secs=min_secs,
        isolate=not args.no_isolate,
        progress=(lambda msg: print(f"seglite bench: {msg}", file=sys.stderr)) if show else None,
    )
    print(report.to_text(markdown=args.markdown))
    if args.json:
        bench.write_json(report, args.json)
        print(f"wrote {args.json}", file=sys.stderr)
    if args.plot:
        bench.plot(report, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
