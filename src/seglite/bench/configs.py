"""Configurations: one table row each (model x backend x threads x stage), checked early."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import MissingExtraError, OptionError
from .settings import EXTRAS, RUNTIME_MODULES, STAGES


@dataclass(frozen=True)
class BenchConfig:
    """One row of the table: a model file on one backend with one thread count."""

    model: str  # the name shown (zoo name or file name)
    path: str  # the resolved model file
    backend: str  # litert | onnx | torch
    threads: int
    stage: str = "invoke"


def check_backend_available(backend: str) -> None:
    """Fail early, in one line, when a backend's runtime or module is not installed."""
    import importlib.util

    from ..runtime import BACKENDS

    if backend not in BACKENDS:
        raise OptionError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if importlib.util.find_spec(f"seglite.runtime.{backend}") is None:
        raise MissingExtraError(
            f"the {backend} backend is not part of this seglite build yet; "
            f"use --backend {' or '.join(b for b in BACKENDS if b != backend)}"
        )
    module = RUNTIME_MODULES[backend]
    if importlib.util.find_spec(module.split(".")[0]) is None:
        extra = EXTRAS[backend]
        how = f"pip install 'seglite[{extra}]'" if extra else "pip install ai-edge-litert"
        raise MissingExtraError(f"the {backend} backend needs {module.split('.')[0]}: {how}")


def make_configs(
    models: Sequence[str],
    *,
    threads: Sequence[int] = (2,),
    backends: Sequence[str] = ("auto",),
    stage: str = "invoke",
) -> list[BenchConfig]:
    """Every model x backend x thread count, models resolved through the zoo.

    ``"auto"`` picks the runtime from the file suffix (.tflite, .onnx, .safetensors).
    """
    from ..runtime import backend_for, check_threads
    from ..zoo import resolve

    if stage not in STAGES:
        raise OptionError(f"unknown stage {stage!r}: choose one of {', '.join(STAGES)}")
    if not models:
        raise OptionError("give at least one model (a zoo name or a model file)")
    if not threads:
        raise OptionError("give at least one thread count")
    counts = [check_threads(t) for t in threads]
    configs: list[BenchConfig] = []
    for model in models:
        resolved = resolve(model)
        name = resolved.entry.name if resolved.entry else resolved.path.name
        for b in backends:
            kind = backend_for(resolved.path, b)
            check_backend_available(kind)
            for t in counts:
                configs.append(BenchConfig(name, str(resolved.path), kind, t, stage))
    return configs
