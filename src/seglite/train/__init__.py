"""Training DeepLab models: config, resumable loop, DDP through torchrun."""

from __future__ import annotations

from .config import TrainConfig, load_config
from .log import plot_curves
from .loop import TrainingError, train
from .model_init import build_model
from .optim import poly_lr

__all__ = [
    "TrainConfig",
    "TrainingError",
    "build_model",
    "load_config",
    "plot_curves",
    "poly_lr",
    "train",
]
