"""Training DeepLab models: config, resumable loop, DDP through torchrun."""

from __future__ import annotations

from .config import TrainConfig, load_config
from .loop import TrainingError, build_model, plot_curves, poly_lr, train

__all__ = [
    "TrainConfig",
    "TrainingError",
    "build_model",
    "load_config",
    "plot_curves",
    "poly_lr",
    "train",
]
