"""The defaults of seglite bench, benchmark_model's where it has one."""

from __future__ import annotations

STAGES = ("invoke", "end2end")
DEFAULT_RUNS = 50  # benchmark_model's --num_runs
DEFAULT_WARMUP = 1  # benchmark_model's --warmup_runs
DEFAULT_WARMUP_SECS = 0.5  # benchmark_model's --warmup_min_secs
DEFAULT_MIN_SECS = 1.0  # benchmark_model's --min_secs
DEFAULT_MAX_SECS = 150.0  # benchmark_model's --max_secs (per configuration)
NOISY_RATIO = 3.0  # max / median above this: the run was disturbed
BLOCK_SECS = 0.2  # interleaving granularity: long enough to keep caches warm within a block
DEFAULT_IMAGE_SIZE = (640, 480)  # (width, height) of the default benchmark JPEG
RUNTIME_MODULES = {"litert": "ai_edge_litert.interpreter", "onnx": "onnxruntime", "torch": "torch"}
EXTRAS = {"litert": None, "onnx": "onnx", "torch": "torch"}
