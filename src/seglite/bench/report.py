"""The report: rows, ratios, text and Markdown tables, JSON."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..files import write_atomic
from ..tables import format_table
from .environment import describe_environment
from .stats import Stats


@dataclass
class BenchResult:
    """One configuration's measurements; times in ms, memory in MB."""

    model: str
    path: str
    size_bytes: int
    backend: str
    stage: str
    threads: int
    device: str
    input_size: list[int]  # model input (height, width)
    output: str
    init_ms: float
    first_ms: float
    warmup_ms: list[float]
    stats: Stats
    samples_ms: list[float]
    rss_init_mb: float | None  # resident-set growth while opening the model
    rss_overall_mb: float | None  # growth from before init to the end of the timed runs
    peak_mb: float | None  # peak resident set of the measuring process
    isolated: bool = True

    @property
    def warmup_avg_ms(self) -> float | None:
        return float(np.mean(self.warmup_ms)) if self.warmup_ms else None

    @property
    def noisy(self) -> bool:
        return self.stats.noisy

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stats"] = self.stats.as_dict()
        d["warmup_avg_ms"] = self.warmup_avg_ms
        d["noise_ratio"] = round(self.stats.noise_ratio, 3)
        d["noisy"] = self.noisy
        for k in ("init_ms", "first_ms", "rss_init_mb", "rss_overall_mb", "peak_mb"):
            if d[k] is not None:
                d[k] = round(d[k], 4)
        d["warmup_ms"] = [round(x, 4) for x in self.warmup_ms]
        d["samples_ms"] = [round(x, 4) for x in self.samples_ms]
        return d


@dataclass
class BenchReport:
    """All rows of one invocation, with the machine and settings they were measured under."""

    results: list[BenchResult]
    environment: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)

    def ratios(self) -> list[float]:
        """Each row's median over the first row's median (measured in the same run)."""
        base = self.results[0].stats.p50 if self.results else 0.0
        return [r.stats.p50 / base if base else math.nan for r in self.results]

    def as_dict(self) -> dict[str, Any]:
        return {
            "seglite_bench": 1,
            "environment": self.environment,
            "settings": self.settings,
            "results": [
                {**r.as_dict(), "ratio_to_first": round(x, 4)}
                for r, x in zip(self.results, self.ratios())
            ],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def table_rows(self) -> list[dict[str, str]]:
        """The printed table: one row per configuration, in TFLite-guide units."""
        cpu = self.environment.get("cpu", "cpu")
        rows = []
        for r, ratio in zip(self.results, self.ratios()):
            s = r.stats
            rows.append(
                {
                    "model": r.model,
                    "size": f"{r.size_bytes / 1e6:.1f} MB",
                    "backend": r.backend,
                    "device": cpu if r.device == "cpu" else r.device,
                    "threads": str(r.threads),
                    "init ms": _ms(r.init_ms),
                    "first ms": _ms(r.first_ms),
                    "min ms": _ms(s.min),
                    "avg ms": _ms(s.avg),
                    "p50 ms": _ms(s.p50) + (" !" if r.noisy else ""),
                    "p90 ms": _ms(s.p90),
                    "p99 ms": _ms(s.p99),
                    "std ms": _ms(s.std),
                    "RSS MB": _mb(r.rss_overall_mb, r.peak_mb),
                    "x row 1": f"{ratio:.2f}",
                }
            )
        return rows

    def notes(self) -> list[str]:
        """Warnings to print under the table (noisy rows)."""
        out = []
        for i, r in enumerate(self.results, 1):
            if r.noisy:
                out.append(
                    f"row {i} ({r.model}, {r.backend}, {r.threads} threads) is noisy: max "
                    f"{r.stats.max:.1f} ms is {r.stats.noise_ratio:.1f}x the median; rerun on a "
                    "quieter machine or with more --runs"
                )
        return out

    def details(self) -> list[str]:
        """benchmark_model's per-model summary lines: everything the table leaves out."""
        out = []
        for i, r in enumerate(self.results, 1):
            s = r.stats
            warm = (
                f"warmup avg={r.warmup_avg_ms:.2f} (n={len(r.warmup_ms)})"
                if r.warmup_ms
                else "no warm-up"
            )
            mem = (
                f"memory delta init={_mb1(r.rss_init_mb)} overall={_mb1(r.rss_overall_mb)} "
                f"peak={_mb1(r.peak_mb)}"
            )
            out.append(
                f"row {i}: {r.model} {r.backend} threads={r.threads}: init={r.init_ms:.2f} "
                f"first={r.first_ms:.2f} {warm} count={s.count} avg={s.avg:.2f} std={s.std:.2f} "
                f"min={s.min:.2f} p50={s.p50:.2f} p90={s.p90:.2f} p99={s.p99:.2f} max={s.max:.2f} "
                f"(ms); {mem}; input {r.input_size[1]}x{r.input_size[0]} -> {r.output}"
            )
        return out

    def headline(self) -> str:
        st = self.settings
        what = (
            "backend.run on a prepared input at the model's size"
            if st.get("stage") == "invoke"
            else "Segmenter.segment from encoded bytes to the full-size mask"
        )
        return (
            f"seglite bench, stage {st.get('stage')} ({what}); input {st.get('input')}; "
            f"{st.get('mode')}"
        )

    def to_text(self, *, markdown: bool = False) -> str:
        env = describe_environment(self.environment)
        legend = (
            "size: model file; init: open the model; first: first inference; min/avg/p50/p90/p99/std "
            "over the timed runs after warm-up; RSS MB: resident growth from before init to the "
            "end (peak of the process); x row 1: p50 over row 1's p50, measured in the same run; "
            "! marks a noisy row (max/median > 3)"
        )
        table = format_table(self.table_rows())
        notes = self.notes()
        if markdown:
            parts = [f"_{self.headline()}_", "", table, "", f"Machine: {env}", "", legend, ""]
            parts += [f"- {d}" for d in self.details()]
            parts += [f"\n**Warning:** {n}" for n in notes]
            return "\n".join(parts)
        return "\n".join(
            [self.headline(), table, f"machine: {env}", legend, *self.details(), *notes]
        )


def _ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def _mb(overall: float | None, peak: float | None) -> str:
    if overall is None and peak is None:
        return "-"
    a = "-" if overall is None else f"{overall:+.1f}"
    b = "-" if peak is None else f"{peak:.0f}"
    return f"{a} ({b})"


def _mb1(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f} MB"


def write_json(report: BenchReport, path: str | os.PathLike) -> Path:
    """The full report (settings, environment, every sample) written atomically."""
    return write_atomic(path, report.to_json() + "\n")
