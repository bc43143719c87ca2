"""Summary statistics of timed runs, as benchmark_model reports them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .settings import NOISY_RATIO


@dataclass(frozen=True)
class Stats:
    """Summary of timed runs in milliseconds (std is the population std, as benchmark_model's)."""

    count: int
    avg: float
    std: float
    min: float
    p50: float
    p90: float
    p99: float
    max: float

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float]) -> Stats:
        a = np.asarray(samples_ms, dtype=np.float64)
        if a.size == 0:
            raise ValueError("no samples")
        # Linear interpolation between order statistics (numpy's default, "type 7").
        p50, p90, p99 = np.percentile(a, [50, 90, 99])
        return cls(
            count=int(a.size),
            avg=float(a.mean()),
            std=float(a.std()),
            min=float(a.min()),
            p50=float(p50),
            p90=float(p90),
            p99=float(p99),
            max=float(a.max()),
        )

    @property
    def noise_ratio(self) -> float:
        """max / median: a few slow outliers are normal, a ratio over 3 means interference."""
        return self.max / self.p50 if self.p50 > 0 else math.inf

    @property
    def noisy(self) -> bool:
        return self.noise_ratio > NOISY_RATIO

    def as_dict(self) -> dict[str, float | int]:
        return {k: (v if k == "count" else round(v, 4)) for k, v in asdict(self).items()}
