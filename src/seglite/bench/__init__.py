"""Measure a segmentation model's latency and memory the way TFLite's ``benchmark_model`` does.

For each configuration (model x backend x threads) it reports what benchmark_model
reports: model size, init time, first inference, warm-up average, then count / avg /
std / min / p50 / p90 / p99 / max over the timed runs, and the memory footprint
(resident-set delta at init and overall, and the peak).

Two things make the numbers trustworthy on a shared, noisy machine:

- **Isolation.** By default every configuration lives in its own worker process, as
  benchmark_model runs one model per process, so its memory figures are its own and
  one runtime's thread pool never competes with another's.
- **Interleaving.** The timed runs of all configurations alternate in short blocks
  (about ``BLOCK_SECS`` each) rather than one configuration after another, so a burst
  of load from a neighbour hits every configuration alike and ratios between rows stay
  fair. Only one worker runs at a time; the others wait on their pipe.

Stages: ``invoke`` times ``backend.run`` on an input already at the model's size (the
figure TFLite quotes); ``end2end`` times ``Segmenter.segment`` from the encoded image
bytes to the full-size category mask (what an application sees).

One module per idea: settings (defaults), stats, memory (/proc), environment (CPU,
versions), inputs (the image), configs (rows), worker (one configuration's session, in or
out of process), run (run_bench, the interleaving), report (tables, JSON), plot.
"""

from __future__ import annotations

from .configs import BenchConfig, check_backend_available, make_configs
from .environment import cpu_name, describe_environment, environment
from .inputs import BenchInput, default_jpeg, example_image, make_input
from .memory import peak_mb, reset_peak, rss_mb
from .plot import plot
from .report import BenchReport, BenchResult, write_json
from .run import run_bench
from .settings import (
    BLOCK_SECS,
    DEFAULT_IMAGE_SIZE,
    DEFAULT_MAX_SECS,
    DEFAULT_MIN_SECS,
    DEFAULT_RUNS,
    DEFAULT_WARMUP,
    DEFAULT_WARMUP_SECS,
    EXTRAS,
    NOISY_RATIO,
    RUNTIME_MODULES,
    STAGES,
)
from .stats import Stats

__all__ = [
    "BLOCK_SECS",
    "DEFAULT_IMAGE_SIZE",
    "DEFAULT_MAX_SECS",
    "DEFAULT_MIN_SECS",
    "DEFAULT_RUNS",
    "DEFAULT_WARMUP",
    "DEFAULT_WARMUP_SECS",
    "EXTRAS",
    "NOISY_RATIO",
    "RUNTIME_MODULES",
    "STAGES",
    "BenchConfig",
    "BenchInput",
    "BenchReport",
    "BenchResult",
    "Stats",
    "check_backend_available",
    "cpu_name",
    "default_jpeg",
    "describe_environment",
    "environment",
    "example_image",
    "make_configs",
    "make_input",
    "peak_mb",
    "plot",
    "reset_peak",
    "rss_mb",
    "run_bench",
    "write_json",
]
