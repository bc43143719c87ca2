"""bench --plot: median latency against threads (needs the ``plot`` extra)."""

from __future__ import annotations

import io
import os
from pathlib import Path

from ..errors import MissingExtraError, OptionError
from ..files import write_atomic
from .report import BenchReport, BenchResult


def plot(report: BenchReport, path: str | os.PathLike) -> Path:
    """PNG of median latency against thread count, one line per model/backend (bars: min..p90)."""
    try:
        import matplotlib
    except ImportError:
        raise MissingExtraError("plotting needs matplotlib: pip install 'seglite[plot]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise OptionError(f"--plot writes a PNG: give a file name ending in .png, got {path.name}")
    series: dict[tuple[str, str], list[BenchResult]] = {}
    for r in report.results:
        series.setdefault((r.model, r.backend), []).append(r)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    all_threads = [r.threads for r in report.results]
    dodge = 0.03 * max(1, max(all_threads) - min(all_threads))  # keep error bars apart
    for j, ((model, backend), rs) in enumerate(series.items()):
        rs = sorted(rs, key=lambda r: r.threads)
        x = [r.threads + (j - (len(series) - 1) / 2) * dodge for r in rs]
        y = [r.stats.p50 for r in rs]
        lo = [r.stats.p50 - r.stats.min for r in rs]
        hi = [r.stats.p90 - r.stats.p50 for r in rs]
        line = ax.errorbar(x, y, yerr=[lo, hi], marker="o", capsize=4, label=f"{model} ({backend})")
        for xi, yi in zip(x, y):
            ax.annotate(
                f"{yi:.1f}",
                (xi, yi),
                textcoords="offset points",
                xytext=(6, 4),
                fontsize=8,
                color=line[0].get_color(),
            )
    threads = sorted({r.threads for r in report.results})
    ax.set_xticks(threads)
    ax.margins(x=0.12)
    ax.set_xlabel("threads")
    ax.set_ylabel("latency, ms (median; bars: min to p90)")
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    stage = report.settings.get("stage", "invoke")
    ax.set_title(f"seglite bench ({stage}) on {report.environment.get('cpu', 'CPU')}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return write_atomic(path, buf.getvalue())
