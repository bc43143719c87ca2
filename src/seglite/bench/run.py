"""run_bench: every configuration opened, warmed up, then timed interleaved in short blocks."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OptionError
from .configs import BenchConfig
from .environment import environment
from .inputs import BenchInput, make_input
from .report import BenchReport, BenchResult
from .settings import (
    BLOCK_SECS,
    DEFAULT_MAX_SECS,
    DEFAULT_MIN_SECS,
    DEFAULT_RUNS,
    DEFAULT_WARMUP,
    DEFAULT_WARMUP_SECS,
)
from .stats import Stats
from .worker import _LocalHandle, _ProcessHandle


def _block_size(est_ms: float) -> int:
    """Runs per interleaving turn: about BLOCK_SECS of work, 1 to 50 runs."""
    if est_ms <= 0 or not math.isfinite(est_ms):
        return 1
    return max(1, min(50, round(BLOCK_SECS * 1e3 / est_ms)))


def run_bench(
    configs: Sequence[BenchConfig],
    *,
    input: BenchInput | None = None,
    runs: int = DEFAULT_RUNS,
    warmup: int = DEFAULT_WARMUP,
    warmup_secs: float = DEFAULT_WARMUP_SECS,
    min_secs: float = DEFAULT_MIN_SECS,
    max_secs: float = DEFAULT_MAX_SECS,
    isolate: bool = True,
    progress: Callable[[str], None] | None = None,
) -> BenchReport:
    """Measure every configuration: init, first run and warm-up one after another, then the
    timed runs of all configurations interleaved until each has at least ``runs`` runs and
    ``min_secs`` of timed work (or ``max_secs`` passed).

    ``isolate=True`` starts one worker per configuration with multiprocessing's "spawn", so
    a script that calls this must do so under ``if __name__ == "__main__":``.
    """
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise OptionError(f"runs must be a positive integer, got {runs!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise OptionError(f"warmup must be a non-negative integer, got {warmup!r}")
    for name, v in (("min_secs", min_secs), ("warmup_secs", warmup_secs), ("max_secs", max_secs)):
        if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise OptionError(f"{name} must be a non-negative number of seconds, got {v!r}")
    if not configs:
        raise OptionError("nothing to measure: no configurations")
    inp = input if input is not None else make_input(None)
    say = progress or (lambda msg: None)
    env = environment()
    handles: list[_LocalHandle | _ProcessHandle] = []
    opened: list[dict[str, Any]] = []
    samples: list[list[float]] = [[] for _ in configs]
    ends: list[dict[str, Any]] = []
    try:
        for cfg in configs:
            say(f"opening {cfg.model} on {cfg.backend} with {cfg.threads} threads")
            handle = _ProcessHandle(cfg, inp) if isolate else _LocalHandle(cfg, inp)
            handles.append(handle)
            opened.append(handle.open(warmup, warmup_secs))
        est = [
            float(np.median(o["warmup_ms"])) if o["warmup_ms"] else o["first_ms"] for o in opened
        ]
        blocks = [_block_size(e) for e in est]
        need_ms = min_secs * 1e3
        started = time.perf_counter()
        say(f"timing {len(configs)} configuration(s), interleaved")

        def done(i: int) -> bool:
            return len(samples[i]) >= runs and sum(samples[i]) >= need_ms

        rnd = 0
        while not all(done(i) for i in range(len(configs))):
            if time.perf_counter() - started > max_secs * len(configs):
                break
            n = len(configs)
            for k in range(n):
                i = (rnd + k) % n  # rotate who goes first, so no one always follows the same
                todo = blocks[i]
                if need_ms == 0 and len(samples[i]) < runs:
                    todo = min(todo, runs - len(samples[i]))  # no time floor: stop at --runs
                samples[i].extend(handles[i].run(todo))
            rnd += 1
        for h in handles:
            ends.append(h.finish())
    finally:
        for h in handles:
            h.close()

    results = []
    for cfg, o, s, e in zip(configs, opened, samples, ends):
        rss0 = o["rss_start_mb"]
        results.append(
            BenchResult(
                model=cfg.model,
                path=cfg.path,
                size_bytes=Path(cfg.path).stat().st_size,
                backend=cfg.backend,
                stage=cfg.stage,
                threads=o["num_threads"],
                device=o["device"],
                input_size=o["input_size"],
                output=o["output"],
                init_ms=o["init_ms"],
                first_ms=o["first_ms"],
                warmup_ms=o["warmup_ms"],
                stats=Stats.from_samples(s),
                samples_ms=s,
                rss_init_mb=o["rss_init_mb"],
                rss_overall_mb=(e["rss_end_mb"] - rss0)
                if rss0 is not None and e["rss_end_mb"] is not None
                else None,
                peak_mb=e["peak_mb"],
                isolated=isolate,
            )
        )
    settings = {
        "stage": configs[0].stage,
        "input": inp.name,
        "runs": runs,
        "warmup": warmup,
        "warmup_secs": warmup_secs,
        "min_secs": min_secs,
        "mode": "each configuration in its own process, timed runs interleaved"
        if isolate
        else "all configurations in one process, timed runs interleaved",
    }
    return BenchReport(results, env, settings)
